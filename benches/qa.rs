//! The answer benchmark: folio's answers to the development QA set (`benches/qa/`), measured
//! the way a person meets them, through `folio ask --json`.
//!
//! Run with `./dev bench qa` (= `cargo bench --profile dev --bench qa`). The corpus is
//! gathered from Debian's documentation packages by `benches/qa/gather.sh` on first use.
//! Options:
//! - `--split tune|test|all` (default test): which questions;
//! - `--llm SPEC` (repeatable; default `default`): models to answer with, by path or name;
//! - `--set KEY=VALUE` (repeatable): settings for every run (written to a config file);
//! - `--baseline BIN`: also run another `folio` binary on the same questions (before/after);
//! - `--tune`: no model; search the evidence weights and the abstention thresholds on the
//!   tune split (questions from the test split are never looked at);
//! - `--no-model`: evidence and abstention before generation only;
//! - `--corpus DIR`, `--questions FILE`.
//!
//! Prints a Markdown report and writes it as JSON to `$CARGO_TARGET_DIR/qa-bench.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use folio::answer::evidence::Params;
use folio::answer::{AskOptions, Gathered, Signals, gather};
use folio::config::{Dirs, Settings};
use folio::embed::Embedder;
use folio::eval::percentile;
use folio::index::Index;
use folio::index::search::Filter;
use serde::Deserialize;
use serde_json::{Value, json};

const FOLIO: &str = env!("CARGO_BIN_EXE_folio");

#[derive(Debug, Clone, Deserialize)]
struct Question {
    id: String,
    question: String,
    source: Option<String>,
    answers: Vec<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    doc_kind: String,
    split: String,
}

impl Question {
    fn answerable(&self) -> bool {
        self.source.is_some()
    }
}

struct Args {
    corpus: Option<PathBuf>,
    questions: PathBuf,
    split: String,
    llms: Vec<String>,
    sets: Vec<(String, String)>,
    baseline: Option<PathBuf>,
    tune: bool,
    no_model: bool,
    prompts: Option<PathBuf>,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do then.
    if !argv.iter().any(|a| a == "--bench") {
        println!("qa: run with `./dev bench qa`");
        return None;
    }
    let mut a = Args {
        corpus: None,
        questions: PathBuf::from("benches/qa/questions.jsonl"),
        split: "test".into(),
        llms: Vec::new(),
        sets: Vec::new(),
        baseline: None,
        tune: false,
        no_model: false,
        prompts: None,
    };
    let mut it = argv.iter().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--corpus" => a.corpus = it.next().map(PathBuf::from),
            "--questions" => a.questions = it.next().map(PathBuf::from).unwrap_or(a.questions),
            "--split" => a.split = it.next().cloned().unwrap_or(a.split),
            "--llm" => a.llms.extend(it.next().cloned()),
            "--set" => {
                if let Some((k, v)) = it.next().and_then(|kv| kv.split_once('=')) {
                    a.sets.push((k.to_string(), v.to_string()));
                }
            }
            "--baseline" => a.baseline = it.next().map(PathBuf::from),
            "--tune" => a.tune = true,
            "--no-model" => a.no_model = true,
            "--prompts" => a.prompts = it.next().map(PathBuf::from),
            _ => {}
        }
    }
    if a.llms.is_empty() {
        a.llms.push("default".into());
    }
    Some(a)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Lower-cased, quotes straightened, whitespace collapsed: how answers are compared.
fn norm(s: &str) -> String {
    s.to_lowercase()
        .replace(['‘', '’'], "'")
        .replace(['“', '”'], "\"")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn has_fact(text: &str, q: &Question) -> bool {
    let t = norm(text);
    q.answers.iter().any(|a| t.contains(&norm(a)))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn settings(config: Option<&Path>) -> (Dirs, Settings) {
    folio::setup::settings(config).expect("settings")
}

/// A config file holding `sets` (dotted keys), for the runs of `folio ask`.
fn write_config(path: &Path, sets: &[(String, String)]) {
    let mut tables: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in sets {
        let (table, key) = k.split_once('.').expect("settings are table.key");
        let value = if v.parse::<f64>().is_ok() || v == "true" || v == "false" {
            v.clone()
        } else {
            format!("{v:?}")
        };
        tables
            .entry(table.to_string())
            .or_default()
            .push(format!("{key} = {value}"));
    }
    let mut text = String::new();
    for (t, lines) in tables {
        text.push_str(&format!("[{t}]\n{}\n\n", lines.join("\n")));
    }
    std::fs::write(path, text).expect("writing the bench config");
}

fn ensure_corpus(dir: &Path) {
    if dir.join(".complete").exists() {
        return;
    }
    eprintln!("qa: gathering the corpus into {}", dir.display());
    let status = Command::new("bash")
        .arg("benches/qa/gather.sh")
        .arg(dir)
        .status()
        .expect("running benches/qa/gather.sh");
    // 2: complete, but a pinned package version has left the mirror and a file changed.
    match status.code() {
        Some(0) => {}
        Some(2) => eprintln!("qa: warning: some corpus files differ from the recorded ones"),
        _ => panic!("benches/qa/gather.sh failed: {status}"),
    }
    std::fs::write(dir.join(".complete"), "").expect("marking the corpus");
}

fn index_corpus(corpus: &Path, index: &Path, config: &Path) {
    let out = Command::new(FOLIO)
        .arg("index")
        .arg(corpus)
        .arg("--index")
        .arg(index)
        .arg("--config")
        .arg(config)
        .output()
        .expect("running folio index");
    assert!(
        out.status.success(),
        "folio index failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `folio ask --json` run.
fn ask(bin: &Path, q: &str, index: &Path, config: &Path, llm: &str) -> Value {
    let mut cmd = Command::new(bin);
    cmd.args(["ask", "--json", q, "--index"])
        .arg(index)
        .arg("--config")
        .arg(config);
    if llm != "default" {
        cmd.args(["--llm", llm]);
    }
    let out = cmd.output().expect("running folio ask");
    // 3 is an abstention, which the JSON reports; anything else non-zero is a failure.
    if !matches!(out.status.code(), Some(0 | 3)) {
        eprintln!(
            "qa: folio ask failed on {q:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return Value::Null;
    }
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

#[derive(Default, Debug)]
struct Tally {
    answerable: usize,
    unanswerable: usize,
    source_cited: usize,
    fact_shown: usize,
    fact_on_screen: usize,
    fact_top_evidence: usize,
    fact_any_evidence: usize,
    fact_model: usize,
    abstained_right: usize,
    abstained_wrong: usize,
    invalid_citations: usize,
    outcomes: HashMap<String, usize>,
    first_evidence_ms: Vec<f64>,
    evidence_ms: Vec<f64>,
    first_token_ms: Vec<f64>,
    check_ms: Vec<f64>,
    prompt_tokens: Vec<f64>,
    misses: Vec<String>,
}

/// Citations in the shown answer that name no passage, or whose quote is not the passage's.
fn invalid_citations(a: &Value) -> usize {
    let passages = a["passages"].as_array().map_or(0, Vec::len);
    let answer = a["answer"].as_str().unwrap_or("");
    let mut bad = 0;
    let mut rest = answer;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(']') else { break };
        for n in after[..close].split(',') {
            if let Ok(n) = n.trim().parse::<usize>()
                && (n == 0 || n > passages)
            {
                bad += 1;
            }
        }
        rest = &after[close + 1..];
    }
    for c in a["citations"].as_array().into_iter().flatten() {
        if c["supported"] == true {
            let quote = c["quote"].as_str().unwrap_or("");
            let text = c["passage"]["text"].as_str().unwrap_or("");
            if quote.is_empty() || !text.contains(quote) {
                bad += 1;
            }
        }
    }
    bad
}

fn tally(questions: &[&Question], answers: &[Value]) -> Tally {
    let mut t = Tally::default();
    for (q, a) in questions.iter().zip(answers) {
        if a.is_null() {
            t.misses.push(format!("{}: folio ask failed", q.id));
            continue;
        }
        let outcome = a["outcome"].as_str().unwrap_or(if a["abstained"] == true {
            "abstained"
        } else {
            "answered"
        });
        *t.outcomes.entry(outcome.to_string()).or_default() += 1;
        let abstained = a["abstained"] == true;
        let timings = &a["timings"];
        let ms = |k: &str| timings[k].as_f64().unwrap_or(0.0);
        t.first_evidence_ms
            .push(ms("retrieve_ms") + ms("evidence_ms"));
        t.evidence_ms.push(ms("evidence_ms"));
        if timings["prompt_tokens"].as_u64().unwrap_or(0) > 0 {
            t.first_token_ms.push(ms("first_token_ms"));
            t.check_ms.push(ms("check_ms"));
            t.prompt_tokens.push(ms("prompt_tokens"));
        }
        t.invalid_citations += invalid_citations(a);
        let evidence: Vec<&str> = a["evidence"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["quote"].as_str())
            .collect();
        if !q.answerable() {
            t.unanswerable += 1;
            if abstained {
                t.abstained_right += 1;
            } else {
                t.misses.push(format!(
                    "{} (unanswerable) answered: {}",
                    q.id,
                    a["answer"].as_str().unwrap_or("")
                ));
            }
            continue;
        }
        t.answerable += 1;
        if abstained {
            t.abstained_wrong += 1;
        }
        let source = q.source.as_deref().unwrap_or("");
        let cited = a["citations"].as_array().into_iter().flatten().any(|c| {
            c["supported"] == true
                && c["passage"]["path"]
                    .as_str()
                    .is_some_and(|p| file_name(p) == source)
        });
        if cited && !abstained {
            t.source_cited += 1;
        }
        let shown = !abstained && has_fact(a["answer"].as_str().unwrap_or(""), q);
        if shown {
            t.fact_shown += 1;
        }
        if shown || !abstained && evidence.first().is_some_and(|e| has_fact(e, q)) {
            t.fact_on_screen += 1;
        }
        if evidence.first().is_some_and(|e| has_fact(e, q)) {
            t.fact_top_evidence += 1;
        }
        if evidence.iter().any(|e| has_fact(e, q)) {
            t.fact_any_evidence += 1;
        }
        if has_fact(a["model_answer"].as_str().unwrap_or(""), q) {
            t.fact_model += 1;
        }
        if !shown {
            t.misses.push(format!(
                "{} [{}] {:?}: shown {:?}; model {:?}; want {:?}",
                q.id,
                outcome,
                q.question,
                a["answer"].as_str().unwrap_or(""),
                a["model_answer"].as_str().unwrap_or(""),
                q.answers
            ));
        }
    }
    t
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "-".into()
    } else {
        format!("{}/{} ({:.0}%)", n, d, 100.0 * n as f64 / d as f64)
    }
}

fn p(v: &[f64], q: f64) -> f64 {
    if v.is_empty() { 0.0 } else { percentile(v, q) }
}

fn report(name: &str, t: &Tally) -> Value {
    let abstained = t.abstained_right + t.abstained_wrong;
    println!("\n### {name}\n");
    println!("| measure | value |\n| --- | ---: |");
    println!(
        "| right source cited | {} |",
        pct(t.source_cited, t.answerable)
    );
    println!(
        "| fact in the shown answer (lead evidence or model sentence) | {} |",
        pct(t.fact_shown, t.answerable)
    );
    println!(
        "| fact on screen (shown answer or the top evidence above it) | {} |",
        pct(t.fact_on_screen, t.answerable)
    );
    println!(
        "| fact in the top evidence span | {} |",
        pct(t.fact_top_evidence, t.answerable)
    );
    println!(
        "| fact in any evidence span | {} |",
        pct(t.fact_any_evidence, t.answerable)
    );
    println!(
        "| fact in the model's own text | {} |",
        pct(t.fact_model, t.answerable)
    );
    println!(
        "| abstention precision | {} |",
        pct(t.abstained_right, abstained)
    );
    println!(
        "| abstention recall (unanswerable abstained) | {} |",
        pct(t.abstained_right, t.unanswerable)
    );
    println!("| invalid citations | {} |", t.invalid_citations);
    println!(
        "| first evidence after (retrieval + evidence), p50 / p95 | {:.0} / {:.0} ms |",
        p(&t.first_evidence_ms, 50.0),
        p(&t.first_evidence_ms, 95.0)
    );
    println!(
        "| evidence after retrieval, p50 / p95 | {:.1} / {:.1} ms |",
        p(&t.evidence_ms, 50.0),
        p(&t.evidence_ms, 95.0)
    );
    println!(
        "| time to first token, p50 / p95 | {:.0} / {:.0} ms |",
        p(&t.first_token_ms, 50.0),
        p(&t.first_token_ms, 95.0)
    );
    println!(
        "| citation check, p50 / p95 | {:.0} / {:.0} ms |",
        p(&t.check_ms, 50.0),
        p(&t.check_ms, 95.0)
    );
    println!("| prompt tokens, p50 | {:.0} |", p(&t.prompt_tokens, 50.0));
    let mut outcomes: Vec<_> = t.outcomes.iter().collect();
    outcomes.sort();
    println!("| outcomes | {outcomes:?} |");
    if !t.misses.is_empty() {
        println!("\nmisses:");
        for m in &t.misses {
            println!("- {m}");
        }
    }
    json!({
        "answerable": t.answerable,
        "unanswerable": t.unanswerable,
        "source_cited": t.source_cited,
        "fact_shown": t.fact_shown,
        "fact_on_screen": t.fact_on_screen,
        "fact_top_evidence": t.fact_top_evidence,
        "fact_any_evidence": t.fact_any_evidence,
        "fact_model": t.fact_model,
        "abstained_right": t.abstained_right,
        "abstained_wrong": t.abstained_wrong,
        "invalid_citations": t.invalid_citations,
        "first_evidence_ms_p50": p(&t.first_evidence_ms, 50.0),
        "first_evidence_ms_p95": p(&t.first_evidence_ms, 95.0),
        "evidence_ms_p50": p(&t.evidence_ms, 50.0),
        "evidence_ms_p95": p(&t.evidence_ms, 95.0),
        "first_token_ms_p50": p(&t.first_token_ms, 50.0),
        "first_token_ms_p95": p(&t.first_token_ms, 95.0),
        "prompt_tokens_p50": p(&t.prompt_tokens, 50.0),
        "check_ms_p50": p(&t.check_ms, 50.0),
        "check_ms_p95": p(&t.check_ms, 95.0),
        "outcomes": t.outcomes,
        "misses": t.misses,
    })
}

/// One question's evidence and signals, computed once per setting during tuning.
struct Probe {
    answerable: bool,
    /// A real unanswerable question (not an answerable one asked without its source).
    real: bool,
    /// Rank (0-based) of the first evidence span holding the fact.
    fact_rank: Option<usize>,
    signals: Signals,
}

impl Probe {
    fn features(&self) -> [f64; 5] {
        let s = &self.signals;
        [
            s.relevance as f64,
            s.strength as f64,
            s.span_similarity as f64,
            s.coverage as f64,
            f64::from(u8::from(s.typed)),
        ]
    }
}

fn probe(
    idx: &Index,
    e: &Embedder,
    q: &Question,
    opts: &AskOptions,
    exclude: Option<String>,
) -> Probe {
    let mut o = opts.clone();
    if let Some(path) = exclude {
        o.search.filter = Filter {
            exclude: vec![path],
            ..Filter::default()
        };
    }
    let mut cache = HashMap::new();
    let g: Gathered = gather(idx, e, &q.question, &o, &mut cache).expect("gather");
    let real = o.search.filter.exclude.is_empty();
    Probe {
        answerable: q.answerable() && real,
        real,
        fact_rank: g.evidence.iter().position(|ev| has_fact(&ev.quote, q)),
        signals: g.signals,
    }
}

/// Logistic regression by gradient descent on standardised features, with an L2 penalty;
/// returns the bias and the weights on the raw features.
fn fit_logistic(x: &[[f64; 5]], y: &[bool], l2: f64) -> (f64, [f64; 5]) {
    let n = x.len() as f64;
    let mut mean = [0.0; 5];
    let mut sd = [0.0; 5];
    for j in 0..5 {
        mean[j] = x.iter().map(|r| r[j]).sum::<f64>() / n;
        sd[j] = (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n)
            .sqrt()
            .max(1e-6);
    }
    let z: Vec<[f64; 5]> = x
        .iter()
        .map(|r| std::array::from_fn(|j| (r[j] - mean[j]) / sd[j]))
        .collect();
    let (mut b, mut w) = (0.0, [0.0; 5]);
    for _ in 0..20_000 {
        let (mut gb, mut gw) = (0.0, [0.0; 5]);
        for (r, &t) in z.iter().zip(y) {
            let p = 1.0 / (1.0 + (-(b + (0..5).map(|j| w[j] * r[j]).sum::<f64>())).exp());
            let d = p - f64::from(u8::from(t));
            gb += d;
            for j in 0..5 {
                gw[j] += d * r[j];
            }
        }
        b -= 0.1 * gb / n;
        for j in 0..5 {
            w[j] -= 0.1 * (gw[j] / n + l2 * w[j] / n);
        }
    }
    let raw: [f64; 5] = std::array::from_fn(|j| w[j] / sd[j]);
    let bias = b - (0..5).map(|j| w[j] * mean[j] / sd[j]).sum::<f64>();
    (bias, raw)
}

/// Grid search of the evidence weights (fact in the top span, then in the top 3), then of
/// the abstention thresholds, on the tune split only. Retrieval and every candidate's
/// signals (the dense one included) are computed once per question; the weights only
/// re-rank them.
fn tune(idx: &Index, e: &Embedder, s: &Settings, questions: &[&Question], corpus: &Path) {
    let mut base = AskOptions::from_settings(s, Filter::default());
    let answerable: Vec<&&Question> = questions.iter().filter(|q| q.answerable()).collect();
    let mut overall: Option<(f64, Params)> = None;
    let best_passages = base.passages;
    for (passages, min_chars) in [
        (5usize, 120usize),
        (5, 150),
        (5, 180),
        (8, 120),
        (8, 150),
        (3, 120),
    ] {
        let mut all = base.clone();
        all.passages = passages;
        all.evidence.min_chars = min_chars;
        all.evidence.dense_candidates = usize::MAX;
        all.evidence.dense = 1.0;
        let gathered: Vec<Gathered> = answerable
            .iter()
            .map(|q| gather(idx, e, &q.question, &all, &mut HashMap::new()).expect("gather"))
            .collect();
        let in_passages = answerable
            .iter()
            .zip(&gathered)
            .filter(|(q, g)| g.retrieved.iter().any(|p| has_fact(&p.text, q)))
            .count();
        println!(
            "\nmin_chars {min_chars}: fact in the {} retrieved passages: {}",
            passages,
            pct(in_passages, answerable.len())
        );
        // Coordinate ascent: each weight in turn takes the value that scores best with the
        // others fixed, until nothing improves.
        let evaluate = |params: &Params| -> (usize, usize) {
            let (mut top1, mut top3) = (0, 0);
            for (q, g) in answerable.iter().zip(&gathered) {
                let mut c = g.candidates.clone();
                folio::answer::evidence::rank(&mut c, params);
                let texts: Vec<&str> = g.retrieved.iter().map(|p| p.text.as_str()).collect();
                let picked = folio::answer::evidence::pick(&c, &texts, 3);
                let at = picked
                    .iter()
                    .position(|c| has_fact(&texts[c.passage][c.start..c.end], q));
                top1 += usize::from(at == Some(0));
                top3 += usize::from(at.is_some());
            }
            (top1, top3)
        };
        let objective = |(t1, t3): (usize, usize)| t1 as f64 + 0.25 * t3 as f64;
        let mut params = Params {
            min_chars,
            ..base.evidence.clone()
        };
        // QA_DENSE_K=N fixes how many candidates are compared with the question by embedding
        // (0: none), to see what the dense signal is worth for its time.
        let fixed_k: Option<usize> = std::env::var("QA_DENSE_K")
            .ok()
            .and_then(|v| v.parse().ok());
        if let Some(k) = fixed_k {
            params.dense_candidates = k;
            if k == 0 {
                params.dense = 0.0;
            }
        }
        let start = evaluate(&params);
        println!(
            "defaults: top-1 {}, top-3 {} of {}",
            start.0,
            start.1,
            answerable.len()
        );
        let mut best_score = objective(start);
        let grid = [
            -1.0f32, -0.5, 0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0,
        ];
        for round in 0..4 {
            let mut improved = false;
            for field in 0..9 {
                let values: Vec<f32> = if field == 8 {
                    vec![0.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0]
                } else {
                    grid.to_vec()
                };
                if fixed_k.is_some() && (field == 8 || fixed_k == Some(0) && matches!(field, 5 | 7))
                {
                    continue;
                }
                for v in values {
                    let mut p = params.clone();
                    match field {
                        0 => p.lexical = v,
                        1 => p.context = v,
                        2 => p.lead_in = v,
                        3 => p.answer_type = v,
                        4 => p.rank = v,
                        5 => p.dense = v,
                        6 => p.junk = v,
                        7 => {}
                        _ => p.dense_candidates = v as usize,
                    }
                    let r = evaluate(&p);
                    if objective(r) > best_score + 1e-9 {
                        best_score = objective(r);
                        params = p;
                        improved = true;
                        println!(
                            "round {round}: top-1 {}, top-3 {} with {params:?}",
                            r.0, r.1
                        );
                    }
                }
            }
            if !improved {
                break;
            }
        }
        if overall.as_ref().is_none_or(|o| best_score > o.0) {
            overall = Some((best_score, params));
        }
    }
    let best = overall;
    let Some((_, params)) = best else { return };
    println!("\nbest evidence weights on the tune split: {params:?}, {best_passages} passages");
    base.passages = best_passages;
    if std::env::var_os("QA_DEBUG").is_some() {
        let mut all = base.clone();
        all.evidence = Params {
            dense_candidates: usize::MAX,
            ..params.clone()
        };
        let gathered: Vec<Gathered> = answerable
            .iter()
            .map(|q| gather(idx, e, &q.question, &all, &mut HashMap::new()).expect("gather"))
            .collect();
        for (q, g) in answerable.iter().zip(&gathered) {
            let mut c = g.candidates.clone();
            folio::answer::evidence::rank(&mut c, &params);
            let texts: Vec<&str> = g.retrieved.iter().map(|p| p.text.as_str()).collect();
            let at = c
                .iter()
                .position(|c| has_fact(&texts[c.passage][c.start..c.end], q));
            if at == Some(0) {
                continue;
            }
            println!(
                "\n{} {:?} want {:?} (fact at candidate {at:?} of {})",
                q.id,
                q.question,
                q.answers,
                c.len()
            );
            for x in c.iter().take(2) {
                println!(
                    "  top {:.2} lex {:.2} ctx {:.2} lead {:.2} typ {:.0} rank {:.2} junk {:.0} dense {:.2}: {:?}",
                    x.score,
                    x.lexical,
                    x.context,
                    x.lead_in,
                    x.answer_type,
                    x.rank,
                    x.junk,
                    x.dense.unwrap_or(0.0),
                    &texts[x.passage][x.start..x.end]
                );
            }
            if let Some(i) = at {
                let x = &c[i];
                println!(
                    "  fact {:.2} lex {:.2} ctx {:.2} lead {:.2} typ {:.0} rank {:.2} junk {:.0} dense {:.2}: {:?}",
                    x.score,
                    x.lexical,
                    x.context,
                    x.lead_in,
                    x.answer_type,
                    x.rank,
                    x.junk,
                    x.dense.unwrap_or(0.0),
                    &texts[x.passage][x.start..x.end]
                );
            }
        }
    }

    // The gate: the real unanswerable questions, and each answerable one asked of the folder
    // without its source file (a question about a document the user does not have).
    base.evidence = params;
    let mut probes: Vec<Probe> = Vec::new();
    for q in questions {
        probes.push(probe(idx, e, q, &base, None));
        if let Some(src) = &q.source {
            let path = corpus.join(src);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            probes.push(probe(
                idx,
                e,
                q,
                &base,
                Some(path.to_string_lossy().into_owned()),
            ));
        }
    }
    let pos = probes.iter().filter(|p| p.answerable).count();
    let neg = probes.len() - pos;
    let real_neg = probes.iter().filter(|p| !p.answerable && p.real).count();
    println!(
        "\ngate: {pos} answerable, {neg} unanswerable ({real_neg} real, the rest asked without their source)"
    );
    let x: Vec<[f64; 5]> = probes.iter().map(Probe::features).collect();
    let y: Vec<bool> = probes.iter().map(|p| p.answerable).collect();
    let (bias, w) = fit_logistic(&x, &y, 1.0);
    println!(
        "fitted GATE: bias {bias:.2}, relevance {:.2}, strength {:.2}, span_similarity {:.2}, coverage {:.2}, typed {:.2}",
        w[0], w[1], w[2], w[3], w[4]
    );
    println!("the shipped GATE's answerability on these probes, by threshold:");
    println!("| threshold | answerable kept | unanswerable refused | real unanswerable refused |");
    println!("| ---: | ---: | ---: | ---: |");
    for t in [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let keep = |p: &Probe| p.signals.answerable() >= t;
        let kept = probes.iter().filter(|p| p.answerable && keep(p)).count();
        let refused = probes.iter().filter(|p| !p.answerable && !keep(p)).count();
        let real = probes
            .iter()
            .filter(|p| !p.answerable && p.real && !keep(p))
            .count();
        println!(
            "| {t} | {} | {} | {} |",
            pct(kept, pos),
            pct(refused, neg),
            pct(real, real_neg)
        );
    }
}

fn main() {
    let Some(args) = parse_args() else { return };
    let target = target_dir();
    let work = target.join("qa");
    std::fs::create_dir_all(&work).expect("bench dir");
    let corpus = args.corpus.clone().unwrap_or_else(|| work.join("corpus"));
    ensure_corpus(&corpus);
    let corpus = std::fs::canonicalize(&corpus).expect("corpus");
    let text = std::fs::read_to_string(&args.questions).expect("questions file");
    let all: Vec<Question> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a question"))
        .collect();
    let questions: Vec<&Question> = all
        .iter()
        .filter(|q| args.split == "all" || q.split == args.split)
        .collect();
    let config = work.join("config.toml");
    write_config(&config, &args.sets);
    // The runs read prompt templates from `prompts/` beside their config file.
    let prompts = work.join("prompts");
    let _ = std::fs::remove_dir_all(&prompts);
    if let Some(dir) = &args.prompts {
        std::fs::create_dir_all(&prompts).expect("prompts dir");
        for name in ["system.txt", "question.txt"] {
            if dir.join(name).exists() {
                std::fs::copy(dir.join(name), prompts.join(name)).expect("copying a prompt");
            }
        }
        println!("prompts from {}", dir.display());
    }
    let index = work.join("index");
    index_corpus(&corpus, &index, &config);
    if args.tune {
        println!("## QA tuning on the tune split");
    }
    println!(
        "## QA benchmark: {} questions ({} answerable) of split {:?}, corpus {} ({} files)\n",
        questions.len(),
        questions.iter().filter(|q| q.answerable()).count(),
        args.split,
        corpus.display(),
        std::fs::read_dir(&corpus).map(|d| d.count()).unwrap_or(0)
    );
    if !args.sets.is_empty() {
        println!("settings: {:?}", args.sets);
    }

    if args.tune || args.no_model {
        let (_, s) = settings(Some(&config));
        let e = folio::setup::embedder(&s, &mut |m| eprintln!("{m}")).expect("embedding model");
        let idx = Index::open_reader(&index).expect("index");
        if args.tune {
            let tune_qs: Vec<&Question> = all.iter().filter(|q| q.split == "tune").collect();
            tune(&idx, &e, &s, &tune_qs, &corpus);
        } else {
            let o = AskOptions::from_settings(&s, Filter::default());
            let probes: Vec<Probe> = questions
                .iter()
                .map(|q| probe(&idx, &e, q, &o, None))
                .collect();
            let pos: Vec<&Probe> = probes.iter().filter(|p| p.answerable).collect();
            println!(
                "fact in the top evidence span {}, in the top 3 {}",
                pct(
                    pos.iter().filter(|p| p.fact_rank == Some(0)).count(),
                    pos.len()
                ),
                pct(
                    pos.iter().filter(|p| p.fact_rank.is_some()).count(),
                    pos.len()
                )
            );
        }
        return;
    }

    let mut results = serde_json::Map::new();
    let mut runs: Vec<(String, PathBuf, String)> = args
        .llms
        .iter()
        .map(|l| (format!("folio, {l}"), PathBuf::from(FOLIO), l.clone()))
        .collect();
    if let Some(b) = &args.baseline {
        runs.push((
            format!("baseline {}", b.display()),
            b.clone(),
            "default".into(),
        ));
    }
    for (name, bin, llm) in runs {
        eprintln!("qa: {name}");
        let answers: Vec<Value> = questions
            .iter()
            .map(|q| {
                let a = ask(&bin, &q.question, &index, &config, &llm);
                eprint!(".");
                a
            })
            .collect();
        eprintln!();
        let t = tally(&questions, &answers);
        let mut r = report(&name, &t);
        r["rows"] = json!(
            questions
                .iter()
                .zip(&answers)
                .map(|(q, a)| {
                    json!({
                        "id": q.id,
                        "answerable": q.answerable(),
                        "answers": q.answers,
                        "source": q.source,
                        "outcome": a["outcome"],
                        "reason": a["reason"],
                        "answer": a["answer"],
                        "model_answer": a["model_answer"],
                        "answerable_p": a["answerable"],
                        "signals": a["signals"],
                        "sentences": a["sentences"],
                        "evidence": a["evidence"].as_array().map(|e| e.iter().map(|x| x["quote"].clone()).collect::<Vec<_>>()),
                        "evidence_scores": a["evidence"].as_array().map(|e| e.iter().map(|x| x["score"].clone()).collect::<Vec<_>>()),
                        "fact_model": has_fact(a["model_answer"].as_str().unwrap_or(""), q),
                        "fact_top_evidence": a["evidence"][0]["quote"].as_str().is_some_and(|e| has_fact(e, q)),
                    })
                })
                .collect::<Vec<_>>()
        );
        r["kinds"] = json!(
            questions
                .iter()
                .map(|q| (q.id.clone(), format!("{}/{}", q.kind, q.doc_kind)))
                .collect::<HashMap<_, _>>()
        );
        results.insert(name, r);
    }
    let out = target.join("qa-bench.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&Value::Object(results)).expect("json"),
    )
    .expect("writing the report");
    println!("\nwritten to {}", out.display());
}
