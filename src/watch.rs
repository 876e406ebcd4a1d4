//! Following folders: keeps an index in step with its root folders until stopped.
//!
//! A [`Watcher`] owns the index's writer (and so its lock) on a background thread. It first
//! reconciles the index with the folders (a full scan: what changed while folio was not running
//! is applied, unchanged files are not read), then applies file-system events as they come:
//! notify's events, debounced by notify-debouncer-full, are reduced to a set of changed paths,
//! and each set is applied with [`pipeline::index_paths`], which re-reads only those paths. A
//! burst (a `git checkout`, an unpacked archive) is coalesced: whatever arrived while one set was
//! being applied forms the next. Lost events (an inotify queue overflow) trigger a full rescan;
//! an exhausted watch limit switches to polling. Every step is reported as a [`WatchEvent`] on a
//! channel, for `folio watch` to print and for the terminal UI to show.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{PollWatcher, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{
    DebounceEventResult, Debouncer, FileIdMap, RecommendedCache, new_debouncer_opt,
};

use crate::embed::Embedder;
use crate::index::manifest::ProblemStatus;
use crate::index::{Index, IndexError};
use crate::ingest::pdf::PdfExtractor;
use crate::pipeline::{self, IndexOptions, IngestError, Observer, Progress, RunReport};

/// How to watch.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Folders to follow; canonicalised on start.
    pub roots: Vec<PathBuf>,
    /// Poll every so often instead of relying on OS events (network and FUSE folders).
    pub poll: Option<Duration>,
    /// How long a path must stay quiet before its events are applied.
    pub debounce: Duration,
    /// After this long without changes, compact the vector table.
    pub compact_after: Duration,
    pub index: IndexOptions,
}

/// When the vector table is next compacted: `quiet` after the last change, and no later than
/// ten times that after the first change since the last compaction.
struct CompactClock {
    quiet: Duration,
    first_change: Option<Instant>,
    due: Option<Instant>,
}

impl CompactClock {
    fn new(quiet: Duration) -> Self {
        CompactClock {
            quiet,
            first_change: None,
            due: None,
        }
    }

    fn changed(&mut self, now: Instant) {
        let first = *self.first_change.get_or_insert(now);
        self.due = Some((now + self.quiet).min(first + self.quiet * 10));
    }

    fn done(&mut self) {
        self.first_change = None;
        self.due = None;
    }
}

impl WatchOptions {
    pub fn new(roots: Vec<PathBuf>, index: IndexOptions) -> WatchOptions {
        WatchOptions {
            roots,
            poll: None,
            debounce: Duration::from_millis(300),
            compact_after: Duration::from_secs(20),
            index,
        }
    }
}

/// What the watcher reports.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// A full scan of the roots began: at start-up, or after events were lost.
    Scanning { reason: String },
    /// Progress of the scan or change set being applied.
    Progress(Progress),
    /// A file could not be indexed (it stays out of the index until it changes).
    Problem {
        path: String,
        status: ProblemStatus,
        reason: String,
    },
    /// A scan (`full`) or a set of changes was committed.
    Applied { full: bool, report: Box<RunReport> },
    /// Now waiting for changes.
    Watching { roots: Vec<String>, polling: bool },
    /// Something the user should know that does not stop the watcher (a switch to polling,
    /// a rescan after lost events, a batch that failed and will be retried).
    Notice(String),
    /// The watcher stopped; `error` says why when it was not asked to.
    Stopped { error: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{path}")]
    Root {
        path: String,
        #[source]
        source: crate::Cause,
    },
    #[error("could not start the watcher thread: {0}")]
    Thread(String),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

enum Msg {
    Fs(DebounceEventResult),
    Stop,
}

/// A running watcher. Dropping it stops it too, without waiting.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    tx: Sender<Msg>,
    thread: Option<JoinHandle<Result<(), WatchError>>>,
}

impl Watcher {
    /// Starts following `opts.roots` with `index` (opened for writing). Events arrive on the
    /// returned receiver until [`Watcher::stop`] or until the receiver is dropped.
    pub fn start(
        index: Index,
        embedder: Arc<Embedder>,
        pdf: PdfExtractor,
        mut opts: WatchOptions,
    ) -> Result<(Watcher, Receiver<WatchEvent>), WatchError> {
        for r in &mut opts.roots {
            *r = crate::ingest::walk::canonical_folder(r).map_err(|source| WatchError::Root {
                path: r.display().to_string(),
                source,
            })?;
        }
        // A root inside another is followed (and scanned) once, as part of it.
        opts.roots = crate::ingest::walk::fold_roots(std::mem::take(&mut opts.roots)).0;
        let (events_tx, events_rx) = channel();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            index_dir: std::fs::canonicalize(index.dir())
                .unwrap_or_else(|_| index.dir().to_path_buf()),
            index: Some(index),
            embedder,
            pdf,
            opts,
            events: events_tx,
            stop: stop.clone(),
            fs_tx: tx.clone(),
            backend: None,
            unreadable: HashSet::new(),
            failures: 0,
            retry_at: None,
        };
        let thread = std::thread::Builder::new()
            .name("folio-watch".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| WatchError::Thread(e.to_string()))?;
        Ok((
            Watcher {
                stop,
                tx,
                thread: Some(thread),
            },
            events_rx,
        ))
    }

    /// Stops watching: a run in progress ends after its current batch (committed batches
    /// stay), and the index is closed. Returns the error that stopped the watcher, if any.
    pub fn stop(mut self) -> Result<(), WatchError> {
        self.signal_stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(WatchError::Thread("the watcher thread panicked".into())),
            None => Ok(()),
        }
    }

    /// Asks the watcher to stop without waiting for it (safe from a signal-driven loop).
    pub fn signal_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.tx.send(Msg::Stop);
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

enum Backend {
    Native(Debouncer<RecommendedWatcher, RecommendedCache>),
    Poll(Debouncer<PollWatcher, FileIdMap>),
}

struct Worker {
    index: Option<Index>,
    index_dir: PathBuf,
    embedder: Arc<Embedder>,
    pdf: PdfExtractor,
    opts: WatchOptions,
    events: Sender<WatchEvent>,
    stop: Arc<AtomicBool>,
    fs_tx: Sender<Msg>,
    backend: Option<Backend>,
    /// Folders the poller could not read, already reported.
    unreadable: HashSet<PathBuf>,
    /// Runs that failed in a row, and when to try again (a full rescan).
    failures: u32,
    retry_at: Option<Instant>,
}

/// Forwards a run's progress (at most a few times a second) and problems as events, and stops
/// the run when the watcher is stopped.
struct Forward<'a> {
    events: &'a Sender<WatchEvent>,
    stop: &'a AtomicBool,
    last: Option<Instant>,
}

impl Observer for Forward<'_> {
    fn progress(&mut self, p: &Progress) {
        if self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200))
        {
            self.last = Some(Instant::now());
            let _ = self.events.send(WatchEvent::Progress(p.clone()));
        }
    }

    fn problem(&mut self, path: &str, status: ProblemStatus, reason: &str) {
        let _ = self.events.send(WatchEvent::Problem {
            path: path.to_string(),
            status,
            reason: reason.to_string(),
        });
    }

    fn cancelled(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// What a set of events asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    paths: BTreeSet<PathBuf>,
    rescan: bool,
}

/// Files whose rules decide what the walk skips.
const IGNORE_FILES: &[&str] = &[".gitignore", ".ignore", ".folioignore"];

/// Reduces debounced events to the paths they touch. Reads (our own included) are not changes;
/// a closed writer is. Paths inside the index folder are our own writes and are dropped.
fn collect(events: &[notify::Event], roots: &[PathBuf], index_dir: &Path, into: &mut Changes) {
    for e in events {
        if e.need_rescan() {
            into.rescan = true;
            continue;
        }
        match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => continue,
            _ => {}
        }
        for p in &e.paths {
            if p.starts_with(index_dir) || !roots.iter().any(|r| p.starts_with(r)) {
                continue;
            }
            // An edited ignore file changes which files below its folder belong in the index:
            // that folder is looked at again in full.
            let ignore_rules = p
                .file_name()
                .is_some_and(|n| IGNORE_FILES.iter().any(|f| n == *f));
            match p.parent() {
                Some(dir) if ignore_rules => into.paths.insert(dir.to_path_buf()),
                _ => into.paths.insert(p.clone()),
            };
        }
    }
}

impl Worker {
    fn send(&self, e: WatchEvent) {
        let _ = self.events.send(e);
    }

    fn run(mut self, rx: Receiver<Msg>) -> Result<(), WatchError> {
        let result = self.run_inner(&rx);
        // Stop the OS watch before the index closes, so that nothing queues behind us.
        self.backend = None;
        self.index = None;
        self.send(WatchEvent::Stopped {
            error: result.as_ref().err().map(|e| crate::error_chain(e)),
        });
        result
    }

    fn run_inner(&mut self, rx: &Receiver<Msg>) -> Result<(), WatchError> {
        // Watch first, then scan: a change made during the scan is queued, not lost.
        self.start_backend(self.opts.poll)?;
        self.full_scan("start-up: reconciling the index with the folders")?;
        // Compaction waits for the folder to be quiet for `compact_after`, but a folder that
        // never stays quiet (a log rewritten every few seconds) still gets compacted.
        let mut compact = CompactClock::new(self.opts.compact_after);
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            // Wake for a due retry, or to compact once the folder has been quiet a while.
            let now = Instant::now();
            let wake = match (self.retry_at, compact.due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let first = match wake {
                Some(at) => match rx.recv_timeout(at.saturating_duration_since(now)) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        if self.retry_at.is_some_and(|t| Instant::now() >= t) {
                            self.retry_at = None;
                            self.full_scan("retrying after a failed update")?;
                            compact.changed(Instant::now());
                        } else if compact.due.is_some_and(|t| Instant::now() >= t) {
                            self.compact();
                            compact.done();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return Ok(()),
                },
            };
            let mut changes = Changes::default();
            let mut pending = Some(first);
            // Coalesce everything already queued (a burst) into one change set.
            while let Some(msg) = pending.take().or_else(|| rx.try_recv().ok()) {
                match msg {
                    Msg::Stop => return Ok(()),
                    Msg::Fs(Ok(events)) => {
                        let evs: Vec<notify::Event> = events.into_iter().map(|d| d.event).collect();
                        collect(&evs, &self.opts.roots, &self.index_dir, &mut changes);
                    }
                    Msg::Fs(Err(errors)) => self.on_errors(errors, &mut changes)?,
                }
                if changes.paths.len() >= 20_000 {
                    // Bounded memory for huge bursts: past this a rescan is cheaper anyway.
                    changes.rescan = true;
                    changes.paths.clear();
                }
            }
            // A folder that could not be read may be readable now (its files show up as new):
            // look at it in full, which also clears its old problem.
            if !changes.paths.is_empty() {
                let readable: Vec<PathBuf> = self
                    .unreadable
                    .iter()
                    .filter(|p| std::fs::read_dir(p).is_ok())
                    .cloned()
                    .collect();
                for p in readable {
                    self.unreadable.remove(&p);
                    changes.paths.insert(p);
                }
            }
            if changes.rescan {
                self.full_scan("events were lost or too many: rescanning the folders")?;
                compact.changed(Instant::now());
            } else if !changes.paths.is_empty() {
                let paths: Vec<PathBuf> = changes.paths.into_iter().collect();
                self.apply(&paths)?;
                compact.changed(Instant::now());
            }
        }
    }

    fn on_errors(
        &mut self,
        errors: Vec<notify::Error>,
        changes: &mut Changes,
    ) -> Result<(), WatchError> {
        for e in errors {
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
                && matches!(self.backend, Some(Backend::Native(_)))
            {
                self.send(WatchEvent::Notice(
                    "the system's file watch limit is reached (fs.inotify.max_user_watches): switching to polling every 2 s".into(),
                ));
                self.start_backend(Some(Duration::from_secs(2)))?;
                changes.rescan = true;
            } else {
                // The poller reports an unreadable folder on every pass: say it once.
                let denied = matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied);
                let paths: Vec<PathBuf> = e
                    .paths
                    .iter()
                    .filter(|p| self.opts.roots.iter().any(|r| p.starts_with(r)))
                    .filter(|p| !denied || self.unreadable.insert(p.to_path_buf()))
                    .cloned()
                    .collect();
                if denied && paths.is_empty() {
                    continue;
                }
                tracing::warn!(error = %e, "watch error");
                self.send(WatchEvent::Notice(format!("watch error: {e}")));
                changes.paths.extend(paths);
            }
        }
        Ok(())
    }

    fn start_backend(&mut self, poll: Option<Duration>) -> Result<(), WatchError> {
        self.backend = None;
        let tx = self.fs_tx.clone();
        let handler = move |r: DebounceEventResult| {
            let _ = tx.send(Msg::Fs(r));
        };
        let root_err = |root: &Path, e: notify::Error| WatchError::Root {
            path: root.display().to_string(),
            source: e.into(),
        };
        let first = self.opts.roots.first().cloned().unwrap_or_default();
        let mut backend = match poll {
            None => {
                // The debouncer wakes every tick, events or not: half the debounce time (not
                // notify's default quarter) keeps an idle watcher quieter for +75 ms of delay.
                let d = new_debouncer_opt::<_, RecommendedWatcher, RecommendedCache>(
                    self.opts.debounce,
                    Some(self.opts.debounce / 2),
                    handler,
                    RecommendedCache::new(),
                    notify::Config::default(),
                )
                .map_err(|e| root_err(&first, e))?;
                Backend::Native(d)
            }
            Some(every) => {
                let d = new_debouncer_opt::<_, PollWatcher, FileIdMap>(
                    self.opts.debounce.min(every),
                    None,
                    handler,
                    FileIdMap::new(),
                    notify::Config::default().with_poll_interval(every),
                )
                .map_err(|e| root_err(&first, e))?;
                Backend::Poll(d)
            }
        };
        for root in &self.opts.roots {
            let r = match &mut backend {
                Backend::Native(d) => d.watch(root, RecursiveMode::Recursive),
                Backend::Poll(d) => d.watch(root, RecursiveMode::Recursive),
            };
            match r {
                Ok(()) => {}
                Err(e)
                    if matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
                        && matches!(backend, Backend::Native(_)) =>
                {
                    self.send(WatchEvent::Notice(format!(
                        "the system's file watch limit is reached (fs.inotify.max_user_watches) while watching {}: switching to polling every 2 s",
                        root.display()
                    )));
                    return self.start_backend(Some(Duration::from_secs(2)));
                }
                // inotify gives up on the whole tree at the first folder it may not read;
                // polling walks past it (and reports it when it becomes readable).
                Err(e)
                    if matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied)
                        && matches!(backend, Backend::Native(_)) =>
                {
                    self.send(WatchEvent::Notice(format!(
                        "a folder under {} cannot be read ({e}): polling every 2 s instead of system events",
                        root.display()
                    )));
                    return self.start_backend(Some(Duration::from_secs(2)));
                }
                Err(e) => return Err(root_err(root, e)),
            }
        }
        let polling = matches!(backend, Backend::Poll(_));
        self.backend = Some(backend);
        self.send(WatchEvent::Watching {
            roots: self
                .opts
                .roots
                .iter()
                .map(|r| r.display().to_string())
                .collect(),
            polling,
        });
        Ok(())
    }

    fn full_scan(&mut self, reason: &str) -> Result<(), WatchError> {
        self.send(WatchEvent::Scanning {
            reason: reason.to_string(),
        });
        let roots = self.opts.roots.clone();
        self.with_index(true, |w, index, observer| {
            pipeline::index_folders(index, &w.embedder, &w.pdf, &roots, &w.opts.index, observer)
        })
    }

    fn apply(&mut self, paths: &[PathBuf]) -> Result<(), WatchError> {
        let roots = self.opts.roots.clone();
        self.with_index(false, |w, index, observer| {
            pipeline::index_paths(
                index,
                &w.embedder,
                &w.pdf,
                &roots,
                paths,
                &w.opts.index,
                observer,
            )
        })
    }

    /// Runs `f` on the index and reports the result. A failed run (a full disk, say) is
    /// reported and the index reopened, which repairs whatever the run left half done; the
    /// next full scan then brings it up to date.
    fn with_index(
        &mut self,
        full: bool,
        f: impl FnOnce(&Worker, &mut Index, &mut dyn Observer) -> Result<RunReport, IngestError>,
    ) -> Result<(), WatchError> {
        let mut index = match self.index.take() {
            Some(i) => i,
            // The last reopen failed (the disk still full, say): try again; while it fails,
            // back off. Changes that arrive meanwhile are caught by the full scan that follows.
            None => match self.reopen() {
                Ok(i) if full => i,
                Ok(i) => {
                    self.index = Some(i);
                    self.retry_at = Some(Instant::now());
                    return Ok(());
                }
                Err(e) => {
                    self.back_off(&format!(
                        "the index cannot be opened ({})",
                        crate::error_chain(&e)
                    ));
                    return Ok(());
                }
            },
        };
        let mut observer = Forward {
            events: &self.events,
            stop: &self.stop,
            last: None,
        };
        let result = f(self, &mut index, &mut observer);
        match result {
            Ok(report) => {
                self.failures = 0;
                self.index = Some(index);
                if full || report.indexed + report.removed + report.failed.len() > 0 {
                    self.send(WatchEvent::Applied {
                        full,
                        report: Box::new(report),
                    });
                }
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %crate::error_chain(&e), "applying changes failed");
                drop(index);
                // Reopening repairs whatever the run left half done. It can fail for the same
                // reason (a full disk): then the watcher keeps running without an index and
                // tries again after the back-off.
                match self.reopen() {
                    Ok(i) => {
                        self.index = Some(i);
                        self.back_off(&format!(
                            "applying changes failed ({}); the index was repaired",
                            crate::error_chain(&e)
                        ));
                    }
                    Err(e2) => self.back_off(&format!(
                        "applying changes failed ({}), and reopening the index too ({})",
                        crate::error_chain(&e),
                        crate::error_chain(&e2)
                    )),
                }
                Ok(())
            }
        }
    }

    fn reopen(&self) -> Result<Index, crate::index::IndexError> {
        Index::open_writer(
            &self.index_dir,
            self.embedder.info(),
            &self.opts.index.chunking(),
            false,
        )
    }

    /// Schedules the next full scan after a failure: a cause that persists (a full disk, a
    /// root folder gone) must not spin, so the wait doubles from 2 s up to 5 minutes.
    fn back_off(&mut self, what: &str) {
        self.failures += 1;
        let wait = Duration::from_secs(2u64.saturating_pow(self.failures).min(300));
        self.retry_at = Some(Instant::now() + wait);
        self.send(WatchEvent::Notice(format!(
            "{what}; the folders will be rescanned in {} s",
            wait.as_secs()
        )));
    }

    fn compact(&mut self) {
        if let Some(index) = self.index.as_mut()
            && let Err(e) = index.compact(self.opts.index.ann_threshold)
        {
            tracing::warn!(error = %crate::error_chain(&e), "compacting the vector table failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

    fn ev(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    #[test]
    fn compaction_waits_for_quiet_but_not_forever() {
        let q = Duration::from_secs(20);
        let mut c = CompactClock::new(q);
        assert_eq!(c.due, None);
        let t0 = Instant::now();
        c.changed(t0);
        assert_eq!(c.due, Some(t0 + q));
        // A change every 5 s keeps pushing it back, up to 10 x quiet after the first.
        for i in 1..100u32 {
            c.changed(t0 + Duration::from_secs(5) * i);
        }
        assert_eq!(c.due, Some(t0 + q * 10));
        c.done();
        assert_eq!(c.due, None);
    }

    #[test]
    fn events_reduce_to_changed_paths_under_the_roots() {
        let roots = [PathBuf::from("/docs")];
        let index = Path::new("/docs/.idx");
        let events = [
            ev(EventKind::Create(CreateKind::File), &["/docs/a.md"]),
            ev(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/docs/b.md", "/docs/sub/b.md"],
            ),
            ev(EventKind::Remove(RemoveKind::File), &["/docs/c.md"]),
            ev(
                EventKind::Access(AccessKind::Open(AccessMode::Read)),
                &["/docs/d.md"],
            ),
            ev(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                &["/docs/e.md"],
            ),
            ev(
                EventKind::Modify(ModifyKind::Any),
                &["/docs/.idx/manifest.json"],
            ),
            ev(EventKind::Create(CreateKind::File), &["/elsewhere/x.md"]),
        ];
        let mut c = Changes::default();
        collect(&events, &roots, index, &mut c);
        let got: Vec<&str> = c.paths.iter().map(|p| p.to_str().unwrap()).collect();
        assert_eq!(
            got,
            [
                "/docs/a.md",
                "/docs/b.md",
                "/docs/c.md",
                "/docs/e.md",
                "/docs/sub/b.md"
            ]
        );
        assert!(!c.rescan);

        let mut c2 = Changes::default();
        collect(
            &[ev(
                EventKind::Modify(ModifyKind::Any),
                &["/docs/sub/.gitignore"],
            )],
            &roots,
            index,
            &mut c2,
        );
        assert_eq!(
            c2.paths.into_iter().collect::<Vec<_>>(),
            [PathBuf::from("/docs/sub")],
            "an ignore file's folder is looked at again"
        );

        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        collect(&[overflow], &roots, index, &mut c);
        assert!(c.rescan);
    }
}
