//! The watcher's benchmark: freshness, a burst of files, and idle cost, with `folio watch`
//! running as its own process and this process reading the index as `folio search` would.
//!
//! Run with `cargo bench --profile dev --bench watch` (after `./dev bench` has built the tree).
//! Options: `--data DIR` (default `../shared/data/scifact`), `--saves N` (default 50),
//! `--docs N` (default 2000), `--skip-clean` (do not build the clean index to compare with),
//! `--idle SECS` (default 30).
//!
//! 1. Freshness: a file is saved with a new unique word, and the time until `folio search`
//!    (hybrid, one long-running `folio search -` process) returns it is measured, N times
//!    (p50, p95, worst).
//! 2. Burst: N SciFact abstracts are written as files into the watched folder at once; the time
//!    until all are searchable, the watcher's peak RSS, and its passage count against a clean
//!    `folio index` of the same folder.
//! 3. Idle: the watcher's CPU time over a quiet period.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use folio::eval::percentile;
use folio::index::Index;
use folio::index::search::{Retrievers, SearchOptions};

struct Args {
    data: PathBuf,
    saves: usize,
    docs: usize,
    clean: bool,
    idle: u64,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!("watch: run with `cargo bench --profile dev --bench watch`");
        return None;
    }
    let mut a = Args {
        data: PathBuf::from("../shared/data/scifact"),
        saves: 50,
        docs: 2000,
        clean: true,
        idle: 30,
    };
    let mut it = argv.iter().skip(1);
    while let Some(x) = it.next() {
        let mut num = |d: usize| it.next().and_then(|v| v.parse().ok()).unwrap_or(d);
        match x.as_str() {
            "--data" => a.data = PathBuf::from(it.next().cloned().unwrap_or_default()),
            "--saves" => a.saves = num(a.saves),
            "--docs" => a.docs = num(a.docs),
            "--idle" => a.idle = num(a.idle as usize) as u64,
            "--skip-clean" => a.clean = false,
            _ => {}
        }
    }
    Some(a)
}

fn folio(tmp: &Path) -> Command {
    let config = tmp.join("config.toml");
    if !config.exists() {
        std::fs::write(&config, "").expect("config");
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_folio"));
    c.env("FOLIO_CONFIG", &config)
        .env("FOLIO_LOG", tmp.join("folio.log"))
        .env("NO_COLOR", "1");
    c
}

fn search_hits(idx: &Index, opts: &SearchOptions, term: &str) -> usize {
    idx.search(None, term, opts).map(|v| v.len()).unwrap_or(0)
}

/// Polls `cond` on a long-lived reader that refreshes, as the TUI does. Returns the wait.
fn wait(idx: &mut Index, limit: Duration, mut cond: impl FnMut(&Index) -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        let _ = idx.refresh();
        if cond(idx) {
            return t0.elapsed();
        }
        assert!(t0.elapsed() < limit, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn proc_field(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let _ = child.wait();
}

fn main() {
    let Some(args) = parse_args() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let base = std::fs::canonicalize(work.path()).expect("tempdir");
    let root = base.join("docs");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(
        root.join("seed.md"),
        "# Seed\n\nA first note, so the index exists.\n",
    )
    .expect("seed");
    let idx_dir = base.join("idx");

    let mut child = folio(&base)
        .args(["watch", root.to_str().unwrap_or_default()])
        .args(["--index", idx_dir.to_str().unwrap_or_default()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("folio watch");
    let pid = child.id();
    // Wait for the watcher to say it is watching, echoing what it says.
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("watching") {
                let _ = tx.send(());
            }
            tracing_line(&line);
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("folio watch started");
    let mut idx = Index::open_reader(&idx_dir).expect("index");
    let settings = folio::config::Settings::defaults(&folio::config::Dirs {
        config_file: base.join("none.toml"),
        data: base.join("data"),
        cache: base.join("cache"),
    });
    let mut opts = SearchOptions::from_settings(&settings, Retrievers::Bm25);
    opts.k = 5;
    wait(&mut idx, Duration::from_secs(60), |i| {
        search_hits(i, &opts, "seed") > 0
    });

    eprintln!(
        "[1/3] freshness over {} saves, seen by `folio search` in another process...",
        args.saves
    );
    // One `folio search -` process, models loaded once, a query per line: what a script or
    // an editor plugin keeps open beside a running watcher.
    let mut searcher = folio(&base)
        .args(["search", "-", "--json", "-k", "5"])
        .args(["--index", idx_dir.to_str().unwrap_or_default()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("folio search");
    let mut search_in = searcher.stdin.take().expect("stdin");
    let mut search_out = BufReader::new(searcher.stdout.take().expect("stdout"));
    let mut finds = |word: &str| -> bool {
        use std::io::Write;
        writeln!(search_in, "{word}").expect("query");
        search_in.flush().expect("query");
        let mut line = String::new();
        search_out
            .read_line(&mut line)
            .expect("folio search answers");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
        v["results"].as_array().is_some_and(|r| {
            r.iter()
                .any(|p| p["text"].as_str().is_some_and(|t| t.contains(word)))
        })
    };
    let mut fresh = Vec::new();
    for n in 0..args.saves {
        let word = format!("freshword{n}x");
        let t0 = Instant::now();
        std::fs::write(
            root.join("edited.md"),
            format!("# Edited\n\nThis version of the note mentions {word} once.\n"),
        )
        .expect("save");
        while !finds(&word) {
            assert!(t0.elapsed() < Duration::from_secs(60), "timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
        fresh.push(t0.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = searcher.kill();
    let _ = searcher.wait();

    eprintln!("[2/3] burst of {} SciFact abstracts...", args.docs);
    let corpus = std::fs::read_to_string(args.data.join("corpus.jsonl")).expect("SciFact corpus");
    let burst = root.join("burst");
    let t0 = Instant::now();
    let mut written = 0;
    for line in corpus.lines().take(args.docs) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let dir = burst.join(format!("g{}", written % 20));
        std::fs::create_dir_all(&dir).expect("dir");
        let body = format!(
            "{}\n\n{}\n",
            v["title"].as_str().unwrap_or(""),
            v["text"].as_str().unwrap_or("")
        );
        std::fs::write(
            dir.join(format!("{}.txt", v["_id"].as_str().unwrap_or("x"))),
            body,
        )
        .expect("write");
        written += 1;
    }
    let copy_s = t0.elapsed().as_secs_f64();
    let expected_files = written + 2;
    wait(&mut idx, Duration::from_secs(7200), |i| {
        i.manifest().files.len() + i.manifest().problems.len() >= expected_files
    });
    let burst_s = t0.elapsed().as_secs_f64();
    let rss_kib = proc_field(pid, "VmHWM:");
    let passages = idx.manifest().chunk_count();

    eprintln!("[3/3] idle for {} s...", args.idle);
    std::thread::sleep(Duration::from_secs(25)); // past the compaction after the burst
    let ticks0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(args.idle));
    let ticks1 = cpu_ticks(pid);
    let idle_rss = proc_field(pid, "VmRSS:");
    stop(&mut child);

    let clean = if args.clean {
        let clean_dir = base.join("clean");
        let out = folio(&base)
            .args(["index", root.to_str().unwrap_or_default(), "--json"])
            .args(["--index", clean_dir.to_str().unwrap_or_default()])
            .output()
            .expect("folio index");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Index::open_reader(&clean_dir)
            .map(|i| i.manifest().chunk_count())
            .ok()
    } else {
        None
    };

    let ticks_per_s = 100.0; // USER_HZ on Linux
    println!("## folio watch (2 processes: the watcher, and this reader)\n");
    println!(
        "freshness over {} saves: p50 {:.2} s, p95 {:.2} s, worst {:.2} s",
        fresh.len(),
        percentile(&fresh, 50.0),
        percentile(&fresh, 95.0),
        fresh.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "burst: {} files written in {:.1} s, all searchable after {:.1} s ({:.1} files/s); watcher peak RSS {:.0} MiB; {} passages{}",
        written,
        copy_s,
        burst_s,
        written as f64 / burst_s,
        rss_kib.unwrap_or(0) as f64 / 1024.0,
        passages,
        match clean {
            Some(c) => format!(
                ", clean `folio index` of the same folder: {c} ({})",
                if c == passages { "equal" } else { "DIFFERENT" }
            ),
            None => String::new(),
        }
    );
    if let (Some(a), Some(b)) = (ticks0, ticks1) {
        println!(
            "idle: {:.2} s of CPU over {} s ({:.3}%), RSS {:.0} MiB",
            (b - a) as f64 / ticks_per_s,
            args.idle,
            100.0 * (b - a) as f64 / ticks_per_s / args.idle as f64,
            idle_rss.unwrap_or(0) as f64 / 1024.0
        );
    }
}

fn tracing_line(line: &str) {
    // Keep the watcher's own lines visible but short (per-file lines would flood a burst).
    if !line.contains("folio: indexed ") {
        eprintln!("  watcher: {line}");
    }
}
