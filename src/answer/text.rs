//! Sentence and word helpers shared by packing and citation checking. Pure functions.

use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;

/// Sentences of `text` as byte ranges, whitespace trimmed, empty ones dropped. A fragment with
/// no letters (a list number such as "1.", a lone symbol) joins the sentence after it.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut pending: Option<usize> = None;
    let mut pos = 0;
    for s in text.split_sentence_bounds() {
        // Line breaks end sentences too: list items and headings have no full stop.
        for line in s.split_inclusive('\n') {
            let start = pos + (line.len() - line.trim_start().len());
            let end = pos + line.trim_end().len();
            pos += line.len();
            if end <= start {
                continue;
            }
            if !text[start..end].chars().any(char::is_alphabetic) {
                pending.get_or_insert(start);
                continue;
            }
            out.push((pending.take().unwrap_or(start), end));
        }
    }
    if let Some(p) = pending {
        let end = text.trim_end().len();
        match out.last_mut() {
            Some(last) => last.1 = end,
            None if end > p => out.push((p, end)),
            None => {}
        }
    }
    out
}

const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "did", "do", "does",
    "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "of",
    "on", "or", "so", "than", "that", "the", "their", "then", "there", "these", "they", "this",
    "to", "was", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would",
    "you", "your",
];

/// Content words of `text`, lower-cased, with a crude plural/inflection strip so that
/// "notices" meets "notice".
pub fn words(text: &str) -> HashSet<String> {
    text.unicode_words()
        .map(|w| w.to_lowercase())
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

fn stem(w: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return base.to_string();
        }
    }
    w.to_string()
}

/// Share of `a`'s content words found in `b` (0 when `a` has none).
pub fn coverage(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    if a.is_empty() {
        return 0.0;
    }
    a.intersection(b).count() as f32 / a.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts<'a>(t: &'a str, r: &[(usize, usize)]) -> Vec<&'a str> {
        r.iter().map(|&(s, e)| &t[s..e]).collect()
    }

    #[test]
    fn splits_on_sentences_and_lines() {
        let t = "First one. Second one!\n- item\n\nLast";
        assert_eq!(
            texts(t, &sentences(t)),
            vec!["First one.", "Second one!", "- item", "Last"]
        );
        let t = "1. Notice is due. 2. Fees apply. 42";
        assert_eq!(
            texts(t, &sentences(t)),
            vec!["1. Notice is due.", "2. Fees apply. 42"]
        );
    }

    #[test]
    fn words_drop_stopwords_and_inflections() {
        let w = words("The notices were given");
        assert!(w.contains("notic") && w.contains("given"), "{w:?}");
        assert!(!w.contains("the"));
        assert!(
            (coverage(&words("notice period"), &words("the notice period is")) - 1.0).abs() < 1e-6
        );
    }
}
