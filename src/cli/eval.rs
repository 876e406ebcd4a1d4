//! `folio eval`: retrieval quality on a BEIR-format set, through the product's own pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;

use folio::config::{Dirs, Origin, Settings};
use folio::eval::{self, Calibration, ModeScores};
use folio::fsutil::{human_bytes, peak_rss_bytes};
use folio::index::search::{Retrievers, SearchOptions};
use folio::pipeline::IndexOptions;

use super::render::Bar;
use super::{load_embedder, note};

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

pub(super) fn run(dirs: &Dirs, s: &Settings, a: EvalArgs) -> Result<ExitCode> {
    let beir_dir = std::fs::canonicalize(&a.beir_dir)
        .with_context(|| format!("BEIR folder {}", a.beir_dir.display()))?;
    let name = eval::set_name(&beir_dir);
    let embedder = load_embedder(s)?;
    let opts = IndexOptions::from_settings(s, &embedder, a.whole_docs);
    let index_dir = if s.source("index.dir") == Origin::Flag {
        s.index_dir.clone()
    } else {
        eval::index_dir_for(&dirs.data, &name, &opts.chunking(), &embedder.info().sha256)
    };
    if a.calibrate && a.split == "test" {
        note("calibrating on the test split: report it, do not tune on it");
    }
    let req = eval::EvalRequest {
        dir: &beir_dir,
        split: &a.split,
        index_dir: &index_dir,
        modes: &a.modes,
        calibrate: a.calibrate,
    };
    let base = SearchOptions::from_settings(s, Retrievers::Hybrid);
    let mut bar = Bar::new(!a.json);
    let done = eval::evaluate(&req, &embedder, &opts, &base, &mut bar)?;
    bar.bar.finish_and_clear();
    let report = &done.run;
    let scores = &done.scores;
    let out = EvalJson {
        dataset: name,
        split: &a.split,
        index: index_dir.display().to_string(),
        documents: done.documents,
        passages: done.passages,
        whole_docs: a.whole_docs,
        index_seconds: done.index_seconds,
        tokens_embedded: report.tokens_embedded,
        embed_seconds: report.embed_seconds,
        peak_rss_bytes: peak_rss_bytes(),
        scores,
        calibration: done.calibration,
    };
    if a.json {
        println!("{}", folio::shown::json(serde_json::to_string(&out)?));
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
            out.index_seconds,
            report.chunks_embedded,
            report.tokens_embedded as f64 / report.embed_seconds.max(1e-9),
            report.chunks_embedded as f64 / report.embed_seconds.max(1e-9),
            out.peak_rss_bytes
                .map(human_bytes)
                .unwrap_or_else(|| "?".into())
        );
    } else {
        println!(
            "indexing: {:.2} s, nothing to embed (index at {})",
            out.index_seconds, out.index
        );
    }
    println!(
        "{:<8} {:>8} {:>11} {:>8} {:>8} {:>8}",
        "mode", "nDCG@10", "Recall@100", "MRR@10", "p50 ms", "p95 ms"
    );
    for sc in scores {
        println!(
            "{:<8} {:>8.4} {:>11.4} {:>8.4} {:>8.1} {:>8.1}",
            sc.mode.name(),
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
