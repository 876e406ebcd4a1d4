//! The terminal UI end to end: the real binary in a tmux pseudo-terminal, the real models, a
//! small fixture folder indexed in the background. Types a question and reads the screen.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::models_dir;

struct Tmux {
    session: String,
}

impl Tmux {
    fn run(args: &[&str]) -> String {
        let out = Command::new("tmux").args(args).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        Tmux::run(&["capture-pane", "-p", "-t", &self.session])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        Tmux::run(&args);
    }

    /// Waits until the screen satisfies `cond`; returns it.
    fn wait(&self, what: &str, secs: u64, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        Tmux::run(&["kill-session", "-t", &self.session]);
    }
}

#[test]
fn ask_in_the_terminal_ui_shows_a_cited_answer_and_its_source() {
    assert!(
        Command::new("tmux").arg("-V").output().is_ok(),
        "tmux is needed for this test (./dev test installs it)"
    );
    let t = tempfile::tempdir().unwrap();
    let base = fs::canonicalize(t.path()).unwrap();
    let root = base.join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(
        root.join("falcon.md"),
        "# Project Falcon\n\n## Budget\n\nThe budget for Project Falcon is 1.2 million euros, approved in March.\n",
    )
    .unwrap();
    fs::write(
        root.join("recipe.txt"),
        "Sourdough bread\nMix flour, water and starter; bake at 250 degrees for 40 minutes.\n",
    )
    .unwrap();
    fs::write(base.join("config.toml"), "").unwrap();
    let env = |k: &str, v: &Path| format!("{k}='{}'", v.display());
    let cmd = format!(
        "env {} {} {} NO_COLOR=1 FOLIO_TUI_TIMINGS='{}' '{}' tui '{}' --index '{}'",
        env("FOLIO_CONFIG", &base.join("config.toml")),
        env("FOLIO_MODELS", &models_dir()),
        env("FOLIO_LOG", &base.join("folio.log")),
        base.join("timings.json").display(),
        env!("CARGO_BIN_EXE_folio"),
        root.display(),
        base.join("idx").display(),
    );
    let session = format!("folio-it-{}", std::process::id());
    let tmux = Tmux {
        session: session.clone(),
    };
    Tmux::run(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "30",
        &cmd,
    ]);
    // Interactive at once, while models load and the folder indexes.
    tmux.wait("the UI", 30, |s| s.contains("Ask (Enter)"));
    // "│ 2 files": the committed count, not "indexing 0 of 2 files".
    tmux.wait("the index and the model", 180, |s| {
        s.contains("│ 2 files") && s.contains("model SmolLM2")
    });
    tmux.keys(&["What is the budget for Project Falcon?", "Enter"]);
    let screen = tmux.wait("an answer with a citation", 180, |s| {
        s.contains("tokens/s ·") || s.contains("failed:") || s.contains("closest passages")
    });
    assert!(
        !screen.contains("failed:"),
        "asking failed; the screen:\n{screen}"
    );
    // A marker after a sentence of the answer (a source's label starts its line instead).
    assert!(
        screen.contains(" [1]") || screen.contains(" [2]"),
        "no citation in the answer:\n{screen}"
    );
    assert!(screen.contains("falcon.md"), "{screen}");

    // Help overlay, then quit; the timings file proves a clean exit.
    tmux.keys(&["Escape"]);
    tmux.keys(&["?"]);
    tmux.wait("the help overlay", 10, |s| s.contains("Keys"));
    tmux.keys(&["x"]);
    tmux.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !base.join("timings.json").exists() {
        assert!(Instant::now() < deadline, "the UI did not exit cleanly");
        std::thread::sleep(Duration::from_millis(200));
    }
}
