//! `folio search`: passages for a query (or one query per line of stdin).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use folio::config::Settings;
use folio::index::Index;
use folio::index::search::{Passage, Retrievers, SearchOptions};

use super::render::print_passages;
use super::{FilterArgs, count, load_embedder, non_empty};

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// The query; `-` reads one query per line from stdin. Exits with 3 when no query found
    /// a passage.
    #[arg(value_parser = non_empty)]
    pub query: String,
    /// bm25, dense or hybrid.
    #[arg(long, default_value = "hybrid")]
    pub mode: Retrievers,
    /// Number of passages (1 to 10000).
    #[arg(short, value_parser = count::<{ folio::index::search::MAX_K }>)]
    pub k: Option<usize>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// One JSON object per query on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct SearchJson<'a> {
    query: &'a str,
    results: &'a [Passage],
}

pub(super) fn run(s: &Settings, a: SearchArgs) -> Result<ExitCode> {
    let mut idx = Index::open_reader(&s.index_dir)?;
    let embedder = if a.mode == Retrievers::Bm25 {
        None
    } else {
        let e = load_embedder(s)?;
        idx.check_model(e.info())?;
        Some(e)
    };
    let mut opts = SearchOptions::from_settings(s, a.mode);
    opts.filter = a.filter.filter();
    let color = super::render::color();
    let mut found = false;
    let mut run_one = |idx: &Index, q: &str| -> Result<()> {
        let passages = idx.search(embedder.as_ref(), q, &opts)?;
        found |= !passages.is_empty();
        let mut out = std::io::stdout().lock();
        if a.json {
            writeln!(
                out,
                "{}",
                folio::shown::json(serde_json::to_string(&SearchJson {
                    query: q,
                    results: &passages
                })?)
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
    Ok(if found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::exit::NOTHING_FOUND)
    })
}
