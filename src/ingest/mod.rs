//! Ingestion: from folders on disk to passages, knowing nothing of the index.
//!
//! [`walk`] lists the candidate files of a folder (ignore rules, hidden, oversized and
//! unsupported files), [`extract`] and [`pdf`] turn a file into [`Unit`]s of text (a PDF page,
//! or a whole file) with their heading structure, and [`chunk`] splits units into passages sized
//! in the embedding model's tokens. The write pipeline (`pipeline`, above this module) drives a
//! run over them.

pub mod chunk;
pub mod extract;
pub mod pdf;
pub mod walk;

pub use crate::doc::{Kind, Section, Unit};
