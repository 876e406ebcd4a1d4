//! The index: BM25 ([`bm25`]) and vectors ([`vectors`]) over the same passages, and the
//! [`manifest`] of files both have committed.
//!
//! On disk (see `index/README.md`): `folio-index.json` (format version, embedding model,
//! chunking), `manifest.json`, `bm25/` (tantivy), `vectors/` (LanceDB), `LOCK` (one writer at a
//! time) and, only while a batch is being written, `journal.json`. A batch is applied in a fixed
//! order (journal, vectors, BM25, manifest, journal removed), so after a crash at any point the
//! journal names the files whose state is uncertain; opening the index for writing removes their
//! passages from both indexes and from the manifest, and the next scan indexes them again. A
//! count check on open catches anything else and repairs it passage by passage.

pub mod bm25;
pub mod manifest;
pub mod progress;
pub mod search;
pub mod vectors;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::doc::Chunk;
use crate::embed::ModelInfo;
use bm25::Bm25;
use manifest::{FileRecord, Manifest, Problem};
use vectors::{VectorRow, Vectors};

/// Version of the on-disk layout; an index of another version is refused, not misread.
pub const FORMAT_VERSION: u32 = 1;
/// The file that marks a folder as a folio index (and keeps the walk out of it).
pub const MARKER: &str = crate::doc::INDEX_MARKER;
const MANIFEST: &str = "manifest.json";
const JOURNAL: &str = "journal.json";
const LOCK: &str = "LOCK";
/// Written first into a folder folio creates or adopts: only such a folder is ever cleared.
const OWNER: &str = "folio-index.owner";

/// How passages were cut. An index remembers it: files are re-chunked when it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunking {
    /// `passages` (structure-following chunks) or `whole` (one passage per unit, as MTEB).
    pub mode: String,
    pub target: usize,
    pub overlap: usize,
    pub max: usize,
}

/// The contents of [`MARKER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    pub embed: ModelInfo,
    pub chunking: Chunking,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(
        "the index at {} was built with the embedding model {} ({} dimensions, sha256 {:.12}); the current model is {} ({} dimensions, sha256 {:.12}). Search with the model it was built with (--embed-model), or re-embed everything with `folio index --reembed`",
        .0.dir, .0.built.name, .0.built.dim, .0.built.sha256, .0.current.name, .0.current.dim, .0.current.sha256
    )]
    ModelMismatch(Box<Mismatch>),
    #[error(
        "the index at {dir} has format version {found}; this folio reads version {FORMAT_VERSION}. Re-index into a new folder"
    )]
    Format { dir: String, found: u32 },
    #[error("no index at {0} (run `folio index DIR` first)")]
    Missing(String),
    #[error(
        "the index folder {0} has a path that is not UTF-8; LanceDB opens folders by text, so \
         the index must live elsewhere (--index DIR)"
    )]
    NotUtf8(String),
    #[error(
        "the index at {dir} is being written by another process ({holder}); wait for it to finish or stop it"
    )]
    Locked { dir: String, holder: String },
    #[error(transparent)]
    Bm25(#[from] bm25::Bm25Error),
    #[error(transparent)]
    Vectors(#[from] vectors::VectorError),
    #[error(transparent)]
    Manifest(#[from] manifest::ManifestError),
    /// A file of the index could not be read or written; the cause says why.
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: crate::Cause,
    },
}

/// Refuses an index folder whose path is not text before anything is created: the vector
/// store would otherwise open (and create) a lossy twin of it.
fn text_path(dir: &Path) -> Result<(), IndexError> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    match absolute.to_str() {
        Some(_) => Ok(()),
        None => Err(IndexError::NotUtf8(crate::shown::name(
            &crate::fsutil::path_key(dir),
        ))),
    }
}

fn io_err(path: &Path, e: impl Into<crate::Cause>) -> IndexError {
    IndexError::Io {
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// A file (re)indexed in a batch, with its passages and their vectors.
#[derive(Debug, Clone)]
pub struct Upsert {
    pub path: String,
    pub record: FileRecord,
    pub chunks: Vec<Chunk>,
    /// Hash of each passage's embedded text.
    pub hashes: Vec<String>,
    pub vectors: Vec<Vec<f32>>,
}

/// Everything one commit changes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Files gone from disk: their passages and records leave the index.
    pub remove: Vec<String>,
    pub upsert: Vec<Upsert>,
    /// Files whose content is unchanged but whose size or time changed: manifest only.
    pub touch: Vec<(String, FileRecord)>,
    /// Files now skipped or failed; any passages they had leave the index.
    pub problems: Vec<(String, Problem)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.upsert.is_empty()
            && self.touch.is_empty()
            && self.problems.is_empty()
    }

    /// Adds `other`'s changes to this batch, to commit them together.
    pub fn merge(&mut self, other: Batch) {
        self.remove.extend(other.remove);
        self.upsert.extend(other.upsert);
        self.touch.extend(other.touch);
        self.problems.extend(other.problems);
    }
}

/// The steps of [`Index::commit`], in the order they run. A crash after any of them must leave
/// an index that opens and repairs itself; the tests stop a commit after each one in turn.
/// The steps of a commit (and the open before it) where a test can make the index fail, as a
/// full disk or a crash would: see [`failpoint`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Opening the index for writing.
    Open,
    JournalWritten,
    VectorsDeleted,
    VectorsAdded,
    /// BM25 changes made but not committed (lost in a crash).
    Bm25Written,
    Bm25Committed,
    /// The manifest saved, the journal not yet removed.
    ManifestSaved,
}

/// Failpoints for tests, keyed by index directory so that tests running side by side do not
/// trip each other: `arm(dir, step)` makes every open or commit of that index fail at `step`
/// until `disarm(dir)`. The watcher's recovery and back-off are tested through them. Nothing
/// arms them outside tests; the check is one lock on an empty list.
#[doc(hidden)]
pub mod failpoint {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use super::Step;

    static ARMED: Mutex<Vec<(PathBuf, Step)>> = Mutex::new(Vec::new());

    fn key(dir: &Path) -> PathBuf {
        std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
    }

    pub fn arm(dir: &Path, step: Step) {
        if let Ok(mut a) = ARMED.lock() {
            a.push((key(dir), step));
        }
    }

    pub fn disarm(dir: &Path) {
        let dir = key(dir);
        if let Ok(mut a) = ARMED.lock() {
            a.retain(|(d, _)| *d != dir);
        }
    }

    pub(super) fn armed(dir: &Path, step: Step) -> bool {
        let Ok(a) = ARMED.lock() else { return false };
        !a.is_empty() && a.iter().any(|(d, s)| *s == step && *d == key(dir))
    }
}

/// Ends the open or commit of the index at `dir` with an error at `step` when a test armed it.
fn reached(dir: &Path, step: Step) -> Result<(), IndexError> {
    if failpoint::armed(dir, step) {
        return Err(io_err(
            Path::new("failpoint"),
            format!("stopped after {step:?}"),
        ));
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct Journal {
    paths: Vec<String>,
}

pub struct Index {
    dir: PathBuf,
    meta: Meta,
    manifest: Manifest,
    bm25: Bm25,
    vectors: Vectors,
    /// Modification time and size of the manifest file as last read (readers only).
    manifest_stamp: Option<(std::time::SystemTime, u64)>,
    /// Held while this handle may write; the OS releases it if the process dies.
    _lock: Option<WriterLock>,
}

/// Modification time and size of a file, to notice that another process rewrote it.
fn file_stamp(p: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

fn read_meta(dir: &Path) -> Result<Option<Meta>, IndexError> {
    let p = dir.join(MARKER);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| io_err(&p, e))?;
            let found = v["format_version"].as_u64().unwrap_or(0) as u32;
            if found != FORMAT_VERSION {
                return Err(IndexError::Format {
                    dir: dir.display().to_string(),
                    found,
                });
            }
            Ok(Some(serde_json::from_value(v).map_err(|e| io_err(&p, e))?))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&p, e)),
    }
}

fn write_meta(dir: &Path, meta: &Meta) -> Result<(), IndexError> {
    let p = dir.join(MARKER);
    let bytes = serde_json::to_vec_pretty(meta).map_err(|e| io_err(&p, e))?;
    crate::fsutil::write_atomic(&p, &bytes).map_err(|e| io_err(&p, e))
}

/// The writer's flock on `LOCK`, released explicitly when dropped. Closing the file alone is
/// not enough: a child process forked at that moment by another thread (tests and the TUI
/// spawn processes) holds a duplicate of the descriptor until it execs, and with it the lock,
/// so the next writer of this process would be refused. Unlocking releases it for every
/// duplicate.
#[derive(Debug)]
struct WriterLock(File);

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

fn take_lock(dir: &Path) -> Result<WriterLock, IndexError> {
    use std::io::{Read, Seek, Write};
    let p = dir.join(LOCK);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&p)
        .map_err(|e| io_err(&p, e))?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = match holder.trim() {
                "" => "unknown process".to_string(),
                pid => format!("pid {pid}"),
            };
            return Err(IndexError::Locked {
                dir: dir.display().to_string(),
                holder,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&p, e)),
    }
    // The lock is the flock, not the file's contents; the pid only helps the message above.
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "{}", std::process::id());
    let _ = f.flush();
    Ok(WriterLock(f))
}

impl Index {
    /// Opens (or creates) the index in `dir` for writing, for passages embedded by `embed`.
    /// With `reembed`, an index built by another model is emptied instead of refused.
    pub fn open_writer(
        dir: &Path,
        embed: &ModelInfo,
        chunking: &Chunking,
        reembed: bool,
    ) -> Result<Index, IndexError> {
        text_path(dir)?;
        claim(dir)?;
        reached(dir, Step::Open)?;
        // Every open for writing: the index holds the text and paths of private documents.
        crate::fsutil::make_private(dir).map_err(|e| io_err(dir, e))?;
        let lock = take_lock(dir)?;
        let existing = read_meta(dir)?;
        let fresh = Meta {
            format_version: FORMAT_VERSION,
            embed: embed.clone(),
            chunking: chunking.clone(),
            created: crate::fsutil::now_secs(),
        };
        // The marker is written last, once both stores exist: a folder with a marker is
        // always an index that opens, whenever a crash comes.
        let (meta, new) = match &existing {
            Some(m) if same_model(&m.embed, embed) => (m.clone(), false),
            Some(m) if !reembed => {
                return Err(mismatch(dir, &m.embed, embed));
            }
            // Re-embedding: vectors of the old model are worthless, and passages are cut in the
            // new model's tokens, so both indexes start over. Without a marker, whatever is
            // here was never committed (or is a re-embedding cut short): start over too.
            // Either way the roots are kept.
            _ => {
                let marker = dir.join(MARKER);
                if marker.exists() {
                    std::fs::remove_file(&marker).map_err(|e| io_err(&marker, e))?;
                }
                let roots = Manifest::load(&dir.join(MANIFEST))?.roots;
                for sub in ["bm25", "vectors"] {
                    let p = dir.join(sub);
                    if p.exists() {
                        std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))?;
                    }
                }
                let _ = std::fs::remove_file(dir.join(JOURNAL));
                let manifest = Manifest {
                    roots,
                    ..Default::default()
                };
                manifest.save(&dir.join(MANIFEST))?;
                (fresh, true)
            }
        };
        let bm25 = Bm25::open(&dir.join("bm25"), true)?;
        let vectors = Vectors::open(&dir.join("vectors"), meta.embed.dim, true)?;
        if new {
            write_meta(dir, &meta)?;
        }
        let manifest = Manifest::load(&dir.join(MANIFEST))?;
        let mut index = Index {
            dir: dir.to_path_buf(),
            meta,
            manifest,
            bm25,
            vectors,
            manifest_stamp: None,
            _lock: Some(lock),
        };
        index.recover()?;
        Ok(index)
    }

    /// Opens the index in `dir` for searching. Another process may be writing it.
    pub fn open_reader(dir: &Path) -> Result<Index, IndexError> {
        text_path(dir)?;
        let meta = read_meta(dir)?.ok_or_else(|| IndexError::Missing(dir.display().to_string()))?;
        let bm25 = Bm25::open(&dir.join("bm25"), false)?;
        let vectors = Vectors::open(&dir.join("vectors"), meta.embed.dim, false)?;
        // Stamp first, then read: a save in between is picked up by the next refresh.
        let manifest_stamp = file_stamp(&dir.join(MANIFEST));
        let manifest = Manifest::load(&dir.join(MANIFEST))?;
        Ok(Index {
            dir: dir.to_path_buf(),
            meta,
            manifest,
            bm25,
            vectors,
            manifest_stamp,
            _lock: None,
        })
    }

    /// Refuses a query model other than the one the index was built with.
    pub fn check_model(&self, embed: &ModelInfo) -> Result<(), IndexError> {
        if same_model(&self.meta.embed, embed) {
            Ok(())
        } else {
            Err(mismatch(&self.dir, &self.meta.embed, embed))
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn bm25(&self) -> &Bm25 {
        &self.bm25
    }

    pub fn vectors(&self) -> &Vectors {
        &self.vectors
    }

    /// Records `root` as a root folder (saved with the next commit).
    pub fn add_root(&mut self, root: &str) {
        self.manifest.add_root(root);
    }

    /// Vectors already stored for these embedded-text hashes.
    pub fn lookup_vectors(&self, hashes: &[&str]) -> Result<HashMap<String, Vec<f32>>, IndexError> {
        Ok(self.vectors.lookup_hashes(hashes)?)
    }

    /// Applies a batch to both indexes and then to the manifest.
    pub fn commit(&mut self, batch: Batch) -> Result<(), IndexError> {
        let mut affected: Vec<&str> = batch.remove.iter().map(String::as_str).collect();
        affected.extend(batch.upsert.iter().map(|u| u.path.as_str()));
        affected.extend(batch.problems.iter().map(|(p, _)| p.as_str()));
        // Paths with passages before this batch: only those need deleting.
        let had: Vec<&str> = affected
            .iter()
            .copied()
            .filter(|p| self.manifest.files.contains_key(*p))
            .collect();
        let journal = self.dir.join(JOURNAL);
        if !affected.is_empty() {
            let j = Journal {
                paths: affected.iter().map(|s| s.to_string()).collect(),
            };
            let bytes = serde_json::to_vec(&j).map_err(|e| io_err(&journal, e))?;
            crate::fsutil::write_atomic(&journal, &bytes).map_err(|e| io_err(&journal, e))?;
            reached(&self.dir, Step::JournalWritten)?;

            self.vectors.delete_paths(&had)?;
            reached(&self.dir, Step::VectorsDeleted)?;
            let mut rows = Vec::new();
            for u in &batch.upsert {
                let ids = u.record.chunk_ids(&u.path);
                for ((id, hash), vector) in ids.iter().zip(&u.hashes).zip(&u.vectors) {
                    rows.push(VectorRow {
                        id: *id,
                        path: u.path.clone(),
                        hash: hash.clone(),
                        vector: vector.clone(),
                    });
                }
            }
            self.vectors.add(&rows)?;
            reached(&self.dir, Step::VectorsAdded)?;

            for p in &had {
                self.bm25.delete_path(p)?;
            }
            for u in &batch.upsert {
                let ids = u.record.chunk_ids(&u.path);
                for (id, chunk) in ids.iter().zip(&u.chunks) {
                    self.bm25.add(*id, &u.path, chunk)?;
                }
            }
            reached(&self.dir, Step::Bm25Written)?;
            self.bm25.commit()?;
            reached(&self.dir, Step::Bm25Committed)?;
        }

        for p in &batch.remove {
            self.manifest.files.remove(p);
            self.manifest.problems.remove(p);
        }
        for u in batch.upsert {
            self.manifest.problems.remove(&u.path);
            self.manifest.files.insert(u.path, u.record);
        }
        for (p, r) in batch.touch {
            self.manifest.files.insert(p, r);
        }
        for (p, problem) in batch.problems {
            self.manifest.files.remove(&p);
            self.manifest.problems.insert(p, problem);
        }
        self.save_manifest()?;
        reached(&self.dir, Step::ManifestSaved)?;
        if journal.exists() {
            std::fs::remove_file(&journal).map_err(|e| io_err(&journal, e))?;
        }
        self.tighten();
        Ok(())
    }

    /// The stores create files with the process's umask; the folder is owner-only anyway, and
    /// every file in it is made so too.
    fn tighten(&self) {
        if let Err(e) = crate::fsutil::make_private(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), "making the index private: {e}");
        }
    }

    /// Saves the manifest as it is (roots, last run).
    pub fn save_manifest(&self) -> Result<(), IndexError> {
        Ok(self.manifest.save(&self.dir.join(MANIFEST))?)
    }

    /// Records the summary of a finished run and, for a run that re-read every file, the
    /// chunking all of them now have; then compacts the vector table and builds its ANN index
    /// once it holds more than `ann_threshold` rows.
    pub fn finish_run(
        &mut self,
        summary: manifest::RunSummary,
        chunking: Option<&Chunking>,
        changed: bool,
        ann_threshold: usize,
    ) -> Result<(), IndexError> {
        self.manifest.last_run = Some(summary);
        self.save_manifest()?;
        if let Some(chunking) = chunking
            && &self.meta.chunking != chunking
        {
            self.meta.chunking = chunking.clone();
            write_meta(&self.dir, &self.meta)?;
        }
        if changed {
            self.compact(ann_threshold)?;
        }
        self.tighten();
        Ok(())
    }

    /// Merges the vector table's small fragments (every commit adds one), brings its ANN index
    /// up to date, and builds one once the table holds more than `ann_threshold` rows.
    pub fn compact(&mut self, ann_threshold: usize) -> Result<(), IndexError> {
        if !self.vectors.has_ann_index() && self.vectors.count()? > ann_threshold {
            self.vectors.build_ann_index()?;
        }
        self.vectors.optimize()?;
        Ok(())
    }

    /// Makes the index agree with the manifest after an interruption: files named by a leftover
    /// journal, and any passage either index holds without the other, are removed (the next
    /// scan indexes those files again).
    fn recover(&mut self) -> Result<(), IndexError> {
        let journal = self.dir.join(JOURNAL);
        if let Ok(bytes) = std::fs::read(&journal) {
            let paths = serde_json::from_slice::<Journal>(&bytes)
                .map(|j| j.paths)
                .unwrap_or_default();
            tracing::warn!(
                files = paths.len(),
                "an interrupted batch left a journal; removing its files for re-indexing"
            );
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            self.vectors.delete_paths(&refs)?;
            for p in &paths {
                self.bm25.delete_path(p)?;
                self.manifest.files.remove(p);
            }
            self.bm25.commit()?;
            self.save_manifest()?;
            std::fs::remove_file(&journal).map_err(|e| io_err(&journal, e))?;
        }
        let expected = self.manifest.chunk_count();
        let in_bm25 = self.bm25.num_docs();
        let in_vectors = self.vectors.count()? as u64;
        if expected != in_bm25 || expected != in_vectors {
            tracing::warn!(
                expected,
                in_bm25,
                in_vectors,
                "index and manifest disagree; repairing"
            );
            self.repair()?;
        }
        Ok(())
    }

    /// Passage-level reconciliation of both indexes with the manifest.
    fn repair(&mut self) -> Result<(), IndexError> {
        let bm25_ids: HashMap<u64, String> = self.bm25.all_ids()?.into_iter().collect();
        let vec_ids: HashMap<u64, String> = self.vectors.all_ids()?.into_iter().collect();
        let mut expected: HashSet<u64> = HashSet::new();
        let mut broken: Vec<String> = Vec::new();
        for (path, rec) in &self.manifest.files {
            let ids = rec.chunk_ids(path);
            if ids
                .iter()
                .any(|id| !bm25_ids.contains_key(id) || !vec_ids.contains_key(id))
            {
                broken.push(path.clone());
            } else {
                expected.extend(ids);
            }
        }
        let mut bm25_orphans: Vec<u64> = bm25_ids
            .keys()
            .copied()
            .filter(|i| !expected.contains(i))
            .collect();
        let mut vec_orphans: Vec<u64> = vec_ids
            .keys()
            .copied()
            .filter(|i| !expected.contains(i))
            .collect();
        bm25_orphans.sort_unstable();
        vec_orphans.sort_unstable();
        for id in &bm25_orphans {
            self.bm25.delete_id(*id)?;
        }
        self.bm25.commit()?;
        self.vectors.delete_ids(&vec_orphans)?;
        for p in &broken {
            self.manifest.files.remove(p);
        }
        self.save_manifest()?;
        // Duplicated ids (the same passage written twice) show as a count above the unique ids.
        let dupes = self.vectors.count()? as u64 > expected.len() as u64
            || self.bm25.num_docs() > expected.len() as u64;
        if dupes {
            tracing::warn!("duplicate passages found; rewriting affected files on the next scan");
            // Dropping every file from the manifest is heavy-handed but always correct; it only
            // happens after corruption that the journal did not cover.
            let paths: Vec<String> = self.manifest.files.keys().cloned().collect();
            let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
            self.vectors.delete_paths(&refs)?;
            for p in &paths {
                self.bm25.delete_path(p)?;
            }
            self.bm25.commit()?;
            self.manifest.files.clear();
            self.save_manifest()?;
        }
        tracing::info!(
            bm25_orphans = bm25_orphans.len(),
            vector_orphans = vec_orphans.len(),
            files_to_reindex = broken.len(),
            "repair done"
        );
        Ok(())
    }

    /// Whether another process committed since this handle opened or last refreshed (one
    /// `stat` of the manifest, which every commit replaces).
    pub fn is_stale(&self) -> bool {
        file_stamp(&self.dir.join(MANIFEST)) != self.manifest_stamp
    }

    /// Picks up commits another process made since this handle opened (cheap when there
    /// are none).
    pub fn refresh(&mut self) -> Result<(), IndexError> {
        self.bm25.reload()?;
        self.vectors.refresh()?;
        let stamp = file_stamp(&self.dir.join(MANIFEST));
        if stamp != self.manifest_stamp {
            self.manifest = Manifest::load(&self.dir.join(MANIFEST))?;
            self.manifest_stamp = stamp;
        }
        Ok(())
    }
}

/// Makes sure folio owns `dir` before anything in it is created, changed or deleted: it
/// carries folio's marker or owner file, or it is new or empty (the repository's `index/`
/// folder may hold its README and .gitignore), and then gets an owner file. A folder that
/// merely looks like an index (`bm25/`, `vectors/`) is the user's: starting over there would
/// delete them.
fn claim(dir: &Path) -> Result<(), IndexError> {
    const BESIDE: &[&str] = &["README.md", ".gitignore"];
    if dir.join(MARKER).is_file() || dir.join(OWNER).is_file() {
        return Ok(());
    }
    if dir.exists() {
        let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
        for e in entries {
            let name = e.map_err(|e| io_err(dir, e))?.file_name();
            if !BESIDE.iter().any(|b| name == *b) {
                return Err(io_err(
                    dir,
                    format!(
                        "not a folio index and not empty (it holds {}); give --index a new or empty folder",
                        name.to_string_lossy()
                    ),
                ));
            }
        }
    }
    crate::fsutil::create_private_dir(dir).map_err(|e| io_err(dir, e))?;
    let p = dir.join(OWNER);
    crate::fsutil::write_atomic(&p, b"This folder is a folio index; folio may rewrite it.\n")
        .map_err(|e| io_err(&p, e))
}

/// The manifest an index in `dir` has committed last (cheap: no index is opened).
pub fn read_manifest(dir: &Path) -> Result<Manifest, IndexError> {
    Ok(Manifest::load(&dir.join(MANIFEST))?)
}

fn same_model(a: &ModelInfo, b: &ModelInfo) -> bool {
    a.dim == b.dim && a.sha256 == b.sha256
}

/// Which model built an index and which one tried to open it.
#[derive(Debug)]
pub struct Mismatch {
    pub dir: String,
    pub built: ModelInfo,
    pub current: ModelInfo,
}

fn mismatch(dir: &Path, built: &ModelInfo, current: &ModelInfo) -> IndexError {
    IndexError::ModelMismatch(Box::new(Mismatch {
        dir: dir.display().to_string(),
        built: built.clone(),
        current: current.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use manifest::{ProblemStatus, chunk_id};
    use sha2::{Digest, Sha256};

    const DIM: usize = 4;

    fn model() -> ModelInfo {
        ModelInfo {
            name: "test-encoder".into(),
            dim: DIM,
            sha256: "0".repeat(64),
            max_tokens: 64,
        }
    }

    fn chunking() -> Chunking {
        Chunking {
            mode: "passages".into(),
            target: 8,
            overlap: 0,
            max: 64,
        }
    }

    /// A file of one passage per text; its hash follows its content.
    fn upsert(path: &str, texts: &[&str]) -> Upsert {
        let hash = hex::encode(Sha256::digest(texts.join("\n").as_bytes()));
        let chunks: Vec<Chunk> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| Chunk {
                ordinal: i as u32,
                page: None,
                heading: Vec::new(),
                start: 0,
                end: t.len(),
                text: t.to_string(),
                context: String::new(),
            })
            .collect();
        Upsert {
            path: path.into(),
            record: FileRecord {
                kind: crate::doc::Kind::Text,
                size: texts.len() as u64,
                mtime: 1,
                hash,
                chunks: chunks.len() as u32,
                extractor: None,
                recognised: Vec::new(),
            },
            hashes: texts.iter().map(|t| format!("{:x}", t.len())).collect(),
            vectors: texts
                .iter()
                .map(|t| {
                    let b = t.as_bytes();
                    (0..DIM).map(|i| 1.0 + b[i % b.len()] as f32).collect()
                })
                .collect(),
            chunks,
        }
    }

    fn first_batch() -> Batch {
        Batch {
            upsert: vec![
                upsert("/r/a.txt", &["alpha apple", "alpha avocado"]),
                upsert("/r/b.txt", &["beta banana"]),
                upsert("/r/c.txt", &["gamma grape"]),
                upsert("/r/e.txt", &["epsilon elderberry"]),
            ],
            ..Default::default()
        }
    }

    /// Removes a, rewrites b, adds d, marks c failed; e is not touched.
    fn second_batch() -> Batch {
        Batch {
            remove: vec!["/r/a.txt".into()],
            upsert: vec![
                upsert("/r/b.txt", &["beta blueberry", "beta blackberry"]),
                upsert("/r/d.txt", &["delta date"]),
            ],
            touch: Vec::new(),
            problems: vec![(
                "/r/c.txt".into(),
                Problem {
                    status: ProblemStatus::Failed,
                    reason: "damaged".into(),
                    size: 1,
                    mtime: 1,
                    extractors: String::new(),
                },
            )],
        }
    }

    /// Both stores hold exactly the passages the manifest names, each under its path.
    fn assert_consistent(index: &Index) {
        let mut expected: Vec<(u64, String)> = index
            .manifest
            .files
            .iter()
            .flat_map(|(p, r)| r.chunk_ids(p).into_iter().map(|id| (id, p.clone())))
            .collect();
        expected.sort();
        let mut bm25 = index.bm25.all_ids().unwrap();
        bm25.sort();
        let mut vectors = index.vectors.all_ids().unwrap();
        vectors.sort();
        assert_eq!(bm25, expected, "BM25 holds what the manifest names");
        assert_eq!(
            vectors, expected,
            "the vector table holds what the manifest names"
        );
    }

    fn index_after_first_batch(dir: &Path) -> Index {
        let mut index = Index::open_writer(dir, &model(), &chunking(), false).unwrap();
        index.commit(first_batch()).unwrap();
        index
    }

    #[test]
    fn a_commit_stopped_after_any_step_leaves_an_index_that_recovers_and_catches_up() {
        let reference = tempfile::tempdir().unwrap();
        let mut done = index_after_first_batch(reference.path());
        done.commit(second_batch()).unwrap();
        assert_consistent(&done);
        let want = done.manifest.files.clone();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            ["/r/b.txt", "/r/d.txt", "/r/e.txt"]
        );

        for step in [
            Step::JournalWritten,
            Step::VectorsDeleted,
            Step::VectorsAdded,
            Step::Bm25Written,
            Step::Bm25Committed,
            Step::ManifestSaved,
        ] {
            let tmp = tempfile::tempdir().unwrap();
            let mut index = index_after_first_batch(tmp.path());
            let untouched = index.manifest.files["/r/e.txt"].clone();
            failpoint::arm(tmp.path(), step);
            let stopped = index.commit(second_batch());
            failpoint::disarm(tmp.path());
            assert!(stopped.is_err(), "{step:?}: the failpoint fired");
            assert!(tmp.path().join(JOURNAL).exists(), "{step:?}: journal left");
            drop(index);

            // The next open for writing recovers: both stores agree with the manifest, and
            // every file the batch touched is either gone (read again by the next scan) or in
            // its new state; the untouched file is as it was.
            let mut index = Index::open_writer(tmp.path(), &model(), &chunking(), false).unwrap();
            assert!(
                !tmp.path().join(JOURNAL).exists(),
                "{step:?}: journal cleared"
            );
            assert_consistent(&index);
            assert_eq!(index.manifest.files.get("/r/e.txt"), Some(&untouched));
            for (path, rec) in &index.manifest.files {
                if path != "/r/e.txt" {
                    assert_eq!(want.get(path), Some(rec), "{step:?}: {path} half-written");
                }
            }
            // A reader opens it too.
            let reader = Index::open_reader(tmp.path()).unwrap();
            assert_eq!(reader.bm25.num_docs(), index.manifest.chunk_count());
            drop(reader);

            // The next scan commits the same changes; the result is the uninterrupted one.
            index.commit(second_batch()).unwrap();
            assert_consistent(&index);
            assert_eq!(index.manifest.files, want, "{step:?}");
            assert!(index.manifest.problems.contains_key("/r/c.txt"));
            let old = chunk_id("/r/a.txt", &first_batch().upsert[0].record.hash, 0);
            assert!(
                index
                    .bm25
                    .all_ids()
                    .unwrap()
                    .iter()
                    .all(|(id, _)| *id != old),
                "{step:?}: a removed passage is gone"
            );
        }
    }

    #[test]
    fn passages_lost_without_a_journal_are_repaired_on_open() {
        let tmp = tempfile::tempdir().unwrap();
        let index = index_after_first_batch(tmp.path());
        // Corruption the journal does not cover: one store loses a file's passages.
        index.vectors.delete_paths(&["/r/b.txt"]).unwrap();
        drop(index);
        let index = Index::open_writer(tmp.path(), &model(), &chunking(), false).unwrap();
        assert_consistent(&index);
        assert!(
            !index.manifest.files.contains_key("/r/b.txt"),
            "the damaged file is left for the next scan"
        );
        assert!(index.manifest.files.contains_key("/r/a.txt"));
    }
}
