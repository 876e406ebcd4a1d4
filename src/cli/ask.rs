//! `folio ask`: evidence first, then the model's answer, checked against its citations.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;

use folio::answer::{self, AskOptions, Event, Outcome, Reason, prompt::Prompts};
use folio::config::{Dirs, Settings};
use folio::index::Index;
use folio::llm::StopReason;

use super::render::{one_line, source_line, terminal_safe};
use super::{
    CANCEL, FilterArgs, catch_interrupts, count, load_embedder, non_empty, note, prompts_dir,
};

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question; `-` reads it from stdin. Exits with 3 when the documents do not say.
    #[arg(value_parser = non_empty)]
    pub question: String,
    /// Passages to give the model (1 to 50).
    #[arg(short, value_parser = count::<50>)]
    pub k: Option<usize>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Sampling temperature (0: greedy, reproducible).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Nucleus sampling threshold.
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Penalty on repeating recent tokens (1 disables it).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Most tokens of the answer.
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// One JSON object on stdout: answer, abstained, citations, passages, timings.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn run(dirs: &Dirs, s: &Settings, mut a: AskArgs) -> Result<ExitCode> {
    if a.question == "-" {
        let mut q = String::new();
        std::io::stdin()
            .read_to_string(&mut q)
            .context("reading the question from stdin")?;
        a.question = non_empty(&q).map_err(|e| anyhow!("the question on stdin: {e}"))?;
    }
    let idx = Index::open_reader(&s.index_dir)?;
    let embedder = load_embedder(s)?;
    idx.check_model(embedder.info())?;
    let mut llm = folio::setup::llm(s, &mut |m| note(m))?;
    let prompts = Prompts::load(prompts_dir(dirs, s).as_deref())?;
    let mut opts = AskOptions::from_settings(s, a.filter.filter());
    opts.indexing = folio::index::progress::read(&s.index_dir);
    catch_interrupts(false)?;
    let color = super::render::color();
    let (bold, dim, reset) = if color {
        ("\x1b[1m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    let mut out = std::io::stdout().lock();
    let json = a.json;
    if !json && llm.info().base_model {
        note(&format!(
            "{} has no chat template: it is probably a base model, not an instruction-tuned one, and may not answer questions",
            llm.info().name
        ));
    }
    if let (false, Some(i)) = (json, opts.indexing) {
        writeln!(out, "{dim}({}){reset}\n", i.note())?;
    }
    let mut streamed = false;
    let mut engine = answer::Engine {
        index: &idx,
        embedder: &embedder,
        llm: &mut llm,
        prompts: &prompts,
    };
    let answer = answer::ask(
        &mut engine,
        &a.question,
        &opts,
        CANCEL.as_ref(),
        &mut |event| {
            if json {
                return;
            }
            match event {
                Event::Evidence(ev) if !ev.is_empty() => {
                    let _ = writeln!(out, "{bold}Evidence, quoted from the documents:{reset}");
                    for e in ev {
                        let _ = writeln!(out, "  [{}] {}", e.n, source_line(&e.passage));
                        let _ = writeln!(out, "      \"{}\"", one_line(&e.quote));
                    }
                    let _ = writeln!(out);
                    let _ = out.flush();
                }
                Event::Token(t) => {
                    if !streamed {
                        let _ = write!(out, "{bold}The model:{reset} ");
                    }
                    streamed = true;
                    let _ = write!(out, "{}", terminal_safe(t));
                    let _ = out.flush();
                }
                _ => {}
            }
        },
    )?;
    let status = if answer.stop == Some(StopReason::Cancelled) {
        ExitCode::from(super::exit::INTERRUPTED)
    } else if answer.outcome == Outcome::Abstained {
        ExitCode::from(super::exit::NOTHING_FOUND)
    } else {
        ExitCode::SUCCESS
    };
    if json {
        writeln!(
            out,
            "{}",
            folio::shown::json(serde_json::to_string(&answer)?)
        )?;
        return Ok(status);
    }
    if streamed {
        writeln!(out)?;
        if answer.stop == Some(StopReason::Cancelled) {
            writeln!(out, "{dim}(stopped){reset}")?;
        }
        writeln!(out)?;
    }
    match answer.outcome {
        Outcome::Abstained => {
            writeln!(out, "{bold}{}{reset}", answer.answer)?;
            match &answer.reason {
                Reason::WeakRetrieval => writeln!(
                    out,
                    "{dim}(no passage is close enough to the question to answer it){reset}"
                )?,
                Reason::ModelFailed(why) => writeln!(
                    out,
                    "{dim}(the model failed: {}){reset}",
                    terminal_safe(why)
                )?,
                _ if !answer.model_answer.is_empty() => writeln!(
                    out,
                    "{dim}(nothing the model wrote is supported by the passages, and the evidence is weak){reset}"
                )?,
                _ => {}
            }
            if !answer.passages.is_empty() {
                writeln!(out, "\nclosest passages:")?;
                for (i, p) in answer.passages.iter().enumerate() {
                    writeln!(out, "  {}. {}", i + 1, source_line(p))?;
                }
            }
            return Ok(status);
        }
        Outcome::Evidence => {
            writeln!(
                out,
                "{bold}Answer, quoted from the documents:{reset} {}",
                terminal_safe(&answer.answer)
            )?;
            let why = match &answer.reason {
                Reason::ModelAbstained => {
                    "the model said the documents do not say; the evidence above does".to_string()
                }
                Reason::ModelFailed(e) => format!("the model failed: {}", terminal_safe(e)),
                Reason::Cancelled => "generation was stopped".to_string(),
                _ => {
                    "the model's answer is not supported by the passages; shown for reference only"
                        .to_string()
                }
            };
            writeln!(out, "{dim}({why}){reset}")?;
            if !answer.model_checked.is_empty() {
                writeln!(
                    out,
                    "{dim}the model, unsupported: {}{reset}",
                    terminal_safe(&answer.model_checked)
                )?;
            }
        }
        Outcome::Answered => {
            writeln!(
                out,
                "{bold}Answer (checked):{reset} {}",
                terminal_safe(&answer.answer)
            )?;
        }
    }
    writeln!(out, "\n{bold}sources:{reset}")?;
    for c in &answer.citations {
        match (&c.passage, c.valid, c.supported) {
            (Some(p), _, true) => {
                writeln!(out, "  [{}] {}", c.n, source_line(p))?;
                writeln!(out, "      \"{}\"", one_line(&c.quote))?;
            }
            (Some(p), _, false) => writeln!(
                out,
                "  [{}] {} {dim}(cited by the model, supports none of its sentences){reset}",
                c.n,
                source_line(p)
            )?,
            (None, _, _) => writeln!(
                out,
                "  [{}] {dim}(the model cited a passage that does not exist){reset}",
                c.n
            )?,
        }
    }
    if answer.outcome == Outcome::Answered {
        if answer
            .sentences
            .iter()
            .any(|s| !s.supported && s.cites.is_none() && !s.text.is_empty())
        {
            writeln!(out, "  [?] {dim}no passage supports this sentence{reset}")?;
        }
        if answer.sentences.iter().any(|s| !s.unverified.is_empty()) {
            writeln!(
                out,
                "  [unverified: …] {dim}figures the cited sentence does not state{reset}"
            )?;
        }
    }
    let t = &answer.timings;
    writeln!(
        out,
        "{dim}\nevidence after {:.0} ms; {} prompt tokens at {:.0}/s, {} generated at {:.1}/s, first token after {:.0} ms{reset}",
        t.retrieve_ms + t.evidence_ms,
        t.prompt_tokens,
        t.prompt_tokens_per_s,
        t.generated_tokens,
        t.tokens_per_s,
        t.first_token_ms
    )?;
    Ok(status)
}
