//! Grounded answers: retrieve passages, pack them into the prompt, generate, check citations.
//!
//! `ask` is the one flow the CLI and the TUI share. It abstains before generating when no
//! passage is relevant enough to the question, and after generating when the model says the
//! passages hold no answer or none of its sentences is supported by them. Citations are
//! attributed by folio (see `cite`), not taken from the model on trust.

pub mod cite;
pub mod pack;
pub mod prompt;
pub mod text;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::embed::Embedder;
use crate::index::Index;
use crate::index::search::{Filter, Mode, Passage, SearchError, SearchOptions};
use crate::llm::template::Message;
use crate::llm::{GenerateOptions, Llm, LlmError, StopReason};
use prompt::{PromptPassage, Prompts};

/// What folio says when the documents hold no answer.
pub const NO_ANSWER: &str = "The documents do not say.";
/// Passages listed as "closest" when abstaining.
const CLOSEST: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("{0}")]
    Search(#[from] SearchError),
    #[error("{0}")]
    Llm(#[from] LlmError),
    #[error("embedding: {0}")]
    Embed(#[from] crate::embed::EmbedError),
    #[error("prompt template {0}")]
    Prompt(String),
}

#[derive(Debug, Clone)]
pub struct AskOptions {
    pub search: SearchOptions,
    /// Passages given to the model.
    pub passages: usize,
    pub min_relevance: f32,
    pub min_support: f32,
    pub generate: GenerateOptions,
}

impl AskOptions {
    /// The settings' answering options; `filter` restricts retrieval.
    pub fn from_settings(s: &crate::config::Settings, filter: Filter) -> Self {
        let mut search = SearchOptions::from_settings(s, Mode::Hybrid);
        search.filter = filter;
        AskOptions {
            search,
            passages: s.answer_passages,
            min_relevance: s.min_relevance,
            min_support: s.min_support,
            generate: GenerateOptions {
                max_tokens: s.max_tokens,
                temperature: s.temperature as f64,
                top_p: s.top_p as f64,
                seed: s.seed,
                repeat_penalty: s.repeat_penalty,
                ..GenerateOptions::default()
            },
        }
    }
}

/// Progress reported while answering.
pub enum Event<'a> {
    /// The passages the model will read, numbered from 1 in this order.
    Passages(&'a [Passage]),
    /// A piece of generated text.
    Token(&'a str),
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
    pub prompt_tokens: usize,
    pub prompt_ms: f64,
    pub first_token_ms: f64,
    pub generated_tokens: usize,
    pub generate_ms: f64,
    pub prompt_tokens_per_s: f64,
    pub tokens_per_s: f64,
    pub check_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub question: String,
    /// The checked answer: supported sentences end in `[n]`, unsupported ones in `[?]`.
    pub answer: String,
    pub abstained: bool,
    pub citations: Vec<Citation>,
    /// The passages the model read (or, when abstaining, the closest ones).
    pub passages: Vec<Passage>,
    pub sentences: Vec<Sentence>,
    /// What the model wrote, unchanged.
    pub model_answer: String,
    /// Highest similarity of a passage to the question.
    pub relevance: f32,
    pub stop: Option<StopReason>,
    pub timings: Timings,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn abstain(question: &str, closest: Vec<Passage>, relevance: f32, timings: Timings) -> Answer {
    Answer {
        question: question.to_string(),
        answer: NO_ANSWER.to_string(),
        abstained: true,
        citations: Vec::new(),
        passages: closest,
        sentences: Vec::new(),
        model_answer: String::new(),
        relevance,
        stop: None,
        timings,
    }
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

/// Answers `question` from `index`. `on_event` sees the passages, then each piece of text.
#[allow(clippy::too_many_arguments)]
pub fn ask(
    index: &Index,
    embedder: &Embedder,
    llm: &mut Llm,
    prompts: &Prompts,
    question: &str,
    opts: &AskOptions,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<Answer, AnswerError> {
    let t0 = Instant::now();
    let mut timings = Timings::default();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;

    let mut search = opts.search.clone();
    search.k = search.k.max(opts.passages);
    let mut found = index.search(Some(embedder), question, &search)?;
    found.truncate(opts.passages.max(1));
    timings.retrieve_ms = ms(t0);
    if found.is_empty() {
        timings.total_ms = ms(t0);
        return Ok(abstain(question, Vec::new(), 0.0, timings));
    }

    // Relevance: the question's nearest passage in the embedder's space, from the stored
    // vectors (the quantity `answer.min_relevance` was calibrated on).
    let relevance = index.relevance(embedder, question, &opts.search.filter)?;
    let texts: Vec<&str> = found.iter().map(|p| p.text.as_str()).collect();
    if relevance < opts.min_relevance {
        found.truncate(CLOSEST);
        timings.total_ms = ms(t0);
        return Ok(abstain(question, found, relevance, timings));
    }

    // Pack into the context: what the template and answer need is set aside first.
    let count = |s: &str| llm.count_tokens(s);
    let (system_probe, user_probe) = prompts.render(question, &[])?;
    let fixed = count(&system_probe) + count(&user_probe) + 32;
    let budget = llm
        .context_length()
        .saturating_sub(opts.generate.max_tokens + fixed);
    let per_passage = (budget / opts.passages.max(1)).max(160);
    let overhead = 16; // the "[n] file, page p" line
    let packed = pack::pack(&texts, question, budget, per_passage, overhead, &count);
    let passages: Vec<Passage> = packed.iter().map(|(i, _)| found[*i].clone()).collect();
    if passages.is_empty() {
        return Err(AnswerError::Llm(LlmError::TooLong {
            tokens: fixed + opts.generate.max_tokens,
            context: llm.context_length(),
        }));
    }
    on_event(Event::Passages(&passages));
    let numbered: Vec<PromptPassage> = packed
        .iter()
        .enumerate()
        .map(|(k, (i, text))| prompt_passage(k + 1, &found[*i], text.clone()))
        .collect();
    let (system, user) = prompts.render(question, &numbered)?;
    let rendered = llm.render(&[Message::new("system", system), Message::new("user", user)])?;
    let ids = llm.encode_prompt(&rendered)?;

    let mut first: Option<f64> = None;
    let generation = llm.generate(&ids, &opts.generate, cancel, &mut |piece| {
        if first.is_none() {
            first = Some(ms(t0));
        }
        on_event(Event::Token(piece));
    })?;
    timings.prompt_tokens = generation.prompt_tokens;
    timings.prompt_ms = generation.prompt_seconds * 1000.0;
    timings.first_token_ms = first.unwrap_or_else(|| ms(t0));
    timings.generated_tokens = generation.generated_tokens;
    timings.generate_ms = generation.generate_seconds * 1000.0;
    timings.prompt_tokens_per_s = generation.prompt_tokens_per_second();
    timings.tokens_per_s = generation.tokens_per_second();

    let t_check = Instant::now();
    let model_answer = generation.text.trim().to_string();
    let mut answer = check_answer(
        question,
        &model_answer,
        &passages,
        embedder,
        opts.min_support,
        relevance,
    )?;
    answer.stop = Some(generation.stop);
    timings.check_ms = ms(t_check);
    timings.total_ms = ms(t0);
    answer.timings = timings;
    Ok(answer)
}

/// Attributes every sentence of `model_answer` to the passages and assembles the result.
pub fn check_answer(
    question: &str,
    model_answer: &str,
    passages: &[Passage],
    embedder: &Embedder,
    min_support: f32,
    relevance: f32,
) -> Result<Answer, AnswerError> {
    let raw: Vec<String> = text::sentences(model_answer)
        .into_iter()
        .map(|(s, e)| model_answer[s..e].to_string())
        .collect();
    let mut sources = Vec::new();
    for (p, passage) in passages.iter().enumerate() {
        for (start, end) in text::sentences(&passage.text) {
            sources.push(cite::Source {
                passage: p,
                start,
                end,
            });
        }
    }
    let source_texts: Vec<&str> = sources
        .iter()
        .map(|s| &passages[s.passage].text[s.start..s.end])
        .collect();
    let stripped: Vec<String> = raw.iter().map(|s| cite::strip_markers(s).0).collect();
    let mut all: Vec<&str> = stripped.iter().map(String::as_str).collect();
    all.extend(source_texts.iter().copied());
    let vecs = if all.is_empty() {
        Vec::new()
    } else {
        embedder.embed(&all)?
    };
    let (answer_vecs, source_vecs) = vecs.split_at(stripped.len().min(vecs.len()));
    let sims: Vec<Vec<f32>> = answer_vecs
        .iter()
        .map(|a| source_vecs.iter().map(|s| dot(a, s)).collect())
        .collect();
    let checked = cite::check(&raw, &sources, &source_texts, &sims, min_support);

    // Nothing the model said is backed by the passages (or it said they hold no answer).
    if !checked.iter().any(|c| c.support.is_some()) {
        let mut a = abstain(
            question,
            passages.iter().take(CLOSEST).cloned().collect(),
            relevance,
            Timings::default(),
        );
        a.model_answer = model_answer.to_string();
        a.sentences = checked
            .iter()
            .map(|c| Sentence {
                text: c.text.clone(),
                cites: None,
                supported: false,
                score: 0.0,
                unverified: Vec::new(),
            })
            .collect();
        return Ok(a);
    }

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
    Ok(Answer {
        question: question.to_string(),
        answer: parts.join(" "),
        abstained: false,
        citations,
        passages: passages.to_vec(),
        sentences,
        model_answer: model_answer.to_string(),
        relevance,
        stop: None,
        timings: Timings::default(),
    })
}
