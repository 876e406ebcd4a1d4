//! The manifest: which files the index holds, as both indexes committed them.
//!
//! For every indexed file it records size, modification time, content hash and the number of
//! passages; passage ids are derived from (path, hash, ordinal) by [`chunk_id`], so the ids of a
//! file's passages are known without storing them. It also keeps the root folders, the files
//! skipped or failed with their reasons, and a summary of the last run. It is replaced
//! atomically after each batch, and only after tantivy and LanceDB have both committed.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::doc::Kind;

/// A file whose passages are in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub kind: Kind,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime: i64,
    /// Hex SHA-256 of the file's bytes (or of an inline document's text).
    pub hash: String,
    pub chunks: u32,
    /// The extractor that read a PDF (`pdf-extract` or its fallback `pdf_oxide`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extractor: Option<String>,
    /// The pages of a PDF whose text was recognised from their image (1-based).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recognised: Vec<u32>,
}

impl FileRecord {
    /// Ids of this file's passages, in order.
    pub fn chunk_ids(&self, path: &str) -> Vec<u64> {
        (0..self.chunks)
            .map(|o| chunk_id(path, &self.hash, o))
            .collect()
    }
}

/// A file that is not in the index, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `skipped` (folio chose not to read it) or `failed` (it could not).
    pub status: ProblemStatus,
    pub reason: String,
    pub size: u64,
    pub mtime: i64,
    /// The extractors that failed on it (`ingest::EXTRACTORS` of the build that judged it): a
    /// failed file is tried again once they change. Empty in manifests written before this was recorded.
    #[serde(default)]
    pub extractors: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemStatus {
    Skipped,
    Failed,
}

/// Counts of the last indexing run, for `folio status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Seconds since the Unix epoch when the run finished.
    pub finished: u64,
    pub seconds: f64,
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: usize,
    pub failed: usize,
    pub chunks_embedded: usize,
    pub chunks_reused: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Root folders, absolute and canonical.
    pub roots: Vec<String>,
    pub files: BTreeMap<String, FileRecord>,
    pub problems: BTreeMap<String, Problem>,
    pub last_run: Option<RunSummary>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged; move the index away and re-index")]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// The root folders as paths (the manifest keeps them as path keys).
    pub fn root_paths(&self) -> Vec<std::path::PathBuf> {
        self.roots
            .iter()
            .map(|r| crate::fsutil::key_path(r))
            .collect()
    }

    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| ManifestError::Corrupt {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(source) => Err(ManifestError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), ManifestError> {
        let bytes = serde_json::to_vec(self).map_err(|source| ManifestError::Corrupt {
            path: path.display().to_string(),
            source,
        })?;
        crate::fsutil::write_atomic(path, &bytes).map_err(|source| ManifestError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Total passages of all files.
    pub fn chunk_count(&self) -> u64 {
        self.files.values().map(|f| f.chunks as u64).sum()
    }

    /// Adds `root` unless it or a folder above it is already a root; drops roots below it.
    pub fn add_root(&mut self, root: &str) {
        if self.roots.iter().any(|r| is_under(root, r)) {
            return;
        }
        self.roots.retain(|r| !is_under(r, root));
        self.roots.push(root.to_string());
        self.roots.sort();
    }
}

/// Whether `path` is `root` or lies below it.
pub fn is_under(path: &str, root: &str) -> bool {
    path == root
        || (path.starts_with(root)
            && (root.ends_with('/') || path.as_bytes().get(root.len()) == Some(&b'/')))
}

/// A set of folders that answers [`is_under`] for any of them in time proportional to the
/// path's depth, not to the number of folders (a `git checkout` can name thousands).
pub struct Folders<'a>(HashSet<&'a str>);

impl<'a> Folders<'a> {
    pub fn new(folders: &'a [String]) -> Self {
        // "/" becomes "", the prefix of every absolute path before its first slash.
        Folders(folders.iter().map(|f| f.trim_end_matches('/')).collect())
    }

    /// `path` is one of the folders or lies below one.
    pub fn contain(&self, path: &str) -> bool {
        self.0.contains(path)
            || path
                .match_indices('/')
                .any(|(i, _)| self.0.contains(&path[..i]))
    }
}

/// The id of passage `ordinal` of the file at `path` with content `hash`. Stable across runs,
/// distinct across paths, and changed by any edit of the file.
pub fn chunk_id(path: &str, hash: &str, ordinal: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(path.as_bytes());
    h.update([0]);
    h.update(hash.as_bytes());
    h.update(ordinal.to_le_bytes());
    let d = h.finalize();
    // Top bit clear: ids stay positive wherever they pass through signed integers.
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]) & (u64::MAX >> 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_nest() {
        let mut m = Manifest::default();
        m.add_root("/a/b");
        m.add_root("/a/b/c");
        assert_eq!(m.roots, vec!["/a/b"]);
        m.add_root("/a/bc");
        m.add_root("/a");
        assert_eq!(m.roots, vec!["/a"]);
        assert!(is_under("/a/b/x.md", "/a/b"));
        assert!(!is_under("/a/bc/x.md", "/a/b"));
        assert!(is_under("/x", "/"));
        let folders: Vec<String> = ["/a/b", "/c/", "/d/e.md"].map(String::from).to_vec();
        let f = Folders::new(&folders);
        for p in [
            "/a/b",
            "/a/b/x.md",
            "/a/bc/x.md",
            "/a",
            "/c/y",
            "/d/e.md",
            "/d/e.mdx",
            "/z",
        ] {
            assert_eq!(f.contain(p), folders.iter().any(|r| is_under(p, r)), "{p}");
        }
        let root = vec!["/".to_string()];
        assert!(Folders::new(&root).contain("/any/where"));
    }

    #[test]
    fn chunk_ids_depend_on_path_hash_and_ordinal() {
        let a = chunk_id("/x.md", "h1", 0);
        assert_eq!(a, chunk_id("/x.md", "h1", 0));
        assert_ne!(a, chunk_id("/y.md", "h1", 0));
        assert_ne!(a, chunk_id("/x.md", "h2", 0));
        assert_ne!(a, chunk_id("/x.md", "h1", 1));
        assert!(a < 1 << 63);
    }

    #[test]
    fn round_trip() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("manifest.json");
        assert_eq!(Manifest::load(&p).unwrap(), Manifest::default());
        let mut m = Manifest::default();
        m.files.insert(
            "/a.md".into(),
            FileRecord {
                kind: Kind::Markdown,
                size: 3,
                mtime: 5,
                hash: "ab".into(),
                chunks: 2,
                extractor: None,
                recognised: Vec::new(),
            },
        );
        m.save(&p).unwrap();
        assert_eq!(Manifest::load(&p).unwrap(), m);
        assert_eq!(m.chunk_count(), 2);
        std::fs::write(&p, "{not json").unwrap();
        assert!(
            Manifest::load(&p)
                .unwrap_err()
                .to_string()
                .contains("damaged")
        );
    }
}
