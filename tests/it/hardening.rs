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
fn completions_and_the_manual_are_generated_from_the_flags() {
    let t = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "_folio()"),
        ("zsh", "#compdef folio"),
        ("fish", "complete -c folio"),
    ] {
        let out = folio(t.path(), &["completions", shell], None);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        // Subcommands and global flags are in every script.
        assert!(
            script.contains("search") && script.contains("index"),
            "{shell}"
        );
    }
    let out = folio(t.path(), &["man"], None);
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH folio"),
        "{page}"
    );
    assert!(
        page.contains("completions") && page.contains("Exit status"),
        "{page}"
    );
    let out = folio(t.path(), &["completions", "tcsh"], None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

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

fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// folio never clears a folder it did not create, even one shaped like an index.
#[test]
fn a_folder_without_folios_marker_is_never_cleared() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("a.md"), "# A\n\nSome text about apples.\n").unwrap();
    for shape in [&["vectors"][..], &["bm25"], &["bm25", "vectors"]] {
        let user = t.path().join(format!("user-{}", shape.join("-")));
        fs::create_dir(&user).unwrap();
        fs::write(user.join("README.md"), "my notes\n").unwrap();
        for sub in shape {
            fs::create_dir(user.join(sub)).unwrap();
            fs::write(user.join(sub).join("thesis.txt"), "years of work\n").unwrap();
        }
        let before = mode(&user);
        let out = folio(
            t.path(),
            &[
                "index",
                docs.to_str().unwrap(),
                "--index",
                user.to_str().unwrap(),
            ],
            None,
        );
        assert!(!out.status.success(), "{shape:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a folio index"), "{err}");
        for sub in shape {
            assert_eq!(
                fs::read_to_string(user.join(sub).join("thesis.txt")).unwrap(),
                "years of work\n"
            );
        }
        assert_eq!(mode(&user), before, "the folder's mode is the user's");
        let names: Vec<_> = fs::read_dir(&user)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), shape.len() + 1, "nothing added: {names:?}");
    }
}

/// The index and the log are private to their owner whatever existed before.
#[test]
fn the_index_and_the_log_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("a.md"), "# A\n\nSome text about apples.\n").unwrap();
    let idx = t.path().join("idx");
    fs::create_dir(&idx).unwrap();
    fs::set_permissions(&idx, fs::Permissions::from_mode(0o755)).unwrap();
    let log = t.path().join("folio.log");
    fs::write(&log, "").unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let check = |when: &str| {
        assert_eq!(mode(&idx), 0o700, "{when}");
        assert_eq!(mode(&log), 0o600, "{when}: the log");
        for e in walk(&idx) {
            let want = if e.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&e), want, "{when}: {}", e.display());
        }
    };
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );
    check("a new index in an existing folder");
    // Loosened by hand (or by a copy): the next writer tightens everything again.
    for e in walk(&idx) {
        let m = if e.is_dir() { 0o755 } else { 0o644 };
        fs::set_permissions(&e, fs::Permissions::from_mode(m)).unwrap();
    }
    fs::set_permissions(&idx, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&log, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(docs.join("b.md"), "# B\n\nMore text about pears.\n").unwrap();
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );
    check("after an update");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p);
    }
    out
}

/// Document text and file names cannot drive the user's terminal through the CLI.
#[test]
fn control_characters_from_documents_never_reach_the_terminal() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("page.html"),
        "<html><head><title>Escapes &#27;]0;pwned&#7;</title></head><body><h1>Invoices &#27;[2J</h1>\
         <p>Invoices are paid within thirty days &#27;[31mred&#27;[0m and &#155;2J here.</p></body></html>",
    )
    .unwrap();
    // A file name with an escape in it, and one that fails to extract.
    fs::write(
        docs.join("name\x1b[2J.md"),
        "# Invoices\n\nInvoices also go by post.\n",
    )
    .unwrap();
    fs::write(docs.join("bad\x1b]0;x\x07.pdf"), "not a pdf").unwrap();
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let out = folio(t.path(), &["index", docs_s, "--index", idx_s], None);
    assert!(out.status.success());
    let clean = |what: &str, bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{what}: {text:?}"
        );
    };
    clean("index stderr", &out.stderr);
    clean("index stdout", &out.stdout);
    for args in [
        &["search", "invoices paid", "--index", idx_s][..],
        &[
            "search",
            "invoices paid",
            "--index",
            idx_s,
            "--mode",
            "bm25",
            "-k",
            "5",
        ],
        &["status", "--index", idx_s],
        &["ask", "When are invoices paid?", "--index", idx_s],
    ] {
        let out = folio(t.path(), args, None);
        // 3: an abstained answer, not a failure.
        assert!(matches!(out.status.code(), Some(0 | 3)), "{args:?}");
        clean(&format!("{args:?} stdout"), &out.stdout);
        clean(&format!("{args:?} stderr"), &out.stderr);
    }
    // JSON stays exact: the escape is there, as JSON escapes it.
    let out = folio(
        t.path(),
        &[
            "search",
            "invoices paid",
            "--index",
            idx_s,
            "--json",
            "-k",
            "5",
        ],
        None,
    );
    let v = json(&out);
    let texts: String = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert!(texts.contains("\u{1b}[31mred"), "{v}");
}

/// Overlapping roots index each file once, and the stores agree after every run.
#[test]
fn nested_or_repeated_roots_index_each_file_once() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    let sub = d.join("sub");
    fs::create_dir_all(&sub).unwrap();
    fs::write(
        d.join("top.md"),
        "# Top\n\nThe top file talks about lighthouses.\n",
    )
    .unwrap();
    fs::write(
        sub.join("one.md"),
        "# One\n\nThe first nested file talks about ferries.\n",
    )
    .unwrap();
    fs::write(
        sub.join("two.md"),
        "# Two\n\nThe second nested file talks about bridges.\n",
    )
    .unwrap();
    let idx = t.path().join("idx");
    let idx_s = idx.to_str().unwrap();
    let (d_s, sub_s) = (d.to_str().unwrap(), sub.to_str().unwrap());
    let sub_rel = format!("{d_s}/./sub");
    for args in [
        vec![d_s, sub_s],
        vec![d_s, d_s],
        vec![sub_s, d_s],
        vec![sub_rel.as_str(), d_s],
    ] {
        let mut all = vec!["index"];
        all.extend(&args);
        all.extend(["--index", idx_s, "--json"]);
        let out = folio(t.path(), &all, None);
        assert!(out.status.success(), "{args:?}");
        let st = json(&folio(
            t.path(),
            &["status", "--index", idx_s, "--json"],
            None,
        ));
        assert_eq!(st["files"], 3, "{args:?}: {st}");
        assert_eq!(st["passages"], 3, "{args:?}: {st}");
        assert_eq!(st["bm25_passages"], 3, "{args:?}: {st}");
        assert_eq!(st["vector_passages"], 3, "{args:?}: {st}");
        assert_eq!(st["roots"], serde_json::json!([d_s]), "{args:?}: {st}");
        // Nothing was re-embedded: a healthy index never needs repair.
        let report = json(&out);
        assert!(report["chunks_embedded"].as_u64().unwrap() <= 3, "{report}");
    }
    let log = fs::read_to_string(t.path().join("folio.log")).unwrap_or_default();
    assert!(!log.contains("repair"), "{log}");
}

/// Links out of the indexed folders are not followed unless asked; a followed link is indexed
/// under its own path, and removing it removes its passages.
#[test]
fn symlinks_follow_a_documented_policy() {
    use std::os::unix::fs::symlink;
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let docs = base.join("docs");
    let outside = base.join("outside");
    fs::create_dir_all(&docs).unwrap();
    fs::create_dir_all(outside.join("folder")).unwrap();
    fs::write(
        outside.join("id_ed25519"),
        "PRIVATE KEY zebracorn material\n",
    )
    .unwrap();
    fs::write(
        outside.join("folder/plan.md"),
        "# Plan\n\nThe quokkaberry plan.\n",
    )
    .unwrap();
    fs::write(
        docs.join("real.md"),
        "# Real\n\nThe real note about lanterns.\n",
    )
    .unwrap();
    symlink(outside.join("id_ed25519"), docs.join("notes.txt")).unwrap();
    symlink(outside.join("folder"), docs.join("linked")).unwrap();
    symlink(docs.join("real.md"), docs.join("alias.md")).unwrap();
    let idx = base.join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let indexed = |home: &std::path::Path| -> Vec<String> {
        assert!(
            folio(home, &["index", docs_s, "--index", idx_s], None)
                .status
                .success()
        );
        let out = folio(
            home,
            &[
                "search",
                "zebracorn quokkaberry lanterns",
                "--index",
                idx_s,
                "--json",
                "-k",
                "20",
            ],
            None,
        );
        let mut paths: Vec<String> = json(&out)["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect();
        paths.sort();
        paths.dedup();
        paths
    };
    let p = |s: &str| docs.join(s).to_str().unwrap().to_string();
    // By default only the link whose target is inside the folder is followed, under its name.
    assert_eq!(indexed(&base), vec![p("alias.md"), p("real.md")]);

    // Asked to follow links: each under the link's own path. The format is the target's, so
    // a key behind a `.txt` name is still not read as text.
    let home = base.join("follow");
    fs::create_dir(&home).unwrap();
    fs::write(home.join("config.toml"), "[ingest]\nfollow_links = true\n").unwrap();
    assert_eq!(
        indexed(&home),
        vec![p("alias.md"), p("linked/plan.md"), p("real.md")]
    );
    // Removing a link removes its passages.
    fs::remove_file(docs.join("notes.txt")).unwrap();
    fs::remove_file(docs.join("linked")).unwrap();
    assert_eq!(indexed(&home), vec![p("alias.md"), p("real.md")]);
}

/// pip runs isolated, away from the user's current folder; a cached model file of the right
/// size but the wrong bytes is not trusted.
#[test]
fn model_fetches_are_isolated_and_verified() {
    let t = tempfile::tempdir().unwrap();
    // A `pip.py` in the current folder would be imported by a plain `python3 -m pip`.
    let cwd = t.path().join("cwd");
    fs::create_dir(&cwd).unwrap();
    let marker = t.path().join("pwned");
    fs::write(
        cwd.join("pip.py"),
        format!("open({:?}, 'w').write('ran')\n", marker.to_str().unwrap()),
    )
    .unwrap();
    // A cache holding the embedding model with one file torn (same size, other bytes).
    let models = t.path().join("models");
    let real = crate::common::models_dir().join("all-MiniLM-L6-v2");
    let copy = models.join("all-MiniLM-L6-v2");
    fs::create_dir_all(&copy).unwrap();
    for e in fs::read_dir(&real).unwrap().flatten() {
        if e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.') {
            fs::copy(e.path(), copy.join(e.file_name())).unwrap();
        }
    }
    let tok = copy.join("tokenizer.json");
    let len = fs::metadata(&tok).unwrap().len() as usize;
    fs::write(&tok, vec![b' '; len]).unwrap();

    let out = folio_command(t.path(), &["models", "fetch", "all-MiniLM-L6-v2"])
        .current_dir(&cwd)
        .env("FOLIO_MODELS", &models)
        // No index to reach: pip fails at once instead of downloading.
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .env("PIP_TIMEOUT", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!marker.exists(), "pip imported the current folder's pip.py");
    // The torn file was seen: folio tried to fetch instead of reporting the model present.
    assert!(!err.contains("already in"), "{err}");
    assert!(!out.status.success(), "{err}");
}

/// Index, search and ask work with no network at all: inside a network namespace with no
/// interfaces up. Creating one needs root (CI is root and runs ignored tests; `./dev test`
/// passes `--include-ignored` when run as root).
#[test]
#[ignore = "needs root to create a network namespace (unshare -n); ./dev test runs it as root"]
fn index_search_and_ask_work_offline() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("msa.txt"),
        "4. Payment\nAcme shall pay each invoice within thirty (30) days of receipt.\n",
    )
    .unwrap();
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let offline = |args: &[&str]| -> std::process::Output {
        let exe = env!("CARGO_BIN_EXE_folio");
        let mut all = vec!["-n", "--", exe];
        all.extend(args);
        // The same private config, log and model cache as folio_command, run under unshare.
        let template = folio_command(t.path(), &[]);
        let mut cmd =
            template
                .get_envs()
                .fold(std::process::Command::new("unshare"), |mut c, (k, v)| {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                    c
                });
        let out = cmd.args(&all).output().expect("running unshare");
        assert!(
            out.status.success(),
            "{args:?} offline: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    // The namespace really has no network.
    let probe = std::process::Command::new("unshare")
        .args(["-n", "--", "cat", "/proc/net/route"])
        .output()
        .expect("unshare");
    assert!(probe.status.success(), "cannot create a network namespace");
    assert!(
        String::from_utf8_lossy(&probe.stdout).lines().count() <= 1,
        "a route exists"
    );

    offline(&["index", docs_s, "--index", idx_s]);
    let v = json(&offline(&[
        "search",
        "invoice payment",
        "--index",
        idx_s,
        "--json",
    ]));
    assert!(v["results"][0]["text"].as_str().unwrap().contains("thirty"));
    let a = json(&offline(&[
        "ask",
        "How many days does Acme have to pay an invoice?",
        "--index",
        idx_s,
        "--json",
    ]));
    assert!(
        a["evidence"][0]["quote"]
            .as_str()
            .unwrap()
            .contains("thirty (30) days"),
        "{a}"
    );
}

/// A soak: `folio watch` ingests 2,000 files while four readers search without pause and one
/// `folio ask` runs. Readers never error and only ever see committed passages (each result's
/// text is in its file), and the final counts equal a clean index of the same folder.
#[test]
fn soak_watch_2000_files_with_readers_and_an_ask() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    const FILES: usize = 2000;
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let docs = base.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("seed.md"),
        "# Seed\n\nThe seed file mentions rivers.\n",
    )
    .unwrap();
    let idx = base.join("idx");
    let (docs_s, idx_s) = (
        docs.to_str().unwrap().to_string(),
        idx.to_str().unwrap().to_string(),
    );
    let mut watcher = folio_command(&base, &["watch", &docs_s, "--index", &idx_s])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !idx.join("folio-index.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the watcher made no index"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (stop, served, base, idx_s) =
                (stop.clone(), served.clone(), base.clone(), idx_s.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut child = folio_command(
                    &base,
                    &["search", "-", "--index", &idx_s, "--json", "-k", "5"],
                )
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
                let mut stdin = child.stdin.take().unwrap();
                let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let q = format!("river marker{} topic", (n * 7 + r * 13) % FILES);
                    writeln!(stdin, "{q}").map_err(|e| format!("reader {r}: {e}"))?;
                    stdin.flush().map_err(|e| e.to_string())?;
                    let line = lines
                        .next()
                        .ok_or(format!("reader {r} ended after {n} searches"))?
                        .map_err(|e| e.to_string())?;
                    let v: serde_json::Value = serde_json::from_str(&line)
                        .map_err(|e| format!("reader {r}: {e}: {line}"))?;
                    for hit in v["results"]
                        .as_array()
                        .ok_or(format!("reader {r}: {line}"))?
                    {
                        let path = hit["path"].as_str().unwrap_or_default();
                        let text = hit["text"].as_str().unwrap_or_default();
                        let file = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
                        if !file.contains(text.trim()) {
                            return Err(format!("reader {r}: a passage not in {path}: {text:?}"));
                        }
                    }
                    n += 1;
                    served.fetch_add(1, Ordering::Relaxed);
                }
                drop(stdin);
                let status = child.wait().map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("reader {r} exited with {status}"));
                }
                Ok(())
            })
        })
        .collect();

    for i in 0..FILES {
        let dir = docs.join(format!("d{}", i % 20));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("n{i}.md")),
            format!(
                "# Note {i}\n\nThis note is about topic{i} and holds marker{i}. Rivers flow.\n"
            ),
        )
        .unwrap();
        if i == FILES / 2 {
            let out = folio(
                &base,
                &["ask", "What do rivers do?", "--index", &idx_s, "--json"],
                None,
            );
            // Answered (0) or abstained (3), never an error.
            assert!(
                matches!(out.status.code(), Some(0 | 3)),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // Until the watcher has it all: every file, and the three stores agreeing.
    let deadline = Instant::now() + Duration::from_secs(900);
    let st = loop {
        let st = json(&folio(
            &base,
            &["status", "--index", &idx_s, "--json"],
            None,
        ));
        if st["files"] == FILES + 1
            && st["passages"] == st["bm25_passages"]
            && st["passages"] == st["vector_passages"]
        {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "the watcher did not catch up: {st}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap().unwrap();
    }
    let _ = std::process::Command::new("kill")
        .args(["-INT", &watcher.id().to_string()])
        .status();
    let _ = watcher.wait();
    let clean = base.join("clean");
    assert!(
        folio(
            &base,
            &["index", &docs_s, "--index", clean.to_str().unwrap()],
            None
        )
        .status
        .success()
    );
    let cl = json(&folio(
        &base,
        &["status", "--index", clean.to_str().unwrap(), "--json"],
        None,
    ));
    assert_eq!(st["files"], cl["files"]);
    assert_eq!(st["passages"], cl["passages"]);
    eprintln!(
        "soak: {} searches served by 4 readers in {:.0} s, 0 errors; {} files, {} passages (clean index: {} files, {} passages)",
        served.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
        st["files"],
        st["passages"],
        cl["files"],
        cl["passages"]
    );
}

/// Ctrl-C on a terminal reaches folio's whole process group: the PDF workers must not die of
/// it, and no file may be recorded as failed because folio was stopping (`folio watch` commits
/// the batch in progress before it stops).
#[test]
fn an_interrupt_never_marks_files_as_failed() {
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    crate::common::contracts(&docs, 40, 4);
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    for attempt in 0..2u64 {
        let _ = fs::remove_dir_all(&idx);
        let child = folio_command(t.path(), &["watch", docs_s, "--index", idx_s])
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // Into the first scan, while workers are extracting.
        let started = Instant::now();
        while !idx.join("folio-index.json").exists() && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300 + 300 * attempt));
        // As a terminal does: the signal goes to the whole foreground process group.
        // SAFETY: kill has no memory effects; the group is the child's own.
        unsafe {
            libc::kill(-(child.id() as i32), libc::SIGINT);
        }
        let out = child.wait_with_output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        let st = json(&folio(
            t.path(),
            &["status", "--index", idx_s, "--json"],
            None,
        ));
        let failed: Vec<_> = st["problems"]
            .as_array()
            .map(|p| p.to_vec())
            .unwrap_or_default();
        assert!(failed.is_empty(), "attempt {attempt}: {failed:?}\n{said}");
        assert!(
            !said.contains("killed by signal"),
            "attempt {attempt}: {said}"
        );
    }
}

/// A failed file is not read again while unchanged, unless asked or the extractors changed.
#[test]
fn failed_files_are_retried_on_request_or_new_extractors() {
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(docs.join("bad.pdf"), "%PDF-1.4 not really").unwrap();
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let failed_reads = |extra: &[&str]| -> usize {
        let mut args = vec!["index", docs_s, "--index", idx_s, "--json"];
        args.extend(extra);
        let r = json(&folio(t.path(), &args, None));
        // `indexed` counts files read this run; a file not retried is only reported.
        r["failed"].as_array().unwrap().len() * usize::from(r["unchanged"] == 0)
    };
    assert_eq!(failed_reads(&[]), 1);
    let log_len = || {
        fs::read_to_string(t.path().join("folio.log"))
            .unwrap_or_default()
            .matches("bad.pdf")
            .count()
    };
    let before = log_len();
    failed_reads(&[]);
    assert_eq!(
        log_len(),
        before,
        "an unchanged failed file is not read again"
    );
    failed_reads(&["--retry-failed"]);
    assert!(log_len() > before, "--retry-failed reads it again");
    // A manifest written by other extractors: the failure is judged again.
    let manifest = idx.join("manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for p in v["problems"].as_object_mut().unwrap().values_mut() {
        p["extractors"] = serde_json::json!("older extractors");
    }
    fs::write(&manifest, v.to_string()).unwrap();
    let before = log_len();
    failed_reads(&[]);
    assert!(log_len() > before, "new extractors read it again");
}

/// A full disk stops `folio watch` from committing, never from running: it reports, backs off,
/// retries, and catches up once space returns, losing nothing committed. Needs root to mount
/// a small tmpfs for the index (CI is root).
#[test]
#[ignore = "needs root to mount a small filesystem (tmpfs); ./dev test runs it as root"]
fn a_full_disk_pauses_the_watcher_and_it_resumes() {
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let docs = base.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("first.md"),
        "# First\n\nThe first note is about kestrels.\n",
    )
    .unwrap();
    let mnt = base.join("small");
    fs::create_dir(&mnt).unwrap();
    let ok = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=24m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "cannot mount a tmpfs");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let idx = mnt.join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let mut watcher = folio_command(&base, &["watch", docs_s, "--index", idx_s])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status = || {
        let out = folio(&base, &["status", "--index", idx_s, "--json"], None);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    };
    let wait = |what: &str, cond: &dyn Fn(&serde_json::Value) -> bool, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let st = status();
            if cond(&st) {
                return st;
            }
            assert!(Instant::now() < deadline, "{what}: {st}");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait("the first file", &|s| s["files"] == 1, 60);
    // Fill the filesystem, then add documents.
    let filler = mnt.join("filler");
    {
        let mut f = fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 16];
        while f.write_all(&block).is_ok() {}
    }
    for i in 0..30 {
        fs::write(
            docs.join(format!("n{i}.md")),
            format!("# Note {i}\n\nNote {i} is about falcons and marker{i}.\n"),
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        watcher.try_wait().unwrap().is_none(),
        "the watcher exited on a full disk"
    );
    // Space returns: the watcher catches up by itself.
    fs::remove_file(&filler).unwrap();
    let st = wait(
        "catching up after space returned",
        &|s| {
            s["files"] == 31
                && s["passages"] == s["vector_passages"]
                && s["passages"] == s["bm25_passages"]
        },
        120,
    );
    assert!(
        watcher.try_wait().unwrap().is_none(),
        "the watcher is still running"
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &watcher.id().to_string()])
        .status();
    let out = watcher.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("failed"), "the failure was reported: {said}");
    assert_eq!(st["files"], 31);
}

/// `folio index DOCS --index IDX --json`, which must succeed with no file failed: its report.
fn index_cleanly(home: &std::path::Path, docs: &str, idx: &str) -> serde_json::Value {
    let out = folio(home, &["index", docs, "--index", idx, "--json"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    report
}

/// File names are bytes: two names that differ only in a byte that is not UTF-8 are two files,
/// each found under its own name, and a PDF with such a name is read like any other.
#[test]
fn file_names_that_are_not_utf8_stay_distinct() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    let name = |b: &[u8]| docs.join(OsString::from_vec(b.to_vec()));
    let (latin1, other) = (name(b"caf\xe9.txt"), name(b"caf\xe8.txt"));
    fs::write(&latin1, "The espresso machine is descaled every Friday.\n").unwrap();
    fs::write(&other, "The bicycle tyres are pumped every Monday.\n").unwrap();
    let pdf_path = name(b"r\xe9sum\xe9.pdf");
    crate::common::save(
        crate::common::pdf_doc(&[&["The lighthouse keeper logs the tides at dawn."]]),
        &pdf_path,
    );
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    index_cleanly(t.path(), docs_s, idx_s);
    let st = json(&folio(
        t.path(),
        &["status", "--index", idx_s, "--json"],
        None,
    ));
    assert_eq!(st["files"], 3, "{st}");
    assert_eq!(st["passages"], 3, "{st}");
    assert_eq!(st["bm25_passages"], 3, "{st}");
    assert_eq!(st["vector_passages"], 3, "{st}");

    // Each passage names its own file, and the name leads back to it.
    for (query, want) in [
        ("espresso descaled", &latin1),
        ("bicycle tyres", &other),
        ("lighthouse tides", &pdf_path),
    ] {
        let v = json(&folio(
            t.path(),
            &["search", query, "--index", idx_s, "--json", "-k", "1"],
            None,
        ));
        let key = v["results"][0]["path"].as_str().unwrap();
        assert_eq!(&folio::fsutil::key_path(key), want, "{query}: {v}");
    }
    // People see the odd byte, escaped.
    let text = folio(t.path(), &["search", "espresso", "--index", idx_s], None);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("caf\\xE9.txt"), "{shown}");

    // Removing one leaves the other.
    fs::remove_file(&latin1).unwrap();
    assert!(
        folio(t.path(), &["index", docs_s, "--index", idx_s], None)
            .status
            .success()
    );
    let st = json(&folio(
        t.path(),
        &["status", "--index", idx_s, "--json"],
        None,
    ));
    assert_eq!(st["files"], 2, "{st}");
    assert_eq!(st["bm25_passages"], 2, "{st}");
}

/// The damage real PDFs carry, one generated fixture per class found in the corpus benchmark
/// (`cargo bench --bench pdf`): each file is read, by pdf-extract where it can and by pdf_oxide
/// where it cannot, and `folio status` says which read it.
#[test]
fn damaged_pdfs_are_read_by_the_fallback_extractor() {
    use crate::common::{pdf_bad_utf16_map, pdf_bytes, pdf_doc, pdf_type3_without_encoding};
    let t = tempfile::tempdir().unwrap();
    let docs = t.path().join("docs");
    fs::create_dir(&docs).unwrap();
    let page = |word: &str| {
        pdf_bytes(pdf_doc(&[&[&format!(
            "The {word} clause sets a notice period of thirty days."
        )]]))
    };
    let find = |b: &[u8], what: &[u8]| b.windows(what.len()).rposition(|w| w == what).unwrap();

    // Cut before the cross-reference table: no xref, no trailer, no startxref.
    let intact = page("intact");
    let mut no_trailer = page("truncated");
    no_trailer.truncate(find(&no_trailer, b"xref"));
    // startxref pointing into the middle of an object.
    let mut bad_startxref = page("misdirected");
    let at = find(&bad_startxref, b"startxref") + b"startxref\n".len();
    let end = at
        + bad_startxref[at..]
            .iter()
            .position(|&c| c == b'\n')
            .unwrap();
    bad_startxref.splice(at..end, b"17".iter().copied());
    let fixtures: Vec<(&str, Vec<u8>)> = vec![
        ("intact.pdf", intact),
        ("no-trailer.pdf", no_trailer),
        ("bad-startxref.pdf", bad_startxref),
        (
            "type3-no-encoding.pdf",
            pdf_bytes(pdf_type3_without_encoding(
                "The escrow clause releases funds after ninety days!",
            )),
        ),
        (
            "bad-utf16-map.pdf",
            pdf_bytes(pdf_bad_utf16_map("The pilot clause names the harbour tug")),
        ),
    ];
    for (name, bytes) in &fixtures {
        fs::write(docs.join(name), bytes).unwrap();
    }
    let idx = t.path().join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());
    let report = index_cleanly(t.path(), docs_s, idx_s);
    assert_eq!(report["indexed"], fixtures.len(), "{report}");

    let st = json(&folio(
        t.path(),
        &["status", "--index", idx_s, "--json", "--files"],
        None,
    ));
    let by = |name: &str| {
        st["file_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .map(|f| f["extractor"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{name} not indexed: {st}"))
    };
    // pdf-extract reads the intact file; it refuses (lopdf: "invalid file trailer") or
    // panics on each damaged one, and pdf_oxide reads them.
    for (name, _) in &fixtures {
        let want = if *name == "intact.pdf" {
            "pdf-extract"
        } else {
            "pdf_oxide"
        };
        assert_eq!(by(name), want, "{name}: {st}");
    }
    assert_eq!(st["pdf_extractors"]["pdf_oxide"], 4, "{st}");
    assert_eq!(st["pdf_extractors"]["pdf-extract"], 1, "{st}");
    for (query, want) in [
        ("truncated clause", "no-trailer.pdf"),
        ("misdirected clause", "bad-startxref.pdf"),
        ("escrow releases funds", "type3-no-encoding.pdf"),
        ("pilot harbour tug", "bad-utf16-map.pdf"),
    ] {
        let v = json(&folio(
            t.path(),
            &["search", query, "--index", idx_s, "--json", "-k", "1"],
            None,
        ));
        let path = v["results"][0]["path"].as_str().unwrap_or_default();
        assert!(path.ends_with(want), "{query}: {v}");
    }
    let text = folio(t.path(), &["status", "--index", idx_s], None);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("by pdf_oxide"), "{shown}");
}

/// The common failures read as one clear line on stderr, each cause once.
#[test]
fn common_failures_print_one_clear_line() {
    use sha2::Digest;
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let b = base.display();
    let stderr = |args: &[&str]| {
        let out = folio(&base, args, None);
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // No index yet.
    let none = format!("{b}/none");
    assert_eq!(
        stderr(&["search", "tides", "--index", &none]),
        format!("error: no index at {none} (run `folio index DIR` first)\n")
    );
    // A folder that is not there, and a file given as a folder.
    let idx = format!("{b}/idx");
    assert_eq!(
        stderr(&["index", &format!("{b}/missing"), "--index", &idx]),
        format!("error: cannot index {b}/missing: No such file or directory (os error 2)\n")
    );
    fs::write(base.join("note.txt"), "The harbour opens at dawn.\n").unwrap();
    assert_eq!(
        stderr(&["index", &format!("{b}/note.txt"), "--index", &idx]),
        format!("error: cannot index {b}/note.txt: not a folder\n")
    );
    // A language model file that is not there.
    let docs = base.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("harbour.md"),
        "# Harbour\n\nThe harbour opens at dawn.\n",
    )
    .unwrap();
    assert!(
        folio(
            &base,
            &["index", docs.to_str().unwrap(), "--index", &idx],
            None
        )
        .status
        .success()
    );
    assert_eq!(
        stderr(&[
            "ask",
            "When does the harbour open?",
            "--index",
            &idx,
            "--llm",
            &format!("{b}/missing.gguf")
        ]),
        format!("error: model path {b}/missing.gguf does not exist (GGUF file)\n")
    );
    // The index was built with another embedding model: a copy of the default one with one
    // weight changed.
    let other = base.join("other-model");
    fs::create_dir(&other).unwrap();
    let src = crate::common::embed_model_dir();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        fs::copy(src.join(f), other.join(f)).unwrap();
    }
    let _ = fs::copy(
        src.join("sentence_bert_config.json"),
        other.join("sentence_bert_config.json"),
    );
    let weights = other.join("model.safetensors");
    let mut bytes = fs::read(&weights).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&weights, &bytes).unwrap();
    let theirs = &hex::encode(sha2::Sha256::digest(&bytes))[..12];
    let ours = &hex::encode(sha2::Sha256::digest(
        fs::read(src.join("model.safetensors")).unwrap(),
    ))[..12];
    assert_eq!(
        stderr(&[
            "search",
            "harbour",
            "--index",
            &idx,
            "--embed-model",
            other.to_str().unwrap()
        ]),
        format!(
            "error: the index at {idx} was built with the embedding model all-MiniLM-L6-v2 (384 dimensions, sha256 {ours}); the current model is other-model (384 dimensions, sha256 {theirs}). Search with the model it was built with (--embed-model), or re-embed everything with `folio index --reembed`\n"
        )
    );
    // An embedding model whose weights file is damaged: the file named once.
    bytes.push(b'x');
    fs::write(&weights, &bytes).unwrap();
    assert_eq!(
        stderr(&[
            "index",
            docs.to_str().unwrap(),
            "--index",
            &format!("{b}/idx2"),
            "--embed-model",
            other.to_str().unwrap()
        ]),
        format!(
            "error: loading the embedding model: {}: incomplete metadata, file not fully covered\n",
            weights.display()
        )
    );
}

/// A damaged model file and a damaged index: the file named once, the library's message once
/// (wrappers used to repeat their cause, and `loading the language model` its path).
#[test]
fn wrapped_failures_say_each_cause_once() {
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let b = base.display();
    let stderr = |args: &[&str]| {
        let out = folio(&base, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let docs = base.join("docs");
    fs::create_dir(&docs).unwrap();
    fs::write(
        docs.join("terms.md"),
        "# Terms\n\nInvoices are paid within 30 days.\n",
    )
    .unwrap();
    let idx = format!("{b}/idx");
    let indexed = folio(
        &base,
        &["index", docs.to_str().unwrap(), "--index", &idx],
        None,
    );
    assert!(indexed.status.success());
    assert_eq!(
        stderr(&["index", "--index", &format!("{b}/fresh")]),
        "error: no folders given and the index has no roots yet: folio index DIR...\n"
    );

    let bad = format!("{b}/bad.gguf");
    fs::write(&bad, "not a model").unwrap();
    assert_eq!(
        stderr(&[
            "ask",
            "When are invoices paid?",
            "--index",
            &idx,
            "--llm",
            &bad
        ]),
        format!("error: loading the language model: {bad}: not a GGUF file (no GGUF header)\n")
    );

    for f in fs::read_dir(base.join("idx/bm25")).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "idx") {
            fs::remove_file(f).unwrap();
        }
    }
    let err = stderr(&["search", "invoices", "--index", &idx]);
    assert!(
        err.starts_with("error: BM25 index: ") && err.lines().count() == 1,
        "{err}"
    );
    let parts: Vec<&str> = err.trim_end().split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(!parts[i + 1..].contains(p), "{p:?} is said twice: {err}");
    }
}
