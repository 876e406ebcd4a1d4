//! PDF text extraction, page by page, isolated in worker processes; Word, OpenDocument and
//! EPUB files are read in the same workers, under the same limits.
//!
//! pdf-extract panics on real-world PDFs, and a malformed file can also overflow the stack,
//! abort, or loop forever: none of that may stop a run. The same holds for the zip and XML
//! readers under the office formats (a zip bomb, XML nested a million deep). So extraction runs
//! in a child process (`folio` itself, started with the hidden `__pdf-worker` argument) that
//! answers one request per line, with its address space capped. The parent waits with a time
//! limit; a worker that times out is killed, one that dies is replaced, and either way only the
//! file at hand is reported as failed.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::extract::{ExtractError, extract_bytes};
use super::{Kind, Section, Unit};

/// Prefix of the worker's answer lines, so that anything else a library prints is ignored.
const ANSWER: &str = "\u{1e}folio-pdf ";

/// Address space a worker may use: a PDF that makes the parser allocate without bound fails
/// alone instead of taking the machine's memory.
pub(crate) const WORKER_MEMORY_BYTES: u64 = 4 << 30;

/// The PDF text extractors, in the order they are tried. pdf-extract reads most files well;
/// pdf_oxide has its own parser and reads many that lopdf refuses (broken cross-reference
/// tables, missing trailers) or on which pdf-extract panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Engine {
    #[serde(rename = "pdf-extract")]
    PdfExtract,
    #[serde(rename = "pdf_oxide")]
    PdfOxide,
    /// A scan: every page recognised by Tesseract ([`super::ocr`]).
    #[serde(rename = "tesseract")]
    Tesseract,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::PdfExtract => "pdf-extract",
            Engine::PdfOxide => "pdf_oxide",
            Engine::Tesseract => "tesseract",
        }
    }
}

/// The text of a PDF's pages (blank pages included, so numbers hold) and who read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdfText {
    pub pages: Vec<String>,
    pub engine: Engine,
    /// The pages (1-based) whose text was recognised from their image.
    #[serde(default)]
    pub recognised: Vec<u32>,
}

/// Extracts the text of each page of a PDF held in memory, in this process: pdf-extract
/// first, pdf_oxide when it fails, panics or finds no text. Panics inside either parser are
/// caught; stack overflows, aborts and endless loops are not, hence [`PdfExtractor`].
pub fn extract_pages(bytes: &[u8]) -> Result<PdfText, ExtractError> {
    extract_from(bytes, Engine::PdfExtract)
}

/// The pages one extractor alone reads, panics caught: for measuring the two side by side.
pub fn extract_with(bytes: &[u8], engine: Engine) -> Result<Vec<String>, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    match engine {
        Engine::PdfExtract => guarded(|| with_pdf_extract(bytes)),
        Engine::PdfOxide | Engine::Tesseract => guarded(|| with_pdf_oxide(bytes)),
    }
}

/// [`extract_pages`] starting at `first`: a worker that pdf-extract killed or hung is
/// replaced and asked again with pdf_oxide alone.
fn extract_from(bytes: &[u8], first: Engine) -> Result<PdfText, ExtractError> {
    let mut primary = None;
    if first == Engine::PdfExtract {
        match extract_with(bytes, Engine::PdfExtract) {
            Ok(pages) => {
                return Ok(PdfText {
                    pages,
                    engine: Engine::PdfExtract,
                    recognised: Vec::new(),
                });
            }
            // Nothing to read, or no parser reads it without the password.
            Err(e @ (ExtractError::Empty | ExtractError::Encrypted)) => return Err(e),
            Err(e) => primary = Some(e),
        }
    }
    match extract_with(bytes, Engine::PdfOxide) {
        Ok(pages) => Ok(PdfText {
            pages,
            engine: Engine::PdfOxide,
            recognised: Vec::new(),
        }),
        Err(e) => Err(match primary {
            Some(p) => both_failed(p, e),
            None => e,
        }),
    }
}

/// One error for a file both extractors failed on: an agreed diagnosis (no text layer,
/// encrypted) as such, otherwise both reasons.
fn both_failed(primary: ExtractError, fallback: ExtractError) -> ExtractError {
    use ExtractError::*;
    match (primary, fallback) {
        (NoTextLayer, _) | (_, NoTextLayer) => NoTextLayer,
        (_, Encrypted) => Encrypted,
        (p, f) => Pdf(format!("{p}; pdf_oxide: {f}")),
    }
}

fn guarded(
    f: impl FnOnce() -> Result<Vec<String>, ExtractError>,
) -> Result<Vec<String>, ExtractError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(ExtractError::Crashed(format!(
            "parser panicked: {}",
            crate::panic_message(&*payload)
        ))),
    }
}

/// Pages read, or the error of the last page when none could be: one bad page costs only
/// itself, and its number stays so that later pages keep theirs.
fn collect_pages(
    count: usize,
    mut page: impl FnMut(usize) -> Result<String, String>,
) -> Result<Vec<String>, ExtractError> {
    if count == 0 {
        return Err(ExtractError::Pdf("no pages".into()));
    }
    let mut out = Vec::with_capacity(count.min(1 << 16));
    let mut failed = 0;
    let mut last_err = String::new();
    for i in 0..count {
        match page(i) {
            Ok(text) => out.push(text),
            Err(e) => {
                failed += 1;
                last_err = e;
                out.push(String::new());
            }
        }
    }
    if failed == out.len() {
        return Err(ExtractError::Pdf(last_err));
    }
    if out.iter().all(|p| p.trim().is_empty()) {
        return Err(ExtractError::NoTextLayer);
    }
    Ok(out)
}

fn with_pdf_extract(bytes: &[u8]) -> Result<Vec<String>, ExtractError> {
    let mut doc = match lopdf::Document::load_mem(bytes) {
        Ok(d) => d,
        Err(lopdf::Error::Decryption(_)) | Err(lopdf::Error::InvalidPassword) => {
            return Err(ExtractError::Encrypted);
        }
        Err(e) => return Err(ExtractError::Pdf(e.to_string())),
    };
    if doc.is_encrypted() && doc.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    let numbers: Vec<u32> = doc.get_pages().into_keys().collect();
    collect_pages(numbers.len(), |i| {
        let mut text = String::new();
        let mut sink = pdf_extract::PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(&doc, &mut sink, numbers[i])
            .map(|()| text)
            .map_err(|e| e.to_string())
    })
}

fn with_pdf_oxide(bytes: &[u8]) -> Result<Vec<String>, ExtractError> {
    use pdf_oxide::Error as E;
    let oxide = |e: E| match e {
        E::EncryptedPdf => ExtractError::Encrypted,
        e => ExtractError::Pdf(e.to_string()),
    };
    let doc = pdf_oxide::PdfDocument::from_bytes(bytes.to_vec()).map_err(oxide)?;
    let count = doc.page_count().map_err(oxide)?;
    collect_pages(count, |i| doc.extract_text(i).map_err(|e| e.to_string()))
}

/// Turns page texts into units, dropping blank pages but keeping page numbers.
pub fn pages_to_units(pages: Vec<String>) -> Vec<Unit> {
    pages
        .into_iter()
        .enumerate()
        .filter(|(_, t)| !t.trim().is_empty())
        .map(|(i, text)| Unit {
            page: Some(i as u32 + 1),
            text: tidy_page(&text),
            sections: Vec::<Section>::new(),
        })
        .collect()
}

/// pdf-extract leaves runs of blank lines and trailing spaces; they carry no meaning and cost
/// tokens.
fn tidy_page(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = 0;
    for line in text.trim().lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(line);
    }
    out.push('\n');
    out
}

/// A worker's request: the file, by path key (JSON strings cannot hold every file name), and
/// the extractor to start with.
#[derive(Serialize, Deserialize)]
struct Request {
    path: String,
    first: Engine,
    /// A document that is not a PDF: read by [`extract_bytes`] as this kind.
    #[serde(default)]
    kind: Option<Kind>,
    /// The file's bytes follow the request line, this many, where the parent already read
    /// them; otherwise the worker reads the file.
    #[serde(default)]
    len: Option<usize>,
}

#[derive(Serialize, Deserialize)]
enum Answer {
    Pages(PdfText),
    Units(Vec<Unit>),
    Error(ExtractErrorWire),
}

/// What a worker read: a PDF's pages, or another document's units.
pub(crate) enum Read {
    Pages(PdfText),
    Units(Vec<Unit>),
}

impl Read {
    fn pages(self) -> Result<PdfText, ExtractError> {
        match self {
            Read::Pages(p) => Ok(p),
            Read::Units(_) => Err(ExtractError::Crashed("worker answered out of turn".into())),
        }
    }

    fn units(self) -> Result<Vec<Unit>, ExtractError> {
        match self {
            Read::Units(u) => Ok(u),
            Read::Pages(_) => Err(ExtractError::Crashed("worker answered out of turn".into())),
        }
    }
}

/// What a worker's answer line (after its prefix) says: what was read or the extraction
/// error; the outer error is a line that breaks the protocol.
pub(crate) type Reply = Result<Read, ExtractError>;

pub(crate) fn parse_answer(json: &str) -> Result<Reply, ExtractError> {
    Ok(
        match serde_json::from_str::<Answer>(json)
            .map_err(|e| ExtractError::Crashed(format!("bad worker answer: {e}")))?
        {
            Answer::Pages(p) => Ok(Read::Pages(p)),
            Answer::Units(u) => Ok(Read::Units(u)),
            Answer::Error(e) => Err(e.into()),
        },
    )
}

#[derive(Serialize, Deserialize)]
enum ExtractErrorWire {
    Empty,
    NoTextLayer,
    Encrypted,
    Pdf(String),
    Crashed(String),
    Io(String),
    Binary,
    Package(String),
    Protected,
    NothingRecognised,
    TooDeep(usize),
    TooLarge(String),
}

impl From<ExtractError> for ExtractErrorWire {
    fn from(e: ExtractError) -> Self {
        match e {
            ExtractError::Empty => Self::Empty,
            ExtractError::NoTextLayer => Self::NoTextLayer,
            ExtractError::Encrypted => Self::Encrypted,
            ExtractError::Pdf(s) => Self::Pdf(s),
            ExtractError::Crashed(s) => Self::Crashed(s),
            ExtractError::Io(s) => Self::Io(s),
            ExtractError::Binary => Self::Binary,
            ExtractError::Package(s) => Self::Package(s),
            ExtractError::Protected => Self::Protected,
            ExtractError::NothingRecognised => Self::NothingRecognised,
            ExtractError::TooDeep(n) => Self::TooDeep(n),
            ExtractError::TooLarge(s) => Self::TooLarge(s),
            ExtractError::Timeout(s) => Self::Crashed(format!("timeout {s}")),
        }
    }
}

impl From<ExtractErrorWire> for ExtractError {
    fn from(e: ExtractErrorWire) -> Self {
        match e {
            ExtractErrorWire::Empty => Self::Empty,
            ExtractErrorWire::NoTextLayer => Self::NoTextLayer,
            ExtractErrorWire::Encrypted => Self::Encrypted,
            ExtractErrorWire::Pdf(s) => Self::Pdf(s),
            ExtractErrorWire::Crashed(s) => Self::Crashed(s),
            ExtractErrorWire::Io(s) => Self::Io(s),
            ExtractErrorWire::Binary => Self::Binary,
            ExtractErrorWire::Package(s) => Self::Package(s),
            ExtractErrorWire::Protected => Self::Protected,
            ExtractErrorWire::NothingRecognised => Self::NothingRecognised,
            ExtractErrorWire::TooDeep(n) => Self::TooDeep(n),
            ExtractErrorWire::TooLarge(s) => Self::TooLarge(s),
        }
    }
}

/// The worker's main loop: one JSON [`Request`] per stdin line, one answer per stdout line.
/// Returns when stdin closes.
pub fn worker_main() -> i32 {
    // Panics are answered as errors; the default hook would only add noise on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    // A worker never outlives folio: killed (or gone by a second Ctrl-C) while a parser is busy
    // here, folio cannot end it, and its closed pipe is only seen between files. Once the
    // parent is gone the worker is re-parented, which this notices within a second.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(0);
            }
        }
    });
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut stdout = std::io::stdout();
    loop {
        let mut line = String::new();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let answer = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let bytes = match req.len {
                    // The parent's own count of a file it read: bounded all the same.
                    Some(n) if n <= MAX_REQUEST_BYTES => {
                        let mut b = vec![0; n];
                        match input.read_exact(&mut b) {
                            Ok(()) => Ok(b),
                            Err(_) => break,
                        }
                    }
                    // Not ours to read: the stream can no longer be followed.
                    Some(_) => break,
                    None => {
                        std::fs::read(crate::fsutil::key_path(&req.path)).map_err(|e| e.to_string())
                    }
                };
                match bytes {
                    Ok(bytes) => match req.kind.filter(|k| *k != Kind::Pdf) {
                        Some(kind) => match extract_bytes(kind, &bytes) {
                            Ok(units) => Answer::Units(units),
                            Err(e) => Answer::Error(e.into()),
                        },
                        None => match extract_from(&bytes, req.first) {
                            Ok(pages) => Answer::Pages(pages),
                            Err(e) => Answer::Error(e.into()),
                        },
                    },
                    Err(e) => Answer::Error(ExtractErrorWire::Io(e)),
                }
            }
            Err(e) => Answer::Error(ExtractErrorWire::Io(format!("bad request: {e}"))),
        };
        let answer = bounded(answer);
        let Ok(json) = serde_json::to_string(&answer) else {
            break;
        };
        if writeln!(stdout, "{ANSWER}{json}")
            .and_then(|_| stdout.flush())
            .is_err()
        {
            break;
        }
    }
    0
}

/// The most bytes a request may carry (files above the walk's limit never get here).
const MAX_REQUEST_BYTES: usize = 1 << 30;

/// The most text a worker hands back for one file: a 64 MiB file (the walk's default limit)
/// that expands past this is a bomb, not a document.
pub const MAX_TEXT_BYTES: usize = 128 << 20;

/// `answer`, or the error that its text is past [`MAX_TEXT_BYTES`].
fn bounded(answer: Answer) -> Answer {
    let bytes: usize = match &answer {
        Answer::Pages(p) => p.pages.iter().map(String::len).sum(),
        Answer::Units(u) => u.iter().map(|u| u.text.len()).sum(),
        Answer::Error(_) => 0,
    };
    if bytes > MAX_TEXT_BYTES {
        return Answer::Error(ExtractErrorWire::TooLarge(format!(
            "{} MiB of text, more than the {} MiB folio reads from one file",
            bytes >> 20,
            MAX_TEXT_BYTES >> 20
        )));
    }
    answer
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    answers: Receiver<String>,
}

impl Worker {
    fn spawn(exe: &Path) -> std::io::Result<Worker> {
        let mut cmd = Command::new(exe);
        cmd.arg("__pdf-worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // A group of its own: Ctrl-C on the terminal signals folio's foreground group, and
        // folio, not the signal, decides when a worker ends (it finishes the batch first).
        // A worker whose parent dies sees its stdin close and exits.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
            unsafe {
                cmd.pre_exec(|| {
                    let lim = libc::rlimit {
                        rlim_cur: WORKER_MEMORY_BYTES,
                        rlim_max: WORKER_MEMORY_BYTES,
                    };
                    libc::setrlimit(libc::RLIMIT_AS, &lim);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let stdout = child.stdout.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix(ANSWER)
                    && tx.send(json.to_string()).is_err()
                {
                    break;
                }
            }
        });
        Ok(Worker {
            child,
            stdin,
            answers,
        })
    }

    fn kill(mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => describe_exit(status),
            Err(e) => e.to_string(),
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGABRT) => "aborted (stack overflow or failed allocation)".into(),
        Some(libc::SIGSEGV) => "segmentation fault".into(),
        Some(libc::SIGKILL) => "killed".into(),
        Some(s) => format!("killed by signal {s}"),
        None => format!("exited with {status}"),
    }
}

/// A pool of PDF worker processes, shared by the threads of an ingest run.
pub struct PdfExtractor {
    exe: Option<PathBuf>,
    timeout: Duration,
    idle: Mutex<Vec<Worker>>,
    /// Recognition of pages without a text layer, when enabled and installed.
    ocr: Option<super::ocr::Ocr>,
}

impl PdfExtractor {
    /// `exe` is the `folio` binary to start workers from; `None` extracts in-process (tests,
    /// and the fallback when no worker can be started).
    pub fn new(exe: Option<PathBuf>, timeout: Duration) -> Self {
        PdfExtractor {
            exe,
            timeout,
            idle: Mutex::new(Vec::new()),
            ocr: None,
        }
    }

    /// The same extractor, recognising scanned pages with `ocr`.
    pub fn with_ocr(mut self, ocr: Option<super::ocr::Ocr>) -> Self {
        self.ocr = ocr;
        self
    }

    /// Whether scanned pages are recognised.
    pub fn recognises_scans(&self) -> bool {
        self.ocr.is_some()
    }

    /// Extracts the pages of the PDF at `path`: pdf-extract first, pdf_oxide when it fails,
    /// panics, finds no text, or kills or hangs its worker; then, with recognition on, the
    /// pages without text are recognised (a file with no text layer at all is then read by
    /// Tesseract alone). `bytes` are the file's, where the caller already read them.
    pub fn extract(&self, path: &Path, bytes: Option<&[u8]>) -> Result<PdfText, ExtractError> {
        let read = self.extract_layer(path, bytes);
        let Some(ocr) = &self.ocr else { return read };
        match read {
            Err(ExtractError::NoTextLayer) => {
                let mut pages = Vec::new();
                match ocr.fill(path, bytes, &mut pages) {
                    Ok(recognised) if !recognised.is_empty() => Ok(PdfText {
                        pages,
                        engine: Engine::Tesseract,
                        recognised,
                    }),
                    Ok(_) => Err(ExtractError::NothingRecognised),
                    Err(e) => Err(ExtractError::Crashed(format!("recognising the scan: {e}"))),
                }
            }
            Ok(mut text) if text.pages.iter().any(|p| p.trim().is_empty()) => {
                // A scanned page inside a born-digital file (a signature page): the pages
                // that have text keep it, the rest are recognised.
                match ocr.fill(path, bytes, &mut text.pages) {
                    Ok(recognised) => text.recognised = recognised,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "recognising blank pages: {e}")
                    }
                }
                Ok(text)
            }
            other => other,
        }
    }

    /// The text layer of the PDF at `path`, as [`PdfExtractor::extract`] reads it.
    fn extract_layer(&self, path: &Path, bytes: Option<&[u8]>) -> Result<PdfText, ExtractError> {
        let in_process = || match bytes {
            Some(b) => extract_pages(b),
            None => std::fs::read(path)
                .map_err(|e| ExtractError::Io(e.to_string()))
                .and_then(|b| extract_pages(&b)),
        };
        let Some(exe) = &self.exe else {
            return in_process();
        };
        match self.ask(exe, path, bytes, Engine::PdfExtract, None) {
            Ok(answer) => answer.and_then(Read::pages),
            Err(Lost::Spawn(e)) => {
                tracing::warn!(
                    "cannot start PDF worker {}: {e}; extracting in-process",
                    exe.display()
                );
                in_process()
            }
            // The worker died or hung inside pdf-extract: a fresh one tries pdf_oxide alone,
            // and if that fails too, the first failure is what the file is reported with.
            Err(Lost::Worker(died)) => match self.ask(exe, path, bytes, Engine::PdfOxide, None) {
                Ok(Ok(Read::Pages(text))) => Ok(text),
                _ => Err(died),
            },
        }
    }

    /// Extracts a document that is not a PDF (Word, OpenDocument, EPUB) in a worker, under the
    /// same time and memory limits as a PDF: its zip and XML readers get untrusted input.
    pub fn extract_document(
        &self,
        path: &Path,
        kind: Kind,
        bytes: Option<&[u8]>,
    ) -> Result<Vec<Unit>, ExtractError> {
        let in_process = || match bytes {
            Some(b) => extract_bytes(kind, b),
            None => std::fs::read(path)
                .map_err(|e| ExtractError::Io(e.to_string()))
                .and_then(|b| extract_bytes(kind, &b)),
        };
        let Some(exe) = &self.exe else {
            return in_process();
        };
        match self.ask(exe, path, bytes, Engine::PdfExtract, Some(kind)) {
            Ok(answer) => answer.and_then(Read::units),
            Err(Lost::Spawn(e)) => {
                tracing::warn!(
                    "cannot start extraction worker {}: {e}; extracting in-process",
                    exe.display()
                );
                in_process()
            }
            Err(Lost::Worker(died)) => Err(died),
        }
    }

    /// One request to a pooled (or new) worker, with the file's bytes where the caller holds
    /// them (the worker then does not read the file again). The outer error is the worker
    /// lost, not the file's answer.
    fn ask(
        &self,
        exe: &Path,
        path: &Path,
        bytes: Option<&[u8]>,
        first: Engine,
        kind: Option<Kind>,
    ) -> Result<Reply, Lost> {
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut worker = match pooled {
            Some(w) => w,
            None => Worker::spawn(exe).map_err(Lost::Spawn)?,
        };
        let request = serde_json::to_string(&Request {
            path: crate::fsutil::path_key(path),
            first,
            kind,
            len: bytes.map(<[u8]>::len),
        })
        .map_err(|e| Lost::Worker(ExtractError::Io(e.to_string())))?;
        if writeln!(worker.stdin, "{request}")
            .and_then(|_| worker.stdin.write_all(bytes.unwrap_or_default()))
            .and_then(|_| worker.stdin.flush())
            .is_err()
        {
            return Err(Lost::Worker(ExtractError::Crashed(worker.kill())));
        }
        match worker.answers.recv_timeout(self.timeout) {
            Ok(json) => {
                let answer = parse_answer(&json).map_err(Lost::Worker)?;
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(worker);
                }
                Ok(answer)
            }
            Err(RecvTimeoutError::Timeout) => {
                worker.kill();
                Err(Lost::Worker(ExtractError::Timeout(self.timeout.as_secs())))
            }
            Err(RecvTimeoutError::Disconnected) => {
                Err(Lost::Worker(ExtractError::Crashed(worker.kill())))
            }
        }
    }
}

/// Why a request got no answer.
enum Lost {
    /// No worker could be started.
    Spawn(std::io::Error),
    /// The worker died, hung or broke the protocol: what the file is reported with.
    Worker(ExtractError),
}

impl Drop for PdfExtractor {
    fn drop(&mut self) {
        if let Ok(mut idle) = self.idle.lock() {
            for w in idle.drain(..) {
                // Closing stdin ends the worker's loop; kill in case it is stuck.
                drop(w.stdin);
                let mut child = w.child;
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let e = extract_pages(b"%PDF-1.4\n garbage").unwrap_err();
        // Both extractors were tried, and both reasons are kept.
        assert!(
            matches!(&e, ExtractError::Pdf(m) if m.contains("pdf_oxide")),
            "{e}"
        );
        assert_eq!(extract_pages(b""), Err(ExtractError::Empty));
    }

    #[test]
    fn blank_pages_drop_but_numbers_stay() {
        let units = pages_to_units(vec![
            "one\n\n\n\ntwo  \n".into(),
            " \n".into(),
            "three".into(),
        ]);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].text, "one\n\ntwo\n");
        assert_eq!(units[1].page, Some(3));
    }
}
