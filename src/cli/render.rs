//! What several commands print: the indexing progress bar and report, passages with their
//! highlighted terms, source lines, and text made safe for the terminal.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use folio::index::Index;
use folio::index::manifest::ProblemStatus;
use folio::index::search::Passage;
use folio::pipeline::{Observer, Progress, RunReport};
use folio::snippet::snippet;

use super::note;

/// A progress bar on stderr, drawn only on a terminal.
pub(super) struct Bar {
    pub(super) bar: ProgressBar,
    failed: usize,
}

impl Bar {
    pub(super) fn new(visible: bool) -> Bar {
        let bar = if visible && !quiet() && std::io::stderr().is_terminal() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} files  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar { bar, failed: 0 }
    }
}

impl Observer for Bar {
    fn planned(&mut self, total: usize, to_read: usize) {
        self.bar.set_length(total as u64);
        tracing::info!(total, to_read, "planned");
    }
    fn progress(&mut self, p: &Progress) {
        self.bar.set_position(p.files_done as u64);
        let rate = if p.seconds > 0.0 {
            p.tokens_embedded as f64 / p.seconds
        } else {
            0.0
        };
        let failed = if self.failed > 0 {
            format!(", {} failed", self.failed)
        } else {
            String::new()
        };
        self.bar.set_message(format!(
            "{} passages, {:.0} tokens/s{failed}",
            p.chunks_done, rate
        ));
    }
    fn problem(&mut self, path: &str, status: ProblemStatus, reason: &str) {
        if status == ProblemStatus::Failed {
            self.failed += 1;
        }
        tracing::info!(path, ?status, reason, "file not indexed");
    }
    fn note(&mut self, msg: &str) {
        tracing::info!("{msg}");
        self.bar.suspend(|| note(msg));
    }
    fn cancelled(&self) -> bool {
        super::cancelled()
    }
}

#[derive(Serialize)]
pub(super) struct ReportJson<'a> {
    indexed: usize,
    unchanged: usize,
    removed: usize,
    skipped: Vec<PathReason<'a>>,
    failed: Vec<PathReason<'a>>,
    unsupported: usize,
    chunks_written: usize,
    chunks_embedded: usize,
    chunks_reused: usize,
    tokens_embedded: usize,
    embed_seconds: f64,
    seconds: f64,
}

#[derive(Serialize)]
struct PathReason<'a> {
    path: &'a str,
    reason: &'a str,
}

impl<'a> From<&'a RunReport> for ReportJson<'a> {
    fn from(r: &'a RunReport) -> Self {
        let pr = |v: &'a [(String, String)]| {
            v.iter()
                .map(|(p, why)| PathReason {
                    path: p,
                    reason: why,
                })
                .collect()
        };
        ReportJson {
            indexed: r.indexed,
            unchanged: r.unchanged,
            removed: r.removed,
            skipped: pr(&r.skipped),
            failed: pr(&r.failed),
            unsupported: r.unsupported,
            chunks_written: r.chunks_written,
            chunks_embedded: r.chunks_embedded,
            chunks_reused: r.chunks_reused,
            tokens_embedded: r.tokens_embedded,
            embed_seconds: r.embed_seconds,
            seconds: r.seconds,
        }
    }
}

pub(super) fn print_report(r: &RunReport, index_dir: &Path) {
    let rate = if r.embed_seconds > 0.0 {
        format!(
            ", {:.0} tokens/s, {:.1} passages/s",
            r.tokens_embedded as f64 / r.embed_seconds,
            r.chunks_embedded as f64 / r.embed_seconds
        )
    } else {
        String::new()
    };
    println!(
        "indexed {} files into {} in {:.1} s: {} passages ({} embedded, {} reused{rate})",
        r.indexed,
        folio::shown::name(&folio::fsutil::path_key(index_dir)),
        r.seconds,
        r.chunks_written,
        r.chunks_embedded,
        r.chunks_reused
    );
    println!(
        "unchanged {}, removed {}, skipped {}, failed {}, other file types ignored {}",
        r.unchanged,
        r.removed,
        r.skipped.len(),
        r.failed.len(),
        r.unsupported
    );
    for (title, list) in [("skipped", &r.skipped), ("failed", &r.failed)] {
        if !list.is_empty() {
            println!("{title}:");
            for (p, why) in list {
                println!("  {}: {}", folio::shown::name(p), one_line(why));
            }
        }
    }
}

/// When stdout gets colours (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set to something.
    #[default]
    Auto,
    Always,
    Never,
}

/// The output flags, set once by [`set_output`] before any command prints.
static OUTPUT: OnceLock<(ColorWhen, bool)> = OnceLock::new();

pub(super) fn set_output(color: ColorWhen, quiet: bool) {
    let _ = OUTPUT.set((color, quiet));
}

/// Whether `--quiet` silences notes and progress.
pub(super) fn quiet() -> bool {
    OUTPUT.get().is_some_and(|o| o.1)
}

/// The user's explicit choice (`--color always|never`), for the terminal UI.
pub(super) fn color_choice() -> Option<bool> {
    match OUTPUT.get().map(|o| o.0).unwrap_or_default() {
        ColorWhen::Auto => None,
        ColorWhen::Always => Some(true),
        ColorWhen::Never => Some(false),
    }
}

/// Whether stdout takes colours.
pub(super) fn color() -> bool {
    let when = OUTPUT.get().map(|o| o.0).unwrap_or_default();
    wants_color(
        when,
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR"),
    )
}

/// The colour decision: `NO_COLOR` counts only when it is non-empty (no-color.org).
fn wants_color(when: ColorWhen, terminal: bool, no_color: Option<OsString>) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// `s` on one line, whitespace collapsed, safe to print to a terminal.
pub(super) fn one_line(s: &str) -> String {
    folio::shown::line(s)
}

/// Document text made safe for the terminal: newlines and tabs kept, other controls visible.
pub fn terminal_safe(s: &str) -> String {
    folio::shown::text(s)
}

pub(super) fn source_line(p: &Passage) -> String {
    let mut line = folio::shown::name(&display_path(&p.path));
    if let Some(page) = p.page {
        line.push_str(&format!(", page {page}"));
    }
    if !p.heading.is_empty() {
        line.push_str(&format!(" § {}", one_line(&p.heading.join(" > "))));
    }
    line
}

fn display_path(p: &str) -> String {
    if let Some(home) =
        directories::BaseDirs::new().map(|b| b.home_dir().to_string_lossy().into_owned())
        && let Some(rest) = p.strip_prefix(&home)
        && rest.starts_with('/')
    {
        return format!("~{rest}");
    }
    p.to_string()
}

pub(super) fn print_passages(
    out: &mut impl Write,
    idx: &Index,
    query: &str,
    passages: &[Passage],
    color: bool,
) -> Result<()> {
    if passages.is_empty() {
        writeln!(out, "no passages match {query:?}")?;
        return Ok(());
    }
    let terms: std::collections::HashSet<String> = idx.bm25().terms(query).into_iter().collect();
    let (bold, hl, dim, reset) = if color {
        ("\x1b[1m", "\x1b[1;33m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    for (i, p) in passages.iter().enumerate() {
        let page = p.page.map(|n| format!("  p.{n}")).unwrap_or_default();
        let heading = if p.heading.is_empty() {
            String::new()
        } else {
            format!("  § {}", one_line(&p.heading.join(" > ")))
        };
        writeln!(
            out,
            "{bold}{:>2}.{reset} {dim}{:.4}{reset}  {bold}{}{reset}{page}{heading}",
            i + 1,
            p.score,
            folio::shown::name(&display_path(&p.path))
        )?;
        let matches = idx.bm25().matches(&p.text, &terms);
        let mut line = String::from("    ");
        for seg in snippet(&p.text, &matches, 240) {
            if seg.highlight {
                if color {
                    line.push_str(&format!("{hl}{}{reset}", one_line(&seg.text)));
                } else {
                    line.push_str(&format!("[{}]", one_line(&seg.text)));
                }
            } else {
                line.push_str(&terminal_safe(&seg.text));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_follow_the_flag_then_the_terminal_and_a_non_empty_no_color() {
        let set = Some(OsString::from("1"));
        let empty = Some(OsString::new());
        assert!(wants_color(ColorWhen::Always, false, set.clone()));
        assert!(!wants_color(ColorWhen::Never, true, None));
        assert!(wants_color(ColorWhen::Auto, true, None));
        assert!(wants_color(ColorWhen::Auto, true, empty));
        assert!(!wants_color(ColorWhen::Auto, true, set));
        assert!(!wants_color(ColorWhen::Auto, false, None));
    }
}
