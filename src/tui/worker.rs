//! The terminal UI's background work: loading the models, indexing (the watcher, or following
//! another process's commits), answering, searching and loading previews. Everything reports to
//! the UI thread as [`WorkerEvent`]s on one channel; nothing here touches the terminal.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, SystemTime};

use super::app::{IndexStatus, ModelState, PreviewDoc, TurnEvent, WorkerEvent};
use crate::answer::prompt::Prompts;
use crate::answer::{self, AskOptions, Event, Indexing};
use crate::config::Settings;
use crate::embed::Embedder;
use crate::index::manifest::Manifest;
use crate::index::search::{Filter, Passage, Retrievers, SearchOptions};
use crate::index::{Index, IndexError, read_manifest};
use crate::ingest::pdf::PdfExtractor;
use crate::ingest::{Kind, Unit};
use crate::pipeline::IndexOptions;
use crate::watch::{WatchEvent, WatchOptions, Watcher};

/// What the UI hands to the workers.
pub struct Setup {
    pub settings: Settings,
    /// Folders to index and follow; empty: the index's remembered roots.
    pub roots: Vec<PathBuf>,
    /// The user's prompt overrides.
    pub prompts_dir: Option<PathBuf>,
}

enum Request {
    Ask {
        id: u64,
        question: String,
        indexing: Option<Indexing>,
    },
    Search(String),
}

/// Handles to the running workers.
pub struct Workers {
    requests: Sender<Request>,
    searches: Sender<Request>,
    cancel: Arc<AtomicBool>,
    /// Requests with an id up to this are cancelled, even before they start.
    cancelled_upto: Arc<AtomicU64>,
    /// The id of the newest ask.
    last_id: u64,
    previews: Sender<Passage>,
    watcher: Arc<std::sync::Mutex<Option<Watcher>>>,
}

/// A file's path, its modification time, and its extracted text.
type PreviewEntry = (String, SystemTime, Arc<Vec<Unit>>);

/// The extracted text of the last few files previewed, so that moving through the sources
/// does not extract the same PDF again and again. Keyed by path and modification time.
#[derive(Default)]
pub struct PreviewCache {
    entries: std::sync::Mutex<Vec<PreviewEntry>>,
}

impl PreviewCache {
    const SIZE: usize = 8;

    fn get(&self, path: &str, mtime: SystemTime) -> Option<Arc<Vec<Unit>>> {
        let entries = self.entries.lock().ok()?;
        entries
            .iter()
            .find(|(p, t, _)| p == path && *t == mtime)
            .map(|(_, _, u)| u.clone())
    }

    fn put(&self, path: &str, mtime: SystemTime, units: Arc<Vec<Unit>>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|(p, _, _)| p != path);
            entries.push((path.to_string(), mtime, units));
            if entries.len() > Self::SIZE {
                entries.remove(0);
            }
        }
    }
}

impl Workers {
    /// Asks `question`; reports about it carry `id` (increasing from ask to ask).
    pub fn ask(&mut self, id: u64, question: String, indexing: Option<Indexing>) {
        self.last_id = self.last_id.max(id);
        let _ = self.requests.send(Request::Ask {
            id,
            question,
            indexing,
        });
    }

    pub fn search(&self, query: String) {
        let _ = self.searches.send(Request::Search(query));
    }

    pub fn cancel(&self) {
        self.cancelled_upto.store(self.last_id, Ordering::SeqCst);
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Loads the text around `p` from its file, off the UI thread.
    pub fn preview(&self, p: Passage) {
        let _ = self.previews.send(p);
    }

    /// Stops the watcher (its batch in progress is committed first).
    pub fn shutdown(self) {
        self.cancel();
        if let Ok(mut w) = self.watcher.lock()
            && let Some(w) = w.take()
            && let Err(e) = w.stop()
        {
            tracing::warn!(error = %crate::error_chain(&e), "stopping the watcher");
        }
    }
}

/// Starts the workers; they report on `events`.
pub fn start(setup: Setup, events: Sender<WorkerEvent>) -> Workers {
    let (req_tx, req_rx) = channel();
    let (search_tx, search_rx) = channel();
    let (preview_tx, preview_rx) = channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let cancelled_upto = Arc::new(AtomicU64::new(0));
    let pdf = crate::setup::pdf_extractor(&setup.settings);
    {
        let events = events.clone();
        std::thread::spawn(move || serve_previews(&pdf, preview_rx, events));
    }
    let watcher = Arc::new(std::sync::Mutex::new(None));
    let workers = Workers {
        requests: req_tx,
        searches: search_tx,
        cancel: cancel.clone(),
        cancelled_upto: cancelled_upto.clone(),
        last_id: 0,
        previews: preview_tx,
        watcher: watcher.clone(),
    };
    let spawned = std::thread::Builder::new()
        .name("folio-load".into())
        .spawn(move || {
            load_and_serve(
                setup,
                events,
                req_rx,
                search_rx,
                cancel,
                cancelled_upto,
                watcher,
            )
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the loader thread");
    }
    workers
}

/// `hh:mm:ss` of `at` in the local time zone.
fn local_time(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

fn status_from(m: &Manifest, base: &IndexStatus) -> IndexStatus {
    let mut failed: Vec<(String, String)> = m
        .problems
        .iter()
        .map(|(p, pr)| (p.clone(), pr.reason.clone()))
        .collect();
    failed.sort();
    IndexStatus {
        files: m.files.len(),
        passages: m.chunk_count(),
        failed,
        ..base.clone()
    }
}

fn load_and_serve(
    setup: Setup,
    events: Sender<WorkerEvent>,
    requests: Receiver<Request>,
    searches: Receiver<Request>,
    cancel: Arc<AtomicBool>,
    cancelled_upto: Arc<AtomicU64>,
    watcher_slot: Arc<std::sync::Mutex<Option<Watcher>>>,
) {
    let send = |e: WorkerEvent| {
        let _ = events.send(e);
    };
    let s = &setup.settings;
    send(WorkerEvent::Model(ModelState::Loading(
        "the embedding model".into(),
    )));
    let embedder = match crate::setup::embedder(s, &mut |_| {}) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            send(WorkerEvent::Model(ModelState::Failed(crate::error_chain(
                &e,
            ))));
            return;
        }
    };

    // Indexing: our own watcher when we can write the index, else follow the writer.
    let index_dir = s.index_dir.clone();
    let opts = IndexOptions::from_settings(s, &embedder, false);
    let mut base = IndexStatus::default();
    match Index::open_writer(&index_dir, embedder.info(), &opts.chunking(), false) {
        Ok(idx) => match crate::setup::roots(&setup.roots, &idx, "tui") {
            Err(e) => {
                base.error = Some(crate::error_chain(&e));
                send(WorkerEvent::Index(status_from(idx.manifest(), &base)));
            }
            Ok(roots) => {
                let pdf = crate::setup::pdf_extractor(s);
                match Watcher::start(idx, embedder.clone(), pdf, WatchOptions::new(roots, opts)) {
                    Ok((w, rx)) => {
                        if let Ok(mut slot) = watcher_slot.lock() {
                            *slot = Some(w);
                        }
                        let events = events.clone();
                        let dir = index_dir.clone();
                        std::thread::spawn(move || forward_watch(rx, &dir, events));
                    }
                    Err(e) => {
                        base.error = Some(crate::error_chain(&e));
                        send(WorkerEvent::Index(base.clone()));
                    }
                }
            }
        },
        Err(IndexError::Locked { holder, .. }) => {
            if !setup.roots.is_empty() {
                send(WorkerEvent::Notice(format!(
                    "{holder} writes this index: following its changes; the folders given are not watched from here"
                )));
            }
            base.read_only = Some(holder);
            let events = events.clone();
            let dir = index_dir.clone();
            std::thread::spawn(move || follow(&dir, base, events));
        }
        Err(e) => {
            base.error = Some(crate::error_chain(&e));
            send(WorkerEvent::Index(base.clone()));
        }
    }

    // Search worker: its own reader, refreshed before each query.
    {
        let embedder = embedder.clone();
        let events = events.clone();
        let settings = setup.settings.clone();
        let dir = index_dir.clone();
        std::thread::spawn(move || serve_searches(&dir, &embedder, &settings, searches, events));
    }
    send(WorkerEvent::SearchReady);

    let llm_name = Path::new(&s.llm)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|_| s.llm != "default")
        .unwrap_or_else(|| "SmolLM2-135M-Instruct".into());
    send(WorkerEvent::Model(ModelState::Loading(llm_name.clone())));
    let llm = crate::setup::llm(s, &mut |_| {}).map_err(|e| crate::error_chain(&e));
    let mut llm = match llm {
        Ok(l) => {
            let shown = if l.info().base_model {
                format!("{llm_name} (no chat template: a base model? answers may be poor)")
            } else {
                llm_name
            };
            send(WorkerEvent::Model(ModelState::Ready(shown)));
            l
        }
        Err(why) => {
            send(WorkerEvent::Model(ModelState::Failed(why)));
            return;
        }
    };
    let prompts = match Prompts::load(setup.prompts_dir.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            send(WorkerEvent::Model(ModelState::Failed(format!(
                "prompts: {}",
                crate::error_chain(&e)
            ))));
            return;
        }
    };
    let ask_opts = AskOptions::from_settings(s, Filter::default());
    let mut reader: Option<Index> = None;
    for req in requests {
        let Request::Ask {
            id,
            question,
            indexing,
        } = req
        else {
            continue;
        };
        let turn = |ev: TurnEvent| send(WorkerEvent::Turn(id, ev));
        // Clear the flag first, then look: a cancel that lands in between is seen either way.
        cancel.store(false, Ordering::SeqCst);
        if cancelled_upto.load(Ordering::SeqCst) >= id {
            turn(TurnEvent::Failed("cancelled".into()));
            continue;
        }
        let idx = match fresh_reader(reader.take(), &index_dir, &embedder) {
            Ok(i) => i,
            Err(e) => {
                turn(TurnEvent::Failed(e));
                continue;
            }
        };
        turn(TurnEvent::Generating);
        let mut opts = ask_opts.clone();
        // A run that began after the question was typed counts too: its files were not read.
        opts.indexing = crate::index::progress::read(&index_dir).or(indexing);
        // A panic in a model or the index fails this question, not every later one.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut engine = answer::Engine {
                index: &idx,
                embedder: &embedder,
                llm: &mut llm,
                prompts: &prompts,
            };
            answer::ask(&mut engine, &question, &opts, &cancel, &mut |e| match e {
                Event::Evidence(e) => turn(TurnEvent::Evidence(e.to_vec())),
                Event::Passages(p) => turn(TurnEvent::Passages(p.to_vec())),
                Event::Token(t) => turn(TurnEvent::Token(t.to_string())),
                // The TUI asks without earlier turns: nothing is rewritten.
                Event::Rewritten(_) => {}
            })
        }));
        match result {
            Ok(Ok(a)) => turn(TurnEvent::Answered(Box::new(a))),
            Ok(Err(e)) => turn(TurnEvent::Failed(crate::error_chain(&e))),
            Err(panic) => {
                let why = crate::panic_message(&*panic);
                tracing::error!(%why, "answering panicked");
                turn(TurnEvent::Failed(format!("internal error: {why}")));
            }
        }
        reader = Some(idx);
    }
}

fn serve_searches(
    dir: &Path,
    embedder: &Embedder,
    settings: &Settings,
    rx: Receiver<Request>,
    events: Sender<WorkerEvent>,
) {
    let mut opts = SearchOptions::from_settings(settings, Retrievers::Hybrid);
    opts.k = opts.k.max(20);
    let mut reader: Option<Index> = None;
    while let Ok(mut req) = rx.recv() {
        // Only the newest query matters: skip those typed past.
        while let Ok(newer) = rx.try_recv() {
            req = newer;
        }
        let Request::Search(query) = req else {
            continue;
        };
        match fresh_reader(reader.take(), dir, embedder) {
            Ok(i) => {
                let passages = match i.search(Some(embedder), &query, &opts) {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = events.send(WorkerEvent::Notice(format!(
                            "search: {}",
                            crate::error_chain(&e)
                        )));
                        Vec::new()
                    }
                };
                let _ = events.send(WorkerEvent::SearchResults { query, passages });
                reader = Some(i);
            }
            Err(e) => {
                let _ = events.send(WorkerEvent::Notice(format!("search: {e}")));
            }
        }
    }
}

/// A reader that sees the latest commits (the watcher may have written since the last use),
/// built with the embedding model we hold.
fn fresh_reader(reader: Option<Index>, dir: &Path, embedder: &Embedder) -> Result<Index, String> {
    let idx = match reader {
        Some(mut r) => r.refresh().map(|_| r),
        None => Index::open_reader(dir),
    }
    .map_err(|e| crate::error_chain(&e))?;
    idx.check_model(embedder.info())
        .map_err(|e| crate::error_chain(&e))?;
    Ok(idx)
}

/// One preview at a time, the newest asked for: holding a key down over the sources of one
/// large PDF extracts it once, not once per source passed.
fn serve_previews(pdf: &PdfExtractor, rx: Receiver<Passage>, events: Sender<WorkerEvent>) {
    let cache = PreviewCache::default();
    while let Ok(mut p) = rx.recv() {
        while let Ok(newer) = rx.try_recv() {
            p = newer;
        }
        let e = match load_preview(&p, pdf, &cache) {
            Ok(doc) => WorkerEvent::Preview(doc),
            Err(why) => WorkerEvent::Notice(format!("preview: {why}")),
        };
        let _ = events.send(e);
    }
}

/// Turns the watcher's events into status-bar updates.
fn forward_watch(rx: Receiver<WatchEvent>, dir: &Path, events: Sender<WorkerEvent>) {
    let mut st = IndexStatus {
        watching: false,
        ..Default::default()
    };
    if let Ok(m) = read_manifest(dir) {
        st = status_from(&m, &st);
    }
    let _ = events.send(WorkerEvent::Index(st.clone()));
    for e in rx {
        match e {
            WatchEvent::Progress(p) => {
                st.progress = Some((p.files_done, p.files_total));
            }
            WatchEvent::Applied { .. } => {
                st.progress = None;
                st.last_update = Some(format!("updated {}", local_time(SystemTime::now())));
                if let Ok(m) = read_manifest(dir) {
                    st = status_from(&m, &st);
                }
            }
            WatchEvent::Watching { .. } => st.watching = true,
            WatchEvent::Scanning { .. } => st.progress = Some((0, 0)),
            WatchEvent::Notice(n) => {
                let _ = events.send(WorkerEvent::Notice(n));
            }
            WatchEvent::Problem { .. } => {}
            WatchEvent::Stopped { error } => {
                st.watching = false;
                st.progress = None;
                st.error = error;
            }
        }
        if events.send(WorkerEvent::Index(st.clone())).is_err() {
            return;
        }
    }
}

/// Follows an index another process writes: re-reads its manifest when it changes.
fn follow(dir: &Path, base: IndexStatus, events: Sender<WorkerEvent>) {
    let path = dir.join("manifest.json");
    let mut seen = None;
    loop {
        let m = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if m != seen {
            seen = m;
            if let Ok(man) = read_manifest(dir) {
                let mut st = status_from(&man, &base);
                // When the writer last committed, not when we noticed.
                st.last_update = m.map(|t| format!("updated {}", local_time(t)));
                if events.send(WorkerEvent::Index(st)).is_err() {
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The text of the passage's page (PDF) or file, and where the passage lies in it.
pub fn load_preview(
    p: &Passage,
    pdf: &PdfExtractor,
    cache: &PreviewCache,
) -> Result<PreviewDoc, String> {
    let path = &crate::fsutil::key_path(&p.path);
    Kind::of(path).ok_or("not a document folio reads")?;
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| crate::error_chain(&e))?;
    let units = match cache.get(&p.path, mtime) {
        Some(u) => u,
        None => {
            let units = crate::ingest::read_file(path, pdf).map_err(|e| crate::error_chain(&e))?;
            let units = Arc::new(units);
            cache.put(&p.path, mtime, units.clone());
            units
        }
    };
    let unit = units
        .iter()
        .find(|u| u.page == p.page)
        .or(units.first())
        .ok_or("the file has no text")?;
    let chars: Vec<char> = unit.text.chars().collect();
    let [s, e] = p.span;
    let at_span: String = chars
        .get(s..e.min(chars.len()))
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let span = if at_span == p.text {
        p.span
    } else if let Some(b) = unit.text.find(p.text.as_str()) {
        // The file was edited since: find the passage where it now is.
        let s = unit.text[..b].chars().count();
        [s, s + p.text.chars().count()]
    } else {
        return Err("the file changed since it was indexed".into());
    };
    Ok(preview_window(&p.chunk, &unit.text, span))
}

/// The part of `text` the preview shows: a little before the passage and a bounded stretch
/// after it, so that the UI never lays out a whole book on every frame.
fn preview_window(chunk: &str, text: &str, span: [usize; 2]) -> PreviewDoc {
    const BEFORE: usize = 400;
    const AFTER: usize = 20_000;
    let from = span[0].saturating_sub(BEFORE);
    let to = span[1].saturating_add(AFTER);
    let byte = |c: usize| text.char_indices().nth(c).map_or(text.len(), |(b, _)| b);
    let (b0, b1) = (byte(from), byte(to));
    PreviewDoc {
        chunk: chunk.to_string(),
        text: text[b0..b1].to_string(),
        span: [span[0] - from, span[1] - from],
        more: b1 < text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preview_window_keeps_the_passage_and_bounds_the_rest() {
        let passage = "Notice is ninety (90) days.";
        let text = format!("{}{passage}{}", "é".repeat(5_000), "x".repeat(50_000));
        let s = 5_000;
        let doc = preview_window("c", &text, [s, s + passage.chars().count()]);
        let chars: Vec<char> = doc.text.chars().collect();
        let shown: String = chars[doc.span[0]..doc.span[1]].iter().collect();
        assert_eq!(shown, passage);
        assert_eq!(doc.span[0], 400);
        assert!(doc.more && chars.len() < 21_000);
        let short = preview_window("c", passage, [0, 6]);
        assert_eq!(
            (short.text.as_str(), short.span, short.more),
            (passage, [0, 6], false)
        );
    }
}
