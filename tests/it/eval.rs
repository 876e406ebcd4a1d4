//! `folio eval` on a tiny BEIR-format set, end to end through the binary.

use std::fs;

use crate::common::folio;

#[test]
fn eval_scores_a_tiny_beir_set() {
    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let set = tmp.join("tiny");
    fs::create_dir_all(set.join("qrels")).unwrap();
    let docs = [
        (
            "d1",
            "Aspirin and heart attacks",
            "Daily low-dose aspirin reduces the risk of myocardial infarction in older adults.",
        ),
        (
            "d2",
            "Vitamin D and bones",
            "Vitamin D supplementation improves bone mineral density in postmenopausal women.",
        ),
        (
            "d3",
            "Coffee and sleep",
            "Caffeine intake in the evening delays sleep onset and shortens deep sleep.",
        ),
        (
            "d4",
            "Exercise and mood",
            "Regular aerobic exercise lowers symptoms of depression.",
        ),
    ];
    let corpus: Vec<String> = docs
        .iter()
        .map(|(id, title, text)| {
            serde_json::json!({"_id": id, "title": title, "text": text}).to_string()
        })
        .collect();
    fs::write(set.join("corpus.jsonl"), corpus.join("\n")).unwrap();
    fs::write(
        set.join("queries.jsonl"),
        [
            serde_json::json!({"_id": "q1", "text": "aspirin lowers the risk of myocardial infarction"}).to_string(),
            serde_json::json!({"_id": "q2", "text": "caffeine in the evening delays sleep"}).to_string(),
            serde_json::json!({"_id": "q3", "text": "an unjudged query"}).to_string(),
        ]
        .join("\n"),
    )
    .unwrap();
    fs::write(
        set.join("qrels/test.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\n",
    )
    .unwrap();
    let idx = tmp.join("idx");
    let out = folio(
        &tmp,
        &[
            "eval",
            set.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["documents"], 4);
    let scores = v["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 3);
    for s in scores {
        assert_eq!(s["queries"], 2, "{s}");
        assert_eq!(s["ndcg10"], 1.0, "{s}");
        assert_eq!(s["recall100"], 1.0, "{s}");
        assert_eq!(s["mrr10"], 1.0, "{s}");
    }
    // A second run reuses the index: nothing embedded.
    let out = folio(
        &tmp,
        &[
            "eval",
            set.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
            "--json",
            "--modes",
            "bm25",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tokens_embedded"], 0);
    assert_eq!(v["scores"].as_array().unwrap().len(), 1);
}
