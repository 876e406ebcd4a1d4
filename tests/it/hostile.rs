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
/// megabyte); headings are cut at 300 characters, search shows the cut one, and the line
/// itself is cut into passages a result can print.
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
    assert_eq!(
        heading.chars().count(),
        folio::doc::MAX_HEADING_CHARS + 1,
        "cut, with an ellipsis"
    );
    // The megabyte itself (one unknown word piece) is cut into passages of at most 6 KiB.
    for r in hits["results"].as_array().into_iter().flatten() {
        let text = r["text"].as_str().unwrap_or_default();
        assert!(text.len() <= 6 * 1024, "a passage of {} bytes", text.len());
    }
    assert!(out.stdout.len() < 100_000, "{} bytes", out.stdout.len());
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

/// The extraction workers `folio` (pid `parent`) runs now.
fn workers_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // The fields after the command name in parentheses: state, then the parent's pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        if ppid == Some(parent) && cmdline.windows(12).any(|w| w == b"__pdf-worker") {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    // A zombie has ended; it only waits for its new parent to reap it.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Waits until `folio` (`child`) has an extraction worker, and returns the workers.
fn busy_workers(child: &mut std::process::Child) -> Vec<u32> {
    let started = Instant::now();
    loop {
        let w = workers_of(child.id());
        if !w.is_empty() {
            return w;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "folio ended before any worker started"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no worker started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Ctrl-C while `folio index` has workers extracting: the run commits what it read, says so
/// and exits 130; no file is marked failed, no worker outlives it, and the next run finishes
/// the rest. Killed outright (`kill -9`), folio leaves no worker behind either: a worker busy
/// inside a parser notices that its parent is gone.
#[test]
fn ctrl_c_and_kill_during_extraction_leave_no_worker_and_no_failure() {
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().unwrap();
    let home = t.path();
    let docs = home.join("docs");
    crate::common::contracts(&docs, 60, 6);
    let idx = home.join("idx");
    let (docs_s, idx_s) = (docs.to_str().unwrap(), idx.to_str().unwrap());

    let mut child = folio_command(home, &["index", docs_s, "--index", idx_s])
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let workers = busy_workers(&mut child);
    // As a terminal does: the signal goes to the whole foreground process group.
    // SAFETY: kill has no memory effects; the group is the child's own.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGINT);
    }
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(130), "{said}");
    assert!(said.contains("stopped by Ctrl-C"), "{said}");
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "{:?}",
        stopped.elapsed()
    );
    std::thread::sleep(Duration::from_millis(1500));
    for w in &workers {
        assert!(!alive(*w), "worker {w} outlived folio");
    }
    let st = json(&folio(home, &["status", "--index", idx_s, "--json"], None));
    assert_eq!(st["problems"].as_array().map(Vec::len), Some(0), "{st}");
    let rest = index_json(home, &docs, &idx);
    assert_eq!(rest["failed"].as_array().map(Vec::len), Some(0), "{rest}");
    let st = json(&folio(home, &["status", "--index", idx_s, "--json"], None));
    assert_eq!(st["files"], 60, "{st}");

    // kill -9: nothing in folio runs, so the workers must notice by themselves.
    let idx2 = home.join("idx2");
    let mut child = folio_command(home, &["index", docs_s, "--index", idx2.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let workers = busy_workers(&mut child);
    child.kill().unwrap();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while workers.iter().any(|w| alive(*w)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for w in &workers {
        assert!(!alive(*w), "worker {w} outlived a killed folio");
    }
}

/// A fuzzing suite that keeps running: documents of every format generated deep, long and
/// malformed (random nesting past the bound, megabyte headings, stray and unclosed tags,
/// truncated and corrupted packages), each read the way indexing reads it. Every case must
/// end with units or a reason, within bounds: no panic, no stack overflow, no heading past
/// the cut. `FOLIO_FUZZ_CASES` sets the cases per format (the default, 256, runs in about 6 s
/// on 2 cores; 4,096 in about 100 s); proptest keeps every failure it finds in
/// `proptest-regressions/`, replayed first on every run, and each one fixed also gets a unit
/// test beside the code (the first: quadratic sentence segmentation, `ingest::chunk`).
mod fuzz {
    use std::time::{Duration, Instant};

    use folio::doc::{Kind, MAX_HEADING_CHARS, Unit};
    use folio::ingest::chunk::{ChunkOptions, chunk_units};
    use folio::ingest::extract::{ExtractError, extract_bytes};
    use proptest::prelude::*;

    fn config() -> ProptestConfig {
        let cases = std::env::var("FOLIO_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        ProptestConfig {
            cases,
            max_shrink_iters: 64,
            ..ProptestConfig::default()
        }
    }

    /// What one generated document is made of.
    #[derive(Debug, Clone)]
    enum Op {
        Open(usize),
        Close(usize),
        /// The same element opened this many times in a row.
        Deep(usize, usize),
        Text(String),
        /// A long run of one character (a megabyte heading, a word without spaces).
        Long(char, usize),
    }

    fn ops(tags: usize) -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            4 => (0..tags).prop_map(Op::Open),
            3 => (0..tags).prop_map(Op::Close),
            1 => (0..tags, 1usize..3000).prop_map(|(t, n)| Op::Deep(t, n)),
            4 => "[a-zA-Z0-9 .,;<>&#\n\u{85}\u{202e}\u{1b}é]{0,40}".prop_map(Op::Text),
            1 => (prop::sample::select(vec!['a', ' ', '\n', '<', '#', '>', '-', '|']),
                  1usize..100_000)
                .prop_map(|(c, n)| Op::Long(c, n)),
        ];
        prop::collection::vec(op, 1..120)
    }

    fn render(
        ops: &[Op],
        tags: &[&str],
        open: impl Fn(&str) -> String,
        close: impl Fn(&str) -> String,
    ) -> String {
        let mut s = String::new();
        for op in ops {
            match op {
                Op::Open(t) => s.push_str(&open(tags[*t])),
                Op::Close(t) => s.push_str(&close(tags[*t])),
                Op::Deep(t, n) => s.push_str(&open(tags[*t]).repeat(*n)),
                Op::Text(x) => s.push_str(&x.replace('&', "&amp;").replace('<', "&lt;")),
                Op::Long(c, n) => s.extend(std::iter::repeat_n(*c, *n)),
            }
        }
        s
    }

    const HTML: &[&str] = &[
        "div",
        "span",
        "p",
        "li",
        "ul",
        "table",
        "tr",
        "td",
        "h1",
        "h2",
        "h3",
        "pre",
        "b",
        "a",
        "script",
        "title",
        "blockquote",
        "svg",
    ];

    fn html(ops: &[Op]) -> String {
        render(ops, HTML, |t| format!("<{t}>"), |t| format!("</{t}>"))
    }

    /// Markdown's own structure: headings, lists, quotes, fences, tables, raw HTML.
    fn markdown(ops: &[Op]) -> String {
        const MD: &[&str] = &[
            "# ",
            "## ",
            "- ",
            "  - ",
            "> ",
            "```\n",
            "| a | b |\n",
            "<div>",
            "1. ",
            "    ",
        ];
        render(ops, MD, |t| format!("\n{t}"), |t| t.to_string())
    }

    const ODT: &[&str] = &[
        "text:p",
        "text:h",
        "text:list",
        "text:list-item",
        "text:section",
        "text:span",
        "table:table",
        "table:table-row",
        "table:table-cell",
        "text:note",
        "text:note-body",
    ];

    const WORD: &[&str] = &[
        "w:p",
        "w:r",
        "w:t",
        "w:tbl",
        "w:tr",
        "w:tc",
        "w:sdt",
        "w:sdtContent",
    ];

    /// Reads `bytes` as indexing does (the worker's side of it) and checks the bounds.
    fn read(kind: Kind, bytes: &[u8]) -> Result<(), TestCaseError> {
        let started = Instant::now();
        // A reason is a fine answer (a package's parser that panics is caught and reported
        // as one); a panic of folio's own readers fails the test, an overflow aborts it.
        let Ok(units) = extract_bytes(kind, bytes) else {
            return Ok(());
        };
        check(kind, &units)?;
        prop_assert!(
            started.elapsed() < Duration::from_secs(20),
            "{kind:?}: {} bytes took {:?}",
            bytes.len(),
            started.elapsed()
        );
        Ok(())
    }

    fn check(kind: Kind, units: &[Unit]) -> Result<(), TestCaseError> {
        let opts = ChunkOptions {
            target: 200,
            max: 256,
            overlap: 32,
        };
        let count = |s: &str| s.split_whitespace().count() + s.len() / 16;
        for c in chunk_units(units, &opts, &count) {
            for h in &c.heading {
                prop_assert!(
                    h.chars().count() <= MAX_HEADING_CHARS + 1,
                    "{kind:?}: a heading of {} characters",
                    h.chars().count()
                );
            }
        }
        Ok(())
    }

    /// `bytes` damaged the way downloads and disks damage files.
    fn damage(bytes: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
        let mut b = bytes[..cut.min(bytes.len())].to_vec();
        if b.is_empty() {
            return b;
        }
        for &(at, x) in flips {
            let i = at % b.len();
            b[i] ^= x;
        }
        b
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn html_documents(ops in ops(HTML.len())) {
            read(Kind::Html, html(&ops).as_bytes())?;
        }

        #[test]
        fn markdown_documents(ops in ops(10)) {
            read(Kind::Markdown, markdown(&ops).as_bytes())?;
        }

        #[test]
        fn text_of_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
            read(Kind::Text, &bytes)?;
            read(Kind::Markdown, &bytes)?;
            read(Kind::Html, &bytes)?;
        }

        #[test]
        fn opendocument_packages(ops in ops(ODT.len()), cut in any::<usize>(),
                                 flips in prop::collection::vec((any::<usize>(), 1u8..), 0..4)) {
            let body = render(&ops, ODT, |t| format!("<{t}>"), |t| format!("</{t}>"));
            let bytes = crate::common::odt(&body);
            read(Kind::Odt, &bytes)?;
            read(Kind::Odt, &damage(&bytes, cut, &flips))?;
        }

        #[test]
        fn word_packages(ops in ops(WORD.len()), cut in any::<usize>(),
                         flips in prop::collection::vec((any::<usize>(), 1u8..), 0..4)) {
            let body = render(&ops, WORD, |t| format!("<{t}>"), |t| format!("</{t}>"));
            let bytes = crate::common::docx(&body, &[]);
            read(Kind::Docx, &bytes)?;
            read(Kind::Docx, &damage(&bytes, cut, &flips))?;
        }

        #[test]
        fn epub_packages(ops in ops(HTML.len()), cut in any::<usize>(),
                         flips in prop::collection::vec((any::<usize>(), 1u8..), 0..4)) {
            let chapter = format!("<html><body>{}</body></html>", html(&ops));
            let bytes = crate::common::epub(&[("one.xhtml", chapter.as_str())]);
            read(Kind::Epub, &bytes)?;
            read(Kind::Epub, &damage(&bytes, cut, &flips))?;
        }
    }

    proptest! {
        // PDFs go through the real worker processes, as indexing reads them: fewer cases.
        #![proptest_config(ProptestConfig { cases: config().cases / 4 + 1, ..config() })]

        #[test]
        fn damaged_pdfs(lines in prop::collection::vec("[ -~]{0,60}", 1..20), cut in any::<usize>(),
                        flips in prop::collection::vec((any::<usize>(), 1u8..), 0..8)) {
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let bytes = crate::common::pdf_bytes(crate::common::pdf_doc(&[&refs]));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.pdf");
            std::fs::write(&path, damage(&bytes, cut, &flips)).unwrap();
            let started = Instant::now();
            match crate::common::pdf().extract(&path, None) {
                Ok(text) => {
                    let units = folio::ingest::pdf::pages_to_units(text.pages);
                    check(Kind::Pdf, &units)?;
                }
                Err(ExtractError::Timeout(_)) => {
                    return Err(TestCaseError::fail("a damaged PDF hung its worker"));
                }
                Err(_) => {}
            }
            prop_assert!(started.elapsed() < Duration::from_secs(40));
        }
    }
}
