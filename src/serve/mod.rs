//! `folio serve`: the index and the model behind two local protocols, MCP over stdio
//! ([`mcp`]) and an OpenAI-compatible HTTP API ([`http`]). Both call one [`Service`], which
//! owns the index (a reader that picks up what `folio watch` commits), the sentence encoder,
//! and a queue in front of the one language model: searches and embeddings run at once on
//! any thread; questions wait their turn, and a full queue refuses at once ([`ServeError::Busy`])
//! instead of letting callers pile up.

pub mod http;
pub mod mcp;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::answer::prompt::Prompts;
use crate::answer::{self, Answer, AskOptions, Engine, Event};
use crate::config::Settings;
use crate::doc::Unit;
use crate::embed::Embedder;
use crate::index::Index;
use crate::index::search::{Filter, Passage, Retrievers, SearchOptions};
use crate::ingest::pdf::PdfExtractor;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no indexed file {0}")]
    NotIndexed(String),
    #[error("the model is busy: {0} questions are already waiting; try again shortly")]
    Busy(usize),
    #[error("the answering thread stopped")]
    Stopped,
    #[error(transparent)]
    Index(#[from] crate::index::IndexError),
    #[error(transparent)]
    Search(#[from] crate::index::search::SearchError),
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error(transparent)]
    Answer(#[from] crate::answer::AnswerError),
    #[error(transparent)]
    Setup(#[from] crate::setup::SetupError),
    #[error("{0}")]
    Extract(#[from] crate::ingest::extract::ExtractError),
}

/// A search as MCP's `search` tool and HTTP's `/search` take it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(alias = "q")]
    pub query: String,
    /// Passages wanted (1 to 100; default `search.k`).
    #[serde(default)]
    pub k: Option<usize>,
    /// Glob over the absolute path (`**/contracts/*.pdf`).
    #[serde(default)]
    pub path: Option<String>,
    /// File extensions, without the dot.
    #[serde(default)]
    pub ext: Vec<String>,
    /// `hybrid` (default), `bm25` or `dense`.
    #[serde(default)]
    pub mode: Option<Retrievers>,
}

/// The most passages one request may ask for.
pub const MAX_K: usize = 100;

/// The most characters one `read` returns.
pub const MAX_READ_CHARS: usize = 20_000;

/// What MCP's `read` tool takes: a file, a page of a PDF, and where a passage lies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub path: String,
    #[serde(default)]
    pub page: Option<u32>,
    /// `[start, end]` character offsets of a passage in its page or file.
    #[serde(default)]
    pub span: Option<[usize; 2]>,
    /// Characters on each side of the span (default 1000).
    #[serde(default)]
    pub context: Option<usize>,
}

/// A stretch of a file's text: `text` runs from character `start` to `end` of the page (PDF)
/// or file, whose whole length is `length`.
#[derive(Debug, Clone, Serialize)]
pub struct ReadText {
    pub path: String,
    pub page: Option<u32>,
    pub start: usize,
    pub end: usize,
    pub length: usize,
    pub text: String,
}

/// The window of `text` (its characters) around `span`, `context` on each side, bounded by
/// [`MAX_READ_CHARS`]; without a span, the beginning.
fn read_window(
    text: &str,
    span: Option<[usize; 2]>,
    context: usize,
) -> Result<(usize, usize, String), String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let (start, end) = match span {
        Some([s, e]) if s > e || e > n => {
            return Err(format!(
                "span [{s}, {e}] is outside the text's {n} characters"
            ));
        }
        Some([s, e]) => (s.saturating_sub(context), (e + context).min(n)),
        None => (0, n),
    };
    let end = end.min(start + MAX_READ_CHARS);
    Ok((start, end, chars[start..end].iter().collect()))
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub index: String,
    pub roots: Vec<String>,
    pub files: usize,
    pub passages: u64,
    pub problems: usize,
    pub embed_model: String,
    pub llm: String,
    /// Set while an index run (`folio watch`, `folio index`) is under way.
    pub indexing: Option<answer::Indexing>,
    /// Questions waiting for the model, and the most that may wait.
    pub queued: usize,
    pub queue_limit: usize,
}

/// What a queued question reports, in order: pieces of the model's text, then the answer.
#[derive(Debug)]
pub enum AskEvent {
    Token(String),
    Done(Result<Box<Answer>, String>),
}

/// One question for the model's thread.
struct Job {
    question: String,
    conversation: Vec<answer::Turn>,
    filter: Filter,
    max_tokens: Option<usize>,
    cancel: Arc<AtomicBool>,
    events: tokio::sync::mpsc::UnboundedSender<AskEvent>,
}

/// A question in the queue. Dropping it (a client that went away) stops its generation.
pub struct Ticket {
    pub events: tokio::sync::mpsc::UnboundedReceiver<AskEvent>,
    cancel: Arc<AtomicBool>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

struct Shared {
    settings: Settings,
    /// The last committed state; requests hold their own snapshot (an `Arc`), so a long
    /// answer never keeps a newer commit from the next request.
    index: Mutex<Arc<Index>>,
    embedder: Embedder,
    queued: std::sync::atomic::AtomicUsize,
}

/// The index, the encoder and the queue to the model, shared by every request.
pub struct Service {
    shared: Arc<Shared>,
    jobs: SyncSender<Job>,
    queue_limit: usize,
    pdf: PdfExtractor,
}

impl Service {
    /// Opens the index and the encoder now; the language model loads on the first question,
    /// on the model's own thread, so that search is served from the start.
    pub fn open(settings: Settings, prompts: Prompts) -> Result<Service, ServeError> {
        let index = Index::open_reader(&settings.index_dir)?;
        let embedder = crate::setup::embedder(&settings, &mut |m| tracing::info!("{m}"))?;
        index.check_model(embedder.info())?;
        let queue_limit = settings.serve_queue.max(1);
        let pdf = crate::setup::pdf_extractor(&settings);
        let shared = Arc::new(Shared {
            settings,
            index: Mutex::new(Arc::new(index)),
            embedder,
            queued: Default::default(),
        });
        let (jobs, rx) = sync_channel(queue_limit);
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("folio-answer".into())
            .spawn(move || answer_loop(&worker, &prompts, rx))
            .map_err(|e| {
                ServeError::BadRequest(format!("cannot start the answering thread: {e}"))
            })?;
        Ok(Service {
            shared,
            jobs,
            queue_limit,
            pdf,
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// The name clients use for the answering model (`/v1/models`).
    pub fn model_name(&self) -> &'static str {
        "folio"
    }

    /// The encoder's name (`/v1/embeddings`).
    pub fn embed_model_name(&self) -> String {
        self.shared.embedder.info().name.clone()
    }

    /// Passages for a query, as `folio search --json` gives them.
    pub fn search(&self, req: &SearchRequest) -> Result<Vec<Passage>, ServeError> {
        if req.query.trim().is_empty() {
            return Err(ServeError::BadRequest("the query is empty".into()));
        }
        let s = &self.shared.settings;
        let mut opts = SearchOptions::from_settings(s, req.mode.unwrap_or(Retrievers::Hybrid));
        if let Some(k) = req.k {
            if !(1..=MAX_K).contains(&k) {
                return Err(ServeError::BadRequest(format!("k must be 1 to {MAX_K}")));
            }
            opts.k = k;
        }
        opts.filter = filter(req.path.clone(), req.ext.clone());
        let idx = self.shared.reader();
        let embedder = (opts.mode != Retrievers::Bm25).then_some(&self.shared.embedder);
        Ok(idx.search(embedder, &req.query, &opts)?)
    }

    /// Sentence embeddings of `texts` by the index's encoder (normalised).
    pub fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, usize), ServeError> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(self.shared.embedder.embed_counted(&refs)?)
    }

    pub fn status(&self) -> Status {
        let s = &self.shared.settings;
        let idx = self.shared.reader();
        let m = idx.manifest();
        Status {
            index: s.index_dir.display().to_string(),
            roots: m.roots.clone(),
            files: m.files.len(),
            passages: m.chunk_count(),
            problems: m.problems.len(),
            embed_model: self.embed_model_name(),
            llm: s.llm.clone(),
            indexing: crate::index::progress::read(&s.index_dir),
            queued: self.shared.queued.load(Ordering::SeqCst),
            queue_limit: self.queue_limit,
        }
    }

    /// The indexed files, by path.
    pub fn files(&self) -> Vec<(String, crate::doc::Kind, Option<u32>)> {
        let idx = self.shared.reader();
        idx.manifest()
            .files
            .iter()
            .map(|(p, r)| (p.clone(), r.kind, Some(r.chunks)))
            .collect()
    }

    /// The extracted text of an indexed file (all its units), or of one page of a PDF.
    pub fn file_text(&self, path: &str, page: Option<u32>) -> Result<String, ServeError> {
        if !self.shared.reader().manifest().files.contains_key(path) {
            return Err(ServeError::NotIndexed(path.to_string()));
        }
        let units = crate::ingest::read_file(&crate::fsutil::key_path(path), &self.pdf)?;
        let pick = |u: &&Unit| page.is_none() || u.page == page;
        let texts: Vec<&str> = units.iter().filter(pick).map(|u| u.text.as_str()).collect();
        if texts.is_empty() {
            return Err(ServeError::BadRequest(format!(
                "{path} has no page {}",
                page.unwrap_or(0)
            )));
        }
        Ok(texts.join("\n\u{c}\n"))
    }

    /// The text around a passage, or the beginning of a file or page, for quoting in context.
    pub fn read(&self, req: &ReadRequest) -> Result<ReadText, ServeError> {
        let is_pdf =
            crate::doc::Kind::of(std::path::Path::new(&req.path)) == Some(crate::doc::Kind::Pdf);
        if req.page.is_some() && !is_pdf {
            return Err(ServeError::BadRequest(format!(
                "{} has no pages: only PDFs do; leave out `page`",
                req.path
            )));
        }
        // A PDF is read a page at a time: spans count from the start of their page.
        let page = if is_pdf {
            Some(req.page.unwrap_or(1))
        } else {
            None
        };
        let text = self.file_text(&req.path, page)?;
        let (start, end, window) = read_window(&text, req.span, req.context.unwrap_or(1000))
            .map_err(ServeError::BadRequest)?;
        Ok(ReadText {
            path: req.path.clone(),
            page,
            start,
            end,
            length: text.chars().count(),
            text: window,
        })
    }

    /// Queues a question for the model. `Err(Busy)` at once when the queue is full.
    /// `conversation` holds the earlier turns, oldest first: the question is then a follow-up.
    pub fn ask(
        &self,
        question: &str,
        conversation: Vec<answer::Turn>,
        filter: Filter,
        max_tokens: Option<usize>,
    ) -> Result<Ticket, ServeError> {
        if question.trim().is_empty() {
            return Err(ServeError::BadRequest("the question is empty".into()));
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            question: question.to_string(),
            conversation,
            filter,
            max_tokens,
            cancel: cancel.clone(),
            events: tx,
        };
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(job) {
            Ok(()) => Ok(Ticket { events: rx, cancel }),
            Err(e) => {
                self.shared.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => ServeError::Busy(self.queue_limit),
                    TrySendError::Disconnected(_) => ServeError::Stopped,
                })
            }
        }
    }
}

/// A search filter from a path glob and extensions.
pub fn filter(path: Option<String>, ext: Vec<String>) -> Filter {
    Filter {
        path_glob: path.filter(|p| !p.is_empty()),
        ext: ext
            .into_iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .filter(|e| !e.is_empty())
            .collect(),
        exclude: Vec::new(),
    }
}

impl Shared {
    /// The index as it is now: commits made by another process since the last request are
    /// picked up first.
    fn reader(&self) -> Arc<Index> {
        // A panic while holding the lock leaves the index as it was: keep serving.
        let mut current = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_stale() {
            // Another process (`folio watch`, `folio index`) committed: a fresh reader sees
            // it, and requests still running keep the snapshot they started with.
            match Index::open_reader(&self.settings.index_dir) {
                Ok(fresh) => *current = Arc::new(fresh),
                Err(e) => tracing::warn!("reopening the index: {}", crate::error_chain(&e)),
            }
        }
        current.clone()
    }
}

/// The model's thread: loads the model on the first question (and again after a failed
/// load), then answers questions one at a time.
fn answer_loop(shared: &Shared, prompts: &Prompts, jobs: Receiver<Job>) {
    let mut llm = None;
    for job in jobs {
        shared.queued.fetch_sub(1, Ordering::SeqCst);
        if job.cancel.load(Ordering::SeqCst) {
            continue;
        }
        let s = &shared.settings;
        if llm.is_none() {
            match crate::setup::llm(s, &mut |m| tracing::info!("{m}")) {
                Ok(l) => llm = Some(l),
                Err(e) => {
                    let _ = job.events.send(AskEvent::Done(Err(crate::error_chain(&e))));
                    continue;
                }
            }
        }
        let Some(model) = llm.as_mut() else { continue };
        let mut opts = AskOptions::from_settings(s, job.filter.clone());
        if let Some(n) = job.max_tokens {
            opts.generate.max_tokens = n;
        }
        opts.indexing = crate::index::progress::read(&s.index_dir);
        opts.conversation = job.conversation;
        let idx = shared.reader();
        let mut engine = Engine {
            index: &idx,
            embedder: &shared.embedder,
            llm: model,
            prompts,
        };
        let events = job.events.clone();
        let result = answer::ask(&mut engine, &job.question, &opts, &job.cancel, &mut |e| {
            if let Event::Token(t) = e {
                let _ = events.send(AskEvent::Token(t.to_string()));
            }
        });
        let _ = job.events.send(AskEvent::Done(
            result.map(Box::new).map_err(|e| crate::error_chain(&e)),
        ));
    }
}

/// Where a source is: `path`, `path, page 3`.
pub fn source_label(p: &Passage) -> String {
    match p.page {
        Some(n) => format!("{}, page {n}", p.path),
        None => p.path.clone(),
    }
}

/// The sources block appended to an answer for chat clients: each cited passage (or, when
/// folio abstained, the closest ones) with its file, page and the quoted span.
pub fn sources_text(a: &Answer) -> String {
    let mut out = String::new();
    let cited: Vec<(usize, &Passage, String)> = if a.citations.iter().any(|c| c.valid) {
        a.citations
            .iter()
            .filter(|c| c.valid)
            .filter_map(|c| Some((c.n, c.passage.as_ref()?, c.quote.clone())))
            .collect()
    } else if !a.evidence.is_empty() {
        a.evidence
            .iter()
            .map(|e| (e.n, &e.passage, e.quote.clone()))
            .collect()
    } else {
        a.passages
            .iter()
            .enumerate()
            .map(|(i, p)| (i + 1, p, String::new()))
            .collect()
    };
    if cited.is_empty() {
        return out;
    }
    out.push_str(if a.abstained {
        "\n\nClosest passages:"
    } else {
        "\n\nSources:"
    });
    for (n, p, quote) in cited {
        out.push_str(&format!("\n[{n}] {}", source_label(p)));
        let quote = quote.trim();
        if !quote.is_empty() {
            out.push_str(&format!(": \u{201c}{quote}\u{201d}"));
        }
    }
    out
}

/// A file's path as MCP resources name it.
pub fn file_uri(path: &str, page: Option<u32>) -> String {
    let mut uri = String::from("file://");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    if let Some(n) = page {
        uri.push_str(&format!("#page={n}"));
    }
    uri
}

/// The path and page a `file://` URI names (the inverse of [`file_uri`]).
pub fn parse_file_uri(uri: &str) -> Option<(String, Option<u32>)> {
    let rest = uri.strip_prefix("file://")?;
    let (path, frag) = match rest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (rest, None),
    };
    let page = match frag {
        None => None,
        Some(f) => Some(f.strip_prefix("page=")?.parse().ok()?),
    };
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = String::from_utf8(out).ok()?;
    path.starts_with('/').then_some((path, page))
}

/// Where `folio serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8484";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_windows_around_the_span() {
        let text = "0123456789";
        assert_eq!(
            read_window(text, Some([4, 6]), 2).unwrap(),
            (2, 8, "234567".into())
        );
        assert_eq!(
            read_window(text, Some([0, 10]), 5).unwrap(),
            (0, 10, text.into())
        );
        assert_eq!(read_window(text, None, 3).unwrap(), (0, 10, text.into()));
        assert!(read_window(text, Some([6, 4]), 0).is_err());
        assert!(
            read_window(text, Some([4, 11]), 0)
                .unwrap_err()
                .contains("10 characters")
        );
        let long = "é".repeat(MAX_READ_CHARS + 10);
        let (s, e, w) = read_window(&long, None, 0).unwrap();
        assert_eq!(
            (s, e, w.chars().count()),
            (0, MAX_READ_CHARS, MAX_READ_CHARS)
        );
    }

    #[test]
    fn file_uris_round_trip_any_path_and_page() {
        for (path, page) in [
            ("/docs/acme msa.pdf", Some(3)),
            ("/docs/naïve #1 100%.md", None),
            ("/a/b", None),
        ] {
            let uri = file_uri(path, page);
            assert!(uri.is_ascii(), "{uri}");
            assert_eq!(
                parse_file_uri(&uri),
                Some((path.to_string(), page)),
                "{uri}"
            );
        }
        assert_eq!(parse_file_uri("http://x/y"), None);
        assert_eq!(parse_file_uri("file://relative"), None);
        assert_eq!(parse_file_uri("file:///a#page=x"), None);
        assert_eq!(parse_file_uri("file:///a%zz"), None);
    }

    #[test]
    fn filters_take_extensions_with_or_without_the_dot() {
        let f = filter(
            Some(String::new()),
            vec![".PDF".into(), "md".into(), "".into()],
        );
        assert_eq!(f.path_glob, None);
        assert_eq!(f.ext, ["pdf", "md"]);
    }
}
