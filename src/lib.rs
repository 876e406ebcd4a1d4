//! folio: a private, offline document assistant.
//!
//! Data flows one way: folder → [`ingest`] (walk, extract, chunk) → [`embed`] → [`index`]
//! (BM25 in tantivy, vectors in LanceDB, a manifest of what both committed) → retrieval with
//! fusion → answers. [`config`] and [`models`] sit at the bottom; [`eval`] measures retrieval on
//! BEIR-format sets through the same pipeline user files go through. Nothing here imports from
//! the command line layer in `main.rs`.

pub mod answer;
pub mod config;
pub mod embed;
pub mod eval;
pub mod fsutil;
pub mod index;
pub mod ingest;
pub mod llm;
pub mod models;
pub mod simd;
pub mod snippet;
pub mod tui;
pub mod watch;

/// The message of a caught panic (parsers and model code can panic on bad input).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
