//! A `tokenizers` tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, so that a
//! model needs nothing beside its `.gguf`.
//!
//! Two vocabulary families cover the models people run: byte-level BPE (`tokenizer.ggml.model =
//! "gpt2"`: SmolLM, Llama 3, Qwen, GPT-2 style) with a pre-tokenizer chosen by
//! `tokenizer.ggml.pre` as llama.cpp does, and SentencePiece (`"llama"`: Llama 2, Mistral,
//! Phi-3, Gemma), whose merges are derived from the piece scores. The tokenizer is assembled as
//! a `tokenizer.json` document, the format `tokenizers` itself defines, and parsed by it.

use std::collections::HashMap;
use std::str::FromStr;

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::{Value as Json, json};
use tokenizers::Tokenizer;

use super::LlmError;

/// GGUF token types (llama.cpp's `llama_token_type`).
const TYPE_NORMAL: u32 = 1;
const TYPE_UNKNOWN: u32 = 2;
const TYPE_CONTROL: u32 = 3;
const TYPE_USER_DEFINED: u32 = 4;
const TYPE_BYTE: u32 = 6;

/// GPT-2's split: contractions, letters, numbers, other symbols, whitespace.
const GPT2_SPLIT: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's split ("llama-bpe"): case-insensitive contractions, numbers in runs of up to 3.
const LLAMA3_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen 2's split: as Llama 3's, with single digits.
const QWEN2_SPLIT: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What the tokenizer needs to know beside itself.
#[derive(Debug, Clone)]
pub struct Vocab {
    pub tokenizer: Tokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Prepend BOS when the rendered prompt does not start with it.
    pub add_bos: bool,
    /// Text of every token, by id (for the chat template's `bos_token` and stop tokens).
    pub tokens: Vec<String>,
}

impl Vocab {
    pub fn id(&self, text: &str) -> Option<u32> {
        self.tokenizer.token_to_id(text)
    }
}

fn meta<'a>(ct: &'a Content, key: &str) -> Option<&'a Value> {
    ct.metadata.get(key)
}

fn meta_u32(ct: &Content, key: &str) -> Option<u32> {
    meta(ct, key).and_then(|v| match v {
        Value::U8(x) => Some(*x as u32),
        Value::U16(x) => Some(*x as u32),
        Value::U32(x) => Some(*x),
        Value::U64(x) => u32::try_from(*x).ok(),
        Value::I32(x) => u32::try_from(*x).ok(),
        Value::I64(x) => u32::try_from(*x).ok(),
        _ => None,
    })
}

fn meta_bool(ct: &Content, key: &str) -> Option<bool> {
    meta(ct, key).and_then(|v| v.to_bool().ok())
}

fn meta_str<'a>(ct: &'a Content, key: &str) -> Option<&'a str> {
    meta(ct, key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

fn strings(ct: &Content, key: &str) -> Result<Vec<String>, LlmError> {
    let v = meta(ct, key).ok_or_else(|| LlmError::Tokenizer(format!("metadata {key} missing")))?;
    let arr = v
        .to_vec()
        .map_err(|_| LlmError::Tokenizer(format!("metadata {key} is not an array")))?;
    arr.iter()
        .map(|x| {
            x.to_string()
                .cloned()
                .map_err(|_| LlmError::Tokenizer(format!("metadata {key} holds a non-string")))
        })
        .collect()
}

fn numbers<T>(ct: &Content, key: &str, f: impl Fn(&Value) -> Option<T>) -> Option<Vec<T>> {
    let arr = meta(ct, key)?.to_vec().ok()?;
    arr.iter().map(f).collect()
}

/// Builds the tokenizer of `ct`.
pub fn from_gguf(ct: &Content) -> Result<Vocab, LlmError> {
    let model = meta_str(ct, "tokenizer.ggml.model").unwrap_or("");
    let tokens = strings(ct, "tokenizer.ggml.tokens")?;
    let types: Vec<u32> = numbers(ct, "tokenizer.ggml.token_type", |v| match v {
        Value::I32(x) => u32::try_from(*x).ok(),
        Value::U32(x) => Some(*x),
        _ => None,
    })
    .unwrap_or_else(|| vec![TYPE_NORMAL; tokens.len()]);
    if types.len() != tokens.len() {
        return Err(LlmError::Tokenizer(
            "token types and tokens differ in length".into(),
        ));
    }
    let bos = meta_u32(ct, "tokenizer.ggml.bos_token_id");
    let eos = meta_u32(ct, "tokenizer.ggml.eos_token_id");
    let doc = match model {
        "gpt2" => {
            let merges = strings(ct, "tokenizer.ggml.merges")?;
            let pre = meta_str(ct, "tokenizer.ggml.pre").unwrap_or("default");
            byte_level_json(&tokens, &types, &merges, pre)?
        }
        "llama" => {
            let scores: Vec<f32> = numbers(ct, "tokenizer.ggml.scores", |v| v.to_f32().ok())
                .ok_or_else(|| LlmError::Tokenizer("tokenizer.ggml.scores missing".into()))?;
            let space_prefix = meta_bool(ct, "tokenizer.ggml.add_space_prefix").unwrap_or(true);
            sentencepiece_json(&tokens, &types, &scores, space_prefix)?
        }
        other => {
            return Err(LlmError::Tokenizer(format!(
                "tokenizer model {other:?} is not supported (supported: gpt2-style BPE, SentencePiece)"
            )));
        }
    };
    let tokenizer =
        Tokenizer::from_str(&doc.to_string()).map_err(|cause| LlmError::TokenizerFailed {
            what: "building it from the file's vocabulary",
            cause,
        })?;
    let add_bos = meta_bool(ct, "tokenizer.ggml.add_bos_token").unwrap_or(model == "llama");
    Ok(Vocab {
        tokenizer,
        bos,
        eos,
        add_bos,
        tokens,
    })
}

fn vocab_map(tokens: &[String]) -> serde_json::Map<String, Json> {
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (id, t) in tokens.iter().enumerate() {
        // Some vocabularies repeat a piece; the first id is the one the merges produce.
        vocab.entry(t.clone()).or_insert(json!(id));
    }
    vocab
}

/// Control and user-defined tokens are matched whole in the input, before the model sees it.
fn added_tokens(tokens: &[String], types: &[u32]) -> Vec<Json> {
    tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, ty))| matches!(**ty, TYPE_CONTROL | TYPE_USER_DEFINED | TYPE_UNKNOWN))
        .filter(|(_, (t, _))| !t.is_empty())
        .map(|(id, (t, ty))| {
            json!({
                "id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": false, "special": *ty != TYPE_USER_DEFINED,
            })
        })
        .collect()
}

fn split_pattern(pre: &str) -> Vec<Json> {
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    match pre {
        "llama-bpe" | "llama3" | "llama-v3" | "dbrx" | "smaug-bpe" => vec![split(LLAMA3_SPLIT)],
        "qwen2" | "deepseek-r1-qwen" => vec![split(QWEN2_SPLIT)],
        // llama.cpp splits every digit apart before the GPT-2 rules for these.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            vec![split(r"\p{N}"), split(GPT2_SPLIT)]
        }
        "default" | "gpt2" | "gpt-2" => vec![split(GPT2_SPLIT)],
        other => {
            // llama.cpp knows dozens of splits; GPT-2's is the closest common ground, but ids
            // may differ from the model's training on digits and contractions.
            tracing::warn!(
                pre = other,
                "unknown tokenizer.ggml.pre; splitting as GPT-2 does"
            );
            vec![split(GPT2_SPLIT)]
        }
    }
}

fn byte_level_json(
    tokens: &[String],
    types: &[u32],
    merges: &[String],
    pre: &str,
) -> Result<Json, LlmError> {
    let merges: Vec<Json> = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| json!([a, b]))
                .ok_or_else(|| LlmError::Tokenizer(format!("malformed merge {m:?}")))
        })
        .collect::<Result<_, _>>()?;
    let mut pre_tokenizers = split_pattern(pre);
    pre_tokenizers.push(
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}),
    );
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": pre_tokenizers},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            // Llama 3 keeps whole words that are in the vocabulary as they are.
            "ignore_merges": matches!(pre, "llama-bpe" | "llama3" | "llama-v3"),
            "vocab": vocab_map(tokens), "merges": merges,
        },
    }))
}

/// SentencePiece BPE merges from piece scores: every split of a piece into two pieces of the
/// vocabulary is a merge, ranked by the merged piece's score (higher merges first), as
/// SentencePiece and llama.cpp apply them.
pub fn merges_from_scores(
    tokens: &[String],
    types: &[u32],
    scores: &[f32],
) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut found: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        if types.get(id) != Some(&TYPE_NORMAL) && types.get(id) != Some(&TYPE_USER_DEFINED) {
            continue;
        }
        for (cut, _) in piece.char_indices().skip(1) {
            let (l, r) = piece.split_at(cut);
            if let (Some(&li), Some(&ri)) = (ids.get(l), ids.get(r)) {
                found.push((scores.get(id).copied().unwrap_or(0.0), id, li, ri));
            }
        }
    }
    found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    found
        .into_iter()
        .map(|(_, _, l, r)| (tokens[l].clone(), tokens[r].clone()))
        .collect()
}

fn sentencepiece_json(
    tokens: &[String],
    types: &[u32],
    scores: &[f32],
    space_prefix: bool,
) -> Result<Json, LlmError> {
    if scores.len() != tokens.len() {
        return Err(LlmError::Tokenizer(
            "scores and tokens differ in length".into(),
        ));
    }
    let merges: Vec<Json> = merges_from_scores(tokens, types, scores)
        .into_iter()
        .map(|(a, b)| json!([a, b]))
        .collect();
    let unk = types
        .iter()
        .position(|&t| t == TYPE_UNKNOWN)
        .map(|i| tokens[i].clone());
    let has_bytes = types.contains(&TYPE_BYTE);
    let mut normalizers = Vec::new();
    if space_prefix {
        normalizers.push(json!({"type": "Prepend", "prepend": "\u{2581}"}));
    }
    normalizers.push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}));
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if space_prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added_tokens(tokens, types),
        "normalizer": {"type": "Sequence", "normalizers": normalizers},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": decoders},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": unk, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": has_bytes,
            "ignore_merges": false, "vocab": vocab_map(tokens), "merges": merges,
        },
    }))
}

/// Turns a stream of token ids into text pieces, holding back bytes of an unfinished
/// character (byte-level and byte-fallback tokens split characters across tokens).
pub struct Detokenizer<'a> {
    tokenizer: &'a Tokenizer,
    ids: Vec<u32>,
    emitted: usize,
}

impl<'a> Detokenizer<'a> {
    pub fn new(tokenizer: &'a Tokenizer) -> Self {
        Detokenizer {
            tokenizer,
            ids: Vec::new(),
            emitted: 0,
        }
    }

    /// Adds `id`; returns the new text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>, LlmError> {
        self.ids.push(id);
        let text = self.decode()?;
        if text.ends_with('\u{fffd}') || text.len() <= self.emitted {
            return Ok(None);
        }
        let piece = text.get(self.emitted..).map(str::to_string);
        self.emitted = text.len();
        Ok(piece)
    }

    /// Everything decoded so far.
    pub fn text(&self) -> Result<String, LlmError> {
        self.decode()
    }

    fn decode(&self) -> Result<String, LlmError> {
        self.tokenizer
            .decode(&self.ids, true)
            .map_err(|cause| LlmError::TokenizerFailed {
                what: "decoding",
                cause,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentencepiece_merges_follow_scores() {
        let tokens: Vec<String> = ["<unk>", "a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let types = vec![TYPE_UNKNOWN, 1, 1, 1, 1, 1, 1];
        let scores = vec![0.0, -1.0, -1.0, -1.0, -3.0, -2.0, -4.0];
        let m = merges_from_scores(&tokens, &types, &scores);
        let pairs: Vec<(&str, &str)> = m.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        // "bc" scores higher than "ab", and "abc" comes last, by either split.
        assert_eq!(
            pairs,
            vec![("b", "c"), ("a", "b"), ("a", "bc"), ("ab", "c")]
        );
    }

    #[test]
    fn sentencepiece_tokenizer_encodes_and_decodes() {
        let pieces = [
            "<unk>",
            "<s>",
            "</s>",
            "\u{2581}",
            "h",
            "i",
            "\u{2581}h",
            "\u{2581}hi",
            "<0x21>",
        ];
        let tokens: Vec<String> = pieces.iter().map(|s| s.to_string()).collect();
        let types = vec![
            TYPE_UNKNOWN,
            TYPE_CONTROL,
            TYPE_CONTROL,
            1,
            1,
            1,
            1,
            1,
            TYPE_BYTE,
        ];
        let scores = vec![0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -2.0, -3.0, 0.0];
        let doc = sentencepiece_json(&tokens, &types, &scores, true).unwrap();
        let t = Tokenizer::from_str(&doc.to_string()).unwrap();
        let enc = t.encode("hi hi!", false).unwrap();
        assert_eq!(enc.get_ids(), &[7, 7, 8]);
        assert_eq!(t.decode(enc.get_ids(), true).unwrap(), "hi hi!");
        // Control tokens are matched whole.
        assert_eq!(t.encode("<s>hi", false).unwrap().get_ids(), &[1, 7]);
    }
}
