//! Drawing: reads the [`App`] state and renders it; changes nothing but the frame.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{
    App, Areas, Focus, InputMode, ModelState, ScrollLimits, SourceRow, TurnState, first_visible,
};
use crate::answer::{Answer, NO_ANSWER, Outcome, Reason};

/// The panes for a frame of `area`.
pub fn layout(area: Rect) -> Areas {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(3),
            Constraint::Min(6),
            Constraint::Length(1),
        ])
        .split(area);
    // Wide terminals get the preview beside the answer; narrow ones below it.
    let (answer, sources, preview) = if area.width >= 140 {
        let cols = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
            .split(rows[1]);
        let right = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
            .split(cols[1]);
        (cols[0], right[0], right[1])
    } else {
        let body = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(62), Constraint::Percentage(38)])
            .split(rows[1]);
        let top = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(58), Constraint::Percentage(42)])
            .split(body[0]);
        (top[0], top[1], body[1])
    };
    Areas {
        input: rows[0],
        answer,
        sources,
        preview,
        status: rows[2],
    }
}

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn dim(&self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    fn citation(&self, valid: bool) -> Style {
        if valid {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.fg(Color::Red)
                .add_modifier(Modifier::BOLD | Modifier::CROSSED_OUT)
        }
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn passage(&self) -> Style {
        if self.color {
            Style::default().bg(Color::Rgb(40, 48, 64))
        } else {
            Style::default().add_modifier(Modifier::UNDERLINED)
        }
    }
    fn quote(&self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
}

fn block<'a>(title: String, focused: bool, t: &Theme) -> Block<'a> {
    let style = if focused {
        t.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style))
}

pub fn draw(frame: &mut Frame, app: &App) {
    let t = Theme { color: app.color };
    let a = layout(frame.area());
    draw_input(frame, app, &t, a.input);
    draw_answer(frame, app, &t, a.answer);
    let sources = app.sources();
    draw_sources(frame, app, &t, a.sources, &sources);
    draw_preview(frame, app, &t, a.preview, &sources);
    draw_status(frame, app, &t, a.status);
    if app.failed_view {
        draw_failed(frame, app, &t);
    }
    if app.help {
        draw_help(frame, &t);
    }
}

fn draw_input(frame: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let title = match app.mode {
        InputMode::Ask => " Ask (Enter) ".to_string(),
        InputMode::Search => " Search as you type (a: back to asking) ".to_string(),
    };
    let focused = app.focus == Focus::Input;
    let inner_w = area.width.saturating_sub(4) as usize;
    // Keep the cursor visible in a long question: show its tail.
    let chars: Vec<char> = app.input.chars().collect();
    let start = app.cursor.saturating_sub(inner_w.saturating_sub(1));
    let visible: String = chars.iter().skip(start).take(inner_w).collect();
    let line = if app.input.is_empty() && !focused {
        Line::from(Span::styled("press a to ask, / to search", t.dim()))
    } else {
        Line::from(vec![Span::styled("> ", t.bold()), Span::raw(visible)])
    };
    frame.render_widget(Paragraph::new(line).block(block(title, focused, t)), area);
    if focused {
        let x = area.x + 3 + (app.cursor - start) as u16;
        frame.set_cursor_position((x.min(area.right().saturating_sub(2)), area.y + 1));
    }
}

/// The answer's text with `[n]` markers styled: valid ones highlighted, numbers that name no
/// passage marked, `[?]` (unsupported) and `[unverified: …]` (figures the source lacks) flagged.
fn answer_spans<'a>(text: &'a str, passages: usize, t: &Theme) -> Vec<Span<'a>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else {
            break;
        };
        let inner = &rest[open + 1..close];
        let style = if inner == "?" || inner.starts_with("unverified: ") {
            Some(t.fg(Color::Yellow).add_modifier(Modifier::BOLD))
        } else if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
            let n: usize = inner.parse().unwrap_or(0);
            Some(t.citation(n >= 1 && n <= passages))
        } else {
            None
        };
        match style {
            Some(s) => {
                if open > 0 {
                    out.push(Span::raw(&rest[..open]));
                }
                out.push(Span::styled(&rest[open..=close], s));
            }
            None => out.push(Span::raw(&rest[..=close])),
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        out.push(Span::raw(rest));
    }
    out
}

fn draw_answer(frame: &mut Frame, app: &App, t: &Theme, area: Rect) {
    let focused = app.focus == Focus::Answer;
    let Some((title, text)) = answer_text(app, t) else {
        let welcome = Text::from(vec![
            Line::from(Span::styled("Ask about your documents.", t.bold())),
            Line::from(""),
            Line::from(
                "Type a question and press Enter: the answer streams here, each claim's source \
                 cited as [n] and listed under Sources.",
            ),
            Line::from(""),
            Line::from(
                "Esc leaves the question box · Tab moves between panes · / searches as you type \
                 · ? shows every key · q quits",
            ),
        ]);
        frame.render_widget(
            Paragraph::new(welcome)
                .wrap(Wrap { trim: false })
                .block(block(" Answer ".into(), focused, t)),
            area,
        );
        return;
    };
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .scroll((app.answer_scroll, 0))
            .block(block(title, focused, t)),
        area,
    );
}

/// The answer pane's title and text for the shown turn; `None` before the first question.
fn answer_text<'a>(app: &'a App, t: &Theme) -> Option<(String, Text<'a>)> {
    let turn = app.current()?;
    let title = if app.turns.len() > 1 {
        format!(
            " Answer {}/{} ([ ] history) ",
            app.shown + 1,
            app.turns.len()
        )
    } else {
        " Answer ".to_string()
    };
    let mut lines = vec![Line::from(vec![
        Span::styled("Q: ", t.bold()),
        Span::styled(turn.question.as_str(), t.bold()),
    ])];
    if let Some(i) = turn.indexing {
        lines.push(Line::from(Span::styled(i.note(), t.fg(Color::Yellow))));
    }
    lines.push(Line::from(""));
    let passages = turn
        .answer
        .as_ref()
        .map(|a| a.passages.len())
        .unwrap_or(turn.passages.len());
    let outcome = turn.answer.as_ref().map(|a| a.outcome);
    // The evidence first, quoted, as soon as it is found: it does not wait for the model.
    // When the model could not answer, the evidence is the answer.
    if !turn.evidence.is_empty() {
        lines.push(Line::from(Span::styled(evidence_label(outcome), t.bold())));
        for e in &turn.evidence {
            let mut where_ = file_name(&e.passage.path);
            if let Some(p) = e.passage.page {
                where_.push_str(&format!(" p.{p}"));
            }
            lines.push(Line::from(vec![
                Span::styled(format!("[{}] ", e.n), t.citation(true)),
                Span::styled(where_, t.dim()),
            ]));
            lines.push(Line::from(format!(
                "  “{}”",
                e.quote.split_whitespace().collect::<Vec<_>>().join(" ")
            )));
        }
        lines.push(Line::from(""));
    }
    match turn.answer.as_deref() {
        Some(a) if a.outcome == Outcome::Evidence => {
            lines.push(Line::from(Span::styled(model_label(&a.reason), t.dim())));
            for l in a.model_checked.lines() {
                lines.push(Line::from(Span::styled(l.to_string(), t.dim())));
            }
        }
        _ => {
            if !turn.text.is_empty() && !turn.evidence.is_empty() {
                lines.push(Line::from(Span::styled(answer_label(outcome), t.bold())));
            }
            for l in turn.text.lines() {
                lines.push(Line::from(answer_spans(l, passages, t)));
            }
        }
    }
    let state = match &turn.state {
        TurnState::WaitingForModel => Some(Span::styled(
            "waiting for the model to finish loading…",
            t.fg(Color::Yellow),
        )),
        TurnState::Retrieving => Some(Span::styled("retrieving passages…", t.dim())),
        TurnState::Generating if turn.tokens_per_s > 0.0 => Some(Span::styled(
            format!(
                "generating… {:.1} tokens/s (Esc cancels)",
                turn.tokens_per_s
            ),
            t.dim(),
        )),
        TurnState::Generating => Some(Span::styled("generating… (Esc cancels)", t.dim())),
        TurnState::Cancelled => Some(Span::styled("(cancelled)", t.fg(Color::Yellow))),
        TurnState::Failed(why) => Some(Span::styled(format!("failed: {why}"), t.fg(Color::Red))),
        TurnState::Done => match &turn.answer {
            Some(a) if a.abstained => Some(Span::styled(abstained_note(a), t.dim())),
            Some(a) if a.timings.generated_tokens > 0 => Some(Span::styled(
                format!(
                    "{} tokens, {:.1} tokens/s · evidence after {:.0} ms · first token after {:.1} s",
                    a.timings.generated_tokens,
                    a.timings.tokens_per_s,
                    a.timings.retrieve_ms + a.timings.evidence_ms,
                    a.timings.first_token_ms / 1000.0
                ),
                t.dim(),
            )),
            _ => None,
        },
    };
    if let Some(s) = state {
        lines.push(Line::from(""));
        lines.push(Line::from(s));
    }
    Some((title, Text::from(lines)))
}

/// The heading over the evidence: it is the answer when the model's could not stand.
pub(super) fn evidence_label(outcome: Option<Outcome>) -> &'static str {
    if outcome == Some(Outcome::Evidence) {
        "Answer, quoted from the documents:"
    } else {
        "Evidence, quoted from the documents:"
    }
}

/// The heading over the model's text when the evidence leads instead: why it does.
pub(super) fn model_label(reason: &Reason) -> String {
    match reason {
        Reason::ModelAbstained => "The model said the passages hold no answer:".to_string(),
        Reason::ModelFailed(e) => format!("The model failed: {e}"),
        Reason::Cancelled => "Generation was cancelled:".to_string(),
        _ => "The model, not supported by the passages:".to_string(),
    }
}

/// The heading over the model's text below the evidence.
pub(super) fn answer_label(outcome: Option<Outcome>) -> &'static str {
    match outcome {
        Some(Outcome::Answered) => "Answer, checked against the passages:",
        _ => "The model:",
    }
}

/// What an abstention adds below its answer (nothing when the answer says it all).
pub(super) fn abstained_note(a: &Answer) -> &'static str {
    match (a.answer == NO_ANSWER, a.passages.is_empty()) {
        (true, false) => "The closest passages are listed under Sources.",
        (true, true) if a.indexing.is_some() => "No passage has been indexed that matches yet.",
        (true, true) => "No passage matches the question.",
        _ => "",
    }
}

fn file_name(path: &str) -> String {
    crate::shown::name(path.rsplit('/').next().unwrap_or(path))
}

fn source_label(s: &SourceRow) -> String {
    let mut label = match s.cited {
        Some(n) => format!("[{n}] "),
        None => "    ".to_string(),
    };
    label.push_str(&file_name(&s.passage.path));
    if let Some(p) = s.passage.page {
        label.push_str(&format!(" p.{p}"));
    }
    label
}

fn draw_sources(frame: &mut Frame, app: &App, t: &Theme, area: Rect, sources: &[SourceRow]) {
    let focused = app.focus == Focus::Sources;
    let title = match app.mode {
        InputMode::Search if app.search_query.is_empty() => " Results ".to_string(),
        InputMode::Search => format!(" Results: {} ", sources.len()),
        InputMode::Ask => " Sources ".to_string(),
    };
    let width = area.width.saturating_sub(2) as usize;
    let first = first_visible(app.selected, area.height);
    let mut lines = Vec::new();
    if sources.is_empty() {
        lines.push(Line::from(Span::styled(
            match app.mode {
                InputMode::Search => "type to search",
                InputMode::Ask => "no passages yet",
            },
            t.dim(),
        )));
    }
    for (i, s) in sources.iter().enumerate().skip(first) {
        let sel = i == app.selected;
        let score = format!("{:.2}", s.passage.score);
        let label = source_label(s);
        let pad = width.saturating_sub(label.chars().count() + score.len() + 1);
        let mut first_line = vec![
            Span::styled(
                label,
                if s.cited.is_some() {
                    t.citation(true)
                } else {
                    Style::default()
                },
            ),
            Span::raw(" ".repeat(pad + 1)),
            Span::styled(score, t.dim()),
        ];
        let detail = if !s.quote.is_empty() {
            format!(
                "    “{}”",
                s.quote.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        } else if !s.passage.heading.is_empty() {
            format!("    {}", s.passage.heading.join(" > "))
        } else {
            format!(
                "    {}",
                s.passage
                    .text
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let detail: String = detail.chars().take(width).collect();
        let mut second = vec![Span::styled(detail, t.dim())];
        if sel {
            for sp in first_line.iter_mut().chain(second.iter_mut()) {
                sp.style = sp.style.patch(t.selected());
            }
        }
        lines.push(Line::from(first_line));
        lines.push(Line::from(second));
    }
    frame.render_widget(
        Paragraph::new(Text::from(lines)).block(block(title, focused, t)),
        area,
    );
}

/// Splits `text` into spans, styling the character range `passage` and, inside it, `quote`.
/// `text`'s lines with their own copies of the strings, to outlive what they were cut from.
fn owned_lines(text: Text<'_>) -> Vec<Line<'static>> {
    text.lines
        .into_iter()
        .map(|l| {
            Line::from(
                l.spans
                    .into_iter()
                    .map(|sp| Span::styled(sp.content.into_owned(), sp.style))
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

fn highlighted<'a>(
    text: &'a str,
    passage: [usize; 2],
    quote: Option<[usize; 2]>,
    t: &Theme,
) -> Text<'a> {
    // Boundaries in characters, mapped to bytes once.
    let byte = |c: usize| {
        text.char_indices()
            .nth(c)
            .map(|(b, _)| b)
            .unwrap_or(text.len())
    };
    let mut cuts = vec![0, passage[0], passage[1], text.chars().count()];
    if let Some(q) = quote {
        cuts.extend([q[0], q[1]]);
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut lines: Vec<Line> = vec![Line::default()];
    for w in cuts.windows(2) {
        let (s, e) = (w[0], w[1]);
        let style = if quote.is_some_and(|q| s >= q[0] && e <= q[1]) {
            t.quote()
        } else if s >= passage[0] && e <= passage[1] {
            t.passage()
        } else {
            Style::default()
        };
        let piece = &text[byte(s)..byte(e)];
        for (i, part) in piece.split('\n').enumerate() {
            if i > 0 {
                lines.push(Line::default());
            }
            if !part.is_empty()
                && let Some(l) = lines.last_mut()
            {
                l.spans.push(Span::styled(part, style));
            }
        }
    }
    Text::from(lines)
}

fn draw_preview(frame: &mut Frame, app: &App, t: &Theme, area: Rect, sources: &[SourceRow]) {
    let focused = app.focus == Focus::Preview;
    let Some(src) = sources.get(app.selected) else {
        frame.render_widget(
            Paragraph::new(Span::styled("select a source to preview it", t.dim())).block(block(
                " Preview ".into(),
                focused,
                t,
            )),
            area,
        );
        return;
    };
    let (title, body) = preview_text(app, src, t);
    frame.render_widget(
        Paragraph::new(body)
            .wrap(Wrap { trim: false })
            .scroll((app.preview_scroll, 0))
            .block(block(title, focused, t)),
        area,
    );
}

/// The preview pane's title and text for `src`: the passage in its document once the
/// document is loaded, the passage alone until then.
fn preview_text(app: &App, src: &SourceRow, t: &Theme) -> (String, Text<'static>) {
    let mut title = format!(" {} ", file_name(&src.passage.path));
    if let Some(p) = src.passage.page {
        title.push_str(&format!("· page {p} "));
    }
    if !src.passage.heading.is_empty() {
        title.push_str(&format!("· {} ", src.passage.heading.join(" > ")));
    }
    let quote_in = |text: &str, offset: usize| -> Option<[usize; 2]> {
        if src.quote.is_empty() {
            return None;
        }
        let b = text.find(src.quote.as_str())?;
        let s = text[..b].chars().count() + offset;
        Some([s, s + src.quote.chars().count()])
    };
    let body = match &app.preview {
        Some(doc) if doc.chunk == src.passage.chunk => {
            let [s, e] = doc.span;
            // Start a few lines above the passage, so that it shows in its context.
            let chars: Vec<char> = doc.text.chars().collect();
            let mut start = s.min(chars.len());
            let mut newlines = 0;
            while start > 0 && newlines < 3 && s - start < 400 {
                start -= 1;
                if chars[start] == '\n' {
                    newlines += 1;
                }
            }
            let shown: String = chars[start..].iter().collect();
            let passage_text: String = chars[s.min(chars.len())..e.min(chars.len())]
                .iter()
                .collect();
            let quote = quote_in(&passage_text, s - start);
            let mut lines = owned_lines(highlighted(&shown, [s - start, e - start], quote, t));
            if doc.more {
                lines.push(Line::from(""));
                lines.push(Line::from(Span::styled(
                    "… the document goes on: o opens the file",
                    t.dim(),
                )));
            }
            Text::from(lines)
        }
        _ => {
            let text = src.passage.text.clone();
            let n = text.chars().count();
            let quote = quote_in(&text, 0);
            let mut lines = owned_lines(highlighted(&text, [0, n], quote, t));
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "Enter: show in its document · o: open the file",
                t.dim(),
            )));
            Text::from(lines)
        }
    };
    (title, body)
}

/// How far the answer and preview panes of `areas` can scroll with the text they show now.
pub fn scroll_limits(app: &App, areas: &Areas) -> ScrollLimits {
    let t = Theme { color: false };
    let beyond = |text: Text, area: Rect| -> u16 {
        let (w, h) = (area.width.saturating_sub(2), area.height.saturating_sub(2));
        if w == 0 {
            return 0;
        }
        let lines = Paragraph::new(text)
            .wrap(Wrap { trim: false })
            .line_count(w);
        u16::try_from(lines).unwrap_or(u16::MAX).saturating_sub(h)
    };
    let answer = answer_text(app, &t)
        .map(|(_, text)| beyond(text, areas.answer))
        .unwrap_or(0);
    let preview = app
        .sources()
        .get(app.selected)
        .map(|src| beyond(preview_text(app, src, &t).1, areas.preview))
        .unwrap_or(0);
    ScrollLimits { answer, preview }
}

fn draw_status(frame: &mut Frame, app: &App, t: &Theme, area: Rect) {
    // (importance, text, style): the least important parts leave first when the line is too
    // narrow, so that an 80-column terminal still shows the model, the index, failures and
    // the help key.
    let mut parts: Vec<(u8, String, Style)> = Vec::new();
    parts.push(match &app.model {
        ModelState::Loading(what) => (0, format!("loading {what}…"), t.fg(Color::Yellow)),
        ModelState::Ready(name) => (0, format!("model {name}"), Style::default()),
        ModelState::Failed(why) => (0, format!("model failed: {why}"), t.fg(Color::Red)),
    });
    let ix = &app.index;
    let counts = format!("{} files · {} passages", ix.files, ix.passages);
    parts.push(match ix.progress {
        Some((done, total)) if total > 0 => (
            0,
            format!(
                "indexing {done} of {total} files · {} passages",
                ix.passages
            ),
            t.fg(Color::Yellow),
        ),
        Some(_) => (0, format!("scanning · {counts}"), t.fg(Color::Yellow)),
        None => (0, counts, Style::default()),
    });
    if let Some(holder) = &ix.read_only {
        parts.push((1, "read-only".into(), t.fg(Color::Yellow)));
        parts.push((6, format!("{holder} writes the index"), t.dim()));
    } else if ix.watching {
        parts.push((5, "watching".into(), Style::default()));
    }
    if !ix.failed.is_empty() {
        parts.push((
            1,
            format!("{} failed (f)", ix.failed.len()),
            t.fg(Color::Red),
        ));
    }
    if let Some(e) = &ix.error {
        parts.push((2, e.clone(), t.fg(Color::Red)));
    }
    if let Some(turn) = app.turns.last()
        && turn.state == TurnState::Generating
        && turn.tokens_per_s > 0.0
    {
        parts.push((
            2,
            format!("{:.1} tok/s", turn.tokens_per_s),
            Style::default(),
        ));
    }
    if let Some(n) = &app.notice {
        parts.push((NOTICE, n.clone(), t.fg(Color::Yellow)));
    }
    if let Some(u) = &ix.last_update {
        parts.push((7, u.clone(), t.dim()));
    }
    parts.push((3, "? help".into(), t.dim()));
    let width = |parts: &[(u8, String, Style)]| -> usize {
        parts.iter().map(|p| p.1.chars().count()).sum::<usize>() + 3 * parts.len().saturating_sub(1)
    };
    while width(&parts) > area.width as usize {
        let Some(drop) = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.0 > 0)
            .max_by_key(|(i, p)| (p.0, *i))
            .map(|(i, _)| i)
        else {
            break;
        };
        // A notice (a saved answer's path) loses its middle rather than all of it, while
        // enough of it is left to read.
        let over = width(&parts) - area.width as usize;
        let len = parts[drop].1.chars().count();
        if parts[drop].0 == NOTICE && len >= over + 12 {
            parts[drop].1 = middle_cut(&parts[drop].1, len - over);
            break;
        }
        parts.remove(drop);
    }
    let mut spans = Vec::new();
    for (i, (_, text, style)) in parts.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" │ ", t.dim()));
        }
        spans.push(Span::styled(text, style));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}

/// The status bar's importance of a notice (the least important parts leave first).
const NOTICE: u8 = 4;

/// `s` in `keep` characters: its start and its end (which names the file) around `…`.
fn middle_cut(s: &str, keep: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= keep {
        return s.to_string();
    }
    let room = keep.saturating_sub(1);
    let head = room / 3;
    let tail = room - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// Every key binding, as the help overlay lists them.
pub const HELP: &[(&str, &str)] = &[
    (
        "Enter",
        "ask (in the box); show the source in its document (Sources)",
    ),
    ("Esc", "cancel the answer; else leave the question box"),
    ("Ctrl-C", "cancel the answer; quit when idle"),
    ("Tab / Shift-Tab", "next / previous pane"),
    (
        "↑ ↓  j k",
        "move in the sources, scroll the answer or preview",
    ),
    ("PgUp PgDn", "move or scroll by a page"),
    ("g G  Home End", "to the start / end"),
    ("a  i", "ask: back to the question box"),
    ("/", "search as you type (hybrid, no model)"),
    ("[ ]  h l", "previous / next question of the session"),
    ("y", "copy the shown answer as Markdown (OSC 52 clipboard)"),
    (
        "e",
        "save the shown answer as Markdown in the answers folder",
    ),
    (
        "o",
        "open in $EDITOR (at the line) or a viewer (at the page)",
    ),
    (
        "f",
        "files that failed to index or were skipped, with reasons",
    ),
    ("?", "this help (any key closes it)"),
    ("q  Ctrl-Q", "quit"),
    (
        "in the box",
        "← → Home End move · Ctrl-A Ctrl-E start/end · Ctrl-U clear",
    ),
    ("", "↑ ↓ earlier / later questions · Ctrl-↑ ↓ the sources"),
    (
        "mouse",
        "wheel scrolls the pane under it, click selects a source",
    ),
];

fn draw_help(frame: &mut Frame, t: &Theme) {
    let area = centered(frame.area(), 80, HELP.len() as u16 + 2);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:>16}  "), t.bold()),
                Span::raw(*v),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(block(" Keys ".into(), true, t)),
        area,
    );
}

fn draw_failed(frame: &mut Frame, app: &App, t: &Theme) {
    let full = frame.area();
    let area = centered(
        full,
        full.width.saturating_sub(6),
        full.height.saturating_sub(4),
    );
    let mut lines = Vec::new();
    if app.index.failed.is_empty() {
        lines.push(Line::from(Span::styled("No file failed.", t.dim())));
    }
    for (path, why) in &app.index.failed {
        lines.push(Line::from(Span::styled(crate::shown::name(path), t.bold())));
        lines.push(Line::from(Span::styled(
            format!("    {why}"),
            t.fg(Color::Red),
        )));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(block(
                format!(
                    " Failed and skipped files: {} (Esc closes) ",
                    app.index.failed.len()
                ),
                true,
                t,
            )),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::super::app::tests::{answer, evidence, key, notice_passages, turn, typed};
    use super::super::app::{
        Action, App, IndexStatus, ModelState, PreviewDoc, TurnEvent, WorkerEvent,
    };
    use super::*;
    use crossterm::event::KeyCode;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(app: &mut App, w: u16, h: u16) -> String {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        app.areas = layout(Rect::new(0, 0, w, h));
        app.set_limits(scroll_limits(app, &app.areas));
        term.draw(|f| draw(f, app)).unwrap();
        let buf = term.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn ready(app: &mut App) {
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "SmolLM2-135M-Instruct".into(),
        ))));
        app.update(Action::Worker(WorkerEvent::Index(IndexStatus {
            files: 3,
            passages: 12,
            watching: true,
            last_update: Some("updated 14:02".into()),
            ..Default::default()
        })));
    }

    fn streaming(app: &mut App) {
        ready(app);
        typed(app, "What is the termination notice period?");
        app.update(key(KeyCode::Enter));
        let ps = notice_passages();
        app.update(turn(1, TurnEvent::Evidence(vec![evidence(&ps[0], 1)])));
        app.update(turn(1, TurnEvent::Passages(ps)));
        for tok in [
            "The notice",
            " period is",
            " ninety days [1]",
            " or thirty [7].",
        ] {
            app.update(turn(1, TurnEvent::Token(tok.into())));
        }
    }

    fn answered(app: &mut App) {
        streaming(app);
        let ps = app.turns[0].passages.clone();
        let mut a = answer(
            "The notice period is ninety days. [1]\nIt renews by itself. [?]",
            ps.clone(),
            1,
            &ps[0],
        );
        a.citations[0].quote =
            "Either party may terminate this agreement with ninety days written notice.".into();
        a.timings.generated_tokens = 14;
        a.timings.tokens_per_s = 21.5;
        a.timings.first_token_ms = 900.0;
        app.update(turn(1, TurnEvent::Answered(Box::new(a))));
    }

    #[test]
    fn snapshots() {
        for (w, h) in [(80u16, 24u16), (160, 48)] {
            let mut app = App::new(false);
            app.update(Action::Worker(WorkerEvent::Model(ModelState::Loading(
                "SmolLM2-135M-Instruct".into(),
            ))));
            insta::assert_snapshot!(format!("empty_{w}x{h}"), screen(&mut app, w, h));

            let mut app = App::new(false);
            streaming(&mut app);
            insta::assert_snapshot!(format!("streaming_{w}x{h}"), screen(&mut app, w, h));

            let mut app = App::new(false);
            answered(&mut app);
            app.update(key(KeyCode::Esc));
            app.update(key(KeyCode::Tab));
            app.update(key(KeyCode::Enter));
            app.update(Action::Worker(WorkerEvent::Preview(PreviewDoc {
                chunk: "0a".into(),
                text: "MASTER SERVICES AGREEMENT\nTermination.\nEither party may terminate this agreement with ninety days written notice.\nGoverning law: Delaware.".into(),
                span: [39, 114],
                more: false,
            })));
            insta::assert_snapshot!(format!("sources_preview_{w}x{h}"), screen(&mut app, w, h));

            app.update(key(KeyCode::Char('?')));
            insta::assert_snapshot!(format!("help_{w}x{h}"), screen(&mut app, w, h));

            // The model refused while the evidence is strong: the evidence leads.
            let mut app = App::new(false);
            streaming(&mut app);
            let ps = app.turns[0].passages.clone();
            let mut a = answer(
                "\"Either party may terminate this agreement with ninety days written notice.\" [1]",
                ps.clone(),
                1,
                &ps[0],
            );
            a.outcome = crate::answer::Outcome::Evidence;
            a.reason = crate::answer::Reason::ModelAbstained;
            a.model_checked = "The documents do not say.".into();
            a.model_answer = a.model_checked.clone();
            a.timings.generated_tokens = 7;
            a.timings.tokens_per_s = 30.0;
            app.update(turn(1, TurnEvent::Answered(Box::new(a))));
            insta::assert_snapshot!(format!("evidence_lead_{w}x{h}"), screen(&mut app, w, h));

            let mut app = App::new(false);
            ready(&mut app);
            app.index.failed = vec![
                ("/docs/scan.pdf".into(), "no text layer (needs OCR)".into()),
                (
                    "/docs/locked.pdf".into(),
                    "encrypted PDF (needs a password)".into(),
                ),
            ];
            app.update(key(KeyCode::Esc));
            app.update(key(KeyCode::Char('f')));
            insta::assert_snapshot!(format!("failed_{w}x{h}"), screen(&mut app, w, h));
        }
    }

    #[test]
    fn a_long_notice_keeps_its_ends_in_a_narrow_status_bar() {
        let mut app = App::new(false);
        ready(&mut app);
        let path = "saved the answer to ~/.local/share/folio/answers/2025-01-31-140205-what-is-the-termination-notice-period.md";
        app.notice = Some(path.into());
        for (w, start, end) in [
            (80, "saved…", "period.md"),
            (120, "saved the answer", "notice-period.md"),
        ] {
            let s = screen(&mut app, w, 24);
            let status = s.lines().last().unwrap_or_default();
            assert!(status.contains(start) && status.contains(end), "{status}");
            assert!(status.contains("? help"), "{status}");
        }
        assert_eq!(middle_cut("abcdefghij", 7), "ab…ghij");
        assert_eq!(middle_cut("abc", 7), "abc");
    }

    #[test]
    fn invalid_citations_are_marked() {
        let t = Theme { color: true };
        let spans = answer_spans("A [1] b [3] c [?] d [x] [unverified: 7]", 2, &t);
        let styled: Vec<(&str, bool)> = spans
            .iter()
            .map(|s| {
                (
                    s.content.as_ref(),
                    s.style.add_modifier.contains(Modifier::CROSSED_OUT),
                )
            })
            .collect();
        assert!(styled.contains(&("[1]", false)));
        assert!(styled.contains(&("[3]", true)), "{styled:?}");
        assert_eq!(
            spans.iter().map(|s| s.content.as_ref()).collect::<String>(),
            "A [1] b [3] c [?] d [x] [unverified: 7]"
        );
        assert!(spans.iter().any(
            |s| s.content == "[unverified: 7]" && s.style.add_modifier.contains(Modifier::BOLD)
        ));
    }
}
