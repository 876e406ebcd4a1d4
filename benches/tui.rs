//! The terminal UI's responsiveness: frame time and key-to-screen latency while an answer is
//! generating and a large ingest runs, and memory at idle with the default models loaded.
//!
//! Run with `cargo bench --profile dev --bench tui` (needs tmux). Options: `--data DIR`
//! (default `../shared/data/scifact`), `--docs N` (default 2000), `--seconds N` of typing
//! (default 60). The UI runs in tmux; folio records its own frame and key timings
//! (`FOLIO_TUI_TIMINGS`), from reading a key to the frame that shows it being flushed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rss_mib(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .unwrap_or(0.0)
        / 1024.0
}

fn wait(session: &str, what: &str, secs: u64, cond: impl Fn(&str) -> bool) {
    let t0 = Instant::now();
    while !cond(&tmux(&["capture-pane", "-p", "-t", session])) {
        assert!(
            t0.elapsed().as_secs() < secs,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!("tui: run with `cargo bench --profile dev --bench tui`");
        return;
    }
    let mut data = PathBuf::from("../shared/data/scifact");
    let mut docs = 2000usize;
    let mut seconds = 60u64;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--data" => data = it.next().map(PathBuf::from).unwrap_or(data),
            "--docs" => docs = it.next().and_then(|v| v.parse().ok()).unwrap_or(docs),
            "--seconds" => seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            _ => {}
        }
    }
    let work = tempfile::tempdir().expect("tempdir");
    let base = std::fs::canonicalize(work.path()).expect("tempdir");
    let root = base.join("docs");
    std::fs::create_dir_all(&root).expect("root");
    std::fs::write(
        root.join("falcon.md"),
        "# Project Falcon\n\n## Budget\n\nThe budget for Project Falcon is 1.2 million euros, approved in March.\n",
    )
    .expect("fixture");
    std::fs::write(base.join("config.toml"), "").expect("config");
    let timings = base.join("timings.json");
    let q = |p: &Path| format!("'{}'", p.display());
    // XDG_DATA_HOME: the questions asked go into a history of their own, not the user's.
    let cmd = format!(
        "env XDG_DATA_HOME={} FOLIO_CONFIG={} FOLIO_LOG={} FOLIO_TUI_TIMINGS={} {} tui {} --index {}",
        q(&base.join("data")),
        q(&base.join("config.toml")),
        q(&base.join("folio.log")),
        q(&timings),
        q(Path::new(env!("CARGO_BIN_EXE_folio"))),
        q(&root),
        q(&base.join("idx")),
    );
    let session = format!("folio-bench-{}", std::process::id());
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "36",
        &cmd,
    ]);
    let pid = tmux(&["list-panes", "-t", &session, "-F", "#{pane_pid}"])
        .trim()
        .to_string();
    wait(&session, "models and index", 300, |s| {
        s.contains("model SmolLM2") && s.contains("1 files")
    });
    std::thread::sleep(Duration::from_secs(5));
    let idle_rss = rss_mib(&pid);

    eprintln!("writing {docs} documents into the watched folder...");
    let corpus = std::fs::read_to_string(data.join("corpus.jsonl")).expect("SciFact corpus");
    for (i, line) in corpus.lines().take(docs).enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let dir = root.join(format!("g{}", i % 20));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join(format!("{i}.txt")),
            format!(
                "{}\n\n{}\n",
                v["title"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            ),
        )
        .expect("write");
    }
    wait(&session, "the ingest to start", 120, |s| {
        s.contains("indexing ")
    });
    eprintln!("asking, and typing for {seconds} s while it answers and indexes...");
    let t0 = Instant::now();
    let mut asked = 0;
    let mut answered = 0;
    // Key to screen as the user sees it: a key sent through tmux until capture-pane shows
    // its effect (tmux's own round trip included, so an upper bound).
    let (mut probe_ms, mut probe_gen_ms) = (Vec::new(), Vec::new());
    let mut lost = 0;
    let input_shows =
        |s: &str, text: &str| s.lines().take(3).any(|l| l.contains(&format!("> {text}")));
    while t0.elapsed().as_secs() < seconds {
        tmux(&[
            "send-keys",
            "-t",
            &session,
            "What is the budget for Project Falcon?",
            "Enter",
        ]);
        asked += 1;
        let asked_at = Instant::now();
        // The previous answer stays on screen until the new question shows as begun.
        while asked_at.elapsed().as_secs() < 10 {
            let screen = tmux(&["capture-pane", "-p", "-t", &session]);
            if ["retrieving", "generating", "waiting for the model"]
                .iter()
                .any(|m| screen.contains(m))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        loop {
            let screen = tmux(&["capture-pane", "-p", "-t", &session]);
            let generating = screen.contains("generating…");
            if screen.contains("tokens/s ·")
                || screen.contains("do not say")
                || screen.contains("closest passages")
                || screen.contains("failed:")
                || asked_at.elapsed().as_secs() > 180
            {
                answered += 1;
                break;
            }
            // A probe: type a letter into the box, wait for it, erase it. The box shows "> "
            // when it has the focus; Tab round to it first if a key went elsewhere.
            for _ in 0..4 {
                if input_shows(&tmux(&["capture-pane", "-p", "-t", &session]), "") {
                    break;
                }
                tmux(&["send-keys", "-t", &session, "Tab"]);
            }
            let k0 = Instant::now();
            tmux(&["send-keys", "-t", &session, "x"]);
            let mut seen = false;
            while k0.elapsed().as_secs() < 10 {
                if input_shows(&tmux(&["capture-pane", "-p", "-t", &session]), "x") {
                    seen = true;
                    break;
                }
            }
            let ms = k0.elapsed().as_secs_f64() * 1000.0;
            if seen {
                probe_ms.push(ms);
                if generating {
                    probe_gen_ms.push(ms);
                }
            } else {
                lost += 1;
            }
            tmux(&["send-keys", "-t", &session, "BSpace"]);
            // Browsing while it streams: the sources list (Ctrl: plain Up and Down in the box
            // walk the question history), and round the panes back to the box.
            for k in ["C-Down", "C-Up", "Tab", "Tab", "Tab", "Tab"] {
                tmux(&["send-keys", "-t", &session, k]);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let busy_rss = rss_mib(&pid);
    tmux(&["send-keys", "-t", &session, "C-q"]);
    let t1 = Instant::now();
    while !timings.exists() && t1.elapsed().as_secs() < 120 {
        std::thread::sleep(Duration::from_millis(200));
    }
    tmux(&["kill-session", "-t", &session]);
    let t: serde_json::Value = std::fs::read_to_string(&timings)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .expect("timings from the UI");
    let f = |k: &str, p: &str| t[k][p].as_f64().unwrap_or(f64::NAN);
    println!(
        "## folio tui ({seconds} s of keys while answering {asked} questions and ingesting {docs} files)\n"
    );
    println!(
        "frame time over {} frames: p50 {:.2} ms, p95 {:.2} ms, worst {:.1} ms",
        t["frames"],
        f("frame_ms", "p50"),
        f("frame_ms", "p95"),
        f("frame_ms", "worst")
    );
    println!(
        "key to screen in the UI (read to flushed frame) over {} keys: p50 {:.1} ms, p95 {:.1} ms, worst {:.1} ms",
        t["keys"],
        f("key_to_screen_ms", "p50"),
        f("key_to_screen_ms", "p95"),
        f("key_to_screen_ms", "worst")
    );
    let pct = folio::eval::percentile;
    let worst = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "key to screen through tmux over {} probes ({} while generating): p50 {:.1} ms, p95 {:.1} ms, worst {:.1} ms; while generating p50 {:.1} ms, p95 {:.1} ms, worst {:.1} ms",
        probe_ms.len(),
        probe_gen_ms.len(),
        pct(&probe_ms, 50.0),
        pct(&probe_ms, 95.0),
        worst(&probe_ms),
        pct(&probe_gen_ms, 50.0),
        pct(&probe_gen_ms, 95.0),
        worst(&probe_gen_ms),
    );
    println!("questions asked {asked}, finished {answered}; probes not seen within 10 s: {lost}");
    println!(
        "memory: {idle_rss:.0} MiB RSS at idle with both models loaded; {busy_rss:.0} MiB while ingesting and answering; peak {:.0} MiB",
        t["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1048576.0
    );
}
