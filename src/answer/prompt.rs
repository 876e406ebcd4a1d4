//! The prompt templates of `prompts/`: compiled in as defaults, overridden by a user's copies in
//! the `prompts` folder of the config directory, read at run time so that edits need no build.

use std::path::{Path, PathBuf};

use minijinja::{Environment, context};
use serde::Serialize;

use super::AnswerError;

const SYSTEM: &str = include_str!("../../prompts/system.txt");
const QUESTION: &str = include_str!("../../prompts/question.txt");

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

#[derive(Debug, Clone)]
pub struct Prompts {
    pub system: String,
    pub question: String,
    /// Where each came from (a file path, or "built in").
    pub origins: [String; 2],
}

impl Default for Prompts {
    fn default() -> Self {
        Prompts {
            system: SYSTEM.to_string(),
            question: QUESTION.to_string(),
            origins: ["built in".into(), "built in".into()],
        }
    }
}

impl Prompts {
    /// Defaults, with any of `system.txt` / `question.txt` found in `dir` taking their place.
    pub fn load(dir: Option<&Path>) -> Result<Prompts, AnswerError> {
        let mut p = Prompts::default();
        let Some(dir) = dir else { return Ok(p) };
        for (i, name) in ["system.txt", "question.txt"].iter().enumerate() {
            let path: PathBuf = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    if i == 0 {
                        p.system = text;
                    } else {
                        p.question = text;
                    }
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
        let mut env = Environment::new();
        // Block tags on their own line leave no blank line behind, as in Jinja's usual set-up.
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
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
