//! Index a folder, search it every way, change it, and search again.

use std::fs;
use std::path::Path;

use folio::index::Index;
use folio::index::search::{Passage, Retrievers, SearchOptions};

use crate::common::{self, embedder, folio, index, pdf_doc, save};

const NOTES: &str = "# Project Falcon\n\n## Budget\n\nThe Falcon budget for 2025 is 1.2 million euros, approved by the steering committee in March.\n\n## Risks\n\nThe main risk is a supplier delay on the titanium housings.\n";
const RECIPE: &str = "Sourdough bread\nMix 500 g flour with 350 g water and 100 g starter. Let the dough ferment overnight, then bake at 250 degrees for 40 minutes.\n";

fn fixture(root: &Path) {
    fs::write(root.join("notes.md"), NOTES).unwrap();
    fs::write(root.join("recipe.txt"), RECIPE).unwrap();
    save(
        pdf_doc(&[
            &[
                "MASTER SERVICES AGREEMENT",
                "between Acme Corp and Globex Ltd.",
            ],
            &[
                "Termination.",
                "Either party may terminate this agreement",
                "with ninety days written notice.",
            ],
            &[
                "Governing law.",
                "This agreement is governed by the laws of Delaware.",
            ],
        ]),
        &root.join("contract.pdf"),
    );
}

fn search(idx: &Index, q: &str, mode: Retrievers) -> Vec<Passage> {
    let mut opts = SearchOptions::from_settings(&crate::index_search_settings(), mode);
    opts.k = 5;
    idx.search(Some(embedder()), q, &opts).unwrap()
}

fn top_file(p: &[Passage]) -> String {
    p.first()
        .map(|p| {
            Path::new(&p.path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}

#[test]
fn index_then_search_by_term_and_by_meaning() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fixture(&root);
    let idx_dir = t.path().join("idx");
    let report = index(&idx_dir, &root);
    assert_eq!(report.indexed, 3, "{report:?}");
    assert!(
        report.failed.is_empty() && report.skipped.is_empty(),
        "{report:?}"
    );
    let idx = Index::open_reader(&idx_dir).unwrap();

    for mode in [Retrievers::Bm25, Retrievers::Hybrid] {
        assert_eq!(top_file(&search(&idx, "titanium", mode)), "notes.md");
        assert_eq!(top_file(&search(&idx, "sourdough", mode)), "recipe.txt");
        let law = search(&idx, "Delaware", mode);
        assert_eq!(top_file(&law), "contract.pdf");
        assert_eq!(law[0].page, Some(3), "{law:?}");
    }
    for mode in [Retrievers::Dense, Retrievers::Hybrid] {
        let money = search(&idx, "how much money was allocated to the project", mode);
        assert_eq!(top_file(&money), "notes.md");
        assert!(money[0].text.contains("budget"), "{money:?}");
        assert_eq!(money[0].heading, vec!["Project Falcon", "Budget"]);
        assert_eq!(
            top_file(&search(&idx, "how do I bake bread at home", mode)),
            "recipe.txt"
        );
        let notice = search(&idx, "how much notice is needed to end the contract", mode);
        assert_eq!(top_file(&notice), "contract.pdf");
        assert_eq!(notice[0].page, Some(2), "{notice:?}");
    }

    // Spans point into the extracted text: for Markdown, the file itself.
    let hit = &search(&idx, "titanium", Retrievers::Bm25)[0];
    let chars: Vec<char> = NOTES.chars().collect();
    let span: String = chars[hit.span[0]..hit.span[1]].iter().collect();
    assert_eq!(span, hit.text);
    assert!(Path::new(&hit.path).is_absolute());
}

#[test]
fn changes_are_followed_and_unchanged_files_not_reembedded() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fixture(&root);
    let idx_dir = t.path().join("idx");
    let first = index(&idx_dir, &root);
    assert_eq!(first.indexed, 3);
    assert!(first.chunks_embedded >= 3);

    // Nothing changed: nothing read, nothing embedded.
    let again = index(&idx_dir, &root);
    assert_eq!(
        (again.indexed, again.unchanged, again.chunks_embedded),
        (0, 3, 0),
        "{again:?}"
    );

    // Modify one, delete one, leave the PDF alone.
    fs::write(
        root.join("recipe.txt"),
        "Rye bread\nAdd caraway seeds to the rye dough and bake it slowly.\n",
    )
    .unwrap();
    fs::remove_file(root.join("notes.md")).unwrap();
    let third = index(&idx_dir, &root);
    assert_eq!(
        (third.indexed, third.removed, third.unchanged),
        (1, 1, 1),
        "{third:?}"
    );
    let idx = Index::open_reader(&idx_dir).unwrap();
    let recipe_chunks = idx
        .manifest()
        .files
        .iter()
        .find(|(p, _)| p.ends_with("recipe.txt"))
        .unwrap()
        .1
        .chunks;
    assert_eq!(
        third.chunks_embedded, recipe_chunks as usize,
        "only the changed file is embedded"
    );
    assert!(search(&idx, "titanium", Retrievers::Bm25).is_empty());
    assert!(search(&idx, "sourdough", Retrievers::Bm25).is_empty());
    assert_eq!(
        top_file(&search(&idx, "caraway", Retrievers::Bm25)),
        "recipe.txt"
    );
    let n = idx.manifest().chunk_count();
    assert_eq!(idx.bm25().num_docs(), n);
    assert_eq!(idx.vectors().count().unwrap() as u64, n);
    drop(idx);

    // A rename keeps the embeddings: same text, no embedding.
    fs::rename(root.join("recipe.txt"), root.join("bread.txt")).unwrap();
    let renamed = index(&idx_dir, &root);
    assert_eq!(
        (renamed.indexed, renamed.removed, renamed.chunks_embedded),
        (1, 1, 0),
        "{renamed:?}"
    );
    assert!(renamed.chunks_reused >= 1);
    let idx = Index::open_reader(&idx_dir).unwrap();
    assert_eq!(
        top_file(&search(&idx, "caraway", Retrievers::Hybrid)),
        "bread.txt"
    );
}

#[test]
fn second_root_adds_and_rescans_only_remove_under_their_root() {
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let (a, b) = (base.join("a"), base.join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    fs::write(a.join("one.md"), "# One\nalpha content here\n").unwrap();
    fs::write(b.join("two.md"), "# Two\nbeta content here\n").unwrap();
    let idx_dir = base.join("idx");
    index(&idx_dir, &a);
    index(&idx_dir, &b);
    let idx = Index::open_reader(&idx_dir).unwrap();
    assert_eq!(idx.manifest().files.len(), 2);
    assert_eq!(idx.manifest().roots.len(), 2);
}

#[test]
fn the_cli_speaks_json() {
    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let root = tmp.join("docs");
    fs::create_dir(&root).unwrap();
    fixture(&root);
    let idx = tmp.join("idx");
    let idx_s = idx.to_str().unwrap();
    let out = folio(
        &tmp,
        &["index", root.to_str().unwrap(), "--index", idx_s, "--json"],
        None,
    );
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["indexed"], 3);

    let out = folio(
        &tmp,
        &["search", "Delaware", "--index", idx_s, "--json", "-k", "3"],
        None,
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["query"], "Delaware");
    let p = &v["results"][0];
    assert_eq!(p["path"], root.join("contract.pdf").to_str().unwrap());
    assert_eq!(p["page"], 3);
    assert_eq!(p["heading"], serde_json::json!([]));
    assert_eq!(p["chunk"].as_str().unwrap().len(), 16);
    assert!(p["span"][0].as_u64().unwrap() < p["span"][1].as_u64().unwrap());
    assert!(p["score"].as_f64().unwrap() > 0.0);
    assert!(p["text"].as_str().unwrap().contains("Delaware"));

    // Queries from stdin: one line each, with filters.
    let out = folio(
        &tmp,
        &[
            "search", "-", "--index", idx_s, "--json", "--ext", "md", "--mode", "bm25",
        ],
        Some("titanium\nDelaware\n"),
    );
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0]["results"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("notes.md")
    );
    assert_eq!(
        lines[1]["results"],
        serde_json::json!([]),
        "--ext md excludes the PDF"
    );
    let out = folio(
        &tmp,
        &[
            "search",
            "agreement",
            "--index",
            idx_s,
            "--json",
            "--path",
            "**/contract.*",
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["path"].as_str().unwrap().ends_with("contract.pdf"))
    );

    // A query nothing matches exits with 3, so that scripts can tell it from success.
    let out = folio(
        &tmp,
        &["search", "zyxwvut", "--index", idx_s, "--mode", "bm25"],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no passages match"));

    // Human output highlights and names the page.
    let out = folio(&tmp, &["search", "Delaware", "--index", idx_s], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("contract.pdf") && text.contains("p.3") && text.contains("[Delaware]"),
        "{text}"
    );

    let out = folio(&tmp, &["status", "--index", idx_s, "--json"], None);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["files"], 3);
    assert_eq!(st["passages"], st["vector_passages"]);
    assert_eq!(st["embed_model"]["dim"], 384);

    let out = folio(&tmp, &["config", "--index", idx_s], None);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("index.dir") && l.contains("# flag")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("models.dir") && l.contains("FOLIO_MODELS")),
        "{text}"
    );
}

#[test]
fn another_model_is_refused_with_a_way_out() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a.md"), "# A\nsome text\n").unwrap();
    let idx_dir = t.path().join("idx");
    index(&idx_dir, &root);
    let mut other = embedder().info().clone();
    other.sha256 = "0".repeat(64);
    let err = Index::open_writer(&idx_dir, &other, &common::options().chunking(), false)
        .err()
        .expect("mismatch refused")
        .to_string();
    assert!(
        err.contains("--reembed") && err.contains("embedding model"),
        "{err}"
    );
    let reader = Index::open_reader(&idx_dir).unwrap();
    assert!(reader.check_model(&other).is_err());
    // Re-embedding empties the index but keeps the roots.
    let idx = Index::open_writer(&idx_dir, &other, &common::options().chunking(), true).unwrap();
    assert_eq!(idx.manifest().files.len(), 0);
    assert_eq!(idx.manifest().roots.len(), 1);
}

/// folio's int8 encoder against candle-transformers' f32 BERT on the same weights, on texts of
/// every length and kind (one word, a long passage cut at the model's limit, code, numbers,
/// other scripts, a batch mixing lengths): cosine similarity of at least 0.999 each.
#[test]
fn the_int8_encoder_matches_the_f32_reference() {
    let reference = folio::embed::Embedder::load_reference(&common::embed_model_dir(), 8).unwrap();
    let long = "The termination notice period is ninety days. ".repeat(80);
    let texts = [
        "contract",
        "What is the termination notice period in the Acme MSA?",
        "Either party may terminate this Agreement upon thirty (30) days' written notice.",
        long.as_str(),
        "fn main() { println!(\"{}\", 2 + 2); }",
        "Invoice #4471: EUR 12,500.00 due 2026-03-31; late fee 1.5% per month.",
        "Der Vertrag verlängert sich automatisch um ein Jahr.",
        "契約は自動的に更新されます。",
        "Mitochondrial DNA variants were associated with a 0.3-fold reduction in risk (p < 0.01).",
        "a",
    ];
    let ours = embedder().embed(&texts).unwrap();
    let theirs = reference.embed(&texts).unwrap();
    for ((t, a), b) in texts.iter().zip(&ours).zip(&theirs) {
        let cos: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        eprintln!("cos {cos}");
        assert!(cos >= 0.999, "{cos} for {:?}", &t[..t.len().min(40)]);
    }
    // One at a time gives what a mixed batch gives: no text leaks into another. Not bit for
    // bit: a long batch runs the wider 512-bit tiles, which round their float sums in another
    // order, and a last-bit difference can move an activation to the next int8 step (about
    // 1e-4 of cosine when it happens); leaking texts cost far more.
    for (t, a) in texts.iter().zip(&ours) {
        let one = embedder().embed(&[t]).unwrap().remove(0);
        let cos: f32 = a.iter().zip(&one).map(|(x, y)| x * y).sum();
        assert!(cos >= 0.9995, "{cos} for {:?}", &t[..t.len().min(40)]);
    }
}
