//! Retrieval: BM25, dense or hybrid search over an [`Index`], with filters by path and type.
//!
//! Hybrid search runs both retrievers to `depth` candidates each and fuses the lists
//! ([`super::fusion`]); the top `k` are then read back from the BM25 store as [`Passage`]s, the
//! object that `folio search --json` and `folio ask --json` print.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde::Serialize;

use super::bm25::{Boosts, Restrict};
use super::{Index, IndexError};
use crate::config::Settings;
use crate::embed::Embedder;
use crate::fusion::{Fusion, Ranked, convex, rrf};

/// Which retrievers a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retrievers {
    Bm25,
    Dense,
    Hybrid,
}

impl Retrievers {
    /// The name `--mode` takes.
    pub fn name(self) -> &'static str {
        match self {
            Retrievers::Bm25 => "bm25",
            Retrievers::Dense => "dense",
            Retrievers::Hybrid => "hybrid",
        }
    }
}

impl FromStr for Retrievers {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bm25" => Ok(Retrievers::Bm25),
            "dense" => Ok(Retrievers::Dense),
            "hybrid" => Ok(Retrievers::Hybrid),
            o => Err(format!("unknown mode {o} (bm25, dense or hybrid)")),
        }
    }
}

/// Which files a search may return.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Glob over the absolute path (`**/contracts/*.pdf`).
    pub path_glob: Option<String>,
    /// File extensions, without the dot, case-insensitive.
    pub ext: Vec<String>,
    /// Files left out, by their absolute paths (as if the folder did not hold them).
    pub exclude: Vec<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.path_glob.is_none() && self.ext.is_empty() && self.exclude.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub mode: Retrievers,
    pub k: usize,
    pub depth: usize,
    pub fusion: Fusion,
    pub rrf_k: f32,
    pub dense_weight: f32,
    pub boosts: Boosts,
    pub filter: Filter,
    /// Skip the ANN index even when there is one (for measuring its recall).
    pub exact: bool,
}

impl SearchOptions {
    pub fn from_settings(s: &Settings, mode: Retrievers) -> Self {
        SearchOptions {
            mode,
            k: s.k,
            depth: s.depth,
            fusion: s.fusion,
            rrf_k: s.rrf_k,
            dense_weight: s.dense_weight,
            boosts: Boosts {
                heading: s.heading_boost,
                name: s.name_boost,
            },
            filter: Filter::default(),
            exact: false,
        }
    }
}

/// A retrieved passage: the object of the scripting interface.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Passage {
    /// Absolute path of the file.
    pub path: String,
    /// 1-based page for PDFs.
    pub page: Option<u32>,
    pub heading: Vec<String>,
    /// Passage id, as 16 hex digits.
    pub chunk: String,
    /// Character offsets of `text` in the extracted text of its page (or file).
    pub span: [usize; 2],
    pub score: f32,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("invalid --path glob: {0}")]
    Glob(String),
    #[error("embedding the query")]
    Embed(#[from] crate::embed::EmbedError),
    #[error("dense search needs the embedding model")]
    NoEmbedder,
    #[error("{0} passages asked for; at most {MAX_K} can be returned")]
    TooMany(usize),
}

/// The most passages one search returns (or reads per retriever): the stores reserve room
/// for every hit up front, so an absurd number would abort the process.
pub const MAX_K: usize = 10_000;

impl Index {
    /// The paths a filter admits, or `None` when it admits everything.
    fn allowed_paths(&self, filter: &Filter) -> Result<Option<Vec<String>>, SearchError> {
        if filter.is_empty() {
            return Ok(None);
        }
        let glob = match &filter.path_glob {
            Some(g) => Some(
                globset::GlobBuilder::new(g)
                    .literal_separator(false)
                    .build()
                    .map_err(|e| SearchError::Glob(e.to_string()))?
                    .compile_matcher(),
            ),
            None => None,
        };
        let exts: Vec<String> = filter
            .ext
            .iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect();
        let paths = self
            .manifest
            .files
            .keys()
            .filter(|p| glob.as_ref().is_none_or(|g| g.is_match(p.as_str())))
            .filter(|p| {
                exts.is_empty()
                    || Path::new(p.as_str())
                        .extension()
                        .map(|e| e.to_string_lossy().to_ascii_lowercase())
                        .is_some_and(|e| exts.contains(&e))
            })
            .filter(|p| !filter.exclude.contains(p))
            .cloned()
            .collect();
        Ok(Some(paths))
    }

    /// Ranked passage ids with fused scores, best first, at most `opts.k`.
    pub fn search_ids(
        &self,
        embedder: Option<&Embedder>,
        query: &str,
        opts: &SearchOptions,
    ) -> Result<Vec<(u64, f32)>, SearchError> {
        if opts.k > MAX_K || opts.depth > MAX_K {
            return Err(SearchError::TooMany(opts.k.max(opts.depth)));
        }
        let allowed = self.allowed_paths(&opts.filter)?;
        if allowed.as_ref().is_some_and(|a| a.is_empty()) {
            return Ok(Vec::new());
        }
        let restrict = Restrict {
            paths: allowed.clone(),
        };
        let depth = opts.depth.max(opts.k);
        let bm25 = |limit| self.bm25.search(query, limit, opts.boosts, &restrict);
        let dense = |limit| -> Result<Vec<(u64, f32)>, SearchError> {
            let e = embedder.ok_or(SearchError::NoEmbedder)?;
            let v = e.embed_query(query)?;
            Ok(self
                .vectors
                .search(&v, limit, allowed.as_deref(), opts.exact)
                .map_err(IndexError::from)?)
        };
        let mut hits = match opts.mode {
            Retrievers::Bm25 => bm25(opts.k).map_err(IndexError::from)?,
            Retrievers::Dense => dense(opts.k)?,
            Retrievers::Hybrid => {
                let b = bm25(depth).map_err(IndexError::from)?;
                let d = dense(depth)?;
                let lists = [
                    Ranked {
                        hits: &b,
                        weight: 1.0,
                    },
                    Ranked {
                        hits: &d,
                        weight: opts.dense_weight,
                    },
                ];
                match opts.fusion {
                    Fusion::Rrf => rrf(&lists, opts.rrf_k),
                    Fusion::Convex => convex(&lists),
                }
            }
        };
        hits.truncate(opts.k);
        Ok(hits)
    }

    /// Reads passages back for ranked ids.
    pub fn passages(&self, hits: &[(u64, f32)]) -> Result<Vec<Passage>, SearchError> {
        let mut out = Vec::with_capacity(hits.len());
        for &(id, score) in hits {
            let Some(c) = self.bm25.get(id).map_err(IndexError::from)? else {
                continue;
            };
            out.push(Passage {
                path: c.path,
                page: c.page,
                heading: c.heading,
                chunk: format!("{id:016x}"),
                span: [c.start, c.end],
                score,
                text: c.text,
            });
        }
        Ok(out)
    }

    /// Searches and reads back the passages.
    pub fn search(
        &self,
        embedder: Option<&Embedder>,
        query: &str,
        opts: &SearchOptions,
    ) -> Result<Vec<Passage>, SearchError> {
        let hits = self.search_ids(embedder, query, opts)?;
        self.passages(&hits)
    }

    /// How relevant the index is to `query` at all: the cosine similarity of its nearest
    /// passage (among those `filter` admits) in the embedder's space. `ask`'s relevance gate
    /// compares it with `answer.min_relevance`, which `folio eval --calibrate` measures the
    /// same way.
    pub fn relevance(
        &self,
        embedder: &Embedder,
        query: &str,
        filter: &Filter,
    ) -> Result<f32, SearchError> {
        let allowed = self.allowed_paths(filter)?;
        let q = embedder.embed_query(query)?;
        let best = self
            .vectors
            .search(&q, 1, allowed.as_deref(), false)
            .map_err(IndexError::from)?;
        Ok(best.first().map(|h| h.1).unwrap_or(0.0))
    }

    /// Map from passage id to file path, from the manifest.
    pub fn id_paths(&self) -> HashMap<u64, &str> {
        let mut out = HashMap::new();
        for (path, rec) in &self.manifest.files {
            for id in rec.chunk_ids(path) {
                out.insert(id, path.as_str());
            }
        }
        out
    }
}
