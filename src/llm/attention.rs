//! Causal self-attention over a key/value cache that grows in place, and rotary position
//! embeddings: the part of a forward pass that depends on how much context came before.
//!
//! candle-transformers' models concatenate the whole cache with each new token (a copy of every
//! key and value of every layer, per token), copy keys and values once more per query head
//! (`repeat_kv`) and materialise the full score matrix. Here the cache is one buffer per layer
//! that new rows are appended to; a query head reads its key/value head's rows where they lie
//! (grouped-query attention without copies). Attention runs in tiles of keys with an online
//! softmax (flash attention's scheme): scores exist only for one tile of 32 keys at a time,
//! so a long prompt needs no score matrix, and every query head of a KV head's group reads
//! each key and value once per tile. Work items go to candle's thread pool, which the matrix
//! products around keep warm.

use crate::simd::{KEY_TILE, add_values, tile_scores};
use candle_core::utils::barrier_pool;
use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::simd::exp;

/// Keys and values of the positions seen so far, for one layer. Row `r` holds position
/// `start + r`. Values are rows of every KV head side by side; keys are stored in tiles of
/// [`KEY_TILE`] rows, each tile transposed (for every KV head and dimension, its rows side by
/// side), so that a query's scores against a tile are a vector sum over dimensions with no
/// transposing at attention time.
///
/// Both are half precision, as in llama.cpp: decoding reads the whole cache for every token,
/// and the kernels widen eight elements per instruction (F16C) as they load them.
#[derive(Debug, Clone)]
pub struct KvCache {
    k: Vec<f16>,
    v: Vec<f16>,
    /// Rows held.
    rows: usize,
    /// Floats per row: KV heads x head size.
    width: usize,
    /// Position of row 0 (rows before it left a sliding window; a multiple of tiles).
    start: usize,
    /// A sliding-window layer only ever looks this far back.
    window: Option<usize>,
}

impl KvCache {
    pub fn new(kv_heads: usize, head_dim: usize, window: Option<usize>) -> Self {
        KvCache {
            k: Vec::new(),
            v: Vec::new(),
            rows: 0,
            width: kv_heads * head_dim,
            start: 0,
            window,
        }
    }

    /// Forgets everything: the next position is 0.
    pub fn clear(&mut self) {
        self.k.clear();
        self.v.clear();
        self.rows = 0;
        self.start = 0;
    }

    /// The position the next appended row gets.
    pub fn next_pos(&self) -> usize {
        self.start + self.rows
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
        self.rows = pos - self.start;
        self.v.truncate(self.rows * self.width);
        // A partial last tile keeps its stale lanes: they are never read, and appends
        // overwrite them.
        self.k
            .truncate(self.rows.div_ceil(KEY_TILE) * KEY_TILE * self.width);
        true
    }

    /// Appends the keys and values of consecutive positions (rows of `width` floats).
    pub fn append(&mut self, k: &[f32], v: &[f32]) {
        assert_eq!(k.len(), v.len(), "a key row for every value row");
        let width = self.width.max(1);
        assert_eq!(k.len() % width, 0, "whole rows");
        let tile = KEY_TILE * self.width;
        // A window layer drops what no later query can see, whole tiles at a time, once the
        // dead rows outnumber the live ones, so that the cost per token stays constant.
        if let Some(w) = self.window {
            let keep_from = self.next_pos().saturating_sub(w.saturating_sub(1));
            let dead = keep_from.saturating_sub(self.start).min(self.rows);
            let dead = dead / KEY_TILE * KEY_TILE;
            if dead > w.max(64) {
                self.k.drain(..dead / KEY_TILE * tile);
                self.v.drain(..dead * self.width);
                self.start += dead;
                self.rows -= dead;
            }
        }
        let mut narrow = vec![f16::ZERO; k.len()];
        narrow.convert_from_f32_slice(k);
        for row in narrow.chunks_exact(width) {
            let (t, lane) = (self.rows / KEY_TILE, self.rows % KEY_TILE);
            if self.k.len() < (t + 1) * tile {
                self.k.resize((t + 1) * tile, f16::ZERO);
            }
            let dst = &mut self.k[t * tile..(t + 1) * tile];
            for (c, &x) in row.iter().enumerate() {
                dst[c * KEY_TILE + lane] = x;
            }
            self.rows += 1;
        }
        let old = self.v.len();
        self.v.resize(old + v.len(), f16::ZERO);
        self.v[old..].convert_from_f32_slice(v);
    }

    /// Tile `t` of the keys: `width x KEY_TILE`.
    fn key_tile(&self, t: usize) -> &[f16] {
        let tile = KEY_TILE * self.width;
        &self.k[t * tile..(t + 1) * tile]
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

/// Query positions per work item of a prompt pass.
const QUERY_BLOCK: usize = 16;
/// Keys per work item when a few query rows (decoding) split the cache between workers.
const DECODE_SPLIT: usize = 256;

/// Attention of `t` query rows at positions `pos..pos + t` (`q`: `t x heads x head_dim`, row
/// major, as a projection's output) over `cache`, which must already hold their own keys and
/// values. Writes `t x heads x head_dim` into `out`: the layout the output projection takes.
///
/// Work items are (KV head, block of query rows, range of keys): every query head of a KV
/// head's group reads each key and value once per item. A prompt pass splits over query
/// blocks; decoding (a few rows) splits the keys, and the partial results merge by their
/// softmax maxima and sums.
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
    if t == 0 {
        return Ok(());
    }
    let group = s.heads / s.kv_heads;
    let blocks = t.div_ceil(QUERY_BLOCK);
    let keys = pos + t - visible_from(cache, pos);
    let splits = if t <= 4 {
        keys.div_ceil(DECODE_SPLIT).clamp(1, 8)
    } else {
        1
    };
    let items = s.kv_heads * blocks * splits;
    // One partial result (max, sum, hd outputs) per query head and row, per split.
    let stride = hd + 2;
    let mut partial = vec![0f32; splits * t * s.heads * stride];
    let part_addr = partial.as_mut_ptr() as usize;
    let run = |range: std::ops::Range<usize>| {
        let mut scratch = Scratch::new(hd, group * QUERY_BLOCK);
        for item in range {
            let kvh = item % s.kv_heads;
            let block = item / s.kv_heads % blocks;
            let split = item / s.kv_heads / blocks;
            let rows = block * QUERY_BLOCK..t.min(block * QUERY_BLOCK + QUERY_BLOCK);
            let lo = visible_from(cache, pos + rows.start);
            let hi = pos + rows.end;
            let per = (hi - lo).div_ceil(splits).next_multiple_of(KEY_TILE);
            let span = (lo + split * per).min(hi)..(lo + split * per + per).min(hi);
            // SAFETY: an item writes only the partials of its own split, rows and KV head's
            // query heads; items are disjoint, each is handed to one worker, and `partial`
            // outlives the pool's call.
            let part = unsafe {
                std::slice::from_raw_parts_mut(
                    (part_addr as *mut f32).add(split * t * s.heads * stride),
                    t * s.heads * stride,
                )
            };
            let item = Item {
                rows,
                kvh,
                keys: span,
            };
            tile(q, pos, &item, s, cache, &mut scratch, part);
        }
    };
    if items == 1 || t * s.heads * keys * hd < 1 << 14 {
        run(0..items);
    } else {
        barrier_pool().execute_chunked(items, run);
    }
    // Merge the splits: rescale each by its maximum against the overall one.
    for (i, o) in out.chunks_exact_mut(hd).enumerate() {
        let parts = (0..splits).map(|sp| &partial[(sp * t * s.heads + i) * stride..][..stride]);
        let max = parts.clone().fold(f32::NEG_INFINITY, |m, p| m.max(p[0]));
        o.fill(0.0);
        let mut sum = 0f32;
        for p in parts {
            if p[1] == 0.0 {
                continue;
            }
            let w = (p[0] - max).exp();
            sum += p[1] * w;
            for (x, y) in o.iter_mut().zip(&p[2..]) {
                *x += w * y;
            }
        }
        if sum > 0.0 {
            let inv = 1.0 / sum;
            o.iter_mut().for_each(|x| *x *= inv);
        }
    }
    Ok(())
}

/// The first position a query at `qpos` sees.
fn visible_from(cache: &KvCache, qpos: usize) -> usize {
    match cache.window {
        Some(w) => (qpos + 1).saturating_sub(w).max(cache.start),
        None => cache.start,
    }
}

/// Per-worker buffers of [`tile`].
struct Scratch {
    /// Scaled queries of the item, `rows x head_dim`.
    q: Vec<f32>,
    /// Running maximum, sum and output of each query.
    max: Vec<f32>,
    sum: Vec<f32>,
    o: Vec<f32>,
}

impl Scratch {
    fn new(hd: usize, rows: usize) -> Scratch {
        Scratch {
            q: vec![0.0; rows * hd],
            max: vec![0.0; rows],
            sum: vec![0.0; rows],
            o: vec![0.0; rows * hd],
        }
    }
}

/// A work item of [`attend`]: the query heads of KV head `kvh` at query rows `rows`, against
/// the keys at positions `keys`.
struct Item {
    rows: std::ops::Range<usize>,
    kvh: usize,
    keys: std::ops::Range<usize>,
}

crate::simd::avx2! {
/// One [`Item`] (queries `q` at positions from `pos`) with an online softmax: partial (max,
/// sum, unnormalised output) per query into `part`.
fn tile(
    q: &[f32],
    pos: usize,
    item: &Item,
    s: Shape,
    cache: &KvCache,
    sc: &mut Scratch,
    part: &mut [f32],
) {
    let (rows, kvh, keys) = (item.rows.clone(), item.kvh, item.keys.clone());
    let (hd, group) = (s.head_dim, s.heads / s.kv_heads);
    let n = rows.len() * group;
    // Query i is row rows.start + i / group, head kvh * group + i % group.
    for i in 0..n {
        let (row, head) = (rows.start + i / group, kvh * group + i % group);
        let src = &q[(row * s.heads + head) * hd..][..hd];
        for (d, x) in sc.q[i * hd..][..hd].iter_mut().zip(src) {
            *d = x * s.scale;
        }
    }
    sc.max[..n].fill(f32::NEG_INFINITY);
    sc.sum[..n].fill(0.0);
    sc.o[..n * hd].fill(0.0);
    let off = kvh * hd;
    // Whole tiles of the cache, from the one holding the first key.
    let mut t = (keys.start - cache.start) / KEY_TILE;
    while cache.start + t * KEY_TILE < keys.end {
        let k0 = cache.start + t * KEY_TILE;
        let kt = cache.key_tile(t);
        t += 1;
        for i in 0..n {
            let qpos = pos + rows.start + i / group;
            // Keys this query sees within the tile: [a, b).
            let a = visible_from(cache, qpos).max(keys.start).max(k0) - k0;
            let b = (qpos + 1)
                .min(keys.end)
                .min(k0 + KEY_TILE)
                .saturating_sub(k0);
            if a >= b {
                continue;
            }
            let scores = tile_scores(&sc.q[i * hd..][..hd], &kt[off * KEY_TILE..]);
            let visible = |j: usize| j >= a && j < b;
            let tile_max = scores
                .iter()
                .enumerate()
                .fold(f32::NEG_INFINITY, |m, (j, &x)| if visible(j) { m.max(x) } else { m });
            let new_max = sc.max[i].max(tile_max);
            let rescale = exp(sc.max[i] - new_max);
            let mut p = [0f32; KEY_TILE];
            for (j, (p, &x)) in p.iter_mut().zip(&scores).enumerate() {
                *p = if visible(j) { exp(x - new_max) } else { 0.0 };
            }
            sc.max[i] = new_max;
            sc.sum[i] = sc.sum[i] * rescale + lane_sum(&p);
            let o = &mut sc.o[i * hd..][..hd];
            if rescale != 1.0 {
                o.iter_mut().for_each(|x| *x *= rescale);
            }
            let first = k0 - cache.start;
            let values = &cache.v[first * cache.width..];
            add_values(o, &p[a..b], &values[a * cache.width + off..], cache.width);
        }
    }
    let stride = hd + 2;
    for i in 0..n {
        let (row, head) = (rows.start + i / group, kvh * group + i % group);
        let dst = &mut part[(row * s.heads + head) * stride..][..stride];
        dst[0] = sc.max[i];
        dst[1] = sc.sum[i];
        dst[2..].copy_from_slice(&sc.o[i * hd..][..hd]);
    }
}
}

/// The sum of a tile's weights, in eight lanes then across them.
#[inline(always)]
fn lane_sum(p: &[f32; KEY_TILE]) -> f32 {
    let mut lanes = [0f32; 8];
    for c in p.chunks_exact(8) {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x;
        }
    }
    lanes.iter().sum()
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
    use crate::simd::random;
    use proptest::prelude::*;

    /// The textbook computation: scores for every key, a mask, softmax, weighted values.
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
        // The cache holds half precision: the reference reads what it holds.
        let half =
            |x: &[f32]| -> Vec<f32> { x.iter().map(|&v| f16::from_f32(v).to_f32()).collect() };
        let (keys, values) = (&half(keys)[..], &half(values)[..]);
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

    /// Long contexts: decoding splits the cache between workers and merges their partial
    /// softmaxes; a prompt pass spans several query blocks and key tiles.
    #[test]
    fn long_contexts_match_the_reference() {
        for window in [None, Some(300)] {
            let s = Shape {
                heads: 6,
                kv_heads: 2,
                head_dim: 64,
                scale: 0.125,
            };
            let width = 2 * 64;
            let steps = [600usize, 1, 1, 3, 37];
            let total: usize = steps.iter().sum();
            let keys = random(total * width, 5);
            let values = random(total * width, 6);
            let mut cache = KvCache::new(2, 64, window);
            let mut pos = 0;
            for (i, &t) in steps.iter().enumerate() {
                let q = random(t * s.heads * 64, 100 + i as u64);
                cache.append(
                    &keys[pos * width..(pos + t) * width],
                    &values[pos * width..(pos + t) * width],
                );
                let mut out = vec![0f32; q.len()];
                attend(&q, t, pos, s, &cache, &mut out).unwrap();
                let want = reference(&q, &keys, &values, t, pos, s, window);
                for (a, b) in out.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-4, "{window:?} step {i}: {a} vs {b}");
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
        assert!(cache.v.len() <= 4 * (8 + 64 + KEY_TILE + 1));
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
