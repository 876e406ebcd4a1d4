//! Gemma 3 from a GGUF file, on candle's quantized kernels.
//!
//! candle-transformers' `quantized_gemma3` gates the feed-forward network with SiLU where Gemma
//! uses GELU (tanh approximation) (huggingface/candle#3745), lets cached tokens outside a
//! sliding-window layer's window back into attention, precomputes rotary tables for 131,072
//! positions in every layer (2.4 GB for the 270M model) and keeps the token embedding in f32
//! (670 MB for the same model). Its output drifts from llama.cpp's after the first token. This
//! is the model as llama.cpp runs it: GELU, windowed attention, rotary angles computed for the
//! positions at hand (once per forward pass, not per layer), the embedding kept quantized, its
//! rows dequantized as they are looked up, and, for the larger models, the linear rotary scaling
//! of the global layers and the 27B's attention scale.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Read, Seek};

use candle_core::quantized::{QMatMul, QStorage, QTensor, gguf_file};
use candle_core::{DType, Device, Module, Result, Tensor, bail};
use candle_nn::ops::{rms_norm, softmax_last_dim};

/// Layers whose index + 1 is a multiple of this attend globally; the others use the window
/// (Gemma 3's five local layers to one global).
const GLOBAL_EVERY: usize = 6;
const LOCAL_ROPE_BASE: f32 = 10_000.0;
const GLOBAL_ROPE_BASE: f32 = 1_000_000.0;

struct Norm {
    weight: Tensor,
    eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        rms_norm(&x.contiguous()?, &self.weight, self.eps)
    }
}

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    wo: QMatMul,
    q_norm: Norm,
    k_norm: Norm,
    attn_norm: Norm,
    post_attn_norm: Norm,
    ffn_norm: Norm,
    post_ffn_norm: Norm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    /// Sliding-window size, for local layers (the others are global).
    window: Option<usize>,
    /// Cached keys and values, and the position of the first cached one.
    cache: Option<(Tensor, Tensor, usize)>,
}

pub struct Gemma3 {
    /// Token embedding, quantized, shape `(vocab, hidden)`; also the output projection when
    /// the file has no `output.weight` (Gemma ties them).
    embedding: std::sync::Arc<QTensor>,
    output: QMatMul,
    norm: Norm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// Rotary base of the local layers.
    local_base: f32,
    /// Rotary base of the global layers, and the factor their positions are scaled by
    /// (1 / `rope.scaling.factor`: 4B, 12B and 27B stretch their context this way).
    global_base: f32,
    global_scale: f32,
    /// Multiplies the attention scores.
    attn_scale: f64,
    device: Device,
}

/// Rotary angles for `len` positions from `start`, each position multiplied by `scale`:
/// `(cos, sin)`, each `(len, head_dim / 2)`.
fn rope_angles(
    start: usize,
    len: usize,
    head_dim: usize,
    base: f32,
    scale: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim)
        .step_by(2)
        .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
        .collect();
    let half = inv.len();
    let mut angles = Vec::with_capacity(len * half);
    for p in start..start + len {
        angles.extend(inv.iter().map(|f| p as f32 * scale * f));
    }
    let t = Tensor::from_vec(angles, (len, half), device)?;
    Ok((t.cos()?, t.sin()?))
}

/// `(q_len, k_len)` mask of 0 (attend) and -inf: causal, and within `window` when set.
fn mask(
    q_start: usize,
    q_len: usize,
    k_start: usize,
    k_len: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Tensor> {
    let mut m = Vec::with_capacity(q_len * k_len);
    for i in q_start..q_start + q_len {
        for j in k_start..k_start + k_len {
            let visible = j <= i && window.is_none_or(|w| i - j < w);
            m.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    Tensor::from_vec(m, (q_len, k_len), device)
}

/// What every layer of one forward pass shares: shapes, the rotary tables of both layer kinds,
/// and the masks built so far (keyed by the cached key range and window).
struct Pass<'a> {
    pos: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    attn_scale: f64,
    local_rope: (Tensor, Tensor),
    global_rope: (Tensor, Tensor),
    masks: HashMap<(usize, usize, Option<usize>), Tensor>,
    device: &'a Device,
}

impl Layer {
    fn attention(&mut self, x: &Tensor, p: &mut Pass) -> Result<Tensor> {
        let (pos, heads, kv_heads, head_dim) = (p.pos, p.heads, p.kv_heads, p.head_dim);
        let (b, t, _) = x.dims3()?;
        let q = self.wq.forward(x)?.reshape((b, t, heads, head_dim))?;
        let k = self.wk.forward(x)?.reshape((b, t, kv_heads, head_dim))?;
        let v = self.wv.forward(x)?.reshape((b, t, kv_heads, head_dim))?;
        let q = self.q_norm.forward(&q)?.transpose(1, 2)?.contiguous()?;
        let k = self.k_norm.forward(&k)?.transpose(1, 2)?.contiguous()?;
        let v = v.transpose(1, 2)?.contiguous()?;
        let (cos, sin) = if self.window.is_some() {
            &p.local_rope
        } else {
            &p.global_rope
        };
        let q = candle_nn::rotary_emb::rope(&q, cos, sin)?;
        let k = candle_nn::rotary_emb::rope(&k, cos, sin)?;

        let (mut k, mut v, mut k_start) = match self.cache.take() {
            Some((ck, cv, start)) if pos > 0 => (
                Tensor::cat(&[&ck, &k], 2)?,
                Tensor::cat(&[&cv, &v], 2)?,
                start,
            ),
            _ => (k, v, pos),
        };
        // A local layer's query at position p sees keys p - window + 1 ..= p: the ones before
        // can leave the cache once a single token is being decoded.
        if let Some(w) = self.window
            && t == 1
        {
            let len = k.dim(2)?;
            if len > w {
                k = k.narrow(2, len - w, w)?.contiguous()?;
                v = v.narrow(2, len - w, w)?.contiguous()?;
                k_start += len - w;
            }
        }
        self.cache = Some((k.clone(), v.clone(), k_start));

        let rep = heads / kv_heads;
        let k = candle_transformers::utils::repeat_kv(k, rep)?.contiguous()?;
        let v = candle_transformers::utils::repeat_kv(v, rep)?.contiguous()?;
        let mut scores = (q.matmul(&k.t()?)? * p.attn_scale)?;
        // A single decoded token sees every cached key (the window was applied above).
        if t > 1 {
            let key = (k_start, k.dim(2)?, self.window);
            if !p.masks.contains_key(&key) {
                let m = mask(pos, t, key.0, key.1, key.2, p.device)?;
                p.masks.insert(key, m);
            }
            scores = scores.broadcast_add(&p.masks[&key])?;
        }
        let probs = softmax_last_dim(&scores)?;
        let out = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, t, heads * head_dim))?;
        self.wo.forward(&out)
    }
}

impl Gemma3 {
    pub fn from_gguf<R: Read + Seek>(
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Gemma3> {
        let md = |k: &str| -> Result<&gguf_file::Value> {
            match ct.metadata.get(&format!("gemma3.{k}")) {
                Some(v) => Ok(v),
                None => bail!("cannot find gemma3.{k} in the metadata"),
            }
        };
        let heads = md("attention.head_count")?.to_u32()? as usize;
        let kv_heads = md("attention.head_count_kv")?.to_u32()? as usize;
        let layers_n = md("block_count")?.to_u32()? as usize;
        let hidden = md("embedding_length")?.to_u32()? as usize;
        let head_dim = md("attention.key_length")?.to_u32()? as usize;
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()?;
        let window = md("attention.sliding_window")?.to_u32()? as usize;
        let global_every = md("attention.sliding_window_type")
            .and_then(|v| v.to_u32())
            .map(|v| v as usize)
            .unwrap_or(GLOBAL_EVERY)
            .max(1);
        let global_base = md("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(GLOBAL_ROPE_BASE);
        let local_base = md("rope.local_freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(LOCAL_ROPE_BASE);
        // As llama.cpp: linear scaling of the global layers' positions when the file asks.
        let scaling = md("rope.scaling.type")
            .ok()
            .and_then(|v| v.to_string().ok().cloned());
        let factor = md("rope.scaling.factor")
            .and_then(|v| v.to_f32())
            .unwrap_or(0.0);
        let global_scale = match scaling.as_deref() {
            _ if factor <= 0.0 => 1.0,
            None | Some("linear") => 1.0 / factor,
            Some("none") => 1.0,
            Some(other) => bail!("unsupported rotary scaling {other:?} for gemma3"),
        };
        // llama.cpp scales the 27B's (62 layers) attention by its width per head, the others
        // by the head size.
        let attn_scale = if layers_n == 62 {
            1.0 / ((hidden / heads.max(1)) as f64).sqrt()
        } else {
            1.0 / (head_dim as f64).sqrt()
        };
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !head_dim.is_multiple_of(2)
        {
            bail!(
                "inconsistent attention shape: {heads} heads, {kv_heads} KV heads, head size {head_dim}"
            );
        }

        let mut tensor = |name: &str| ct.tensor(reader, name, device);
        let norm = |t: QTensor| -> Result<Norm> {
            Ok(Norm {
                weight: t.dequantize(device)?,
                eps,
            })
        };
        let embedding = std::sync::Arc::new(tensor("token_embd.weight")?);
        let output = match tensor("output.weight") {
            Ok(t) => QMatMul::from_qtensor(t)?,
            Err(_) => QMatMul::from_arc(embedding.clone())?,
        };
        let final_norm = norm(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(layers_n);
        for i in 0..layers_n {
            let mut w = |n: &str| tensor(&format!("blk.{i}.{n}.weight"));
            let local = (i + 1) % global_every != 0;
            layers.push(Layer {
                wq: QMatMul::from_qtensor(w("attn_q")?)?,
                wk: QMatMul::from_qtensor(w("attn_k")?)?,
                wv: QMatMul::from_qtensor(w("attn_v")?)?,
                wo: QMatMul::from_qtensor(w("attn_output")?)?,
                q_norm: norm(w("attn_q_norm")?)?,
                k_norm: norm(w("attn_k_norm")?)?,
                attn_norm: norm(w("attn_norm")?)?,
                post_attn_norm: norm(w("post_attention_norm")?)?,
                ffn_norm: norm(w("ffn_norm")?)?,
                post_ffn_norm: norm(w("post_ffw_norm")?)?,
                gate: QMatMul::from_qtensor(w("ffn_gate")?)?,
                up: QMatMul::from_qtensor(w("ffn_up")?)?,
                down: QMatMul::from_qtensor(w("ffn_down")?)?,
                window: local.then_some(window),
                cache: None,
            });
        }
        Ok(Gemma3 {
            embedding,
            output,
            norm: final_norm,
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            local_base,
            global_base,
            global_scale,
            attn_scale,
            device: device.clone(),
        })
    }

    /// The embedding rows of `ids`, dequantized one by one: `(len, hidden)`.
    fn embed(&self, ids: &[u32]) -> Result<Tensor> {
        let dtype = self.embedding.dtype();
        let (vocab, hidden) = self.embedding.shape().dims2()?;
        let row_bytes = hidden / dtype.block_size() * dtype.type_size();
        let data = self.embedding.data()?;
        let mut rows = Vec::with_capacity(ids.len());
        for &id in ids {
            let id = id as usize;
            if id >= vocab {
                bail!("token id {id} is outside the vocabulary ({vocab})");
            }
            let bytes = &data[id * row_bytes..(id + 1) * row_bytes];
            let storage = QStorage::from_data(Cow::Borrowed(bytes), &self.device, dtype)?;
            rows.push(QTensor::new(storage, (hidden,))?.dequantize(&self.device)?);
        }
        Tensor::stack(&rows, 0)
    }

    /// Logits of the last position of `x` (`(1, len)` token ids) starting at `pos`. Position
    /// 0 starts a new sequence (the cache is cleared).
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, t) = x.dims2()?;
        if b != 1 {
            bail!("gemma3: one sequence at a time");
        }
        let ids = x.flatten_all()?.to_vec1::<u32>()?;
        let mut h = (self.embed(&ids)?.unsqueeze(0)? * (self.hidden as f64).sqrt())?;
        let d = self.head_dim;
        let mut pass = Pass {
            pos,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: d,
            attn_scale: self.attn_scale,
            local_rope: rope_angles(pos, t, d, self.local_base, 1.0, &self.device)?,
            global_rope: rope_angles(pos, t, d, self.global_base, self.global_scale, &self.device)?,
            masks: HashMap::new(),
            device: &self.device,
        };
        for layer in self.layers.iter_mut() {
            if pos == 0 {
                layer.cache = None;
            }
            let a = layer.attn_norm.forward(&h)?;
            let a = layer.attention(&a, &mut pass)?;
            h = (layer.post_attn_norm.forward(&a)? + h)?;
            let f = layer.ffn_norm.forward(&h)?;
            let gated = (layer.gate.forward(&f)?.gelu()? * layer.up.forward(&f)?)?;
            let f = layer.down.forward(&gated)?;
            h = (layer.post_ffn_norm.forward(&f)? + h)?;
        }
        let last = h.narrow(1, t - 1, 1)?.squeeze(1)?;
        let last = self.norm.forward(&last)?;
        self.output.forward(&last)?.to_dtype(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_positions_turn_like_earlier_ones() {
        let d = &Device::Cpu;
        let (c8, s8) = rope_angles(8, 1, 16, 1e6, 0.125, d).unwrap();
        let (c1, s1) = rope_angles(1, 1, 16, 1e6, 1.0, d).unwrap();
        let diff = |a: &Tensor, b: &Tensor| {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        assert!(diff(&c8, &c1) < 1e-6 && diff(&s8, &s1) < 1e-6);
    }

    #[test]
    fn masks_are_causal_and_windowed() {
        let m = mask(0, 4, 0, 4, Some(2), &Device::Cpu).unwrap();
        let v: Vec<Vec<f32>> = m.to_vec2().unwrap();
        let seen: Vec<Vec<bool>> = v
            .iter()
            .map(|r| r.iter().map(|x| *x == 0.0).collect())
            .collect();
        assert_eq!(seen[3], vec![false, false, true, true]);
        assert_eq!(seen[0], vec![true, false, false, false]);
    }
}
