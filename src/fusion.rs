//! Combining ranked lists from the two retrievers into one.
//!
//! Reciprocal rank fusion scores an item `Σ w / (k + rank)` over the lists that hold it; it needs
//! no score calibration. Convex fusion min-max normalises each list's scores to [0, 1] and sums
//! them with weights, which keeps how far apart the scores are. Both are pure functions over
//! `(id, score)` lists sorted best first. A leaf: settings name a method, the index runs it.

use std::collections::HashMap;

use serde::Serialize;

/// How the two retrievers' lists are combined (the `search.fusion` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: [`rrf`].
    Rrf,
    /// Convex combination of min-max normalised scores: [`convex`].
    Convex,
}

impl Fusion {
    /// The method named `s` as a setting spells it.
    pub fn from_name(s: &str) -> Result<Fusion, String> {
        match s.trim() {
            "rrf" => Ok(Fusion::Rrf),
            "convex" => Ok(Fusion::Convex),
            other => Err(format!("expected rrf or convex, got {other}")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fusion::Rrf => "rrf",
            Fusion::Convex => "convex",
        }
    }
}

/// A ranked list, best first, with its weight in the fusion.
pub struct Ranked<'a> {
    pub hits: &'a [(u64, f32)],
    pub weight: f32,
}

/// Reciprocal rank fusion with constant `k`. Ties keep the order of first appearance.
pub fn rrf(lists: &[Ranked<'_>], k: f32) -> Vec<(u64, f32)> {
    combine(lists, |_, rank, _| 1.0 / (k + rank as f32 + 1.0))
}

/// Weighted sum of min-max normalised scores; an item missing from a list scores 0 there.
pub fn convex(lists: &[Ranked<'_>]) -> Vec<(u64, f32)> {
    combine(lists, |hits, _, score| {
        let max = hits.first().map(|h| h.1).unwrap_or(0.0);
        let min = hits.last().map(|h| h.1).unwrap_or(0.0);
        if max > min {
            (score - min) / (max - min)
        } else {
            1.0
        }
    })
}

fn combine(
    lists: &[Ranked<'_>],
    contribution: impl Fn(&[(u64, f32)], usize, f32) -> f32,
) -> Vec<(u64, f32)> {
    let mut scores: HashMap<u64, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for list in lists {
        for (rank, &(id, score)) in list.hits.iter().enumerate() {
            let add = list.weight * contribution(list.hits, rank, score);
            let e = scores.entry(id).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            e.0 += add;
        }
    }
    let mut out: Vec<(u64, f32, usize)> =
        scores.into_iter().map(|(id, (s, o))| (id, s, o)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(id, s, _)| (id, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list with its weight.
    fn list(hits: &[(u64, f32)], weight: f32) -> Ranked<'_> {
        Ranked { hits, weight }
    }

    #[test]
    fn rrf_by_hand() {
        let a = [(1, 9.0), (2, 5.0), (3, 1.0)];
        let b = [(3, 0.9), (1, 0.8)];
        let fused = rrf(&[list(&a, 1.0), list(&b, 1.0)], 60.0);
        // 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62.
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
        assert!((fused[2].1 - 1.0 / 62.0).abs() < 1e-6);
    }

    #[test]
    fn weights_shift_rrf() {
        let a = [(1, 1.0)];
        let b = [(2, 1.0)];
        let fused = rrf(&[list(&a, 1.0), list(&b, 2.0)], 60.0);
        assert_eq!(fused[0].0, 2);
    }

    #[test]
    fn convex_by_hand() {
        let a = [(1, 10.0), (2, 6.0), (3, 2.0)];
        let b = [(2, 0.9), (3, 0.5)];
        let fused = convex(&[list(&a, 1.0), list(&b, 1.0)]);
        // 1: 1 + 0; 2: 0.5 + 1; 3: 0 + 0.
        assert_eq!(fused.iter().map(|f| f.0).collect::<Vec<_>>(), vec![2, 1, 3]);
        assert!((fused[0].1 - 1.5).abs() < 1e-6);
        assert!(fused[2].1.abs() < 1e-6);
    }

    #[test]
    fn empty_lists() {
        assert!(rrf(&[], 60.0).is_empty());
        let a = [(7, 3.0)];
        assert_eq!(convex(&[list(&a, 1.0)]), vec![(7, 1.0)]);
    }
}
