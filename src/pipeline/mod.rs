//! The write pipeline, above [`crate::ingest`], [`crate::embed`] and [`crate::index`]: walk ->
//! extract -> chunk -> embed -> commit, for a run over folders, over changed paths (the
//! watcher) or over documents given inline (evaluation sets).
//!
//! The run compares every candidate with the manifest. A file whose size and modification time
//! match is unchanged and not even read; one whose bytes hash the same is only touched; the rest
//! are extracted and chunked (in parallel, one batch ahead of the embedder) and their passages
//! embedded — except passages whose text the index has embedded before, which reuse their
//! vector. Files gone from a rescanned root leave the index. Each batch commits to both indexes
//! and the manifest together, so an interrupted run resumes where it stopped.

mod plan;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::doc::Kind;
use crate::doc::Unit;
use crate::embed::Embedder;
use crate::index::manifest::{FileRecord, Problem, ProblemStatus, RunSummary, is_under};
use crate::index::progress::{self as run_progress, Indexing};
use crate::index::{Batch, Chunking, Index, IndexError, Upsert};
use crate::ingest::EXTRACTORS;
use crate::ingest::chunk::{Chunk, ChunkOptions, chunk_units, whole_units};
use crate::ingest::extract::{ExtractError, titled_unit};
use crate::ingest::pdf::PdfExtractor;
use crate::ingest::walk::{self, walk};

#[derive(Debug, Clone)]
pub struct IndexOptions {
    pub max_bytes: u64,
    /// Follow links whose target lies outside the roots.
    pub follow_links: bool,
    /// Read files that failed before even when they are unchanged.
    pub retry_failed: bool,
    /// Most files per commit.
    pub batch_files: usize,
    /// Most passages per commit.
    pub batch_chunks: usize,
    pub chunk: ChunkOptions,
    /// One passage per unit, cut by the model (MTEB's layout; `folio eval --whole-docs`).
    pub whole: bool,
    pub ann_threshold: usize,
}

impl IndexOptions {
    /// The settings' indexing options, with passages cut to fit `embedder`.
    pub fn from_settings(s: &crate::config::Settings, embedder: &Embedder, whole: bool) -> Self {
        IndexOptions {
            max_bytes: s.max_file_mb.saturating_mul(1 << 20),
            follow_links: s.follow_links,
            retry_failed: false,
            batch_files: s.batch_files,
            batch_chunks: 1024,
            chunk: ChunkOptions {
                target: s.chunk_tokens,
                max: embedder.content_budget(),
                overlap: s.chunk_overlap,
            },
            whole,
            ann_threshold: s.ann_threshold,
        }
    }

    pub fn chunking(&self) -> Chunking {
        Chunking {
            mode: if self.whole { "whole" } else { "passages" }.into(),
            target: self.chunk.target,
            overlap: self.chunk.overlap,
            max: self.chunk.max,
        }
    }
}

/// Where a candidate's content comes from.
pub enum Content {
    Disk(PathBuf),
    /// Already-extracted text (BEIR documents), with its hash.
    Inline {
        units: Vec<Unit>,
        hash: String,
    },
}

pub struct Candidate {
    /// Absolute path (for inline documents, a path below their root).
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    pub mtime: i64,
    pub content: Content,
}

/// Progress of a run, for progress bars.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub files_total: usize,
    pub files_done: usize,
    pub chunks_done: usize,
    pub tokens_embedded: usize,
    pub seconds: f64,
}

/// Receives a run's events. Every method has a default that ignores it.
pub trait Observer {
    fn planned(&mut self, _total: usize, _to_read: usize) {}
    fn progress(&mut self, _p: &Progress) {}
    fn problem(&mut self, _path: &str, _status: ProblemStatus, _reason: &str) {}
    /// Something the person should know about the run (a root folded into another).
    fn note(&mut self, _msg: &str) {}
    /// Polled between batches: `true` ends the run after the last committed batch.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Ignores every event.
pub struct Quiet;
impl Observer for Quiet {}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub indexed: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    /// Files of types folio does not read.
    pub unsupported: usize,
    pub chunks_written: usize,
    pub chunks_embedded: usize,
    pub chunks_reused: usize,
    pub tokens_embedded: usize,
    pub embed_seconds: f64,
    pub seconds: f64,
    /// The observer stopped the run; what was committed stays.
    pub cancelled: bool,
    /// Files whose passages were (re)written, and files that left the index.
    pub indexed_paths: Vec<String>,
    pub removed_paths: Vec<String>,
}

impl RunReport {
    fn summary(&self) -> RunSummary {
        RunSummary {
            finished: crate::fsutil::now_secs(),
            seconds: self.seconds,
            indexed: self.indexed,
            unchanged: self.unchanged,
            removed: self.removed,
            skipped: self.skipped.len(),
            failed: self.failed.len(),
            chunks_embedded: self.chunks_embedded,
            chunks_reused: self.chunks_reused,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot index {path}")]
    Root {
        path: String,
        #[source]
        source: crate::Cause,
    },
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
}

/// What a run covers, beyond its candidates.
struct Scope<'a> {
    /// Root folders to record in the manifest.
    add_roots: &'a [String],
    /// Files and folders looked at in full: anything the index has under them that the run did
    /// not find is gone.
    rescanned: &'a [String],
    /// Files named by change events: read them even if their size and time are unchanged (a
    /// chmod changes neither; `cp -p` or an unpacked archive keeps both), and retry those that
    /// failed before.
    named: bool,
    /// Compact the vector table and build its ANN index when due (after full scans; the
    /// watcher compacts when the folder goes quiet).
    compact: bool,
}

enum Outcome {
    Touch(String, FileRecord),
    Ready {
        path: String,
        record: FileRecord,
        chunks: Vec<Chunk>,
    },
    Problem(String, Problem),
}

fn walk_options(opts: &IndexOptions, roots: &[PathBuf]) -> walk::WalkOptions {
    walk::WalkOptions {
        max_bytes: opts.max_bytes,
        follow_links: opts.follow_links,
        roots: roots.to_vec(),
    }
}

/// Indexes the folders `roots` into `index`: new and changed files are embedded, unchanged ones
/// skipped, and files gone from these folders removed.
pub fn index_folders(
    index: &mut Index,
    embedder: &Embedder,
    pdf: &PdfExtractor,
    roots: &[PathBuf],
    opts: &IndexOptions,
    observer: &mut dyn Observer,
) -> Result<RunReport, IngestError> {
    let canon = roots
        .iter()
        .map(|r| {
            walk::canonical_folder(r).map_err(|source| IngestError::Root {
                path: r.display().to_string(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (canon, folded) = walk::fold_roots(canon);
    for (inner, outer) in &folded {
        observer.note(&format!(
            "{} is inside {}: its files are indexed once, as part of it",
            inner.display(),
            outer.display()
        ));
    }
    let index_dir =
        std::fs::canonicalize(index.dir()).unwrap_or_else(|_| index.dir().to_path_buf());
    let mut walked = Found::default();
    let mut unsupported = 0;
    // Links are judged against every folder the index holds, not only this run's: a link in
    // `docs/sub` to `docs/other` stays when `docs` is indexed and `docs/sub` is re-read.
    let mut link_roots = canon.clone();
    link_roots.extend(
        index
            .manifest()
            .roots
            .iter()
            .map(|r| crate::fsutil::key_path(r)),
    );
    for root in &canon {
        let found = walk(root, &walk_options(opts, &link_roots));
        unsupported += found.unsupported;
        push_found(found, &index_dir, &mut walked);
    }
    let roots: Vec<String> = canon.iter().map(|r| crate::fsutil::path_key(r)).collect();
    let scope = Scope {
        add_roots: &roots,
        rescanned: &roots,
        named: false,
        compact: true,
    };
    let mut report = run(index, embedder, pdf, &scope, walked, opts, observer)?;
    report.unsupported = unsupported;
    Ok(report)
}

/// Brings the index up to date with `paths` only: files and folders under `roots` (canonical)
/// that changed since the last look. A path that is gone, or now ignored, leaves the index with
/// everything below it; a folder is walked in full. The ignore rules, hidden-file and index-folder
/// exclusions are those of a full walk from the root.
pub fn index_paths(
    index: &mut Index,
    embedder: &Embedder,
    pdf: &PdfExtractor,
    roots: &[PathBuf],
    paths: &[PathBuf],
    opts: &IndexOptions,
    observer: &mut dyn Observer,
) -> Result<RunReport, IngestError> {
    let index_dir =
        std::fs::canonicalize(index.dir()).unwrap_or_else(|_| index.dir().to_path_buf());
    let mut walked = Found::default();
    let mut rescanned = Vec::new();
    let mut unsupported = 0;
    for root in roots {
        let targets: Vec<PathBuf> = paths
            .iter()
            .filter(|p| p.starts_with(root) && !p.starts_with(&index_dir))
            .cloned()
            .collect();
        if targets.is_empty() {
            continue;
        }
        rescanned.extend(targets.iter().map(|t| crate::fsutil::path_key(t)));
        // A path that is gone only needs its passages removed; walking it would report it.
        let present: Vec<PathBuf> = targets
            .into_iter()
            .filter(|t| t.symlink_metadata().is_ok())
            .collect();
        if present.is_empty() {
            continue;
        }
        let found = walk::walk_targets(root, &present, &walk_options(opts, roots));
        unsupported += found.unsupported;
        push_found(found, &index_dir, &mut walked);
    }
    if rescanned.is_empty() {
        return Ok(RunReport::default());
    }
    let scope = Scope {
        add_roots: &[],
        rescanned: &rescanned,
        named: true,
        compact: false,
    };
    let mut report = run(index, embedder, pdf, &scope, walked, opts, observer)?;
    report.unsupported = unsupported;
    Ok(report)
}

/// What a walk found: files to consider, and paths it skipped with their reason.
#[derive(Default)]
struct Found {
    candidates: Vec<Candidate>,
    problems: Vec<(String, Problem)>,
}

fn push_found(found: walk::WalkResult, index_dir: &Path, into: &mut Found) {
    let (candidates, problems) = (&mut into.candidates, &mut into.problems);
    for f in found.files {
        if f.path.starts_with(index_dir) {
            continue;
        }
        candidates.push(Candidate {
            path: crate::fsutil::path_key(&f.path),
            kind: f.kind,
            size: f.size,
            mtime: f.mtime,
            content: Content::Disk(f.path),
        });
    }
    for (path, reason) in found.skipped {
        let meta = std::fs::metadata(&path).ok();
        problems.push((
            crate::fsutil::path_key(&path),
            Problem {
                status: ProblemStatus::Skipped,
                reason,
                size: meta.as_ref().map(|m| m.len()).unwrap_or(0),
                mtime: meta.as_ref().map(walk::mtime_nanos).unwrap_or(0),
                extractors: EXTRACTORS.to_string(),
            },
        ));
    }
}

/// An inline document: a key (unique under its root), a title and a body.
pub struct InlineDoc {
    pub key: String,
    pub title: String,
    pub body: String,
}

/// Indexes documents that are not files (a BEIR corpus) through the same pipeline: each is a
/// unit whose first line is its title, at the path `root/key`.
pub fn index_documents(
    index: &mut Index,
    embedder: &Embedder,
    root: &str,
    docs: Vec<InlineDoc>,
    mtime: i64,
    opts: &IndexOptions,
    observer: &mut dyn Observer,
) -> Result<RunReport, IngestError> {
    let candidates = docs
        .into_iter()
        .map(|d| {
            let unit = titled_unit(&d.title, &d.body);
            let hash = hex::encode(Sha256::digest(unit.text.as_bytes()));
            Candidate {
                path: format!("{}/{}", root.trim_end_matches('/'), d.key),
                kind: Kind::Text,
                size: unit.text.len() as u64,
                mtime,
                content: Content::Inline {
                    units: vec![unit],
                    hash,
                },
            }
        })
        .collect();
    let pdf = PdfExtractor::new(None, std::time::Duration::from_secs(1));
    let roots = [root.to_string()];
    let scope = Scope {
        add_roots: &roots,
        rescanned: &roots,
        named: false,
        compact: true,
    };
    let found = Found {
        candidates,
        problems: Vec::new(),
    };
    run(index, embedder, &pdf, &scope, found, opts, observer)
}

fn run(
    index: &mut Index,
    embedder: &Embedder,
    pdf: &PdfExtractor,
    scope: &Scope,
    found: Found,
    opts: &IndexOptions,
    observer: &mut dyn Observer,
) -> Result<RunReport, IngestError> {
    let started = Instant::now();
    let mut report = RunReport::default();
    let chunking = opts.chunking();
    let rechunk = index.meta().chunking != chunking;
    if rechunk {
        tracing::info!(
            "chunking settings changed: every file is re-chunked (vectors of unchanged passages are reused)"
        );
    }
    for r in scope.add_roots {
        index.add_root(r);
    }

    let rules = plan::Rules {
        rescanned: scope.rescanned,
        named: scope.named,
        rechunk,
        retry_failed: opts.retry_failed,
        recognises_scans: pdf.recognises_scans(),
    };
    let plan::Plan {
        to_read,
        known_hashes,
        unchanged,
        walk_problems,
        known_problems,
        gone,
        removed_paths,
    } = plan::plan(index.manifest(), found, &rules);
    for (p, problem) in walk_problems {
        observer.problem(&p, problem.status, &problem.reason);
        report.skipped.push((p, problem.reason));
    }
    for (p, problem) in known_problems {
        let list = match problem.status {
            ProblemStatus::Skipped => &mut report.skipped,
            ProblemStatus::Failed => &mut report.failed,
        };
        list.push((p, problem.reason));
    }
    report.unchanged = unchanged;
    report.removed = removed_paths.len();
    report.removed_paths = removed_paths;
    let total = report.unchanged + to_read.len();
    observer.planned(total, to_read.len());
    // `gone` is committed after the new content: a renamed file (or a renamed folder of
    // thousands, whatever batch its files land in) still finds its old vectors to reuse.
    let mut changed = !gone.is_empty();

    let mut progress = Progress {
        files_total: total,
        files_done: report.unchanged,
        ..Default::default()
    };
    observer.progress(&progress);
    // Readers in other processes learn that answers may be incomplete until this run ends.
    let publish = !to_read.is_empty();
    let published = |p: &Progress| Indexing {
        done: p.files_done,
        total: p.files_total,
    };
    if publish {
        run_progress::write(index.dir(), published(&progress));
    }

    // Extraction runs one group ahead of embedding, on its own thread.
    let group = opts.batch_files.clamp(1, 64);
    let count = |s: &str| embedder.count_tokens(s);
    let prepare =
        |c: &Candidate| -> Outcome { prepare(c, &known_hashes, rechunk, opts, pdf, &count) };
    // Set when the run is cancelled: files of the group in progress not yet started are left
    // for the next run, so that Ctrl-C waits for the files being read, not for the group.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| -> Result<(), IngestError> {
        let (tx, rx) = sync_channel::<Vec<Outcome>>(1);
        let to_read = &to_read;
        let prepare = &prepare;
        let stop = &stop;
        scope.spawn(move || {
            for g in to_read.chunks(group) {
                let outcomes: Vec<Outcome> = g
                    .par_iter()
                    .filter(|_| !stop.load(std::sync::atomic::Ordering::Relaxed))
                    .map(prepare)
                    .collect();
                if tx.send(outcomes).is_err() {
                    break;
                }
            }
        });
        let mut pending: Vec<Outcome> = Vec::new();
        let mut pending_chunks = 0;
        let mut flush = |pending: &mut Vec<Outcome>,
                         report: &mut RunReport,
                         progress: &mut Progress,
                         observer: &mut dyn Observer|
         -> Result<(), IngestError> {
            if pending.is_empty() {
                return Ok(());
            }
            let batch = build_batch(
                std::mem::take(pending),
                index,
                embedder,
                report,
                progress,
                observer,
                started,
            )?;
            changed |= !batch.is_empty();
            index.commit(batch)?;
            progress.seconds = started.elapsed().as_secs_f64();
            observer.progress(progress);
            run_progress::write(index.dir(), published(progress));
            Ok(())
        };
        loop {
            // Polled while a group is being read, so that a cancel does not wait for it.
            let next = rx.recv_timeout(Duration::from_millis(200));
            if observer.cancelled() {
                // Dropping the receiver stops the extraction thread at its next send.
                report.cancelled = true;
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                break;
            }
            let outcomes = match next {
                Ok(outcomes) => outcomes,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            for o in outcomes {
                if let Outcome::Ready { chunks, .. } = &o {
                    pending_chunks += chunks.len();
                }
                pending.push(o);
                if pending_chunks >= opts.batch_chunks || pending.len() >= opts.batch_files {
                    flush(&mut pending, &mut report, &mut progress, observer)?;
                    pending_chunks = 0;
                }
            }
        }
        flush(&mut pending, &mut report, &mut progress, observer)
    });
    if publish {
        run_progress::clear(index.dir());
    }
    result?;
    // A run stopped early keeps the old paths too: the next run removes them.
    if !gone.is_empty() && !report.cancelled {
        index.commit(gone)?;
    }

    report.seconds = started.elapsed().as_secs_f64();
    // The index's chunking record says how every file in it was cut: only a run that read the
    // whole index to the end may change it. A run over a sub-folder re-chunks its own files
    // and leaves the record, so the next full run still re-chunks the rest.
    let whole_index = !report.cancelled
        && index
            .manifest()
            .roots
            .iter()
            .all(|r| scope.rescanned.iter().any(|s| is_under(r, s)));
    index.finish_run(
        report.summary(),
        whole_index.then_some(&chunking),
        changed && scope.compact,
        opts.ann_threshold,
    )?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads, hashes, extracts and chunks one candidate. Never fails: problems are outcomes.
fn prepare(
    c: &Candidate,
    known_hashes: &HashMap<String, String>,
    rechunk: bool,
    opts: &IndexOptions,
    pdf: &PdfExtractor,
    count: &(dyn Fn(&str) -> usize + Sync),
) -> Outcome {
    let problem = |e: ExtractError| {
        Outcome::Problem(
            c.path.clone(),
            Problem {
                status: if e.is_skip() {
                    ProblemStatus::Skipped
                } else {
                    ProblemStatus::Failed
                },
                reason: e.to_string(),
                size: c.size,
                mtime: c.mtime,
                extractors: EXTRACTORS.to_string(),
            },
        )
    };
    let mut extractor = None;
    let mut recognised = Vec::new();
    let (hash, units) = match &c.content {
        Content::Inline { units, hash } => (hash.clone(), Some(units.clone())),
        Content::Disk(path) => {
            let bytes = match std::fs::read(path) {
                Ok(b) => b,
                Err(e) => return problem(ExtractError::Io(e.to_string())),
            };
            let hash = hex::encode(Sha256::digest(&bytes));
            if known_hashes.get(&c.path) == Some(&hash) && !rechunk {
                return touch(c, hash, None);
            }
            let units = crate::ingest::read(path, c.kind, Some(&bytes), pdf).map(|r| {
                extractor = r.extractor.map(str::to_string);
                recognised = r.recognised;
                r.units
            });
            match units {
                Ok(u) => (hash, Some(u)),
                Err(e) => return problem(e),
            }
        }
    };
    if known_hashes.get(&c.path) == Some(&hash) && !rechunk {
        return touch(c, hash, None);
    }
    let units = units.unwrap_or_default();
    let chunks = if opts.whole {
        whole_units(&units)
    } else {
        chunk_units(&units, &opts.chunk, count)
    };
    if chunks.is_empty() {
        return problem(ExtractError::Empty);
    }
    if chunks.len() > MAX_PASSAGES_PER_FILE {
        return problem(ExtractError::TooLarge(format!(
            "{} passages, more than the {MAX_PASSAGES_PER_FILE} folio indexes from one file",
            chunks.len()
        )));
    }
    Outcome::Ready {
        path: c.path.clone(),
        record: FileRecord {
            kind: c.kind,
            size: c.size,
            mtime: c.mtime,
            hash,
            chunks: chunks.len() as u32,
            extractor,
            recognised,
        },
        chunks,
    }
}

/// The most passages one file may add: ten times the longest books' count, and a bound on
/// what one file can cost the embedder and the index.
pub const MAX_PASSAGES_PER_FILE: usize = 50_000;

fn touch(c: &Candidate, hash: String, _chunks: Option<u32>) -> Outcome {
    Outcome::Touch(
        c.path.clone(),
        FileRecord {
            kind: c.kind,
            size: c.size,
            mtime: c.mtime,
            hash,
            chunks: 0,
            extractor: None,
            recognised: Vec::new(),
        },
    )
}

/// Hash of a passage's embedded text: the key under which its vector is reused.
pub fn text_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..16])
}

/// Turns prepared outcomes into a batch: reuses stored vectors, embeds the rest.
fn build_batch(
    outcomes: Vec<Outcome>,
    index: &Index,
    embedder: &Embedder,
    report: &mut RunReport,
    progress: &mut Progress,
    observer: &mut dyn Observer,
    started: Instant,
) -> Result<Batch, IngestError> {
    let mut batch = Batch::default();
    let mut ready = Vec::new();
    for o in outcomes {
        match o {
            Outcome::Touch(path, mut rec) => {
                // Same bytes: keep the passage count and how it was read, as the manifest has.
                if let Some(old) = index.manifest().files.get(&path) {
                    rec.chunks = old.chunks;
                    rec.extractor.clone_from(&old.extractor);
                    rec.recognised.clone_from(&old.recognised);
                }
                report.unchanged += 1;
                batch.touch.push((path, rec));
            }
            Outcome::Problem(path, p) => {
                // A worker killed while folio itself is stopping (a service manager signals
                // the whole group) failed because of the stop, not the file: nothing is
                // recorded, and the next run reads it again.
                if observer.cancelled() && p.reason.starts_with("extractor crashed: killed by") {
                    continue;
                }
                observer.problem(&path, p.status, &p.reason);
                let list = match p.status {
                    ProblemStatus::Skipped => &mut report.skipped,
                    ProblemStatus::Failed => &mut report.failed,
                };
                list.push((path.clone(), p.reason.clone()));
                batch.problems.push((path, p));
            }
            Outcome::Ready {
                path,
                record,
                chunks,
            } => ready.push((path, record, chunks)),
        }
    }
    progress.files_done += batch.touch.len() + batch.problems.len();

    let texts: Vec<Vec<String>> = ready
        .iter()
        .map(|(_, _, chunks)| chunks.iter().map(Chunk::embed_text).collect())
        .collect();
    let hashes: Vec<Vec<String>> = texts
        .iter()
        .map(|t| t.iter().map(|s| text_hash(s)).collect())
        .collect();
    let mut unique: Vec<&str> = hashes.iter().flatten().map(String::as_str).collect();
    unique.sort_unstable();
    unique.dedup();
    let mut known = index.lookup_vectors(&unique)?;
    let reused_before = hashes
        .iter()
        .flatten()
        .filter(|h| known.contains_key(*h))
        .count();

    // Embed each distinct missing text once, in slices so that progress moves.
    let mut missing: Vec<(&str, &str)> = Vec::new();
    let mut queued = HashSet::new();
    for (ts, hs) in texts.iter().zip(&hashes) {
        for (t, h) in ts.iter().zip(hs) {
            if !known.contains_key(h) && queued.insert(h.as_str()) {
                missing.push((h.as_str(), t.as_str()));
            }
        }
    }
    for slice in missing.chunks(128) {
        let t0 = Instant::now();
        let refs: Vec<&str> = slice.iter().map(|(_, t)| *t).collect();
        let (vectors, tokens) = embedder.embed_counted(&refs)?;
        report.embed_seconds += t0.elapsed().as_secs_f64();
        report.tokens_embedded += tokens;
        report.chunks_embedded += slice.len();
        progress.tokens_embedded += tokens;
        progress.chunks_done += slice.len();
        progress.seconds = started.elapsed().as_secs_f64();
        observer.progress(progress);
        for ((h, _), v) in slice.iter().zip(vectors) {
            known.insert(h.to_string(), v);
        }
    }
    let total_chunks: usize = hashes.iter().map(Vec::len).sum();
    report.chunks_reused += reused_before;
    progress.chunks_done += reused_before;

    for ((path, record, chunks), hs) in ready.into_iter().zip(hashes) {
        let vectors = hs
            .iter()
            .map(|h| known.get(h).cloned().unwrap_or_default())
            .collect();
        report.indexed += 1;
        report.indexed_paths.push(path.clone());
        batch.upsert.push(Upsert {
            path,
            record,
            chunks,
            hashes: hs,
            vectors,
        });
    }
    report.chunks_written += total_chunks;
    progress.files_done += batch.upsert.len();
    Ok(batch)
}

/// Canonical key of a path ([`crate::fsutil::path_key`]), for comparing with the manifest.
pub fn canonical_string(p: &Path) -> String {
    crate::fsutil::path_key(&std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
}
