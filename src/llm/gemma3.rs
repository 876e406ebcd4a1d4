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
//! of the global layers and the 27B's attention scale. Attention is folio's own
//! ([`super::attention`]): an in-place cache that a local layer trims to its window.

use std::io::{Read, Seek};

use candle_core::quantized::{QTensor, gguf_file};
use candle_core::{DType, Device, Result, Tensor, bail};
use candle_nn::ops::rms_norm;

use super::attention::{self, KvCache, Rope, Shape};
use crate::quant::QLinear;

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
    wq: QLinear,
    wk: QLinear,
    wv: QLinear,
    wo: QLinear,
    q_norm: Norm,
    k_norm: Norm,
    attn_norm: Norm,
    post_attn_norm: Norm,
    ffn_norm: Norm,
    post_ffn_norm: Norm,
    gate: QLinear,
    up: QLinear,
    down: QLinear,
    /// Local (sliding-window) layers use the local rotary base.
    local: bool,
    cache: KvCache,
}

pub struct Gemma3 {
    /// Token embedding, quantized, shape `(vocab, hidden)`; also the output projection when
    /// the file has no `output.weight` (Gemma ties them).
    embedding: std::sync::Arc<QTensor>,
    output: QLinear,
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

/// What every layer of one forward pass shares: shapes and the rotary tables of both layer
/// kinds.
struct Pass {
    pos: usize,
    t: usize,
    shape: Shape,
    local_rope: (Vec<f32>, Vec<f32>),
    global_rope: (Vec<f32>, Vec<f32>),
}

impl Layer {
    fn attention(&mut self, x: &Tensor, p: &Pass) -> Result<Tensor> {
        let s = p.shape;
        let (t, hd) = (p.t, s.head_dim);
        let q = self.wq.forward(x)?.reshape((t, s.heads, hd))?;
        let k = self.wk.forward(x)?.reshape((t, s.kv_heads, hd))?;
        let v = self.wv.forward(x)?;
        let mut q = self.q_norm.forward(&q)?.flatten_all()?.to_vec1::<f32>()?;
        let mut k = self.k_norm.forward(&k)?.flatten_all()?.to_vec1::<f32>()?;
        let v = v.flatten_all()?.to_vec1::<f32>()?;
        let tables = if self.local {
            &p.local_rope
        } else {
            &p.global_rope
        };
        attention::apply_rope(&mut q, s.heads, hd, hd, Rope::Halves, tables);
        attention::apply_rope(&mut k, s.kv_heads, hd, hd, Rope::Halves, tables);
        self.cache.append(&k, &v);
        let mut out = vec![0f32; q.len()];
        attention::attend(&q, t, p.pos, s, &self.cache, &mut out)?;
        let out = Tensor::from_vec(out, (1, t, s.heads * hd), x.device())?;
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
            Ok(t) => QLinear::new(t)?,
            Err(_) => QLinear::from_arc(embedding.clone())?,
        };
        let final_norm = norm(tensor("output_norm.weight")?)?;
        let mut layers = Vec::with_capacity(layers_n);
        for i in 0..layers_n {
            let mut w = |n: &str| tensor(&format!("blk.{i}.{n}.weight"));
            let local = (i + 1) % global_every != 0;
            layers.push(Layer {
                wq: QLinear::new(w("attn_q")?)?,
                wk: QLinear::new(w("attn_k")?)?,
                wv: QLinear::new(w("attn_v")?)?,
                wo: QLinear::new(w("attn_output")?)?,
                q_norm: norm(w("attn_q_norm")?)?,
                k_norm: norm(w("attn_k_norm")?)?,
                attn_norm: norm(w("attn_norm")?)?,
                post_attn_norm: norm(w("post_attention_norm")?)?,
                ffn_norm: norm(w("ffn_norm")?)?,
                post_ffn_norm: norm(w("post_ffw_norm")?)?,
                gate: QLinear::new(w("ffn_gate")?)?,
                up: QLinear::new(w("ffn_up")?)?,
                down: QLinear::new(w("ffn_down")?)?,
                local,
                cache: KvCache::new(kv_heads, head_dim, local.then_some(window)),
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

    /// Forgets the positions from `pos` on, keeping the ones before for reuse; false (and
    /// nothing kept) when a window already dropped rows that later queries would need.
    pub fn rewind(&mut self, pos: usize) -> bool {
        super::decoder::rewind_all(self.layers.iter_mut().map(|l| &mut l.cache), pos)
    }

    /// Logits of the last position of `x` (`(1, len)` token ids) starting at `pos`. Position
    /// 0 starts a new sequence (the cache is cleared).
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, t) = x.dims2()?;
        if b != 1 {
            bail!("gemma3: one sequence at a time");
        }
        super::decoder::start_pass(self.layers.iter_mut().map(|l| &mut l.cache), pos)?;
        let ids = x.flatten_all()?.to_vec1::<u32>()?;
        let embedded = super::decoder::embed_rows(&self.embedding, &ids, &self.device)?;
        let mut h = (embedded.unsqueeze(0)? * (self.hidden as f64).sqrt())?;
        let d = self.head_dim;
        let pass = Pass {
            pos,
            t,
            shape: Shape {
                heads: self.heads,
                kv_heads: self.kv_heads,
                head_dim: d,
                scale: self.attn_scale as f32,
            },
            local_rope: attention::rope_tables(
                &attention::inv_freq(d, self.local_base),
                pos,
                t,
                1.0,
            ),
            global_rope: attention::rope_tables(
                &attention::inv_freq(d, self.global_base),
                pos,
                t,
                self.global_scale,
            ),
        };
        for layer in self.layers.iter_mut() {
            let a = layer.attn_norm.forward(&h)?;
            let a = layer.attention(&a, &pass)?;
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
