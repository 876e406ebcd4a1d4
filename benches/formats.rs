//! Every format folio reads, on a folder of real documents (`benches/formats/gather.sh DEST`
//! makes one from Debian's documentation, with scanned pages): files read and failed (with the
//! reason), passages, extraction time per file (p50, p95, slowest) per format, the peak memory
//! of `folio index` over the folder, and the OCR word accuracy of the scanned pages against the
//! text they were rendered from.
//!
//! Run with `./dev bench formats --dir DEST` (DEST holds `docs/` and `truth/`). Files are read
//! exactly as indexing reads them: PDFs, HTML and packaged documents in folio's worker
//! processes, scanned pages through Tesseract where it is installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use folio::doc::Kind;
use folio::fsutil::percentile;
use folio::ingest::chunk::{ChunkOptions, chunk_units};
use folio::ingest::ocr::Ocr;
use folio::ingest::pdf::PdfExtractor;

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!("formats: run with `./dev bench formats --dir DEST`");
        return;
    }
    let arg = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let Some(dest) = arg("--dir").map(PathBuf::from) else {
        eprintln!("formats: --dir DEST is required (benches/formats/gather.sh DEST makes it)");
        std::process::exit(2);
    };
    let docs = dest.join("docs");
    let exe = folio_binary();
    let work = tempfile::tempdir().expect("a temporary folder");
    let limit = Duration::from_secs(60);
    let ocr = Ocr::new(work.path().join("ocr"), "eng", limit);
    if ocr.is_none() {
        eprintln!("formats: Tesseract or pdftoppm is missing: scanned pages are not recognised");
    }
    let pdf = PdfExtractor::new(Some(exe.clone()), limit).with_ocr(ocr);
    let s = folio::setup::settings(None).expect("settings").1;
    let embedder = folio::setup::embedder(&s, &mut |m| eprintln!("{m}")).expect("embedding model");
    let opts = ChunkOptions {
        target: s.chunk_tokens,
        max: embedder.info().max_tokens,
        overlap: s.chunk_overlap,
    };
    let count = |t: &str| embedder.count_tokens(t);

    let mut files: Vec<PathBuf> = std::fs::read_dir(&docs)
        .expect("DEST/docs")
        .flatten()
        .map(|e| e.path())
        .filter(|p| Kind::of(p).is_some())
        .collect();
    files.sort();
    // Per format: seconds per file, passages, files read, failures.
    let mut by_kind: BTreeMap<String, (Vec<f64>, usize, usize, Vec<String>)> = BTreeMap::new();
    let mut recognised: Vec<(PathBuf, String)> = Vec::new();
    for f in &files {
        let kind = Kind::of(f)
            .map(|k| format!("{k:?}").to_lowercase())
            .unwrap_or_default();
        let started = Instant::now();
        let read = folio::ingest::read_file(f, &pdf);
        let seconds = started.elapsed().as_secs_f64();
        let e = by_kind.entry(kind).or_default();
        e.0.push(seconds);
        match read {
            Ok(units) => {
                e.1 += chunk_units(&units, &opts, &count).len();
                e.2 += 1;
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.as_deref().is_some_and(|n| n.starts_with("scan-")) {
                    let text: String = units.iter().map(|u| u.text.as_str()).collect();
                    recognised.push((f.clone(), text));
                }
            }
            Err(why) => e.3.push(format!("{}: {why}", f.display())),
        }
    }

    println!("## Formats ({} files in {})\n", files.len(), docs.display());
    println!("| format | files | read | passages | p50 ms | p95 ms | slowest ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut all = Vec::new();
    for (kind, (times, passages, read, _)) in &by_kind {
        let ms = |p: f64| percentile(times, p) * 1000.0;
        println!(
            "| {kind} | {} | {read} | {passages} | {:.0} | {:.0} | {:.0} |",
            times.len(),
            ms(50.0),
            ms(95.0),
            ms(100.0)
        );
        all.extend_from_slice(times);
    }
    let ms = |p: f64| percentile(&all, p) * 1000.0;
    println!(
        "| all | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
        all.len(),
        by_kind.values().map(|v| v.2).sum::<usize>(),
        by_kind.values().map(|v| v.1).sum::<usize>(),
        ms(50.0),
        ms(95.0),
        ms(100.0)
    );
    for (_, _, _, failed) in by_kind.values() {
        for f in failed {
            println!("failed: {f}");
        }
    }

    // OCR word accuracy: 1 - word edit distance / words of the source text.
    if !recognised.is_empty() {
        let mut errors = 0usize;
        let mut words = 0usize;
        for (path, text) in &recognised {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
            let truth = stem
                .and_then(|s| {
                    std::fs::read_to_string(dest.join("truth").join(format!("{s}.txt"))).ok()
                })
                .unwrap_or_default();
            let want = normalise(&truth);
            let got = normalise(text);
            errors += edit_distance(&want, &got);
            words += want.len();
        }
        println!(
            "\nOCR: {} scanned pages, word accuracy {:.3} ({} word errors in {} words)",
            recognised.len(),
            1.0 - errors as f64 / words.max(1) as f64,
            errors,
            words
        );
    }

    // Peak memory of indexing the folder, as a person runs it.
    let idx = work.path().join("idx");
    let started = Instant::now();
    let status = Command::new(&exe)
        .args(["index", "--quiet", "--index"])
        .arg(&idx)
        .arg(&docs)
        .env("FOLIO_MODELS", &s.models_dir)
        .status()
        .expect("running folio index");
    let took = started.elapsed().as_secs_f64();
    // SAFETY: getrusage writes only the struct it is given.
    let peak_kib = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss
    };
    println!(
        "\nfolio index over the folder: {took:.1} s ({status}); peak RSS of its largest process {:.0} MiB",
        peak_kib as f64 / 1024.0
    );
}

/// The `folio` binary beside this bench's (the workers are started from it).
fn folio_binary() -> PathBuf {
    let me = std::env::current_exe().expect("this bench's path");
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("the target folder");
    let exe = dir.join("folio");
    assert!(exe.exists(), "build folio first: cargo build --bin folio");
    exe
}

/// Words, lower-cased, punctuation trimmed: what OCR accuracy is judged on.
fn normalise(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Levenshtein distance over words.
fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
