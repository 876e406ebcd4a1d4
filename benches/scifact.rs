//! The SciFact benchmark: retrieval quality, indexing speed, query latency, memory, the
//! embedder's correctness check, ANN recall, and embedding throughput beside ONNX Runtime.
//!
//! Run with `./dev bench` (= `cargo bench --profile dev --bench scifact`). Options:
//! `--data DIR` (default `../shared/data/scifact`), `--split NAME` (default test),
//! `--skip-mteb`, `--skip-ann`, `--skip-ort`, `--embed-only`, `--ann-rows N` (default 100000), `--ort-docs N`.
//! Prints a Markdown report and writes it as JSON to `$CARGO_TARGET_DIR/scifact-bench.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use folio::config::Settings;
use folio::embed::Embedder;
use folio::eval::{Beir, ModeScores, percentile, score_mode};
use folio::index::Index;
use folio::index::search::{Retrievers, SearchOptions};
use folio::index::vectors::{VectorRow, Vectors};
use folio::pipeline::{IndexOptions, Quiet, RunReport};
use serde_json::json;

struct Args {
    data: PathBuf,
    split: String,
    mteb: bool,
    ann: bool,
    ort: bool,
    ann_rows: usize,
    ort_docs: usize,
    /// Only the embedding throughput rows (folio, its f32 reference, ONNX Runtime).
    embed_only: bool,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do then.
    if !argv.iter().any(|a| a == "--bench") {
        println!("scifact: run with `./dev bench`");
        return None;
    }
    let mut a = Args {
        data: PathBuf::from("../shared/data/scifact"),
        split: "test".into(),
        mteb: true,
        ann: true,
        ort: true,
        ann_rows: 100_000,
        ort_docs: 512,
        embed_only: false,
    };
    let mut it = argv.iter().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--data" => a.data = it.next().map(PathBuf::from).unwrap_or(a.data),
            "--split" => a.split = it.next().cloned().unwrap_or(a.split),
            "--skip-mteb" => a.mteb = false,
            "--skip-ann" => a.ann = false,
            "--skip-ort" => a.ort = false,
            "--embed-only" => a.embed_only = true,
            "--ann-rows" => {
                a.ann_rows = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.ann_rows)
            }
            "--ort-docs" => {
                a.ort_docs = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.ort_docs)
            }
            _ => {}
        }
    }
    Some(a)
}

/// Resets the peak-RSS counter (Linux), so each phase reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn mib(b: Option<u64>) -> f64 {
    b.unwrap_or(0) as f64 / (1 << 20) as f64
}

fn settings() -> Settings {
    folio::setup::settings(None).expect("settings").1
}

/// Indexes the corpus into `dir` the way `folio eval` does.
fn index_corpus(
    dir: &Path,
    data: &Path,
    e: &Embedder,
    opts: &IndexOptions,
    split: &str,
) -> RunReport {
    let mut idx = Index::open_writer(dir, e.info(), &opts.chunking(), false).expect("index");
    let mut beir = Beir::load(data, split).expect("BEIR set");
    folio::eval::index_corpus(&mut idx, e, data, &mut beir, opts, &mut Quiet).expect("indexing")
}

fn scores(dir: &Path, data: &Path, e: &Embedder, s: &Settings, split: &str) -> Vec<ModeScores> {
    let idx = Index::open_reader(dir).expect("index");
    let beir = Beir::load(data, split).expect("BEIR set");
    let base = SearchOptions::from_settings(s, Retrievers::Hybrid);
    [Retrievers::Bm25, Retrievers::Dense, Retrievers::Hybrid]
        .into_iter()
        .map(|m| score_mode(&idx, e, &beir, &base, m).expect("scoring"))
        .collect()
}

/// Latency of the product's own query path (defaults: k=10, depth=100, passages read back).
fn latency(dir: &Path, data: &Path, e: &Embedder, s: &Settings, split: &str) -> (f64, f64) {
    let idx = Index::open_reader(dir).expect("index");
    let beir = Beir::load(data, split).expect("BEIR set");
    let opts = SearchOptions::from_settings(s, Retrievers::Hybrid);
    let mut qids: Vec<&String> = beir.qrels.keys().collect();
    qids.sort();
    let mut times = Vec::new();
    for q in qids {
        let t0 = Instant::now();
        let p = idx
            .search(Some(e), &beir.queries[q], &opts)
            .expect("search");
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(!p.is_empty());
    }
    (percentile(&times, 50.0), percentile(&times, 95.0))
}

/// Recall@10 of the IVF-PQ index against exact search, on `rows` vectors: the corpus's passage
/// vectors plus noisy copies of them.
fn ann_recall(
    corpus_index: &Path,
    data: &Path,
    e: &Embedder,
    rows: usize,
    split: &str,
) -> serde_json::Value {
    let base = Vectors::open(&corpus_index.join("vectors"), e.info().dim, false).expect("vectors");
    let all = base.all_vectors().expect("vectors");
    let n = all.len();
    let t = tempfile::tempdir().expect("tempdir");
    let mut v = Vectors::open(t.path(), e.info().dim, true).expect("ann table");
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f32 / (1u64 << 53) as f32 - 0.5
    };
    let mut batch = Vec::new();
    let mut id = 0u64;
    while (id as usize) < rows {
        let (_, ref vec) = all[id as usize % all.len()];
        let copy = id as usize >= all.len();
        let mut x: Vec<f32> = vec
            .iter()
            .map(|&f| if copy { f + 0.08 * next() } else { f })
            .collect();
        let norm = x.iter().map(|f| f * f).sum::<f32>().sqrt();
        x.iter_mut().for_each(|f| *f /= norm);
        batch.push(VectorRow {
            id,
            path: format!("/{}", id % 997),
            hash: id.to_string(),
            vector: x,
        });
        id += 1;
        if batch.len() == 20_000 {
            v.add(&batch).expect("add");
            batch.clear();
        }
    }
    v.add(&batch).expect("add");
    let t0 = Instant::now();
    v.build_ann_index().expect("ann index");
    let build_s = t0.elapsed().as_secs_f64();
    let beir = Beir::load(data, split).expect("BEIR set");
    let mut qids: Vec<&String> = beir.qrels.keys().collect();
    qids.sort();
    let (mut hit, mut total) = (0usize, 0usize);
    let (mut exact_ms, mut ann_ms) = (Vec::new(), Vec::new());
    for q in qids {
        let qv = e.embed_query(&beir.queries[q]).expect("embed");
        let t0 = Instant::now();
        let exact = v.search(&qv, 10, None, true).expect("exact");
        exact_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let t0 = Instant::now();
        let approx = v.search(&qv, 10, None, false).expect("ann");
        ann_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        let truth: std::collections::HashSet<u64> = exact.iter().map(|h| h.0).collect();
        hit += approx.iter().filter(|h| truth.contains(&h.0)).count();
        total += truth.len();
    }
    json!({
        "rows": rows,
        "real_vectors": n,
        "index_build_s": build_s,
        "recall_at_10": hit as f64 / total.max(1) as f64,
        "exact_p50_ms": percentile(&exact_ms, 50.0),
        "ann_p50_ms": percentile(&ann_ms, 50.0),
    })
}

/// folio's embedder on the ORT script's texts and settings (title + text, cut at 256 word
/// pieces, length-sorted, batches of 32), then the ORT script itself.
fn embed_throughput(
    data: &Path,
    e: &Embedder,
    docs: usize,
) -> (serde_json::Value, Option<serde_json::Value>, Option<String>) {
    let beir = Beir::load(data, "test").expect("BEIR set");
    let texts: Vec<String> = beir
        .corpus
        .iter()
        .take(docs)
        .map(|d| format!("{} {}", d.title, d.body).trim().to_string())
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = e.embed(&refs[..8.min(refs.len())]);
    let t0 = Instant::now();
    let (_, tokens) = e.embed_counted(&refs).expect("embed");
    let secs = t0.elapsed().as_secs_f64();
    let ours = json!({"engine": "folio-int8", "docs": docs, "seconds": secs,
        "docs_per_s": docs as f64 / secs, "tokens_per_s": tokens as f64 / secs});
    let tok = folio::models::model_dir(&folio::models::MINILM, &settings().models_dir)
        .join("tokenizer.json");
    let script = Path::new("../shared/tools/ort-embed-bench.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&tok)
        .arg(data.join("corpus.jsonl"))
        .arg(docs.to_string())
        .arg("32")
        .arg("2")
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let line = String::from_utf8_lossy(&o.stdout);
            (ours, serde_json::from_str(line.trim()).ok(), None)
        }
        Ok(o) => (
            ours,
            None,
            Some(
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
                    .to_string(),
            ),
        ),
        Err(err) => (ours, None, Some(err.to_string())),
    }
}

fn main() {
    let Some(args) = parse_args() else { return };
    let s = settings();
    let e = folio::setup::embedder(&s, &mut |m| eprintln!("{m}")).expect("embedding model");
    let work = tempfile::tempdir().expect("tempdir");
    let mut report = serde_json::Map::new();
    report.insert(
        "threads".into(),
        json!(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        ),
    );

    if args.embed_only {
        let model_dir =
            folio::models::resolve_embed(&s.embed_model, &s.models_dir, &mut |m| eprintln!("{m}"))
                .expect("embedding model");
        let reference = Embedder::load_reference(&model_dir, s.embed_batch).expect("embedder");
        let (f32_ref, _, _) = embed_throughput(&args.data, &reference, args.ort_docs);
        let (ours, ort, err) = embed_throughput(&args.data, &e, args.ort_docs);
        let ort = ort.unwrap_or(json!({"error": err}));
        for (name, r) in [
            ("folio int8", &ours),
            ("candle f32 (reference)", &f32_ref),
            ("onnxruntime int8", &ort),
        ] {
            println!(
                "{name}: {} tokens/s, {} docs/s",
                r["tokens_per_s"], r["docs_per_s"]
            );
        }
        return;
    }
    eprintln!("[1/6] indexing SciFact from scratch...");
    let idx = work.path().join("passages");
    let opts = IndexOptions::from_settings(&s, &e, false);
    reset_peak_rss();
    let t0 = Instant::now();
    let r = index_corpus(&idx, &args.data, &e, &opts, &args.split);
    let secs = t0.elapsed().as_secs_f64();
    report.insert(
        "index".into(),
        json!({
            "documents": r.indexed, "passages": r.chunks_written, "seconds": secs,
            "embed_seconds": r.embed_seconds, "tokens": r.tokens_embedded,
            "tokens_per_s": r.tokens_embedded as f64 / r.embed_seconds,
            "passages_per_s": r.chunks_embedded as f64 / r.embed_seconds,
            "peak_rss_mib": mib(folio::fsutil::peak_rss_bytes()),
            "chunk_tokens": s.chunk_tokens, "overlap": s.chunk_overlap,
        }),
    );

    eprintln!("[2/6] re-indexing the unchanged corpus...");
    let t0 = Instant::now();
    let r2 = index_corpus(&idx, &args.data, &e, &opts, &args.split);
    report.insert(
        "reindex".into(),
        json!({"seconds": t0.elapsed().as_secs_f64(),
        "embedded": r2.chunks_embedded, "unchanged": r2.unchanged}),
    );

    eprintln!("[3/6] scoring {} queries...", args.split);
    let sc = scores(&idx, &args.data, &e, &s, &args.split);
    let (p50, p95) = latency(&idx, &args.data, &e, &s, &args.split);
    report.insert("scores".into(), serde_json::to_value(&sc).expect("json"));
    report.insert("hybrid_latency_ms".into(), json!({"p50": p50, "p95": p95}));

    // The corpus is the same for every split: calibrate ask's relevance gate on train.
    if let Ok(train) = Beir::load(&args.data, "train") {
        eprintln!("[3b/6] calibrating the relevance gate on the train split...");
        let i = Index::open_reader(&idx).expect("index");
        let c = folio::eval::calibrate_relevance(&i, &e, &train).expect("calibration");
        report.insert(
            "relevance_gate_train".into(),
            serde_json::to_value(&c).expect("json"),
        );
    }

    if args.mteb {
        eprintln!("[4/6] MTEB layout check (whole documents cut at 256 word pieces)...");
        let whole = work.path().join("whole");
        let wopts = IndexOptions::from_settings(&s, &e, true);
        index_corpus(&whole, &args.data, &e, &wopts, &args.split);
        let sc = scores(&whole, &args.data, &e, &s, &args.split);
        report.insert("mteb_dense_ndcg10".into(), json!(sc[1].ndcg10));
    }
    if args.ann {
        eprintln!("[5/6] ANN recall on {} vectors...", args.ann_rows);
        report.insert(
            "ann".into(),
            ann_recall(&idx, &args.data, &e, args.ann_rows, &args.split),
        );
    }
    if args.ort {
        eprintln!("[6/6] embedding throughput beside ONNX Runtime...");
        let (ours, ort, err) = embed_throughput(&args.data, &e, args.ort_docs);
        report.insert("embed_folio".into(), ours);
        report.insert("embed_ort".into(), ort.unwrap_or(json!({"error": err})));
    }

    let report = serde_json::Value::Object(report);
    print_markdown(&report);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let out = target.join("scifact-bench.json");
    if std::fs::write(&out, serde_json::to_vec_pretty(&report).expect("json")).is_ok() {
        eprintln!("wrote {}", out.display());
    }
}

fn print_markdown(r: &serde_json::Value) {
    println!("## SciFact ({} threads)\n", r["threads"]);
    println!("| mode | nDCG@10 | Recall@100 | MRR@10 |\n| --- | --- | --- | --- |");
    for s in r["scores"].as_array().into_iter().flatten() {
        println!(
            "| {} | {:.4} | {:.4} | {:.4} |",
            s["mode"].as_str().unwrap_or(""),
            s["ndcg10"].as_f64().unwrap_or(0.0),
            s["recall100"].as_f64().unwrap_or(0.0),
            s["mrr10"].as_f64().unwrap_or(0.0)
        );
    }
    let i = &r["index"];
    println!(
        "\nindex from scratch: {:.0} s for {} documents / {} passages; embedding {:.0} tokens/s, {:.1} passages/s; peak RSS {:.0} MiB",
        i["seconds"].as_f64().unwrap_or(0.0),
        i["documents"],
        i["passages"],
        i["tokens_per_s"].as_f64().unwrap_or(0.0),
        i["passages_per_s"].as_f64().unwrap_or(0.0),
        i["peak_rss_mib"].as_f64().unwrap_or(0.0)
    );
    println!(
        "re-index unchanged: {:.2} s, {} passages embedded",
        r["reindex"]["seconds"].as_f64().unwrap_or(0.0),
        r["reindex"]["embedded"]
    );
    println!(
        "hybrid query latency (k=10, embedding included): p50 {:.1} ms, p95 {:.1} ms",
        r["hybrid_latency_ms"]["p50"].as_f64().unwrap_or(0.0),
        r["hybrid_latency_ms"]["p95"].as_f64().unwrap_or(0.0)
    );
    if r["relevance_gate_train"].is_object() {
        let c = &r["relevance_gate_train"];
        println!(
            "relevance gate (train, {} queries): balanced optimum {:.3} (answerable kept {:.3}, unanswerable refused {:.3}); keeping 95% of answerable: {:.3} (refuses {:.3})",
            c["queries"],
            c["threshold"].as_f64().unwrap_or(0.0),
            c["answerable_kept"].as_f64().unwrap_or(0.0),
            c["unanswerable_refused"].as_f64().unwrap_or(0.0),
            c["keep95"]["threshold"].as_f64().unwrap_or(0.0),
            c["keep95"]["unanswerable_refused"].as_f64().unwrap_or(0.0),
        );
    }
    if let Some(m) = r["mteb_dense_ndcg10"].as_f64() {
        println!("MTEB-layout dense nDCG@10: {m:.4} (published 0.645)");
    }
    if r["ann"].is_object() {
        let a = &r["ann"];
        println!(
            "IVF-PQ on {} vectors: recall@10 {:.3} vs exact; p50 {:.1} ms (exact {:.1} ms); built in {:.0} s",
            a["rows"],
            a["recall_at_10"].as_f64().unwrap_or(0.0),
            a["ann_p50_ms"].as_f64().unwrap_or(0.0),
            a["exact_p50_ms"].as_f64().unwrap_or(0.0),
            a["index_build_s"].as_f64().unwrap_or(0.0)
        );
    }
    if r["embed_folio"].is_object() {
        println!(
            "embedding {} docs, 2 threads: folio {:.0} tokens/s; ONNX Runtime int8 {}",
            r["embed_folio"]["docs"],
            r["embed_folio"]["tokens_per_s"].as_f64().unwrap_or(0.0),
            r["embed_ort"]["tokens_per_s"]
                .as_f64()
                .map(|t| format!("{t:.0} tokens/s"))
                .unwrap_or_else(|| format!("unavailable ({})", r["embed_ort"]["error"]))
        );
    }
}
