//! Retrieval quality on BEIR-format sets, through the same pipeline as user files.
//!
//! A BEIR folder holds `corpus.jsonl`, `queries.jsonl` and `qrels/SPLIT.tsv`. Each document
//! becomes an inline unit whose first line is its title, chunked and embedded like any file; a
//! document's rank is that of its best passage. The metrics are the standard ones (trec_eval's
//! definitions, as BEIR reports them): nDCG@10 with linear gains, Recall@100 and MRR@10.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::embed::Embedder;
use crate::index::search::{Retrievers, SearchError, SearchOptions};
use crate::index::{Chunking, Index, IndexError};
use crate::pipeline::{IndexOptions, IngestError, InlineDoc, Observer, RunReport};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}")]
    Read {
        path: String,
        #[source]
        source: crate::Cause,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

fn read_err(path: &Path, e: impl Into<crate::Cause>) -> EvalError {
    EvalError::Read {
        path: path.display().to_string(),
        source: e.into(),
    }
}

/// Relevance judgements: query id → document id → grade.
pub type Qrels = HashMap<String, HashMap<String, i32>>;

/// A BEIR data set.
pub struct Beir {
    pub corpus: Vec<InlineDoc>,
    pub queries: HashMap<String, String>,
    pub qrels: Qrels,
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, EvalError> {
    let f = std::fs::File::open(path).map_err(|e| read_err(path, e))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| read_err(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| read_err(path, format!("line {}: {e}", n + 1)))?,
        );
    }
    Ok(out)
}

/// Reads `qrels/SPLIT.tsv` (query-id, corpus-id, score; a header row is skipped).
pub fn read_qrels(path: &Path) -> Result<Qrels, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| read_err(path, e))?;
    let mut q: Qrels = HashMap::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 {
            continue;
        }
        let Ok(score) = cols[2].trim().parse::<i32>() else {
            continue; // header
        };
        q.entry(cols[0].to_string())
            .or_default()
            .insert(cols[1].to_string(), score);
    }
    Ok(q)
}

impl Beir {
    pub fn load(dir: &Path, split: &str) -> Result<Beir, EvalError> {
        let corpus: Vec<CorpusLine> = read_jsonl(&dir.join("corpus.jsonl"))?;
        let queries: Vec<QueryLine> = read_jsonl(&dir.join("queries.jsonl"))?;
        let qrels = read_qrels(&dir.join("qrels").join(format!("{split}.tsv")))?;
        Ok(Beir {
            corpus: corpus
                .into_iter()
                .map(|c| InlineDoc {
                    key: c.id,
                    title: c.title,
                    body: c.text,
                })
                .collect(),
            queries: queries.into_iter().map(|q| (q.id, q.text)).collect(),
            qrels,
        })
    }
}

/// The name of a BEIR set: its folder's name.
pub fn set_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "beir".into())
}

/// The index of one evaluation configuration, under `data_dir`: its own per set, chunking and
/// model, so that a re-run reuses it and the user's index stays clean.
pub fn index_dir_for(
    data_dir: &Path,
    set: &str,
    chunking: &Chunking,
    embed_sha256: &str,
) -> PathBuf {
    data_dir.join("eval").join(format!(
        "{set}-{}-{}-{}-{:.8}",
        chunking.mode, chunking.target, chunking.overlap, embed_sha256
    ))
}

/// Indexes the corpus of the BEIR set in `dir` into `index` through the write pipeline, each
/// document an inline unit at `.../corpus.jsonl/ID`. The corpus is moved out of `beir`.
pub fn index_corpus(
    index: &mut Index,
    embedder: &Embedder,
    dir: &Path,
    beir: &mut Beir,
    opts: &IndexOptions,
    observer: &mut dyn Observer,
) -> Result<RunReport, EvalError> {
    let file = dir.join("corpus.jsonl");
    let root = std::fs::canonicalize(&file).map_err(|e| read_err(&file, e))?;
    let mtime = std::fs::metadata(&root)
        .map(|m| crate::fsutil::mtime_nanos(&m))
        .unwrap_or(0);
    let corpus = std::mem::take(&mut beir.corpus);
    Ok(crate::pipeline::index_documents(
        index,
        embedder,
        &root.to_string_lossy(),
        corpus,
        mtime,
        opts,
        observer,
    )?)
}

/// What one evaluation covers.
pub struct EvalRequest<'a> {
    /// The BEIR folder.
    pub dir: &'a Path,
    pub split: &'a str,
    pub index_dir: &'a Path,
    pub modes: &'a [Retrievers],
    /// Also calibrate the relevance gate on the split's queries.
    pub calibrate: bool,
}

/// What `folio eval` measured.
pub struct Evaluation {
    pub documents: usize,
    pub passages: u64,
    pub index_seconds: f64,
    pub run: RunReport,
    pub scores: Vec<ModeScores>,
    pub calibration: Option<Calibration>,
}

/// Indexes the set's corpus (only what changed since the last run into the same index), then
/// scores each mode on the split's judged queries with `base`'s search settings. `observer`
/// hears the indexing run and a note before each mode.
pub fn evaluate(
    req: &EvalRequest,
    embedder: &Embedder,
    opts: &IndexOptions,
    base: &SearchOptions,
    observer: &mut dyn Observer,
) -> Result<Evaluation, EvalError> {
    let mut beir = Beir::load(req.dir, req.split)?;
    let documents = beir.corpus.len();
    let mut index = Index::open_writer(req.index_dir, embedder.info(), &opts.chunking(), false)?;
    let t0 = Instant::now();
    let run = index_corpus(&mut index, embedder, req.dir, &mut beir, opts, observer)?;
    let index_seconds = t0.elapsed().as_secs_f64();
    drop(index);
    let index = Index::open_reader(req.index_dir)?;
    let mut scores = Vec::new();
    for mode in req.modes {
        observer.note(&format!("scoring {}", mode.name()));
        scores.push(score_mode(&index, embedder, &beir, base, *mode)?);
    }
    let calibration = if req.calibrate {
        Some(calibrate_relevance(&index, embedder, &beir)?)
    } else {
        None
    };
    Ok(Evaluation {
        documents,
        passages: index.manifest().chunk_count(),
        index_seconds,
        run,
        scores,
        calibration,
    })
}

/// nDCG@k with linear gains (trec_eval's `ndcg_cut`): DCG of the ranking over the DCG of the
/// ideal ranking of the judged documents.
pub fn ndcg_at(ranked: &[String], rels: &HashMap<String, i32>, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| rels.get(d).copied().unwrap_or(0).max(0) as f64 / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<i32> = rels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &r)| r as f64 / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Fraction of the relevant documents found in the top `k`.
pub fn recall_at(ranked: &[String], rels: &HashMap<String, i32>, k: usize) -> f64 {
    let relevant: HashSet<&String> = rels
        .iter()
        .filter(|(_, r)| **r > 0)
        .map(|(d, _)| d)
        .collect();
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|d| relevant.contains(d))
        .count();
    found as f64 / relevant.len() as f64
}

/// Reciprocal rank of the first relevant document within the top `k` (0 if none).
pub fn mrr_at(ranked: &[String], rels: &HashMap<String, i32>, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| rels.get(d).copied().unwrap_or(0) > 0)
        .map(|i| 1.0 / (i as f64 + 1.0))
        .unwrap_or(0.0)
}

/// Documents in order of their best passage: passage ids map to document keys by `doc_of`.
pub fn rank_documents(hits: &[(u64, f32)], doc_of: &dyn Fn(u64) -> Option<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for &(id, _) in hits {
        if let Some(d) = doc_of(id)
            && seen.insert(d.clone())
        {
            out.push(d);
        }
    }
    out
}

/// Scores of one retrieval mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeScores {
    pub mode: Retrievers,
    pub ndcg10: f64,
    pub recall100: f64,
    pub mrr10: f64,
    pub queries: usize,
    /// Query latencies in milliseconds (query embedding included), p50 and p95.
    pub p50_ms: f64,
    pub p95_ms: f64,
}

pub use crate::fsutil::percentile;

/// Runs the judged queries of `beir` against `index` in `mode`.
pub fn score_mode(
    index: &Index,
    embedder: &Embedder,
    beir: &Beir,
    base: &SearchOptions,
    mode: Retrievers,
) -> Result<ModeScores, EvalError> {
    let id_paths = index.id_paths();
    let doc_of = |id: u64| {
        id_paths
            .get(&id)
            .and_then(|p| p.rsplit('/').next())
            .map(str::to_string)
    };
    // Recall@100 needs at least 100 documents; documents have several passages.
    let opts = SearchOptions {
        mode,
        k: 300,
        depth: base.depth.max(300),
        ..base.clone()
    };
    let mut qids: Vec<&String> = beir.qrels.keys().collect();
    qids.sort();
    let (mut ndcg, mut recall, mut mrr) = (0.0, 0.0, 0.0);
    let mut times = Vec::new();
    let mut n = 0;
    for qid in qids {
        let Some(text) = beir.queries.get(qid) else {
            continue;
        };
        let rels = &beir.qrels[qid];
        let t0 = Instant::now();
        let hits = index.search_ids(Some(embedder), text, &opts)?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        let ranked = rank_documents(&hits, &doc_of);
        ndcg += ndcg_at(&ranked, rels, 10);
        recall += recall_at(&ranked, rels, 100);
        mrr += mrr_at(&ranked, rels, 10);
        n += 1;
    }
    let d = n.max(1) as f64;
    Ok(ModeScores {
        mode,
        ndcg10: ndcg / d,
        recall100: recall / d,
        mrr10: mrr / d,
        queries: n,
        p50_ms: percentile(&times, 50.0),
        p95_ms: percentile(&times, 95.0),
    })
}

/// How well a similarity threshold tells questions the index can answer from ones it cannot.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub queries: usize,
    /// The threshold with the best balanced accuracy.
    pub threshold: f32,
    pub balanced_accuracy: f64,
    /// Share of answerable queries kept (best passage at or above the threshold).
    pub answerable_kept: f64,
    /// Share of unanswerable queries refused.
    pub unanswerable_refused: f64,
    /// The highest threshold that still keeps 95% of answerable queries: the rule behind the
    /// default `answer.min_relevance` (the gate only turns away what is clearly off-topic;
    /// the support check after generation does the rest).
    pub keep95: OperatingPoint,
}

/// A threshold and what it does on the calibration queries.
#[derive(Debug, Clone, Serialize)]
pub struct OperatingPoint {
    pub threshold: f32,
    pub answerable_kept: f64,
    pub unanswerable_refused: f64,
}

/// Picks thresholds from the best similarities of answerable (`pos`) and unanswerable (`neg`)
/// queries: the balanced-accuracy optimum, and the highest that keeps `keep` of the answerable.
pub fn operating_points(pos: &[f32], neg: &[f32], keep: f64) -> (OperatingPoint, OperatingPoint) {
    let n_pos = pos.len().max(1) as f64;
    let n_neg = neg.len().max(1) as f64;
    let at = |t: f32| OperatingPoint {
        threshold: t,
        answerable_kept: pos.iter().filter(|&&s| s >= t).count() as f64 / n_pos,
        unanswerable_refused: neg.iter().filter(|&&s| s < t).count() as f64 / n_neg,
    };
    let mut candidates: Vec<f32> = pos.iter().chain(neg).copied().collect();
    candidates.sort_by(f32::total_cmp);
    candidates.dedup();
    let mut best = at(0.0);
    let mut kept = at(0.0);
    for t in candidates {
        let p = at(t);
        if p.answerable_kept + p.unanswerable_refused
            > best.answerable_kept + best.unanswerable_refused
        {
            best = p.clone();
        }
        if p.answerable_kept >= keep {
            kept = p;
        }
    }
    (best, kept)
}

/// Calibrates `ask`'s relevance gate on judged queries: each query is answerable with its
/// relevant documents in the index (its best passage similarity over all passages), and
/// unanswerable without them (its best similarity over the other documents' passages).
pub fn calibrate_relevance(
    index: &Index,
    embedder: &Embedder,
    beir: &Beir,
) -> Result<Calibration, EvalError> {
    let id_paths = index.id_paths();
    let doc_of = |id: u64| id_paths.get(&id).and_then(|p| p.rsplit('/').next());
    let mut qids: Vec<&String> = beir.qrels.keys().collect();
    qids.sort();
    let (mut pos, mut neg) = (Vec::new(), Vec::new());
    for qid in qids {
        let Some(text) = beir.queries.get(qid) else {
            continue;
        };
        let rels = &beir.qrels[qid];
        let q = embedder.embed_query(text).map_err(SearchError::from)?;
        let hits = index
            .vectors()
            .search(&q, 50, None, true)
            .map_err(|e| SearchError::Index(e.into()))?;
        let best_all = hits.first().map(|h| h.1).unwrap_or(0.0);
        let best_other = hits
            .iter()
            .find(|h| doc_of(h.0).is_none_or(|d| !rels.contains_key(d)))
            .map(|h| h.1)
            .unwrap_or(0.0);
        pos.push(best_all);
        neg.push(best_other);
    }
    let (best, keep95) = operating_points(&pos, &neg, 0.95);
    Ok(Calibration {
        queries: pos.len(),
        threshold: best.threshold,
        balanced_accuracy: (best.answerable_kept + best.unanswerable_refused) / 2.0,
        answerable_kept: best.answerable_kept,
        unanswerable_refused: best.unanswerable_refused,
        keep95,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rels(pairs: &[(&str, i32)]) -> HashMap<String, i32> {
        pairs.iter().map(|(d, r)| (d.to_string(), *r)).collect()
    }

    fn ranking(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn metrics_worked_by_hand() {
        // Relevant: a (grade 2), b (grade 1). Ranking: x, a, y, b.
        let r = rels(&[("a", 2), ("b", 1), ("z", 0)]);
        let ranked = ranking(&["x", "a", "y", "b"]);
        // DCG = 2/log2(3) + 1/log2(5) = 1.261860 + 0.430677 = 1.692537
        // IDCG = 2/log2(2) + 1/log2(3) = 2 + 0.630930 = 2.630930
        let expected = (2.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (2.0 + 1.0 / 3f64.log2());
        assert!((ndcg_at(&ranked, &r, 10) - expected).abs() < 1e-12);
        assert!((ndcg_at(&ranked, &r, 10) - 0.643322).abs() < 1e-6);
        // Cut at 2: DCG = 2/log2(3) = 1.261860; IDCG@2 = 2.630930.
        assert!((ndcg_at(&ranked, &r, 2) - 0.479625).abs() < 1e-6);
        assert_eq!(recall_at(&ranked, &r, 100), 1.0);
        assert_eq!(recall_at(&ranked, &r, 2), 0.5);
        assert_eq!(mrr_at(&ranked, &r, 10), 0.5);
        assert_eq!(mrr_at(&ranked, &r, 1), 0.0);
        assert_eq!(ndcg_at(&ranking(&["a", "b"]), &r, 10), 1.0);
        assert_eq!(ndcg_at(&ranked, &rels(&[]), 10), 0.0);
    }

    #[test]
    fn operating_points_by_hand() {
        // Answerable best similarities, and unanswerable ones.
        let pos = [0.9, 0.8, 0.7, 0.6, 0.3];
        let neg = [0.65, 0.5, 0.4, 0.2, 0.1];
        let (best, keep) = operating_points(&pos, &neg, 0.8);
        // At 0.6: kept 4/5, refused 4/5 (0.65 passes) = 1.6; at 0.7: 3/5 + 5/5 = 1.6, not
        // better; nothing beats 1.6, and 0.3 (5/5 + 2/5 = 1.4) is worse. The first best wins.
        assert_eq!(best.threshold, 0.6);
        assert!((best.answerable_kept - 0.8).abs() < 1e-12);
        assert!((best.unanswerable_refused - 0.8).abs() < 1e-12);
        // Keeping 80% of the answerable allows at most 0.6.
        assert_eq!(keep.threshold, 0.6);
        let (_, all) = operating_points(&pos, &neg, 1.0);
        assert_eq!(all.threshold, 0.3);
        assert!((all.unanswerable_refused - 0.4).abs() < 1e-12);
    }

    #[test]
    fn best_passage_ranks_the_document() {
        let hits = [(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)];
        let doc = |id: u64| Some(["d1", "d2", "d1", "d3"][id as usize - 1].to_string());
        assert_eq!(rank_documents(&hits, &doc), ranking(&["d1", "d2", "d3"]));
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 95.0), 95.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
    }

    #[test]
    fn qrels_skip_the_header() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("test.tsv");
        std::fs::write(
            &p,
            "query-id\tcorpus-id\tscore\n1\t10\t1\n1\t11\t2\n2\t12\t1\n",
        )
        .unwrap();
        let q = read_qrels(&p).unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q["1"]["11"], 2);
    }
}
