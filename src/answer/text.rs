//! Sentence and word helpers shared by packing and citation checking. Pure functions.

use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;

/// Whether the line break at byte `at` of `text` only wraps a long line of prose (PDF pages and
/// plain-text documents are wrapped at a fixed width), so that the sentence runs on.
fn soft_break(text: &str, at: usize) -> bool {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..at].trim();
    let next = text[at + 1..].split('\n').next().unwrap_or("").trim_start();
    if line.chars().count() < 40
        || next.is_empty()
        || line.ends_with(':')
        || line.starts_with(['|', '#'])
    {
        return false;
    }
    // A list item, a table row or a heading starts its own line. A numbered item follows a
    // line that ends a sentence or a clause: "ninety\n(90) days" is one sentence wrapped.
    let ends_clause = line.ends_with(['.', ';', ':', '!', '?', ')']);
    let marker = next.starts_with(['-', '*', '•', '·', '|', '#', '>'])
        || ends_clause
            && next
                .split_once(char::is_whitespace)
                .is_some_and(|(first, _)| is_enumerator(first));
    !marker
}

/// "1.", "12)", "(a)", "iv." or "(3)": the number of a list item or clause.
fn is_enumerator(token: &str) -> bool {
    let inner = token.strip_prefix('(').unwrap_or(token);
    let Some(label) = inner.strip_suffix(['.', ')']) else {
        return false;
    };
    !label.is_empty()
        && (label.chars().all(|c| c.is_ascii_digit()) && label.len() <= 3
            || label.len() == 1 && label.chars().all(|c| c.is_ascii_lowercase())
            || label.len() <= 4 && label.chars().all(|c| matches!(c, 'i' | 'v' | 'x')))
}

/// Sentences of `text` as byte ranges, whitespace trimmed, empty ones dropped. A line break ends
/// a sentence unless it only wraps a long line of prose. A fragment with no letters (a list
/// number such as "1.", a lone symbol) joins the sentence after it.
/// Month names, lower case, January first.
pub const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    // Wrapping breaks become spaces in a copy of the same length, so offsets carry over.
    let mut soft = text.as_bytes().to_vec();
    for (i, _) in text.match_indices('\n') {
        if soft_break(text, i) {
            soft[i] = b' ';
        }
    }
    let unwrapped = String::from_utf8(soft).unwrap_or_else(|_| text.to_string());
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut pending: Option<usize> = None;
    let mut pos = 0;
    for s in unwrapped.split_sentence_bounds() {
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

/// The numbers `text` states, normalised so that "thirty (30)", "30" and "thirty" meet, and
/// "1,200" meets "1200": digit runs without grouping commas or leading zeros, and number words
/// ("forty-five" is 45). A list marker that opens the text ("2. ") is not a statement.
pub fn numbers(text: &str) -> HashSet<String> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let body = text.trim_start();
    let body = match body.split_once(|c: char| c.is_whitespace()) {
        Some((first, rest))
            if first.len() > 1
                && first.ends_with(['.', ')'])
                && first[..first.len() - 1].chars().all(|c| c.is_ascii_digit()) =>
        {
            rest
        }
        _ => body,
    };
    let mut out = HashSet::new();
    let mut tens: Option<(u32, usize)> = None;
    let all: Vec<(usize, String)> = body
        .unicode_word_indices()
        .map(|(at, w)| (at, w.to_lowercase()))
        .collect();
    for (i, (at, lower)) in all.iter().enumerate() {
        let (at, lower) = (*at, lower.as_str());
        let prev = i.checked_sub(1).map(|p| all[p].1.as_str());
        let next = all.get(i + 1).map(|n| n.1.as_str());
        // "no one", "each one", "one of them", "one another" state no figure.
        if lower == "one"
            && (matches!(
                prev,
                Some("no" | "any" | "each" | "every" | "some" | "the" | "this" | "that" | "which")
            ) || matches!(next, Some("of" | "another")))
        {
            tens = None;
            continue;
        }
        // "May" is left out: it is far more often the verb.
        if let Some(m) = MONTHS.iter().position(|&m| m != "may" && m == lower) {
            // "March 17, 2018" meets "2018-03-17".
            out.insert((m + 1).to_string());
            tens = None;
        } else if lower.starts_with(|c: char| c.is_ascii_digit()) {
            let digits: String = lower.chars().filter(|&c| c != ',').collect();
            let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
            let int = int.trim_start_matches('0');
            let int = if int.is_empty() { "0" } else { int };
            let frac = frac.trim_end_matches('0');
            out.insert(if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            });
            tens = None;
        } else if let Some(t) = TENS.iter().position(|&t| t == lower) {
            let v = 20 + 10 * t as u32;
            out.insert(v.to_string());
            tens = Some((v, at + lower.len()));
        } else if let Some(u) = UNITS.iter().position(|&u| u == lower) {
            match tens {
                // "forty-five" is one number, not forty and five.
                Some((v, end)) if u > 0 && u < 10 && matches!(&body[end..at], "-" | " ") => {
                    out.remove(&v.to_string());
                    out.insert((v + u as u32).to_string());
                }
                _ => {
                    out.insert(u.to_string());
                }
            }
            tens = None;
        } else {
            tens = None;
        }
    }
    out
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
    fn wrapped_prose_runs_on_and_structure_breaks() {
        let t = "8. Termination\nEither party may terminate this Agreement on thirty (30) days\nwritten notice to the other party. Fees stay due.\n(a) unpaid invoices remain payable;\n- a list item\nThe term renews unless a party gives notice at least ninety\n(90) days before the end of the term.";
        assert_eq!(
            texts(t, &sentences(t)),
            vec![
                "8. Termination",
                "Either party may terminate this Agreement on thirty (30) days\nwritten notice to the other party.",
                "Fees stay due.",
                "(a) unpaid invoices remain payable;",
                "- a list item",
                "The term renews unless a party gives notice at least ninety\n(90) days before the end of the term."
            ]
        );
    }

    fn nums(t: &str) -> Vec<String> {
        let mut v: Vec<String> = numbers(t).into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn numbers_meet_across_spellings() {
        assert_eq!(nums("within thirty (30) days"), vec!["30"]);
        assert_eq!(nums("forty-five days, or fifty five"), vec!["45", "55"]);
        assert_eq!(
            nums("1,200 units at 1.50 and 007"),
            vec!["1.5", "1200", "7"]
        );
        assert_eq!(nums("2. Fees are due in 10 days"), vec!["10"]);
        assert_eq!(nums("one percent (1%) per month"), vec!["1"]);
        assert!(nums("No figures here.").is_empty());
        assert_eq!(nums("on 2018-03-17"), vec!["17", "2018", "3"]);
        assert_eq!(nums("on March 17, 2018"), vec!["17", "2018", "3"]);
        assert!(nums("No one may assign it; each one of them agrees.").is_empty());
        assert_eq!(nums("a one-year term"), vec!["1"]);
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
