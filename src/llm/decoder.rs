//! The llama family of decoder-only transformers as GGUF files lay them out (llama, qwen2,
//! qwen3, phi3), run with candle's quantized matrix multiplications and folio's own attention
//! ([`super::attention`]): a key/value cache that grows in place and grouped-query attention
//! without copies, so that generating after a long prompt costs about what it costs after a
//! short one.
//!
//! The differences between the four are data, read from the file: how rotary dimensions pair
//! (llama interleaves, the others split halves), biases on the query/key/value projections
//! (qwen2), per-head norms of queries and keys (qwen3), fused projections (phi3), and llama 3's
//! rotary frequency factors (`rope_freqs.weight`, which llama.cpp applies too).

use std::borrow::Cow;
use std::io::{Read, Seek};
use std::sync::Arc;

use candle_core::quantized::{QStorage, QTensor, gguf_file};
use candle_core::{D, DType, Device, Result, Tensor, bail};
use candle_nn::ops::rms_norm;

use super::attention::{self, KvCache, Rope, Shape};
use crate::quant::QLinear;

/// A linear layer: quantized weights and an optional bias.
struct Linear {
    weight: QLinear,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

// One per layer: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Qkv {
    Separate {
        q: Linear,
        k: Linear,
        v: Linear,
    },
    /// phi3: one projection, queries then keys then values.
    Fused(Linear),
}

enum Ffn {
    /// `down(silu(gate(x)) * up(x))`.
    Separate { gate: QLinear, up: QLinear },
    /// phi3: `up` yields the gate and the up projection side by side.
    Fused { gate_up: QLinear, inner: usize },
}

struct Layer {
    attn_norm: Tensor,
    qkv: Qkv,
    /// qwen3: RMS norms over each head of the queries and keys, before rotation.
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    wo: QLinear,
    ffn_norm: Tensor,
    ffn: Ffn,
    down: QLinear,
    cache: KvCache,
}

/// A loaded model of the llama family.
pub struct Decoder {
    /// Token embedding, kept quantized; rows are dequantized as they are looked up.
    embedding: Arc<QTensor>,
    output: QLinear,
    norm: Tensor,
    layers: Vec<Layer>,
    eps: f32,
    shape: Shape,
    rot_dim: usize,
    rope: Rope,
    /// Inverse rotary frequencies, with llama 3's factors applied.
    inv_freq: Vec<f32>,
    device: Device,
}

/// The architectures [`Decoder`] runs.
pub const ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "phi3"];

impl Decoder {
    /// Whether `arch` in this file is one [`Decoder`] runs (llama's mixture-of-experts
    /// variants are not).
    pub fn handles(arch: &str, ct: &gguf_file::Content) -> bool {
        let experts = ct
            .metadata
            .get(&format!("{arch}.expert_count"))
            .and_then(|v| v.to_u32().ok())
            .unwrap_or(0);
        ARCHITECTURES.contains(&arch) && experts <= 1
    }

    pub fn from_gguf<R: Read + Seek>(
        arch: &str,
        ct: gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Decoder> {
        let md = |k: &str| -> Result<&gguf_file::Value> {
            match ct.metadata.get(&format!("{arch}.{k}")) {
                Some(v) => Ok(v),
                None => bail!("cannot find {arch}.{k} in the metadata"),
            }
        };
        let count = |k: &str| -> Result<usize> { Ok(md(k)?.to_u32()? as usize) };
        let heads = count("attention.head_count")?;
        let kv_heads = count("attention.head_count_kv")?;
        let layers_n = count("block_count")?;
        let hidden = count("embedding_length")?;
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            bail!("inconsistent attention shape: {heads} heads, {kv_heads} KV heads");
        }
        let head_dim = count("attention.key_length").unwrap_or(hidden / heads);
        let rot_dim = count("rope.dimension_count").unwrap_or(head_dim);
        if head_dim == 0 || rot_dim > head_dim || !rot_dim.is_multiple_of(2) {
            bail!("inconsistent rotary shape: head size {head_dim}, rotary size {rot_dim}");
        }
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()?;
        let base = md("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10_000.0);
        let ffn_inner = if arch == "phi3" {
            count("feed_forward_length")?
        } else {
            0
        };
        let rope = if arch == "llama" {
            Rope::Interleaved
        } else {
            Rope::Halves
        };

        let mut tensor = |name: &str| ct.tensor(reader, name, device);
        let mut inv_freq = attention::inv_freq(rot_dim, base);
        if let Ok(f) = tensor("rope_freqs.weight") {
            let factors = f.dequantize(device)?.flatten_all()?.to_vec1::<f32>()?;
            if factors.len() != inv_freq.len() {
                bail!(
                    "rope_freqs.weight has {} factors for {} frequencies",
                    factors.len(),
                    inv_freq.len()
                );
            }
            for (f, x) in inv_freq.iter_mut().zip(factors) {
                *f /= x;
            }
        }
        let vector = |t: QTensor| -> Result<Tensor> { t.dequantize(device) };
        let embedding = Arc::new(tensor("token_embd.weight")?);
        let output = match tensor("output.weight") {
            Ok(t) => QLinear::new(t)?,
            Err(_) => QLinear::from_arc(embedding.clone())?,
        };
        let norm = vector(tensor("output_norm.weight")?)?;
        let (vocab, width) = embedding.shape().dims2()?;
        if width != hidden || output.dims()? != (vocab, hidden) {
            bail!(
                "the embeddings are {vocab}x{width} and the output {:?} for a width of {hidden}",
                output.dims()?
            );
        }
        let mut layers = Vec::with_capacity(layers_n);
        for i in 0..layers_n {
            let mut w = |n: &str| tensor(&format!("blk.{i}.{n}"));
            let mut linear = |n: &str| -> Result<Linear> {
                Ok(Linear {
                    weight: QLinear::new(w(&format!("{n}.weight"))?)?,
                    bias: match w(&format!("{n}.bias")) {
                        Ok(b) => Some(b.dequantize(device)?),
                        Err(_) => None,
                    },
                })
            };
            let qkv = if arch == "phi3" {
                Qkv::Fused(linear("attn_qkv")?)
            } else {
                Qkv::Separate {
                    q: linear("attn_q")?,
                    k: linear("attn_k")?,
                    v: linear("attn_v")?,
                }
            };
            let (q_norm, k_norm) = if arch == "qwen3" {
                (
                    Some(vector(w("attn_q_norm.weight")?)?),
                    Some(vector(w("attn_k_norm.weight")?)?),
                )
            } else {
                (None, None)
            };
            let ffn = if arch == "phi3" {
                Ffn::Fused {
                    gate_up: QLinear::new(w("ffn_up.weight")?)?,
                    inner: ffn_inner,
                }
            } else {
                Ffn::Separate {
                    gate: QLinear::new(w("ffn_gate.weight")?)?,
                    up: QLinear::new(w("ffn_up.weight")?)?,
                }
            };
            // A damaged header must fail here, not as a panic in the forward pass.
            let (q_rows, kv_rows) = (heads * head_dim, kv_heads * head_dim);
            let wo = QLinear::new(w("attn_output.weight")?)?;
            let down = QLinear::new(w("ffn_down.weight")?)?;
            let inner = down.dims()?.1;
            let mut expect = vec![
                ("attn_output", wo.dims()?, (hidden, q_rows)),
                ("ffn_down", down.dims()?, (hidden, inner)),
            ];
            match &qkv {
                Qkv::Fused(l) => {
                    expect.push(("attn_qkv", l.weight.dims()?, (q_rows + 2 * kv_rows, hidden)))
                }
                Qkv::Separate { q, k, v } => {
                    expect.push(("attn_q", q.weight.dims()?, (q_rows, hidden)));
                    expect.push(("attn_k", k.weight.dims()?, (kv_rows, hidden)));
                    expect.push(("attn_v", v.weight.dims()?, (kv_rows, hidden)));
                }
            }
            match &ffn {
                Ffn::Fused { gate_up, inner: i } => {
                    expect.push(("ffn_up", gate_up.dims()?, (2 * i, hidden)));
                    expect.push(("ffn_down", down.dims()?, (hidden, *i)));
                }
                Ffn::Separate { gate, up } => {
                    expect.push(("ffn_gate", gate.dims()?, (inner, hidden)));
                    expect.push(("ffn_up", up.dims()?, (inner, hidden)));
                }
            }
            for (name, got, want) in expect {
                if got != want {
                    bail!("blk.{i}.{name} is {got:?}, the metadata says {want:?}");
                }
            }
            layers.push(Layer {
                attn_norm: vector(w("attn_norm.weight")?)?,
                qkv,
                q_norm,
                k_norm,
                wo,
                ffn_norm: vector(w("ffn_norm.weight")?)?,
                ffn,
                down,
                cache: KvCache::new(kv_heads, head_dim, None),
            });
        }
        Ok(Decoder {
            embedding,
            output,
            norm,
            layers,
            eps,
            shape: Shape {
                heads,
                kv_heads,
                head_dim,
                scale: 1.0 / (head_dim as f32).sqrt(),
            },
            rot_dim,
            rope,
            inv_freq,
            device: device.clone(),
        })
    }

    /// Logits `(1, vocab)` of the last of `x`'s tokens (`(1, len)` ids) at positions from
    /// `pos`. Position 0 starts a new sequence; any other must continue the cached one.
    pub fn forward(&mut self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (b, t) = x.dims2()?;
        if b != 1 || t == 0 {
            bail!("one sequence of at least one token at a time");
        }
        start_pass(self.layers.iter_mut().map(|l| &mut l.cache), pos)?;
        let ids = x.flatten_all()?.to_vec1::<u32>()?;
        let mut h = embed_rows(&self.embedding, &ids, &self.device)?.unsqueeze(0)?;
        let tables = attention::rope_tables(&self.inv_freq, pos, t, 1.0);
        let s = self.shape;
        let (q_width, kv_width) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
        for layer in &mut self.layers {
            let a = rms_norm(&h, &layer.attn_norm, self.eps)?;
            let (q, k, v) = match &layer.qkv {
                Qkv::Separate { q, k, v } => (q.forward(&a)?, k.forward(&a)?, v.forward(&a)?),
                Qkv::Fused(qkv) => {
                    let y = qkv.forward(&a)?;
                    (
                        y.narrow(D::Minus1, 0, q_width)?,
                        y.narrow(D::Minus1, q_width, kv_width)?,
                        y.narrow(D::Minus1, q_width + kv_width, kv_width)?,
                    )
                }
            };
            let head_norm = |x: Tensor, n: &Option<Tensor>, heads: usize| -> Result<Tensor> {
                match n {
                    Some(w) => rms_norm(
                        &x.reshape((t, heads, s.head_dim))?.contiguous()?,
                        w,
                        self.eps,
                    ),
                    None => Ok(x),
                }
            };
            let q = head_norm(q, &layer.q_norm, s.heads)?;
            let k = head_norm(k, &layer.k_norm, s.kv_heads)?;
            let mut q = q.flatten_all()?.to_vec1::<f32>()?;
            let mut k = k.flatten_all()?.to_vec1::<f32>()?;
            let v = v.flatten_all()?.to_vec1::<f32>()?;
            attention::apply_rope(
                &mut q,
                s.heads,
                s.head_dim,
                self.rot_dim,
                self.rope,
                &tables,
            );
            attention::apply_rope(
                &mut k,
                s.kv_heads,
                s.head_dim,
                self.rot_dim,
                self.rope,
                &tables,
            );
            layer.cache.append(&k, &v);
            let mut out = vec![0f32; q.len()];
            attention::attend(&q, t, pos, s, &layer.cache, &mut out)?;
            let out = Tensor::from_vec(out, (1, t, q_width), &self.device)?;
            h = (layer.wo.forward(&out)? + h)?;

            let f = rms_norm(&h, &layer.ffn_norm, self.eps)?;
            let gated = match &layer.ffn {
                Ffn::Separate { gate, up } => {
                    (candle_nn::ops::silu(&gate.forward(&f)?)? * up.forward(&f)?)?
                }
                Ffn::Fused { gate_up, inner } => {
                    let y = gate_up.forward(&f)?;
                    let gate = y.narrow(D::Minus1, 0, *inner)?;
                    let up = y.narrow(D::Minus1, *inner, *inner)?;
                    (candle_nn::ops::silu(&gate)? * up)?
                }
            };
            h = (layer.down.forward(&gated)? + h)?;
        }
        let last = h.narrow(1, t - 1, 1)?.squeeze(1)?.contiguous()?;
        let last = rms_norm(&last, &self.norm, self.eps)?;
        self.output.forward(&last)?.to_dtype(DType::F32)
    }

    /// Forgets the positions from `pos` on, keeping the ones before for reuse; false (and
    /// nothing kept) when that is not possible.
    pub fn rewind(&mut self, pos: usize) -> bool {
        rewind_all(self.layers.iter_mut().map(|l| &mut l.cache), pos)
    }
}

/// The embedding rows of `ids`, dequantized one by one: `(len, hidden)`.
pub fn embed_rows(embedding: &QTensor, ids: &[u32], device: &Device) -> Result<Tensor> {
    let dtype = embedding.dtype();
    let (vocab, hidden) = embedding.shape().dims2()?;
    if !hidden.is_multiple_of(dtype.block_size()) {
        bail!("embedding rows of {hidden} do not divide into {dtype:?} blocks");
    }
    let row_bytes = hidden / dtype.block_size() * dtype.type_size();
    let data = embedding.data()?;
    let mut rows = Vec::with_capacity(ids.len());
    for &id in ids {
        let id = id as usize;
        if id >= vocab {
            bail!("token id {id} is outside the vocabulary ({vocab})");
        }
        let bytes = &data[id * row_bytes..(id + 1) * row_bytes];
        let storage = QStorage::from_data(Cow::Borrowed(bytes), device, dtype)?;
        rows.push(QTensor::new(storage, (hidden,))?.dequantize(device)?);
    }
    Tensor::stack(&rows, 0)
}

/// Readies a model's caches for a forward pass at `pos`: position 0 starts a new sequence;
/// any other must continue the cached one.
pub fn start_pass<'a>(caches: impl Iterator<Item = &'a mut KvCache>, pos: usize) -> Result<()> {
    let mut cached = None;
    for c in caches {
        if pos == 0 {
            c.clear();
        }
        cached.get_or_insert(c.next_pos());
    }
    let cached = cached.unwrap_or(0);
    if pos != cached {
        bail!("position {pos} does not continue the cached sequence ({cached} tokens)");
    }
    Ok(())
}

/// Truncates every cache to `pos`, or clears them all when any one cannot be.
pub fn rewind_all<'a>(caches: impl Iterator<Item = &'a mut KvCache>, pos: usize) -> bool {
    let mut caches: Vec<&mut KvCache> = caches.collect();
    let ok = caches.iter().all(|c| c.can_truncate(pos));
    for c in caches.iter_mut() {
        if !(ok && c.truncate(pos)) {
            c.clear();
        }
    }
    ok
}
