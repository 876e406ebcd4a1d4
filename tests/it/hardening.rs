//! Real folders and hostile files: one regression test per defect found in review, each of
//! which failed before its fix.

use crate::common::{folio, folio_command};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

#[allow(dead_code)]
fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A long-running reader sees vectors another process committed after it loaded its copy.
#[test]
fn a_long_running_dense_search_sees_new_files() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("garden.md"),
        "# Garden\n\nTomatoes need full sun and regular watering in summer.\n",
    )
    .unwrap();
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );

    let mut reader = folio_command(
        t.path(),
        &[
            "search", "-", "--index", idx_s, "--json", "--mode", "dense", "-k", "5",
        ],
    )
    .spawn()
    .unwrap();
    let mut stdin = reader.stdin.take().unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    let query = "orbital mechanics of satellites\n";
    let mut ask = |stdin: &mut std::process::ChildStdin| -> serde_json::Value {
        stdin.write_all(query.as_bytes()).unwrap();
        stdin.flush().unwrap();
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap()
    };
    // The first query loads the reader's copy of the vectors.
    let first = ask(&mut stdin);
    assert_eq!(first["results"].as_array().unwrap().len(), 1, "{first}");

    fs::write(
        docs.join("orbits.md"),
        "# Orbits\n\nA satellite in low Earth orbit circles the planet in about ninety minutes.\n",
    )
    .unwrap();
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    // A pause longer than LanceDB's own consistency interval: its handle moves by itself,
    // which is what hid the new version from the reader's copy.
    std::thread::sleep(Duration::from_millis(1200));
    let seen = loop {
        let v = ask(&mut stdin);
        let found = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap().ends_with("orbits.md"));
        if found || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    let _ = reader.wait();
    assert!(
        seen,
        "the reader never saw the file indexed by another process"
    );
}

/// Absurd sizes and empty input are usage errors, not an abort or an answer.
#[test]
fn absurd_k_and_empty_input_are_usage_errors() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("a.md"), "# A\n\nSome text about apples.\n").unwrap();
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );
    let cases: &[&[&str]] = &[
        &["search", "apples", "-k", "10000000000"],
        &["search", "apples", "-k", "0"],
        &["search", ""],
        &["search", "   "],
        &["ask", ""],
        &["ask", "  \n "],
        &["ask", "apples?", "-k", "100000"],
    ];
    for args in cases {
        let mut all = args.to_vec();
        all.extend(["--index", idx_s]);
        let out = folio(t.path(), &all, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
