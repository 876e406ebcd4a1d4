//! The prompt templates of `prompts/`: compiled in as defaults, overridden by a user's copies in
//! the `prompts` folder of the config directory, read at run time so that edits need no build.

use std::path::{Path, PathBuf};

use minijinja::{Environment, context};
use serde::Serialize;

use super::AnswerError;

const SYSTEM: &str = include_str!("../../prompts/system.txt");
const QUESTION: &str = include_str!("../../prompts/question.txt");
const REWRITE: &str = include_str!("../../prompts/rewrite.txt");

/// The template files, in the order of [`Prompts::origins`].
const FILES: [&str; 3] = ["system.txt", "question.txt", "rewrite.txt"];

/// A passage as the question template sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PromptPassage {
    pub n: usize,
    pub source: String,
    pub path: String,
    pub page: Option<u32>,
    pub heading: String,
    pub text: String,
}

/// An earlier question and the answer folio gave, as the rewrite template sees them.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Turn {
    pub question: String,
    pub answer: String,
}

#[derive(Debug, Clone)]
pub struct Prompts {
    pub system: String,
    pub question: String,
    /// Turns a follow-up question into one that stands alone, for retrieval.
    pub rewrite: String,
    /// Where each came from (a file path, or "built in"), in the order of `FILES`.
    pub origins: [String; 3],
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            system: SYSTEM.to_string(),
            question: QUESTION.to_string(),
            rewrite: REWRITE.to_string(),
            origins: ["built in".into(), "built in".into(), "built in".into()],
        }
    }
}

impl Prompts {
    /// Defaults, with any of `system.txt`, `question.txt`, `rewrite.txt` found in `dir`
    /// taking their place.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, AnswerError> {
        let mut p = Prompts::default();
        let Some(dir) = dir else { return Ok(p) };
        for (i, name) in FILES.iter().enumerate() {
            let path: PathBuf = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    *[&mut p.system, &mut p.question, &mut p.rewrite][i] = text;
                    p.origins[i] = path.display().to_string();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(AnswerError::Prompt(format!("{}: {e}", path.display())));
                }
            }
        }
        Ok(p)
    }

    /// The system and user messages for `question` over `passages`.
    pub fn render(
        &self,
        question: &str,
        passages: &[PromptPassage],
    ) -> Result<(String, String), AnswerError> {
        let env = environment();
        let err = |which: &str, e: minijinja::Error| AnswerError::Prompt(format!("{which}: {e}"));
        let system = env
            .render_str(&self.system, context! { question })
            .map_err(|e| err(&self.origins[0], e))?;
        let user = env
            .render_str(
                &self.question,
                context! { question, passages => passages_value(passages) },
            )
            .map_err(|e| err(&self.origins[1], e))?;
        Ok((system.trim().to_string(), user.trim().to_string()))
    }

    /// The one user message that asks the model to make `question` stand alone, given the
    /// conversation's earlier turns.
    pub fn render_rewrite(&self, history: &[Turn], question: &str) -> Result<String, AnswerError> {
        environment()
            .render_str(
                &self.rewrite,
                context! { question, history => turns_value(history) },
            )
            .map(|s| s.trim().to_string())
            .map_err(|e| AnswerError::Prompt(format!("{}: {e}", self.origins[2])))
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Block tags on their own line leave no blank line behind, as in Jinja's usual set-up.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env
}

/// The standalone question in what the model wrote for the rewrite prompt: its first line,
/// without a label or quotes; `None` when nothing usable is left (then the follow-up is
/// searched as asked).
pub fn clean_rewrite(generated: &str, question: &str) -> Option<String> {
    let line = generated.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut q = line;
    for label in ["rewritten question:", "standalone question:", "question:"] {
        if q.len() >= label.len()
            && q.is_char_boundary(label.len())
            && q[..label.len()].eq_ignore_ascii_case(label)
        {
            q = q[label.len()..].trim();
        }
    }
    let q = q
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '\u{201c}' | '\u{201d}' | '*'))
        .trim();
    // A rewrite much longer than the question is an answer, not a question.
    let limit = 3 * question.chars().count() + 200;
    (!q.is_empty() && q.chars().count() <= limit).then(|| q.to_string())
}

fn turns_value(turns: &[Turn]) -> minijinja::Value {
    use minijinja::Value;
    let list: Vec<Value> = turns
        .iter()
        .map(|t| {
            Value::from_pairs([
                ("question", Value::from(t.question.clone())),
                ("answer", Value::from(t.answer.clone())),
            ])
        })
        .collect();
    Value::from(list)
}

fn passages_value(passages: &[PromptPassage]) -> minijinja::Value {
    use minijinja::Value;
    let list: Vec<Value> = passages
        .iter()
        .map(|p| {
            Value::from_pairs([
                ("n", Value::from(p.n)),
                ("source", Value::from(p.source.clone())),
                ("path", Value::from(p.path.clone())),
                ("page", p.page.map(Value::from).unwrap_or(Value::from(()))),
                ("heading", Value::from(p.heading.clone())),
                ("text", Value::from(p.text.clone())),
            ])
        })
        .collect();
    Value::from(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(n: usize, page: Option<u32>) -> PromptPassage {
        PromptPassage {
            n,
            source: "msa.pdf".into(),
            path: "/d/msa.pdf".into(),
            page,
            heading: String::new(),
            text: format!("Text {n}."),
        }
    }

    #[test]
    fn follow_ups_are_rewritten_with_the_earlier_turns() {
        let history = [Turn {
            question: "Who maintains the boiler?".into(),
            answer: "Heatwise does [1].".into(),
        }];
        let user = Prompts::default()
            .render_rewrite(&history, "When do they come?")
            .unwrap();
        assert!(
            user.contains("Earlier question: Who maintains the boiler?"),
            "{user}"
        );
        assert!(
            user.contains("Earlier answer: Heatwise does [1]."),
            "{user}"
        );
        assert!(
            user.contains("Follow-up question: When do they come?"),
            "{user}"
        );
        let q = "When do they come?";
        assert_eq!(
            clean_rewrite(
                "\nRewritten question: \"When does Heatwise service the boiler?\"\nmore",
                q
            ),
            Some("When does Heatwise service the boiler?".into())
        );
        assert_eq!(clean_rewrite("  \n ", q), None);
        assert_eq!(clean_rewrite(&"word ".repeat(100), q), None);
        assert_eq!(clean_rewrite("Qüestion", q), Some("Qüestion".into()));
    }

    #[test]
    fn default_question_numbers_passages() {
        let (system, user) = Prompts::default()
            .render("How long?", &[passage(1, Some(2)), passage(2, None)])
            .unwrap();
        assert!(system.contains("[1]"));
        assert!(
            user.starts_with("[1] msa.pdf, page 2\nText 1.\n\n[2] msa.pdf\nText 2.\n\n"),
            "{user}"
        );
        assert!(user.ends_with("Question: How long?"), "{user}");
    }

    #[test]
    fn user_copies_override_defaults() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("system.txt"), "Answer in French.").unwrap();
        let p = Prompts::load(Some(t.path())).unwrap();
        assert_eq!(p.system, "Answer in French.");
        assert_eq!(p.question, QUESTION);
        assert!(p.origins[0].ends_with("system.txt"));
    }
}
