//! Snippets: a window of a passage around the query's matches, with the matches marked.
//!
//! Pure text work shared by the command line and the terminal UI: given a passage and the byte
//! ranges where query terms matched, pick the window of about `width` characters holding the
//! most matches, collapse whitespace, and return it as plain and highlighted segments.

/// A piece of a snippet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub text: String,
    pub highlight: bool,
}

/// Builds a snippet of about `width` characters from `text`, marking `matches` (byte ranges,
/// ascending). Without matches, the snippet is the start of the text.
pub fn snippet(text: &str, matches: &[(usize, usize)], width: usize) -> Vec<Segment> {
    let width = width.max(20);
    let (start, end) = window(text, matches, width);
    let mut segs: Vec<Segment> = Vec::new();
    let mut push = |s: &str, highlight: bool| {
        let collapsed = collapse(s);
        if collapsed.is_empty() {
            return;
        }
        match segs.last_mut() {
            Some(last) if last.highlight == highlight => last.text.push_str(&collapsed),
            _ => segs.push(Segment {
                text: collapsed,
                highlight,
            }),
        }
    };
    if start > 0 {
        push("…", false);
    }
    let mut pos = start;
    for &(ms, me) in matches {
        if me <= start || ms >= end || ms < pos {
            continue;
        }
        push(&text[pos..ms], false);
        push(&text[ms..me.min(end)], true);
        pos = me.min(end);
    }
    push(&text[pos..end], false);
    if end < text.len() {
        push("…", false);
    }
    // Whitespace collapsing may leave a leading space at a cut; trim the ends.
    if let Some(first) = segs.first_mut() {
        first.text = first.text.trim_start().to_string();
    }
    if let Some(last) = segs.last_mut() {
        last.text = last.text.trim_end().to_string();
    }
    segs.retain(|s| !s.text.is_empty());
    segs
}

/// Whitespace runs (newlines included) become one space.
fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            out.push(c);
            space = false;
        }
    }
    out
}

/// Byte range of the window: starts a little before the match that begins the run holding the
/// most distinct matched words (then the most matches), snapped to word boundaries. Distinct
/// words first, so that a common word repeated many times does not hide the rarer ones.
fn window(text: &str, matches: &[(usize, usize)], width: usize) -> (usize, usize) {
    let lead = width / 5;
    let word = |&(s, e): &(usize, usize)| text.get(s..e).unwrap_or("").to_lowercase();
    let mut best = ((0usize, 0usize), 0usize); // ((distinct, count), start)
    for (i, &(ms, _)) in matches.iter().enumerate() {
        let inside: Vec<String> = matches[i..]
            .iter()
            .take_while(|m| m.1 <= ms + width - lead)
            .map(word)
            .collect();
        let count = inside.len();
        let distinct = inside
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        if (distinct, count) > best.0 {
            best = ((distinct, count), ms.saturating_sub(lead));
        }
    }
    let mut start = floor_boundary(text, best.1);
    if start > 0 {
        // Start at the next word, not mid-word.
        start = text[start..]
            .find(char::is_whitespace)
            .map(|i| start + i)
            .filter(|&s| matches.first().is_none_or(|m| s <= m.0))
            .unwrap_or(start);
    }
    let mut end = floor_boundary(text, (start + width).min(text.len()));
    if end < text.len() {
        end = text[..end]
            .rfind(char::is_whitespace)
            .filter(|&e| e > start)
            .unwrap_or(end);
    }
    (start, end)
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(segs: &[Segment]) -> String {
        segs.iter()
            .map(|s| {
                if s.highlight {
                    format!("[{}]", s.text)
                } else {
                    s.text.clone()
                }
            })
            .collect()
    }

    #[test]
    fn prefers_the_window_with_more_distinct_words() {
        let text = format!(
            "{} {}",
            "acme acme acme acme filler",
            "x ".repeat(60) + "notice period here"
        );
        let m: Vec<(usize, usize)> = text
            .match_indices("acme")
            .chain(text.match_indices("notice"))
            .chain(text.match_indices("period"))
            .map(|(i, w)| (i, i + w.len()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let r = render(&snippet(&text, &m, 40));
        assert!(r.contains("[notice] [period]"), "{r}");
    }

    #[test]
    fn marks_matches_and_collapses_space() {
        let text = "The notice\nperiod is  thirty days.";
        let m = [(11, 17)];
        assert_eq!(
            render(&snippet(text, &m, 200)),
            "The notice [period] is thirty days."
        );
    }

    #[test]
    fn windows_around_the_densest_matches() {
        let text = format!("{} alpha beta gamma {}", "x ".repeat(200), "y ".repeat(200));
        let a = text.find("alpha").unwrap();
        let b = text.find("beta").unwrap();
        let s = render(&snippet(&text, &[(a, a + 5), (b, b + 4)], 60));
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("[alpha] [beta] gamma"), "{s}");
        assert!(s.chars().count() <= 64, "{s}");
    }

    #[test]
    fn no_matches_shows_the_start() {
        let s = render(&snippet("one two three four five six", &[], 20));
        assert!(s.starts_with("one two"), "{s}");
    }

    #[test]
    fn multibyte_text_is_cut_on_boundaries() {
        let text = "é".repeat(100);
        let s = render(&snippet(&text, &[(50, 52)], 30));
        assert!(s.contains("[é]"), "{s}");
    }
}
