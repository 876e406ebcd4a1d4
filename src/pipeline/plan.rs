//! The planning step of a run: given the manifest and what the walk found, decide for every
//! path whether it is unchanged, a known problem to report again, gone from the folder, or to be
//! read. Pure: it touches neither the disk nor the index, so every rule is unit-tested here.

use std::collections::{HashMap, HashSet};

use super::{Candidate, Found};
use crate::index::Batch;
use crate::index::manifest::{Folders, Manifest, Problem, ProblemStatus};
use crate::ingest::EXTRACTORS;
use crate::ingest::extract::ExtractError;

/// The settings of a run that decide what is read again.
pub(super) struct Rules<'a> {
    /// Files and folders looked at in full: anything the manifest has under them that the walk
    /// did not find is gone.
    pub rescanned: &'a [String],
    /// Paths named by change events: read even when their size and time are unchanged (a chmod
    /// changes neither; `cp -p` keeps both), and retry what failed before.
    pub named: bool,
    /// The chunking settings changed: every indexed file is cut again.
    pub rechunk: bool,
    /// Read files that failed before even when they are unchanged.
    pub retry_failed: bool,
    /// Scanned pages are recognised now: a scan skipped for want of recognition is read again
    /// (Tesseract may have been installed since), without `--retry-failed`.
    pub recognises_scans: bool,
}

/// What a run will do, before it reads a byte.
#[derive(Default)]
pub(super) struct Plan {
    /// Files to read, hash, extract and chunk, in walk order.
    pub to_read: Vec<Candidate>,
    /// The hash the manifest has for each file to read that it knows: equal bytes are only
    /// touched, not re-embedded.
    pub known_hashes: HashMap<String, String>,
    /// Files whose size and time match the manifest: not even read.
    pub unchanged: usize,
    /// Every path the walk skipped, reported on each run.
    pub walk_problems: Vec<(String, Problem)>,
    /// Files that were skipped or failed before and have not changed: reported, not retried
    /// (a PDF that timed out would cost its time limit on every run).
    pub known_problems: Vec<(String, Problem)>,
    /// Committed after the new content: paths gone from rescanned folders, and walk problems
    /// that are new or differ from the manifest's. Removals wait so that a renamed file finds
    /// its old vectors to reuse.
    pub gone: Batch,
    /// The paths in `gone.remove` that had passages.
    pub removed_paths: Vec<String>,
}

pub(super) fn plan(manifest: &Manifest, found: Found, rules: &Rules) -> Plan {
    let Found {
        candidates,
        problems: walk_problems,
    } = found;
    let mut plan = Plan::default();
    let seen: HashSet<&str> = candidates.iter().map(|c| c.path.as_str()).collect();
    let walk_skipped: HashSet<&str> = walk_problems.iter().map(|(p, _)| p.as_str()).collect();
    for (p, problem) in &walk_problems {
        if manifest.problems.get(p) != Some(problem) {
            plan.gone.problems.push((p.clone(), problem.clone()));
        }
    }

    let rescanned = Folders::new(rules.rescanned);
    let mut remove: Vec<String> = manifest
        .files
        .keys()
        .chain(manifest.problems.keys())
        .filter(|p| {
            rescanned.contain(p) && !seen.contains(p.as_str()) && !walk_skipped.contains(p.as_str())
        })
        .cloned()
        .collect();
    remove.sort();
    remove.dedup();
    plan.removed_paths = remove
        .iter()
        .filter(|p| manifest.files.contains_key(*p))
        .cloned()
        .collect();
    plan.gone.remove = remove;

    for c in candidates {
        if let Some(rec) = manifest.files.get(&c.path)
            && !rules.rechunk
            && !rules.named
            && rec.size == c.size
            && rec.mtime == c.mtime
        {
            plan.unchanged += 1;
            continue;
        }
        if let Some(p) = manifest.problems.get(&c.path)
            && !rules.named
            && p.size == c.size
            && p.mtime == c.mtime
            // A failure is retried when asked, or once the extractors have changed; a scan once
            // it can be recognised.
            && !(p.status == ProblemStatus::Failed
                && (rules.retry_failed || p.extractors != EXTRACTORS))
            && !(rules.recognises_scans && p.reason == ExtractError::NoTextLayer.to_string())
        {
            plan.known_problems.push((c.path.clone(), p.clone()));
            continue;
        }
        if let Some(rec) = manifest.files.get(&c.path) {
            plan.known_hashes.insert(c.path.clone(), rec.hash.clone());
        }
        plan.to_read.push(c);
    }
    plan.walk_problems = walk_problems;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Kind;
    use crate::index::manifest::FileRecord;
    use crate::pipeline::Content;

    const PATH: &str = "/r/sub/a.md";

    fn candidate(path: &str, size: u64, mtime: i64) -> Candidate {
        Candidate {
            path: path.into(),
            kind: Kind::Markdown,
            size,
            mtime,
            content: Content::Disk(path.into()),
        }
    }

    fn record(size: u64, mtime: i64) -> FileRecord {
        FileRecord {
            kind: Kind::Markdown,
            size,
            mtime,
            hash: "h0".into(),
            chunks: 2,
            extractor: None,
            recognised: Vec::new(),
        }
    }

    fn problem(status: ProblemStatus, size: u64, mtime: i64, extractors: &str) -> Problem {
        Problem {
            status,
            reason: format!("{status:?}"),
            size,
            mtime,
            extractors: extractors.into(),
        }
    }

    /// What the manifest says of the path before the run.
    #[derive(Debug, Clone, Copy)]
    enum Before {
        Absent,
        File {
            same: bool,
        },
        Skipped {
            same: bool,
        },
        Failed {
            same: bool,
            current_extractors: bool,
        },
    }

    /// What the walk reports for the path.
    #[derive(Debug, Clone, Copy)]
    enum Walked {
        Absent,
        File,
        /// Skipped by the walk with exactly the problem the manifest has.
        SameProblem,
        NewProblem,
    }

    /// Where the plan puts the path.
    #[derive(Debug, PartialEq)]
    enum Fate {
        Nothing,
        Unchanged,
        Read { known_hash: bool },
        Reported,
        Removed { had_passages: bool },
        WalkProblem { recorded: bool },
    }

    fn manifest_of(before: Before) -> Manifest {
        let mut m = Manifest::default();
        match before {
            Before::Absent => {}
            Before::File { same } => {
                let (s, t) = stamp(same);
                m.files.insert(PATH.into(), record(s, t));
            }
            Before::Skipped { same } => {
                let (s, t) = stamp(same);
                m.problems.insert(
                    PATH.into(),
                    problem(ProblemStatus::Skipped, s, t, EXTRACTORS),
                );
            }
            Before::Failed {
                same,
                current_extractors,
            } => {
                let (s, t) = stamp(same);
                let x = if current_extractors { EXTRACTORS } else { "" };
                m.problems
                    .insert(PATH.into(), problem(ProblemStatus::Failed, s, t, x));
            }
        }
        m
    }

    /// Size and time of the manifest's entry: the walk always sees (10, 100).
    fn stamp(same: bool) -> (u64, i64) {
        if same { (10, 100) } else { (10, 99) }
    }

    fn found_of(walked: Walked, manifest: &Manifest) -> Found {
        let mut f = Found::default();
        match walked {
            Walked::Absent => {}
            Walked::File => f.candidates.push(candidate(PATH, 10, 100)),
            Walked::SameProblem => {
                let p = manifest
                    .problems
                    .get(PATH)
                    .cloned()
                    .unwrap_or_else(|| problem(ProblemStatus::Skipped, 10, 100, EXTRACTORS));
                f.problems.push((PATH.into(), p));
            }
            Walked::NewProblem => f.problems.push((
                PATH.into(),
                Problem {
                    reason: "larger than the limit".into(),
                    ..problem(ProblemStatus::Skipped, 10, 100, EXTRACTORS)
                },
            )),
        }
        f
    }

    fn fate_in(plan: &Plan) -> Fate {
        let read = plan.to_read.iter().filter(|c| c.path == PATH).count();
        let removed = plan.gone.remove.iter().filter(|p| *p == PATH).count();
        let reported = plan
            .known_problems
            .iter()
            .filter(|(p, _)| p == PATH)
            .count();
        let walk = plan.walk_problems.iter().filter(|(p, _)| p == PATH).count();
        let recorded = plan.gone.problems.iter().filter(|(p, _)| p == PATH).count();
        let total = read + removed + reported + walk + plan.unchanged;
        assert!(total <= 1, "a path has one fate, not {total}");
        assert!(recorded <= walk);
        if read == 1 {
            Fate::Read {
                known_hash: plan.known_hashes.contains_key(PATH),
            }
        } else if removed == 1 {
            Fate::Removed {
                had_passages: plan.removed_paths.iter().any(|p| p == PATH),
            }
        } else if reported == 1 {
            Fate::Reported
        } else if walk == 1 {
            Fate::WalkProblem {
                recorded: recorded == 1,
            }
        } else if plan.unchanged == 1 {
            Fate::Unchanged
        } else {
            Fate::Nothing
        }
    }

    /// The rules of a run as a decision table, written out case by case.
    fn expected(before: Before, walked: Walked, rescanned: bool, rules: &Rules) -> Fate {
        let had_passages = matches!(before, Before::File { .. });
        match walked {
            Walked::Absent => match before {
                Before::Absent => Fate::Nothing,
                _ if rescanned => Fate::Removed { had_passages },
                _ => Fate::Nothing,
            },
            Walked::SameProblem => Fate::WalkProblem {
                // A manifest that already has this very problem needs no write.
                recorded: matches!(before, Before::Absent | Before::File { .. }),
            },
            Walked::NewProblem => Fate::WalkProblem { recorded: true },
            Walked::File => match before {
                Before::Absent => Fate::Read { known_hash: false },
                Before::File { same: true } if !rules.named && !rules.rechunk => Fate::Unchanged,
                Before::File { .. } => Fate::Read { known_hash: true },
                Before::Skipped { same: true } if !rules.named => Fate::Reported,
                Before::Failed {
                    same: true,
                    current_extractors: true,
                } if !rules.named && !rules.retry_failed => Fate::Reported,
                Before::Skipped { .. } | Before::Failed { .. } => Fate::Read { known_hash: false },
            },
        }
    }

    #[test]
    fn every_combination_of_manifest_walk_and_rules_is_planned_as_the_table_says() {
        let befores = [
            Before::Absent,
            Before::File { same: true },
            Before::File { same: false },
            Before::Skipped { same: true },
            Before::Skipped { same: false },
            Before::Failed {
                same: true,
                current_extractors: true,
            },
            Before::Failed {
                same: true,
                current_extractors: false,
            },
            Before::Failed {
                same: false,
                current_extractors: true,
            },
        ];
        let walks = [
            Walked::Absent,
            Walked::File,
            Walked::SameProblem,
            Walked::NewProblem,
        ];
        let mut cases = 0;
        for before in befores {
            for walked in walks {
                for bits in 0..16u8 {
                    let rescanned_folder = if bits & 1 != 0 { "/r" } else { "/elsewhere" };
                    let folders = [rescanned_folder.to_string()];
                    let rules = Rules {
                        rescanned: &folders,
                        named: bits & 2 != 0,
                        rechunk: bits & 4 != 0,
                        retry_failed: bits & 8 != 0,
                        recognises_scans: false,
                    };
                    let manifest = manifest_of(before);
                    let found = found_of(walked, &manifest);
                    let plan = plan(&manifest, found, &rules);
                    assert_eq!(
                        fate_in(&plan),
                        expected(before, walked, bits & 1 != 0, &rules),
                        "{before:?}, walk {walked:?}, rescanned {}, named {}, rechunk {}, retry {}",
                        bits & 1 != 0,
                        rules.named,
                        rules.rechunk,
                        rules.retry_failed
                    );
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 8 * 4 * 16);
    }

    #[test]
    fn scans_waiting_for_recognition_are_read_once_it_is_there() {
        let mut m = Manifest::default();
        let waiting = Problem {
            reason: ExtractError::NoTextLayer.to_string(),
            ..problem(ProblemStatus::Skipped, 10, 100, EXTRACTORS)
        };
        let empty = Problem {
            reason: ExtractError::NothingRecognised.to_string(),
            ..waiting.clone()
        };
        m.problems.insert("/r/scan.pdf".into(), waiting);
        m.problems.insert("/r/blank.pdf".into(), empty);
        let folders = ["/r".to_string()];
        for recognises_scans in [false, true] {
            let found = Found {
                candidates: vec![
                    candidate("/r/scan.pdf", 10, 100),
                    candidate("/r/blank.pdf", 10, 100),
                ],
                problems: Vec::new(),
            };
            let rules = Rules {
                rescanned: &folders,
                named: false,
                rechunk: false,
                retry_failed: false,
                recognises_scans,
            };
            let plan = plan(&m, found, &rules);
            let read: Vec<_> = plan.to_read.iter().map(|c| c.path.as_str()).collect();
            // A scan where recognition found nothing is not read again on every run.
            let expected: &[&str] = if recognises_scans {
                &["/r/scan.pdf"]
            } else {
                &[]
            };
            assert_eq!(read, expected);
        }
    }

    #[test]
    fn removal_follows_folder_boundaries_and_lists_each_path_once() {
        let mut m = Manifest::default();
        for p in ["/r/a.md", "/r/ab/c.md", "/rx/d.md", "/r/kept.md"] {
            m.files.insert(p.into(), record(10, 100));
        }
        // A path that is both a file and a problem (an old manifest) is removed once.
        m.problems.insert(
            "/r/a.md".into(),
            problem(ProblemStatus::Failed, 1, 1, EXTRACTORS),
        );
        m.problems.insert(
            "/r/broken.pdf".into(),
            problem(ProblemStatus::Failed, 1, 1, EXTRACTORS),
        );
        let found = Found {
            candidates: vec![candidate("/r/kept.md", 10, 100)],
            problems: Vec::new(),
        };
        let folders = ["/r".to_string()];
        let rules = Rules {
            rescanned: &folders,
            named: false,
            rechunk: false,
            retry_failed: false,
            recognises_scans: false,
        };
        let plan = plan(&m, found, &rules);
        assert_eq!(
            plan.gone.remove,
            ["/r/a.md", "/r/ab/c.md", "/r/broken.pdf"],
            "/rx is not below /r"
        );
        assert_eq!(plan.removed_paths, ["/r/a.md", "/r/ab/c.md"]);
        assert_eq!(plan.unchanged, 1);
        assert!(plan.to_read.is_empty());
    }

    #[test]
    fn a_named_folder_rescans_only_below_it_and_candidates_keep_walk_order() {
        let mut m = Manifest::default();
        m.files.insert("/r/x/old.md".into(), record(10, 100));
        m.files.insert("/r/y/other.md".into(), record(10, 100));
        let found = Found {
            candidates: vec![candidate("/r/x/z.md", 1, 1), candidate("/r/x/a.md", 1, 1)],
            problems: Vec::new(),
        };
        let folders = ["/r/x".to_string()];
        let rules = Rules {
            rescanned: &folders,
            named: true,
            rechunk: false,
            retry_failed: false,
            recognises_scans: false,
        };
        let plan = plan(&m, found, &rules);
        assert_eq!(plan.gone.remove, ["/r/x/old.md"]);
        let order: Vec<&str> = plan.to_read.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(order, ["/r/x/z.md", "/r/x/a.md"]);
    }
}
