//! folio's integration tests: one binary, real models, real indexes, temp-folder fixtures.
//!
//! The default embedding model is fetched into the per-user model cache (or `FOLIO_MODELS`) on
//! first use, as `folio` itself does.

mod ask;
mod common;
mod eval;
mod formats;
mod gguf_arch;
mod hardening;
mod hostile;
mod index_search;
mod robustness;
mod serve;
mod tui;
mod watch;

/// Default settings, independent of the user's config.
pub fn index_search_settings() -> folio::config::Settings {
    let t = std::path::Path::new("/nonexistent");
    folio::config::Settings::defaults(&folio::config::Dirs {
        config_file: t.join("config.toml"),
        data: t.join("data"),
        cache: t.join("cache"),
    })
}
