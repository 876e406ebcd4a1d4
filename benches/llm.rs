//! The language model's benchmark: prompt processing and generation speed of the default GGUF
//! (or `--llm FILE.gguf`) on this CPU, the time to first token of a typical `ask`, and peak
//! memory, beside llama.cpp's `llama-bench` on the same file and thread count in the same run.
//!
//! Run with `./dev bench llm` (= `cargo bench --profile dev --bench llm`). Options:
//! `--llm FILE.gguf`, `--reps N` (default 3), `--skip-llama-cpp`, `--data DIR` (SciFact, for
//! the `ask` corpus; default `../shared/data/scifact`), `--skip-ask`, `--rows pp512,tg128` (only these speed rows), `--docs N` (documents indexed for `ask`,
//! default 300). llama-bench comes from `../shared/tools/llama-bench.sh`, which builds it once
//! (about 20 minutes); nothing of llama.cpp is part of folio.
//!
//! Measured as llama-bench measures: ppN is N prompt tokens in one forward pass from an empty
//! context; tg128 is 128 tokens generated one at a time (end-of-turn ignored), not counting
//! the prompt pass; tg64@d900 is 64 tokens generated after a 900-token prompt (llama-bench's
//! `-d 900`), where attention over the cache weighs. Each figure is the median of `--reps` runs
//! after one warm-up. `--compare-candle` adds the same rows for candle-transformers' models
//! (`FOLIO_LLM_BACKEND=candle`), loaded from the same file.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use folio::answer::{self, AskOptions, Event, prompt::Prompts};
use folio::config::Settings;
use folio::eval::{Beir, percentile};
use folio::index::Index;
use folio::index::search::Filter;
use folio::llm::{GenerateOptions, Llm};
use folio::pipeline::{IndexOptions, Quiet, index_documents};
use serde_json::json;

struct Args {
    llm: Option<PathBuf>,
    reps: usize,
    llama_cpp: bool,
    data: PathBuf,
    docs: usize,
    compare_candle: bool,
    ask: bool,
    /// Only these speed rows (`--rows pp512,tg128`); all when empty.
    rows: Vec<String>,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do then.
    if !argv.iter().any(|a| a == "--bench") {
        println!("llm: run with `./dev bench llm`");
        return None;
    }
    let mut a = Args {
        llm: None,
        reps: 3,
        llama_cpp: true,
        data: PathBuf::from("../shared/data/scifact"),
        docs: 300,
        compare_candle: false,
        ask: true,
        rows: Vec::new(),
    };
    let mut it = argv.iter().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--llm" => a.llm = it.next().map(PathBuf::from),
            "--reps" => a.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.reps),
            "--docs" => a.docs = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.docs),
            "--data" => a.data = it.next().map(PathBuf::from).unwrap_or(a.data),
            "--skip-llama-cpp" => a.llama_cpp = false,
            "--compare-candle" => a.compare_candle = true,
            "--skip-ask" => a.ask = false,
            "--rows" => {
                a.rows = it
                    .next()
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    a.reps = a.reps.max(1);
    Some(a)
}

fn mib(b: Option<u64>) -> f64 {
    b.unwrap_or(0) as f64 / (1 << 20) as f64
}

fn current_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 50.0)
}

/// `n` prompt tokens of ordinary English text (SciFact abstracts, or the prompt itself).
fn prompt_ids(llm: &Llm, text: &str, n: usize) -> Vec<u32> {
    let mut ids = llm.encode_prompt(text).expect("tokenizing");
    while ids.len() < n {
        let more = ids.clone();
        ids.extend(more);
    }
    ids.truncate(n);
    ids
}

/// Prompt processing: tokens per second of one forward pass over `ids` (median of `reps`).
fn pp(llm: &mut Llm, ids: &[u32], reps: usize) -> f64 {
    let opts = GenerateOptions {
        max_tokens: 1,
        ..GenerateOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let mut runs = Vec::new();
    for i in 0..=reps {
        // Every run computes the whole prompt: none reuses the previous run's cache.
        llm.forget_prompt();
        let g = llm
            .generate(ids, &opts, &cancel, &mut |_| {})
            .expect("prompt pass");
        if i > 0 {
            runs.push(g.prompt_tokens_per_second());
        }
    }
    median(runs)
}

/// Generation: tokens per second over `n` tokens after `prompt` (one token for tgN).
fn tg(llm: &mut Llm, prompt: &[u32], n: usize, reps: usize) -> f64 {
    let opts = GenerateOptions {
        max_tokens: n + 1,
        ignore_end_of_turn: true,
        ..GenerateOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let mut runs = Vec::new();
    for i in 0..=reps {
        llm.forget_prompt();
        let g = llm
            .generate(prompt, &opts, &cancel, &mut |_| {})
            .expect("generation");
        if i > 0 {
            runs.push(g.tokens_per_second());
        }
    }
    median(runs)
}

/// llama.cpp's figures on the same file and threads, or why there are none.
fn llama_bench(model: &Path, threads: usize) -> serde_json::Value {
    let script = Path::new("../shared/tools/llama-bench.sh");
    if !script.exists() {
        return json!({"error": format!("{} not found", script.display())});
    }
    eprintln!("  running llama-bench (builds it first if needed: about 20 minutes)...");
    let out = Command::new("bash")
        .arg(script)
        .arg(model)
        .arg(threads.to_string())
        .args(["-p", "512,1500", "-n", "128", "-r", "3", "-o", "json"])
        .output();
    let depth = Command::new("bash")
        .arg(script)
        .arg(model)
        .arg(threads.to_string())
        .args([
            "-p",
            "0",
            "-n",
            "64",
            "-d",
            &DEPTH.to_string(),
            "-r",
            "3",
            "-o",
            "json",
        ])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            return json!({"error": String::from_utf8_lossy(&o.stderr).lines().rev().take(5).collect::<Vec<_>>()});
        }
        Err(e) => return json!({"error": e.to_string()}),
    };
    let rows: Vec<serde_json::Value> = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => return json!({"error": format!("unreadable llama-bench output: {e}")}),
    };
    let mut r = serde_json::Map::new();
    if let Ok(o) = depth
        && let Ok(rows) = serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout)
        && let Some(row) = rows.first()
    {
        r.insert(format!("tg64@d{DEPTH}"), row["avg_ts"].clone());
    }
    for row in rows {
        let (p, g) = (row["n_prompt"].as_u64(), row["n_gen"].as_u64());
        let name = match (p, g) {
            (Some(p), Some(0)) => format!("pp{p}"),
            (Some(0), Some(g)) => format!("tg{g}"),
            _ => continue,
        };
        r.insert(name, row["avg_ts"].clone());
    }
    serde_json::Value::Object(r)
}

/// Prompt tokens before the generation-at-depth row: about a typical `ask` prompt of the
/// previous release.
const DEPTH: usize = 900;

/// The speed rows for one loaded model.
fn speed_rows(llm: &mut Llm, text: &str, reps: usize, only: &[String]) -> serde_json::Value {
    let mut speed = serde_json::Map::new();
    let wanted = |row: &str| only.is_empty() || only.iter().any(|r| r == row);
    for n in [512, 1500] {
        if wanted(&format!("pp{n}")) {
            let ids = prompt_ids(llm, text, n);
            speed.insert(format!("pp{n}"), json!(pp(llm, &ids, reps)));
        }
    }
    if wanted("tg128") {
        let start = prompt_ids(llm, "The", 1);
        speed.insert("tg128".into(), json!(tg(llm, &start, 128, reps)));
    }
    let deep = format!("tg64@d{DEPTH}");
    if wanted(&deep) {
        let ids = prompt_ids(llm, text, DEPTH);
        speed.insert(deep, json!(tg(llm, &ids, 64, reps)));
    }
    serde_json::Value::Object(speed)
}

fn main() {
    let Some(args) = parse_args() else { return };
    let (_, s) = folio::setup::settings(None).expect("settings");
    let threads = candle_core::utils::get_num_threads();
    let model = match &args.llm {
        Some(p) => p.clone(),
        None => folio::models::resolve_llm(&s.llm, &s.models_dir, &mut |m| eprintln!("{m}"))
            .expect("language model"),
    };
    let mut report = serde_json::Map::new();
    report.insert("model".into(), json!(model.display().to_string()));
    report.insert("threads".into(), json!(threads));

    eprintln!("[1/4] loading {}...", model.display());
    let rss0 = current_rss_bytes();
    let t0 = Instant::now();
    let mut llm = Llm::load_with(&model, s.requantize).expect("loading the model");
    report.insert(
        "load".into(),
        json!({
            "seconds": t0.elapsed().as_secs_f64(),
            "rss_mib": mib(current_rss_bytes()) - mib(rss0),
            "quantization": llm.info().quantization,
            "architecture": llm.info().architecture,
        }),
    );

    eprintln!(
        "[2/4] prompt processing and generation ({} reps)...",
        args.reps
    );
    let beir = Beir::load(&args.data, "train").expect("SciFact (for prompt text and `ask`)");
    let text: String = beir
        .corpus
        .iter()
        .take(40)
        .map(|d| format!("{}\n{}\n\n", d.title, d.body))
        .collect();
    report.insert(
        "folio".into(),
        speed_rows(&mut llm, &text, args.reps, &args.rows),
    );
    if args.compare_candle {
        let mut theirs =
            folio::llm::Llm::load_backend(&model, s.requantize, folio::llm::Backend::Candle)
                .expect("loading the model for candle-transformers");
        report.insert(
            "candle".into(),
            speed_rows(&mut theirs, &text, args.reps, &args.rows),
        );
    }

    if args.ask {
        ask_rows(&args, &s, &beir, &mut llm, &mut report);
    }
    report.insert(
        "peak_rss_mib".into(),
        json!(mib(folio::fsutil::peak_rss_bytes())),
    );

    if args.llama_cpp {
        eprintln!("[4/4] llama.cpp's llama-bench on the same file, {threads} threads...");
        report.insert("llama_cpp".into(), llama_bench(&model, threads));
    }

    let report = serde_json::Value::Object(report);
    print_markdown(&report);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let out = target.join("llm-bench.json");
    if std::fs::write(&out, serde_json::to_vec_pretty(&report).expect("json")).is_ok() {
        eprintln!("wrote {}", out.display());
    }
}

/// The time to first token of a typical `ask`, cold and with the previous prefix reused.
fn ask_rows(
    args: &Args,
    s: &Settings,
    beir: &Beir,
    llm: &mut Llm,
    report: &mut serde_json::Map<String, serde_json::Value>,
) {
    eprintln!(
        "[3/4] a typical ask: {} SciFact documents, 5 passages, train questions...",
        args.docs
    );
    let e = folio::setup::embedder(s, &mut |m| eprintln!("{m}")).expect("embedding model");
    let work = tempfile::tempdir().expect("tempdir");
    let idx_dir = work.path().join("index");
    let opts = IndexOptions::from_settings(s, &e, false);
    {
        let mut idx =
            Index::open_writer(&idx_dir, e.info(), &opts.chunking(), false).expect("index");
        // Documents that answer the first train questions, then others, up to --docs.
        let mut qids: Vec<&String> = beir.qrels.keys().collect();
        qids.sort();
        let wanted: std::collections::HashSet<&str> = qids
            .iter()
            .take(10)
            .flat_map(|q| beir.qrels[*q].keys().map(String::as_str))
            .collect();
        let mut docs: Vec<folio::pipeline::InlineDoc> = Vec::new();
        let mut rest = Vec::new();
        for d in Beir::load(&args.data, "train").expect("SciFact").corpus {
            if wanted.contains(d.key.as_str()) {
                docs.push(d);
            } else if rest.len() < args.docs {
                rest.push(d);
            }
        }
        docs.extend(rest.into_iter().take(args.docs.saturating_sub(docs.len())));
        index_documents(&mut idx, &e, "/scifact", docs, 1, &opts, &mut Quiet).expect("indexing");
    }
    let idx = Index::open_reader(&idx_dir).expect("index");
    let prompts = Prompts::default();
    let mut ask_opts = AskOptions::from_settings(s, Filter::default());
    ask_opts.passages = 5;
    // Always reach the model: the time to first token is what is measured here.
    ask_opts.thresholds.min_relevance = -1.0;
    ask_opts.thresholds.min_answerable = 0.0;
    ask_opts.generate.max_tokens = 64;
    let mut qids: Vec<&String> = beir.qrels.keys().collect();
    qids.sort();
    let cancel = AtomicBool::new(false);
    let (mut ttft, mut prompt_tokens, mut retrieve, mut total) = (vec![], vec![], vec![], vec![]);
    let mut check = vec![];
    let (mut ttft_warm, mut reused) = (vec![], vec![]);
    // The questions twice: cold, as `folio ask` runs them (a new process computes the whole
    // prompt), then warm, as the TUI runs them one after another (the system message and
    // template preamble of the previous, different question are still cached).
    let questions: Vec<&String> = qids.iter().take(10).copied().collect();
    let passes = [false, true].into_iter().flat_map(|warm| {
        questions
            .iter()
            .enumerate()
            .map(move |(i, q)| (warm, i, *q))
    });
    for (warm, i, q) in passes {
        if !warm {
            llm.forget_prompt();
        }
        let t0 = Instant::now();
        let mut first = None;
        let mut engine = answer::Engine {
            index: &idx,
            embedder: &e,
            llm,
            prompts: &prompts,
        };
        let a = answer::ask(
            &mut engine,
            &beir.queries[q],
            &ask_opts,
            &cancel,
            &mut |ev| {
                if let Event::Token(_) = ev
                    && first.is_none()
                {
                    first = Some(t0.elapsed().as_secs_f64() * 1000.0);
                }
            },
        )
        .expect("ask");
        if i == 0 {
            continue; // warm-up
        }
        if warm {
            ttft_warm.push(first.unwrap_or(a.timings.total_ms));
            reused.push(a.timings.reused_tokens as f64);
            continue;
        }
        ttft.push(first.unwrap_or(a.timings.total_ms));
        prompt_tokens.push(a.timings.prompt_tokens as f64);
        retrieve.push(a.timings.retrieve_ms);
        total.push(a.timings.total_ms);
        check.push(a.timings.check_ms);
    }
    report.insert(
        "ask".into(),
        json!({
            "questions": ttft.len(),
            "first_token_ms_p50": median(ttft.clone()),
            "first_token_ms_max": ttft.iter().copied().fold(0.0, f64::max),
            "first_token_ms_p50_prefix_reused": median(ttft_warm),
            "reused_tokens_p50": median(reused),
            "prompt_tokens_p50": median(prompt_tokens),
            "retrieve_ms_p50": median(retrieve),
            "total_ms_p50": median(total),
            "citation_check_ms_p50": median(check.clone()),
            "citation_check_ms_max": check.iter().copied().fold(0.0, f64::max),
        }),
    );
}

fn print_markdown(r: &serde_json::Value) {
    println!(
        "\n## {} ({} threads, {})\n",
        r["model"].as_str().unwrap_or(""),
        r["threads"],
        r["load"]["quantization"].as_str().unwrap_or("")
    );
    println!(
        "| test | folio tok/s | candle-transformers tok/s | llama.cpp tok/s | folio / llama.cpp |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    let depth = format!("tg64@d{DEPTH}");
    for t in ["pp512", "pp1500", "tg128", depth.as_str()] {
        let Some(ours) = r["folio"][t].as_f64() else {
            continue;
        };
        let candle = r["candle"][t]
            .as_f64()
            .map_or("-".to_string(), |c| format!("{c:.1}"));
        match r["llama_cpp"][t].as_f64() {
            Some(theirs) => println!(
                "| {t} | {ours:.1} | {candle} | {theirs:.1} | {:.2} |",
                ours / theirs
            ),
            None => println!("| {t} | {ours:.1} | {candle} | - | - |"),
        }
    }
    if let Some(e) = r["llama_cpp"].get("error") {
        println!("\nllama-bench: {e}");
    }
    let a = &r["ask"];
    if a.is_object() {
        print_ask(a);
    }
    println!(
        "model load {:.2} s (+{:.0} MiB RSS); peak RSS of the whole run {:.0} MiB",
        r["load"]["seconds"].as_f64().unwrap_or(0.0),
        r["load"]["rss_mib"].as_f64().unwrap_or(0.0),
        r["peak_rss_mib"].as_f64().unwrap_or(0.0)
    );
}

fn print_ask(a: &serde_json::Value) {
    println!(
        "\nask (5 passages, {} questions): first token p50 {:.0} ms (max {:.0}), prompt {:.0} tokens, retrieval {:.0} ms, total {:.0} ms (64-token answers)",
        a["questions"],
        a["first_token_ms_p50"].as_f64().unwrap_or(0.0),
        a["first_token_ms_max"].as_f64().unwrap_or(0.0),
        a["prompt_tokens_p50"].as_f64().unwrap_or(0.0),
        a["retrieve_ms_p50"].as_f64().unwrap_or(0.0),
        a["total_ms_p50"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  with the previous question's prefix reused (the TUI): first token p50 {:.0} ms ({:.0} prompt tokens reused)",
        a["first_token_ms_p50_prefix_reused"]
            .as_f64()
            .unwrap_or(0.0),
        a["reused_tokens_p50"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  the citation check after generation: p50 {:.0} ms (max {:.0})",
        a["citation_check_ms_p50"].as_f64().unwrap_or(0.0),
        a["citation_check_ms_max"].as_f64().unwrap_or(0.0),
    );
}
