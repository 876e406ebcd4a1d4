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

/// The units of the file at `path` as indexing reads them: PDFs and packaged documents through
/// `pdf`'s worker processes, any other kind from its bytes (for previews and for reading a
/// source).
pub fn read_file(
    path: &std::path::Path,
    pdf: &pdf::PdfExtractor,
) -> Result<Vec<Unit>, extract::ExtractError> {
    match Kind::of(path) {
        Some(Kind::Pdf) => pdf.extract(path).map(|t| pdf::pages_to_units(t.pages)),
        Some(k) if k.in_worker() => pdf.extract_document(path, k),
        Some(k) => std::fs::read(path)
            .map_err(|e| extract::ExtractError::Io(e.to_string()))
            .and_then(|b| extract::extract_bytes(k, &b)),
        None => Err(extract::ExtractError::Io(format!(
            "{} is not a document folio reads",
            path.display()
        ))),
    }
}
