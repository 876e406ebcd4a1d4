//! The vocabulary every stage shares: a [`Unit`] of extracted text (a PDF page or a whole
//! file) with its heading [`Section`]s, the file [`Kind`]s folio reads, and the [`Chunk`] (a
//! passage) that is embedded and indexed. Extraction produces units, chunking turns them into
//! chunks, the index stores chunks; none of them needs to know the others, only this module.

/// The file that marks a folder as a folio index; the walk never enters a folder holding one.
pub const INDEX_MARKER: &str = "folio-index.json";

/// The text of one page of a PDF, or of a whole text, Markdown, HTML, Word, OpenDocument or
/// EPUB file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    /// 1-based page number for PDFs.
    pub page: Option<u32>,
    pub text: String,
    /// Where heading paths start, as byte offsets into `text`, ascending. Each runs until the
    /// next; text before the first has no heading.
    pub sections: Vec<Section>,
}

/// The start of a run of text under one heading path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// The most characters of one heading a passage keeps (the longest SciFact title is 300): a
/// heading is a title, and a megabyte
/// "heading" (one long first line) would otherwise be copied into every passage under it.
pub const MAX_HEADING_CHARS: usize = 300;

/// A heading as passages carry it: whitespace collapsed, cut at [`MAX_HEADING_CHARS`].
pub fn heading_title(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in raw.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= MAX_HEADING_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// The document formats folio reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pdf,
    Markdown,
    Text,
    Html,
    Docx,
    /// Word 97-2003.
    Doc,
    Odt,
    Epub,
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
            "docx" => Some(Kind::Docx),
            "doc" => Some(Kind::Doc),
            "odt" => Some(Kind::Odt),
            "epub" => Some(Kind::Epub),
            _ => None,
        }
    }

    /// Word, OpenDocument and EPUB files: containers of XML, not text.
    pub fn is_package(self) -> bool {
        matches!(self, Kind::Docx | Kind::Doc | Kind::Odt | Kind::Epub)
    }

    /// Kinds read in the extraction worker, under its time and memory limits: their parsers
    /// build trees from untrusted structure (zip members, XML, HTML), where one file can cost
    /// more than the run can spend. PDFs go there too, through their own request.
    pub fn in_worker(self) -> bool {
        self.is_package() || self == Kind::Html
    }
}

/// One passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position of the passage within its file, from 0.
    pub ordinal: u32,
    pub page: Option<u32>,
    pub heading: Vec<String>,
    /// Character offsets of `text` in its unit's text (its page, or the whole file).
    pub start: usize,
    pub end: usize,
    pub text: String,
    /// Heading context embedded in front of `text` (empty when `text` starts with its heading).
    pub context: String,
}

impl Chunk {
    /// The text the embedding model reads for this passage.
    pub fn embed_text(&self) -> String {
        if self.context.is_empty() {
            self.text.clone()
        } else {
            format!("{}\n{}", self.context, self.text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_are_collapsed_and_cut() {
        assert_eq!(heading_title("  Term\n and   notice "), "Term and notice");
        let long = heading_title(&"é".repeat(1_000_000));
        assert_eq!(long.chars().count(), MAX_HEADING_CHARS + 1);
        assert!(long.ends_with('…'));
        let exact = "a".repeat(MAX_HEADING_CHARS);
        assert_eq!(heading_title(&exact), exact);
    }
}
