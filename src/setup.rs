//! What every front end (the command line, the TUI, the benches) sets up the same way: the
//! settings (defaults, config file, `FOLIO_*` variables), the models they name (fetched on
//! first use), the folders to index (those given, else the index's remembered roots) and the
//! PDF extractor. Front ends add their own flags and presentation on top.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{ConfigError, Dirs, Settings};
use crate::embed::{EmbedError, Embedder};
use crate::index::Index;
use crate::ingest::pdf::PdfExtractor;
use crate::llm::{Llm, LlmError};
use crate::models::{self, ModelError};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("loading the embedding model")]
    Embedder(#[source] EmbedError),
    /// Names the file unless the cause already does.
    #[error("{what}")]
    Llm {
        what: String,
        #[source]
        source: LlmError,
    },
    #[error("no folders given and the index has no roots yet: folio {command} DIR...")]
    NoRoots { command: &'static str },
}

/// The settings: defaults, then `config_file` (or the default one), then the process's
/// `FOLIO_*` variables. The system's folders come with them.
pub fn settings(config_file: Option<&Path>) -> Result<(Dirs, Settings), SetupError> {
    let dirs = Dirs::from_system()?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FOLIO_"))
        .collect();
    let s = Settings::load(&dirs, config_file, &env)?;
    Ok((dirs, s))
}

/// The embedding model the settings name, fetched first if it is a default not yet present;
/// `progress` hears about the download.
pub fn embedder(s: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Embedder, SetupError> {
    let dir = models::resolve_embed(&s.embed_model, &s.models_dir, progress)?;
    Embedder::load(&dir, s.embed_batch).map_err(SetupError::Embedder)
}

/// The language model the settings name, as [`embedder`] does.
pub fn llm(s: &Settings, progress: &mut dyn FnMut(&str)) -> Result<Llm, SetupError> {
    let path = models::resolve_llm(&s.llm, &s.models_dir, progress)?;
    Llm::load_with(&path, s.requantize).map_err(|source| {
        let named = matches!(
            source,
            LlmError::File { .. } | LlmError::Architecture { .. }
        );
        let what = if named {
            "loading the language model".to_string()
        } else {
            format!("loading the language model {}", path.display())
        };
        SetupError::Llm { what, source }
    })
}

/// The folders a run covers: those `given`, else the roots `index` remembers. `command` is
/// the subcommand to suggest when there are none.
pub fn roots(
    given: &[PathBuf],
    index: &Index,
    command: &'static str,
) -> Result<Vec<PathBuf>, SetupError> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let remembered = index.manifest().root_paths();
    if remembered.is_empty() {
        return Err(SetupError::NoRoots { command });
    }
    Ok(remembered)
}

/// The PDF extractor, with workers run from this executable (the `__pdf-worker` subcommand)
/// under the settings' time limit.
pub fn pdf_extractor(s: &Settings) -> PdfExtractor {
    let limit = Duration::from_secs(s.pdf_timeout_secs);
    // Recognised pages are cached beside the index they were read for.
    let ocr = match s.ocr {
        crate::config::OcrMode::Off => None,
        crate::config::OcrMode::Auto => {
            crate::ingest::ocr::Ocr::new(s.index_dir.join("ocr"), &s.ocr_languages, limit)
        }
    };
    PdfExtractor::new(std::env::current_exe().ok(), limit).with_ocr(ocr)
}
