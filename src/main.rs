//! The `folio` command: argument parsing, logging set-up and error reporting. The commands
//! themselves live in `cli/`, one file each, on top of the library.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// A private, offline document assistant: hybrid search over your own folders.
#[derive(Parser, Debug)]
#[command(
    name = "folio",
    version,
    about,
    max_term_width = 100,
    after_help = "Exit status: 0 done; 1 an error (printed on stderr); 2 a usage error; \
                  3 nothing found (search: no passage for any query; ask: the documents do \
                  not say); 130 stopped by Ctrl-C."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Without a command, the terminal UI opens.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Index directory (default: the per-user data directory).
    #[arg(long, global = true, value_name = "IDX")]
    pub index: Option<PathBuf>,
    /// Config file (default: ~/.config/folio/config.toml).
    #[arg(long, global = true, value_name = "FILE", env = "FOLIO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Embedding model directory (config.json, tokenizer.json, model.safetensors).
    #[arg(long, global = true, value_name = "DIR")]
    pub embed_model: Option<PathBuf>,
    /// GGUF language model: a file, or the name of one another tool keeps (`folio models
    /// list`: Ollama's `llama3.2:3b`, LM Studio, GPT4All, the Hugging Face cache).
    #[arg(long, global = true, value_name = "FILE.gguf|NAME")]
    pub llm: Option<PathBuf>,
    /// Log debug detail to the log file.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// No notes or progress on stderr (errors are still printed).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Colours on stdout: auto (a terminal, and NO_COLOR unset or empty), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: cli::ColorWhen,
    /// Threads for the language model and the embedder (default: one per CPU core).
    #[arg(long, global = true, value_name = "N", env = "FOLIO_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Index folders: new and changed files are embedded, gone files removed.
    Index(cli::IndexArgs),
    /// The terminal UI: ask, read answers with their sources, search; indexes in the background.
    Tui(cli::TuiArgs),
    /// Index folders, then keep the index in step with them until stopped (Ctrl-C).
    Watch(cli::WatchArgs),
    /// Show what the index holds: roots, counts, models, last run, problem files.
    Status(cli::StatusArgs),
    /// Search the index: BM25, dense or hybrid.
    Search(cli::SearchArgs),
    /// Answer a question from the indexed documents, with checked citations.
    Ask(cli::AskArgs),
    /// Measure retrieval on a BEIR-format set (nDCG@10, Recall@100, MRR@10).
    Eval(cli::EvalArgs),
    /// Fetch the default models; list them and the GGUF models other tools keep here.
    Models(cli::ModelsArgs),
    /// Serve search and answers to other programs: an OpenAI-compatible HTTP API on this
    /// machine, or MCP on stdin/stdout (`--mcp`).
    Serve(cli::ServeArgs),
    /// Print the effective settings and where each comes from.
    Config(cli::ConfigArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(cli::CompletionsArgs),
    /// Print the manual page (roff) on stdout: `folio man | man -l -`.
    Man,
    /// Internal: the PDF extraction worker.
    #[command(name = "__pdf-worker", hide = true)]
    PdfWorker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.global.threads {
        // candle sizes its thread pools from these variables the first time it needs them.
        // SAFETY: nothing else runs yet: no thread has been started, so no one reads the
        // environment concurrently.
        unsafe {
            std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
            std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        }
    }
    if let Some(Command::PdfWorker) = cli.command {
        return ExitCode::from(folio::ingest::pdf::worker_main() as u8);
    }
    cli::init_logging(cli.global.verbose);
    match cli::run(cli) {
        Ok(code) => code,
        // The reader went away (`folio search x | head`): nothing left to say to anyone.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let message = folio::error_chain(e.as_ref());
            tracing::error!("{message}");
            eprintln!("error: {}", cli::terminal_safe(&message));
            ExitCode::from(1)
        }
    }
}
