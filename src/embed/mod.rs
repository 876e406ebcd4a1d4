//! The sentence encoder: a BERT-style model (all-MiniLM-L6-v2 by default) run on the CPU by
//! folio's own forward pass (`bert`, on the quantized kernels of `quant`), with the
//! pooling and normalisation that sentence-transformers applies for the model.
//!
//! Texts are tokenized, sorted by length, run through the model a batch at a time (texts end
//! to end, so nothing is padded), mean-pooled over their tokens (or CLS-pooled where the
//! model's `1_Pooling/config.json` says so) and L2-normalised, so that a dot product is the
//! cosine similarity. candle-transformers' f32 BERT remains as the reference
//! (`FOLIO_EMBED_BACKEND=candle`, or [`Embedder::load_reference`]).

mod bert;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::{Deserialize, Serialize};
use tokenizers::{Tokenizer, TruncationParams};

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("embedding failed")]
    Model(#[from] candle_core::Error),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
}

/// The identity of an embedding model, recorded in every index so that vectors of different
/// models never mix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub dim: usize,
    /// SHA-256 of the weights file.
    pub sha256: String,
    /// Most word pieces (special tokens included) the model reads.
    pub max_tokens: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pooling {
    Mean,
    Cls,
}

/// Word pieces per forward pass of folio's encoder.
const TOKENS_PER_PASS: usize = 1024;

/// The forward pass in use.
enum Model {
    Folio(bert::Encoder),
    Candle(BertModel),
}

pub struct Embedder {
    model: Model,
    /// Truncates at the model's limit: used to embed.
    tokenizer: Tokenizer,
    /// Never truncates: used to measure text, so an oversized chunk cannot look fine.
    counter: Tokenizer,
    device: Device,
    info: ModelInfo,
    pooling: Pooling,
    batch: usize,
    /// The last query and its vector: `ask` and the TUI embed the same question for search
    /// and again for the relevance gate.
    last_query: std::sync::Mutex<Option<(String, Vec<f32>)>>,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> EmbedError {
    let message = e.to_string();
    // safetensors' errors start with the path, which `Load` already shows.
    let message = message
        .strip_prefix(&format!("path: {path:?} "))
        .map(str::to_string)
        .unwrap_or(message);
    EmbedError::Load {
        path: path.to_path_buf(),
        message,
    }
}

impl Embedder {
    /// Loads a model directory holding `config.json`, `tokenizer.json` and `model.safetensors`
    /// (the layout of a sentence-transformers model on disk). `batch` is the number of texts
    /// per forward pass.
    pub fn load(dir: &Path, batch: usize) -> Result<Self, EmbedError> {
        let reference = std::env::var("FOLIO_EMBED_BACKEND").is_ok_and(|b| b == "candle");
        Self::load_with(dir, batch, reference)
    }

    /// [`Embedder::load`] on candle-transformers' f32 BERT: what folio's own pass is
    /// measured against.
    pub fn load_reference(dir: &Path, batch: usize) -> Result<Self, EmbedError> {
        Self::load_with(dir, batch, true)
    }

    fn load_with(dir: &Path, batch: usize, reference: bool) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| load_err(&config_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| load_err(&config_path, e))?;
        let raw: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| load_err(&config_path, e))?;
        let dim = raw["hidden_size"]
            .as_u64()
            .ok_or_else(|| load_err(&config_path, "no hidden_size"))? as usize;
        let max_pos = raw["max_position_embeddings"].as_u64().unwrap_or(512) as usize;

        // sentence-transformers caps the sequence (256 for MiniLM); without that file, the
        // position table is the hard limit.
        let st_path = dir.join("sentence_bert_config.json");
        let max_tokens = std::fs::read_to_string(&st_path)
            .ok()
            .and_then(|t| serde_json::from_str::<SentenceBertConfig>(&t).ok())
            .and_then(|c| c.max_seq_length)
            .unwrap_or(max_pos)
            .min(max_pos);
        let pooling = std::fs::read_to_string(dir.join("1_Pooling/config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<PoolingConfig>(&t).ok())
            .map(|c| {
                if c.pooling_mode_cls_token {
                    Pooling::Cls
                } else {
                    Pooling::Mean
                }
            })
            .unwrap_or(Pooling::Mean);

        let tok_path = dir.join("tokenizer.json");
        let mut counter = Tokenizer::from_file(&tok_path).map_err(|e| load_err(&tok_path, e))?;
        counter
            .with_truncation(None)
            .map_err(|e| load_err(&tok_path, e))?;
        counter.with_padding(None);
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| load_err(&tok_path, e))?;
        tokenizer.with_padding(None);

        let weights = dir.join("model.safetensors");
        let sha256 = crate::models::sha256_file(&weights).map_err(|e| load_err(&weights, e))?;
        let device = Device::Cpu;
        // SAFETY: the weights file is memory-mapped read-only; folio never writes to it, and a
        // user replacing it while folio runs is outside what any mmap-based loader can guard.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &device) }
            .map_err(|e| load_err(&weights, e))?;
        let model = if reference {
            Model::Candle(BertModel::load(vb, &config).map_err(|e| load_err(&weights, e))?)
        } else {
            Model::Folio(bert::Encoder::load(vb, &config).map_err(|e| load_err(&weights, e))?)
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "embedder".into());
        Ok(Embedder {
            model,
            tokenizer,
            counter,
            device,
            info: ModelInfo {
                name,
                dim,
                sha256,
                max_tokens,
            },
            pooling,
            batch: batch.max(1),
            last_query: std::sync::Mutex::new(None),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Word pieces of `text` without the special tokens the model adds ([CLS], [SEP]).
    pub fn count_tokens(&self, text: &str) -> usize {
        match self.counter.encode_fast(text, false) {
            Ok(enc) => enc.get_ids().len(),
            // Only an internal tokenizer fault gets here; overestimate so chunks stay small.
            Err(_) => text.len(),
        }
    }

    /// Most content word pieces a text may have to be read whole.
    pub fn content_budget(&self) -> usize {
        self.info.max_tokens.saturating_sub(2)
    }

    /// Embeds `texts`, returning one unit vector per text in input order. Texts longer than the
    /// model's limit are cut there (the chunker guarantees passages never are).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_counted(texts).map(|(v, _)| v)
    }

    /// Like [`Embedder::embed`], also returning the number of word pieces read (special tokens
    /// included, padding excluded).
    pub fn embed_counted(&self, texts: &[&str]) -> Result<(Vec<Vec<f32>>, usize), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let encodings = self
            .tokenizer
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();
        let tokens = ids.iter().map(|i| i.len()).sum();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        // folio's pass lays texts end to end: it takes groups by word pieces, sized so that
        // its intermediate buffers stay in the allocator's heap (and in cache) instead of
        // being mapped and zeroed afresh for every layer.
        let groups: Vec<&[usize]> = match self.model {
            Model::Candle(_) => order.chunks(self.batch).collect(),
            Model::Folio(_) => {
                let mut groups = Vec::new();
                let (mut start, mut pieces) = (0, 0);
                for (k, &i) in order.iter().enumerate() {
                    if k > start && pieces + ids[i].len() > TOKENS_PER_PASS {
                        groups.push(&order[start..k]);
                        (start, pieces) = (k, 0);
                    }
                    pieces += ids[i].len();
                }
                groups.push(&order[start..]);
                groups
            }
        };
        self.device.with_context(|| -> Result<(), EmbedError> {
            for group in groups {
                let batch: Vec<&[u32]> = group.iter().map(|&i| ids[i]).collect();
                let vectors = self.forward(&batch)?;
                for (&i, v) in group.iter().zip(vectors) {
                    out[i] = v;
                }
            }
            Ok(())
        })?;
        Ok((out, tokens))
    }

    /// Embeds one query.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        if let Ok(last) = self.last_query.lock()
            && let Some((q, v)) = last.as_ref()
            && q == text
        {
            return Ok(v.clone());
        }
        let v = self.embed(&[text])?.pop().unwrap_or_default();
        if let Ok(mut last) = self.last_query.lock() {
            *last = Some((text.to_string(), v.clone()));
        }
        Ok(v)
    }

    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let model = match &self.model {
            Model::Candle(m) => m,
            Model::Folio(e) => {
                let hidden = e.forward(batch)?.to_vec2::<f32>()?;
                return Ok(pool_rows(&hidden, batch, self.pooling));
            }
        };
        let len = batch.iter().map(|b| b.len()).max().unwrap_or(0).max(1);
        let n = batch.len();
        let mut ids = vec![0u32; n * len];
        let mut mask = vec![0f32; n * len];
        for (r, seq) in batch.iter().enumerate() {
            ids[r * len..r * len + seq.len()].copy_from_slice(seq);
            mask[r * len..r * len + seq.len()].fill(1.0);
        }
        let ids = Tensor::from_vec(ids, (n, len), &self.device)?;
        let mask = Tensor::from_vec(mask, (n, len), &self.device)?;
        let types = ids.zeros_like()?;
        let hidden = model.forward(&ids, &types, Some(&mask))?;
        let pooled = match self.pooling {
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                let m = mask.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&m)?.sum(1)?;
                let counts = m.sum(1)?.clamp(1e-9, f32::MAX)?;
                summed.broadcast_div(&counts)?
            }
        };
        let norms = pooled
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f32::MAX)?;
        let normed = pooled.broadcast_div(&norms)?;
        Ok(normed.to_vec2::<f32>()?)
    }
}

/// Each text's pooled, L2-normalised vector from its rows of `hidden` (texts end to end).
fn pool_rows(hidden: &[Vec<f32>], batch: &[&[u32]], pooling: Pooling) -> Vec<Vec<f32>> {
    let mut start = 0;
    let mut out = Vec::with_capacity(batch.len());
    for ids in batch {
        let rows = &hidden[start..start + ids.len()];
        start += ids.len();
        let dim = hidden.first().map_or(0, Vec::len);
        let mut v = vec![0f32; dim];
        match pooling {
            Pooling::Cls => {
                if let Some(first) = rows.first() {
                    v.copy_from_slice(first);
                }
            }
            Pooling::Mean => {
                for r in rows {
                    v.iter_mut().zip(r).for_each(|(a, b)| *a += b);
                }
                let n = rows.len().max(1) as f32;
                v.iter_mut().for_each(|a| *a /= n);
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.iter_mut().for_each(|a| *a /= norm);
        out.push(v);
    }
    out
}
