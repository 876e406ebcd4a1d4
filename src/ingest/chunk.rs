//! Splitting units of text into passages, sized in the embedding model's tokens.
//!
//! Chunking follows structure: heading sections are never mixed, paragraphs are kept whole when
//! they fit, then sentences, then words. Pieces are packed greedily up to a target size, and the
//! trailing sentences of one passage are repeated at the start of the next (overlap), so that a
//! statement cut by a boundary is still whole somewhere. Each passage keeps its page, heading
//! path and character span in the unit's text. A passage is embedded with its heading path in
//! front when it does not itself start with that heading; the whole embedded text always fits
//! the model, so nothing is silently truncated.

use unicode_segmentation::UnicodeSegmentation;

pub use crate::doc::Chunk;
use crate::doc::{MAX_HEADING_CHARS, Unit, heading_title};

/// Sizes in word pieces of the embedding model, special tokens excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkOptions {
    /// Size passages are packed up to.
    pub target: usize,
    /// Hard limit of the embedded text (heading context included): what the model reads.
    pub max: usize,
    /// Tokens of trailing pieces repeated in the next passage.
    pub overlap: usize,
}

const CONTEXT_SEP: &str = " > ";

/// The most bytes of text one token may stand for when passages are sized (English averages
/// about five): a passage of 256 tokens holds at most 6 KiB.
const MAX_TOKEN_BYTES: usize = 24;

#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
}

/// Splits `units` into passages numbered across all of them.
pub fn chunk_units(
    units: &[Unit],
    opts: &ChunkOptions,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Chunk> {
    // One word piece can stand for any length of text (a megabyte "word" is one unknown
    // token): sizes also count one token per MAX_TOKEN_BYTES, so that no passage holds more
    // text than a reader, the index and a search result can take.
    // Text that long is over any budget (each budget is at most `opts.max`) whatever the
    // tokenizer says; not tokenizing it keeps a 60 MB one-line file from costing gigabytes.
    let weigh = |s: &str| {
        let floor = s.len() / MAX_TOKEN_BYTES;
        if floor > opts.max {
            floor
        } else {
            count(s).max(floor)
        }
    };
    let count = &weigh;
    let mut out = Vec::new();
    for unit in units {
        for (start, end, heading) in section_ranges(unit) {
            // Extractors cut their headings; a unit from elsewhere (inline documents) may not.
            let capped: Vec<String>;
            let heading = if heading
                .iter()
                .any(|h| h.chars().count() > MAX_HEADING_CHARS)
            {
                capped = heading.iter().map(|h| heading_title(h)).collect();
                &capped[..]
            } else {
                heading
            };
            let full_context = heading.join(CONTEXT_SEP);
            let budget = opts.max.saturating_sub(count(&full_context)).max(8);
            let target = opts.target.min(budget).max(1);
            let pieces = split_pieces(&unit.text, start, end, budget, count);
            let mut groups: Vec<Vec<Piece>> = Vec::new();
            let mut cur: Vec<Piece> = Vec::new();
            let mut cur_tokens = 0;
            for p in pieces {
                if !cur.is_empty() && cur_tokens + p.tokens > target {
                    let mut tail: Vec<Piece> = Vec::new();
                    let mut tail_tokens = 0;
                    for q in cur[1..].iter().rev() {
                        if tail_tokens + q.tokens > opts.overlap
                            || tail_tokens + q.tokens + p.tokens > budget
                        {
                            break;
                        }
                        tail.insert(0, *q);
                        tail_tokens += q.tokens;
                    }
                    groups.push(std::mem::replace(&mut cur, tail));
                    cur_tokens = tail_tokens;
                }
                cur_tokens += p.tokens;
                cur.push(p);
            }
            if !cur.is_empty() {
                groups.push(cur);
            }
            let section_start = groups.first().and_then(|g| g.first()).map(|p| p.start);
            for g in groups {
                emit(unit, &g, heading, section_start, opts, count, &mut out);
            }
        }
    }
    out
}

/// One passage per unit, whole: the layout MTEB uses to score a sentence encoder, where the
/// model itself cuts what exceeds its limit. Only `folio eval --whole-docs` uses it.
pub fn whole_units(units: &[Unit]) -> Vec<Chunk> {
    units
        .iter()
        .enumerate()
        .map(|(i, u)| Chunk {
            ordinal: i as u32,
            page: u.page,
            heading: u
                .sections
                .first()
                .map(|s| s.heading.clone())
                .unwrap_or_default(),
            start: 0,
            end: u.text.chars().count(),
            text: u.text.clone(),
            context: String::new(),
        })
        .collect()
}

fn emit(
    unit: &Unit,
    group: &[Piece],
    heading: &[String],
    section_start: Option<usize>,
    opts: &ChunkOptions,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Chunk>,
) {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return;
    };
    // A passage that opens its section already carries the heading line itself.
    let context = if Some(first.start) == section_start && !heading.is_empty() {
        heading[..heading.len() - 1].join(CONTEXT_SEP)
    } else {
        heading.join(CONTEXT_SEP)
    };
    let text = &unit.text[first.start..last.end];
    let chunk = Chunk {
        ordinal: out.len() as u32,
        page: unit.page,
        heading: heading.to_vec(),
        start: char_offset(&unit.text, first.start),
        end: char_offset(&unit.text, last.end),
        text: text.to_string(),
        context,
    };
    // Word-piece counts add up across whitespace, so sums are exact for BERT vocabularies; the
    // check makes the limit hold for any tokenizer.
    if group.len() > 1 && count(&chunk.embed_text()) > opts.max {
        let (a, b) = group.split_at(group.len() / 2);
        emit(unit, a, heading, section_start, opts, count, out);
        emit(unit, b, heading, section_start, opts, count, out);
        return;
    }
    out.push(chunk);
}

fn char_offset(text: &str, byte: usize) -> usize {
    let prefix = &text[..byte];
    if prefix.is_ascii() {
        byte
    } else {
        prefix.chars().count()
    }
}

/// Byte ranges of a unit's sections with their heading paths. A section holding only its
/// heading line joins the next one, so that no passage is a bare heading.
fn section_ranges(unit: &Unit) -> Vec<(usize, usize, &[String])> {
    let text = &unit.text;
    let mut bounds: Vec<(usize, &[String])> = Vec::new();
    if unit.sections.first().is_none_or(|s| s.start > 0) {
        bounds.push((0, &[]));
    }
    for s in &unit.sections {
        if s.start <= text.len() && text.is_char_boundary(s.start) {
            bounds.push((s.start, &s.heading));
        }
    }
    let mut ranges = Vec::new();
    let mut carry: Option<usize> = None;
    for (i, &(start, heading)) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map(|b| b.0).unwrap_or(text.len());
        let start = carry.take().unwrap_or(start);
        let body = &text[start..end];
        if body.trim().is_empty() {
            continue;
        }
        let after_first_line = body.find('\n').map(|n| &body[n..]).unwrap_or("");
        let is_last = i + 1 == bounds.len();
        if !heading.is_empty() && after_first_line.trim().is_empty() && !is_last {
            carry = Some(start);
            continue;
        }
        ranges.push((start, end, heading));
    }
    ranges
}

/// Pieces of `text[start..end]` no larger than `budget` tokens: paragraphs, else sentences,
/// else runs of words, else runs of characters.
fn split_pieces(
    text: &str,
    start: usize,
    end: usize,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Vec<Piece> {
    let mut out = Vec::new();
    for (ps, pe) in paragraphs(text, start, end) {
        let tokens = count(&text[ps..pe]);
        if tokens <= budget {
            out.push(Piece {
                start: ps,
                end: pe,
                tokens,
            });
            continue;
        }
        for (i, s) in windows(text, ps, pe).flat_map(|(ws, we)| {
            text[ws..we]
                .split_sentence_bound_indices()
                .map(move |(i, s)| (ws + i, s))
        }) {
            let Some((ss, se)) = trimmed(text, i, i + s.len()) else {
                continue;
            };
            let tokens = count(&text[ss..se]);
            if tokens <= budget {
                out.push(Piece {
                    start: ss,
                    end: se,
                    tokens,
                });
            } else {
                split_words(text, ss, se, budget, count, &mut out);
            }
        }
    }
    out
}

/// How much of a paragraph sentence segmentation looks at in one go. Its rules look ahead
/// past punctuation to the next letter, so on a long run without letters (a ruler of dashes,
/// a table's pipes) every position scans to the end: quadratic in the run. Windows far larger
/// than a passage keep the sentences a passage is made of and bound that scan.
const SENTENCE_WINDOW: usize = 4096;

/// `text[start..end]` in windows of at most [`SENTENCE_WINDOW`] bytes, cut after whitespace
/// where the second half of a window has some.
fn windows(text: &str, start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let mut cut = (at + SENTENCE_WINDOW).min(end);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut < end {
            let mut mid = at + SENTENCE_WINDOW / 2;
            while !text.is_char_boundary(mid) {
                mid += 1;
            }
            if let Some(ws) = text[mid..cut].rfind(char::is_whitespace) {
                let c = mid + ws;
                cut = c + text[c..].chars().next().map_or(1, char::len_utf8);
            }
        }
        let window = (at, cut);
        at = window.1;
        Some(window)
    })
}

fn split_words(
    text: &str,
    start: usize,
    end: usize,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Piece>,
) {
    let mut cur: Option<Piece> = None;
    let slice = &text[start..end];
    let words = slice
        .split_whitespace()
        .map(|w| {
            let ws = w.as_ptr() as usize - slice.as_ptr() as usize + start;
            (ws, ws + w.len())
        })
        .collect::<Vec<_>>();
    for (ws, we) in words {
        let tokens = count(&text[ws..we]);
        if tokens > budget {
            if let Some(c) = cur.take() {
                out.push(c);
            }
            split_chars(text, ws, we, budget, count, out);
            continue;
        }
        match cur.as_mut() {
            Some(c) if c.tokens + tokens <= budget => {
                c.end = we;
                c.tokens += tokens;
            }
            _ => {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(Piece {
                    start: ws,
                    end: we,
                    tokens,
                });
            }
        }
    }
    if let Some(c) = cur {
        out.push(c);
    }
}

/// A single "word" over budget (a hash, a URL, base64): halve it until the parts fit.
fn split_chars(
    text: &str,
    start: usize,
    end: usize,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
    out: &mut Vec<Piece>,
) {
    let tokens = count(&text[start..end]);
    let chars = text[start..end].chars().count();
    if tokens <= budget || chars <= 1 {
        out.push(Piece { start, end, tokens });
        return;
    }
    let mut mid = start
        + text[start..end]
            .char_indices()
            .nth(chars / 2)
            .map(|(i, _)| i)
            .unwrap_or(0);
    while !text.is_char_boundary(mid) {
        mid += 1;
    }
    split_chars(text, start, mid, budget, count, out);
    split_chars(text, mid, end, budget, count, out);
}

/// Byte ranges of paragraphs (separated by blank lines) in `text[start..end]`, trimmed.
fn paragraphs(text: &str, start: usize, end: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let slice = &text[start..end];
    let mut para_start = 0;
    let mut pos = 0;
    let mut prev_blank = false;
    for line in slice.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        if blank
            && !prev_blank
            && let Some(r) = trimmed(text, start + para_start, start + pos)
        {
            out.push(r);
        }
        if !blank && prev_blank {
            para_start = pos;
        }
        prev_blank = blank;
        pos += line.len();
    }
    if !prev_blank && let Some(r) = trimmed(text, start + para_start, start + pos) {
        out.push(r);
    }
    out
}

fn trimmed(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let s = &text[start..end];
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    if t.is_empty() {
        None
    } else {
        Some((start + lead, start + lead + t.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzing suite: a sentence followed by a long run without letters made
    /// sentence segmentation quadratic (200 KB took minutes). Windows keep it linear.
    #[test]
    fn a_long_run_without_letters_is_cut_in_linear_time() {
        let text = format!(
            "It ends. {} and then {}",
            "-".repeat(200_000),
            "| ".repeat(50_000)
        );
        let unit = Unit::plain(None, text.clone());
        let opts = ChunkOptions {
            target: 200,
            max: 256,
            overlap: 32,
        };
        let count = |s: &str| s.len() / 4 + 1;
        let started = std::time::Instant::now();
        let chunks = chunk_units(&[unit], &opts, &count);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Nothing lost: the passages cover the text.
        let covered: usize = chunks.iter().map(|c| c.end).max().unwrap_or(0);
        assert_eq!(covered, text.trim_end().chars().count());
    }

    /// A megabyte "word" is one unknown token to a BERT vocabulary: it must still be cut
    /// into passages a search result can print.
    #[test]
    fn a_megabyte_word_is_cut_into_bounded_passages() {
        let text = format!("# {}\nafter\n", "a".repeat(1_000_000));
        let unit = Unit::plain(None, text);
        let opts = ChunkOptions {
            target: 200,
            max: 256,
            overlap: 32,
        };
        // Long words count as one token, as an unknown word piece does.
        let count = |s: &str| s.split_whitespace().count();
        let chunks = chunk_units(&[unit], &opts, &count);
        assert!(chunks.len() > 100, "{}", chunks.len());
        for c in &chunks {
            assert!(c.text.len() <= 256 * MAX_TOKEN_BYTES, "{}", c.text.len());
        }
    }

    /// A 60 MB one-line text made the tokenizer hold gigabytes: text far over any budget is
    /// never handed to it whole.
    #[test]
    fn the_tokenizer_never_sees_text_far_over_budget() {
        let text = "word ".repeat(400_000);
        let opts = ChunkOptions {
            target: 200,
            max: 256,
            overlap: 32,
        };
        let count = |s: &str| {
            assert!(
                s.len() <= 256 * MAX_TOKEN_BYTES,
                "tokenized {} bytes",
                s.len()
            );
            s.split_whitespace().count()
        };
        let chunks = chunk_units(&[Unit::plain(None, text)], &opts, &count);
        assert!(chunks.len() > 1000);
    }

    #[test]
    fn windows_cover_the_text_at_whitespace_and_char_boundaries() {
        let text = "é ".repeat(5000) + &"ü".repeat(3000);
        let w: Vec<(usize, usize)> = windows(&text, 0, text.len()).collect();
        assert_eq!(w.first().map(|w| w.0), Some(0));
        assert_eq!(w.last().map(|w| w.1), Some(text.len()));
        for pair in w.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        for &(a, b) in &w {
            assert!(text.is_char_boundary(a) && text.is_char_boundary(b) && b > a);
            assert!(b - a <= SENTENCE_WINDOW);
        }
    }
    use crate::ingest::Section;
    use proptest::prelude::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    fn opts(target: usize, max: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions {
            target,
            max,
            overlap,
        }
    }

    #[test]
    fn small_unit_is_one_chunk_with_span() {
        let u = Unit::plain(Some(3), "  Hello there. General Kenobi.\n".into());
        let c = chunk_units(&[u], &opts(50, 60, 5), &words);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, "Hello there. General Kenobi.");
        assert_eq!((c[0].start, c[0].end), (2, 30));
        assert_eq!(c[0].page, Some(3));
    }

    #[test]
    fn sentences_pack_with_overlap() {
        let text = "One two three. Four five six. Seven eight nine. Ten eleven twelve.";
        let c = chunk_units(&[Unit::plain(None, text.into())], &opts(6, 8, 3), &words);
        let texts: Vec<_> = c.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "One two three. Four five six.",
                "Four five six. Seven eight nine.",
                "Seven eight nine. Ten eleven twelve."
            ]
        );
        assert_eq!(
            c.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn headings_bound_chunks_and_give_context() {
        let text = "# Alpha\n\na1 a2 a3.\n\na4 a5 a6.\n\n# Beta\n\nb1 b2.\n";
        let beta = text.find("# Beta").unwrap();
        let u = Unit {
            page: None,
            text: text.into(),
            sections: vec![
                Section {
                    start: 0,
                    heading: vec!["Alpha".into()],
                },
                Section {
                    start: beta,
                    heading: vec!["Beta".into()],
                },
            ],
        };
        let c = chunk_units(&[u], &opts(5, 12, 0), &words);
        assert_eq!(c.len(), 3, "{c:#?}");
        assert_eq!(c[0].text, "# Alpha\n\na1 a2 a3.");
        assert_eq!(c[0].context, "");
        assert_eq!(c[1].text, "a4 a5 a6.");
        assert_eq!(c[1].context, "Alpha");
        assert_eq!(c[1].embed_text(), "Alpha\na4 a5 a6.");
        assert_eq!(c[2].heading, vec!["Beta"]);
        assert!(c[2].text.starts_with("# Beta"));
    }

    #[test]
    fn bare_heading_joins_the_next_section() {
        let text = "# Top\n## Sub\nbody words here\n";
        let u = Unit {
            page: None,
            text: text.into(),
            sections: vec![
                Section {
                    start: 0,
                    heading: vec!["Top".into()],
                },
                Section {
                    start: 6,
                    heading: vec!["Top".into(), "Sub".into()],
                },
            ],
        };
        let c = chunk_units(&[u], &opts(50, 60, 0), &words);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, text.trim());
        assert_eq!(c[0].heading, vec!["Top", "Sub"]);
    }

    #[test]
    fn giant_word_is_cut_to_fit() {
        let count = |s: &str| s.chars().count().div_ceil(4);
        let text = "x".repeat(100);
        let c = chunk_units(&[Unit::plain(None, text)], &opts(10, 10, 0), &count);
        // 25 "tokens" of one word, at most 10 a chunk: cut, and nothing lost.
        assert!(c.len() >= 3, "{c:?}");
        assert!(c.iter().all(|c| count(&c.embed_text()) <= 10));
        assert_eq!(c.iter().map(|c| c.end - c.start).sum::<usize>(), 100);
    }

    #[test]
    fn char_offsets_count_characters_not_bytes() {
        let text = "é".repeat(3) + " word";
        let c = chunk_units(&[Unit::plain(None, text)], &opts(50, 60, 0), &words);
        assert_eq!((c[0].start, c[0].end), (0, 8));
    }

    proptest! {
        #[test]
        fn chunks_fit_cover_and_point_back(
            paras in proptest::collection::vec(
                proptest::collection::vec("[a-zé]{1,12}( [a-z]{1,8}){0,30}[.!?]", 1..6), 1..8),
            target in 4usize..40, overlap in 0usize..10, heading in proptest::option::of("[A-Z][a-z]{1,10}"),
        ) {
            let text: String = paras.iter().map(|p| p.join(" ")).collect::<Vec<_>>().join("\n\n");
            let sections = heading.iter().map(|h| Section { start: 0, heading: vec![h.clone()] }).collect();
            let unit = Unit { page: None, text: text.clone(), sections };
            let max = target + 10;
            let chunks = chunk_units(std::slice::from_ref(&unit), &opts(target, max, overlap), &words);
            let chars: Vec<char> = text.chars().collect();
            let mut covered = vec![false; chars.len()];
            for c in &chunks {
                prop_assert!(words(&c.embed_text()) <= max, "over limit: {:?}", c);
                let span: String = chars[c.start..c.end].iter().collect();
                prop_assert_eq!(&span, &c.text);
                covered[c.start..c.end].iter_mut().for_each(|x| *x = true);
            }
            for (i, ch) in chars.iter().enumerate() {
                prop_assert!(covered[i] || ch.is_whitespace(), "char {} not covered", i);
            }
        }
    }
}
