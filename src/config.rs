//! Effective settings and where each one came from.
//!
//! Four layers, each overriding the one before: built-in defaults, the TOML file in the per-user
//! config directory (`~/.config/folio/config.toml`, or `--config`/`FOLIO_CONFIG`), `FOLIO_*`
//! environment variables (`chunk.tokens` is `FOLIO_CHUNK_TOKENS`), and command-line flags.
//! `folio config` prints every key with its value and its source.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fusion::Fusion;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Flag => write!(f, "flag"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: unknown setting `{key}` (see `folio config` for the list)")]
    UnknownKey { origin: String, key: String },
    #[error("{origin}: invalid value {value:?} for `{key}`: {message}")]
    Invalid {
        origin: String,
        key: String,
        value: String,
        message: String,
    },
    #[error("no home directory: set FOLIO_INDEX_DIR and FOLIO_MODELS")]
    NoHome,
}

/// A type that a setting can hold: parsed from text (TOML scalars, env, flags), shown as text.
pub trait Value: Sized {
    fn parse(s: &str) -> Result<Self, String>;
    fn show(&self) -> String;
}

impl Value for PathBuf {
    fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty path".into());
        }
        Ok(expand_tilde(s))
    }
    fn show(&self) -> String {
        crate::shown::name(&crate::fsutil::path_key(self))
    }
}

impl Value for String {
    fn parse(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
    fn show(&self) -> String {
        self.clone()
    }
}

macro_rules! value_via_fromstr {
    ($($t:ty),*) => {$(
        impl Value for $t {
            fn parse(s: &str) -> Result<Self, String> {
                s.trim().parse::<$t>().map_err(|e| e.to_string())
            }
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
value_via_fromstr!(usize, u64, f32, bool);

/// Whether scanned pages are recognised (`ingest.ocr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcrMode {
    /// When Tesseract and poppler are installed.
    Auto,
    Off,
}

impl OcrMode {
    pub fn from_name(s: &str) -> Result<OcrMode, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(OcrMode::Auto),
            "off" => Ok(OcrMode::Off),
            other => Err(format!("{other:?}: use auto or off")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OcrMode::Auto => "auto",
            OcrMode::Off => "off",
        }
    }
}

impl Value for OcrMode {
    fn parse(s: &str) -> Result<Self, String> {
        OcrMode::from_name(s)
    }
    fn show(&self) -> String {
        self.name().into()
    }
}

impl Value for Fusion {
    fn parse(s: &str) -> Result<Self, String> {
        Fusion::from_name(s)
    }
    fn show(&self) -> String {
        self.name().into()
    }
}

/// The path a setting's text names: `~/` expanded, and the text read as a path key
/// ([`crate::fsutil::path_key`]), so that a flag's file name that is not UTF-8 keeps its bytes.
fn expand_tilde(s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(home) = directories::BaseDirs::new()
    {
        return home.home_dir().join(crate::fsutil::key_path(rest));
    }
    crate::fsutil::key_path(s)
}

/// The per-user directories folio uses by default.
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config_file: PathBuf,
    pub data: PathBuf,
    pub cache: PathBuf,
}

impl Dirs {
    pub fn from_system() -> Result<Self, ConfigError> {
        let p = directories::ProjectDirs::from("", "", "folio").ok_or(ConfigError::NoHome)?;
        Ok(Dirs {
            config_file: p.config_dir().join("config.toml"),
            data: p.data_dir().to_path_buf(),
            cache: p.cache_dir().to_path_buf(),
        })
    }
}

macro_rules! settings {
    ($dirs:ident; $( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $key:literal; )*) => {
        /// Every setting folio reads. Keys are `section.name`, as in the TOML file.
        #[derive(Debug, Clone)]
        pub struct Settings {
            $( $(#[doc = $doc])* pub $field: $ty, )*
            sources: BTreeMap<&'static str, Origin>,
            /// The config file that was read, if any.
            pub config_file: Option<PathBuf>,
        }

        impl Settings {
            /// All keys, in the order `folio config` prints them.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Built-in defaults for the given per-user directories.
            pub fn defaults($dirs: &Dirs) -> Self {
                Settings {
                    $( $field: $default, )*
                    sources: BTreeMap::new(),
                    config_file: None,
                }
            }

            /// Sets `key` from text; unknown keys are an error naming `origin`.
            pub fn set(&mut self, key: &str, raw: &str, source: Origin) -> Result<(), ConfigError> {
                let origin = source.to_string();
                match key {
                    $( $key => {
                        self.$field = <$ty as Value>::parse(raw).map_err(|message| ConfigError::Invalid {
                            origin, key: key.to_string(), value: raw.to_string(), message,
                        })?;
                        self.sources.insert($key, source);
                        Ok(())
                    } )*
                    _ => Err(ConfigError::UnknownKey { origin, key: key.to_string() }),
                }
            }

            /// `(key, value, source)` for every setting.
            pub fn entries(&self) -> Vec<(&'static str, String, Origin)> {
                vec![$( ($key, Value::show(&self.$field), self.source($key)), )*]
            }
        }
    };
}

settings! {
    dirs;
    /// Where the index lives.
    index_dir: PathBuf = dirs.data.join("index"), "index.dir";
    /// Where fetched models are cached (`FOLIO_MODELS` also sets it).
    models_dir: PathBuf = dirs.cache.join("models"), "models.dir";
    /// Embedding model directory, or `default` for all-MiniLM-L6-v2 from the model cache.
    embed_model: String = "default".into(), "models.embed";
    /// GGUF language model file, or `default` for SmolLM2-135M-Instruct from the model cache.
    llm: String = "default".into(), "models.llm";
    /// Files larger than this many MiB are skipped.
    max_file_mb: u64 = 64, "ingest.max_file_mb";
    /// A PDF whose extraction takes longer than this is abandoned and reported (for a scan,
    /// the limit of each page's rendering and recognition).
    pdf_timeout_secs: u64 = 60, "ingest.pdf_timeout_secs";
    /// Recognise the text of scanned PDF pages: auto (when Tesseract and poppler are
    /// installed) or off.
    ocr: OcrMode = OcrMode::Auto, "ingest.ocr";
    /// Tesseract's languages for scans, e.g. eng or eng+deu (each needs its traineddata).
    ocr_languages: String = "eng".into(), "ingest.ocr_languages";
    /// Follow symbolic links whose target lies outside the indexed folders (links inside them
    /// are always followed). A followed link is indexed under its own path.
    follow_links: bool = false, "ingest.follow_links";
    /// Files per write batch (one commit of both indexes and the manifest).
    batch_files: usize = 256, "ingest.batch_files";
    /// Target chunk size in embedding-model tokens (the model reads at most 256).
    chunk_tokens: usize = 200, "chunk.tokens";
    /// Tokens of trailing sentences repeated at the start of the next chunk.
    chunk_overlap: usize = 32, "chunk.overlap";
    /// Texts per embedding forward pass.
    embed_batch: usize = 32, "embed.batch";
    /// Passages returned by `search` and used by `ask`.
    k: usize = 10, "search.k";
    /// Candidates taken from each retriever before fusion.
    depth: usize = 300, "search.depth";
    /// How BM25 and dense lists are fused: convex (weighted sum of min-max normalised scores)
    /// or rrf (reciprocal rank fusion). Convex scored best on SciFact train.
    fusion: Fusion = Fusion::Convex, "search.fusion";
    /// The k constant of reciprocal rank fusion.
    rrf_k: f32 = 60.0, "search.rrf_k";
    /// Weight of the dense list in fusion (BM25 has weight 1); tuned on SciFact train.
    dense_weight: f32 = 0.7, "search.dense_weight";
    /// BM25 weight of a match in the heading path, on top of the match in the text (a title
    /// line is part of its passage's text too); tuned on SciFact train.
    heading_boost: f32 = 0.25, "search.heading_boost";
    /// BM25 boost of file-name terms.
    name_boost: f32 = 1.0, "search.name_boost";
    /// Row count above which the vector table gets an approximate (IVF-PQ) index.
    ann_threshold: usize = 50_000, "search.ann_threshold";
    /// Most tokens an answer may have.
    max_tokens: usize = 512, "generate.max_tokens";
    /// Sampling temperature; 0 is greedy (reproducible).
    temperature: f32 = 0.0, "generate.temperature";
    /// Nucleus sampling threshold.
    top_p: f32 = 0.9, "generate.top_p";
    /// Sampling seed.
    seed: u64 = 42, "generate.seed";
    /// Run Q4_1/Q5_0/Q5_1 weights as Q8_0 (several times faster on the CPU; equal within
    /// Q8_0's rounding). `false` runs them exactly as stored.
    requantize: bool = true, "generate.requantize";
    /// Penalty on repeating recent tokens (1 disables it).
    repeat_penalty: f32 = 1.1, "generate.repeat_penalty";
    /// Passages `ask` gives the model (fewer when the context cannot hold them).
    answer_passages: usize = 5, "answer.passages";
    /// `ask` abstains without asking the model when no passage is this similar to the question
    /// (cosine, all-MiniLM-L6-v2): nothing in the folder is about it. A floor for clearly
    /// off-topic questions; `answer.min_answerable` decides the rest. (`folio eval --split train
    /// --calibrate` shows where SciFact's claims fall.)
    min_relevance: f32 = 0.2, "answer.min_relevance";
    /// `ask` abstains without asking the model when its estimate that the passages answer the
    /// question (retrieval similarity, evidence score, the best span's similarity and term
    /// coverage, the kind of answer asked for) is below this. Tuned on the development QA set.
    min_answerable: f32 = 0.3, "answer.min_answerable";
    /// An answer sentence counts as supported by a passage sentence at this score or above.
    min_support: f32 = 0.5, "answer.min_support";
    /// When the model's answer is unsupported (or it says the documents do not say), the
    /// evidence is shown as the answer if the estimate that the passages answer the question
    /// is at least this; below it, `ask` abstains. Tuned on the development QA set.
    min_evidence: f32 = 0.38, "answer.min_evidence";
    /// Evidence spans shown first and given to the model.
    evidence_spans: usize = 3, "answer.evidence_spans";
    /// At most this many of the best evidence spans are quoted as the answer when the
    /// evidence leads (those scoring nearly as well as the best).
    lead_spans: usize = 3, "answer.lead_spans";
    /// Sentences of context on each side of an evidence span in the model's prompt.
    evidence_window: usize = 1, "answer.evidence_window";
    /// Where `folio serve` listens for HTTP. An address beyond this machine needs
    /// `serve.token`.
    serve_listen: String = "127.0.0.1:8484".into(), "serve.listen";
    /// The bearer token HTTP clients of `folio serve` must send (`Authorization: Bearer ...`);
    /// empty: none asked on loopback. Best set as FOLIO_SERVE_TOKEN, not in the file.
    serve_token: String = String::new(), "serve.token";
    /// Questions that may wait for the model in `folio serve`; more are refused (HTTP 503).
    serve_queue: usize = 4, "serve.queue";
}

impl Settings {
    /// Where `key`'s value came from.
    pub fn source(&self, key: &str) -> Origin {
        self.sources.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Defaults, then the config file, then `FOLIO_*` variables from `env`. Flags come after,
    /// through [`Settings::set`] with [`Origin::Flag`].
    pub fn load(
        dirs: &Dirs,
        config_file: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut s = Settings::defaults(dirs);
        let explicit = config_file.is_some();
        let path = config_file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dirs.config_file.clone());
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                s.apply_toml(&path, &text)?;
                s.config_file = Some(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
            Err(source) => return Err(ConfigError::Read { path, source }),
        }
        s.apply_env(env)?;
        Ok(s)
    }

    fn apply_toml(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let origin = Origin::File(path.to_path_buf());
        for (section, value) in &table {
            let toml::Value::Table(inner) = value else {
                return Err(ConfigError::UnknownKey {
                    origin: origin.to_string(),
                    key: section.clone(),
                });
            };
            for (name, v) in inner {
                let raw = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => f.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => other.to_string(),
                };
                self.set(&format!("{section}.{name}"), &raw, origin.clone())?;
            }
        }
        Ok(())
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        for (name, raw) in env {
            // FOLIO_MODELS is the documented short form for the model cache.
            let key = if name == "FOLIO_MODELS" {
                Some("models.dir")
            } else {
                Self::KEYS.iter().copied().find(|k| env_name(k) == *name)
            };
            if let Some(key) = key {
                self.set(key, raw, Origin::Env(name.clone()))?;
            }
        }
        Ok(())
    }
}

/// The environment variable that sets `key`: `chunk.tokens` → `FOLIO_CHUNK_TOKENS`.
pub fn env_name(key: &str) -> String {
    format!("FOLIO_{}", key.replace('.', "_").to_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(t: &Path) -> Dirs {
        Dirs {
            config_file: t.join("config.toml"),
            data: t.join("data"),
            cache: t.join("cache"),
        }
    }

    #[test]
    fn layers_override_in_order() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        std::fs::write(
            &d.config_file,
            "[chunk]\ntokens = 150\noverlap = 10\n[search]\nfusion = \"convex\"\n",
        )
        .unwrap();
        let env = vec![
            ("FOLIO_CHUNK_TOKENS".to_string(), "120".to_string()),
            ("FOLIO_MODELS".to_string(), "/m".to_string()),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let mut s = Settings::load(&d, None, &env).unwrap();
        assert_eq!(s.chunk_tokens, 120);
        assert_eq!(
            s.source("chunk.tokens"),
            Origin::Env("FOLIO_CHUNK_TOKENS".into())
        );
        assert_eq!(s.chunk_overlap, 10);
        assert!(matches!(s.source("chunk.overlap"), Origin::File(_)));
        assert_eq!(s.fusion, Fusion::Convex);
        assert_eq!(s.models_dir, PathBuf::from("/m"));
        assert_eq!(s.k, 10);
        assert_eq!(s.source("search.k"), Origin::Default);
        s.set("chunk.tokens", "100", Origin::Flag).unwrap();
        assert_eq!(s.chunk_tokens, 100);
        assert_eq!(s.index_dir, t.path().join("data/index"));
    }

    #[test]
    fn bad_values_and_keys_name_their_origin() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        std::fs::write(&d.config_file, "[chunk]\ntokenz = 3\n").unwrap();
        let e = Settings::load(&d, None, &[]).unwrap_err().to_string();
        assert!(
            e.contains("chunk.tokenz") && e.contains("config.toml"),
            "{e}"
        );
        std::fs::remove_file(&d.config_file).unwrap();
        let env = vec![("FOLIO_SEARCH_K".to_string(), "many".to_string())];
        let e = Settings::load(&d, None, &env).unwrap_err().to_string();
        assert!(e.contains("FOLIO_SEARCH_K") && e.contains("many"), "{e}");
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        let d = dirs(t.path());
        assert!(Settings::load(&d, Some(&t.path().join("nope.toml")), &[]).is_err());
        assert!(Settings::load(&d, None, &[]).is_ok());
    }

    #[test]
    fn ocr_modes_parse_by_name() {
        assert_eq!(OcrMode::from_name(" Auto "), Ok(OcrMode::Auto));
        assert_eq!(OcrMode::from_name("off").map(OcrMode::name), Ok("off"));
        assert!(OcrMode::from_name("always").is_err());
    }

    #[test]
    fn every_key_has_an_env_name() {
        assert_eq!(env_name("search.rrf_k"), "FOLIO_SEARCH_RRF_K");
        assert_eq!(
            Settings::KEYS.len(),
            Settings::defaults(&dirs(Path::new("/x"))).entries().len()
        );
    }
}
