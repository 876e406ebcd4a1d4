//! The `folio` subcommands, one file each: each turns flags into settings, calls the library
//! (through [`folio::setup`] for what every front end loads the same way), and prints for
//! people or, with `--json`, for scripts (JSON only on stdout). [`render`] holds what several
//! commands print.

mod ask;
mod completions;
mod config;
mod eval;
mod index;
mod models;
mod render;
mod search;
mod serve;
mod status;
mod tui;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};

use anyhow::{Context, Result};
use clap::Args;

use folio::config::{Dirs, Origin, Settings};
use folio::embed::Embedder;
use folio::fsutil::{create_private_dir, path_key};
use folio::index::search::Filter;

pub use ask::AskArgs;
pub use completions::CompletionsArgs;
pub use config::ConfigArgs;
pub use eval::EvalArgs;
pub use index::IndexArgs;
pub use models::ModelsArgs;
pub use render::{ColorWhen, terminal_safe};
pub use search::SearchArgs;
pub use serve::ServeArgs;
pub use status::StatusArgs;
pub use tui::TuiArgs;
pub use watch::WatchArgs;

use crate::{Cli, Command, Global};

/// Exit statuses beyond success (0), an error (1) and a usage error (2, clap's), for scripts;
/// `folio --help` and the README list them.
pub mod exit {
    /// `search` found no passage for any query; `ask` abstained (the documents do not say).
    pub const NOTHING_FOUND: u8 = 3;
    /// `ask` was stopped by Ctrl-C (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
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

/// The filters `search` and `ask` share.
#[derive(Args, Debug, Default)]
pub struct FilterArgs {
    /// Only files whose absolute path matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub path: Option<String>,
    /// Only files with this extension (repeatable).
    #[arg(long, value_name = "EXT")]
    pub ext: Vec<String>,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            path_glob: self.path.clone(),
            ext: self.ext.clone(),
            exclude: Vec::new(),
        }
    }
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

/// The settings, with the global flags on top.
fn settings(g: &Global) -> Result<(Dirs, Settings)> {
    let (dirs, mut s) = folio::setup::settings(g.config.as_deref())?;
    if let Some(i) = &g.index {
        s.set("index.dir", &path_key(i), Origin::Flag)?;
    }
    if let Some(m) = &g.embed_model {
        s.set("models.embed", &path_key(m), Origin::Flag)?;
    }
    if let Some(m) = &g.llm {
        s.set("models.llm", &path_key(m), Origin::Flag)?;
    }
    Ok((dirs, s))
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    render::set_output(cli.global.color, cli.global.quiet);
    // These two need no settings: they must work before any configuration exists.
    match &cli.command {
        Some(Command::Completions(a)) => return completions::run(a),
        Some(Command::Man) => return completions::man(),
        _ => {}
    }
    let (dirs, mut s) = settings(&cli.global)?;
    match cli.command.unwrap_or(Command::Tui(TuiArgs::default())) {
        Command::Tui(a) => tui::run(&dirs, &s, a),
        Command::Index(a) => index::run(&s, a),
        Command::Watch(a) => watch::run(&s, a),
        Command::Status(a) => status::run(&s, a),
        Command::Search(a) => {
            if let Some(k) = a.k {
                s.set("search.k", &k.to_string(), Origin::Flag)?;
            }
            search::run(&s, a)
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
            ask::run(&dirs, &s, a)
        }
        Command::Eval(a) => eval::run(&dirs, &s, a),
        Command::Models(a) => models::run(&s, a),
        Command::Serve(a) => serve::run(&dirs, &s, a),
        Command::Config(a) => config::run(&s, a),
        Command::PdfWorker | Command::Completions(_) | Command::Man => Ok(ExitCode::SUCCESS),
    }
}

/// A note for the person at the terminal, on stderr; `--quiet` silences it.
fn note(msg: &str) {
    if !render::quiet() {
        eprintln!("folio: {}", terminal_safe(msg));
    }
}

fn load_embedder(s: &Settings) -> Result<Embedder> {
    Ok(folio::setup::embedder(s, &mut |m| note(m))?)
}

/// Where a user's own prompt templates live: `prompts/` beside the config file.
fn prompts_dir(dirs: &Dirs, s: &Settings) -> Option<PathBuf> {
    let file = s.config_file.as_ref().unwrap_or(&dirs.config_file);
    file.parent().map(|d| d.join("prompts"))
}

/// Set by the first Ctrl-C: `ask` stops generating, `index` and `watch` stop once the batch in
/// progress is committed. A second Ctrl-C ends the process at once (the signal's default
/// action); the extraction workers then notice that their parent is gone and end too.
static CANCEL: LazyLock<Arc<AtomicBool>> = LazyLock::new(|| Arc::new(AtomicBool::new(false)));

/// Routes Ctrl-C (and SIGTERM, for `watch` under a service manager) to [`CANCEL`]: the one
/// place folio handles signals.
fn catch_interrupts(term_too: bool) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let signals: &[i32] = if term_too {
        &[SIGINT, SIGTERM]
    } else {
        &[SIGINT]
    };
    for &signal in signals {
        // Registered first, so it sees the flag as the previous signal left it.
        signal_hook::flag::register_conditional_default(signal, Arc::clone(&CANCEL))
            .context("installing the Ctrl-C handler")?;
        signal_hook::flag::register(signal, Arc::clone(&CANCEL))
            .context("installing the Ctrl-C handler")?;
    }
    Ok(())
}

fn cancelled() -> bool {
    CANCEL.load(Ordering::SeqCst)
}
