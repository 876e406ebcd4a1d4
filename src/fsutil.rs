//! Small filesystem helpers shared by the index, the model cache and the manifest: owner-only
//! directories, atomic file replacement, the reversible text form of file names (path keys),
//! process memory readings for progress reports, and percentiles of timings (for status
//! lines and benchmarks).

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// First of the 256 code points (Supplementary Private Use Area-B) that stand for single bytes
/// in a path key: byte `b` of a file name that is not valid UTF-8 becomes `KEY_BYTE + b`.
const KEY_BYTE: u32 = 0x10_FF00;

/// The text under which the index stores a path. Unix file names are bytes, not UTF-8; a lossy
/// conversion would let two files share one key and lose the way back to the file. Valid UTF-8
/// stays as it is; every other byte (and, to keep the mapping one-to-one, every byte of a
/// literal character in the escape range) becomes one escape character. [`key_path`] inverts it.
pub fn path_key(path: &Path) -> String {
    let bytes = path.as_os_str().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let escape = |out: &mut String, b: u8| {
        out.push(char::from_u32(KEY_BYTE + u32::from(b)).unwrap_or(char::REPLACEMENT_CHARACTER));
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if u32::from(c) >= KEY_BYTE {
                let mut buf = [0; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    escape(&mut out, b);
                }
            } else {
                out.push(c);
            }
        }
        for &b in chunk.invalid() {
            escape(&mut out, b);
        }
    }
    out
}

/// The path a key from [`path_key`] stands for.
pub fn key_path(key: &str) -> PathBuf {
    let mut bytes = Vec::with_capacity(key.len());
    for c in key.chars() {
        match u32::from(c).checked_sub(KEY_BYTE) {
            Some(b) => bytes.push(b as u8),
            None => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// A path key for people: escaped bytes shown as `\xNN`.
pub fn show_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match u32::from(c).checked_sub(KEY_BYTE) {
            Some(b) => out.push_str(&format!("\\x{b:02X}")),
            None => out.push(c),
        }
    }
    out
}

/// [`path_key`] of a file name or other OS string.
pub fn os_key(s: &OsStr) -> String {
    path_key(Path::new(s))
}

/// Creates `dir` and its missing parents. Directories this creates are readable by the owner
/// only: an index holds the text of private documents.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Makes `dir` and everything under it private to its owner (directories 0700, files 0600),
/// whatever modes a copy, an older folio or a loose umask left. `dir` may be a link (an index
/// folder the user keeps elsewhere): the folder it names is made private. Links inside it are
/// left alone.
pub fn make_private(dir: &Path) -> io::Result<()> {
    make_private_tree(&fs::canonicalize(dir)?)
}

fn make_private_tree(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(dir)?;
    let want = if meta.is_dir() { 0o700 } else { 0o600 };
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.permissions().mode() & 0o7777 != want {
        fs::set_permissions(dir, fs::Permissions::from_mode(want))?;
    }
    if meta.is_dir() {
        for e in fs::read_dir(dir)? {
            match make_private_tree(&e?.path()) {
                // Removed meanwhile (a store's temporary file): nothing left to protect.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                r => r?,
            }
        }
    }
    Ok(())
}

/// Opens `path` for appending, creating it, readable by its owner only (an existing file is
/// made so too).
pub fn open_private_append(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    if f.metadata()?.permissions().mode() & 0o777 != 0o600 {
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Replaces `path` with `bytes` so that a reader (or a crash) sees either the old or the new
/// contents, never a torn file: write a sibling, fsync it, rename over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Ok(d) = fs::File::open(dir) {
        // Not every filesystem supports syncing a directory; the rename itself already happened.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), if it can be read.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Total size in bytes of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += dir_size(&e.path()),
            Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => {}
        }
    }
    total
}

/// Formats a byte count for people: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Seconds since the Unix epoch (0 on a clock set before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Modification time of `meta` in nanoseconds since the epoch (0 if unknown).
pub fn mtime_nanos(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The percentile `p` (0..=100) of `values`, by nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dirs_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        create_private_dir(&d).unwrap();
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn atomic_write_replaces() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("m.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(t.path()).unwrap().count(), 1);
    }

    #[test]
    fn path_keys_keep_every_byte() {
        let name = |b: &[u8]| PathBuf::from(std::ffi::OsString::from_vec(b.to_vec()));
        let a = name(b"/d/caf\xe9.txt");
        let b = name(b"/d/caf\xe8.txt");
        assert_ne!(path_key(&a), path_key(&b));
        assert_eq!(key_path(&path_key(&a)), a);
        assert_eq!(show_key(&path_key(&a)), "/d/caf\\xE9.txt");
        assert_eq!(path_key(Path::new("/d/café.txt")), "/d/café.txt");
        // A literal escape character is escaped itself, so it cannot pose as a raw byte.
        let literal = Path::new("/d/\u{10FFE9}");
        assert_ne!(path_key(literal), path_key(&name(b"/d/\xe9")));
        assert_eq!(key_path(&path_key(literal)), literal);
    }

    proptest::proptest! {
        #[test]
        fn path_keys_round_trip(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..40)) {
            let p = PathBuf::from(std::ffi::OsString::from_vec(bytes));
            proptest::prop_assert_eq!(key_path(&path_key(&p)), p);
        }
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
