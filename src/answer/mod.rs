//! Grounded answers: retrieve passages, pack them into the prompt, generate, check citations.
//!
//! `ask` is the one flow the CLI and the TUI share. It abstains before generating when no
//! passage is relevant enough to the question, and after generating when the model says the
//! passages hold no answer or none of its sentences is supported by them. Citations are
//! attributed by folio (see `cite`), not taken from the model on trust.

pub mod cite;
pub mod evidence;
pub mod pack;
pub mod prompt;
pub mod text;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::embed::Embedder;
use crate::index::Index;
use crate::index::search::{Filter, Passage, Retrievers, SearchError, SearchOptions};
use crate::llm::template::Message;
use crate::llm::{GenerateOptions, Llm, LlmError, StopReason};
pub use prompt::Turn;
use prompt::{PromptPassage, Prompts, clean_rewrite};

/// What folio says when the documents hold no answer.
pub const NO_ANSWER: &str = "The documents do not say.";
/// Passages listed as "closest" when abstaining.
const CLOSEST: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("embedding")]
    Embed(#[from] crate::embed::EmbedError),
    #[error("prompt template {0}")]
    Prompt(String),
}

pub use crate::index::progress::Indexing;

#[derive(Debug, Clone)]
pub struct AskOptions {
    pub search: SearchOptions,
    /// Passages retrieved; evidence is chosen among them.
    pub passages: usize,
    pub thresholds: Thresholds,
    pub min_support: f32,
    pub evidence: evidence::Params,
    /// Evidence spans quoted as the answer when the evidence leads.
    pub lead_spans: usize,
    pub generate: GenerateOptions,
    /// Set while an index run is in progress.
    pub indexing: Option<Indexing>,
    /// Earlier turns of the conversation, oldest first. A follow-up is rewritten by the
    /// model into a question that stands alone, which is what retrieval searches for, and
    /// the last turns go into the prompt before it.
    pub conversation: Vec<Turn>,
}

impl AskOptions {
    /// The settings' answering options; `filter` restricts retrieval.
    pub fn from_settings(s: &crate::config::Settings, filter: Filter) -> Self {
        let mut search = SearchOptions::from_settings(s, Retrievers::Hybrid);
        search.filter = filter;
        AskOptions {
            search,
            passages: s.answer_passages,
            thresholds: Thresholds {
                min_relevance: s.min_relevance,
                min_answerable: s.min_answerable,
                min_evidence: s.min_evidence,
            },
            min_support: s.min_support,
            evidence: evidence::Params {
                spans: s.evidence_spans.max(1),
                window: s.evidence_window,
                ..evidence::Params::default()
            },
            lead_spans: s.lead_spans.max(1),
            generate: GenerateOptions {
                max_tokens: s.max_tokens,
                temperature: s.temperature as f64,
                top_p: s.top_p as f64,
                seed: s.seed,
                repeat_penalty: s.repeat_penalty,
                ..GenerateOptions::default()
            },
            indexing: None,
            conversation: Vec::new(),
        }
    }
}

/// Earlier turns that go into a prompt, and how much of each answer.
const TURNS_IN_PROMPT: usize = 3;
const TURN_ANSWER_CHARS: usize = 600;

/// The last turns of a conversation, their answers cut to a prompt's share.
fn recent_turns(conversation: &[Turn]) -> Vec<Turn> {
    conversation[conversation.len().saturating_sub(TURNS_IN_PROMPT)..]
        .iter()
        .map(|t| Turn {
            question: t.question.clone(),
            answer: t.answer.chars().take(TURN_ANSWER_CHARS).collect(),
        })
        .collect()
}

/// `question` rewritten by the model to stand alone, given the conversation; `None` when it
/// needs no rewrite, or the model gave nothing usable (then it is searched as asked).
fn standalone_question(
    llm: &mut Llm,
    prompts: &Prompts,
    conversation: &[Turn],
    question: &str,
    cancel: &AtomicBool,
) -> Result<Option<String>, AnswerError> {
    if conversation.is_empty() {
        return Ok(None);
    }
    let user = prompts.render_rewrite(&recent_turns(conversation), question)?;
    let greedy = GenerateOptions {
        max_tokens: 64,
        temperature: 0.0,
        ..GenerateOptions::default()
    };
    let generated = llm
        .encode_chat(&[Message::new("user", user)])
        .and_then(|ids| llm.generate(&ids, &greedy, cancel, &mut |_| {}));
    match generated {
        Ok(g) => Ok(clean_rewrite(&g.text, question).filter(|q| q != question)),
        Err(e) => {
            // The question is still answerable as asked.
            tracing::warn!(error = %crate::error_chain(&e), "rewriting a follow-up");
            Ok(None)
        }
    }
}

/// Progress reported while answering, in this order.
pub enum Event<'a> {
    /// The evidence, best first, before the model starts (not sent when folio abstains).
    Evidence(&'a [Evidence]),
    /// The passages the model will read, numbered from 1 in this order.
    Passages(&'a [Passage]),
    /// A piece of generated text.
    Token(&'a str),
    /// A follow-up as rewritten to stand alone, first of all (only when it was rewritten).
    Rewritten(&'a str),
}

/// A span of a retrieved passage that answers the question, as far as folio can tell without
/// the model.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    /// The sentence or clause, verbatim from `passage.text`.
    pub quote: String,
    /// Character offsets of the quote in the extracted text of its page (PDF) or file, in the
    /// same coordinates as `passage.span`, and inside it.
    pub span: [usize; 2],
    pub passage: Passage,
    /// The number of its passage in the model's prompt (`[n]`).
    pub n: usize,
    /// The text of the passage just before and after the quote (up to a sentence each).
    pub before: String,
    pub after: String,
    pub score: f32,
    /// Byte offsets of the quote in `passage.text`.
    #[serde(skip)]
    pub bytes: (usize, usize),
}

#[derive(Debug, Clone, Serialize)]
pub struct Citation {
    /// The number as it appears in the answer (`[n]`).
    pub n: usize,
    /// The number names a passage that was in the prompt.
    pub valid: bool,
    /// A sentence of the answer is supported by this passage.
    pub supported: bool,
    /// The passage sentence that supports the answer (verbatim from `passage.text`), or "".
    pub quote: String,
    pub passage: Option<Passage>,
}

/// One sentence of the answer after checking.
#[derive(Debug, Clone, Serialize)]
pub struct Sentence {
    pub text: String,
    /// Passage number that supports it.
    pub cites: Option<usize>,
    pub supported: bool,
    pub score: f32,
    /// Figures it states that the supporting passage sentence does not.
    pub unverified: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub retrieve_ms: f64,
    /// From the end of retrieval to the evidence being ready.
    pub evidence_ms: f64,
    pub prompt_tokens: usize,
    /// Leading prompt tokens still cached from the previous question (not computed again).
    pub reused_tokens: usize,
    pub prompt_ms: f64,
    pub first_token_ms: f64,
    pub generated_tokens: usize,
    pub generate_ms: f64,
    pub prompt_tokens_per_s: f64,
    pub tokens_per_s: f64,
    pub check_ms: f64,
    pub total_ms: f64,
}

/// What folio shows as the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The model's answer, checked: at least one of its sentences is supported.
    Answered,
    /// The evidence, quoted from the documents: the model's answer was unsupported, an
    /// abstention or a failure, but the evidence is strong.
    Evidence,
    /// "The documents do not say": retrieval and evidence are both weak.
    Abstained,
}

/// Why the outcome is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The model's answer is supported by the passages.
    Supported,
    /// The model said the passages hold no answer.
    ModelAbstained,
    /// No sentence of the model's answer is supported (or its figures are not).
    ModelUnsupported,
    /// The model failed; the message says how.
    ModelFailed(String),
    /// Generation was cancelled before the model said anything supported.
    Cancelled,
    /// Nothing was retrieved.
    NoPassages,
    /// Neither retrieval nor evidence is strong enough to ask the model.
    WeakRetrieval,
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    /// The follow-up question rewritten to stand alone, which retrieval searched for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standalone: Option<String>,
    /// What folio shows as the answer: the checked model answer (supported sentences end in
    /// `[n]`, unsupported ones in `[?]`), the lead evidence quoted with its `[n]`, or
    /// [`NO_ANSWER`].
    pub answer: String,
    pub outcome: Outcome,
    pub reason: Reason,
    pub abstained: bool,
    /// Spans that answer the question, best first, shown before the model's answer.
    pub evidence: Vec<Evidence>,
    pub citations: Vec<Citation>,
    /// The passages the model read, in prompt order (when abstaining: the closest ones).
    pub passages: Vec<Passage>,
    pub sentences: Vec<Sentence>,
    /// What the model wrote, unchanged.
    pub model_answer: String,
    /// The model's answer with checked markers, also when it is not what leads.
    pub model_checked: String,
    /// Highest similarity of a passage to the question.
    pub relevance: f32,
    /// What the policy decided on.
    pub signals: Signals,
    /// The estimated probability that the passages answer the question (see [`GATE`]).
    pub answerable: f32,
    pub stop: Option<StopReason>,
    /// Set when the question was asked while indexing ran.
    pub indexing: Option<Indexing>,
    pub timings: Timings,
}

impl Answer {
    fn empty(question: &str, relevance: f32, timings: Timings) -> Answer {
        Answer {
            question: question.to_string(),
            standalone: None,
            answer: NO_ANSWER.to_string(),
            outcome: Outcome::Abstained,
            reason: Reason::NoPassages,
            abstained: true,
            evidence: Vec::new(),
            citations: Vec::new(),
            passages: Vec::new(),
            sentences: Vec::new(),
            model_answer: String::new(),
            model_checked: String::new(),
            relevance,
            signals: Signals::default(),
            answerable: 0.0,
            stop: None,
            indexing: None,
            timings,
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The signals the answer policy decides on.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Signals {
    /// Cosine similarity of the question's nearest passage (dense retrieval).
    pub relevance: f32,
    /// The best evidence span's score.
    pub strength: f32,
    /// Cosine similarity of the best span to the question.
    pub span_similarity: f32,
    /// The best share of the question's terms (IDF-weighted, BM25's analyzer) found around
    /// any span.
    pub coverage: f32,
    /// A span near the top holds what the question asks for (a figure for "how many", a date
    /// for "when was"), or the question asks for nothing in particular.
    pub typed: bool,
    pub has_evidence: bool,
}

/// Weights of [`Signals::answerable`]: a logistic regression fitted on the tune split of the
/// development QA set (`./dev bench qa --tune`), its unanswerable questions and each
/// answerable one asked of the folder without its source file.
pub struct Gate {
    pub bias: f32,
    pub relevance: f32,
    pub strength: f32,
    pub span_similarity: f32,
    pub coverage: f32,
    pub typed: f32,
}

pub const GATE: Gate = Gate {
    bias: -10.65,
    relevance: 5.15,
    strength: 0.20,
    span_similarity: 5.63,
    coverage: 4.30,
    typed: 2.10,
};

impl Signals {
    /// The estimated probability that the passages answer the question.
    pub fn answerable(&self) -> f32 {
        if !self.has_evidence {
            return 0.0;
        }
        let g = &GATE;
        let z = g.bias
            + g.relevance * self.relevance
            + g.strength * self.strength
            + g.span_similarity * self.span_similarity
            + g.coverage * self.coverage
            + g.typed * f32::from(u8::from(self.typed));
        1.0 / (1.0 + (-z).exp())
    }
}

/// How sure folio must be that the passages answer before it asks the model, and before it
/// shows evidence as the answer.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Below this similarity nothing in the folder is about the question.
    pub min_relevance: f32,
    /// Below this answerability folio abstains without asking the model.
    pub min_answerable: f32,
    /// At or above this answerability the evidence leads when the model's answer does not.
    pub min_evidence: f32,
}

/// Before generation: whether to abstain without asking the model: only when retrieval and
/// evidence together say the passages do not hold the answer.
pub fn abstain_early(s: &Signals, t: &Thresholds) -> bool {
    !s.has_evidence || s.relevance < t.min_relevance || s.answerable() < t.min_answerable
}

/// After generation: what leads, given whether the model's answer is supported.
pub fn decide(s: &Signals, model_supported: bool, t: &Thresholds) -> Outcome {
    if model_supported {
        Outcome::Answered
    } else if s.has_evidence && s.answerable() >= t.min_evidence {
        Outcome::Evidence
    } else {
        Outcome::Abstained
    }
}

/// A span joins the lead when it scores at least this share of the best one: the lead then
/// holds the answer about as often as all the spans would, in fewer words (tuned on the
/// development set's tune split).
const LEAD_SHARE: f32 = 0.75;

/// Up to `spans` of the best evidence quotes, each with its passage number, as the answer's
/// text: the best one, and those that score nearly as well.
pub fn lead_quote(ev: &[Evidence], spans: usize) -> String {
    let best = ev.first().map_or(0.0, |e| e.score);
    ev.iter()
        .take(spans)
        .enumerate()
        .filter(|(i, e)| *i == 0 || e.score >= LEAD_SHARE * best)
        .map(|(_, e)| {
            let quote = e.quote.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("\"{quote}\" [{}]", e.n)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the model's checked sentences may lead the answer. A small model mixes lines the
/// passages back with lines it invents, so one supported sentence is not enough: every
/// sentence that states something must be backed, figures included ("45 days" beside "thirty
/// (30) days" is a wrong answer), and a question that asks for a duration, figure or date
/// must get one; and an answer that cites a passage that does not exist does not lead either.
/// Otherwise the evidence leads and the model's text stays below it.
pub fn model_leads(checked: &[cite::Checked], asks: evidence::Asks, invalid_cite: bool) -> bool {
    let stating: Vec<&cite::Checked> = checked
        .iter()
        .filter(|c| !c.abstains && !text::words(&c.text).is_empty())
        .collect();
    !invalid_cite
        && !stating.is_empty()
        && stating
            .iter()
            .all(|c| c.support.is_some() && c.unverified.is_empty())
        && (asks == evidence::Asks::Other || stating.iter().any(|c| evidence::holds(asks, &c.text)))
}

/// Embeddings of `texts`, computing only those not in `cache`.
fn embed_cached(
    embedder: &Embedder,
    cache: &mut HashMap<String, Vec<f32>>,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, AnswerError> {
    let mut missing: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| !cache.contains_key(*t))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let vecs = embedder.embed(&missing)?;
        for (t, v) in missing.into_iter().zip(vecs) {
            cache.insert(t.to_string(), v);
        }
    }
    Ok(texts
        .iter()
        .map(|t| cache.get(*t).cloned().unwrap_or_default())
        .collect())
}

fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

/// Every scored candidate, and the picked spans with their [`Evidence`].
type Found = (Vec<evidence::Scored>, Vec<(evidence::Scored, Evidence)>);

/// Evidence for `question` among `found` (in retrieval order): every candidate scored, and
/// the picked spans as [`Evidence`] (their `n` still unset).
fn find_evidence(
    index: &Index,
    embedder: &Embedder,
    question: &str,
    found: &[Passage],
    params: &evidence::Params,
    cache: &mut HashMap<String, Vec<f32>>,
) -> Result<Found, AnswerError> {
    let bm25 = index.bm25();
    let analyze = |t: &str| bm25.terms(t);
    let idf = |t: &str| bm25.idf(t);
    let query = evidence::Query::new(question, &analyze, &idf);
    let views: Vec<evidence::PassageView<'_>> = found
        .iter()
        .enumerate()
        .map(|(rank, p)| evidence::PassageView {
            text: &p.text,
            heading: &p.heading,
            rank,
        })
        .collect();
    let mut scored = evidence::score(&query, &views, &analyze, params);
    let texts: Vec<&str> = found.iter().map(|p| p.text.as_str()).collect();
    if params.dense != 0.0 && params.dense_candidates > 0 && !scored.is_empty() {
        // Embedding every sentence would cost more than the rest together: only the best few
        // by the other signals are compared with the question.
        let top = params.dense_candidates.min(scored.len());
        let q = embedder.embed_query(question)?;
        let quotes: Vec<&str> = scored[..top]
            .iter()
            .map(|c| &texts[c.passage][c.start..c.end])
            .collect();
        let vecs = embed_cached(embedder, cache, &quotes)?;
        for (c, v) in scored.iter_mut().zip(&vecs) {
            c.dense = Some(dot(&q, v));
        }
        evidence::rank(&mut scored, params);
    }
    let picked = evidence::pick(&scored, &texts, params.spans);
    let picked = picked
        .into_iter()
        .map(|c| {
            let p = &found[c.passage];
            let units = evidence::units(&p.text, params);
            let before = c
                .unit
                .checked_sub(1)
                .map(|u| p.text[units[u].0..units[u].1].to_string())
                .unwrap_or_default();
            let after = units
                .get(c.unit + 1)
                .map(|u| p.text[u.0..u.1].to_string())
                .unwrap_or_default();
            let from = p.span[0] + char_offset(&p.text, c.start);
            let e = Evidence {
                quote: p.text[c.start..c.end].to_string(),
                span: [from, from + p.text[c.start..c.end].chars().count()],
                passage: p.clone(),
                n: 0,
                before,
                after,
                score: c.score,
                bytes: (c.start, c.end),
            };
            (c, e)
        })
        .collect();
    Ok((scored, picked))
}

fn prompt_passage(n: usize, p: &Passage, text: String) -> PromptPassage {
    let source = std::path::Path::new(&p.path)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.path.clone());
    PromptPassage {
        n,
        source,
        path: p.path.clone(),
        page: p.page,
        heading: p.heading.join(" > "),
        text,
    }
}

/// Retrieval and evidence for a question: everything `ask` does before the model.
pub struct Gathered {
    /// The retrieved passages, best first.
    pub retrieved: Vec<Passage>,
    /// Every candidate span of `retrieved`, scored, best first.
    pub candidates: Vec<evidence::Scored>,
    /// The evidence, best first, numbered by its passage's place in `passages`.
    pub evidence: Vec<Evidence>,
    /// What the model reads of each passage that holds evidence.
    pub windows: Vec<evidence::Window>,
    /// The passages of `windows`, in prompt order.
    pub passages: Vec<Passage>,
    pub signals: Signals,
    pub retrieve_ms: f64,
    pub evidence_ms: f64,
}

/// Retrieves passages for `question` and finds the evidence in them. `cache` keeps the
/// embeddings computed, for the citation check to reuse.
pub fn gather(
    index: &Index,
    embedder: &Embedder,
    question: &str,
    opts: &AskOptions,
    cache: &mut HashMap<String, Vec<f32>>,
) -> Result<Gathered, AnswerError> {
    let t0 = Instant::now();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    let mut search = opts.search.clone();
    search.k = search.k.max(opts.passages);
    let mut found = index.search(Some(embedder), question, &search)?;
    found.truncate(opts.passages.max(1));
    let retrieve_ms = ms(t0);
    if found.is_empty() {
        return Ok(Gathered {
            retrieved: found,
            candidates: Vec::new(),
            evidence: Vec::new(),
            windows: Vec::new(),
            passages: Vec::new(),
            signals: Signals::default(),
            retrieve_ms,
            evidence_ms: 0.0,
        });
    }
    let t1 = Instant::now();
    // Relevance: the question's nearest passage in the embedder's space, from the stored
    // vectors (the quantity `answer.min_relevance` was calibrated on).
    let relevance = index.relevance(embedder, question, &opts.search.filter)?;
    let (candidates, picked) =
        find_evidence(index, embedder, question, &found, &opts.evidence, cache)?;
    // The best span's similarity to the question, for the gate: one short text to embed
    // when ranking did not compare it already.
    let span_similarity = match picked.first() {
        Some((c, _)) if c.dense.is_some() => c.dense.unwrap_or(0.0),
        Some((_, e)) => {
            let q = embedder.embed_query(question)?;
            embed_cached(embedder, cache, &[e.quote.as_str()])?
                .first()
                .map_or(0.0, |v| dot(&q, v))
        }
        None => 0.0,
    };
    let asks = evidence::asks(question);
    let signals = Signals {
        relevance,
        strength: picked.first().map(|(c, _)| c.score).unwrap_or(0.0),
        span_similarity,
        coverage: candidates.iter().map(|c| c.context).fold(0.0, f32::max),
        typed: asks == evidence::Asks::Other || picked.iter().any(|(c, _)| c.answer_type > 0.0),
        has_evidence: !picked.is_empty(),
    };
    // The prompt: each passage that holds evidence, best first, with only its evidence
    // windows. Evidence is numbered by its passage's place there.
    let scored: Vec<evidence::Scored> = picked.iter().map(|(c, _)| c.clone()).collect();
    let texts: Vec<&str> = found.iter().map(|p| p.text.as_str()).collect();
    let windows = evidence::windows(&scored, &texts, &opts.evidence);
    let passages: Vec<Passage> = windows.iter().map(|w| found[w.passage].clone()).collect();
    let mut ev: Vec<Evidence> = picked.into_iter().map(|(_, e)| e).collect();
    for (e, c) in ev.iter_mut().zip(&scored) {
        e.n = windows
            .iter()
            .position(|w| w.passage == c.passage)
            .map_or(0, |i| i + 1);
    }
    Ok(Gathered {
        retrieved: found,
        candidates,
        evidence: ev,
        windows,
        passages,
        signals,
        retrieve_ms,
        evidence_ms: ms(t1),
    })
}

/// What answers a question: the index, the sentence encoder, the language model and the
/// prompt templates.
pub struct Engine<'a> {
    pub index: &'a Index,
    pub embedder: &'a Embedder,
    pub llm: &'a mut Llm,
    pub prompts: &'a Prompts,
}

/// Answers `question` from the engine's index. `on_event` sees the evidence, the passages,
/// then each piece of generated text.
pub fn ask(
    engine: &mut Engine<'_>,
    question: &str,
    opts: &AskOptions,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Answer, AnswerError> {
    let Engine {
        index,
        embedder,
        llm,
        prompts,
    } = engine;
    let (index, embedder, prompts) = (*index, *embedder, *prompts);
    let t0 = Instant::now();
    let mut timings = Timings::default();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;

    let standalone = standalone_question(llm, prompts, &opts.conversation, question, cancel)?;
    if let Some(q) = &standalone {
        on_event(Event::Rewritten(q));
    }
    // Retrieval, the prompt and the citation check read the question as it stands alone.
    let asked = question;
    let question = standalone.as_deref().unwrap_or(asked);
    let turns = recent_turns(&opts.conversation);

    let mut cache = HashMap::new();
    let g = gather(index, embedder, question, opts, &mut cache)?;
    timings.retrieve_ms = g.retrieve_ms;
    timings.evidence_ms = g.evidence_ms;
    let signals = g.signals;
    if g.retrieved.is_empty() || abstain_early(&signals, &opts.thresholds) {
        timings.total_ms = ms(t0);
        let mut a = Answer::empty(asked, signals.relevance, timings);
        a.standalone = standalone;
        if !g.retrieved.is_empty() {
            a.reason = Reason::WeakRetrieval;
        }
        a.passages = g.retrieved.iter().take(CLOSEST).cloned().collect();
        a.signals = signals;
        a.answerable = signals.answerable();
        a.indexing = opts.indexing;
        return Ok(a);
    }
    let Gathered {
        retrieved: found,
        mut windows,
        mut passages,
        evidence: mut ev,
        ..
    } = g;

    // The windows are short, but a model with a small context may still not hold them all:
    // what the template and the answer need is set aside first.
    let count = |s: &str| llm.count_tokens(s);
    let (system_probe, user_probe) = prompts.render(question, &[])?;
    let earlier: usize = turns
        .iter()
        .map(|t| count(&t.question) + count(&t.answer) + 8)
        .sum();
    let fixed = count(&system_probe) + count(&user_probe) + earlier + 32;
    let budget = llm
        .context_length()
        .saturating_sub(opts.generate.max_tokens + fixed);
    let texts: Vec<&str> = windows.iter().map(|w| w.text.as_str()).collect();
    let packed = pack::pack(&texts, question, budget, budget, 16, &count);
    if packed.is_empty() {
        return Err(AnswerError::Llm(LlmError::TooLong {
            tokens: fixed + opts.generate.max_tokens,
            context: llm.context_length(),
        }));
    }
    for (w, (_, text)) in windows.iter_mut().zip(&packed) {
        w.text = text.clone();
    }
    windows.truncate(packed.len());
    passages.truncate(packed.len());
    for e in &mut ev {
        if e.n > packed.len() {
            e.n = 0;
        }
    }
    on_event(Event::Evidence(&ev));
    on_event(Event::Passages(&passages));

    let numbered: Vec<PromptPassage> = windows
        .iter()
        .enumerate()
        .map(|(k, w)| prompt_passage(k + 1, &found[w.passage], w.text.clone()))
        .collect();
    let (system, user) = prompts.render(question, &numbered)?;
    let mut messages = vec![Message::new("system", system)];
    for t in &turns {
        messages.push(Message::new("user", t.question.clone()));
        messages.push(Message::new("assistant", t.answer.clone()));
    }
    messages.push(Message::new("user", user));

    let mut first: Option<f64> = None;
    let generated = llm.encode_chat(&messages).and_then(|ids| {
        llm.generate(&ids, &opts.generate, cancel, &mut |piece| {
            if first.is_none() {
                first = Some(ms(t0));
            }
            on_event(Event::Token(piece));
        })
    });
    let generation = match generated {
        Ok(g) => g,
        Err(e) => {
            // The evidence stands without the model.
            let outcome = decide(&signals, false, &opts.thresholds);
            let mut a = Answer::empty(asked, signals.relevance, timings);
            a.standalone = standalone;
            a.reason = Reason::ModelFailed(crate::error_chain(&e));
            lead(&mut a, outcome, ev, passages, signals, opts.lead_spans);
            a.indexing = opts.indexing;
            a.timings.total_ms = ms(t0);
            return Ok(a);
        }
    };
    timings.prompt_tokens = generation.prompt_tokens;
    timings.reused_tokens = generation.reused_tokens;
    timings.prompt_ms = generation.prompt_seconds * 1000.0;
    timings.first_token_ms = first.unwrap_or_else(|| ms(t0));
    timings.generated_tokens = generation.generated_tokens;
    timings.generate_ms = generation.generate_seconds * 1000.0;
    timings.prompt_tokens_per_s = generation.prompt_tokens_per_second();
    timings.tokens_per_s = generation.tokens_per_second();

    let t_check = Instant::now();
    let model_answer = generation.text.trim().to_string();
    let ranges: Vec<Vec<(usize, usize)>> = windows.iter().map(|w| w.ranges.clone()).collect();
    let draft = Draft {
        question,
        model_answer: &model_answer,
        passages: &passages,
        ranges: &ranges,
    };
    let mut answer = check_answer(
        &draft,
        embedder,
        opts.min_support,
        signals.relevance,
        &mut cache,
    )?;
    answer.stop = Some(generation.stop);
    answer.question = asked.to_string();
    answer.standalone = standalone;
    let supported = answer.outcome == Outcome::Answered;
    if !supported {
        let outcome = decide(&signals, false, &opts.thresholds);
        if generation.stop == StopReason::Cancelled && answer.reason == Reason::ModelUnsupported {
            answer.reason = Reason::Cancelled;
        }
        lead(&mut answer, outcome, ev, passages, signals, opts.lead_spans);
    } else {
        answer.evidence = ev;
        answer.signals = signals;
        answer.answerable = signals.answerable();
    }
    answer.indexing = opts.indexing;
    timings.check_ms = ms(t_check);
    timings.total_ms = ms(t0);
    answer.timings = timings;
    Ok(answer)
}

/// Puts the evidence (or the abstention) in front of an answer the model could not give.
fn lead(
    a: &mut Answer,
    outcome: Outcome,
    ev: Vec<Evidence>,
    passages: Vec<Passage>,
    s: Signals,
    spans: usize,
) {
    a.outcome = outcome;
    a.signals = s;
    a.answerable = s.answerable();
    a.relevance = s.relevance;
    match outcome {
        Outcome::Evidence => {
            a.abstained = false;
            a.answer = lead_quote(&ev, spans);
            // The sources are the evidence now; what the model cited stays in its text.
            a.citations = Vec::new();
            for e in &ev {
                if a.citations.iter().any(|c| c.n == e.n) {
                    continue;
                }
                a.citations.push(Citation {
                    n: e.n,
                    valid: true,
                    supported: true,
                    quote: e.quote.clone(),
                    passage: Some(e.passage.clone()),
                });
            }
            a.citations.sort_by_key(|c| c.n);
            a.passages = passages;
            a.evidence = ev;
        }
        Outcome::Abstained | Outcome::Answered => {
            a.abstained = true;
            a.answer = NO_ANSWER.to_string();
            a.passages = passages.into_iter().take(CLOSEST).collect();
            a.citations = Vec::new();
            a.evidence = Vec::new();
        }
    }
}

/// A model's answer and what it was given: the question, the passages it read, and
/// (`ranges[p]`) the byte ranges of passage `p`'s text that its prompt held.
#[derive(Clone, Copy)]
pub struct Draft<'a> {
    pub question: &'a str,
    pub model_answer: &'a str,
    pub passages: &'a [Passage],
    pub ranges: &'a [Vec<(usize, usize)>],
}

/// Attributes every sentence of `model_answer` to the sentences of `passages` that the model
/// read (`ranges[p]`: byte ranges of passage `p`'s text in its prompt) and assembles the
/// result: `Answered` when a sentence is supported and its figures with it, otherwise
/// `Abstained` with the reason, for the caller's policy to decide what leads.
pub fn check_answer(
    draft: &Draft<'_>,
    embedder: &Embedder,
    min_support: f32,
    relevance: f32,
    cache: &mut HashMap<String, Vec<f32>>,
) -> Result<Answer, AnswerError> {
    let Draft {
        question,
        model_answer,
        passages,
        ranges,
    } = *draft;
    let raw: Vec<String> = text::sentences(model_answer)
        .into_iter()
        .map(|(s, e)| model_answer[s..e].to_string())
        .collect();
    let mut sources = Vec::new();
    for (p, passage) in passages.iter().enumerate() {
        let read = ranges.get(p);
        for (start, end) in text::sentences(&passage.text) {
            let inside = read.is_none_or(|r| r.iter().any(|&(s, e)| start < e && end > s));
            if inside {
                sources.push(cite::SourceSpan {
                    passage: p,
                    start,
                    end,
                });
            }
        }
    }
    let source_texts: Vec<&str> = sources
        .iter()
        .map(|s| &passages[s.passage].text[s.start..s.end])
        .collect();
    let stripped: Vec<String> = raw.iter().map(|s| cite::strip_markers(s).0).collect();
    // Only sources that share a word with some answer sentence are embedded: one that shares
    // none scores 0.6 x similarity, and would need a similarity above 0.83 to reach the
    // default support threshold, which sentences without a common word do not have. Embedding
    // is what the check costs.
    let sentence_words: Vec<_> = stripped.iter().map(|s| text::words(s)).collect();
    let candidate: Vec<bool> = source_texts
        .iter()
        .map(|t| {
            let w = text::words(t);
            sentence_words.iter().any(|s| !s.is_disjoint(&w))
        })
        .collect();
    let mut all: Vec<&str> = stripped.iter().map(String::as_str).collect();
    all.extend(
        source_texts
            .iter()
            .zip(&candidate)
            .filter(|(_, c)| **c)
            .map(|(t, _)| *t),
    );
    let vecs = embed_cached(embedder, cache, &all)?;
    let (answer_vecs, candidate_vecs) = vecs.split_at(stripped.len().min(vecs.len()));
    let mut next = candidate_vecs.iter();
    let source_vecs: Vec<Option<&Vec<f32>>> = candidate
        .iter()
        .map(|&c| if c { next.next() } else { None })
        .collect();
    let sims: Vec<Vec<f32>> = answer_vecs
        .iter()
        .map(|a| {
            source_vecs
                .iter()
                .map(|s| s.map_or(0.0, |s| dot(a, s)))
                .collect()
        })
        .collect();
    let checked = cite::check(&raw, &sources, &source_texts, &sims, min_support);

    let mut parts = Vec::new();
    let mut sentences = Vec::new();
    // Per cited passage: the best-scoring supporting source sentence.
    let mut best: Vec<Option<(usize, f32)>> = vec![None; passages.len()];
    for c in &checked {
        let cites = c.support.map(|(j, _)| sources[j].passage + 1);
        let text = match (cites, c.abstains) {
            (Some(n), _) if !c.unverified.is_empty() => {
                format!("{} [{n}] [unverified: {}]", c.text, c.unverified.join(", "))
            }
            (Some(n), _) => format!("{} [{n}]", c.text),
            (None, true) => c.text.clone(),
            (None, false) if text::words(&c.text).is_empty() => c.text.clone(),
            (None, false) => format!("{} [?]", c.text),
        };
        parts.push(text);
        if let Some((j, score)) = c.support {
            let p = sources[j].passage;
            if best[p].is_none_or(|b| score > b.1) {
                best[p] = Some((j, score));
            }
        }
        sentences.push(Sentence {
            text: c.text.clone(),
            cites,
            supported: c.support.is_some(),
            score: c.support.map(|s| s.1).unwrap_or(0.0),
            unverified: c.unverified.clone(),
        });
    }
    let mut citations: Vec<Citation> = Vec::new();
    for (p, b) in best.iter().enumerate() {
        if let Some((j, _)) = b {
            citations.push(Citation {
                n: p + 1,
                valid: true,
                supported: true,
                quote: source_texts[*j].to_string(),
                passage: Some(passages[p].clone()),
            });
        }
    }
    // Numbers the model wrote that name no passage, or a passage that supports nothing it said.
    let mut model_numbers: Vec<usize> =
        checked.iter().flat_map(|c| c.model_cited.clone()).collect();
    model_numbers.sort_unstable();
    model_numbers.dedup();
    for n in model_numbers {
        if citations.iter().any(|c| c.n == n) {
            continue;
        }
        let valid = n >= 1 && n <= passages.len();
        citations.push(Citation {
            n,
            valid,
            supported: false,
            quote: String::new(),
            passage: valid.then(|| passages[n - 1].clone()),
        });
    }
    citations.sort_by_key(|c| (c.n, !c.valid));
    let cites_nothing_real = citations.iter().any(|c| !c.valid);
    let supported = model_leads(&checked, evidence::asks(question), cites_nothing_real);
    let abstains = checked.iter().any(|c| c.abstains);
    let checked_text = parts.join(" ");
    let mut a = Answer::empty(question, relevance, Timings::default());
    a.model_answer = model_answer.to_string();
    a.model_checked = checked_text.clone();
    a.sentences = sentences;
    a.citations = citations;
    a.passages = passages.to_vec();
    if supported {
        a.answer = checked_text;
        a.outcome = Outcome::Answered;
        a.reason = Reason::Supported;
        a.abstained = false;
    } else {
        a.reason = if abstains || model_answer.is_empty() {
            Reason::ModelAbstained
        } else {
            Reason::ModelUnsupported
        };
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signals with one strength for similarity and coverage alike.
    fn sig(similarity: f32, strength: f32) -> Signals {
        Signals {
            relevance: similarity,
            strength,
            span_similarity: similarity,
            coverage: similarity,
            typed: true,
            has_evidence: true,
        }
    }

    const T: Thresholds = Thresholds {
        min_relevance: 0.2,
        min_answerable: 0.3,
        min_evidence: 0.5,
    };

    #[test]
    fn answerability_grows_with_every_signal() {
        let base = sig(0.6, 1.5);
        let p = base.answerable();
        assert!(p > 0.0 && p < 1.0);
        assert!(sig(0.7, 1.5).answerable() > p);
        assert!(sig(0.6, 1.8).answerable() > p);
        let untyped = Signals {
            typed: false,
            ..base
        };
        assert!(untyped.answerable() < p);
        let none = Signals {
            has_evidence: false,
            ..base
        };
        assert_eq!(none.answerable(), 0.0);
    }

    #[test]
    fn abstains_early_only_when_the_signals_together_are_weak() {
        let strong = sig(0.8, 2.4);
        assert!(strong.answerable() > 0.9, "{}", strong.answerable());
        assert!(!abstain_early(&strong, &T));
        // Strong evidence carries a question whose nearest passage is not very similar.
        let low_similarity = Signals {
            relevance: 0.33,
            ..strong
        };
        assert!(
            !abstain_early(&low_similarity, &T),
            "{}",
            low_similarity.answerable()
        );
        let weak = sig(0.35, 1.0);
        assert!(abstain_early(&weak, &T), "{}", weak.answerable());
        let off_topic = Signals {
            relevance: 0.1,
            ..strong
        };
        assert!(abstain_early(&off_topic, &T));
    }

    #[test]
    fn evidence_leads_when_the_model_cannot() {
        let strong = sig(0.8, 2.4);
        assert_eq!(decide(&strong, true, &T), Outcome::Answered);
        assert_eq!(decide(&strong, false, &T), Outcome::Evidence);
        assert_eq!(decide(&sig(0.5, 1.0), false, &T), Outcome::Abstained);
    }

    fn checked(text: &str, supported: bool, unverified: &[&str]) -> cite::Checked {
        cite::Checked {
            text: text.to_string(),
            model_cited: vec![1],
            support: supported.then_some((0, 0.8)),
            abstains: false,
            unverified: unverified.iter().map(|u| u.to_string()).collect(),
        }
    }

    #[test]
    fn the_model_leads_only_when_all_it_states_is_backed() {
        use evidence::Asks;
        let backed = checked("Notice must be given thirty days ahead.", true, &[]);
        let invented = checked("The term was agreed in 1968.", false, &[]);
        let wrong_figure = checked("Acme pays within 45 days.", true, &["45"]);
        assert!(model_leads(
            std::slice::from_ref(&backed),
            Asks::Other,
            false
        ));
        assert!(model_leads(
            std::slice::from_ref(&backed),
            Asks::Duration,
            false
        ));
        // One backed line beside an invented one is not an answer to put first.
        assert!(!model_leads(
            &[backed.clone(), invented],
            Asks::Other,
            false
        ));
        assert!(!model_leads(&[wrong_figure], Asks::Duration, false));
        // Asked "how long", a backed sentence without any duration does not answer.
        let vague = checked("Notice must be given in writing.", true, &[]);
        assert!(!model_leads(
            std::slice::from_ref(&vague),
            Asks::Duration,
            false
        ));
        assert!(model_leads(&[vague], Asks::Other, false));
        let mut abstains = checked("The documents do not say.", false, &[]);
        abstains.abstains = true;
        assert!(!model_leads(&[abstains], Asks::Other, false));
        assert!(!model_leads(&[], Asks::Other, false));
        // Citing a passage that does not exist disqualifies an otherwise backed answer.
        let backed_again = checked("Notice must be given thirty days ahead.", true, &[]);
        assert!(!model_leads(&[backed_again], Asks::Other, true));
    }

    #[test]
    fn the_lead_quotes_the_best_spans_with_their_numbers() {
        let passage = Passage {
            path: "/d/gpl.txt".into(),
            page: None,
            heading: Vec::new(),
            chunk: "0".repeat(16),
            span: [0, 40],
            score: 1.0,
            text: String::new(),
        };
        let ev = |quote: &str, n| Evidence {
            quote: quote.to_string(),
            span: [0, quote.len()],
            passage: passage.clone(),
            n,
            before: String::new(),
            after: String::new(),
            score: 1.0,
            bytes: (0, quote.len()),
        };
        let mut spans = [
            ev("Valid for\n at least three years.", 2),
            ev("Second.", 1),
            ev("Third.", 3),
        ];
        spans[2].score = 0.5;
        assert_eq!(
            lead_quote(&spans, 2),
            "\"Valid for at least three years.\" [2] \"Second.\" [1]"
        );
        assert_eq!(
            lead_quote(&spans[..1], 2),
            "\"Valid for at least three years.\" [2]"
        );
        // A span far behind the best stays in the evidence list, out of the lead.
        assert_eq!(
            lead_quote(&spans, 3),
            "\"Valid for at least three years.\" [2] \"Second.\" [1]"
        );
    }
}
