//! folio: a private, offline document assistant.
//!
//! Data flows one way: folder → [`ingest`] (walk, extract, chunk) → [`embed`] → [`index`]
//! (BM25 in tantivy, vectors in LanceDB, a manifest of what both committed) → retrieval with
//! fusion → answers. [`config`] and [`models`] sit at the bottom; [`eval`] measures retrieval on
//! BEIR-format sets through the same pipeline user files go through. Nothing here imports from
//! the command line layer in `main.rs`.

pub mod answer;
pub mod config;
pub mod doc;
pub mod embed;
pub mod eval;
pub mod fsutil;
pub mod fusion;
pub mod index;
pub mod ingest;
pub mod llm;
pub mod models;
pub mod pipeline;
pub mod quant;
pub mod serve;
pub mod setup;
pub mod shown;
pub mod simd;
pub mod snippet;
pub mod tui;
pub mod watch;

/// The typed cause of an error that names a file or folder: an IO, parse or library error, or
/// folio's own reason as text. Printed through [`error_chain`] after the path.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error and its causes, outermost first, joined by ": ", each said once: a cause whose
/// text the link before it already contains (a library that repeats its source in its own
/// message) is left out. folio's own wrappers name their context and leave the cause to the
/// chain; this is how every surface (the command line, the TUI, JSON) prints an error.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut last = String::new();
    let mut link = Some(e);
    while let Some(err) = link {
        let text = err.to_string();
        if !text.is_empty() && !last.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        last = text;
        link = err.source();
    }
    out
}

/// The message of a caught panic (parsers and model code can panic on bad input).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("the index")]
        Index(#[source] Inner),
        #[error("repeating: {0}")]
        Repeats(#[source] Inner),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("file missing")]
    struct Inner(#[source] std::io::Error);

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn every_cause_is_said_once() {
        let e = Outer::Index(Inner(io()));
        assert_eq!(
            super::error_chain(&e),
            "the index: file missing: no such file"
        );
        let e = Outer::Repeats(Inner(io()));
        assert_eq!(
            super::error_chain(&e),
            "repeating: file missing: no such file"
        );
    }
}
