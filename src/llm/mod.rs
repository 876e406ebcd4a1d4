//! The language model: a GGUF file run on the CPU with candle.
//!
//! Everything comes from the `.gguf` itself: the architecture (`general.architecture`, one of
//! llama, qwen2, qwen3, gemma3, phi3: folio's own forward passes in `decoder` and `gemma3`,
//! on folio's quantized kernels (`quant`) and attention (`attention`); candle-transformers'
//! models remain as [`Backend::Candle`], for comparison and for llama's mixture-of-experts
//! variants), the tokenizer (`tokenizer`), the chat template (`template`) and the context
//! length. For candle-transformers' models, weights in formats candle has no SIMD kernel for
//! (Q4_1, Q5_0, Q5_1) are requantized to Q8_0 at load; folio's kernels take them as stored.
//! Generation streams token by token to a callback, which can stop it.

mod attention;
mod decoder;
mod gemma3;
mod header;

pub mod template;
pub mod tokenizer;

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{
    quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
};
use serde::Serialize;

use template::{ChatTemplate, Message};
use tokenizer::{Detokenizer, Vocab};

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(
        "{path}: architecture {arch:?} is not supported (supported: llama, qwen2, qwen3, gemma3, phi3)"
    )]
    Architecture { path: PathBuf, arch: String },
    /// The file's vocabulary or tokenizer settings are not usable (folio's own reason).
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tokenizers library failed while `what`.
    #[error("tokenizer: {what}")]
    TokenizerFailed {
        what: &'static str,
        #[source]
        cause: crate::Cause,
    },
    /// The chat template misbehaved (folio's own reason).
    #[error("chat template: {0}")]
    Template(String),
    /// The template engine failed while `what`.
    #[error("chat template: {what}")]
    TemplateFailed {
        what: &'static str,
        #[source]
        cause: minijinja::Error,
    },
    /// The model cannot run this request (folio's own reason).
    #[error("model: {0}")]
    Model(String),
    /// The tensor library failed: a missing or misshapen tensor, an unsupported operation.
    #[error("model")]
    Compute(#[from] candle_core::Error),
    #[error("the prompt has {tokens} tokens; the model's context holds {context}")]
    TooLong { tokens: usize, context: usize },
}

pub const ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gemma3", "phi3"];

/// Whose forward pass runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// folio's own (`decoder`, `gemma3`): an in-place key/value cache and copy-free
    /// grouped-query attention.
    Folio,
    /// candle-transformers' quantized models (gemma3 stays folio's: theirs is wrong).
    Candle,
}

impl Backend {
    /// `FOLIO_LLM_BACKEND=candle` selects candle-transformers' models; anything else folio's.
    pub fn from_env() -> Backend {
        match std::env::var("FOLIO_LLM_BACKEND").as_deref() {
            Ok("candle") => Backend::Candle,
            _ => Backend::Folio,
        }
    }
}

enum Weights {
    Decoder(decoder::Decoder),
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Gemma3(gemma3::Gemma3),
    Phi3(quantized_phi3::ModelWeights),
}

impl Weights {
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Decoder(m) => m.forward(x, pos),
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
            Weights::Qwen3(m) => m.forward(x, pos),
            Weights::Gemma3(m) => m.forward(x, pos),
            Weights::Phi3(m) => m.forward(x, pos),
        }
    }

    /// Keeps the cached positions before `pos` for the next forward pass at `pos`; false when
    /// the model cannot (candle-transformers' models), and the sequence must start at 0.
    fn rewind(&mut self, pos: usize) -> bool {
        match self {
            Weights::Decoder(m) => m.rewind(pos),
            Weights::Gemma3(m) => m.rewind(pos),
            _ => false,
        }
    }
}

/// What `folio` reports about a loaded model.
#[derive(Debug, Clone, Serialize)]
pub struct LlmInfo {
    pub path: String,
    pub name: String,
    pub architecture: String,
    pub context_length: usize,
    /// Tensor formats in the file, and what they were converted to at load.
    pub quantization: String,
    /// The GGUF carries no chat template: probably a base model, not an instruction-tuned
    /// one (folio then uses the turn format its vocabulary suggests).
    pub base_model: bool,
}

/// Sampling and stopping.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub max_tokens: usize,
    /// 0 is greedy (reproducible).
    pub temperature: f64,
    pub top_p: f64,
    pub seed: u64,
    pub repeat_penalty: f32,
    /// How many recent tokens the repeat penalty looks at.
    pub repeat_last_n: usize,
    /// Keep generating past end-of-turn tokens, up to `max_tokens` (for benchmarks that need
    /// a fixed number of tokens, as llama-bench's tg128 does).
    pub ignore_end_of_turn: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 512,
            temperature: 0.0,
            top_p: 0.9,
            seed: 42,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            ignore_end_of_turn: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndOfTurn,
    MaxTokens,
    ContextFull,
    Cancelled,
}

/// What a generation did, and how fast.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub text: String,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Leading prompt tokens whose keys and values were still cached from the previous
    /// generation (the same system message and template preamble): not computed again.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub prompt_seconds: f64,
    pub generate_seconds: f64,
}

impl Generation {
    pub fn prompt_tokens_per_second(&self) -> f64 {
        (self.prompt_tokens - self.reused_tokens) as f64 / self.prompt_seconds.max(1e-9)
    }

    pub fn tokens_per_second(&self) -> f64 {
        // The first token comes from the prompt pass; the rest each cost one step.
        self.generated_tokens.saturating_sub(1) as f64 / self.generate_seconds.max(1e-9)
    }
}

pub struct Llm {
    weights: Weights,
    vocab: Vocab,
    /// The vocabulary's tokenizer with special-token matching off: for text from documents.
    plain: tokenizers::Tokenizer,
    /// The text of every special (control) token.
    specials: Vec<String>,
    template: ChatTemplate,
    stop_ids: Vec<u32>,
    info: LlmInfo,
    device: Device,
    /// The tokens whose keys and values the model's cache holds, in order.
    fed: Vec<u32>,
}

/// End-of-turn markers of the common chat formats; those in the vocabulary stop generation.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<end_of_turn>",
    "<|end|>",
    "<|endoftext|>",
    "</s>",
];

/// Types candle multiplies without SIMD kernels; converted to Q8_0 at load.
fn needs_requant(d: GgmlDType) -> bool {
    matches!(d, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> LlmError {
    LlmError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Opens a GGUF file and reads its header, metadata and tensor table, after checking that
/// every number in them fits the file and that every tensor lies inside it.
fn read_content(path: &Path) -> Result<(Content, BufReader<File>), LlmError> {
    let file = File::open(path).map_err(|e| file_err(path, e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|_| file_err(path, "not a GGUF file (too short)"))?;
    if &magic != b"GGUF" {
        return Err(file_err(path, "not a GGUF file (no GGUF header)"));
    }
    reader.rewind().map_err(|e| file_err(path, e))?;
    // candle allocates whatever the header claims (and aborts on absurd sizes): check the
    // header's numbers against the file first.
    header::check(&mut reader, size)
        .map_err(|e| file_err(path, format!("damaged GGUF header: {e}")))?;
    let ct = Content::read(&mut reader)
        .map_err(|e| file_err(path, format!("not a valid GGUF file: {e}")))?;
    // Every tensor must lie inside the file: a truncated download fails here, by name.
    for (name, t) in &ct.tensor_infos {
        let end = tensor_end(
            t.shape.dims(),
            t.ggml_dtype.block_size() as u64,
            t.ggml_dtype.type_size() as u64,
            t.offset,
            ct.tensor_data_offset,
        );
        match end {
            None => {
                return Err(file_err(
                    path,
                    format!(
                        "damaged: tensor {name}'s shape {:?} does not add up",
                        t.shape
                    ),
                ));
            }
            Some(end) if end > size => {
                return Err(file_err(
                    path,
                    format!("truncated: tensor {name} ends at byte {end}, the file has {size}"),
                ));
            }
            Some(_) => {}
        }
    }
    Ok((ct, reader))
}

/// The byte where a tensor of shape `dims`, stored in blocks of `block` elements taking
/// `type_size` bytes each, ends in the file, or `None` when the numbers do not add up. Checked:
/// the header's numbers are the file's word, and arithmetic wraps silently in optimised
/// builds. An empty tensor is damage too: candle reads its zero bytes through a misaligned
/// pointer, which debug builds abort on (a non-unwinding panic).
fn tensor_end(
    dims: &[usize],
    block: u64,
    type_size: u64,
    offset: u64,
    data_offset: u64,
) -> Option<u64> {
    let elems = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(u64::try_from(d).ok()?))?;
    if elems == 0 || block == 0 || elems % block != 0 {
        return None;
    }
    (elems / block)
        .checked_mul(type_size)?
        .checked_add(offset)?
        .checked_add(data_offset)
}

/// What a GGUF file's header says, read without loading its weights: for `folio models list`.
#[derive(Debug, Clone, Serialize)]
pub struct GgufSummary {
    pub name: String,
    pub architecture: String,
    /// Weights, counted from the tensor shapes.
    pub parameters: u64,
    /// The block type that holds most of the weights' bytes (`Q4_K`, `Q8_0`, `F16`, ...).
    pub quantization: String,
    pub context_length: Option<u32>,
    /// Why folio cannot answer with it, when it cannot.
    pub unsupported: Option<String>,
}

/// Reads a GGUF file's header as [`Llm::load`] does, stopping before the weights. A damaged
/// file is an error; one folio reads but cannot run says why in `unsupported`.
pub fn inspect(path: &Path) -> Result<GgufSummary, LlmError> {
    let path_buf = path.to_path_buf();
    let (ct, _) = match std::panic::catch_unwind(|| read_content(&path_buf)) {
        Ok(r) => r?,
        Err(p) => {
            return Err(file_err(
                path,
                format!("damaged GGUF ({})", crate::panic_message(&*p)),
            ));
        }
    };
    let meta_str = |k: &str| ct.metadata.get(k).and_then(|v| v.to_string().ok()).cloned();
    let architecture = meta_str("general.architecture").unwrap_or_default();
    let mut bytes_by_type: Vec<(String, u64)> = Vec::new();
    let mut parameters = 0u64;
    for t in ct.tensor_infos.values() {
        let elems: u64 = t.shape.dims().iter().map(|&d| d as u64).product();
        parameters = parameters.saturating_add(elems);
        let ty = format!("{:?}", t.ggml_dtype);
        let bytes = elems / t.ggml_dtype.block_size() as u64 * t.ggml_dtype.type_size() as u64;
        match bytes_by_type.iter_mut().find(|(k, _)| *k == ty) {
            Some((_, b)) => *b += bytes,
            None => bytes_by_type.push((ty, bytes)),
        }
    }
    bytes_by_type.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let unsupported = if !ARCHITECTURES.contains(&architecture.as_str()) {
        Some(format!(
            "architecture {:?}; folio runs {}",
            architecture,
            ARCHITECTURES.join(", ")
        ))
    } else {
        shape_numbers_fit(&ct, &architecture)
            .err()
            .map(|e| format!("damaged: {e}"))
    };
    Ok(GgufSummary {
        name: meta_str("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        context_length: ct
            .metadata
            .get(&format!("{architecture}.context_length"))
            .and_then(|v| v.to_u32().ok()),
        architecture,
        parameters,
        quantization: bytes_by_type
            .first()
            .map(|(k, _)| k.clone())
            .unwrap_or_default(),
        unsupported,
    })
}

impl Llm {
    /// Loads a GGUF model. Errors name the file and the problem; a panic inside candle while
    /// reading a damaged file becomes an error too.
    pub fn load(path: &Path) -> Result<Llm, LlmError> {
        Self::load_with(path, true)
    }

    /// Loads a GGUF model; with `requantize`, Q4_1/Q5_0/Q5_1 tensors run as Q8_0 on
    /// candle-transformers' models (much faster on candle's kernels, equal within Q8_0's
    /// rounding); folio's own forward passes always run them as stored.
    pub fn load_with(path: &Path, requantize: bool) -> Result<Llm, LlmError> {
        Self::load_backend(path, requantize, Backend::from_env())
    }

    /// [`Llm::load_with`], run by `backend`.
    pub fn load_backend(path: &Path, requantize: bool, backend: Backend) -> Result<Llm, LlmError> {
        let path_buf = path.to_path_buf();
        match std::panic::catch_unwind(|| Self::load_inner(&path_buf, requantize, backend)) {
            Ok(r) => r,
            Err(p) => Err(file_err(
                path,
                format!(
                    "damaged or unsupported GGUF ({})",
                    crate::panic_message(&*p)
                ),
            )),
        }
    }

    fn load_inner(path: &Path, requantize: bool, backend: Backend) -> Result<Llm, LlmError> {
        let (ct, mut reader) = read_content(path)?;
        let meta_str = |k: &str| ct.metadata.get(k).and_then(|v| v.to_string().ok()).cloned();
        let arch = meta_str("general.architecture").unwrap_or_default();
        if !ARCHITECTURES.contains(&arch.as_str()) {
            return Err(LlmError::Architecture {
                path: path.to_path_buf(),
                arch,
            });
        }
        shape_numbers_fit(&ct, &arch).map_err(|e| file_err(path, format!("damaged: {e}")))?;
        let context_length = ct
            .metadata
            .get(&format!("{arch}.context_length"))
            .and_then(|v| v.to_u32().ok())
            .map(|v| v as usize)
            .unwrap_or(2048);
        let own = backend == Backend::Folio && decoder::Decoder::handles(&arch, &ct);
        // candle's llama precomputes rotary tables for 4096 positions.
        let context_length = if arch == "llama" && !own {
            context_length.min(quantized_llama::MAX_SEQ_LEN)
        } else {
            context_length
        };
        let vocab = tokenizer::from_gguf(&ct)?;
        let mut plain = vocab.tokenizer.clone();
        plain.set_encode_special_tokens(true);
        let specials: Vec<String> = vocab
            .tokenizer
            .get_added_tokens_decoder()
            .values()
            .filter(|t| t.special && !t.content.is_empty())
            .map(|t| t.content.clone())
            .collect();
        let tok = |id: Option<u32>| {
            id.and_then(|i| vocab.tokens.get(i as usize))
                .cloned()
                .unwrap_or_default()
        };
        let bos_text = tok(vocab.bos);
        let eos_text = tok(vocab.eos);
        let template_src = meta_str("tokenizer.chat_template");
        let base_model = template_src.is_none();
        if base_model {
            tracing::warn!(path = %path.display(), "the GGUF has no chat template: probably a base model");
        }
        let template = ChatTemplate::new(
            template_src
                .as_deref()
                .unwrap_or_else(|| template::fallback(|t| vocab.id(t).is_some())),
            &bos_text,
            &eos_text,
        )?;
        let mut stop_ids: Vec<u32> = END_OF_TURN.iter().filter_map(|t| vocab.id(t)).collect();
        for key in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let Some(id) = ct.metadata.get(key).and_then(|v| v.to_u32().ok()) {
                stop_ids.push(id);
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();

        let mut kinds: Vec<String> = ct
            .tensor_infos
            .values()
            .map(|t| format!("{:?}", t.ggml_dtype))
            .collect();
        kinds.sort();
        kinds.dedup();
        // folio's own forward passes multiply every GGUF block type natively; candle-transformers'
        // models (the comparison backend) get the Q8_0 conversion.
        let native = own || arch == "gemma3";
        let requant = requantize
            && !native
            && ct
                .tensor_infos
                .values()
                .any(|t| needs_requant(t.ggml_dtype));
        let quantization = if requant {
            format!("{} (Q4_1/Q5 tensors run as Q8_0)", kinds.join("+"))
        } else {
            kinds.join("+")
        };
        let name = meta_str("general.name").unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let device = Device::Cpu;
        let weights = if requant {
            let bytes = requantized(&ct, &mut reader, &device)?;
            let mut cursor = Cursor::new(bytes);
            let ct2 = Content::read(&mut cursor)?;
            build(&arch, own, ct2, &mut cursor, &device)?
        } else {
            build(&arch, own, ct, &mut reader, &device)?
        };
        Ok(Llm {
            weights,
            plain,
            specials,
            vocab,
            template,
            stop_ids,
            info: LlmInfo {
                path: path.display().to_string(),
                name,
                architecture: arch,
                context_length,
                quantization,
                base_model,
            },
            device,
            fed: Vec::new(),
        })
    }

    pub fn info(&self) -> &LlmInfo {
        &self.info
    }

    pub fn context_length(&self) -> usize {
        self.info.context_length
    }

    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.vocab.tokenizer
    }

    /// Token count of `text` as plain text (no special tokens parsed specially).
    pub fn count_tokens(&self, text: &str) -> usize {
        self.vocab
            .tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or(text.len() / 3)
    }

    /// The chat prompt for `messages`, rendered by the model's own template.
    pub fn render(&self, messages: &[Message]) -> Result<String, LlmError> {
        self.template.render(messages)
    }

    /// Token ids of a rendered prompt: special tokens in it become their ids, and BOS is
    /// prepended when the model wants it and the template did not write it.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>, LlmError> {
        let ids = self.encode_text(prompt, &self.vocab.tokenizer)?;
        self.with_bos(ids)
    }

    /// Token ids of the chat prompt for `messages`, rendered by the model's template. Only the
    /// template's own markers become special tokens: a message's text (documents, the
    /// question) is encoded as plain text, so a passage holding `<|im_start|>system` or
    /// `<end_of_turn>` cannot open or close a turn. Messages without such text are encoded
    /// with the prompt around them, exactly as [`Llm::encode_prompt`] does.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>, LlmError> {
        let hostile: Vec<bool> = messages
            .iter()
            .map(|m| self.specials.iter().any(|s| m.content.contains(s.as_str())))
            .collect();
        if !hostile.contains(&true) {
            return self.encode_prompt(&self.render(messages)?);
        }
        // Rendered with stand-ins from the private use area, the template shows where each
        // message's text goes.
        let stand_in = |i: usize| format!("\u{E000}{i}\u{E001}");
        let masked: Vec<Message> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| Message::new(&m.role, stand_in(i)))
            .collect();
        let rendered = self.render(&masked)?;
        let mut ids = Vec::new();
        let mut pending = String::new();
        let mut rest = rendered.as_str();
        while let Some(at) = rest.find('\u{E000}') {
            pending.push_str(&rest[..at]);
            let tail = &rest[at + '\u{E000}'.len_utf8()..];
            let end = tail
                .find('\u{E001}')
                .ok_or_else(|| LlmError::Template("the template cut a message apart".into()))?;
            let m = tail[..end]
                .parse::<usize>()
                .ok()
                .and_then(|i| Some((i, messages.get(i)?)))
                .ok_or_else(|| LlmError::Template("the template altered a message".into()))?;
            if hostile[m.0] {
                ids.extend(self.encode_text(&pending, &self.vocab.tokenizer)?);
                pending.clear();
                ids.extend(self.encode_text(&m.1.content, &self.plain)?);
            } else {
                pending.push_str(&m.1.content);
            }
            rest = &tail[end + '\u{E001}'.len_utf8()..];
        }
        pending.push_str(rest);
        ids.extend(self.encode_text(&pending, &self.vocab.tokenizer)?);
        self.with_bos(ids)
    }

    fn encode_text(
        &self,
        text: &str,
        tokenizer: &tokenizers::Tokenizer,
    ) -> Result<Vec<u32>, LlmError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let enc = tokenizer
            .encode(text, false)
            .map_err(|cause| LlmError::TokenizerFailed {
                what: "encoding",
                cause,
            })?;
        Ok(enc.get_ids().to_vec())
    }

    fn with_bos(&self, mut ids: Vec<u32>) -> Result<Vec<u32>, LlmError> {
        if self.vocab.add_bos
            && let Some(bos) = self.vocab.bos
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    /// Generates from `prompt_ids`, calling `on_text` with each new piece of text. Stops at an
    /// end-of-turn token, at `max_tokens`, when the context is full, or when `cancel` is set.
    pub fn generate(
        &mut self,
        prompt_ids: &[u32],
        opts: &GenerateOptions,
        cancel: &AtomicBool,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation, LlmError> {
        let context = self.info.context_length;
        if prompt_ids.is_empty() {
            return Err(LlmError::Model("empty prompt".into()));
        }
        if prompt_ids.len() >= context {
            return Err(LlmError::TooLong {
                tokens: prompt_ids.len(),
                context,
            });
        }
        let sampling = if opts.temperature <= 0.0 {
            Sampling::ArgMax
        } else if opts.top_p > 0.0 && opts.top_p < 1.0 {
            Sampling::TopP {
                p: opts.top_p,
                temperature: opts.temperature,
            }
        } else {
            Sampling::All {
                temperature: opts.temperature,
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(opts.seed, sampling);
        let tokenizer = self.vocab.tokenizer.clone();
        let mut detok = Detokenizer::new(&tokenizer);
        let mut all: Vec<u32> = prompt_ids.to_vec();
        let device = self.device.clone();

        let t0 = Instant::now();
        // A prompt that starts like the last one (same system message and preamble) continues
        // from the cached keys and values; at least its last token is fed, for the logits.
        let common = self
            .fed
            .iter()
            .zip(prompt_ids)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt_ids.len() - 1);
        let mut fed = std::mem::take(&mut self.fed);
        let start = if common > 0 && self.weights.rewind(common) {
            common
        } else {
            0
        };
        fed.truncate(start);
        let input = Tensor::new(&prompt_ids[start..], &device)?.unsqueeze(0)?;
        // The other models reset their KV cache when fed position 0; qwen3's does not.
        if let Weights::Qwen3(m) = &mut self.weights {
            m.clear_kv_cache();
        }
        // Inside candle's own thread pool: its workers stay warm across the many short parallel
        // sections of a forward pass.
        let weights = &mut self.weights;
        let logits = device.with_context(|| weights.forward(&input, start))?;
        fed.extend_from_slice(&prompt_ids[start..]);
        let mut next = self.sample(&logits, &all, opts, &mut sampler)?;
        let prompt_seconds = t0.elapsed().as_secs_f64();

        let t1 = Instant::now();
        let mut generated = 0;
        let stop = loop {
            if self.is_stop(next) && !opts.ignore_end_of_turn {
                break StopReason::EndOfTurn;
            }
            generated += 1;
            all.push(next);
            if let Some(piece) = detok.push(next)? {
                on_text(&piece);
            }
            if cancel.load(Ordering::Relaxed) {
                break StopReason::Cancelled;
            }
            if generated >= opts.max_tokens {
                break StopReason::MaxTokens;
            }
            if all.len() >= context {
                break StopReason::ContextFull;
            }
            let input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
            let pos = all.len() - 1;
            let weights = &mut self.weights;
            let logits = device.with_context(|| weights.forward(&input, pos))?;
            fed.push(next);
            next = self.sample(&logits, &all, opts, &mut sampler)?;
        };
        // Only now, after every forward pass succeeded, does `fed` describe the cache.
        self.fed = fed;
        Ok(Generation {
            text: detok.text()?,
            stop,
            prompt_tokens: prompt_ids.len(),
            reused_tokens: start,
            generated_tokens: generated,
            prompt_seconds,
            generate_seconds: t1.elapsed().as_secs_f64(),
        })
    }

    /// Forgets which tokens the cache holds, so that the next generation computes its whole
    /// prompt (for measuring prompt speed).
    pub fn forget_prompt(&mut self) {
        self.fed.clear();
    }

    /// Raw logits (f32, one per vocabulary entry) of the last of `ids`, fed at positions from
    /// `pos` (0 starts a new sequence): for comparing forward passes.
    pub fn logits(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, LlmError> {
        // Whatever this feeds, the next generation cannot assume what the cache holds.
        self.fed.clear();
        if let Weights::Qwen3(m) = &mut self.weights
            && pos == 0
        {
            m.clear_kv_cache();
        }
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let weights = &mut self.weights;
        let logits = self.device.with_context(|| weights.forward(&input, pos))?;
        let mut logits = logits.squeeze(0)?;
        if logits.rank() == 2 {
            let n = logits.dim(0)?;
            logits = logits.get(n - 1)?;
        }
        Ok(logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
    }

    fn sample(
        &self,
        logits: &Tensor,
        context: &[u32],
        opts: &GenerateOptions,
        sampler: &mut LogitsProcessor,
    ) -> Result<u32, LlmError> {
        let mut logits = logits.squeeze(0)?;
        // Some models return every position: keep the last.
        if logits.rank() == 2 {
            let n = logits.dim(0)?;
            logits = logits.get(n - 1)?;
        }
        let logits = logits.to_dtype(candle_core::DType::F32)?;
        let logits = if opts.repeat_penalty != 1.0 {
            let start = context.len().saturating_sub(opts.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                &logits,
                opts.repeat_penalty,
                &context[start..],
            )?
        } else {
            logits
        };
        Ok(sampler.sample(&logits)?)
    }
}

/// Checks the header's shape numbers against the tensors the file holds. Every backend sizes
/// vectors and tables by them before it reads a tensor, so a damaged count (a layer count of
/// 2^31) would abort in the allocator instead of failing on a missing tensor.
fn shape_numbers_fit(ct: &Content, arch: &str) -> Result<(), String> {
    let number = |k: &str| {
        ct.metadata
            .get(&format!("{arch}.{k}"))
            .and_then(|v| v.to_u64().ok())
    };
    let tensors = ct.tensor_infos.len() as u64;
    let widest = ct
        .tensor_infos
        .values()
        .flat_map(|t| t.shape.dims().iter().copied())
        .max()
        .unwrap_or(0) as u64;
    // Each layer and each expert has tensors of its own.
    for k in ["block_count", "expert_count", "expert_used_count"] {
        if let Some(n) = number(k).filter(|&n| n > tensors) {
            return Err(format!("{arch}.{k} is {n}, the file has {tensors} tensors"));
        }
    }
    // Without a width the backends refuse the file by the missing key, more clearly.
    let Some(hidden) = number("embedding_length") else {
        return Ok(());
    };
    if hidden > widest {
        return Err(format!(
            "{arch}.embedding_length is {hidden}, no tensor is wider than {widest}"
        ));
    }
    if let Some(n) = number("feed_forward_length").filter(|&n| n > widest) {
        return Err(format!(
            "{arch}.feed_forward_length is {n}, no tensor is wider than {widest}"
        ));
    }
    // A head, a key or a rotary span is never wider than the model.
    for k in [
        "attention.head_count",
        "attention.head_count_kv",
        "attention.key_length",
        "attention.value_length",
        "rope.dimension_count",
    ] {
        if let Some(n) = number(k).filter(|&n| n > hidden) {
            return Err(format!(
                "{arch}.{k} is {n}, wider than the model ({hidden})"
            ));
        }
    }
    Ok(())
}

fn build<R: Read + Seek>(
    arch: &str,
    own: bool,
    ct: Content,
    reader: &mut R,
    device: &Device,
) -> Result<Weights, LlmError> {
    if own {
        return Ok(Weights::Decoder(decoder::Decoder::from_gguf(
            arch, ct, reader, device,
        )?));
    }
    Ok(match arch {
        "llama" => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
            ct, reader, device,
        )?),
        "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
            ct, reader, device,
        )?),
        "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
            ct, reader, device,
        )?),
        // Our own: candle-transformers' gemma3 uses the wrong activation (see `gemma3`).
        "gemma3" => Weights::Gemma3(gemma3::Gemma3::from_gguf(ct, reader, device)?),
        "phi3" => Weights::Phi3(quantized_phi3::ModelWeights::from_gguf(
            false, ct, reader, device,
        )?),
        other => return Err(LlmError::Model(format!("architecture {other} not handled"))),
    })
}

/// The file's tensors with Q4_1/Q5_0/Q5_1 ones converted to Q8_0, as an in-memory GGUF.
fn requantized<R: Read + Seek>(
    ct: &Content,
    reader: &mut R,
    device: &Device,
) -> Result<Vec<u8>, LlmError> {
    let mut names: Vec<&String> = ct.tensor_infos.keys().collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    for name in names {
        let q = ct.tensor(reader, name, device)?;
        let q = if needs_requant(q.dtype()) {
            let f = q.dequantize(device)?;
            QTensor::quantize(&f, GgmlDType::Q8_0)?
        } else {
            q
        };
        tensors.push((name.clone(), q));
    }
    let meta: Vec<(&str, &gguf_file::Value)> =
        ct.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &meta, &refs)?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::tensor_end;

    #[test]
    fn tensor_sizes_that_overflow_are_refused_not_wrapped() {
        // Q4_0: 32 elements in 18 bytes.
        assert_eq!(tensor_end(&[64, 2], 32, 18, 100, 1000), Some(4 * 18 + 1100));
        // The element count wraps u64: 2^32 * 2^32.
        assert_eq!(tensor_end(&[1 << 32, 1 << 32], 32, 18, 0, 0), None);
        // The byte count wraps: 2^62 blocks of 18 bytes.
        assert_eq!(tensor_end(&[1 << 62, 32], 32, 18, 0, 0), None);
        // The offsets wrap.
        assert_eq!(tensor_end(&[32], 32, 18, u64::MAX - 10, 0), None);
        assert_eq!(tensor_end(&[32], 32, 18, 0, u64::MAX - 17), None);
        assert_eq!(tensor_end(&[32], 32, 18, 0, u64::MAX - 18), Some(u64::MAX));
        // Empty, blockless and ragged tensors.
        assert_eq!(tensor_end(&[0, 32], 32, 18, 0, 0), None);
        assert_eq!(tensor_end(&[32], 0, 18, 0, 0), None);
        assert_eq!(tensor_end(&[33], 32, 18, 0, 0), None);
    }
}
