//! folio's own forward pass of a BERT-style encoder (MiniLM, bge, e5, ...) for sentence
//! embeddings: its linear layers on folio's quantized kernels (weights as Q8_0, activations as
//! bytes per block of 32, the scheme of ONNX Runtime's int8 models but with a scale per 32
//! values instead of one per tensor), and attention within each text only.
//!
//! The texts of a batch are laid end to end as one matrix of tokens, so that no product
//! multiplies padding; attention and pooling see each text's own rows.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Result, Tensor, bail};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

use crate::quant::QLinear;

/// A linear layer with a bias.
struct Dense {
    weight: QLinear,
    bias: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder, names: &[&str], rows: &[usize], cols: usize) -> Result<Dense> {
        // Several layers of one input (query, key, value) become one product.
        let mut ws = Vec::new();
        let mut bs = Vec::new();
        for (name, &r) in names.iter().zip(rows) {
            ws.push(vb.get((r, cols), &format!("{name}.weight"))?);
            bs.push(vb.get(r, &format!("{name}.bias"))?);
        }
        let w = Tensor::cat(&ws, 0)?;
        let b = Tensor::cat(&bs, 0)?;
        let weight = if cols.is_multiple_of(32) {
            QLinear::new(QTensor::quantize(&w, GgmlDType::Q8_0)?)?
        } else {
            QLinear::new(QTensor::quantize(&w, GgmlDType::F32)?)?
        };
        Ok(Dense { weight, bias: b })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.weight.forward(x)?.broadcast_add(&self.bias)
    }
}

struct Norm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, name: &str, h: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            weight: vb.get(h, &format!("{name}.weight"))?,
            bias: vb.get(h, &format!("{name}.bias"))?,
            eps: eps as f32,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

struct Layer {
    qkv: Dense,
    out: Dense,
    attn_norm: Norm,
    up: Dense,
    down: Dense,
    ffn_norm: Norm,
}

pub struct Encoder {
    words: Tensor,
    positions: Tensor,
    token_type: Tensor,
    norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    act: HiddenAct,
}

impl Encoder {
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Encoder> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = c.hidden_size;
        if c.num_attention_heads == 0 || !h.is_multiple_of(c.num_attention_heads) {
            bail!(
                "{} attention heads do not divide a width of {h}",
                c.num_attention_heads
            );
        }
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                qkv: Dense::load(&a.pp("self"), &["query", "key", "value"], &[h, h, h], h)?,
                out: Dense::load(&a.pp("output"), &["dense"], &[h], h)?,
                attn_norm: Norm::load(&a.pp("output"), "LayerNorm", h, c.layer_norm_eps)?,
                up: Dense::load(&l.pp("intermediate"), &["dense"], &[c.intermediate_size], h)?,
                down: Dense::load(&l.pp("output"), &["dense"], &[h], c.intermediate_size)?,
                ffn_norm: Norm::load(&l.pp("output"), "LayerNorm", h, c.layer_norm_eps)?,
            });
        }
        Ok(Encoder {
            words: e.get((c.vocab_size, h), "word_embeddings.weight")?,
            positions: e.get((c.max_position_embeddings, h), "position_embeddings.weight")?,
            token_type: e
                .get((c.type_vocab_size, h), "token_type_embeddings.weight")?
                .narrow(0, 0, 1)?,
            norm: Norm::load(&e, "LayerNorm", h, c.layer_norm_eps)?,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
            act: c.hidden_act,
        })
    }

    /// The last hidden states of every token of every text, texts end to end:
    /// `(sum of lengths, hidden)`.
    pub fn forward(&self, texts: &[&[u32]]) -> Result<Tensor> {
        let dev = self.words.device().clone();
        let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let ids: Vec<u32> = texts.iter().flat_map(|t| t.iter().copied()).collect();
        let pos: Vec<u32> = lens.iter().flat_map(|&l| 0..l as u32).collect();
        if pos
            .iter()
            .any(|&p| p as usize >= self.positions.dim(0).unwrap_or(0))
        {
            bail!("a text is longer than the model's position table");
        }
        let n = ids.len();
        let ids = Tensor::from_vec(ids, n, &dev)?;
        let pos = Tensor::from_vec(pos, n, &dev)?;
        let x = self
            .words
            .embedding(&ids)?
            .add(&self.positions.embedding(&pos)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.norm.forward(&x)?;
        for l in &self.layers {
            let qkv = l.qkv.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let a = attention(&qkv, &lens, self.heads, self.hidden);
            let a = Tensor::from_vec(a, (n, self.hidden), &dev)?;
            x = l.attn_norm.forward(&(l.out.forward(&a)? + &x)?)?;
            let u = l.up.forward(&x)?;
            let u = match self.act {
                HiddenAct::Gelu => {
                    let shape = u.dims().to_vec();
                    let mut v = u.flatten_all()?.to_vec1::<f32>()?;
                    gelu_erf(&mut v);
                    Tensor::from_vec(v, shape, &dev)?
                }
                HiddenAct::GeluApproximate => u.gelu()?,
                HiddenAct::Relu => u.relu()?,
            };
            x = l.ffn_norm.forward(&(l.down.forward(&u)? + &x)?)?;
        }
        x.to_dtype(DType::F32)
    }
}

/// Softmax attention of every head within each text; `qkv` rows (`3 x hidden` floats each)
/// hold queries, keys and values side by side. Returns `(tokens, hidden)`, row major.
///
/// Per (text, head): the head's keys transposed and its values gathered once, then each
/// query's scores are a vector sum over dimensions and its output a sum of value rows.
fn attention(qkv: &[f32], lens: &[usize], heads: usize, hidden: usize) -> Vec<f32> {
    let hd = hidden / heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let n: usize = lens.iter().sum();
    let mut out = vec![0f32; n * hidden];
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |s, &l| {
            let at = *s;
            *s += l;
            Some(at)
        })
        .collect();
    let items = lens.len() * heads;
    let dst = out.as_mut_ptr() as usize;
    let run = |range: std::ops::Range<usize>| {
        let mut scratch = (Vec::new(), Vec::new(), Vec::new());
        for item in range {
            let (seq, head) = (item / heads, item % heads);
            let h = Head {
                qkv,
                hidden,
                hd,
                scale,
                start: starts[seq],
                len: lens[seq],
                head,
            };
            // SAFETY: each (text, head) item writes only its rows' slice of the head's
            // columns; items are disjoint, each handed to one worker; `out` outlives the call.
            unsafe { attend_head(&h, &mut scratch, dst as *mut f32) };
        }
    };
    candle_core::utils::barrier_pool().execute_chunked(items, run);
    out
}

/// One (text, head) of [`attention`].
struct Head<'a> {
    qkv: &'a [f32],
    hidden: usize,
    hd: usize,
    scale: f32,
    /// The text's first row and length.
    start: usize,
    len: usize,
    head: usize,
}

/// Keys transposed, values gathered and scores: buffers reused between heads.
type Scratch = (Vec<f32>, Vec<f32>, Vec<f32>);

crate::simd::avx2! {
    /// Attention of one head within one text, into that head's columns of `out`
    /// (`(tokens, hidden)`, row major).
    ///
    /// # Safety
    /// `out` holds the text's rows and no other thread writes this head's columns of them.
    unsafe fn attend_head(h: &Head, scratch: &mut Scratch, out: *mut f32) {
        use crate::simd::{KEY_TILE, add_values, tile_scores};
        let (kt, vs, scores) = scratch;
        let (hd, len, width) = (h.hd, h.len, 3 * h.hidden);
        let row = |i: usize, part: usize| {
            let at = (h.start + i) * width + part * h.hidden + h.head * hd;
            &h.qkv[at..at + hd]
        };
        // Keys in tiles of KEY_TILE, each tile transposed (every dimension's keys side by
        // side, the last tile padded with zero keys), so that a query's scores against a tile
        // are accumulated in registers.
        let tiles = len.div_ceil(KEY_TILE);
        let tile = hd * KEY_TILE;
        kt.clear();
        kt.resize(tiles * tile, 0.0);
        vs.clear();
        for j in 0..len {
            let at = (j / KEY_TILE) * tile + j % KEY_TILE;
            for (d, &x) in row(j, 1).iter().enumerate() {
                kt[at + d * KEY_TILE] = x;
            }
            vs.extend_from_slice(row(j, 2));
        }
        scores.clear();
        scores.resize(tiles * KEY_TILE + hd, 0.0);
        let (scores, q) = scores.split_at_mut(tiles * KEY_TILE);
        for i in 0..len {
            for (s, &x) in q.iter_mut().zip(row(i, 0)) {
                *s = x * h.scale;
            }
            for (t, keys) in kt.chunks_exact(tile).enumerate() {
                scores[t * KEY_TILE..][..KEY_TILE].copy_from_slice(&tile_scores(q, keys));
            }
            let p = &mut scores[..len];
            let max = p.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            p.iter_mut().for_each(|x| *x = crate::simd::exp(*x - max));
            let inv = 1.0 / p.iter().sum::<f32>();
            p.iter_mut().for_each(|x| *x *= inv);
            // SAFETY: the caller's contract.
            let o = unsafe {
                std::slice::from_raw_parts_mut(out.add((h.start + i) * h.hidden + h.head * hd), hd)
            };
            add_values(o, p, vs, hd);
        }
    }
}

crate::simd::avx2! {
    /// [`gelu_erf`] of one slice.
    fn gelu_chunk(chunk: &mut [f32]) {
        for x in chunk {
            let z = *x * std::f32::consts::FRAC_1_SQRT_2;
            let a = z.abs();
            let t = 1.0 / (1.0 + 0.327_591_1 * a);
            let poly = t
                * (0.254_829_6
                    + t * (-0.284_496_74
                        + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
            let erf_abs = 1.0 - poly * crate::simd::exp(-a * a);
            let erf = if z < 0.0 { -erf_abs } else { erf_abs };
            *x *= 0.5 * (1.0 + erf);
        }
    }
}

/// `x * Phi(x)` in place (BERT's exact GELU), with erf by Abramowitz and Stegun 7.1.26
/// (error below 1.5e-7), branch-free so that it vectorises; libm's erf was a tenth of the
/// encoder's time.
fn gelu_erf(v: &mut [f32]) {
    let run = gelu_chunk;
    const CHUNK: usize = 1 << 14;
    if v.len() <= CHUNK {
        return run(v);
    }
    let addr = v.as_mut_ptr() as usize;
    let len = v.len();
    candle_core::utils::barrier_pool().execute_chunked(len.div_ceil(CHUNK), |items| {
        for c in items {
            let (a, b) = (c * CHUNK, len.min(c * CHUNK + CHUNK));
            // SAFETY: chunks are disjoint and each is handed to one worker; `v` outlives the
            // call.
            let part = unsafe { std::slice::from_raw_parts_mut((addr as *mut f32).add(a), b - a) };
            run(part);
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn gelu_matches_the_exact_formula() {
        let xs: Vec<f32> = (-2500..2500).map(|i| i as f32 / 500.0).collect();
        let mut ours = xs.clone();
        super::gelu_erf(&mut ours);
        for (x, g) in xs.iter().zip(ours) {
            let want = 0.5 * *x as f64 * (1.0 + libm_erf(*x as f64 / 2f64.sqrt()));
            assert!(
                (g as f64 - want).abs() < 2e-6 * (1.0 + want.abs()),
                "{x}: {g} vs {want}"
            );
        }
    }

    /// erf by its Taylor series (converges everywhere; enough terms for |x| < 6).
    fn libm_erf(x: f64) -> f64 {
        let (mut term, mut sum) = (x, x);
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}
