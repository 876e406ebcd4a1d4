//! Bad input costs only itself; interrupted writes repair themselves; one writer at a time.

use std::fs;

use folio::index::Index;
use folio::index::manifest::ProblemStatus;
use folio::index::search::{Retrievers, SearchOptions};

use crate::common::{embedder, encrypt, index, open, pdf_doc, pdf_without_text, save};

fn reason<'a>(list: &'a [(String, String)], name: &str) -> &'a str {
    list.iter()
        .find(|(p, _)| p.ends_with(name))
        .map(|(_, r)| r.as_str())
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
}

#[test]
fn bad_files_are_reported_and_the_rest_indexed() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("empty.txt"), "").unwrap();
    fs::write(
        root.join("binary.txt"),
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00garbage\x00\x01",
    )
    .unwrap();
    let good = pdf_doc(&[&["A perfectly fine page about lighthouses."]]);
    let mut bytes = Vec::new();
    good.clone().save_to(&mut bytes).unwrap();
    fs::write(root.join("truncated.pdf"), &bytes[..bytes.len() / 3]).unwrap();
    save(
        encrypt(pdf_doc(&[&["Secret merger terms."]]), "hunter2"),
        &root.join("locked.pdf"),
    );
    save(pdf_without_text(), &root.join("scan.pdf"));
    // "Café crème brûlée" in Latin-1: not valid UTF-8.
    fs::write(
        root.join("latin1.txt"),
        b"Dessert notes\nCaf\xe9 cr\xe8me br\xfbl\xe9e with vanilla.\n",
    )
    .unwrap();
    fs::write(
        root.join("good.md"),
        "# Good\nLighthouse keepers log the weather.\n",
    )
    .unwrap();
    let idx_dir = t.path().join("idx");

    let r = index(&idx_dir, &root);
    assert_eq!(r.indexed, 2, "{r:?}");
    assert_eq!(reason(&r.skipped, "empty.txt"), "empty file");
    assert_eq!(reason(&r.skipped, "binary.txt"), "binary content");
    assert_eq!(reason(&r.skipped, "scan.pdf"), "no text layer (needs OCR)");
    assert!(
        reason(&r.failed, "truncated.pdf").starts_with("unreadable PDF"),
        "{r:?}"
    );
    assert_eq!(
        reason(&r.failed, "locked.pdf"),
        "encrypted PDF (needs a password)"
    );

    let idx = Index::open_reader(&idx_dir).unwrap();
    let mut opts = SearchOptions::from_settings(&crate::index_search_settings(), Retrievers::Bm25);
    opts.k = 3;
    let hits = idx.search(Some(embedder()), "crème brûlée", &opts).unwrap();
    assert!(hits[0].path.ends_with("latin1.txt"));
    assert!(hits[0].text.contains("Café crème brûlée"), "{hits:?}");
    let problems = &idx.manifest().problems;
    assert_eq!(problems.len(), 5);
    assert_eq!(
        problems
            .values()
            .filter(|p| p.status == ProblemStatus::Failed)
            .count(),
        2
    );
    drop(idx);

    // Unchanged problem files are not retried, but still reported.
    let again = index(&idx_dir, &root);
    assert_eq!(
        (
            again.indexed,
            again.unchanged,
            again.skipped.len(),
            again.failed.len()
        ),
        (0, 2, 3, 2)
    );
}

#[test]
fn an_interrupted_batch_is_repaired_on_open() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("a.md"), "# A\nApples grow on trees.\n").unwrap();
    fs::write(root.join("b.md"), "# B\nBananas grow in bunches.\n").unwrap();
    let idx_dir = t.path().join("idx");
    index(&idx_dir, &root);
    let b = root.join("b.md").to_string_lossy().into_owned();

    // A crash after the journal was written: b's state is uncertain.
    fs::write(
        idx_dir.join("journal.json"),
        serde_json::json!({"paths": [b]}).to_string(),
    )
    .unwrap();
    let idx = open(&idx_dir);
    assert!(!idx.manifest().files.contains_key(&b));
    assert!(!idx_dir.join("journal.json").exists());
    let n = idx.manifest().chunk_count();
    assert_eq!(idx.bm25().num_docs(), n);
    assert_eq!(idx.vectors().count().unwrap() as u64, n);
    drop(idx);
    let r = index(&idx_dir, &root);
    assert_eq!((r.indexed, r.unchanged), (1, 1));

    // A crash that left passages in one index only: the count check repairs it.
    let mut idx = open(&idx_dir);
    let rec = idx.manifest().files[&b].clone();
    let ids = rec.chunk_ids(&b);
    idx.vectors().delete_ids(&ids).unwrap();
    drop(idx);
    idx = open(&idx_dir);
    assert!(!idx.manifest().files.contains_key(&b));
    assert_eq!(idx.bm25().num_docs(), idx.manifest().chunk_count());
    drop(idx);
    let r = index(&idx_dir, &root);
    assert_eq!(r.indexed, 1);
}

#[test]
fn one_writer_at_a_time() {
    let t = tempfile::tempdir().unwrap();
    let idx_dir = t.path().join("idx");
    let first = open(&idx_dir);
    let err = Index::open_writer(
        &idx_dir,
        embedder().info(),
        &crate::common::options().chunking(),
        false,
    )
    .err()
    .expect("second writer refused")
    .to_string();
    assert!(err.contains("another process"), "{err}");
    // Readers are welcome meanwhile.
    assert!(Index::open_reader(&idx_dir).is_ok());
    drop(first);
    assert!(
        Index::open_writer(
            &idx_dir,
            embedder().info(),
            &crate::common::options().chunking(),
            false
        )
        .is_ok()
    );
}

#[test]
fn index_folders_inside_a_root_are_not_ingested() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap();
    fs::write(root.join("note.md"), "# Note\nA note about owls.\n").unwrap();
    let r = index(&root.join(".folio-index"), &root);
    assert_eq!(r.indexed, 1);
    let r = index(&root.join("visible-index"), &root);
    assert_eq!(
        r.indexed, 1,
        "the index folder of the first run is not read: {r:?}"
    );
}
