//! The terminal UI end to end: the real binary in a tmux pseudo-terminal, the real models, a
//! small fixture folder indexed in the background. Types a question and reads the screen; saves
//! and copies the answer; starts again and finds the question in the history.
//!
//! tmux runs a server of its own (`-L`), so that the clipboard setting the copy needs leaves
//! the user's tmux alone.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::models_dir;

struct Tmux {
    /// The server's socket name.
    server: String,
    session: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.server])
            .args(args)
            .output()
            .expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `cmd` in a new 100x30 session named `session` (the server too, the first time),
    /// with OSC 52 from programs setting tmux's paste buffer.
    fn start(&mut self, session: &str, cmd: &str) {
        self.session = session.to_string();
        self.run(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            cmd,
            ";",
            "set-option",
            "-s",
            "set-clipboard",
            "on",
        ]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        self.run(&args);
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
        self.run(&["kill-server"]);
    }
}

/// Waits for the file the UI writes on a clean exit.
fn wait_for_exit(timings: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !timings.exists() {
        assert!(Instant::now() < deadline, "the UI did not exit cleanly");
        std::thread::sleep(Duration::from_millis(200));
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
    // XDG_DATA_HOME: folio's data directory, where the history and saved answers go.
    let data = base.join("data").join("folio");
    let cmd = format!(
        "env {} {} {} {} NO_COLOR=1 FOLIO_TUI_TIMINGS='{}' '{}' tui '{}' --index '{}'",
        env("XDG_DATA_HOME", &base.join("data")),
        env("FOLIO_CONFIG", &base.join("config.toml")),
        env("FOLIO_MODELS", &models_dir()),
        env("FOLIO_LOG", &base.join("folio.log")),
        base.join("timings.json").display(),
        env!("CARGO_BIN_EXE_folio"),
        root.display(),
        base.join("idx").display(),
    );
    let mut tmux = Tmux {
        server: format!("folio-it-{}", std::process::id()),
        session: String::new(),
    };
    tmux.start("first", &cmd);
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

    // Out of the box, e saves the answer as Markdown in the data directory, y copies the same
    // text with OSC 52 (which this tmux keeps as its paste buffer).
    tmux.keys(&["Escape"]);
    tmux.keys(&["e"]);
    tmux.wait("the answer saved", 10, |s| s.contains("saved the"));
    let saved: Vec<_> = fs::read_dir(data.join("answers"))
        .expect("the answers folder")
        .map(|e| e.expect("an entry").path())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let name = saved[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.ends_with("-what-is-the-budget-for-project-falcon.md"),
        "{name}"
    );
    let markdown = fs::read_to_string(&saved[0]).unwrap();
    assert!(
        markdown.starts_with("## What is the budget for Project Falcon?\n")
            && markdown.contains("falcon.md"),
        "{markdown}"
    );
    tmux.keys(&["y"]);
    tmux.wait("the answer copied", 10, |s| s.contains("copied the"));
    assert_eq!(tmux.run(&["show-buffer"]), markdown, "the clipboard");

    // Help overlay, then quit; the timings file proves a clean exit.
    tmux.keys(&["?"]);
    tmux.wait("the help overlay", 10, |s| s.contains("Keys"));
    tmux.keys(&["x"]);
    tmux.keys(&["q"]);
    wait_for_exit(&base.join("timings.json"));
    assert_eq!(
        fs::read_to_string(data.join("history")).expect("the question history"),
        "What is the budget for Project Falcon?\n"
    );

    // The next run: Up in the question box brings the question back.
    fs::remove_file(base.join("timings.json")).unwrap();
    tmux.start("second", &cmd);
    tmux.wait("the UI", 30, |s| s.contains("Ask (Enter)"));
    tmux.keys(&["Up"]);
    tmux.wait("the question from the history", 10, |s| {
        s.contains("> What is the budget for Project Falcon?")
    });
    tmux.keys(&["C-q"]);
    wait_for_exit(&base.join("timings.json"));
}
