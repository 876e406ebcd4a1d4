//! Evidence: the sentences of the retrieved passages that answer the question, found without
//! the language model, so that they reach the screen milliseconds after retrieval.
//!
//! Every sentence of the passages (a long sentence is cut into its clauses) is a candidate.
//! Each is scored on the question's terms it holds, weighted by their rarity in the index
//! (`lexical`), the terms it holds together with its neighbours and its passage's heading
//! (`context`), whether it holds what the question asks for (a duration for "how long", a
//! figure for "how many", a date for "when": `answer_type`), its passage's retrieval rank
//! (`rank`) and, for the best few, its embedding's similarity to the question's (`dense`). The
//! weights were tuned on the development QA set (`./dev bench qa`). Pure functions: the caller
//! supplies the analyzer, the term weights and the similarities.

use std::collections::{HashMap, HashSet};

use super::text::{numbers, sentences};

/// How candidates are scored and how many are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub lexical: f32,
    pub context: f32,
    /// The question's terms in the unit with the one before it and its heading: an answer
    /// often follows the sentence that names its topic ("… autovacuum workers. The default
    /// is three.").
    pub lead_in: f32,
    pub answer_type: f32,
    pub rank: f32,
    pub dense: f32,
    /// A question, a line that introduces a list, a table-of-contents line: never an answer.
    pub junk: f32,
    /// Candidates (best by the other signals) whose similarity to the question is computed.
    pub dense_candidates: usize,
    /// A sentence longer than this (in characters) is cut into its clauses.
    pub max_chars: usize,
    /// A sentence shorter than this (in characters) joins the one before it.
    pub min_chars: usize,
    /// Spans given to the model and shown first.
    pub spans: usize,
    /// Sentences of context on each side of a span in the model's prompt.
    pub window: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            lexical: 2.0,
            context: 1.0,
            lead_in: -0.5,
            answer_type: 0.35,
            rank: 0.75,
            dense: 0.0,
            junk: -1.0,
            dense_candidates: 0,
            max_chars: 320,
            min_chars: 150,
            spans: 3,
            window: 1,
        }
    }
}

/// What a question asks for, as far as its form tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asks {
    /// "How long", "how often", "how far in advance", "how many days".
    Duration,
    /// "How many", "how much", "what is the maximum", "which port".
    Figure,
    /// "When was", "in what year", "at what time".
    Date,
    /// "Which address", "who should I e-mail".
    Address,
    Other,
}

const TIME_UNITS: [&str; 22] = [
    "second",
    "seconds",
    "minute",
    "minutes",
    "hour",
    "hours",
    "day",
    "days",
    "week",
    "weeks",
    "month",
    "months",
    "year",
    "years",
    "fortnight",
    "fortnights",
    "annually",
    "monthly",
    "weekly",
    "daily",
    "yearly",
    "hourly",
];

/// The kind of answer `question` wants.
pub fn asks(question: &str) -> Asks {
    let q = format!(
        " {} ",
        question
            .to_lowercase()
            .replace(['?', ',', '.', '\'', '’'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    );
    let has = |p: &str| q.contains(p);
    let any = |ps: &[&str]| ps.iter().any(|p| has(p));
    let unit = TIME_UNITS.iter().any(|u| has(&format!(" {u} ")));
    if any(&[
        " how long ",
        " how soon ",
        " how often ",
        " how frequently ",
        " how recently ",
        " how far in advance ",
        " how far ahead ",
        " how much time ",
        " what period ",
        " which period ",
        " what time period ",
        " what delay ",
        " longest delay ",
        " shortest delay ",
        " how old ",
    ]) || unit && any(&[" how many ", " how much ", " what is the ", " within "])
    {
        return Asks::Duration;
    }
    if any(&[
        " when was ",
        " when were ",
        " when did ",
        " in what year ",
        " what year ",
        " which year ",
        " what date ",
        " which date ",
        " on what day ",
        " what time of day ",
        " at what time ",
        " what deadline ",
        " by when ",
    ]) {
        return Asks::Date;
    }
    if any(&[
        " how many ",
        " how much ",
        " how big ",
        " how large ",
        " how far ",
        " how small ",
        " what percentage ",
        " what percent ",
        " what fraction ",
        " what proportion ",
        " what number ",
        " what size ",
        " what length ",
        " which port ",
        " what port ",
        " minimum ",
        " maximum ",
        " smallest ",
        " largest ",
        " longest ",
        " shortest ",
        " upper bound ",
        " lower bound ",
        " upper limit ",
        " what limit ",
        " what majority ",
        " what quorum ",
        " magic number ",
        " what version ",
        " which version ",
    ]) {
        return Asks::Figure;
    }
    if any(&[
        " address ",
        " e-mail ",
        " email ",
        " mail to ",
        " write to ",
        " url ",
        " website ",
        " web site ",
    ]) {
        return Asks::Address;
    }
    Asks::Other
}

/// Whether `sentence` holds the kind of answer `asks` names (always true for `Other`).
pub fn holds(asks: Asks, sentence: &str) -> bool {
    let lower = sentence.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let figures = !numbers(sentence).is_empty() || lower.contains('%');
    let unit = words.iter().any(|w| TIME_UNITS.contains(w));
    match asks {
        Asks::Other => true,
        Asks::Figure => figures,
        Asks::Duration => {
            unit && (figures
                || words
                    .iter()
                    .any(|w| matches!(*w, "a" | "an" | "each" | "every" | "per")))
                || words.iter().any(|w| {
                    matches!(
                        *w,
                        "annually" | "monthly" | "weekly" | "daily" | "yearly" | "hourly"
                    )
                })
        }
        Asks::Date => {
            words.iter().any(|w| {
                super::text::MONTHS.contains(w)
                    || w.len() == 4 && w.parse::<u32>().is_ok_and(|y| (1900..=2100).contains(&y))
                    || matches!(*w, "utc" | "gmt" | "noon" | "midnight" | "am" | "pm")
            }) || sentence.contains(':') && figures
        }
        Asks::Address => {
            sentence.contains("://")
                || sentence
                    .split_whitespace()
                    .any(|w| w.contains('@') && w.contains('.'))
        }
    }
}

/// Whether a unit cannot be an answer whatever it says: a question (FAQs and headings ask
/// them), a line that introduces what follows, a table-of-contents line.
pub fn is_junk(unit: &str) -> bool {
    let t = unit.trim_end();
    let letters = t.chars().filter(|c| c.is_alphabetic()).count();
    t.ends_with('?')
        || t.ends_with(':')
        || t.contains(". . .")
        || t.contains("....")
        || letters * 2 < t.chars().count()
}

/// A passage as evidence selection sees it.
#[derive(Debug, Clone, Copy)]
pub struct PassageView<'a> {
    pub text: &'a str,
    pub heading: &'a [String],
    /// Retrieval rank, 0 for the best.
    pub rank: usize,
}

/// A scored candidate: bytes `start..end` of passage `passage`'s text.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub passage: usize,
    pub start: usize,
    pub end: usize,
    /// Index of this unit among its passage's units.
    pub unit: usize,
    pub lexical: f32,
    pub context: f32,
    pub lead_in: f32,
    pub answer_type: f32,
    pub rank: f32,
    pub junk: f32,
    pub dense: Option<f32>,
    pub score: f32,
}

/// The units of `text` evidence is chosen from: its sentences, with a sentence longer than
/// `params.max_chars` cut after its semicolons and colons (legal clauses run long), and a
/// sentence shorter than `params.min_chars` read together with the one before it ("The
/// default is three." says nothing alone).
pub fn units(text: &str, params: &Params) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let chars = |s: usize, e: usize| text[s..e].chars().count();
    for (s, e) in sentences(text) {
        if chars(s, e) < params.min_chars
            && text[s..e].trim_end().ends_with(['.', '!', ')'])
            && let Some(last) = out.last_mut()
            && chars(last.0, e) <= params.max_chars
        {
            last.1 = e;
            continue;
        }
        if chars(s, e) <= params.max_chars {
            out.push((s, e));
            continue;
        }
        let mut start = s;
        for (i, c) in text[s..e].char_indices() {
            let at = s + i + c.len_utf8();
            if matches!(c, ';' | ':') && at - start >= 40 && e - at >= 40 {
                out.push((start, at));
                start = at + (text[at..e].len() - text[at..e].trim_start().len());
            }
        }
        out.push((start, e));
    }
    out
}

/// Question terms with their weights, analysed as the index analyses text.
pub struct Query {
    pub asks: Asks,
    weights: HashMap<String, f32>,
    total: f32,
}

impl Query {
    pub fn new(
        question: &str,
        analyze: &dyn Fn(&str) -> Vec<String>,
        idf: &dyn Fn(&str) -> f32,
    ) -> Query {
        let mut weights = HashMap::new();
        for t in analyze(question) {
            let w = idf(&t).max(0.1);
            weights.insert(t, w);
        }
        let total = weights.values().sum();
        Query {
            asks: asks(question),
            weights,
            total,
        }
    }

    /// The weighted share of the question's terms found in `terms`.
    pub fn coverage(&self, terms: &HashSet<String>) -> f32 {
        if self.total <= 0.0 {
            return 0.0;
        }
        self.weights
            .iter()
            .filter(|(t, _)| terms.contains(*t))
            .map(|(_, w)| w)
            .sum::<f32>()
            / self.total
    }
}

/// Scores every unit of `passages` against `query` (without the dense signal), best first.
pub fn score(
    query: &Query,
    passages: &[PassageView<'_>],
    analyze: &dyn Fn(&str) -> Vec<String>,
    params: &Params,
) -> Vec<Scored> {
    let mut out = Vec::new();
    for (p, view) in passages.iter().enumerate() {
        let spans = units(view.text, params);
        let terms: Vec<HashSet<String>> = spans
            .iter()
            .map(|&(s, e)| analyze(&view.text[s..e]).into_iter().collect())
            .collect();
        let heading: HashSet<String> = analyze(&view.heading.join(" ")).into_iter().collect();
        let rank = 1.0 / (1.0 + view.rank as f32).sqrt();
        for (u, &(start, end)) in spans.iter().enumerate() {
            let text = &view.text[start..end];
            // Too short to answer anything: a heading, a label, a page number.
            if text.split_whitespace().count() < 4 {
                continue;
            }
            let lexical = query.coverage(&terms[u]);
            let mut around: HashSet<String> = terms[u].clone();
            around.extend(heading.iter().cloned());
            if u > 0 {
                around.extend(terms[u - 1].iter().cloned());
            }
            if let Some(next) = terms.get(u + 1) {
                around.extend(next.iter().cloned());
            }
            let context = query.coverage(&around);
            let mut before: HashSet<String> = terms[u].clone();
            before.extend(heading.iter().cloned());
            if u > 0 {
                before.extend(terms[u - 1].iter().cloned());
            }
            let lead_in = query.coverage(&before);
            let junk = if is_junk(text) { 1.0 } else { 0.0 };
            let answer_type = match query.asks {
                Asks::Other => 0.0,
                a if holds(a, text) => 1.0,
                _ => 0.0,
            };
            let mut c = Scored {
                passage: p,
                start,
                end,
                unit: u,
                lexical,
                context,
                lead_in,
                answer_type,
                rank,
                junk,
                dense: None,
                score: 0.0,
            };
            c.score = total(&c, params);
            out.push(c);
        }
    }
    sort(&mut out);
    out
}

fn total(c: &Scored, p: &Params) -> f32 {
    p.lexical * c.lexical
        + p.context * c.context
        + p.lead_in * c.lead_in
        + p.answer_type * c.answer_type
        + p.rank * c.rank
        + p.junk * c.junk
}

fn sort(c: &mut [Scored]) {
    c.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.passage.cmp(&b.passage))
            .then(a.start.cmp(&b.start))
    });
}

/// Ranks `candidates` under `params`: by every signal but the dense one, then, for the best
/// `params.dense_candidates`, with their similarity to the question added (`dense`, set by the
/// caller for at least those). The rest get the lowest of those similarities, so that the
/// dense signal only reorders the best few, as when it is computed for them alone.
pub fn rank(candidates: &mut [Scored], params: &Params) {
    for c in candidates.iter_mut() {
        c.score = total(c, params);
    }
    sort(candidates);
    if params.dense == 0.0 || params.dense_candidates == 0 {
        return;
    }
    let top = params.dense_candidates.min(candidates.len());
    let floor = candidates[..top]
        .iter()
        .filter_map(|c| c.dense)
        .fold(f32::INFINITY, f32::min);
    let floor = if floor.is_finite() { floor } else { 0.0 };
    for (i, c) in candidates.iter_mut().enumerate() {
        let sim = if i < top {
            c.dense.unwrap_or(floor)
        } else {
            floor
        };
        c.score += params.dense * sim;
    }
    sort(candidates);
}

/// The best `n` candidates, skipping one whose text repeats a chosen one's (overlapping
/// passages share sentences).
pub fn pick(candidates: &[Scored], texts: &[&str], n: usize) -> Vec<Scored> {
    let mut out: Vec<Scored> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for c in candidates {
        if out.len() >= n {
            break;
        }
        let key: String = texts[c.passage][c.start..c.end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if seen.insert(key) {
            out.push(c.clone());
        }
    }
    out
}

/// The bytes of passage text around a unit: `window` units on each side of units
/// `first..=last`, within the passage.
pub fn window(
    units: &[(usize, usize)],
    first: usize,
    last: usize,
    window: usize,
) -> (usize, usize) {
    let lo = first.saturating_sub(window);
    let hi = (last + window).min(units.len().saturating_sub(1));
    (units[lo].0, units[hi].1)
}

/// What the model reads of one passage.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub passage: usize,
    /// Byte ranges of the passage's text, in order, not overlapping.
    pub ranges: Vec<(usize, usize)>,
    /// Those ranges' text, whitespace collapsed, joined by "…".
    pub text: String,
}

/// For each passage that holds a picked span, in the order of its best span: the spans with
/// `params.window` units of context on each side.
pub fn windows(picked: &[Scored], texts: &[&str], params: &Params) -> Vec<Window> {
    let mut order: Vec<usize> = Vec::new();
    for c in picked {
        if !order.contains(&c.passage) {
            order.push(c.passage);
        }
    }
    order
        .into_iter()
        .map(|p| {
            let text = texts[p];
            let us = units(text, params);
            let mut ranges: Vec<(usize, usize)> = picked
                .iter()
                .filter(|c| c.passage == p && c.unit < us.len())
                .map(|c| window(&us, c.unit, c.unit, params.window))
                .collect();
            ranges.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for r in ranges {
                match merged.last_mut() {
                    Some(last) if r.0 <= last.1 + 1 => last.1 = last.1.max(r.1),
                    _ => merged.push(r),
                }
            }
            let mut out = String::new();
            if merged.first().is_some_and(|r| r.0 > 0) {
                out.push_str("… ");
            }
            for (i, &(s, e)) in merged.iter().enumerate() {
                if i > 0 {
                    out.push_str(" … ");
                }
                out.push_str(&text[s..e].split_whitespace().collect::<Vec<_>>().join(" "));
            }
            if merged.last().is_some_and(|r| r.1 < text.trim_end().len()) {
                out.push_str(" …");
            }
            Window {
                passage: p,
                ranges: merged,
                text: out,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyze(s: &str) -> Vec<String> {
        super::super::text::words(s).into_iter().collect()
    }

    fn idf(_: &str) -> f32 {
        1.0
    }

    #[test]
    fn question_forms_name_what_they_ask() {
        assert_eq!(asks("How long must the offer stay valid?"), Asks::Duration);
        assert_eq!(asks("How many days does Acme have to pay?"), Asks::Duration);
        assert_eq!(asks("How many members sit on the board?"), Asks::Figure);
        assert_eq!(asks("When was the agreement signed?"), Asks::Date);
        assert_eq!(
            asks("When does the term end?"),
            Asks::Other,
            "a condition, often"
        );
        assert_eq!(asks("Who appoints the secretary?"), Asks::Other);
        assert!(holds(Asks::Duration, "valid for at least three years"));
        assert!(!holds(Asks::Duration, "valid for a long time"));
        assert!(holds(Asks::Figure, "a 2:1 majority of the developers"));
        assert_eq!(
            asks("What is the smallest possible size of a database?"),
            Asks::Figure
        );
        assert_eq!(asks("In what year was the project started?"), Asks::Date);
        assert_eq!(asks("Which address do I write to?"), Asks::Address);
        assert!(holds(
            Asks::Date,
            "Version 1.2 ratified on October 1st, 2022."
        ));
        assert!(holds(
            Asks::Address,
            "send it to maintonly@bugs.debian.org instead."
        ));
    }

    #[test]
    fn long_sentences_split_at_clauses() {
        let t = format!(
            "{}; {}; {}.",
            "a".repeat(150),
            "the offer is valid for three years",
            "b".repeat(150)
        );
        let u = units(&t, &Params::default());
        assert_eq!(
            u.len(),
            2,
            "a clause shorter than 40 bytes stays with its neighbour"
        );
        assert!(t[u[0].0..u[0].1].ends_with(';'));
    }

    #[test]
    fn the_sentence_that_answers_ranks_first() {
        let a = "Acme Corp and Beta LLC sign this Master Services Agreement. Acme shall pay each invoice within thirty (30) days of receipt. Invoices are sent monthly by email.";
        let b = "Either party may terminate for convenience. Termination requires notice. Payment terms survive termination.";
        let views = [
            PassageView {
                text: b,
                heading: &[],
                rank: 0,
            },
            PassageView {
                text: a,
                heading: &[],
                rank: 1,
            },
        ];
        let q = Query::new(
            "How many days does Acme have to pay an invoice?",
            &analyze,
            &idf,
        );
        let sentences = Params {
            min_chars: 0,
            ..Params::default()
        };
        let s = score(&q, &views, &analyze, &sentences);
        let best = &s[0];
        assert_eq!(best.passage, 1);
        assert_eq!(
            &a[best.start..best.end],
            "Acme shall pay each invoice within thirty (30) days of receipt."
        );
        let texts = [b, a];
        let w = windows(&s[..1], &texts, &sentences);
        assert_eq!(w.len(), 1);
        assert_eq!(
            w[0].text,
            "Acme Corp and Beta LLC sign this Master Services Agreement. Acme shall pay each invoice within thirty (30) days of receipt. Invoices are sent monthly by email."
        );
    }

    #[test]
    fn a_short_sentence_is_read_with_the_one_before() {
        let t = "Specifies the maximum number of autovacuum processes that may run at once. The default is three. This parameter can only be set at server start.";
        let u = units(
            t,
            &Params {
                min_chars: 30,
                ..Params::default()
            },
        );
        let texts: Vec<&str> = u.iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(
            texts,
            vec![
                "Specifies the maximum number of autovacuum processes that may run at once. The default is three.",
                "This parameter can only be set at server start."
            ]
        );
    }

    #[test]
    fn duplicates_are_picked_once_and_windows_merge() {
        let t = "One two three four. Five six seven eight. Nine ten eleven twelve. Thirteen fourteen fifteen sixteen.";
        let us = units(
            t,
            &Params {
                min_chars: 0,
                ..Params::default()
            },
        );
        let mk = |unit: usize, score: f32| Scored {
            passage: 0,
            start: us[unit].0,
            end: us[unit].1,
            unit,
            lexical: 0.0,
            context: 0.0,
            lead_in: 0.0,
            answer_type: 0.0,
            rank: 0.0,
            junk: 0.0,
            dense: None,
            score,
        };
        let cands = vec![mk(1, 0.9), mk(1, 0.8), mk(2, 0.7)];
        let picked = pick(&cands, &[t], 3);
        assert_eq!(picked.len(), 2);
        let p = Params {
            window: 0,
            min_chars: 0,
            ..Params::default()
        };
        let w = windows(&picked, &[t], &p);
        assert_eq!(
            w[0].text,
            "… Five six seven eight. Nine ten eleven twelve. …"
        );
        assert_eq!(w[0].ranges, vec![(us[1].0, us[2].1)]);
    }

    #[test]
    fn dense_similarity_reorders_the_best_few() {
        let mk = |passage: usize, lexical: f32, dense: f32| Scored {
            passage,
            start: 0,
            end: 1,
            unit: 0,
            lexical,
            context: 0.0,
            lead_in: 0.0,
            answer_type: 0.0,
            rank: 0.0,
            junk: 0.0,
            dense: Some(dense),
            score: 0.0,
        };
        let p = Params {
            lexical: 1.0,
            context: 0.0,
            rank: 0.0,
            dense: 1.0,
            dense_candidates: 2,
            ..Params::default()
        };
        let mut c = vec![mk(0, 0.6, 0.1), mk(1, 0.5, 0.9), mk(2, 0.1, 1.0)];
        rank(&mut c, &p);
        assert_eq!(c[0].passage, 1, "similarity reorders the best two");
        assert_eq!(
            c[2].passage, 2,
            "the third is not compared: it keeps the floor"
        );
    }

    #[test]
    fn questions_and_list_openers_are_not_answers() {
        assert!(is_junk("How does one pronounce Debian?"));
        assert!(is_junk(
            "In protocol v2 these packets have the following semantics:"
        ));
        assert!(is_junk("7.3 Why are file names so long . . . . . . . 27"));
        assert!(!is_junk("The default is three."));
    }
}
