//! `folio watch`: index folders, then follow them until stopped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;

use folio::config::Settings;
use folio::index::Index;
use folio::pipeline::{IndexOptions, Observer};

use super::render::Bar;
use super::{cancelled, catch_interrupts, load_embedder, note};

#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Folders to follow (default: the index's remembered roots).
    pub dirs: Vec<PathBuf>,
    /// Look for changes every SECS seconds instead of waiting for the system's events (for
    /// network and FUSE folders, which send none).
    #[arg(long, value_name = "SECS")]
    pub poll: Option<f64>,
}

pub(super) fn run(s: &Settings, a: WatchArgs) -> Result<ExitCode> {
    use folio::watch::{WatchEvent, WatchOptions, Watcher};
    let embedder = Arc::new(load_embedder(s)?);
    let opts = IndexOptions::from_settings(s, &embedder, false);
    let idx = Index::open_writer(&s.index_dir, embedder.info(), &opts.chunking(), false)?;
    let roots = folio::setup::roots(&a.dirs, &idx, "watch")?;
    let pdf = folio::setup::pdf_extractor(s);
    let mut wopts = WatchOptions::new(roots, opts);
    if let Some(secs) = a.poll {
        match Duration::try_from_secs_f64(secs) {
            Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(86_400) => wopts.poll = Some(d),
            _ => bail!("--poll needs a number of seconds above 0 and at most a day (86400)"),
        }
    }
    catch_interrupts(true)?;
    let (watcher, events) = Watcher::start(idx, embedder, pdf, wopts)?;
    // A progress bar only while a scan or change set is being applied: an idle watcher
    // draws nothing (and wakes for nothing).
    let mut bar: Option<Bar> = None;
    let say = |bar: &Option<Bar>, msg: &str| match bar {
        Some(b) => b.bar.suspend(|| note(msg)),
        None => note(msg),
    };
    let mut totals = (0usize, 0usize, 0usize);
    let mut summarized = totals;
    let mut last_summary = Instant::now();
    let mut stopping = false;
    let stopped_error = loop {
        if cancelled() && !stopping {
            stopping = true;
            if let Some(b) = bar.take() {
                b.bar.finish_and_clear();
            }
            note("stopping (the batch in progress is committed first)");
            watcher.signal_stop();
        }
        // Every ten minutes with changes since the last one, a line of totals.
        if last_summary.elapsed() >= Duration::from_secs(600) && totals != summarized {
            last_summary = Instant::now();
            summarized = totals;
            say(&bar, &summary_text(s, totals));
        }
        // Wakes once a second when idle, to see Ctrl-C (the signal handler only sets a flag).
        let event = match events.recv_timeout(Duration::from_secs(1)) {
            Ok(e) => e,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break None,
        };
        match event {
            WatchEvent::Scanning { reason } => say(&bar, &reason),
            WatchEvent::Progress(p) => {
                let b = bar.get_or_insert_with(|| Bar::new(true));
                b.bar.set_length(p.files_total as u64);
                b.progress(&p);
            }
            WatchEvent::Problem {
                path,
                status,
                reason,
            } => say(
                &bar,
                // Only the status is lower-cased: paths are case-sensitive.
                &format!(
                    "{}: {}: {}",
                    format!("{status:?}").to_lowercase(),
                    folio::shown::name(&path),
                    folio::shown::line(&reason)
                ),
            ),
            WatchEvent::Applied { full, report } => {
                if let Some(b) = bar.take() {
                    b.bar.finish_and_clear();
                }
                totals.0 += report.indexed;
                totals.1 += report.removed;
                totals.2 += report.failed.len();
                if full {
                    note(&format!(
                        "scan done in {:.1} s: {} indexed, {} unchanged, {} removed, {} skipped, {} failed ({} passages embedded, {} reused)",
                        report.seconds,
                        report.indexed,
                        report.unchanged,
                        report.removed,
                        report.skipped.len(),
                        report.failed.len(),
                        report.chunks_embedded,
                        report.chunks_reused
                    ));
                } else {
                    for p in &report.indexed_paths {
                        note(&format!("indexed {}", folio::shown::name(p)));
                    }
                    for p in &report.removed_paths {
                        note(&format!("removed {}", folio::shown::name(p)));
                    }
                    for (p, why) in &report.failed {
                        note(&format!(
                            "failed {}: {}",
                            folio::shown::name(p),
                            folio::shown::line(why)
                        ));
                    }
                }
            }
            WatchEvent::Watching { roots, polling } => say(
                &bar,
                &format!(
                    "watching {}{} (Ctrl-C stops)",
                    roots.join(", "),
                    if polling { ", polling" } else { "" }
                ),
            ),
            WatchEvent::Notice(m) => say(&bar, &m),
            WatchEvent::Stopped { error } => break error,
        }
    };
    if let Some(b) = bar.take() {
        b.bar.finish_and_clear();
    }
    let result = watcher.stop();
    summary_line(s, totals);
    if let Some(e) = stopped_error {
        bail!("the watcher stopped: {e}");
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

fn summary_line(s: &Settings, totals: (usize, usize, usize)) {
    note(&summary_text(s, totals));
}

fn summary_text(s: &Settings, totals: (usize, usize, usize)) -> String {
    let session = format!(
        "this session: {} indexed, {} removed, {} failed",
        totals.0, totals.1, totals.2
    );
    match folio::index::read_manifest(&s.index_dir) {
        Ok(m) => format!(
            "{} files, {} passages in the index; {session}",
            m.files.len(),
            m.chunk_count()
        ),
        Err(_) => session,
    }
}
