//! Listing the files of a folder that folio should read.
//!
//! The walk honours `.gitignore`, `.ignore` and `.folioignore` files (in and outside git
//! repositories), skips hidden files and folders, never descends into a folio index (a folder
//! holding [`crate::doc::INDEX_MARKER`]), and sorts what it finds into documents, files skipped for a
//! reason worth showing (too large), and files of types folio does not read (only counted).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Kind;

/// A document found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Absolute path: the root's canonical path joined with the names found under it (a file
    /// reached through a link keeps the link's path).
    pub path: PathBuf,
    pub kind: Kind,
    pub size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    pub mtime: i64,
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct WalkResult {
    pub files: Vec<FoundFile>,
    /// Files not read, with the reason (too large, unreadable metadata, ...).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files of types folio does not read.
    pub unsupported: usize,
}

pub use crate::fsutil::mtime_nanos;

/// The canonical form of a root folder given by the user; the reason when it is missing,
/// unreadable or not a folder.
pub fn canonical_folder(root: &Path) -> Result<PathBuf, crate::Cause> {
    let c = std::fs::canonicalize(root)?;
    if !c.is_dir() {
        return Err("not a folder".into());
    }
    Ok(c)
}

/// Canonical roots with repeats removed and every root inside another one folded into it, in
/// order; and the folded ones, each with the root that holds it. Walking `d` and `d/sub` both
/// would read `d/sub`'s files twice.
pub fn fold_roots(roots: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<(PathBuf, PathBuf)>) {
    let mut kept: Vec<PathBuf> = Vec::new();
    let mut folded = Vec::new();
    for r in &roots {
        if kept.contains(r) {
            continue;
        }
        // `Path::starts_with` compares whole components: `/a/bc` is not inside `/a/b`.
        match roots.iter().find(|o| *o != r && r.starts_with(o)) {
            Some(outer) => {
                if !folded.iter().any(|(f, _)| f == r) {
                    folded.push((r.clone(), outer.clone()));
                }
            }
            None => kept.push(r.clone()),
        }
    }
    (kept, folded)
}

/// How a walk treats sizes and links.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Files larger than this are skipped (reported).
    pub max_bytes: u64,
    /// Follow links whose target lies outside `roots`. Links inside them are always followed.
    pub follow_links: bool,
    /// Every root of the run (canonical).
    pub roots: Vec<PathBuf>,
}

/// Where a link found at `link` may be followed: its canonical target when that lies inside
/// the roots (or links may go anywhere), `None` when it must not be (or is dangling).
fn link_target(link: &Path, opts: &WalkOptions) -> Option<PathBuf> {
    let target = std::fs::canonicalize(link).ok()?;
    (opts.follow_links || opts.roots.iter().any(|r| target.starts_with(r))).then_some(target)
}

/// Walks `root` (canonical) and lists its documents. Links are followed as [`WalkOptions`]
/// says, and a file reached through a link keeps the link's path: that is the name the person
/// sees in the folder, and removing the link removes its passages.
pub fn walk(root: &Path, opts: &WalkOptions) -> WalkResult {
    walk_filtered(root, opts, |_, _| true)
}

/// Like [`walk`], but lists only what lies at or below `targets` (paths under `root`). The walk
/// still starts at `root` and descends only along the targets' ancestors, so that hidden folders,
/// ignore files and index folders above a target exclude it exactly as a full walk would.
pub fn walk_targets(root: &Path, targets: &[PathBuf], opts: &WalkOptions) -> WalkResult {
    let wanted: HashSet<PathBuf> = targets.iter().cloned().collect();
    let mut ancestors: HashSet<PathBuf> = HashSet::new();
    for t in targets {
        for a in t.ancestors().skip(1) {
            if !a.starts_with(root) || !ancestors.insert(a.to_path_buf()) {
                break;
            }
        }
    }
    walk_filtered(root, opts, move |path, is_dir| {
        (is_dir && ancestors.contains(path)) || path.ancestors().any(|a| wanted.contains(a))
    })
}

/// The walk itself; `keep(path, is_dir)` prunes entries (and, for folders, all below them).
fn walk_filtered(
    root: &Path,
    opts: &WalkOptions,
    keep: impl Fn(&Path, bool) -> bool + Send + Sync + 'static,
) -> WalkResult {
    let max_bytes = opts.max_bytes;
    let mut result = WalkResult::default();
    let link_opts = opts.clone();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .parents(true)
        .ignore(true)
        .git_ignore(true)
        .git_global(true)
        .git_exclude(true)
        // Users' folders are rarely git repositories; their .gitignore files still mean "not this".
        .require_git(false)
        .follow_links(true)
        .add_custom_ignore_filename(".folioignore")
        .filter_entry(move |e| {
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            // A link out of the roots (`notes.txt -> ~/.ssh/id_ed25519`) is not followed
            // unless the settings say so.
            if e.path_is_symlink() && e.depth() > 0 && link_target(e.path(), &link_opts).is_none() {
                return false;
            }
            (e.depth() == 0 || keep(e.path(), is_dir))
                && !(is_dir && e.path().join(crate::doc::INDEX_MARKER).exists())
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                // Permission denied, a symlink loop, a vanished folder: report and go on.
                let path = error_path(&err).unwrap_or_else(|| root.to_path_buf());
                result.skipped.push((path, error_reason(&err)));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        // Through a link, the format is the target's: a link's name says nothing of it.
        let kind = if entry.path_is_symlink() {
            link_target(entry.path(), opts).and_then(|t| Kind::of(&t))
        } else {
            Kind::of(entry.path())
        };
        let Some(kind) = kind else {
            result.unsupported += 1;
            continue;
        };
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                result
                    .skipped
                    .push((entry.path().to_path_buf(), error_reason(&e)));
                continue;
            }
        };
        if meta.len() > max_bytes {
            result.skipped.push((
                entry.path().to_path_buf(),
                format!(
                    "larger than the {} limit ({})",
                    crate::fsutil::human_bytes(max_bytes),
                    crate::fsutil::human_bytes(meta.len())
                ),
            ));
            continue;
        }
        result.files.push(FoundFile {
            path: entry.path().to_path_buf(),
            kind,
            size: meta.len(),
            mtime: mtime_nanos(&meta),
        });
    }
    result.files.sort_by(|a, b| a.path.cmp(&b.path));
    result.files.dedup_by(|a, b| a.path == b.path);
    result
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } => error_path(err),
        ignore::Error::WithLineNumber { err, .. } => error_path(err),
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

fn error_reason(err: &dyn std::fmt::Display) -> String {
    let s = err.to_string();
    // ignore's messages repeat the path first; the path is shown beside the reason already.
    match s.rsplit_once(": ") {
        Some((_, reason)) if s.contains('/') => reason.to_string(),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max_bytes: u64) -> WalkOptions {
        WalkOptions {
            max_bytes,
            ..WalkOptions::default()
        }
    }

    #[test]
    fn roots_inside_roots_are_folded() {
        let p = |s: &str| PathBuf::from(s);
        let (kept, folded) =
            fold_roots(vec![p("/d/sub"), p("/d"), p("/d"), p("/e"), p("/d/sub/x")]);
        assert_eq!(kept, vec![p("/d"), p("/e")]);
        assert_eq!(
            folded,
            vec![(p("/d/sub"), p("/d")), (p("/d/sub/x"), p("/d/sub"))]
        );
        let (kept, folded) = fold_roots(vec![p("/a/b"), p("/a/bc")]);
        assert_eq!(kept, vec![p("/a/b"), p("/a/bc")]);
        assert!(folded.is_empty());
    }
    use std::fs;

    #[test]
    fn honours_ignore_files_hidden_size_and_index_dirs() {
        let t = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(t.path()).unwrap();
        fs::write(root.join("a.md"), "# a").unwrap();
        fs::write(root.join("b.txt"), "b").unwrap();
        fs::write(root.join("c.png"), "c").unwrap();
        fs::write(root.join(".hidden.md"), "h").unwrap();
        fs::write(root.join("big.txt"), "x".repeat(2000)).unwrap();
        fs::write(root.join(".gitignore"), "ignored.md\n").unwrap();
        fs::write(root.join("ignored.md"), "i").unwrap();
        fs::write(root.join(".folioignore"), "private/\n").unwrap();
        fs::create_dir(root.join("private")).unwrap();
        fs::write(root.join("private/secret.md"), "s").unwrap();
        fs::create_dir(root.join("idx")).unwrap();
        fs::write(root.join("idx").join(crate::doc::INDEX_MARKER), "{}").unwrap();
        fs::write(root.join("idx/notes.md"), "n").unwrap();
        fs::create_dir(root.join("sub")).unwrap();
        fs::write(root.join("sub/page.HTML"), "<p>x</p>").unwrap();

        let r = walk(&root, &limit(1000));
        let names: Vec<_> = r
            .files
            .iter()
            .map(|f| {
                f.path
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["a.md", "b.txt", "sub/page.HTML"]);
        assert_eq!(r.files[2].kind, Kind::Html);
        assert_eq!(r.unsupported, 1);
        assert_eq!(r.skipped.len(), 1);
        assert!(r.skipped[0].0.ends_with("big.txt"));
        assert!(r.skipped[0].1.contains("limit"));

        // A targeted walk sees the same rules from above: ignored, hidden and index folders
        // exclude their contents even when named directly.
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".git/x.md"), "g").unwrap();
        let targets = [
            root.join("a.md"),
            root.join("ignored.md"),
            root.join("private/secret.md"),
            root.join("idx/notes.md"),
            root.join(".git/x.md"),
            root.join("sub"),
            root.join("gone.md"),
        ];
        let t = walk_targets(&root, &targets, &limit(1000));
        let names: Vec<_> = t
            .files
            .iter()
            .map(|f| f.path.strip_prefix(&root).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            vec![PathBuf::from("a.md"), PathBuf::from("sub/page.HTML")]
        );
        assert!(t.skipped.is_empty());
    }
}
