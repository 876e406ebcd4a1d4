//! `folio index`: one run of the write pipeline over folders.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use folio::config::Settings;
use folio::index::Index;
use folio::pipeline::{self, IndexOptions};

use super::render::{Bar, ReportJson, print_report};
use super::{catch_interrupts, exit, load_embedder, note};

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

pub(super) fn run(s: &Settings, a: IndexArgs) -> Result<ExitCode> {
    // Ctrl-C ends the run once the batch in progress is committed; a second one at once.
    catch_interrupts(false)?;
    let embedder = load_embedder(s)?;
    let mut opts = IndexOptions::from_settings(s, &embedder, false);
    opts.retry_failed = a.retry_failed;
    let mut idx = Index::open_writer(&s.index_dir, embedder.info(), &opts.chunking(), a.reembed)?;
    let roots = folio::setup::roots(&a.dirs, &idx, "index")?;
    let pdf = folio::setup::pdf_extractor(s);
    let mut bar = Bar::new(!a.json);
    let report = pipeline::index_folders(&mut idx, &embedder, &pdf, &roots, &opts, &mut bar)?;
    bar.bar.finish_and_clear();
    if a.json {
        println!(
            "{}",
            folio::shown::json(serde_json::to_string(&ReportJson::from(&report))?)
        );
    } else {
        print_report(&report, &s.index_dir);
        let no_text = folio::ingest::extract::ExtractError::NoTextLayer.to_string();
        let scans = report
            .skipped
            .iter()
            .filter(|(_, why)| *why == no_text)
            .count();
        if scans > 0 && !pdf.recognises_scans() {
            let why = match s.ocr {
                folio::config::OcrMode::Off => "recognition is off (ingest.ocr = \"off\")".into(),
                folio::config::OcrMode::Auto => format!(
                    "{}; to read them, {}",
                    folio::ingest::ocr::tools()
                        .err()
                        .unwrap_or("recognition is unavailable"),
                    folio::ingest::ocr::INSTALL_HINT
                ),
            };
            println!("{scans} scanned PDF(s) wait for text recognition: {why}");
        }
    }
    if report.cancelled {
        note(
            "stopped by Ctrl-C: what was read so far is committed; run folio index again to finish",
        );
        return Ok(ExitCode::from(exit::INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}
