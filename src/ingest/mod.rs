//! Ingestion: from folders on disk to passages ready for the index.
//!
//! [`walk`] lists the candidate files of a folder (ignore rules, hidden, oversized and
//! unsupported files), [`extract`] and [`pdf`] turn a file into [`Unit`]s of text (a PDF page,
//! or a whole file) with their heading structure, [`chunk`] splits units into passages sized in
//! the embedding model's tokens, and [`pipeline`] drives a run: it compares files with the
//! manifest, embeds only what changed and commits batches to the index.

pub mod chunk;
pub mod extract;
pub mod pdf;
pub mod pipeline;
pub mod walk;

/// The text of one page of a PDF, or of a whole text, Markdown or HTML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// 1-based page number for PDFs.
    pub page: Option<u32>,
    pub text: String,
    /// Where heading paths start, as byte offsets into `text`, ascending. Each runs until the
    /// next; text before the first has no heading.
    pub sections: Vec<Section>,
}

/// The start of a run of text under one heading path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub start: usize,
    pub heading: Vec<String>,
}

impl Unit {
    /// A unit without headings.
    pub fn plain(page: Option<u32>, text: String) -> Unit {
        Unit {
            page,
            text,
            sections: Vec::new(),
        }
    }
}

/// The document formats folio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pdf,
    Markdown,
    Text,
    Html,
}

impl Kind {
    /// The kind a file name's extension says it has, if folio reads it.
    pub fn of(path: &std::path::Path) -> Option<Kind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "pdf" => Some(Kind::Pdf),
            "md" | "markdown" | "mdown" | "mkd" => Some(Kind::Markdown),
            "txt" | "text" => Some(Kind::Text),
            "html" | "htm" | "xhtml" => Some(Kind::Html),
            _ => None,
        }
    }
}
