//! Files made to hurt, and the paths and settings a user gives, through the real binary: one
//! hostile file never stops, hangs or exhausts a run, never forges what folio prints, and the
//! index's records describe the index whatever ran before.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{folio, folio_command};

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "folio failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn index_json(home: &Path, docs: &Path, idx: &Path) -> serde_json::Value {
    let out = folio(
        home,
        &[
            "index",
            docs.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    json(&out)
}

fn failed_reason<'a>(report: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    report["failed"].as_array()?.iter().find_map(|f| {
        let path = f[0].as_str().or_else(|| f["path"].as_str())?;
        path.ends_with(name)
            .then(|| f[1].as_str().or_else(|| f["reason"].as_str()))
            .flatten()
    })
}

/// A million nested elements overflowed the stack of every run (exit 134, nothing recorded,
/// so the next run died too); 400,000 nested `div`s held the writer for ten minutes. Now each
/// is reported failed with its reason, fast, once, and the good file beside them is indexed.
#[test]
fn deeply_nested_markup_is_reported_and_never_stops_a_run() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("spans.html"),
        format!(
            "<html><body>{}x{}</body></html>",
            "<span>".repeat(1_000_000),
            "</span>".repeat(10)
        ),
    )
    .unwrap();
    fs::write(
        docs.join("divs.html"),
        format!("<html><body>{}x</body></html>", "<div>".repeat(400_000)),
    )
    .unwrap();
    fs::write(
        docs.join("deep.odt"),
        crate::common::odt_content(&format!(
            "<?xml version=\"1.0\"?><office:document-content \
             xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
             xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\">\
             <office:body><office:text>{}<text:p>deep</text:p>{}</office:text></office:body>\
             </office:document-content>",
            "<text:section>".repeat(200_000),
            "</text:section>".repeat(200_000)
        )),
    )
    .unwrap();
    // Deep but sane: nested lists and block quotes in Markdown are read.
    let mut md = String::from("# Nesting\n\nThe heron nests in reeds.\n\n");
    for i in 0..300 {
        md.push_str(&format!("{}- level {i}\n", "  ".repeat(i)));
    }
    md.push_str(&format!("\n{} quoted osprey\n", ">".repeat(5000)));
    fs::write(docs.join("lists.md"), md).unwrap();
    fs::write(docs.join("good.md"), "# Good\n\nThe kestrel hovers.\n").unwrap();
    let idx = home.join("idx");

    let started = Instant::now();
    let report = index_json(home, &docs, &idx);
    let took = started.elapsed();
    assert_eq!(report["indexed"], 2, "{report}");
    for name in ["spans.html", "divs.html", "deep.odt"] {
        let why = failed_reason(&report, name).unwrap_or_else(|| panic!("{name}: {report}"));
        assert!(
            why.contains("nested more than 1000 levels"),
            "{name}: {why}"
        );
    }
    assert!(took < Duration::from_secs(60), "took {took:?}");
    // Recorded: the next run reads none of them again, and does not die on them.
    let again = index_json(home, &docs, &idx);
    assert_eq!(again["indexed"], 0, "{again}");
    assert_eq!(again["unchanged"], 2, "{again}");
}

/// A 1 MB first-line heading above 20,000 short lines grew past 1.4 GB (every passage kept the
/// megabyte); headings are cut at 200 characters, and search shows the cut one.
#[test]
fn a_megabyte_heading_is_cut_not_copied_into_every_passage() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir(&docs).unwrap();
    let mut md = format!("# {}\n", "a".repeat(1_000_000));
    for i in 0..20_000 {
        md.push_str(&format!("line {i} of the ledger\n"));
    }
    md.push_str("the final entry names the albatross\n");
    fs::write(docs.join("long.md"), md).unwrap();
    let idx = home.join("idx");
    let report = index_json(home, &docs, &idx);
    assert_eq!(report["indexed"], 1, "{report}");
    let out = folio(
        home,
        &[
            "search",
            "albatross",
            "--index",
            idx.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let hits = json(&out);
    let heading = hits["results"][0]["heading"][0]
        .as_str()
        .unwrap_or_default();
    assert!(heading.starts_with("aaaa"), "{hits}");
    assert_eq!(heading.chars().count(), 201, "cut, with an ellipsis");
    assert!(out.stdout.len() < 20_000, "{} bytes", out.stdout.len());
}

/// A file name holding a newline, a forged result line and a right-to-left override printed as
/// two results, the second fake, and reversed the terminal's text. Names show every control;
/// JSON escapes the ones terminals act on.
#[test]
fn file_names_and_text_cannot_forge_output() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir(&docs).unwrap();
    let forged = "x\n 2. 0.9999  etc-shadow \u{202e}gnp.md";
    fs::write(
        docs.join(forged),
        "# Shadow\n\nThe pangolin \u{85}rolls\u{2066} up \x1b[2J when threatened.\n",
    )
    .unwrap();
    let idx = home.join("idx");
    index_json(home, &docs, &idx);
    let out = folio(
        home,
        &["search", "pangolin", "--index", idx.to_str().unwrap()],
        None,
    );
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let results = text
        .lines()
        .filter(|l| l.trim_start().starts_with("2."))
        .count();
    assert_eq!(results, 0, "no forged second result:\n{text}");
    assert!(text.contains("x\\n 2. 0.9999"), "{text}");
    assert!(text.contains("\\u{202e}gnp.md"), "{text}");
    for bad in ['\u{202e}', '\u{2066}', '\u{85}', '\x1b'] {
        assert!(!text.contains(bad), "{bad:?} reached the terminal:\n{text}");
    }
    let out = folio(
        home,
        &[
            "search",
            "pangolin",
            "--index",
            idx.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    for bad in ['\u{202e}', '\u{2066}', '\u{85}', '\x1b', '\n'] {
        assert!(
            !raw.trim_end().contains(bad),
            "{bad:?} raw in the JSON: {raw}"
        );
    }
    let v = json(&out);
    assert!(
        v["results"][0]["path"]
            .as_str()
            .unwrap_or_default()
            .ends_with(forged),
        "the JSON still names the file exactly: {v}"
    );
}

/// A run over a sub-folder after a chunking change rewrote the index's chunking record, so the
/// next full run re-chunked nothing (16 passages where a clean index has 100).
#[test]
fn a_partial_run_leaves_the_chunking_record_to_the_full_run() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir_all(docs.join("sub")).unwrap();
    let long = |topic: &str| -> String {
        let mut s = format!("# {topic}\n\n");
        for i in 0..60 {
            s.push_str(&format!(
                "Sentence {i} about the {topic} and its habits, written long enough to count. "
            ));
        }
        s
    };
    for name in ["a", "b", "c"] {
        fs::write(docs.join(format!("{name}.md")), long(name)).unwrap();
    }
    fs::write(docs.join("sub/d.md"), long("dormouse")).unwrap();
    let idx = home.join("idx");
    let passages = |home: &Path, idx: &Path| -> u64 {
        let out = folio(
            home,
            &["status", "--index", idx.to_str().unwrap(), "--json"],
            None,
        );
        json(&out)["passages"].as_u64().unwrap_or(0)
    };
    index_json(home, &docs, &idx);
    let before = passages(home, &idx);
    fs::write(
        home.join("config.toml"),
        "[chunk]\ntokens = 60\noverlap = 8\n",
    )
    .unwrap();
    index_json(home, &docs.join("sub"), &idx);
    index_json(home, &docs, &idx);
    let after = passages(home, &idx);

    let clean = tempfile::tempdir().unwrap();
    fs::write(
        clean.path().join("config.toml"),
        "[chunk]\ntokens = 60\noverlap = 8\n",
    )
    .unwrap();
    let clean_idx = clean.path().join("idx");
    index_json(clean.path(), &docs, &clean_idx);
    let want = passages(clean.path(), &clean_idx);
    assert!(
        want > before,
        "smaller passages, more of them: {want} vs {before}"
    );
    assert_eq!(after, want, "every file re-chunked by the full run");
}

/// Links were judged against the run's folders: re-reading `docs/sub` removed its link into
/// `docs/other`, which the index holds under `docs`.
#[test]
fn reindexing_a_subfolder_keeps_its_links_into_the_indexed_parent() {
    let t = tempfile::tempdir().unwrap();
    let home = fs::canonicalize(t.path()).unwrap();
    let docs = home.join("docs");
    fs::create_dir_all(docs.join("sub")).unwrap();
    fs::create_dir_all(docs.join("other")).unwrap();
    fs::write(docs.join("other/z.txt"), "The zebra grazes at dawn.\n").unwrap();
    std::os::unix::fs::symlink(docs.join("other/z.txt"), docs.join("sub/link.txt")).unwrap();
    let idx = home.join("idx");
    let first = index_json(&home, &docs, &idx);
    assert_eq!(first["indexed"], 2, "{first}");
    let again = index_json(&home, &docs.join("sub"), &idx);
    assert_eq!(again["removed"], 0, "{again}");
    let out = folio(
        &home,
        &["status", "--index", idx.to_str().unwrap(), "--json"],
        None,
    );
    assert_eq!(json(&out)["files"], 2);
}

/// `--index idx` where `idx` is a link: the folder it names is made private like any index.
#[test]
fn a_symlinked_index_folder_is_made_private() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("a.md"), "# A\n\nThe aardvark digs.\n").unwrap();
    let real = home.join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
    let link = home.join("idx");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    index_json(home, &docs, &link);
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&real), 0o700);
    for e in fs::read_dir(&real).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        if m.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        } else if m.is_dir() {
            assert_eq!(mode(&p), 0o700, "{}", p.display());
        }
    }
}

/// `--index $'idx\xe9'` created `idx\u{fffd}`, and `--embed-model` took the same lossy
/// turn. A model path keeps its bytes; an index folder that LanceDB cannot name (it opens
/// folders by text) is refused before anything is created, with the name shown escaped.
#[test]
fn paths_from_the_command_line_keep_their_bytes() {
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("a.md"), "# A\n\nThe axolotl swims.\n").unwrap();
    let names = || -> Vec<Vec<u8>> {
        fs::read_dir(home)
            .unwrap()
            .map(|e| e.unwrap().file_name().as_bytes().to_vec())
            .collect()
    };

    let bad_idx = home.join(std::ffi::OsStr::from_bytes(b"idx\xe9"));
    let out = folio_command(home, &["index"])
        .arg(&docs)
        .arg("--index")
        .arg(&bad_idx)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("idx\\xE9") && err.contains("not UTF-8"),
        "{err}"
    );
    assert!(
        !names().iter().any(|n| n.starts_with(b"idx")),
        "nothing created, no lossy twin"
    );

    // The embedding model through a folder whose name is not UTF-8.
    let model = home.join(std::ffi::OsStr::from_bytes(b"mini\xe9"));
    std::os::unix::fs::symlink(crate::common::embed_model_dir(), &model).unwrap();
    let idx = home.join("idx");
    let out = folio_command(home, &["index"])
        .arg(&docs)
        .arg("--index")
        .arg(&idx)
        .arg("--embed-model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !names().iter().any(|n| n.ends_with("\u{fffd}".as_bytes())),
        "no lossy twin"
    );
    let out = folio_command(home, &["search", "axolotl", "--index"])
        .arg(&idx)
        .arg("--embed-model")
        .arg(&model)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("a.md"));
}
