//! The model's chat template (`tokenizer.chat_template`, a Jinja template) rendered with
//! minijinja, as Hugging Face's `apply_chat_template` renders it: trimmed blocks, Python string
//! methods, `raise_exception`, and the generation prompt added.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Error, ErrorKind, context};
use serde::Serialize;

use super::LlmError;

/// ChatML: the format of SmolLM2 and Qwen.
pub const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Gemma's turns (no system role: `render` folds it into the first user turn).
const GEMMA: &str = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

/// Llama 3's header format.
const LLAMA3: &str = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/// Phi-3's role tags.
const PHI3: &str = "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/// Mistral's `[INST]` format (no system role).
const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% elif message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

/// The template for a GGUF that carries none (base models often do not), chosen by the turn
/// markers its vocabulary has (`has(token)`); ChatML when it has none of them.
pub fn fallback(has: impl Fn(&str) -> bool) -> &'static str {
    [
        ("<start_of_turn>", GEMMA),
        ("<|start_header_id|>", LLAMA3),
        ("<|im_start|>", CHATML),
        ("<|assistant|>", PHI3),
        ("[INST]", MISTRAL),
    ]
    .into_iter()
    .find(|(marker, _)| has(marker))
    .map(|(_, t)| t)
    .unwrap_or(CHATML)
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Message {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self, LlmError> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|cause| LlmError::TemplateFailed {
                what: "setting its syntax",
                cause,
            })?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_fmt: String| -> String {
            // Offline and reproducible: templates that stamp a date get a fixed one.
            "01 Jan 2025".to_string()
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|cause| LlmError::TemplateFailed {
                what: "it does not parse",
                cause,
            })?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
    }

    /// Renders `messages` with the generation prompt. A template that rejects the system
    /// role (Gemma's do) gets the system text in front of the first user turn instead.
    pub fn render(&self, messages: &[Message]) -> Result<String, LlmError> {
        match self.render_raw(messages) {
            Ok(s) => Ok(s),
            Err(first) if messages.first().is_some_and(|m| m.role == "system") => {
                let merged = merge_system(messages);
                self.render_raw(&merged).map_err(|_| first)
            }
            Err(e) => Err(e),
        }
    }

    fn render_raw(&self, messages: &[Message]) -> Result<String, LlmError> {
        let t = self
            .env
            .get_template("chat")
            .map_err(|cause| LlmError::TemplateFailed {
                what: "loading it",
                cause,
            })?;
        t.render(context! {
            messages => to_value(messages),
            add_generation_prompt => true,
            bos_token => &self.bos,
            eos_token => &self.eos,
        })
        .map_err(|cause| LlmError::TemplateFailed {
            what: "rendering",
            cause,
        })
    }
}

fn to_value(messages: &[Message]) -> minijinja::Value {
    let list: Vec<minijinja::Value> = messages
        .iter()
        .map(|m| {
            minijinja::Value::from_pairs([
                ("role", minijinja::Value::from(m.role.clone())),
                ("content", minijinja::Value::from(m.content.clone())),
            ])
        })
        .collect();
    minijinja::Value::from(list)
}

fn merge_system(messages: &[Message]) -> Vec<Message> {
    let system = &messages[0].content;
    let mut rest: Vec<Message> = messages[1..].to_vec();
    match rest.iter_mut().find(|m| m.role == "user") {
        Some(u) => u.content = format!("{system}\n\n{}", u.content),
        None => rest.insert(0, Message::new("user", system.clone())),
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_with_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let s = t
            .render(&[
                Message::new("system", "Be brief."),
                Message::new("user", "Hi"),
            ])
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_gguf_without_a_template_gets_its_vocabularys_format() {
        let render = |marker: &str| {
            let t = ChatTemplate::new(fallback(|t| t == marker), "<s>", "</s>").unwrap();
            t.render(&[Message::new("system", "Rules."), Message::new("user", "Q?")])
                .unwrap()
        };
        assert_eq!(
            render("<start_of_turn>"),
            "<s><start_of_turn>user\nRules.\n\nQ?<end_of_turn>\n<start_of_turn>model\n"
        );
        assert_eq!(
            render("<|start_header_id|>"),
            "<s><|start_header_id|>system<|end_header_id|>\n\nRules.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        );
        assert_eq!(
            render("<|assistant|>"),
            "<|system|>\nRules.<|end|>\n<|user|>\nQ?<|end|>\n<|assistant|>\n"
        );
        assert_eq!(render("[INST]"), "<s>[INST] Rules.\n\nQ? [/INST]");
        assert!(render("<none>").starts_with("<|im_start|>system\nRules."));
    }

    #[test]
    fn system_role_rejected_is_merged_into_the_user_turn() {
        let src = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";
        let t = ChatTemplate::new(src, "<bos>", "<eos>").unwrap();
        let s = t
            .render(&[Message::new("system", "Rules."), Message::new("user", "Q?")])
            .unwrap();
        assert_eq!(
            s,
            "<bos><start_of_turn>user\nRules.\n\nQ?<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn python_string_methods_work() {
        let src = "{% for m in messages %}{{ m['content'].strip().upper() }}{% endfor %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert_eq!(t.render(&[Message::new("user", "  hi ")]).unwrap(), "HI");
    }

    #[test]
    fn template_failures_keep_the_engines_reason_as_their_cause() {
        let broken = ChatTemplate::new("{% for m in messages %}", "", "")
            .err()
            .expect("an unclosed block does not parse");
        let said = crate::error_chain(&broken);
        assert!(
            said.starts_with("chat template: it does not parse: "),
            "{said}"
        );
        assert!(said.contains("unexpected end of input"), "{said}");

        let raising = ChatTemplate::new("{{ raise_exception('no tools here') }}", "", "").unwrap();
        let e = raising.render(&[Message::new("user", "hi")]).unwrap_err();
        let said = crate::error_chain(&e);
        assert!(said.starts_with("chat template: rendering: "), "{said}");
        assert_eq!(said.matches("no tools here").count(), 1, "{said}");
    }
}
