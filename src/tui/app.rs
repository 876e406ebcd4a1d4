//! The terminal UI's state and how actions change it. Nothing here does IO: [`App::update`]
//! turns a key, a mouse event, a tick or a worker's report into a new state and a list of
//! [`Effect`]s for the runtime to carry out (ask, search, cancel, open a file, remember a
//! question, copy or save an answer, quit). The question history is part of the state: the
//! runtime reads the file and hands its lines to [`App::set_history`].

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::{Position, Rect};

use crate::answer::{Answer, Evidence, Indexing};
use crate::index::search::Passage;

/// Typing pauses this long before search-as-you-type runs.
pub const SEARCH_DEBOUNCE: Duration = Duration::from_millis(150);

/// Questions kept in the history (the oldest leave first).
pub const HISTORY_MAX: usize = 500;

/// The history as the file's `text` holds it, one question a line, oldest first: blank lines
/// and consecutive repeats dropped (two sessions appending at once can leave those), then the
/// newest [`HISTORY_MAX`].
pub fn history_from_text(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let q = line.trim();
        if !q.is_empty() && out.last().is_none_or(|last| last != q) {
            out.push(q.to_string());
        }
    }
    let extra = out.len().saturating_sub(HISTORY_MAX);
    out.drain(..extra);
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Input,
    Answer,
    Sources,
    Preview,
}

impl Focus {
    const ORDER: [Focus; 4] = [Focus::Input, Focus::Answer, Focus::Sources, Focus::Preview];

    fn step(self, by: isize) -> Focus {
        let i = Focus::ORDER.iter().position(|f| *f == self).unwrap_or(0) as isize;
        Focus::ORDER[(i + by).rem_euclid(Focus::ORDER.len() as isize) as usize]
    }
}

/// What the question box does with Enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    Ask,
    /// Hybrid search as you type; no model involved.
    Search,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TurnState {
    /// Asked before the model was ready.
    WaitingForModel,
    Retrieving,
    Generating,
    Done,
    Cancelled,
    Failed(String),
}

/// One question and its answer.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The id of its `Effect::Ask` (0 when it never reached a worker); the workers' reports
    /// name it, so that a late report of a cancelled turn cannot land in the next one.
    pub id: u64,
    pub question: String,
    pub state: TurnState,
    /// The text so far: streamed tokens, then the checked answer.
    pub text: String,
    /// The evidence, shown above the answer as soon as it is found.
    pub evidence: Vec<Evidence>,
    /// Asked while indexing ran: how far it had got.
    pub indexing: Option<Indexing>,
    pub passages: Vec<Passage>,
    pub answer: Option<Box<Answer>>,
    pub tokens: usize,
    pub started: Option<Instant>,
    pub tokens_per_s: f64,
}

impl Turn {
    pub fn is_active(&self) -> bool {
        matches!(
            self.state,
            TurnState::WaitingForModel | TurnState::Retrieving | TurnState::Generating
        )
    }

    fn apply(&mut self, ev: TurnEvent) {
        match ev {
            TurnEvent::Generating => {
                if self.is_active() {
                    self.state = TurnState::Generating;
                    self.started = Some(Instant::now());
                }
            }
            TurnEvent::Evidence(e) => self.evidence = e,
            TurnEvent::Passages(p) => self.passages = p,
            TurnEvent::Token(piece) => {
                if self.is_active() {
                    self.state = TurnState::Generating;
                }
                let started = *self.started.get_or_insert_with(Instant::now);
                self.text.push_str(&piece);
                self.tokens += 1;
                // A rate over a few milliseconds is noise: wait for a quarter second.
                let secs = started.elapsed().as_secs_f64();
                if secs >= 0.25 {
                    self.tokens_per_s = self.tokens as f64 / secs;
                }
            }
            TurnEvent::Answered(a) => {
                self.state = match a.stop {
                    Some(crate::llm::StopReason::Cancelled) => TurnState::Cancelled,
                    _ if self.state == TurnState::Cancelled => TurnState::Cancelled,
                    _ => TurnState::Done,
                };
                self.text = a.answer.clone();
                if a.timings.tokens_per_s > 0.0 {
                    self.tokens_per_s = a.timings.tokens_per_s;
                }
                self.passages = a.passages.clone();
                self.evidence = a.evidence.clone();
                self.indexing = a.indexing.or(self.indexing);
                self.answer = Some(a);
            }
            TurnEvent::Failed(why) => {
                if self.state != TurnState::Cancelled {
                    self.state = TurnState::Failed(why);
                }
            }
        }
    }
}

/// A turn's sources: its cited passages (by citation number), then the other passages it
/// retrieved.
pub fn turn_sources(turn: &Turn) -> Vec<SourceRow> {
    let mut out: Vec<SourceRow> = Vec::new();
    if let Some(a) = &turn.answer {
        for c in &a.citations {
            if let Some(p) = &c.passage
                && c.valid
                && !out.iter().any(|s| s.passage.chunk == p.chunk)
            {
                out.push(SourceRow {
                    passage: p.clone(),
                    cited: Some(c.n),
                    quote: c.quote.clone(),
                });
            }
        }
        for p in &a.passages {
            if !out.iter().any(|s| s.passage.chunk == p.chunk) {
                out.push(SourceRow {
                    passage: p.clone(),
                    cited: None,
                    quote: String::new(),
                });
            }
        }
    } else {
        out.extend(turn.passages.iter().map(|p| SourceRow {
            passage: p.clone(),
            cited: None,
            quote: String::new(),
        }));
    }
    out
}

/// A row of the sources pane.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub passage: Passage,
    /// The citation number, for cited passages.
    pub cited: Option<usize>,
    /// The supporting sentence, for cited passages.
    pub quote: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    Loading(String),
    Ready(String),
    Failed(String),
}

/// The index side of the status bar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexStatus {
    pub files: usize,
    pub passages: u64,
    /// Files done and total of the scan or change set in progress.
    pub progress: Option<(usize, usize)>,
    pub watching: bool,
    /// Another process writes the index; this one follows its commits.
    pub read_only: Option<String>,
    pub last_update: Option<String>,
    pub failed: Vec<(String, String)>,
    pub error: Option<String>,
}

/// A document shown in the preview pane: the text of the passage's page (or file).
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewDoc {
    pub chunk: String,
    pub text: String,
    /// Character span of the passage in `text`.
    pub span: [usize; 2],
    /// The document goes on past `text`.
    pub more: bool,
}

/// Something for the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Ask {
        id: u64,
        question: String,
        /// The index run under way when it was asked.
        indexing: Option<Indexing>,
    },
    Search(String),
    Cancel,
    /// Load the document around a passage for the preview.
    Preview(Passage),
    Open(Passage),
    /// Add a question (one line) to the history file.
    Remember(String),
    /// Put this text on the clipboard of the terminal the UI draws on (OSC 52).
    Copy(String),
    /// Save a turn's Markdown as a new file named after the time and the question.
    Export {
        question: String,
        markdown: String,
    },
    Quit,
}

/// What the answering worker reports about one question.
#[derive(Debug, Clone)]
pub enum TurnEvent {
    /// The model began on the question (it was waiting for the model or retrieving).
    Generating,
    Evidence(Vec<Evidence>),
    Passages(Vec<Passage>),
    Token(String),
    Answered(Box<Answer>),
    Failed(String),
}

/// Reports from the background workers.
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Model(ModelState),
    /// The embedder and index are ready: searches can run.
    SearchReady,
    /// About the question asked with this id.
    Turn(u64, TurnEvent),
    SearchResults {
        query: String,
        passages: Vec<Passage>,
    },
    Index(IndexStatus),
    Preview(PreviewDoc),
    /// A message for the status bar (a file opened, an error).
    Notice(String),
}

/// Everything the user can do, as the runtime delivers it.
#[derive(Debug, Clone)]
pub enum Action {
    Key(KeyEvent),
    Mouse(MouseEvent),
    /// Text pasted into the terminal (bracketed paste), delivered whole.
    Paste(String),
    Tick(Instant),
    Worker(WorkerEvent),
}

/// How far the answer and preview panes can scroll (wrapped lines beyond the pane's height).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrollLimits {
    pub answer: u16,
    pub preview: u16,
}

/// The first source shown in a sources pane of `height` rows (two lines a source, inside
/// borders) so that `selected` is visible; the view and mouse hits agree on it.
pub fn first_visible(selected: usize, height: u16) -> usize {
    let rows = (height.saturating_sub(2) / 2).max(1) as usize;
    selected.saturating_sub(rows - 1)
}

/// Where the panes are, for mouse hits; computed by the view's layout from the frame size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub input: Rect,
    pub answer: Rect,
    pub sources: Rect,
    pub preview: Rect,
    pub status: Rect,
}

#[derive(Debug)]
pub struct App {
    pub focus: Focus,
    pub mode: InputMode,
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    pub turns: Vec<Turn>,
    /// Questions asked in earlier sessions and this one, oldest first, without consecutive
    /// repeats; Up and Down in the question box walk it.
    pub history: Vec<String>,
    /// The entry in the box while the user walks the history; `None`: their own text.
    history_at: Option<usize>,
    /// What the user had typed when they started walking the history, given back by Down
    /// past the newest entry.
    draft: String,
    /// Ids given to asks so far.
    asked: u64,
    /// The turn shown (history browsing); the newest unless the user went back.
    pub shown: usize,
    pub search_query: String,
    pub search_results: Vec<Passage>,
    search_due: Option<Instant>,
    pub selected: usize,
    pub preview: Option<PreviewDoc>,
    pub answer_scroll: u16,
    pub preview_scroll: u16,
    /// The answer pane stays at its end as text streams in, until the user scrolls up.
    pub follow_answer: bool,
    /// Furthest each text pane can scroll, as the view last laid it out.
    pub limits: ScrollLimits,
    pub model: ModelState,
    pub search_ready: bool,
    pub index: IndexStatus,
    pub notice: Option<String>,
    pub help: bool,
    pub failed_view: bool,
    pub quit: bool,
    pub areas: Areas,
    pub color: bool,
    pub model_name: String,
}

impl App {
    pub fn new(color: bool) -> App {
        App {
            focus: Focus::Input,
            mode: InputMode::Ask,
            input: String::new(),
            cursor: 0,
            turns: Vec::new(),
            history: Vec::new(),
            history_at: None,
            draft: String::new(),
            asked: 0,
            shown: 0,
            search_query: String::new(),
            search_results: Vec::new(),
            search_due: None,
            selected: 0,
            preview: None,
            answer_scroll: 0,
            preview_scroll: 0,
            follow_answer: true,
            limits: ScrollLimits::default(),
            model: ModelState::Loading("models".into()),
            search_ready: false,
            index: IndexStatus::default(),
            notice: None,
            help: false,
            failed_view: false,
            quit: false,
            areas: Areas::default(),
            color,
            model_name: String::new(),
        }
    }

    /// Starts the history with `entries` (oldest first), as [`history_from_text`] read them.
    pub fn set_history(&mut self, entries: Vec<String>) {
        self.history = entries;
        self.history_at = None;
    }

    /// Adds a submitted question to the history; the effect that adds it to the file, unless
    /// it repeats the newest entry.
    fn remember(&mut self, q: &str) -> Option<Effect> {
        self.history_at = None;
        self.draft.clear();
        if self.history.last().is_some_and(|last| last == q) {
            return None;
        }
        self.history.push(q.to_string());
        let extra = self.history.len().saturating_sub(HISTORY_MAX);
        self.history.drain(..extra);
        Some(Effect::Remember(q.to_string()))
    }

    /// Up (`back`) or Down in the question box: the previous or next history entry, as a
    /// shell does; Down past the newest gives back what the user was typing. Returns whether
    /// the box changed.
    fn walk_history(&mut self, back: bool) -> bool {
        let next = match (self.history_at, back) {
            (None, true) if !self.history.is_empty() => {
                self.draft = self.input.clone();
                Some(self.history.len() - 1)
            }
            (None, _) => return false,
            (Some(0), true) => return false,
            (Some(i), true) => Some(i - 1),
            (Some(i), false) if i + 1 < self.history.len() => Some(i + 1),
            (Some(_), false) => None,
        };
        self.history_at = next;
        self.input = match next {
            Some(i) => self.history[i].clone(),
            None => std::mem::take(&mut self.draft),
        };
        self.cursor = self.input.chars().count();
        true
    }

    /// Records how far the panes can scroll now (the runtime calls it before each frame),
    /// keeping scroll positions inside them and the answer at its end while it follows.
    pub fn set_limits(&mut self, limits: ScrollLimits) {
        self.limits = limits;
        if self.follow_answer {
            self.answer_scroll = limits.answer;
        }
        self.answer_scroll = self.answer_scroll.min(limits.answer);
        self.preview_scroll = self.preview_scroll.min(limits.preview);
    }

    /// The index run under way, as a question asked now should report it.
    fn indexing(&self) -> Option<Indexing> {
        self.index
            .progress
            .map(|(done, total)| Indexing { done, total })
    }

    pub fn current(&self) -> Option<&Turn> {
        self.turns.get(self.shown)
    }

    pub fn generating(&self) -> bool {
        self.turns.last().is_some_and(Turn::is_active)
    }

    /// The sources pane's rows: in search mode the results; otherwise the shown turn's
    /// [`turn_sources`].
    pub fn sources(&self) -> Vec<SourceRow> {
        if self.mode == InputMode::Search {
            return self
                .search_results
                .iter()
                .map(|p| SourceRow {
                    passage: p.clone(),
                    cited: None,
                    quote: String::new(),
                })
                .collect();
        }
        self.current().map(turn_sources).unwrap_or_default()
    }

    pub fn selected_source(&self) -> Option<SourceRow> {
        self.sources().into_iter().nth(self.selected)
    }

    /// Applies one action; returns what the runtime must do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(k) => self.on_key(k),
            Action::Mouse(m) => self.on_mouse(m),
            Action::Paste(text) => self.on_paste(&text),
            Action::Tick(now) => self.on_tick(now),
            Action::Worker(e) => self.on_worker(e),
        }
    }

    fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        match self.search_due {
            Some(due) if now >= due && self.search_ready => {
                self.search_due = None;
                let q = self.input.trim().to_string();
                if q.is_empty() {
                    self.search_results.clear();
                    Vec::new()
                } else {
                    vec![Effect::Search(q)]
                }
            }
            _ => Vec::new(),
        }
    }

    fn on_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        // Keys that act everywhere.
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            if self.generating() {
                return self.cancel();
            }
            self.quit = true;
            return vec![Effect::Quit];
        }
        if ctrl && matches!(k.code, KeyCode::Char('q')) {
            self.quit = true;
            return vec![Effect::Quit];
        }
        if self.help {
            // Any key closes the overlay.
            self.help = false;
            return Vec::new();
        }
        if self.failed_view {
            match k.code {
                KeyCode::Esc | KeyCode::Char('f') | KeyCode::Char('q') | KeyCode::Enter => {
                    self.failed_view = false
                }
                _ => {}
            }
            return Vec::new();
        }
        match k.code {
            KeyCode::Tab => {
                self.focus = self.focus.step(1);
                return Vec::new();
            }
            KeyCode::BackTab => {
                self.focus = self.focus.step(-1);
                return Vec::new();
            }
            _ => {}
        }
        if self.focus == Focus::Input {
            return self.on_input_key(k);
        }
        match k.code {
            KeyCode::Char('q') => {
                self.quit = true;
                vec![Effect::Quit]
            }
            KeyCode::Char('?') => {
                self.help = true;
                Vec::new()
            }
            KeyCode::Char('f') => {
                self.failed_view = true;
                Vec::new()
            }
            KeyCode::Char('/') => {
                self.set_mode(InputMode::Search);
                self.focus = Focus::Input;
                Vec::new()
            }
            KeyCode::Char('a') | KeyCode::Char('i') => {
                self.set_mode(InputMode::Ask);
                self.focus = Focus::Input;
                Vec::new()
            }
            KeyCode::Esc => {
                if self.generating() {
                    self.cancel()
                } else if self.preview.is_some() && self.focus == Focus::Preview {
                    self.focus = Focus::Sources;
                    Vec::new()
                } else {
                    Vec::new()
                }
            }
            KeyCode::Char('o') => self
                .selected_source()
                .map(|s| vec![Effect::Open(s.passage)])
                .unwrap_or_default(),
            KeyCode::Char('y') | KeyCode::Char('e') => {
                let Some(turn) = self.current() else {
                    self.notice = Some("no answer yet: ask a question first".into());
                    return Vec::new();
                };
                let markdown = super::export::turn_markdown(turn);
                vec![if k.code == KeyCode::Char('y') {
                    Effect::Copy(markdown)
                } else {
                    Effect::Export {
                        question: turn.question.clone(),
                        markdown,
                    }
                }]
            }
            KeyCode::Char('[') | KeyCode::Char('h') => {
                self.show_turn(self.shown.saturating_sub(1));
                Vec::new()
            }
            KeyCode::Char(']') | KeyCode::Char('l') => {
                self.show_turn((self.shown + 1).min(self.turns.len().saturating_sub(1)));
                Vec::new()
            }
            KeyCode::Enter if self.focus == Focus::Sources => self.open_preview(),
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::Home | KeyCode::Char('g') => self.move_by(-10_000),
            KeyCode::End | KeyCode::Char('G') => self.move_by(10_000),
            _ => Vec::new(),
        }
    }

    /// Cancels the active turn. One still waiting for the model or for its passages ends at
    /// once; one generating ends when the worker reports what it had.
    fn cancel(&mut self) -> Vec<Effect> {
        if let Some(t) = self.turns.last_mut()
            && matches!(t.state, TurnState::WaitingForModel | TurnState::Retrieving)
        {
            t.state = TurnState::Cancelled;
        }
        vec![Effect::Cancel]
    }

    fn set_mode(&mut self, mode: InputMode) {
        if self.mode != mode {
            self.mode = mode;
            self.selected = 0;
            self.preview = None;
            if mode == InputMode::Search && !self.input.trim().is_empty() {
                self.search_due = Some(Instant::now());
            }
        }
    }

    fn show_turn(&mut self, i: usize) {
        if i != self.shown && i < self.turns.len() {
            self.shown = i;
            self.selected = 0;
            self.answer_scroll = 0;
            self.follow_answer = false;
            self.preview = None;
            self.set_mode(InputMode::Ask);
        }
    }

    fn open_preview(&mut self) -> Vec<Effect> {
        match self.selected_source() {
            Some(s) => {
                self.preview_scroll = 0;
                self.focus = Focus::Preview;
                vec![Effect::Preview(s.passage)]
            }
            None => Vec::new(),
        }
    }

    fn move_by(&mut self, by: isize) -> Vec<Effect> {
        let step = |v: u16, max: u16| (v as isize + by).clamp(0, max as isize) as u16;
        match self.focus {
            Focus::Answer => {
                self.answer_scroll = step(self.answer_scroll, self.limits.answer);
                // Back at the end, the pane follows the stream again.
                self.follow_answer = self.answer_scroll >= self.limits.answer;
            }
            Focus::Preview => self.preview_scroll = step(self.preview_scroll, self.limits.preview),
            Focus::Sources | Focus::Input => {
                let n = self.sources().len();
                if n == 0 {
                    return Vec::new();
                }
                let next = (self.selected as isize + by).clamp(0, n as isize - 1) as usize;
                if next != self.selected {
                    self.selected = next;
                    // Keep the preview following the selection once it is open.
                    if self.preview.is_some() {
                        return self.open_preview_keep_focus();
                    }
                }
            }
        }
        Vec::new()
    }

    fn open_preview_keep_focus(&mut self) -> Vec<Effect> {
        let focus = self.focus;
        let c = self.open_preview();
        self.focus = focus;
        c
    }

    fn on_input_key(&mut self, k: KeyEvent) -> Vec<Effect> {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let len = self.input.chars().count();
        // `edited`: the user changed the text (which ends a walk through the history);
        // `changed`: the box holds other text (a search is due either way).
        let mut edited = false;
        let mut changed = false;
        match k.code {
            KeyCode::Esc => {
                if self.generating() {
                    return self.cancel();
                }
                self.focus = Focus::Answer;
                return Vec::new();
            }
            KeyCode::Enter => return self.submit(),
            KeyCode::Char('u') if ctrl => {
                self.input.clear();
                self.cursor = 0;
                edited = true;
            }
            KeyCode::Char('a') if ctrl => self.cursor = 0,
            KeyCode::Char('e') if ctrl => self.cursor = len,
            KeyCode::Char(c) if !ctrl => {
                let at = byte_at(&self.input, self.cursor);
                self.input.insert(at, c);
                self.cursor += 1;
                edited = true;
            }
            KeyCode::Backspace if self.cursor > 0 => {
                let at = byte_at(&self.input, self.cursor - 1);
                self.input.remove(at);
                self.cursor -= 1;
                edited = true;
            }
            KeyCode::Delete if self.cursor < len => {
                let at = byte_at(&self.input, self.cursor);
                self.input.remove(at);
                edited = true;
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(len),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = len,
            // Up and Down walk the question history, as in a shell; with Ctrl they move in
            // the sources, as they do outside the box.
            KeyCode::Up | KeyCode::Down if ctrl => {
                return self.move_by(if k.code == KeyCode::Up { -1 } else { 1 });
            }
            KeyCode::Up | KeyCode::Down => changed = self.walk_history(k.code == KeyCode::Up),
            _ => {}
        }
        if edited {
            self.history_at = None;
        }
        if (edited || changed) && self.mode == InputMode::Search {
            self.search_due = Some(Instant::now() + SEARCH_DEBOUNCE);
        }
        Vec::new()
    }

    /// A paste goes into the question box as one line: its line breaks would otherwise arrive
    /// as Enter and ask the first line alone.
    fn on_paste(&mut self, text: &str) -> Vec<Effect> {
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if flat.is_empty() {
            return Vec::new();
        }
        self.focus = Focus::Input;
        self.history_at = None;
        let at = byte_at(&self.input, self.cursor);
        self.input.insert_str(at, &flat);
        self.cursor += flat.chars().count();
        if self.mode == InputMode::Search {
            self.search_due = Some(Instant::now() + SEARCH_DEBOUNCE);
        }
        Vec::new()
    }

    fn submit(&mut self) -> Vec<Effect> {
        let q = self.input.trim().to_string();
        if q.is_empty() {
            return Vec::new();
        }
        match self.mode {
            InputMode::Search => {
                self.search_due = None;
                let mut cmds = vec![Effect::Search(q.clone())];
                cmds.extend(self.remember(&q));
                cmds
            }
            InputMode::Ask => {
                if self.generating() {
                    self.notice = Some("still answering: Esc cancels".into());
                    return Vec::new();
                }
                let state = match &self.model {
                    ModelState::Ready(_) => TurnState::Retrieving,
                    ModelState::Loading(_) => TurnState::WaitingForModel,
                    // Nothing would ever answer: say so now rather than wait forever.
                    ModelState::Failed(why) => {
                        TurnState::Failed(format!("the model could not be loaded: {why}"))
                    }
                };
                let mut cmds = if matches!(state, TurnState::Failed(_)) {
                    Vec::new()
                } else {
                    self.asked += 1;
                    vec![Effect::Ask {
                        id: self.asked,
                        question: q.clone(),
                        indexing: self.indexing(),
                    }]
                };
                let id = if cmds.is_empty() { 0 } else { self.asked };
                cmds.extend(self.remember(&q));
                self.turns.push(Turn {
                    id,
                    question: q.clone(),
                    state,
                    text: String::new(),
                    evidence: Vec::new(),
                    indexing: self.indexing(),
                    passages: Vec::new(),
                    answer: None,
                    tokens: 0,
                    started: None,
                    tokens_per_s: 0.0,
                });
                self.shown = self.turns.len() - 1;
                self.selected = 0;
                self.answer_scroll = 0;
                self.follow_answer = true;
                self.preview = None;
                self.input.clear();
                self.cursor = 0;
                cmds
            }
        }
    }

    fn on_mouse(&mut self, m: MouseEvent) -> Vec<Effect> {
        let at = Position::new(m.column, m.row);
        let pane = [
            (self.areas.input, Focus::Input),
            (self.areas.answer, Focus::Answer),
            (self.areas.sources, Focus::Sources),
            (self.areas.preview, Focus::Preview),
        ]
        .into_iter()
        .find(|(r, _)| r.contains(at))
        .map(|(_, f)| f);
        let Some(pane) = pane else {
            return Vec::new();
        };
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let focus = self.focus;
                self.focus = pane;
                let by = if m.kind == MouseEventKind::ScrollDown {
                    3
                } else {
                    -3
                };
                let by = if pane == Focus::Sources { by / 3 } else { by };
                let c = self.move_by(by);
                self.focus = focus;
                c
            }
            MouseEventKind::Down(MouseButton::Left) => {
                self.focus = pane;
                if pane == Focus::Sources {
                    // Rows start below the pane's top border; each source takes two lines, and
                    // the list may be scrolled.
                    let first = first_visible(self.selected, self.areas.sources.height);
                    let row = first + m.row.saturating_sub(self.areas.sources.y + 1) as usize / 2;
                    if row < self.sources().len() {
                        self.selected = row;
                        return self.open_preview_keep_focus();
                    }
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn on_worker(&mut self, e: WorkerEvent) -> Vec<Effect> {
        match e {
            WorkerEvent::Model(m) => {
                if let ModelState::Ready(name) = &m {
                    self.model_name = name.clone();
                }
                if let ModelState::Failed(why) = &m
                    && let Some(t) = self.turns.last_mut()
                    && t.is_active()
                {
                    t.state = TurnState::Failed(why.clone());
                }
                self.model = m;
            }
            WorkerEvent::SearchReady => {
                self.search_ready = true;
            }
            WorkerEvent::Turn(id, ev) => {
                let answered = matches!(ev, TurnEvent::Answered(_));
                let shown = self.current().is_some_and(|t| t.id == id);
                if let Some(t) = self.turns.iter_mut().rev().find(|t| t.id == id) {
                    t.apply(ev);
                }
                // The sources pane now lists the cited passages first.
                if answered && shown {
                    self.selected = 0;
                }
            }
            WorkerEvent::SearchResults { query, passages } => {
                // Results of a query the user has typed past are dropped.
                if self.mode == InputMode::Search && query == self.input.trim() {
                    self.search_query = query;
                    self.search_results = passages;
                    self.selected = self
                        .selected
                        .min(self.search_results.len().saturating_sub(1));
                }
            }
            WorkerEvent::Index(s) => self.index = s,
            WorkerEvent::Preview(d) => {
                if self
                    .selected_source()
                    .is_some_and(|s| s.passage.chunk == d.chunk)
                {
                    self.preview = Some(d);
                }
            }
            WorkerEvent::Notice(n) => self.notice = Some(n),
        }
        Vec::new()
    }
}

fn byte_at(s: &str, chars: usize) -> usize {
    s.char_indices()
        .nth(chars)
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn key(c: KeyCode) -> Action {
        Action::Key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    /// A report of the answering worker about the question asked with `id`.
    pub fn turn(id: u64, ev: TurnEvent) -> Action {
        Action::Worker(WorkerEvent::Turn(id, ev))
    }

    pub fn ctrl(c: char) -> Action {
        Action::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
    }

    pub fn typed(app: &mut App, s: &str) -> Vec<Effect> {
        let mut out = Vec::new();
        for c in s.chars() {
            out.extend(app.update(key(KeyCode::Char(c))));
        }
        out
    }

    /// The two sources of the snapshots' termination question: a cited contract and a note.
    pub fn notice_passages() -> Vec<Passage> {
        vec![
            passage(
                "/docs/acme-msa.pdf",
                "0a",
                "Either party may terminate this agreement with ninety days written notice.",
            ),
            passage("/docs/notes.md", "0b", "The renewal is automatic."),
        ]
    }

    pub fn passage(path: &str, chunk: &str, text: &str) -> Passage {
        Passage {
            path: path.into(),
            page: Some(2),
            heading: vec!["Termination".into()],
            chunk: chunk.into(),
            span: [10, 10 + text.chars().count()],
            score: 0.5,
            text: text.into(),
        }
    }

    /// `passage`'s whole text as evidence numbered `n`.
    pub fn evidence(p: &Passage, n: usize) -> Evidence {
        Evidence {
            quote: p.text.clone(),
            span: p.span,
            passage: p.clone(),
            n,
            before: String::new(),
            after: String::new(),
            score: 1.5,
            bytes: (0, p.text.len()),
        }
    }

    #[test]
    fn a_pasted_question_arrives_whole_on_one_line() {
        let mut app = App::new(false);
        app.focus = Focus::Sources;
        assert!(
            app.update(Action::Paste("What is the\nnotice period?\r\n".into()))
                .is_empty()
        );
        assert_eq!(app.focus, Focus::Input);
        assert_eq!(app.input, "What is the notice period?");
        assert_eq!(app.cursor, app.input.chars().count());
        assert!(app.turns.is_empty(), "a paste never asks by itself");
    }

    #[test]
    fn typing_then_enter_asks_and_keys_type_text_in_the_box() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        // 'q' and '?' are text while the box has focus.
        assert!(typed(&mut app, "q? x").is_empty());
        assert!(!app.quit && !app.help);
        app.update(key(KeyCode::Backspace));
        app.update(key(KeyCode::Left));
        typed(&mut app, "y");
        assert_eq!(app.input, "q?y ");
        let cmds = app.update(key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![
                Effect::Ask {
                    id: 1,
                    question: "q?y".into(),
                    indexing: None,
                },
                Effect::Remember("q?y".into()),
            ]
        );
        assert_eq!(app.input, "");
        assert_eq!(app.turns.len(), 1);
        assert_eq!(app.turns[0].state, TurnState::Retrieving);
        // Asking again while generating is refused with a message.
        typed(&mut app, "again");
        assert!(app.update(key(KeyCode::Enter)).is_empty());
        assert!(app.notice.is_some());
    }

    #[test]
    fn esc_leaves_the_box_then_commands_act() {
        let mut app = App::new(false);
        app.update(key(KeyCode::Esc));
        assert_eq!(app.focus, Focus::Answer);
        app.update(key(KeyCode::Char('?')));
        assert!(app.help);
        app.update(key(KeyCode::Char('x')));
        assert!(!app.help, "any key closes help");
        app.update(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Sources);
        app.update(Action::Key(KeyEvent::new(
            KeyCode::BackTab,
            KeyModifiers::SHIFT,
        )));
        assert_eq!(app.focus, Focus::Answer);
        assert_eq!(app.update(key(KeyCode::Char('q'))), vec![Effect::Quit]);
        assert!(app.quit);
    }

    #[test]
    fn a_question_before_the_model_is_ready_waits() {
        let mut app = App::new(false);
        typed(&mut app, "what?");
        assert_eq!(
            app.update(key(KeyCode::Enter)),
            vec![
                Effect::Ask {
                    id: 1,
                    question: "what?".into(),
                    indexing: None,
                },
                Effect::Remember("what?".into()),
            ]
        );
        assert_eq!(app.turns[0].state, TurnState::WaitingForModel);
        assert!(app.generating());
        // Ctrl-C cancels rather than quits while a question is pending; the turn ends now,
        // and the worker's later report of it changes nothing.
        assert_eq!(app.update(ctrl('c')), vec![Effect::Cancel]);
        assert!(!app.quit);
        assert_eq!(app.turns[0].state, TurnState::Cancelled);
        app.update(turn(1, TurnEvent::Failed("cancelled".into())));
        assert_eq!(app.turns[0].state, TurnState::Cancelled);
    }

    #[test]
    fn a_failed_model_fails_the_question_at_once() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Failed(
            "no such file".into(),
        ))));
        typed(&mut app, "what?");
        assert_eq!(
            app.update(key(KeyCode::Enter)),
            vec![Effect::Remember("what?".into())],
            "nothing to ask; the question is kept for later"
        );
        assert!(matches!(&app.turns[0].state, TurnState::Failed(w) if w.contains("no such file")));
        assert!(!app.generating(), "the next question is not blocked");
    }

    #[test]
    fn reports_of_a_cancelled_question_stay_out_of_the_next() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "first");
        app.update(key(KeyCode::Enter));
        app.update(key(KeyCode::Esc));
        typed(&mut app, "second");
        let cmds = app.update(key(KeyCode::Enter));
        assert_eq!(
            cmds,
            vec![
                Effect::Ask {
                    id: 2,
                    question: "second".into(),
                    indexing: None,
                },
                Effect::Remember("second".into()),
            ]
        );
        // The first question's worker was already retrieving: its late tokens go to it.
        app.update(turn(1, TurnEvent::Token("stale".into())));
        app.update(turn(2, TurnEvent::Token("fresh".into())));
        assert_eq!(app.turns[0].text, "stale");
        assert_eq!(app.turns[1].text, "fresh");
        assert_eq!(app.turns[0].state, TurnState::Cancelled);
        assert_eq!(app.turns[1].state, TurnState::Generating);
    }

    #[test]
    fn the_answer_follows_the_stream_until_scrolled_up() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "q");
        app.update(key(KeyCode::Enter));
        app.set_limits(ScrollLimits {
            answer: 5,
            preview: 0,
        });
        assert_eq!(app.answer_scroll, 5, "at the end while streaming");
        app.update(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Answer);
        app.update(key(KeyCode::Up));
        assert_eq!(app.answer_scroll, 4);
        app.set_limits(ScrollLimits {
            answer: 9,
            preview: 0,
        });
        assert_eq!(
            app.answer_scroll, 4,
            "scrolled up: stays put as text arrives"
        );
        app.update(key(KeyCode::End));
        assert_eq!(app.answer_scroll, 9, "End goes no further than the text");
        app.set_limits(ScrollLimits {
            answer: 12,
            preview: 0,
        });
        assert_eq!(app.answer_scroll, 12, "following again");
        app.update(key(KeyCode::Home));
        assert_eq!(app.answer_scroll, 0);
    }

    #[test]
    fn streaming_then_answer_fills_the_turn_and_sources() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "notice?");
        app.update(key(KeyCode::Enter));
        let p1 = passage(
            "/d/msa.pdf",
            "01",
            "Either party may terminate with ninety days notice.",
        );
        let p2 = passage("/d/notes.md", "02", "Unrelated.");
        app.update(turn(1, TurnEvent::Passages(vec![p1.clone(), p2.clone()])));
        app.update(turn(1, TurnEvent::Token("Ninety".into())));
        app.update(turn(1, TurnEvent::Token(" days.".into())));
        assert_eq!(app.turns[0].text, "Ninety days.");
        assert_eq!(app.turns[0].state, TurnState::Generating);
        assert_eq!(app.sources().len(), 2);
        app.update(turn(
            1,
            TurnEvent::Answered(Box::new(answer(
                "Ninety days. [2]",
                vec![p1.clone(), p2.clone()],
                2,
                &p2,
            ))),
        ));
        let t = &app.turns[0];
        assert_eq!(t.state, TurnState::Done);
        assert_eq!(t.text, "Ninety days. [2]");
        let s = app.sources();
        assert_eq!(s[0].cited, Some(2), "cited passages come first");
        assert_eq!(s[0].passage.chunk, "02");
        assert_eq!(s[1].cited, None);
    }

    pub fn answer(text: &str, passages: Vec<Passage>, n: usize, cited: &Passage) -> Answer {
        Answer {
            question: "q".into(),
            standalone: None,
            answer: text.into(),
            outcome: crate::answer::Outcome::Answered,
            reason: crate::answer::Reason::Supported,
            abstained: false,
            evidence: vec![evidence(cited, n)],
            citations: vec![crate::answer::Citation {
                n,
                valid: true,
                supported: true,
                quote: cited.text.clone(),
                passage: Some(cited.clone()),
            }],
            passages,
            sentences: Vec::new(),
            model_answer: text.into(),
            model_checked: text.into(),
            relevance: 0.6,
            signals: Default::default(),
            answerable: 0.9,
            stop: Some(crate::llm::StopReason::EndOfTurn),
            indexing: None,
            timings: Default::default(),
        }
    }

    #[test]
    fn a_question_asked_while_indexing_says_so_and_an_abstention_lists_real_passages() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        app.update(Action::Worker(WorkerEvent::Index(IndexStatus {
            progress: Some((1, 2)),
            ..Default::default()
        })));
        typed(&mut app, "q");
        let cmds = app.update(key(KeyCode::Enter));
        let indexing = Some(Indexing { done: 1, total: 2 });
        assert_eq!(
            cmds,
            vec![
                Effect::Ask {
                    id: 1,
                    question: "q".into(),
                    indexing,
                },
                Effect::Remember("q".into()),
            ]
        );
        assert_eq!(app.turns[0].indexing, indexing);
        // The gate abstained: the closest passages it names are in the sources pane.
        let p = passage("/d/a.md", "0a", "Unrelated text.");
        let mut a = answer(crate::answer::NO_ANSWER, vec![p.clone()], 1, &p);
        a.outcome = crate::answer::Outcome::Abstained;
        a.reason = crate::answer::Reason::WeakRetrieval;
        a.abstained = true;
        a.citations.clear();
        a.evidence.clear();
        a.indexing = indexing;
        app.update(turn(1, TurnEvent::Answered(Box::new(a))));
        let sources = app.sources();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].passage, p);
    }

    #[test]
    fn sources_navigate_and_preview_follows() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "x");
        app.update(key(KeyCode::Enter));
        let ps: Vec<Passage> = (0..3)
            .map(|i| passage(&format!("/d/{i}.md"), &format!("{i:02}"), "text"))
            .collect();
        app.update(turn(1, TurnEvent::Passages(ps.clone())));
        // While answering, Esc cancels (even in the box) rather than leaving the box.
        assert_eq!(app.update(key(KeyCode::Esc)), vec![Effect::Cancel]);
        app.update(key(KeyCode::Tab));
        app.update(key(KeyCode::Tab));
        assert_eq!(app.focus, Focus::Sources);
        app.update(key(KeyCode::Char('j')));
        app.update(key(KeyCode::Down));
        app.update(key(KeyCode::Down));
        assert_eq!(app.selected, 2, "selection stops at the last source");
        let cmds = app.update(key(KeyCode::Enter));
        assert_eq!(cmds, vec![Effect::Preview(ps[2].clone())]);
        assert_eq!(app.focus, Focus::Preview);
        app.update(Action::Worker(WorkerEvent::Preview(PreviewDoc {
            chunk: "02".into(),
            text: "doc".into(),
            span: [0, 3],
            more: false,
        })));
        assert!(app.preview.is_some());
        app.update(key(KeyCode::BackTab));
        let cmds = app.update(key(KeyCode::Char('k')));
        assert_eq!(
            cmds,
            vec![Effect::Preview(ps[1].clone())],
            "the preview follows"
        );
        assert_eq!(
            app.update(key(KeyCode::Char('o'))),
            vec![Effect::Open(ps[1].clone())]
        );
    }

    #[test]
    fn search_mode_debounces_and_drops_stale_results() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::SearchReady));
        app.update(key(KeyCode::Esc));
        app.update(key(KeyCode::Char('/')));
        assert_eq!((app.mode, app.focus), (InputMode::Search, Focus::Input));
        typed(&mut app, "ter");
        let now = Instant::now();
        assert!(app.update(Action::Tick(now)).is_empty(), "debounced");
        let later = now + SEARCH_DEBOUNCE * 2;
        assert_eq!(
            app.update(Action::Tick(later)),
            vec![Effect::Search("ter".into())]
        );
        assert!(app.update(Action::Tick(later)).is_empty(), "once");
        typed(&mut app, "m");
        app.update(Action::Worker(WorkerEvent::SearchResults {
            query: "ter".into(),
            passages: vec![passage("/a", "1", "t")],
        }));
        assert!(app.search_results.is_empty(), "stale results are dropped");
        app.update(Action::Worker(WorkerEvent::SearchResults {
            query: "term".into(),
            passages: vec![passage("/a", "1", "t")],
        }));
        assert_eq!(app.sources().len(), 1);
    }

    #[test]
    fn history_goes_back_and_forth() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        for (id, q) in [(1, "one"), (2, "two")] {
            typed(&mut app, q);
            app.update(key(KeyCode::Enter));
            app.update(turn(id, TurnEvent::Failed("x".into())));
        }
        assert_eq!(app.shown, 1);
        app.update(key(KeyCode::Esc));
        app.update(key(KeyCode::Char('[')));
        assert_eq!(app.current().map(|t| t.question.as_str()), Some("one"));
        app.update(key(KeyCode::Char(']')));
        assert_eq!(app.current().map(|t| t.question.as_str()), Some("two"));
    }

    #[test]
    fn question_history_walks_back_and_forth_like_a_shell() {
        let mut app = App::new(false);
        app.set_history(history_from_text("one\ntwo\n"));
        typed(&mut app, "dra");
        app.update(key(KeyCode::Up));
        assert_eq!((app.input.as_str(), app.cursor), ("two", 3));
        app.update(key(KeyCode::Up));
        assert_eq!(app.input, "one");
        app.update(key(KeyCode::Up));
        assert_eq!(app.input, "one", "the oldest stays");
        app.update(key(KeyCode::Down));
        assert_eq!(app.input, "two");
        app.update(key(KeyCode::Down));
        assert_eq!(
            (app.input.as_str(), app.cursor),
            ("dra", 3),
            "past the newest: what was typed"
        );
        app.update(key(KeyCode::Down));
        assert_eq!(app.input, "dra", "nothing further");
        // Editing a recalled question makes it the text the walk comes back to.
        app.update(key(KeyCode::Up));
        typed(&mut app, "!");
        assert_eq!(app.input, "two!");
        app.update(key(KeyCode::Up));
        assert_eq!(app.input, "two");
        app.update(key(KeyCode::Down));
        assert_eq!(app.input, "two!");
    }

    #[test]
    fn asked_and_searched_questions_are_remembered_once_each() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "one");
        let cmds = app.update(key(KeyCode::Enter));
        assert_eq!(cmds.last(), Some(&Effect::Remember("one".into())));
        app.update(turn(1, TurnEvent::Failed("x".into())));
        // Recalled and asked again: the same question is not kept twice in a row.
        app.update(key(KeyCode::Up));
        let cmds = app.update(key(KeyCode::Enter));
        assert!(matches!(cmds.as_slice(), [Effect::Ask { question, .. }] if question == "one"));
        assert_eq!(app.history, ["one"]);
        // A submitted search is remembered; what search-as-you-type ran is not.
        app.update(Action::Worker(WorkerEvent::SearchReady));
        app.update(turn(2, TurnEvent::Failed("x".into())));
        app.update(key(KeyCode::Esc));
        app.update(key(KeyCode::Char('/')));
        typed(&mut app, "ter");
        let later = Instant::now() + SEARCH_DEBOUNCE * 2;
        assert_eq!(
            app.update(Action::Tick(later)),
            vec![Effect::Search("ter".into())]
        );
        typed(&mut app, "m");
        assert_eq!(
            app.update(key(KeyCode::Enter)),
            vec![
                Effect::Search("term".into()),
                Effect::Remember("term".into())
            ]
        );
        assert_eq!(app.history, ["one", "term"]);
        // A recalled query is searched, as typed text is.
        app.update(key(KeyCode::Char('x')));
        app.update(key(KeyCode::Up));
        assert_eq!(app.input, "term");
        let later = Instant::now() + SEARCH_DEBOUNCE * 2;
        assert_eq!(
            app.update(Action::Tick(later)),
            vec![Effect::Search("term".into())]
        );
    }

    #[test]
    fn the_history_keeps_the_newest_500_without_repeats() {
        let text: String = (0..600).map(|i| format!("q{}\nq{}\n\n", i, i)).collect();
        let h = history_from_text(&text);
        assert_eq!(h.len(), HISTORY_MAX);
        assert_eq!((h[0].as_str(), h[499].as_str()), ("q100", "q599"));
        let mut app = App::new(false);
        app.set_history(h);
        typed(&mut app, "new");
        app.update(key(KeyCode::Enter));
        assert_eq!(app.history.len(), HISTORY_MAX);
        assert_eq!(app.history.first().map(String::as_str), Some("q101"));
        assert_eq!(app.history.last().map(String::as_str), Some("new"));
    }

    #[test]
    fn ctrl_up_and_down_move_in_the_sources_from_the_box() {
        let mut app = App::new(false);
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "x");
        app.update(key(KeyCode::Enter));
        let ps: Vec<Passage> = (0..3)
            .map(|i| passage(&format!("/d/{i}.md"), &format!("{i:02}"), "t"))
            .collect();
        app.update(turn(1, TurnEvent::Passages(ps)));
        let ctrl_key = |c| Action::Key(KeyEvent::new(c, KeyModifiers::CONTROL));
        app.update(ctrl_key(KeyCode::Down));
        app.update(ctrl_key(KeyCode::Down));
        assert_eq!((app.selected, app.input.as_str()), (2, ""));
        app.update(ctrl_key(KeyCode::Up));
        assert_eq!(app.selected, 1);
        assert_eq!(app.focus, Focus::Input);
    }

    #[test]
    fn y_copies_and_e_saves_the_shown_answer() {
        let mut app = App::new(false);
        app.update(key(KeyCode::Esc));
        assert!(app.update(key(KeyCode::Char('y'))).is_empty());
        assert!(app.notice.as_deref().is_some_and(|n| n.contains("ask")));
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        app.update(key(KeyCode::Char('a')));
        typed(&mut app, "why?");
        app.update(key(KeyCode::Enter));
        app.update(turn(1, TurnEvent::Token("Because.".into())));
        app.update(turn(1, TurnEvent::Failed("x".into())));
        // In the box, y and e are text.
        typed(&mut app, "ye");
        assert_eq!(app.input, "ye");
        app.update(key(KeyCode::Esc));
        let markdown = super::super::export::turn_markdown(&app.turns[0]);
        assert!(markdown.contains("Because."), "{markdown}");
        assert_eq!(
            app.update(key(KeyCode::Char('y'))),
            vec![Effect::Copy(markdown.clone())]
        );
        assert_eq!(
            app.update(key(KeyCode::Char('e'))),
            vec![Effect::Export {
                question: "why?".into(),
                markdown
            }]
        );
    }

    #[test]
    fn mouse_click_selects_a_source_and_wheel_scrolls() {
        let mut app = App::new(false);
        app.areas = Areas {
            input: Rect::new(0, 0, 80, 3),
            answer: Rect::new(0, 3, 50, 12),
            sources: Rect::new(50, 3, 30, 12),
            preview: Rect::new(0, 15, 80, 8),
            status: Rect::new(0, 23, 80, 1),
        };
        app.update(Action::Worker(WorkerEvent::Model(ModelState::Ready(
            "m".into(),
        ))));
        typed(&mut app, "x");
        app.update(key(KeyCode::Enter));
        let ps: Vec<Passage> = (0..3)
            .map(|i| passage(&format!("/d/{i}.md"), &format!("{i:02}"), "t"))
            .collect();
        app.update(turn(1, TurnEvent::Passages(ps.clone())));
        let click = |col, row| {
            Action::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: col,
                row,
                modifiers: KeyModifiers::NONE,
            })
        };
        let cmds = app.update(click(60, 3 + 1 + 2));
        assert_eq!(app.focus, Focus::Sources);
        assert_eq!(app.selected, 1);
        assert_eq!(cmds, vec![Effect::Preview(ps[1].clone())]);
        app.set_limits(ScrollLimits {
            answer: 10,
            preview: 0,
        });
        app.update(Action::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollUp,
            column: 5,
            row: 5,
            modifiers: KeyModifiers::NONE,
        }));
        assert_eq!(app.answer_scroll, 7, "the wheel scrolls the pane under it");
        assert_eq!(app.focus, Focus::Sources, "without taking the focus");

        // A scrolled list: the click lands on the row shown there, not on row n of the list.
        let many: Vec<Passage> = (0..8)
            .map(|i| passage(&format!("/d/{i}.md"), &format!("{i:02}"), "t"))
            .collect();
        app.update(turn(1, TurnEvent::Passages(many.clone())));
        app.selected = 7;
        let first = first_visible(7, app.areas.sources.height);
        assert_eq!(first, 3, "five rows of two lines in a 12-line pane");
        app.update(click(60, 3 + 1));
        assert_eq!(app.selected, 3);
    }
}
