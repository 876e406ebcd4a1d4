//! What leaves the terminal UI as text: a turn as Markdown (the same for the clipboard and for
//! a saved file), the OSC 52 sequence that puts text on the clipboard of the terminal the UI
//! draws on (over SSH too: the terminal, not the host, owns the clipboard), and the names of
//! saved answers. All of it is pure; the runtime writes the results.

use super::app::{Turn, TurnState, turn_sources};
use super::view::{abstained_note, answer_label, evidence_label, model_label};
use crate::answer::Outcome;
use crate::index::search::Passage;

/// Characters of the question kept in a saved answer's file name.
const SLUG_MAX: usize = 48;

/// The shown turn as Markdown: the question as a heading, the answer as the answer pane shows
/// it (evidence, the model's text, what became of it), then its sources with file, page and
/// the quoted supporting sentence.
pub fn turn_markdown(turn: &Turn) -> String {
    let mut md = format!("## {}\n\n", printable(&one_line(&turn.question)));
    if let Some(i) = turn.indexing {
        md.push_str(&format!("*{}*\n\n", i.note()));
    }
    let outcome = turn.answer.as_ref().map(|a| a.outcome);
    if !turn.evidence.is_empty() {
        md.push_str(&format!("**{}**\n\n", evidence_label(outcome)));
        for e in &turn.evidence {
            md.push_str(&format!("- [{}] {}\n", e.n, location(&e.passage)));
            md.push_str(&format!("  > {}\n", printable(&one_line(&e.quote))));
        }
        md.push('\n');
    }
    match turn.answer.as_deref() {
        Some(a) if a.outcome == Outcome::Evidence => {
            md.push_str(&format!("*{}*\n\n", printable(&model_label(&a.reason))));
            push_lines(&mut md, &a.model_checked);
        }
        _ => {
            if !turn.text.is_empty() && !turn.evidence.is_empty() {
                md.push_str(&format!("**{}**\n\n", answer_label(outcome)));
            }
            push_lines(&mut md, &turn.text);
        }
    }
    let note = match &turn.state {
        TurnState::WaitingForModel | TurnState::Retrieving | TurnState::Generating => {
            "(still answering)".to_string()
        }
        TurnState::Cancelled => "(cancelled)".to_string(),
        TurnState::Failed(why) => format!("failed: {}", printable(&one_line(why))),
        TurnState::Done => turn
            .answer
            .as_deref()
            .filter(|a| a.abstained)
            .map(|a| abstained_note(a).to_string())
            .unwrap_or_default(),
    };
    if !note.is_empty() {
        md.push_str(&format!("*{note}*\n\n"));
    }
    let sources = turn_sources(turn);
    if !sources.is_empty() {
        md.push_str("### Sources\n\n");
        for s in &sources {
            let marker = s.cited.map(|n| format!("[{n}] ")).unwrap_or_default();
            md.push_str(&format!("- {marker}{}\n", location(&s.passage)));
            if !s.quote.is_empty() {
                md.push_str(&format!("  > {}\n", printable(&one_line(&s.quote))));
            }
        }
        md.push('\n');
    }
    // One newline at the end, whatever came last.
    let end = md.trim_end().len();
    md.truncate(end);
    md.push('\n');
    md
}

/// Where a passage is: its file as a code span, its page, its headings.
fn location(p: &Passage) -> String {
    let mut out = code(&crate::shown::name(&p.path));
    if let Some(page) = p.page {
        out.push_str(&format!(", page {page}"));
    }
    if !p.heading.is_empty() {
        out.push_str(&format!(
            " § {}",
            printable(&one_line(&p.heading.join(" > ")))
        ));
    }
    out
}

/// `s` as a Markdown code span, even when it holds backticks itself.
fn code(s: &str) -> String {
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// The lines of a text, then a blank line; nothing for an empty text.
fn push_lines(md: &mut String, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        return;
    }
    for line in text.lines() {
        md.push_str(printable(line).trim_end());
        md.push('\n');
    }
    md.push('\n');
}

fn one_line(s: &str) -> String {
    crate::shown::line(s)
}

/// `s` as the Markdown shows it: an escape sequence in a document must not reach the terminal
/// it is pasted into.
fn printable(s: &str) -> String {
    crate::shown::text(s)
}

/// Standard base64 (RFC 4648, with padding), as OSC 52 carries its payload.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        // A chunk of k bytes fills k + 1 characters; '=' pads the rest.
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The escape sequence that asks the terminal to put `text` on its clipboard: OSC 52 for
/// the clipboard selection (`c`), ended by ST.
pub fn osc52(text: &str) -> String {
    format!("\x1b]52;c;{}\x1b\\", base64(text.as_bytes()))
}

/// The question made fit for a file name: lower case letters and digits (any script), words
/// joined by `-`, at most [`SLUG_MAX`] characters; `answer` when nothing is left.
pub fn slug(question: &str) -> String {
    let mut out = String::new();
    let mut len = 0;
    for c in question.chars().flat_map(char::to_lowercase) {
        if len >= SLUG_MAX {
            break;
        }
        if c.is_alphanumeric() {
            out.push(c);
            len += 1;
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
            len += 1;
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "answer".into()
    } else {
        out.to_string()
    }
}

/// The file name of a saved answer: the local time `stamp`, the question's [`slug`], and from
/// the second `attempt` on a number, so that a name already taken is never overwritten.
pub fn export_file_name(stamp: &str, question: &str, attempt: u32) -> String {
    let slug = slug(question);
    match attempt {
        0 => format!("{stamp}-{slug}.md"),
        n => format!("{stamp}-{slug}-{}.md", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::tests::{answer, evidence, key, notice_passages, passage, turn, typed};
    use super::super::app::{Action, App, ModelState, TurnEvent, WorkerEvent};
    use super::*;
    use crossterm::event::KeyCode;

    fn asked(q: &str) -> App {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, q);
        app.update(key(KeyCode::Enter));
        app
    }

    /// The answered turn of the view's snapshots: evidence, a checked answer with a cited and
    /// an unsupported sentence, a cited and an uncited source.
    fn answered() -> App {
        let mut app = asked("What is the termination notice period?");
        let ps = notice_passages();
        app.update(turn(1, TurnEvent::Evidence(vec![evidence(&ps[0], 1)])));
        let mut a = answer(
            "The notice period is ninety days. [1]\nIt renews by itself. [?]",
            ps.clone(),
            1,
            &ps[0],
        );
        a.timings.generated_tokens = 14;
        app.update(turn(1, TurnEvent::Answered(Box::new(a))));
        app
    }

    #[test]
    fn an_answered_turn_as_markdown() {
        let app = answered();
        let md = turn_markdown(&app.turns[0]);
        insta::assert_snapshot!("answered", md);
    }

    #[test]
    fn an_evidence_led_turn_as_markdown() {
        let mut app = asked("notice?");
        let p = passage("/docs/a`b.md", "0a", "Ninety days\nnotice.\x1b[31m");
        app.update(turn(1, TurnEvent::Evidence(vec![evidence(&p, 1)])));
        let mut a = answer("\"Ninety days notice.\" [1]", vec![p.clone()], 1, &p);
        a.outcome = Outcome::Evidence;
        a.reason = crate::answer::Reason::ModelAbstained;
        a.model_checked = "The documents do not say.".into();
        app.update(turn(1, TurnEvent::Answered(Box::new(a))));
        let md = turn_markdown(&app.turns[0]);
        insta::assert_snapshot!("evidence_lead", md);
        assert!(!md.contains('\x1b'), "no escape reaches the clipboard");
    }

    #[test]
    fn an_unfinished_or_failed_turn_says_so() {
        let mut app = asked("q");
        app.update(turn(1, TurnEvent::Token("Half an".into())));
        let md = turn_markdown(&app.turns[0]);
        assert_eq!(md, "## q\n\nHalf an\n\n*(still answering)*\n");
        app.update(turn(1, TurnEvent::Failed("the model crashed".into())));
        let md = turn_markdown(&app.turns[0]);
        assert!(md.ends_with("*failed: the model crashed*\n"), "{md}");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain:?}");
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "+//+");
        assert_eq!(osc52("é"), "\x1b]52;c;w6k=\x1b\\");
    }

    #[test]
    fn file_names_come_from_the_time_and_the_question() {
        assert_eq!(
            slug("What is the notice period?"),
            "what-is-the-notice-period"
        );
        assert_eq!(slug("  ¿Qué es «folio»?  "), "qué-es-folio");
        assert_eq!(slug("??? / .."), "answer");
        let long = slug(&"word ".repeat(40));
        assert!(
            long.chars().count() <= SLUG_MAX && !long.ends_with('-'),
            "{long}"
        );
        assert_eq!(
            export_file_name("2025-01-31-140205", "Notice?", 0),
            "2025-01-31-140205-notice.md"
        );
        assert_eq!(
            export_file_name("2025-01-31-140205", "Notice?", 1),
            "2025-01-31-140205-notice-2.md"
        );
    }
}
