//! Word, OpenDocument and EPUB files: indexed with their headings, searchable, previewed; a
//! damaged one is reported with its reason and never stops the run. Scanned PDFs: recognised
//! by Tesseract where it is installed, once.

use std::fs;
use std::path::Path;

use folio::index::search::{Passage, Retrievers, SearchOptions};

use crate::common::{
    self, docx, embedder, epub, folio, odt, odt_content, pdf_doc, save, scanned, w_p,
};

fn search(index_dir: &Path, q: &str) -> Vec<Passage> {
    let idx = folio::index::Index::open_reader(index_dir).unwrap();
    let mut opts =
        SearchOptions::from_settings(&crate::index_search_settings(), Retrievers::Hybrid);
    opts.k = 3;
    idx.search(Some(embedder()), q, &opts).unwrap()
}

fn name(p: &Passage) -> &str {
    p.path.rsplit('/').next().unwrap_or_default()
}

#[test]
fn word_opendocument_and_epub_files_are_indexed_with_their_headings() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    let body = [
        w_p(Some("Heading1"), "Globex Supply Agreement"),
        w_p(Some("Heading2"), "Termination"),
        "<w:p><w:r><w:t xml:space=\"preserve\">Either party may terminate the supply with </w:t></w:r>\
<w:del w:id=\"7\" w:author=\"Ann\"><w:r><w:delText>thirty</w:delText></w:r></w:del>\
<w:ins w:id=\"8\" w:author=\"Ann\"><w:r><w:t>sixty</w:t></w:r></w:ins>\
<w:r><w:t xml:space=\"preserve\"> days written notice.</w:t></w:r>\
<w:r><w:footnoteReference w:id=\"1\"/></w:r></w:p>"
            .to_string(),
        w_p(Some("Heading2"), "Fees"),
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Monthly platform fee</w:t></w:r></w:p></w:tc>\
<w:tc><w:p><w:r><w:t>USD 4,200</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
            .to_string(),
    ]
    .concat();
    fs::write(
        root.join("globex supply.docx"),
        docx(
            &body,
            &[(
                1,
                "Notice is given by registered letter to the head office.",
            )],
        ),
    )
    .unwrap();
    fs::write(
        root.join("handbook.odt"),
        odt("<text:h text:outline-level=\"1\">Staff handbook</text:h>\
<text:h text:outline-level=\"2\">Remote work</text:h>\
<text:p>Employees may work from home on Tuesdays and Thursdays with their manager's consent.</text:p>"),
    )
    .unwrap();
    fs::write(
        root.join("field guide.epub"),
        epub(&[
            ("ch1.xhtml", "<h1>Ferns</h1><p>Bracken spreads by underground rhizomes across heaths.</p>"),
            ("ch 2.xhtml", "<h1>Mosses</h1><h2>Sphagnum</h2><p>Sphagnum moss holds twenty times its dry weight in water.</p>"),
        ]),
    )
    .unwrap();
    // Damaged files: a truncated zip, malformed XML, a Word file that is plain text, an EPUB
    // whose spine names nothing.
    let whole = docx(&w_p(None, "never read"), &[]);
    fs::write(root.join("truncated.docx"), &whole[..whole.len() / 2]).unwrap();
    fs::write(
        root.join("malformed.odt"),
        odt_content("<office:document-content><office:body><text:p>unclosed"),
    )
    .unwrap();
    fs::write(root.join("renamed.docx"), "just text, not a Word file").unwrap();
    fs::write(root.join("empty spine.epub"), epub(&[])).unwrap();

    let index_dir = t.path().join("index");
    let report = common::index(&index_dir, &root);
    assert_eq!(report.indexed, 3, "{report:?}");
    let mut failed: Vec<_> = report
        .failed
        .iter()
        .map(|(p, r)| (name_of(p), r.as_str()))
        .collect();
    failed.sort();
    assert_eq!(failed.len(), 4, "{failed:?}");
    for (file, reason) in &failed {
        assert!(
            reason.starts_with("unreadable document: "),
            "{file}: {reason}"
        );
    }
    assert!(failed[1].1.contains("malformed XML"), "{failed:?}");
    assert!(failed[0].1.contains("spine"), "{failed:?}");

    let hits = search(&index_dir, "how much notice to terminate the Globex supply");
    let top = &hits[0];
    assert_eq!(name(top), "globex supply.docx", "{hits:?}");
    assert_eq!(
        top.heading,
        ["Globex Supply Agreement", "Termination"],
        "{top:?}"
    );
    assert!(top.text.contains("sixty days written notice"), "{top:?}");
    assert!(
        !top.text.contains("thirty"),
        "tracked deletions are left out: {top:?}"
    );
    let fee = search(&index_dir, "monthly platform fee");
    assert!(
        fee[0].text.contains("Monthly platform fee | USD 4,200"),
        "{fee:?}"
    );
    let note = search(&index_dir, "registered letter head office");
    assert_eq!(
        name(&note[0]),
        "globex supply.docx",
        "footnotes are indexed: {note:?}"
    );

    let odt_hit = search(&index_dir, "working from home");
    assert_eq!(name(&odt_hit[0]), "handbook.odt", "{odt_hit:?}");
    assert_eq!(odt_hit[0].heading, ["Staff handbook", "Remote work"]);

    let moss = search(&index_dir, "which moss holds water");
    assert_eq!(name(&moss[0]), "field guide.epub", "{moss:?}");
    assert_eq!(moss[0].heading, ["Mosses", "Sphagnum"], "{moss:?}");

    // The CLI shows the same passage and its heading; status lists the damaged files.
    let tmp = fs::canonicalize(t.path()).unwrap();
    let idx_s = index_dir.to_str().unwrap();
    let out = folio(
        &tmp,
        &["search", "Sphagnum moss", "--json", "--index", idx_s],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &json["results"][0];
    assert!(
        first["path"]
            .as_str()
            .unwrap()
            .ends_with("field guide.epub"),
        "{json}"
    );
    assert_eq!(first["heading"], serde_json::json!(["Mosses", "Sphagnum"]));
    let out = folio(&tmp, &["status", "--json", "--index", idx_s], None);
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = st["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 4, "{st}");
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

#[test]
fn scanned_pdfs_are_recognised_once() {
    if let Err(why) = folio::ingest::ocr::tools() {
        // `.ci/run` installs them; elsewhere the rest of the suite still runs.
        eprintln!("skipping: {why}; {}", folio::ingest::ocr::INSTALL_HINT);
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let root = tmp.join("docs");
    fs::create_dir(&root).unwrap();
    let contract = pdf_doc(&[
        &[
            "LEASE AGREEMENT",
            "The tenant pays a deposit of three months rent.",
        ],
        &["Signatures", "Signed in Rotterdam on the first of June."],
    ]);
    save(scanned(contract, &tmp), &root.join("signed lease.pdf"));
    let idx = tmp.join("idx");
    let idx_s = idx.to_str().unwrap();

    // Recognition off: the scan is skipped, and says why.
    let off = tmp.join("off.toml");
    fs::write(&off, "[ingest]\nocr = \"off\"\n").unwrap();
    let out = folio(
        &tmp,
        &[
            "index",
            root.to_str().unwrap(),
            "--index",
            idx_s,
            "--json",
            "--config",
            off.to_str().unwrap(),
        ],
        None,
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["indexed"], 0, "{r}");
    assert!(r.to_string().contains("no text layer (needs OCR)"), "{r}");

    // On (the default): both pages are recognised, searchable, and cached by content hash.
    // Recognition available again: the waiting scan is read without --retry-failed.
    let out = folio(&tmp, &["index", "--index", idx_s, "--json"], None);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["indexed"], 1, "{r}");
    let out = folio(
        &tmp,
        &[
            "search",
            "deposit of three months",
            "--index",
            idx_s,
            "--json",
            "-k",
            "1",
        ],
        None,
    );
    let hit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = &hit["results"][0];
    assert!(
        top["path"].as_str().unwrap().ends_with("signed lease.pdf"),
        "{hit}"
    );
    assert_eq!(top["page"], 1, "{hit}");
    assert!(
        top["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("deposit"),
        "{hit}"
    );
    let out = folio(
        &tmp,
        &["search", "Rotterdam", "--index", idx_s, "--json", "-k", "1"],
        None,
    );
    let hit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hit["results"][0]["page"], 2, "{hit}");
    let st = folio(
        &tmp,
        &["status", "--json", "--files", "--index", idx_s],
        None,
    );
    let st: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["pdf_extractors"]["tesseract"], 1, "{st}");
    assert_eq!(
        st["file_list"][0]["recognised"],
        serde_json::json!([1, 2]),
        "the pages recognised are recorded: {st}"
    );
    let text = folio(&tmp, &["status", "--files", "--index", idx_s], None);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("tesseract (pages 1-2)"), "{text}");
    assert!(
        st["ocr"]["tools"].as_str().unwrap().contains("tesseract"),
        "{st}"
    );
    let cached: Vec<_> = fs::read_dir(idx.join("ocr"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "images")
        .collect();
    assert_eq!(cached.len(), 1, "one scanned file");
    let by_image: Vec<_> = fs::read_dir(idx.join("ocr/images"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(by_image.len(), 2, "two page images");
    assert_eq!(
        fs::read_dir(cached[0].path()).unwrap().count(),
        2,
        "two pages"
    );

    // The same bytes under another name are read from the cache: no recognition runs (a
    // recognised page is replaced by a marker to prove it).
    let page1 = cached[0].path().join("1.txt");
    fs::write(&page1, "CACHED PAGE marker").unwrap();
    fs::copy(root.join("signed lease.pdf"), root.join("copy.pdf")).unwrap();
    assert!(
        folio(&tmp, &["index", "--index", idx_s], None)
            .status
            .success()
    );
    // Where a marker written into the cache shows up: the file read from the cache.
    let top_for = |marker: &str| -> String {
        let out = folio(
            &tmp,
            &[
                "search", marker, "--index", idx_s, "--json", "-k", "1", "--mode", "bm25",
            ],
            None,
        );
        let hit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        hit["results"][0]["path"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let top = top_for("CACHED PAGE marker");
    assert!(top.ends_with("copy.pdf"), "{top}");

    // The same scanned pages inside a different file (other bytes: a re-saved PDF) are read
    // from the cache of page images: again no recognition runs.
    for p in &by_image {
        fs::write(p, "IMAGE CACHE marker").unwrap();
    }
    let mut resaved = fs::read(root.join("signed lease.pdf")).unwrap();
    resaved.extend_from_slice(b"\n% saved again\n");
    fs::write(root.join("resaved.pdf"), resaved).unwrap();
    assert!(
        folio(&tmp, &["index", "--index", idx_s], None)
            .status
            .success()
    );
    let top = top_for("IMAGE CACHE marker");
    assert!(top.ends_with("resaved.pdf"), "{top}");
}
