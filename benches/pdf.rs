//! The PDF extractors side by side on a corpus of real PDFs (`benches/pdf/gather.sh` builds
//! one from Debian's documentation packages): files extracted, failed (with the reason),
//! panicked, timed out; pages per second; characters per page; and what folio's order
//! (pdf-extract, then pdf_oxide) gives.
//!
//! Run with `cargo bench --profile dev --bench pdf -- --dir DIR [--timeout SECS]`. Every
//! extraction runs in a child process (this binary, `--one ENGINE FILE`), as folio's workers do,
//! so that an abort, a stack overflow or an endless loop costs only that file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use folio::ingest::extract::ExtractError;
use folio::ingest::pdf::{Engine, extract_pages, extract_with};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone)]
struct Outcome {
    /// `ok`, `failed`, `panicked`, `crashed` (the process died) or `timeout`.
    result: String,
    reason: String,
    pages: usize,
    chars: usize,
    seconds: f64,
    /// For folio's order: the extractor that produced the text.
    engine: String,
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--one") {
        let (Some(engine), Some(file)) = (argv.get(i + 1), argv.get(i + 2)) else {
            std::process::exit(2);
        };
        one(engine, Path::new(file));
        return;
    }
    if !argv.iter().any(|a| a == "--bench") {
        println!("pdf: run with `cargo bench --profile dev --bench pdf -- --dir DIR`");
        return;
    }
    let arg = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let Some(dir) = arg("--dir").map(PathBuf::from) else {
        eprintln!("pdf: --dir DIR is required (benches/pdf/gather.sh DEST makes DEST/pdfs)");
        std::process::exit(2);
    };
    let timeout = Duration::from_secs(arg("--timeout").and_then(|t| t.parse().ok()).unwrap_or(60));
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            eprintln!("pdf: cannot read {}: {e}", dir.display());
            std::process::exit(1);
        }
    };
    files.sort();
    let engines = ["pdf-extract", "pdf_oxide", "folio"];
    let mut rows: Vec<(PathBuf, String, Vec<Outcome>)> = Vec::new();
    for f in &files {
        let outs: Vec<Outcome> = engines.iter().map(|e| run_one(e, f, timeout)).collect();
        let producer = producer(f);
        println!(
            "{:<60} {:<28} {}",
            f.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default(),
            producer.chars().take(28).collect::<String>(),
            outs.iter()
                .map(|o| format!("{}:{}/{}p", o.result, o.chars, o.pages))
                .collect::<Vec<_>>()
                .join("  ")
        );
        rows.push((f.clone(), producer, outs));
    }
    println!("\n{} PDFs in {}", files.len(), dir.display());
    println!(
        "| extractor | extracted | failed | panicked | crashed | timed out | no text | encrypted | pages | pages/s | chars/page |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, e) in engines.iter().enumerate() {
        let outs: Vec<&Outcome> = rows.iter().map(|r| &r.2[i]).collect();
        let count = |r: &str| outs.iter().filter(|o| o.result == r).count();
        let ok: Vec<&&Outcome> = outs.iter().filter(|o| o.result == "ok").collect();
        let pages: usize = ok.iter().map(|o| o.pages).sum();
        let chars: usize = ok.iter().map(|o| o.chars).sum();
        let secs: f64 = ok.iter().map(|o| o.seconds).sum();
        println!(
            "| {e} | {} | {} | {} | {} | {} | {} | {} | {pages} | {:.1} | {:.0} |",
            ok.len(),
            count("failed"),
            count("panicked"),
            count("crashed"),
            count("timeout"),
            count("no text"),
            count("encrypted"),
            pages as f64 / secs.max(1e-9),
            chars as f64 / pages.max(1) as f64
        );
    }
    let by: BTreeMap<&str, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        if r.2[2].result == "ok" {
            *m.entry(r.2[2].engine.as_str()).or_insert(0) += 1;
        }
        m
    });
    println!("\nfolio's order read {by:?}");
    // Characters per page where both read the file: how much text each finds.
    let both: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.2[0].result == "ok" && r.2[1].result == "ok")
        .map(|r| {
            let per = |o: &Outcome| o.chars as f64 / o.pages.max(1) as f64;
            (per(&r.2[0]), per(&r.2[1]))
        })
        .collect();
    if !both.is_empty() {
        let (a, b): (f64, f64) = both.iter().fold((0.0, 0.0), |s, x| (s.0 + x.0, s.1 + x.1));
        let n = both.len() as f64;
        let within = both
            .iter()
            .filter(|(a, b)| (a - b).abs() <= 0.1 * a.max(*b))
            .count();
        println!(
            "files both read: {}; chars/page pdf-extract {:.0}, pdf_oxide {:.0}; within 10% of each other: {within}",
            both.len(),
            a / n,
            b / n
        );
    }
    println!("\nfailures:");
    for (f, producer, outs) in &rows {
        for (e, o) in engines.iter().zip(outs) {
            if o.result != "ok" {
                println!(
                    "  {e:<11} {:<9} {} [{producer}]: {}",
                    o.result,
                    f.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default(),
                    o.reason.chars().take(140).collect::<String>()
                );
            }
        }
    }
}

/// The document's /Producer, when lopdf can read it.
fn producer(path: &Path) -> String {
    let Ok(doc) = lopdf::Document::load(path) else {
        return "?".into();
    };
    doc.trailer
        .get(b"Info")
        .and_then(|i| doc.dereference(i))
        .ok()
        .and_then(|(_, o)| o.as_dict().ok().cloned())
        .and_then(|d| d.get(b"Producer").ok().cloned())
        .and_then(|p| p.as_str().ok().map(pdf_text_string))
        .unwrap_or_else(|| "?".into())
}

/// A PDF text string: UTF-16BE after a byte-order mark, otherwise (about) Latin-1.
fn pdf_text_string(b: &[u8]) -> String {
    match b.strip_prefix(&[0xFE, 0xFF]) {
        Some(units) => String::from_utf16_lossy(
            &units
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        ),
        None => b.iter().map(|&c| c as char).collect(),
    }
    .trim()
    .to_string()
}

fn run_one(engine: &str, file: &Path, timeout: Duration) -> Outcome {
    let fail = |result: &str, reason: String| Outcome {
        result: result.into(),
        reason,
        pages: 0,
        chars: 0,
        seconds: 0.0,
        engine: String::new(),
    };
    let Ok(exe) = std::env::current_exe() else {
        return fail("crashed", "no current exe".into());
    };
    let mut child = match Command::new(exe)
        .arg("--one")
        .arg(engine)
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail("crashed", e.to_string()),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut s) = child.stdout.take() {
                    let _ = s.read_to_string(&mut out);
                }
                return serde_json::from_str(&out)
                    .unwrap_or_else(|_| fail("crashed", format!("exited with {status}")));
            }
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return fail("timeout", format!("over {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return fail("crashed", e.to_string()),
        }
    }
}

/// Child side: one extraction, one JSON line.
fn one(engine: &str, file: &Path) {
    std::panic::set_hook(Box::new(|_| {}));
    let bytes = std::fs::read(file).unwrap_or_default();
    let t = Instant::now();
    let (result, engine_used) = match engine {
        "pdf-extract" => (extract_with(&bytes, Engine::PdfExtract), "pdf-extract"),
        "pdf_oxide" => (extract_with(&bytes, Engine::PdfOxide), "pdf_oxide"),
        _ => match extract_pages(&bytes) {
            Ok(t) => (Ok(t.pages), t.engine.name()),
            Err(e) => (Err(e), ""),
        },
    };
    let seconds = t.elapsed().as_secs_f64();
    let o = match result {
        Ok(pages) => Outcome {
            result: "ok".into(),
            reason: String::new(),
            chars: pages.iter().map(|p| p.trim().chars().count()).sum(),
            pages: pages.len(),
            seconds,
            engine: engine_used.into(),
        },
        Err(e) => Outcome {
            result: match &e {
                ExtractError::Crashed(m) if m.starts_with("parser panicked") => "panicked",
                ExtractError::NoTextLayer => "no text",
                ExtractError::Encrypted => "encrypted",
                _ => "failed",
            }
            .into(),
            reason: e.to_string(),
            pages: 0,
            chars: 0,
            seconds,
            engine: String::new(),
        },
    };
    println!("{}", serde_json::to_string(&o).unwrap_or_default());
}
