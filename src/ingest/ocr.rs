//! Text for scanned PDF pages. A page without a text layer is rendered by poppler's
//! `pdftoppm` and recognised by Tesseract's `tesseract`, each a separate process under a time
//! limit and the extraction workers' memory cap, so that a crash, a hang or a runaway
//! allocation costs only that page. What was recognised is cached per
//! page, keyed by the file's content hash: nothing is recognised twice, not across runs, not
//! for a preview.
//!
//! Both programs come from the system's packages (Debian: `tesseract-ocr`,
//! `tesseract-ocr-eng`, `poppler-utils`); without them, scans stay "no text layer" and
//! `folio status` says how to enable recognition.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// What the packages that provide recognition are called, for messages.
pub const INSTALL_HINT: &str = "install Tesseract and poppler (Debian/Ubuntu: apt install tesseract-ocr tesseract-ocr-eng poppler-utils; macOS: brew install tesseract poppler), then run `folio index` again";

/// The recognition tools' versions (`tesseract 5.3.0, pdftoppm 22.02.0`), or why there are
/// none. Asked once per process.
pub fn tools() -> Result<&'static str, &'static str> {
    static TOOLS: OnceLock<Result<String, String>> = OnceLock::new();
    TOOLS
        .get_or_init(|| {
            let version = |prog: &str, flag: &str| -> Option<String> {
                let out = Command::new(prog)
                    .arg(flag)
                    .stdin(Stdio::null())
                    .output()
                    .ok()?;
                // pdftoppm prints its version on stderr, tesseract on stdout.
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                let line = text
                    .lines()
                    .find(|l| l.to_ascii_lowercase().contains(prog))?;
                Some(line.trim().to_string())
            };
            match (version("tesseract", "--version"), version("pdftoppm", "-v")) {
                (Some(t), Some(p)) => Ok(format!("{t}, {p}")),
                (None, _) => Err("tesseract is not installed".to_string()),
                (_, None) => Err("pdftoppm (poppler) is not installed".to_string()),
            }
        })
        .as_ref()
        .map(String::as_str)
        .map_err(String::as_str)
}

/// Page recognition with its cache.
#[derive(Debug, Clone)]
pub struct Ocr {
    cache: PathBuf,
    /// The longest one page's rendering or recognition may take.
    page_timeout: Duration,
    /// Tesseract's language(s), e.g. `eng` or `eng+deu`.
    languages: String,
}

impl Ocr {
    /// Recognition caching under `cache`, when the tools are installed.
    pub fn new(cache: PathBuf, languages: &str, page_timeout: Duration) -> Option<Ocr> {
        tools().ok()?;
        Some(Ocr {
            cache,
            page_timeout,
            languages: languages.to_string(),
        })
    }

    /// Recognises the pages of the PDF at `path` whose text is empty, in place. `pages` empty
    /// means the file had no text layer at all: every page is recognised. Returns the pages
    /// (1-based) that gained text. A page that fails is left empty (and logged): the rest
    /// still count.
    /// `bytes` are the file's, where the caller already read them.
    pub fn fill(
        &self,
        path: &Path,
        bytes: Option<&[u8]>,
        pages: &mut Vec<String>,
    ) -> Result<Vec<u32>, String> {
        let hash = match bytes {
            Some(b) => hex::encode(Sha256::digest(b)),
            None => hex::encode(Sha256::digest(
                std::fs::read(path).map_err(|e| e.to_string())?,
            )),
        };
        if pages.is_empty() {
            let n = self.page_count(path)?;
            pages.resize(n, String::new());
        }
        let mut filled = Vec::new();
        for (i, text) in pages.iter_mut().enumerate() {
            if !text.trim().is_empty() {
                continue;
            }
            match self.page(path, &hash, i + 1) {
                Ok(t) if !t.trim().is_empty() => {
                    *text = t;
                    filled.push(i as u32 + 1);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(path = %path.display(), page = i + 1, "recognising: {e}"),
            }
        }
        Ok(filled)
    }

    /// The text of one page (1-based), from the cache or recognised now.
    fn page(&self, path: &Path, hash: &str, page: usize) -> Result<String, String> {
        let cached = self.cache.join(hash).join(format!("{page}.txt"));
        if let Ok(t) = std::fs::read_to_string(&cached) {
            return Ok(t);
        }
        let work = scratch_dir()?;
        let result = self.recognise(path, page, &work);
        let _ = std::fs::remove_dir_all(&work);
        let text = result?;
        store(&cached, &text);
        Ok(text)
    }

    fn recognise(&self, path: &Path, page: usize, work: &Path) -> Result<String, String> {
        let n = page.to_string();
        let image = work.join("page");
        let mut render = Command::new("pdftoppm");
        render
            .args([
                "-r",
                "300",
                "-gray",
                "-png",
                "-singlefile",
                "-f",
                &n,
                "-l",
                &n,
            ])
            .arg(path)
            .arg(&image);
        run(render, self.page_timeout)?;
        let png = image.with_extension("png");
        // Keyed by the rendered image too: the same scanned page inside another file (a scan
        // attached to two contracts, a re-saved PDF) is recognised once.
        let by_image = std::fs::read(&png).ok().map(|bytes| {
            self.cache.join("images").join(format!(
                "{}-{}.txt",
                hex::encode(Sha256::digest(&bytes)),
                self.key_languages()
            ))
        });
        if let Some(t) = by_image
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
        {
            return Ok(t);
        }
        let mut read = Command::new("tesseract");
        read.arg(&png).arg("stdout").args(["-l", &self.languages]);
        let text = run(read, self.page_timeout)?;
        if let Some(p) = by_image {
            store(&p, &text);
        }
        Ok(text)
    }

    /// The languages as a file name's part: a setting's text never names another folder.
    fn key_languages(&self) -> String {
        self.languages
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '+' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// The number of pages, from poppler's `pdfinfo`.
    fn page_count(&self, path: &Path) -> Result<usize, String> {
        let mut info = Command::new("pdfinfo");
        info.arg(path);
        let out = run(info, self.page_timeout)?;
        out.lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| "pdfinfo reports no page count".to_string())
    }
}

/// Caches a recognised page atomically: a run stopped halfway leaves no half-written page.
fn store(path: &Path, text: &str) {
    let Some(dir) = path.parent() else { return };
    if crate::fsutil::create_private_dir(dir).is_ok() {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

/// A fresh private folder for one page's image.
fn scratch_dir() -> Result<PathBuf, String> {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "folio-ocr-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    crate::fsutil::create_private_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Runs `cmd` to completion within `limit`, returning its standard output; killed when it
/// takes longer, an error when it fails.
fn run(mut cmd: Command, limit: Duration) -> Result<String, String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: super::pdf::WORKER_MEMORY_BYTES,
                    rlim_max: super::pdf::WORKER_MEMORY_BYTES,
                };
                libc::setrlimit(libc::RLIMIT_AS, &lim);
                Ok(())
            });
        }
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: {e}"))?;
    // Read both pipes while waiting, so that a chatty program never blocks on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{name} took longer than {} s", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let why = String::from_utf8_lossy(&err);
        return Err(format!("{name} failed ({status}): {}", why.trim()));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_or_failing_programs_are_stopped_and_named() {
        let mut sleep = Command::new("sleep");
        sleep.arg("5");
        let e = run(sleep, Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("sleep took longer"), "{e}");
        let e = run(Command::new("false"), Duration::from_secs(5)).unwrap_err();
        assert!(e.starts_with("false failed"), "{e}");
        let mut echo = Command::new("echo");
        echo.arg("page text");
        assert_eq!(run(echo, Duration::from_secs(5)).unwrap(), "page text\n");
        assert!(
            run(
                Command::new("no-such-program-folio"),
                Duration::from_secs(1)
            )
            .is_err()
        );
    }
}
