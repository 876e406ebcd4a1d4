//! The progress of the index run under way, published by the writer in `progress.json` so
//! that readers in other processes (`folio ask` beside a running `folio watch`) can say that
//! an answer may be incomplete. Best effort: a missing or stale file means no run.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

const FILE: &str = "progress.json";

/// How far a run has got: files done of the files it covers (0 of 0 while it scans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indexing {
    pub done: usize,
    pub total: usize,
}

impl Indexing {
    /// The line shown beside an answer given while indexing runs.
    pub fn note(&self) -> String {
        if self.total == 0 {
            "still indexing: the folders are being scanned; the answer may be incomplete".into()
        } else {
            format!(
                "still indexing: {} of {} files done; the answer may be incomplete",
                self.done, self.total
            )
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Published {
    pid: u32,
    #[serde(flatten)]
    progress: Indexing,
}

/// Publishes `progress` for the index in `dir` (replaced atomically).
pub fn write(dir: &Path, progress: Indexing) {
    let body = Published {
        pid: std::process::id(),
        progress,
    };
    let tmp = dir.join(format!(".{FILE}.tmp{}", std::process::id()));
    // No fsync: after a crash a stale file names a dead writer and is ignored.
    let done = serde_json::to_vec(&body)
        .map_err(std::io::Error::other)
        .and_then(|b| {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&b)
        })
        .and_then(|()| fs::rename(&tmp, dir.join(FILE)));
    if let Err(e) = done {
        tracing::warn!(error = %e, "could not publish indexing progress");
    }
}

/// Withdraws the published progress: the run is over.
pub fn clear(dir: &Path) {
    let _ = fs::remove_file(dir.join(FILE));
}

/// The progress of a run under way on the index in `dir`, if its writer is alive.
pub fn read(dir: &Path) -> Option<Indexing> {
    let bytes = fs::read(dir.join(FILE)).ok()?;
    let p: Published = serde_json::from_slice(&bytes).ok()?;
    alive(p.pid).then_some(p.progress)
}

fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only asks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_progress_is_read_back_until_cleared() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(read(t.path()), None);
        write(t.path(), Indexing { done: 1, total: 2 });
        assert_eq!(read(t.path()), Some(Indexing { done: 1, total: 2 }));
        clear(t.path());
        assert_eq!(read(t.path()), None);
    }

    #[test]
    fn a_dead_writers_progress_is_ignored() {
        let t = tempfile::tempdir().unwrap();
        fs::write(
            t.path().join(FILE),
            r#"{"pid": 4194304, "done": 1, "total": 2}"#,
        )
        .unwrap();
        assert_eq!(read(t.path()), None);
    }
}
