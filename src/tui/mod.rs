//! The terminal UI: ask, read the streaming answer, browse the cited sources with a preview of
//! each passage in its document, and watch the index follow the folders, on one screen.
//!
//! A component/action design: [`app`] holds the state and changes it only through
//! `App::update(action)`, which performs no IO and returns commands; [`view`] draws the state;
//! [`worker`] runs the models, the watcher, searches and previews on background threads that
//! report through a channel. This module is the runtime between them: it reads terminal events,
//! drains the workers' channel, carries out commands and draws, never waiting on a worker. The
//! terminal is restored on exit, on error and on panic; nothing is printed to stdout but
//! through the terminal backend. It also owns the UI's own files ([`Files`]): the question
//! history it reads at start and appends to, and the answers it saves; [`export`] makes
//! their text. A failure to write them is logged and said in the status bar, never fatal.

pub mod app;
pub mod export;
pub mod view;
pub mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
    Event, KeyEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::index::search::Passage;
use app::{Action, App, Effect, WorkerEvent};
use worker::{Setup, Workers};

#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("the terminal")]
    Terminal(#[from] std::io::Error),
    #[error("folio's terminal UI needs a terminal (standard input and output are not one)")]
    NotATerminal,
}

type Term = Terminal<CrosstermBackend<crate::shown::Screen<std::io::Stdout>>>;

/// The files the UI keeps for the user, outside any index: questions are per person, not per
/// folder.
#[derive(Debug, Clone)]
pub struct Files {
    /// The question history, one question a line, oldest first.
    pub history: PathBuf,
    /// Where `e` saves answers as Markdown.
    pub answers: PathBuf,
}

impl Files {
    /// `history` and `answers/` in folio's per-user data directory.
    pub fn in_data_dir(data: &Path) -> Files {
        Files {
            history: data.join("history"),
            answers: data.join("answers"),
        }
    }
}

/// Whether the terminal is in the UI's mode (raw, alternate screen, mouse capture).
static ENTERED: AtomicBool = AtomicBool::new(false);

fn enter() -> Result<Term, TuiError> {
    ENTERED.store(true, Ordering::SeqCst);
    enable_raw_mode()?;
    let mut out = std::io::stdout();
    execute!(
        out,
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    Ok(Terminal::new(CrosstermBackend::new(
        crate::shown::Screen::new(out),
    ))?)
}

/// Gives the terminal back; does nothing when it already is.
fn leave() {
    if ENTERED.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(
            std::io::stdout(),
            LeaveAlternateScreen,
            DisableMouseCapture,
            DisableBracketedPaste
        );
        let _ = execute!(std::io::stdout(), crossterm::cursor::Show);
    }
}

/// Frame and key-to-screen timings, kept and written to `FOLIO_TUI_TIMINGS` on exit only when
/// that is set (a long session would otherwise grow them without end).
#[derive(Default)]
struct Timings {
    on: bool,
    frames_ms: Vec<f64>,
    key_to_screen_ms: Vec<f64>,
}

impl Timings {
    fn write(&self, path: &Path) {
        let pct = |v: &[f64], p: f64| crate::fsutil::percentile(v, p);
        let worst = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
        let json = serde_json::json!({
            "frames": self.frames_ms.len(),
            "frame_ms": {"p50": pct(&self.frames_ms, 50.0), "p95": pct(&self.frames_ms, 95.0), "worst": worst(&self.frames_ms)},
            "keys": self.key_to_screen_ms.len(),
            "key_to_screen_ms": {"p50": pct(&self.key_to_screen_ms, 50.0), "p95": pct(&self.key_to_screen_ms, 95.0), "worst": worst(&self.key_to_screen_ms)},
            "peak_rss_bytes": crate::fsutil::peak_rss_bytes(),
        });
        let _ = std::fs::write(path, json.to_string());
    }
}

/// Runs the UI until the user quits. `color`: `Some` when the user chose, `None` for the
/// default (colours unless `NO_COLOR` is set to something).
pub fn run(setup: Setup, files: Files, color: Option<bool>) -> Result<(), TuiError> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let color = color.unwrap_or_else(|| std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()));
    let timings_path = std::env::var_os("FOLIO_TUI_TIMINGS").map(PathBuf::from);

    // A panic on the UI thread restores the terminal before its message is printed. One on
    // a worker thread (some are caught: a damaged model file) must not tear the screen
    // down, nor print over it: it is logged, and the worker reports its failure.
    let ui_thread = std::thread::current().id();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        if std::thread::current().id() == ui_thread {
            leave();
            default_hook(info);
        }
    }));

    let result = (|| {
        let mut term = enter()?;
        let (tx, rx) = channel::<WorkerEvent>();
        let mut workers = worker::start(setup, tx);
        let mut app = App::new(color);
        app.set_history(load_history(&files.history));
        let mut timings = Timings {
            on: timings_path.is_some(),
            ..Timings::default()
        };
        let result = event_loop(&mut term, &mut app, &rx, &mut workers, &files, &mut timings);
        leave();
        if let Some(p) = timings_path {
            timings.write(&p);
        }
        workers.shutdown();
        result
    })();
    // Whatever happened, the terminal is the user's again, and panics print as usual.
    leave();
    let _ = std::panic::take_hook();
    result
}

fn event_loop(
    term: &mut Term,
    app: &mut App,
    rx: &std::sync::mpsc::Receiver<WorkerEvent>,
    workers: &mut Workers,
    files: &Files,
    timings: &mut Timings,
) -> Result<(), TuiError> {
    let mut dirty = true;
    let mut pending_keys: Vec<Instant> = Vec::new();
    loop {
        // Worker reports: bounded per frame so that a flood of tokens cannot starve the keys.
        for _ in 0..256 {
            match rx.try_recv() {
                Ok(e) => {
                    let cmds = app.update(Action::Worker(e));
                    carry_out(cmds, app, workers, files, term)?;
                    dirty = true;
                }
                Err(_) => break,
            }
        }
        let cmds = app.update(Action::Tick(Instant::now()));
        if !cmds.is_empty() {
            carry_out(cmds, app, workers, files, term)?;
            dirty = true;
        }
        if app.quit {
            return Ok(());
        }
        if dirty {
            let t0 = Instant::now();
            let size = term.size()?;
            app.areas = view::layout(ratatui::layout::Rect::new(0, 0, size.width, size.height));
            app.set_limits(view::scroll_limits(app, &app.areas));
            term.draw(|f| view::draw(f, app))?;
            let now = Instant::now();
            if timings.on {
                timings.frames_ms.push((now - t0).as_secs_f64() * 1000.0);
                for k in &pending_keys {
                    timings
                        .key_to_screen_ms
                        .push((now - *k).as_secs_f64() * 1000.0);
                }
            }
            pending_keys.clear();
            dirty = false;
        }
        if event::poll(Duration::from_millis(30))? {
            // Take every queued terminal event before drawing again.
            loop {
                let ev = event::read()?;
                let action = match ev {
                    Event::Key(k) if k.kind != KeyEventKind::Release => {
                        pending_keys.push(Instant::now());
                        Some(Action::Key(k))
                    }
                    Event::Mouse(m) => Some(Action::Mouse(m)),
                    Event::Paste(text) => {
                        pending_keys.push(Instant::now());
                        Some(Action::Paste(text))
                    }
                    Event::Resize(..) => {
                        dirty = true;
                        None
                    }
                    _ => None,
                };
                if let Some(a) = action {
                    let cmds = app.update(a);
                    carry_out(cmds, app, workers, files, term)?;
                    dirty = true;
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
    }
}

fn carry_out(
    cmds: Vec<Effect>,
    app: &mut App,
    workers: &mut Workers,
    files: &Files,
    term: &mut Term,
) -> Result<(), TuiError> {
    let notice = |app: &mut App, msg: String| {
        app.update(Action::Worker(WorkerEvent::Notice(msg)));
    };
    for c in cmds {
        match c {
            Effect::Ask {
                id,
                question,
                indexing,
            } => workers.ask(id, question, indexing),
            Effect::Search(q) => workers.search(q),
            Effect::Cancel => workers.cancel(),
            Effect::Preview(p) => workers.preview(p),
            Effect::Open(p) => {
                let msg = open(&p, term)?;
                notice(app, msg);
            }
            Effect::Remember(q) => {
                if let Err(e) = remember(&files.history, &q) {
                    tracing::warn!(
                        "could not add to the question history {}: {e}",
                        files.history.display()
                    );
                }
            }
            Effect::Copy(markdown) => {
                let msg = match copy(term, &markdown) {
                    Ok(()) => format!(
                        "copied the answer ({} characters)",
                        markdown.chars().count()
                    ),
                    Err(e) => {
                        tracing::warn!("could not copy the answer: {e}");
                        format!("could not copy the answer: {e}")
                    }
                };
                notice(app, msg);
            }
            Effect::Export { question, markdown } => {
                let msg = match save(&files.answers, &question, &markdown) {
                    Ok(path) => format!("saved the answer to {}", home_relative(&path)),
                    Err(e) => {
                        tracing::warn!(
                            "could not save the answer in {}: {e}",
                            files.answers.display()
                        );
                        format!("could not save the answer: {e}")
                    }
                };
                notice(app, msg);
            }
            Effect::Quit => app.quit = true,
        }
    }
    Ok(())
}

/// The question history in `path`: nothing when there is none yet or it cannot be read (that
/// is logged). A file grown past [`app::HISTORY_MAX`] entries by appends is cut back to them.
fn load_history(path: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::warn!(
                "could not read the question history {}: {e}",
                path.display()
            );
            return Vec::new();
        }
    };
    let history = app::history_from_text(&text);
    if text.lines().count() > app::HISTORY_MAX {
        let mut kept = history.join("\n");
        kept.push('\n');
        let written = crate::fsutil::write_atomic(path, kept.as_bytes()).and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        });
        if let Err(e) = written {
            tracing::warn!(
                "could not shorten the question history {}: {e}",
                path.display()
            );
        }
    }
    history
}

/// Appends a question to the history file, private to the user. One write of one line, so
/// that two sessions appending at once do not interleave within a line.
fn remember(path: &Path, question: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        crate::fsutil::create_private_dir(dir)?;
    }
    let line = format!("{}\n", question.replace(['\n', '\r'], " "));
    crate::fsutil::open_private_append(path)?.write_all(line.as_bytes())
}

/// Puts `text` on the clipboard of the terminal the UI draws on, with OSC 52 written through
/// the backend between frames (it draws nothing, so the screen is left as it was).
fn copy(term: &mut Term, text: &str) -> std::io::Result<()> {
    let backend = term.backend_mut();
    backend.write_all(export::osc52(text).as_bytes())?;
    backend.flush()
}

/// Writes an answer's Markdown as a new file in `dir` (created private if need be); never
/// replaces a file: a name already taken gets a number.
fn save(dir: &Path, question: &str, markdown: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::fsutil::create_private_dir(dir)?;
    let stamp = local_stamp(std::time::SystemTime::now());
    for attempt in 0..1000 {
        let path = dir.join(export::export_file_name(&stamp, question, attempt));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut f) => {
                f.write_all(markdown.as_bytes())?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "a thousand answers to this question were saved this second",
    ))
}

/// `at` in local time as `YYYY-MM-DD-HHMMSS`, for file names that sort by time.
fn local_stamp(at: std::time::SystemTime) -> String {
    let secs = at
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::localtime_r(&secs, &mut tm);
    }
    format!(
        "{:04}-{:02}-{:02}-{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `path` with the home directory shown as `~`, for the status bar's narrow line.
fn home_relative(path: &Path) -> String {
    if let Some(dirs) = directories::BaseDirs::new()
        && let Ok(rest) = path.strip_prefix(dirs.home_dir())
    {
        return format!("~/{}", rest.display());
    }
    path.display().to_string()
}

/// 1-based line of the passage in its file, found by its first words (text files only).
fn line_of(p: &Passage) -> Option<usize> {
    let text = std::fs::read_to_string(crate::fsutil::key_path(&p.path)).ok()?;
    let probe: String = p
        .text
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    let flat_pos = text.lines().position(|l| {
        l.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .contains(&probe)
    })?;
    Some(flat_pos + 1)
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// Opens the passage's file: a terminal `$EDITOR` at the passage's line (the UI steps aside
/// while it runs), a PDF viewer at its page, or the system's opener.
fn open(p: &Passage, term: &mut Term) -> Result<String, TuiError> {
    let path = &crate::fsutil::key_path(&p.path);
    let is_pdf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    let detached = |mut cmd: Process| -> String {
        match cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(_) => format!("opened {}", p.path),
            Err(e) => format!("could not open {}: {e}", p.path),
        }
    };
    if is_pdf {
        let page = p.page.unwrap_or(1);
        let viewers: [(&str, Vec<String>); 4] = [
            ("zathura", vec![format!("--page={page}")]),
            ("evince", vec![format!("--page-index={page}")]),
            ("okular", vec!["-p".into(), page.to_string()]),
            ("xdg-open", vec![]),
        ];
        for (prog, args) in viewers {
            if which(prog) {
                let mut cmd = Process::new(prog);
                cmd.args(args).arg(path);
                return Ok(detached(cmd));
            }
        }
        return Ok("no PDF viewer found (zathura, evince, okular or xdg-open)".into());
    }
    let editor = std::env::var("VISUAL")
        .ok()
        .or_else(|| std::env::var("EDITOR").ok())
        .filter(|e| !e.trim().is_empty());
    let Some(editor) = editor else {
        if which("xdg-open") {
            let mut cmd = Process::new("xdg-open");
            cmd.arg(path);
            return Ok(detached(cmd));
        }
        return Ok("set $EDITOR to open files".into());
    };
    let mut parts = editor.split_whitespace();
    let prog = parts.next().unwrap_or("vi").to_string();
    let mut cmd = Process::new(&prog);
    cmd.args(parts);
    // vi, vim, nvim, nano, emacs, micro, kak and helix all take `+LINE`.
    if let Some(line) = line_of(p) {
        cmd.arg(format!("+{line}"));
    }
    cmd.arg(path);
    leave();
    let status = cmd.status();
    ENTERED.store(true, Ordering::SeqCst);
    enable_raw_mode()?;
    execute!(
        std::io::stdout(),
        EnterAlternateScreen,
        EnableMouseCapture,
        EnableBracketedPaste
    )?;
    term.clear()?;
    let _ = std::io::stdout().flush();
    Ok(match status {
        Ok(_) => format!("back from {prog}"),
        Err(e) => format!("could not run {prog}: {e}"),
    })
}
