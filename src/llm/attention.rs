//! Causal self-attention over a key/value cache that grows in place, and rotary position
//! embeddings: the part of a forward pass that depends on how much context came before.
//!
//! candle-transformers' models concatenate the whole cache with each new token (a copy of every
//! key and value of every layer, per token), copy keys and values once more per query head
//! (`repeat_kv`) and materialise the full score matrix. Here the cache is one buffer per layer
//! that new rows are appended to; a query head reads its key/value head's rows where they lie
//! (grouped-query attention without copies); scores live only as one row per query and head.
//! Decoding (a few query rows) is split over rows and heads on candle's own thread pool, which
//! the matrix multiplications around it keep warm; a prompt pass (many rows) multiplies each
//! key/value head's block of queries with its keys as one matrix product, the grouped query
//! heads stacked so that nothing is copied per head.

use candle_core::utils::barrier_pool;
use candle_core::{Device, Tensor};

/// Keys and values of the positions seen so far, for one layer: row `r` holds position
/// `start + r`, with the keys (or values) of every KV head side by side.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<f32>,
    v: Vec<f32>,
    /// Floats per row: KV heads x head size.
    width: usize,
    /// Position of row 0 (rows before it left a sliding window).
    start: usize,
    /// A sliding-window layer only ever looks this far back.
    window: Option<usize>,
}

impl KvCache {
    pub fn new(kv_heads: usize, head_dim: usize, window: Option<usize>) -> Self {
        KvCache {
            k: Vec::new(),
            v: Vec::new(),
            width: kv_heads * head_dim,
            start: 0,
            window,
        }
    }

    /// Forgets everything: the next position is 0.
    pub fn clear(&mut self) {
        self.k.clear();
        self.v.clear();
        self.start = 0;
    }

    /// The position the next appended row gets.
    pub fn next_pos(&self) -> usize {
        self.start + self.k.len() / self.width.max(1)
    }

    /// Whether [`KvCache::truncate`] to `pos` keeps everything a later query needs: false
    /// past the end, or where a window already dropped rows before `pos` that are still
    /// visible from it.
    pub fn can_truncate(&self, pos: usize) -> bool {
        let needed_from = match self.window {
            Some(w) => pos.saturating_sub(w.saturating_sub(1)),
            None => 0,
        };
        pos <= self.next_pos() && needed_from >= self.start
    }

    /// Drops the rows of positions `pos` and later, so that the sequence continues at `pos`;
    /// false, and nothing changed, when [`KvCache::can_truncate`] says no.
    pub fn truncate(&mut self, pos: usize) -> bool {
        if !self.can_truncate(pos) {
            return false;
        }
        let rows = pos - self.start;
        self.k.truncate(rows * self.width);
        self.v.truncate(rows * self.width);
        true
    }

    /// Appends the keys and values of consecutive positions (rows of `width` floats).
    pub fn append(&mut self, k: &[f32], v: &[f32]) {
        debug_assert_eq!(k.len(), v.len());
        debug_assert_eq!(k.len() % self.width.max(1), 0);
        // A window layer drops what no later query can see, in one move once the dead rows
        // outnumber the live ones, so that the cost per token stays constant.
        if let Some(w) = self.window {
            let rows = self.k.len() / self.width.max(1);
            let next = self.next_pos();
            let keep_from = next.saturating_sub(w.saturating_sub(1));
            let dead = keep_from.saturating_sub(self.start).min(rows);
            if dead > w.max(64) {
                self.k.drain(..dead * self.width);
                self.v.drain(..dead * self.width);
                self.start += dead;
            }
        }
        self.k.extend_from_slice(k);
        self.v.extend_from_slice(v);
    }
}

/// The shape of one attention call.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Multiplies each score before the softmax (usually 1/sqrt(head size)).
    pub scale: f32,
}

/// Query rows from which a pass goes through matrix products instead of row by row.
const BATCHED_ROWS: usize = 8;

/// Attention of `t` query rows at positions `pos..pos + t` (`q`: `t x heads x head_dim`, row
/// major, as a projection's output) over `cache`, which must already hold their own keys and
/// values. Writes `t x heads x head_dim` into `out`: the layout the output projection takes.
pub fn attend(
    q: &[f32],
    t: usize,
    pos: usize,
    s: Shape,
    cache: &KvCache,
    out: &mut [f32],
) -> candle_core::Result<()> {
    let hd = s.head_dim;
    assert_eq!(q.len(), t * s.heads * hd, "query size");
    assert_eq!(out.len(), q.len(), "output size");
    assert!(
        s.kv_heads > 0 && s.heads.is_multiple_of(s.kv_heads),
        "head grouping"
    );
    assert!(
        cache.next_pos() >= pos + t,
        "the cache lacks the queries' own rows"
    );
    if t >= BATCHED_ROWS {
        return attend_batched(q, t, pos, s, cache, out);
    }
    let items = t * s.heads;
    let out_addr = out.as_mut_ptr() as usize;
    let run = |range: std::ops::Range<usize>| {
        let mut scores = Vec::new();
        for item in range {
            let (row, head) = (item / s.heads, item % s.heads);
            // SAFETY: each item owns `out[item * hd..(item + 1) * hd]`: items are disjoint and
            // each is handed to exactly one worker, and `out` outlives the pool's call.
            let dst = unsafe {
                std::slice::from_raw_parts_mut((out_addr as *mut f32).add(item * hd), hd)
            };
            let query = &q[item * hd..(item + 1) * hd];
            one_head(query, pos + row, head, s, cache, &mut scores, dst);
        }
    };
    // Tiny calls (one decoded token of a small model) are not worth waking the pool for.
    if items * cache.next_pos() * hd < 1 << 14 {
        run(0..items);
    } else {
        barrier_pool().execute_chunked(items, run);
    }
    Ok(())
}

/// [`attend`] for many query rows: per KV head, its group's query rows (`group x t`) times its
/// keys, masked (causal, and the window), softmax, times its values.
fn attend_batched(
    q: &[f32],
    t: usize,
    pos: usize,
    s: Shape,
    cache: &KvCache,
    out: &mut [f32],
) -> candle_core::Result<()> {
    let dev = Device::Cpu;
    let (hd, kv, group) = (s.head_dim, s.kv_heads, s.heads / s.kv_heads);
    // Keys visible to at least one of the rows: from the first row's window on.
    let first = match cache.window {
        Some(w) => (pos + 1).saturating_sub(w).max(cache.start),
        None => cache.start,
    };
    let (r0, r1) = (first - cache.start, pos + t - cache.start);
    let n = r1 - r0;
    let rows = |data: &[f32]| -> candle_core::Result<Tensor> {
        Tensor::from_slice(&data[r0 * cache.width..r1 * cache.width], (n, kv, hd), &dev)?
            .transpose(0, 1)?
            .contiguous()
    };
    let (k, v) = (rows(&cache.k)?, rows(&cache.v)?);
    // Head h belongs to KV head h / group: (t, kv, group, hd) -> (kv, group x t, hd).
    let q = Tensor::from_slice(q, (t, kv, group, hd), &dev)?
        .permute((1, 2, 0, 3))?
        .contiguous()?
        .reshape((kv, group * t, hd))?;
    let scores = (q.matmul(&k.t()?)? * f64::from(s.scale))?.reshape((kv, group, t, n))?;
    let mut mask = Vec::with_capacity(t * n);
    for i in 0..t {
        let qpos = pos + i;
        for j in 0..n {
            let kpos = first + j;
            let visible = kpos <= qpos && cache.window.is_none_or(|w| qpos - kpos < w);
            mask.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    let mask = Tensor::from_vec(mask, (t, n), &dev)?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask)?)?;
    let o = probs
        .reshape((kv, group * t, n))?
        .matmul(&v)?
        .reshape((kv, group, t, hd))?
        .permute((2, 0, 1, 3))?
        .contiguous()?
        .flatten_all()?
        .to_vec1::<f32>()?;
    out.copy_from_slice(&o);
    Ok(())
}

/// One query row of one head: softmax over the visible keys, then the weighted sum of values.
fn one_head(
    query: &[f32],
    qpos: usize,
    head: usize,
    s: Shape,
    cache: &KvCache,
    scores: &mut Vec<f32>,
    dst: &mut [f32],
) {
    let hd = s.head_dim;
    let kvh = head / (s.heads / s.kv_heads);
    let first = match cache.window {
        Some(w) => (qpos + 1).saturating_sub(w).max(cache.start),
        None => cache.start,
    };
    let (r0, r1) = (first - cache.start, qpos + 1 - cache.start);
    let off = kvh * hd;
    scores.clear();
    let mut max = f32::NEG_INFINITY;
    for r in r0..r1 {
        let key = &cache.k[r * cache.width + off..r * cache.width + off + hd];
        let x = dot(query, key) * s.scale;
        max = max.max(x);
        scores.push(x);
    }
    let mut sum = 0.0;
    for x in scores.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    dst.fill(0.0);
    for (r, p) in (r0..r1).zip(scores.iter()) {
        let value = &cache.v[r * cache.width + off..r * cache.width + off + hd];
        axpy(*p / sum, value, dst);
    }
}

/// Dot product in eight independent lanes, which the compiler turns into vector code.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y += a * x`.
#[inline]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// How a model pairs the dimensions that rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rope {
    /// (2i, 2i + 1): llama's GGUF layout.
    Interleaved,
    /// (i, i + d/2): Qwen, Phi-3, Gemma ("NeoX").
    Halves,
}

/// Inverse rotary frequencies of a rotary size: `1 / base^(2i / rot_dim)`.
pub fn inv_freq(rot_dim: usize, base: f32) -> Vec<f32> {
    (0..rot_dim / 2)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / rot_dim as f32))
        .collect()
}

/// Rotary angles' cosines and sines for `t` positions from `pos`, each position multiplied by
/// `scale`: `(cos, sin)`, each `t x inv.len()`.
pub fn rope_tables(inv: &[f32], pos: usize, t: usize, scale: f32) -> (Vec<f32>, Vec<f32>) {
    let mut cos = Vec::with_capacity(t * inv.len());
    let mut sin = Vec::with_capacity(t * inv.len());
    for p in pos..pos + t {
        for f in inv {
            let (s, c) = (p as f32 * scale * f).sin_cos();
            cos.push(c);
            sin.push(s);
        }
    }
    (cos, sin)
}

/// Rotates the first `rot_dim` dimensions of every head of `x` (`t x heads x head_dim`) in
/// place by the angles of [`rope_tables`].
pub fn apply_rope(
    x: &mut [f32],
    heads: usize,
    head_dim: usize,
    rot_dim: usize,
    style: Rope,
    tables: &(Vec<f32>, Vec<f32>),
) {
    let half = rot_dim / 2;
    let (cos, sin) = tables;
    for (i, head) in x.chunks_exact_mut(head_dim).enumerate() {
        let row = i / heads;
        let (c, s) = (&cos[row * half..][..half], &sin[row * half..][..half]);
        match style {
            Rope::Interleaved => {
                for j in 0..half {
                    let (a, b) = (head[2 * j], head[2 * j + 1]);
                    head[2 * j] = a * c[j] - b * s[j];
                    head[2 * j + 1] = a * s[j] + b * c[j];
                }
            }
            Rope::Halves => {
                for j in 0..half {
                    let (a, b) = (head[j], head[j + half]);
                    head[j] = a * c[j] - b * s[j];
                    head[j + half] = a * s[j] + b * c[j];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook computation: scores for every key, a mask, softmax, weighted values.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        q: &[f32],
        keys: &[f32],
        values: &[f32],
        t: usize,
        pos: usize,
        s: Shape,
        window: Option<usize>,
    ) -> Vec<f32> {
        let hd = s.head_dim;
        let width = s.kv_heads * hd;
        let mut out = vec![0f32; q.len()];
        for row in 0..t {
            let qpos = pos + row;
            for h in 0..s.heads {
                let kvh = h * s.kv_heads / s.heads;
                let qv = &q[(row * s.heads + h) * hd..][..hd];
                let mut w: Vec<f64> = (0..=qpos)
                    .map(|j| {
                        let visible = window.is_none_or(|w| qpos - j < w);
                        if !visible {
                            return f64::NEG_INFINITY;
                        }
                        let k = &keys[j * width + kvh * hd..][..hd];
                        qv.iter().zip(k).map(|(a, b)| (a * b) as f64).sum::<f64>() * s.scale as f64
                    })
                    .collect();
                let m = w.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let sum: f64 = w.iter().map(|x| (x - m).exp()).sum();
                for x in w.iter_mut() {
                    *x = (*x - m).exp() / sum;
                }
                let o = &mut out[(row * s.heads + h) * hd..][..hd];
                for (j, p) in w.iter().enumerate() {
                    let v = &values[j * width + kvh * hd..][..hd];
                    for d in 0..hd {
                        o[d] += (*p * v[d] as f64) as f32;
                    }
                }
            }
        }
        out
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut x = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Prompt and decode steps of awkward sizes, grouped heads and windows: the cache and
        /// the attention agree with the textbook computation over all positions so far.
        #[test]
        fn matches_the_reference(
            kv_heads in 1usize..4,
            group in 1usize..4,
            head_dim in prop::sample::select(vec![3usize, 8, 17, 64]),
            steps in prop::collection::vec(1usize..40, 1..5),
            window in prop::option::of(1usize..50),
            seed in any::<u64>(),
        ) {
            let s = Shape { heads: kv_heads * group, kv_heads, head_dim, scale: 0.3 };
            let width = kv_heads * head_dim;
            let total: usize = steps.iter().sum();
            let keys = random(total * width, seed);
            let values = random(total * width, seed ^ 1);
            let mut cache = KvCache::new(kv_heads, head_dim, window);
            let mut pos = 0;
            for (i, &t) in steps.iter().enumerate() {
                let q = random(t * s.heads * head_dim, seed ^ (i as u64 + 7));
                cache.append(&keys[pos * width..(pos + t) * width], &values[pos * width..(pos + t) * width]);
                let mut out = vec![0f32; q.len()];
                attend(&q, t, pos, s, &cache, &mut out).unwrap();
                let want = reference(&q, &keys, &values, t, pos, s, window);
                for (a, b) in out.iter().zip(&want) {
                    prop_assert!((a - b).abs() < 1e-4, "{a} vs {b}");
                }
                pos += t;
            }
        }
    }

    #[test]
    fn a_long_decode_in_a_window_keeps_its_cache_small() {
        let mut cache = KvCache::new(1, 4, Some(8));
        let s = Shape {
            heads: 1,
            kv_heads: 1,
            head_dim: 4,
            scale: 1.0,
        };
        for pos in 0..1000 {
            cache.append(&[1.0; 4], &[pos as f32; 4]);
            let mut out = [0f32; 4];
            attend(&[0.0; 4], 1, pos, s, &cache, &mut out).unwrap();
            // Equal scores: the mean of the last eight values (or fewer at the start).
            let n = (pos + 1).min(8) as f32;
            let want = (0..=pos).rev().take(8).map(|p| p as f32).sum::<f32>() / n;
            assert!((out[0] - want).abs() < 1e-3, "{pos}: {} vs {want}", out[0]);
        }
        assert!(cache.k.len() <= 4 * (8 + 64 + 1) * 2);
    }

    #[test]
    fn a_cache_rewinds_only_where_it_still_holds_what_later_queries_see() {
        let mut c = KvCache::new(1, 2, None);
        c.append(&[1.0; 20], &[1.0; 20]);
        assert!(c.truncate(4) && c.next_pos() == 4);
        assert!(!c.truncate(5));
        let mut w = KvCache::new(1, 1, Some(4));
        for _ in 0..200 {
            w.append(&[1.0], &[1.0]);
        }
        assert!(w.start > 0);
        assert!(w.truncate(199) && w.next_pos() == 199);
        assert!(!w.truncate(w.start));
    }

    #[test]
    fn scaled_positions_turn_like_earlier_ones() {
        let inv = inv_freq(16, 1e6);
        let (c8, s8) = rope_tables(&inv, 8, 1, 0.125);
        let (c1, s1) = rope_tables(&inv, 1, 1, 1.0);
        for (a, b) in c8.iter().zip(&c1).chain(s8.iter().zip(&s1)) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn rotation_styles_pair_the_documented_dimensions() {
        let tables = rope_tables(&inv_freq(4, 10_000.0), 1, 1, 1.0);
        let mut a = vec![1.0, 0.0, 0.0, 0.0];
        apply_rope(&mut a, 1, 4, 4, Rope::Interleaved, &tables);
        // Dimension 0 turns towards dimension 1 by one radian (position 1, frequency 1).
        assert!((a[0] - 1f32.cos()).abs() < 1e-6 && (a[1] - 1f32.sin()).abs() < 1e-6);
        let mut b = vec![1.0, 0.0, 0.0, 0.0];
        apply_rope(&mut b, 1, 4, 4, Rope::Halves, &tables);
        assert!((b[0] - 1f32.cos()).abs() < 1e-6 && (b[2] - 1f32.sin()).abs() < 1e-6);
    }
}
