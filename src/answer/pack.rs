//! Fitting passages into the model's context. Pure functions over a token counter.
//!
//! Passages go in rank order while they fit the budget. A passage longer than its share is not
//! cut blindly at a token count: its sentences that best match the question are kept, in their
//! original order, with "…" where text was left out.

use std::collections::HashSet;

use super::text::{coverage, sentences, words};

/// `text` cut to at most `limit` tokens, keeping the sentences that best match `question`.
pub fn trim_to(text: &str, question: &str, limit: usize, count: &dyn Fn(&str) -> usize) -> String {
    if count(text) <= limit {
        return text.to_string();
    }
    let q = words(question);
    let spans = sentences(text);
    let mut ranked: Vec<(usize, f32)> = spans
        .iter()
        .enumerate()
        .map(|(i, &(s, e))| (i, coverage(&q, &words(&text[s..e]))))
        .collect();
    // Best first; among equals, earlier first (openings tend to carry the topic).
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut keep: HashSet<usize> = HashSet::new();
    let mut used = 0;
    for (i, _) in ranked {
        let (s, e) = spans[i];
        let n = count(&text[s..e]) + 1;
        if used + n > limit {
            continue;
        }
        used += n;
        keep.insert(i);
    }
    if keep.is_empty() {
        // One sentence longer than the limit: its start, cut at a word.
        let mut out = String::new();
        for w in text.split_inclusive(char::is_whitespace) {
            if count(&format!("{out}{w}")) > limit.saturating_sub(1) {
                break;
            }
            out.push_str(w);
        }
        return format!("{}…", out.trim_end());
    }
    let mut out = String::new();
    let mut prev: Option<usize> = None;
    for (i, &(s, e)) in spans.iter().enumerate() {
        if !keep.contains(&i) {
            continue;
        }
        match prev {
            None if i > 0 => out.push_str("… "),
            Some(p) if p + 1 != i => out.push_str(" … "),
            Some(_) => out.push(' '),
            None => {}
        }
        out.push_str(&text[s..e]);
        prev = Some(i);
    }
    if prev.is_some_and(|p| p + 1 < spans.len()) {
        out.push_str(" …");
    }
    out
}

/// Chooses and trims passages (in rank order) to fit `budget` tokens in all: each passage gets at
/// most `per_passage` tokens. Returns `(index into texts, text to show)`.
pub fn pack(
    texts: &[&str],
    question: &str,
    budget: usize,
    per_passage: usize,
    overhead: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut used = 0;
    for (i, t) in texts.iter().enumerate() {
        let left = budget.saturating_sub(used + overhead);
        let limit = per_passage.min(left);
        if limit < 24 {
            break;
        }
        let text = trim_to(t, question, limit, count);
        used += count(&text) + overhead;
        out.push((i, text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_count(s: &str) -> usize {
        s.split_whitespace().count()
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert_eq!(
            trim_to("One two. Three.", "two", 10, &words_count),
            "One two. Three."
        );
    }

    #[test]
    fn long_text_keeps_the_matching_sentences_in_order() {
        let t = "Alpha beta gamma. The notice period is sixty days. Delta epsilon zeta. Fees are due monthly.";
        let out = trim_to(t, "what notice period applies", 8, &words_count);
        assert_eq!(out, "… The notice period is sixty days. …");
        assert!(words_count(&out) <= 8 + 2);
    }

    #[test]
    fn packing_stops_at_the_budget() {
        let texts = ["a b c d e f g h i j"; 5];
        let packed = pack(&texts, "q", 60, 100, 5, &words_count);
        // 10 words + 5 overhead each; a passage needs at least 24 tokens of room.
        assert_eq!(packed.len(), 3);
        assert!(packed.iter().all(|(_, t)| t == texts[0]));
    }
}
