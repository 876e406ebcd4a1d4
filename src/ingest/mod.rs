//! Ingestion: from folders on disk to passages, knowing nothing of the index.
//!
//! [`walk`] lists the candidate files of a folder (ignore rules, hidden, oversized and
//! unsupported files), [`extract`], [`office`] and [`pdf`] turn a file into [`Unit`]s of text (a PDF page,
//! or a whole file) with their heading structure, and [`chunk`] splits units into passages sized
//! in the embedding model's tokens. The write pipeline (`pipeline`, above this module) drives a
//! run over them.

pub mod chunk;
pub mod extract;
pub mod ocr;
pub mod office;
pub mod pdf;
pub mod walk;

pub use crate::doc::{Kind, Section, Unit};

/// The text extractors of this build, by crate and version: what a failure was judged by. The
/// index records it beside each failed file, which is read again once this changes.
pub const EXTRACTORS: &str = "pdf-extract 0.12, lopdf 0.42, pdf_oxide 0.3, scraper, pulldown-cmark, office_oxide 0.1, roxmltree 0.21, tesseract";

/// What reading one file gave: its units, and for a PDF the extractor that read it.
#[derive(Debug)]
pub struct Read {
    pub units: Vec<Unit>,
    pub extractor: Option<&'static str>,
    /// The pages of a PDF recognised from their image (1-based).
    pub recognised: Vec<u32>,
}

/// Reads the file at `path` as `kind`: the one dispatch by kind that indexing, previews and
/// `folio serve` share. PDFs, HTML and packaged documents go to `pdf`'s worker processes;
/// other kinds are read from `bytes` where the caller already holds them (indexing hashes
/// them first), else from disk.
pub fn read(
    path: &std::path::Path,
    kind: Kind,
    bytes: Option<&[u8]>,
    pdf: &pdf::PdfExtractor,
) -> Result<Read, extract::ExtractError> {
    let units = match kind {
        Kind::Pdf => {
            let text = pdf.extract(path, bytes)?;
            return Ok(Read {
                extractor: Some(text.engine.name()),
                recognised: text.recognised,
                units: pdf::pages_to_units(text.pages),
            });
        }
        k if k.in_worker() => pdf.extract_document(path, k, bytes)?,
        k => match bytes {
            Some(b) => extract::extract_bytes(k, b)?,
            None => std::fs::read(path)
                .map_err(|e| extract::ExtractError::Io(e.to_string()))
                .and_then(|b| extract::extract_bytes(k, &b))?,
        },
    };
    Ok(Read {
        units,
        extractor: None,
        recognised: Vec::new(),
    })
}

/// The units of the file at `path`, read as indexing reads them (for previews and for reading
/// a source).
pub fn read_file(
    path: &std::path::Path,
    pdf: &pdf::PdfExtractor,
) -> Result<Vec<Unit>, extract::ExtractError> {
    match Kind::of(path) {
        Some(kind) => read(path, kind, None, pdf).map(|r| r.units),
        None => Err(extract::ExtractError::Io(format!(
            "{} is not a document folio reads",
            path.display()
        ))),
    }
}
