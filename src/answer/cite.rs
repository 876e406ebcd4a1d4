//! Citation checking: which passage sentence supports each sentence of an answer.
//!
//! Small models cite unreliably, so the markers they write are only a hint. Every answer
//! sentence is scored against every sentence of the numbered passages (embedding similarity,
//! computed by the caller, blended with word overlap); the best source above a threshold
//! becomes its citation, replacing whatever the model wrote. A source that states none of a
//! sentence's figures never supports it, and figures it lacks are reported. Pure functions.

use std::collections::HashSet;

use super::text::{coverage, numbers, words};

/// `[n]`, `[n, m]` and `[n][m]` markers removed from `s`, and the numbers they held.
pub fn strip_markers(s: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(s.len());
    let mut nums = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find(']');
        let inner = close.map(|c| &after[..c]);
        let parsed: Option<Vec<usize>> = inner.and_then(|i| {
            if i.trim().is_empty() {
                return None;
            }
            i.split(',').map(|n| n.trim().parse().ok()).collect()
        });
        match (close, parsed) {
            (Some(c), Some(ns)) => {
                nums.extend(ns);
                rest = &after[c + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Markers leave doubled spaces and a space before the full stop.
    let mut clean = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for p in [" .", " ,", " ;", " :", " !", " ?"] {
        clean = clean.replace(p, &p[1..]);
    }
    (clean, nums)
}

const ABSTAIN: &[&str] = &[
    "do not say",
    "does not say",
    "don't say",
    "doesn't say",
    "not saying",
    "do not state",
    "does not state",
    "don't state",
    "doesn't state",
    "do not contain",
    "does not contain",
    "don't contain",
    "doesn't contain",
    "not mentioned",
    "do not mention",
    "does not mention",
    "no information",
    "not provided",
    "not specified",
    "not stated",
    "cannot find",
    "can't find",
    "unable to find",
    "no mention",
    "cannot answer",
    "can't answer",
];

/// Whether `sentence` says the passages hold no answer.
pub fn is_abstention(sentence: &str) -> bool {
    let s = sentence.to_lowercase().replace('’', "'");
    ABSTAIN.iter().any(|p| s.contains(p))
}

/// A sentence of a numbered passage: `passage` indexes the passage list (0-based; cited as
/// `passage + 1`), `start..end` are byte offsets in its text.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceSpan {
    pub passage: usize,
    pub start: usize,
    pub end: usize,
}

/// One answer sentence after checking.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The sentence without markers.
    pub text: String,
    /// Numbers the model wrote after it.
    pub model_cited: Vec<usize>,
    /// Index into the sources of the best support, with its score, when above the threshold.
    pub support: Option<(usize, f32)>,
    /// The sentence says the documents hold no answer.
    pub abstains: bool,
    /// Figures the sentence states that its supporting source does not (sorted).
    pub unverified: Vec<String>,
}

/// Blend of embedding similarity and word overlap.
pub fn support_score(embedding_sim: f32, sentence: &str, source: &str) -> f32 {
    0.6 * embedding_sim + 0.4 * coverage(&words(sentence), &words(source))
}

/// Checks `sentences` (markers included) against `sources` (whose texts are `source_texts`),
/// with `sims[i][j]` the embedding similarity of sentence `i` (markers stripped) to source `j`.
/// A source of a passage the model cited wins over a slightly better one it did not cite.
pub fn check(
    sentences: &[String],
    sources: &[SourceSpan],
    source_texts: &[&str],
    sims: &[Vec<f32>],
    threshold: f32,
) -> Vec<Checked> {
    const CITED_MARGIN: f32 = 0.05;
    let source_numbers: Vec<HashSet<String>> = source_texts.iter().map(|t| numbers(t)).collect();
    sentences
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let (text, model_cited) = strip_markers(raw);
            let abstains = is_abstention(&text);
            let has_content = !words(&text).is_empty();
            let mut best: Option<(usize, f32)> = None;
            let mut best_cited: Option<(usize, f32)> = None;
            // A source that states none of the sentence's figures cannot support it, however
            // alike the rest reads: "45 days" is not backed by "thirty (30) days". Figures
            // the chosen source lacks are reported with it.
            let stated = numbers(&text);
            if has_content && !abstains {
                for (j, src) in sources.iter().enumerate() {
                    if !stated.is_empty() && stated.is_disjoint(&source_numbers[j]) {
                        continue;
                    }
                    let sim = sims.get(i).and_then(|r| r.get(j)).copied().unwrap_or(0.0);
                    let score = support_score(sim, &text, source_texts[j]);
                    if best.is_none_or(|b| score > b.1) {
                        best = Some((j, score));
                    }
                    if model_cited.contains(&(src.passage + 1))
                        && best_cited.is_none_or(|b| score > b.1)
                    {
                        best_cited = Some((j, score));
                    }
                }
            }
            let chosen = match (best, best_cited) {
                (Some(b), Some(c)) if c.1 + CITED_MARGIN >= b.1 => Some(c),
                (b, _) => b,
            };
            let support = chosen.filter(|c| c.1 >= threshold);
            let mut unverified: Vec<String> = match support {
                Some((j, _)) => stated.difference(&source_numbers[j]).cloned().collect(),
                None => Vec::new(),
            };
            unverified.sort();
            Checked {
                text,
                model_cited,
                support,
                abstains,
                unverified,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_stripped_and_read() {
        assert_eq!(
            strip_markers("Notice is 60 days [1][3]. "),
            ("Notice is 60 days.".to_string(), vec![1, 3])
        );
        assert_eq!(
            strip_markers("See [2, 4] here"),
            ("See here".to_string(), vec![2, 4])
        );
        assert_eq!(
            strip_markers("An [array] stays"),
            ("An [array] stays".to_string(), vec![])
        );
    }

    #[test]
    fn abstentions_are_recognised() {
        assert!(is_abstention("The documents do not say."));
        assert!(is_abstention("The documents are not saying."));
        assert!(is_abstention("The passages do not state a fee."));
        assert!(is_abstention(
            "This information is not mentioned in the passages."
        ));
        assert!(!is_abstention("Notice is sixty days."));
    }

    fn src(p: usize) -> SourceSpan {
        SourceSpan {
            passage: p,
            start: 0,
            end: 0,
        }
    }

    #[test]
    fn best_source_wins_and_wrong_numbers_are_corrected() {
        let sentences = vec!["Either party may terminate with sixty days notice [2].".to_string()];
        let texts = [
            "Either party may terminate on sixty days written notice.",
            "Fees are due monthly.",
        ];
        let sims = vec![vec![0.8, 0.1]];
        let c = check(&sentences, &[src(0), src(1)], &texts, &sims, 0.5);
        assert_eq!(c[0].model_cited, vec![2]);
        assert_eq!(c[0].support.map(|s| s.0), Some(0));
    }

    #[test]
    fn unsupported_sentences_get_no_source() {
        let sentences = vec![
            "The moon is made of cheese.".to_string(),
            "The documents do not say.".to_string(),
        ];
        let texts = ["Fees are due monthly."];
        let sims = vec![vec![0.1], vec![0.2]];
        let c = check(&sentences, &[src(0)], &texts, &sims, 0.5);
        assert!(c[0].support.is_none() && !c[0].abstains);
        assert!(c[1].support.is_none() && c[1].abstains);
    }

    #[test]
    fn a_figure_the_source_does_not_state_is_unsupported() {
        let texts = ["Acme shall pay each invoice within thirty (30) days of receipt."];
        let sims = vec![vec![0.9]];
        let wrong = vec!["Acme pays within 45 days [1].".to_string()];
        let c = check(&wrong, &[src(0)], &texts, &sims, 0.5);
        assert!(c[0].support.is_none());
        let right = vec!["Acme pays within thirty days [1].".to_string()];
        let c = check(&right, &[src(0)], &texts, &sims, 0.5);
        assert_eq!(c[0].support.map(|s| s.0), Some(0));
        assert!(c[0].unverified.is_empty());
        let partly = vec!["Acme pays within 30 days, since 2023 [1].".to_string()];
        let c = check(&partly, &[src(0)], &texts, &sims, 0.5);
        assert_eq!(c[0].support.map(|s| s.0), Some(0));
        assert_eq!(c[0].unverified, vec!["2023"]);
    }

    #[test]
    fn a_cited_source_nearly_as_good_is_kept() {
        let sentences = vec!["Payment is due in thirty days [2].".to_string()];
        let texts = [
            "Payment is due within thirty days.",
            "Payment is due in thirty days of receipt.",
        ];
        let sims = vec![vec![0.90, 0.88]];
        let c = check(&sentences, &[src(0), src(1)], &texts, &sims, 0.5);
        assert_eq!(c[0].support.map(|s| s.0), Some(1));
    }
}
