//! The terminal UI: ask, read the streaming answer, browse the cited sources with a preview of
//! each passage in its document, and watch the index follow the folders, on one screen.
//!
//! A component/action design: [`app`] holds the state and changes it only through
//! `App::update(action)`, which performs no IO and returns commands; [`view`] draws the state;
//! [`worker`] runs the models, the watcher, searches and previews on background threads that
//! report through a channel. This module is the runtime between them: it reads terminal events,
//! drains the workers' channel, carries out commands and draws, never waiting on a worker. The
//! terminal is restored on exit, on error and on panic; nothing is printed to stdout.

pub mod app;
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

type Term = Terminal<CrosstermBackend<std::io::Stdout>>;

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
    Ok(Terminal::new(CrosstermBackend::new(out))?)
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
pub fn run(setup: Setup, color: Option<bool>) -> Result<(), TuiError> {
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
        let mut timings = Timings {
            on: timings_path.is_some(),
            ..Timings::default()
        };
        let result = event_loop(&mut term, &mut app, &rx, &mut workers, &mut timings);
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
                    carry_out(cmds, app, workers, term)?;
                    dirty = true;
                }
                Err(_) => break,
            }
        }
        let cmds = app.update(Action::Tick(Instant::now()));
        if !cmds.is_empty() {
            carry_out(cmds, app, workers, term)?;
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
                    carry_out(cmds, app, workers, term)?;
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
    term: &mut Term,
) -> Result<(), TuiError> {
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
                app.update(Action::Worker(WorkerEvent::Notice(msg)));
            }
            Effect::Quit => app.quit = true,
        }
    }
    Ok(())
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
