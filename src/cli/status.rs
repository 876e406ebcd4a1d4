//! `folio status`: what the index holds, how the last run went, what failed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use folio::config::Settings;
use folio::fsutil::{dir_size, human_bytes, now_secs};
use folio::index::manifest::ProblemStatus;
use folio::index::{Chunking, Index};
use folio::ingest::extract::ExtractError;

use super::render::one_line;

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
    /// List every indexed file with its type, passages and extractor.
    #[arg(long)]
    pub files: bool,
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
    /// The programs that recognise scanned pages, or why there are none / it is off.
    ocr: OcrJson,
    last_run: &'a Option<folio::index::manifest::RunSummary>,
    /// PDFs by the extractor that read them.
    pdf_extractors: std::collections::BTreeMap<&'a str, usize>,
    problems: Vec<ProblemJson<'a>>,
    /// With `--files`: every indexed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_list: Option<Vec<FileJson<'a>>>,
}

#[derive(Serialize)]
struct OcrJson {
    /// The versions of the programs that recognise scanned pages.
    tools: Option<&'static str>,
    /// Why scans are not recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    unavailable: Option<&'static str>,
}

impl From<Result<&'static str, &'static str>> for OcrJson {
    fn from(r: Result<&'static str, &'static str>) -> Self {
        OcrJson {
            tools: r.ok(),
            unavailable: r.err(),
        }
    }
}

#[derive(Serialize)]
struct FileJson<'a> {
    path: &'a str,
    kind: folio::ingest::Kind,
    passages: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    extractor: Option<&'a str>,
    /// The pages recognised from their image by Tesseract.
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    recognised: &'a [u32],
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

/// Pages as a person reads them: runs joined (`1-3, 7`).
fn page_list(pages: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < pages.len() {
        let mut j = i;
        while j + 1 < pages.len() && pages[j + 1] == pages[j] + 1 {
            j += 1;
        }
        out.push(if j > i {
            format!("{}-{}", pages[i], pages[j])
        } else {
            pages[i].to_string()
        });
        i = j + 1;
    }
    out.join(", ")
}

#[derive(Serialize)]
struct ProblemJson<'a> {
    path: &'a str,
    status: ProblemStatus,
    reason: &'a str,
}

pub(super) fn run(s: &Settings, a: StatusArgs) -> Result<ExitCode> {
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
        ocr: OcrJson::from(match s.ocr {
            folio::config::OcrMode::Off => Err("off (ingest.ocr)"),
            folio::config::OcrMode::Auto => folio::ingest::ocr::tools(),
        }),
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
                    recognised: &r.recognised,
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
        println!("{}", folio::shown::json(serde_json::to_string(&st)?));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "index    {} ({})",
        folio::shown::name(&st.index),
        human_bytes(st.size_bytes)
    );
    println!(
        "roots    {}",
        if st.roots.is_empty() {
            "(none)".into()
        } else {
            st.roots
                .iter()
                .map(|r| folio::shown::name(r))
                .collect::<Vec<_>>()
                .join(", ")
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
    match (st.ocr.tools, st.ocr.unavailable) {
        (Some(tools), _) => println!("scans    recognised by {tools}"),
        (None, why) => println!("scans    not recognised: {}", why.unwrap_or_default()),
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
                println!("  {}: {}", folio::shown::name(p.path), one_line(p.reason));
            }
        }
    }
    let unread_scans = st
        .problems
        .iter()
        .filter(|p| p.reason == ExtractError::NoTextLayer.to_string())
        .count();
    if unread_scans > 0 && st.ocr.tools.is_none() && s.ocr == folio::config::OcrMode::Auto {
        println!(
            "{unread_scans} scanned PDF(s) have no text layer: to read them, {}",
            folio::ingest::ocr::INSTALL_HINT
        );
    }
    if let Some(files) = &st.file_list {
        println!("files:");
        for f in files {
            let mut by = f.extractor.map(|e| format!(", {e}")).unwrap_or_default();
            if !f.recognised.is_empty() && f.extractor != Some("tesseract") {
                by.push_str(&format!(
                    ", page{} {} recognised by tesseract",
                    if f.recognised.len() == 1 { "" } else { "s" },
                    page_list(f.recognised)
                ));
            } else if !f.recognised.is_empty() {
                by.push_str(&format!(" (pages {})", page_list(f.recognised)));
            }
            println!(
                "  {}  ({}, {} passages{by})",
                folio::shown::name(f.path),
                format!("{:?}", f.kind).to_lowercase(),
                f.passages
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_are_listed_in_runs() {
        assert_eq!(super::page_list(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(super::page_list(&[4]), "4");
        assert_eq!(super::page_list(&[]), "");
    }
}
