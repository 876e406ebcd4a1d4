//! Quantized linear layers: GGUF weights converted at load into the two layouts folio's own
//! kernels multiply, and those kernels, picked at run time for the CPU at hand.
//!
//! Every GGUF block type handled here is small integers times a scale per block (and, for
//! some, plus an offset per block). The layouts keep exactly those integers and scales, so
//! nothing is rounded again at load: four-bit codes (Q4_0, Q4_1, Q4_K) stay four bits, five-,
//! six- and eight-bit codes (Q5_0, Q5_1, Q5_K, Q6_K, Q8_0) become one byte each. A product
//! quantizes the activations once, in blocks of 32, to bytes with a scale (llama.cpp's Q8
//! blocks), then multiplies integers in register tiles of up to four tokens by several weight
//! rows, so that a prompt pass reads each weight block once per tile of tokens rather than once
//! per token. Output rows are shared out over candle's thread pool, which the rest of the
//! forward pass keeps warm.
//!
//! Kernel paths: `scalar` (any CPU, and the reference the others are tested against), `avx2`
//! (AVX2 and FMA) and `avx512vnni` (AVX-512 VL with VNNI byte dot products, on 256-bit
//! registers). The best one the CPU has is chosen at run time; `FOLIO_KERNELS` forces one.
//! Types without a kernel here (F16, F32, Q2_K, Q3_K, ...) run on candle's own `QMatMul`.

#[cfg(target_arch = "x86_64")]
mod x86;

use std::ops::Range;
use std::sync::OnceLock;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Storage, Tensor, bail};
use half::f16;

/// Activations and 32-element weight blocks share this size.
const BLOCK: usize = 32;

/// A family of kernels, one per instruction set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Scalar,
    Avx2,
    Avx512Vnni,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::Scalar, Path::Avx2, Path::Avx512Vnni];

    pub fn name(self) -> &'static str {
        match self {
            Path::Scalar => "scalar",
            Path::Avx2 => "avx2",
            Path::Avx512Vnni => "avx512vnni",
        }
    }

    /// Whether this CPU runs the path.
    pub fn supported(self) -> bool {
        match self {
            Path::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Path::Avx512Vnni => {
                Path::Avx2.supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The fastest path this CPU runs.
    pub fn best() -> Path {
        Path::ALL
            .into_iter()
            .rev()
            .find(|p| p.supported())
            .unwrap_or(Path::Scalar)
    }

    /// The path every product uses: `FOLIO_KERNELS` (scalar, avx2, avx512vnni) when set and
    /// supported, else the best one.
    pub fn current() -> Path {
        static CHOSEN: OnceLock<Path> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let wanted = std::env::var("FOLIO_KERNELS").ok();
            match wanted.as_deref().map(str::trim) {
                None | Some("") | Some("auto") => Path::best(),
                Some(name) => match Path::ALL.into_iter().find(|p| p.name() == name) {
                    Some(p) if p.supported() => p,
                    Some(_) => {
                        tracing::warn!(name, "FOLIO_KERNELS names kernels this CPU lacks");
                        Path::best()
                    }
                    None => {
                        tracing::warn!(name, "FOLIO_KERNELS is not scalar, avx2 or avx512vnni");
                        Path::best()
                    }
                },
            }
        })
    }
}

/// How the integer codes of a weight matrix are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codes {
    /// Four bits, 0..=15; byte `i` of a block holds element `i` (low nibble) and `i + 16`.
    U4,
    /// One signed byte per element, a scale per 32.
    I8,
    /// One signed byte per element, a scale per 16 (Q6_K's sub-blocks).
    I8Half,
}

/// A weight matrix of `n` rows (outputs) by `k` columns (inputs) in one of folio's layouts.
/// Element `(r, c)` is `code * scale + min` of its block.
pub struct QWeights {
    n: usize,
    k: usize,
    codes: Codes,
    /// Row-major codes: `k / 2` bytes per row for [`Codes::U4`], `k` otherwise.
    qs: Vec<u8>,
    /// A scale per block of 32 (per 16 for [`Codes::I8Half`]), row-major.
    scales: Vec<f32>,
    /// An offset per block of 32, for types that have one.
    mins: Option<Vec<f32>>,
    source: GgmlDType,
}

/// One decoded block of 32 elements.
struct Sub {
    q: [i8; BLOCK],
    /// The scale of elements 0..16 and of 16..32 (equal unless the type has 16-blocks).
    d: [f32; 2],
    m: f32,
}

fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K super-block (ggml's packing).
fn k_scale_min(j: usize, s: &[u8]) -> (f32, f32) {
    if j < 4 {
        ((s[j] & 63) as f32, (s[j + 4] & 63) as f32)
    } else {
        (
            ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4)) as f32,
            ((s[j + 4] >> 4) | ((s[j] >> 6) << 4)) as f32,
        )
    }
}

/// The layout a GGUF type converts to, or `None` when it has no kernel here.
fn codes_for(t: GgmlDType) -> Option<(Codes, bool)> {
    Some(match t {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q4K => (Codes::U4, true),
        GgmlDType::Q5_0 | GgmlDType::Q8_0 => (Codes::I8, false),
        GgmlDType::Q5_1 | GgmlDType::Q5K => (Codes::I8, true),
        GgmlDType::Q6K => (Codes::I8Half, false),
        _ => return None,
    })
}

/// Decodes one GGUF block of type `t` into its 32-element sub-blocks.
fn decode_block(t: GgmlDType, b: &[u8], out: &mut Vec<Sub>) {
    let blank = || Sub {
        q: [0; BLOCK],
        d: [0.0; 2],
        m: 0.0,
    };
    match t {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 => {
            let d = half_at(b, 0);
            let (m, qs) = if t == GgmlDType::Q4_0 {
                (-8.0 * d, &b[2..18])
            } else {
                (half_at(b, 2), &b[4..20])
            };
            let mut s = blank();
            for (i, &byte) in qs.iter().enumerate() {
                s.q[i] = (byte & 0xF) as i8;
                s.q[i + 16] = (byte >> 4) as i8;
            }
            s.d = [d; 2];
            s.m = m;
            out.push(s);
        }
        GgmlDType::Q5_0 | GgmlDType::Q5_1 => {
            let d = half_at(b, 0);
            let (m, rest) = if t == GgmlDType::Q5_0 {
                (0.0, &b[2..])
            } else {
                (half_at(b, 2), &b[4..])
            };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let qs = &rest[4..20];
            let offset = if t == GgmlDType::Q5_0 { 16 } else { 0 };
            let mut s = blank();
            for (i, &byte) in qs.iter().enumerate() {
                let lo = (byte & 0xF) | (((qh >> i) & 1) as u8) << 4;
                let hi = (byte >> 4) | (((qh >> (i + 16)) & 1) as u8) << 4;
                s.q[i] = lo as i8 - offset;
                s.q[i + 16] = hi as i8 - offset;
            }
            s.d = [d; 2];
            s.m = m;
            out.push(s);
        }
        GgmlDType::Q8_0 => {
            let mut s = blank();
            for (q, &v) in s.q.iter_mut().zip(&b[2..34]) {
                *q = v as i8;
            }
            s.d = [half_at(b, 0); 2];
            out.push(s);
        }
        GgmlDType::Q4K | GgmlDType::Q5K => {
            // d, dmin, 12 bytes of scales, [32 bytes of high bits (Q5_K)], 128 bytes of nibbles.
            let (d, dmin, scales) = (half_at(b, 0), half_at(b, 2), &b[4..16]);
            let (qh, ql) = if t == GgmlDType::Q5K {
                (Some(&b[16..48]), &b[48..176])
            } else {
                (None, &b[16..144])
            };
            for j in 0..8 {
                let (sc, mn) = k_scale_min(j, scales);
                let chunk = &ql[(j / 2) * 32..(j / 2) * 32 + 32];
                let mut s = blank();
                for l in 0..BLOCK {
                    let nib = if j % 2 == 0 {
                        chunk[l] & 0xF
                    } else {
                        chunk[l] >> 4
                    };
                    let high = qh.map_or(0, |h| ((h[l] >> j) & 1) << 4);
                    s.q[l] = (nib | high) as i8;
                }
                s.d = [d * sc; 2];
                s.m = -dmin * mn;
                out.push(s);
            }
        }
        GgmlDType::Q6K => {
            // 128 bytes of low nibbles, 64 of high bit pairs, 16 signed scales, d.
            let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], half_at(b, 208));
            let mut vals = [0i8; 256];
            for half in 0..2 {
                let (ql, qh, y) = (&ql[half * 64..], &qh[half * 32..], half * 128);
                for l in 0..32 {
                    let q = |lo: u8, shift: u32| (lo | ((qh[l] >> shift) & 3) << 4) as i8 - 32;
                    vals[y + l] = q(ql[l] & 0xF, 0);
                    vals[y + l + 32] = q(ql[l + 32] & 0xF, 2);
                    vals[y + l + 64] = q(ql[l] >> 4, 4);
                    vals[y + l + 96] = q(ql[l + 32] >> 4, 6);
                }
            }
            for j in 0..8 {
                let mut s = blank();
                s.q.copy_from_slice(&vals[j * 32..j * 32 + 32]);
                s.d = [d * sc[2 * j] as i8 as f32, d * sc[2 * j + 1] as i8 as f32];
                out.push(s);
            }
        }
        _ => {}
    }
}

impl QWeights {
    /// `t` in folio's layout, or `None` when its type has no kernel here.
    pub fn from_qtensor(t: &QTensor) -> Result<Option<QWeights>> {
        let source = t.dtype();
        let Some((codes, has_min)) = codes_for(source) else {
            return Ok(None);
        };
        let (n, k) = t.shape().dims2()?;
        let (bs, ts) = (source.block_size(), source.type_size());
        if k == 0 || !k.is_multiple_of(bs) || !k.is_multiple_of(BLOCK) {
            bail!("rows of {k} do not divide into {source:?} blocks");
        }
        let data = t.data()?;
        if data.len() != n * (k / bs) * ts {
            bail!("{source:?} tensor of {n}x{k} has {} bytes", data.len());
        }
        let blocks = n * k / BLOCK;
        let per_block = if codes == Codes::I8Half { 2 } else { 1 };
        let mut w = QWeights {
            n,
            k,
            codes,
            qs: Vec::with_capacity(if codes == Codes::U4 { n * k / 2 } else { n * k }),
            scales: Vec::with_capacity(blocks * per_block),
            mins: has_min.then(|| Vec::with_capacity(blocks)),
            source,
        };
        let mut subs = Vec::with_capacity(8);
        for block in data.chunks_exact(ts) {
            subs.clear();
            decode_block(source, block, &mut subs);
            for s in &subs {
                match codes {
                    Codes::U4 => {
                        w.qs.extend((0..16).map(|i| s.q[i] as u8 | (s.q[i + 16] as u8) << 4))
                    }
                    _ => w.qs.extend(s.q.iter().map(|&q| q as u8)),
                }
                w.scales.extend_from_slice(&s.d[..per_block]);
                if let Some(m) = &mut w.mins {
                    m.push(s.m);
                }
            }
        }
        Ok(Some(w))
    }

    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    pub fn source(&self) -> GgmlDType {
        self.source
    }

    /// Row `r` as floats (tests, and checks against other decoders).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let nb = self.k / BLOCK;
        let mut out = Vec::with_capacity(self.k);
        for b in 0..nb {
            let blk = r * nb + b;
            let m = self.mins.as_ref().map_or(0.0, |m| m[blk]);
            for i in 0..BLOCK {
                let q = self.code(r, b * BLOCK + i);
                let d = match self.codes {
                    Codes::I8Half => self.scales[blk * 2 + i / 16],
                    _ => self.scales[blk],
                };
                out.push(q as f32 * d + m);
            }
        }
        out
    }

    /// The integer code of element `(r, c)`.
    fn code(&self, r: usize, c: usize) -> i32 {
        match self.codes {
            Codes::U4 => {
                let (b, i) = (c / BLOCK, c % BLOCK);
                let byte = self.qs[r * self.k / 2 + b * 16 + i % 16];
                (if i < 16 { byte & 0xF } else { byte >> 4 }) as i32
            }
            _ => self.qs[r * self.k + c] as i8 as i32,
        }
    }

    /// `out (t x n) = x (t x k) * selfᵀ`, with the kernels of `path`.
    pub fn matmul(&self, x: &[f32], t: usize, out: &mut [f32], path: Path) {
        assert_eq!(x.len(), t * self.k, "activations of the wrong size");
        assert_eq!(out.len(), t * self.n, "output of the wrong size");
        assert!(
            path.supported(),
            "{} kernels on a CPU without them",
            path.name()
        );
        if t == 0 {
            return;
        }
        let acts = Acts::quantize(x, t, self.k);
        // Groups of rows, each written by one worker for every token.
        const GROUP: usize = 16;
        let groups = self.n.div_ceil(GROUP);
        let dst = out.as_mut_ptr() as usize;
        let run = |items: Range<usize>| {
            for g in items {
                let rows = g * GROUP..self.n.min(g * GROUP + GROUP);
                // SAFETY: every (token, row) of `out` belongs to one group, and each group is
                // handed to exactly one worker; `out` outlives the pool's call.
                let out = dst as *mut f32;
                unsafe { self.rows(&acts, rows, out, path) };
            }
        };
        if groups == 1 || (t == 1 && self.n * self.k < 1 << 16) {
            run(0..groups);
        } else {
            candle_core::utils::barrier_pool().execute_chunked(groups, run);
        }
    }

    /// Output rows `rows` for every token.
    ///
    /// # Safety
    /// `out` points at `t * n` floats, and no other thread writes these rows' elements.
    unsafe fn rows(&self, a: &Acts, rows: Range<usize>, out: *mut f32, path: Path) {
        match path {
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => unsafe { x86::avx2::rows(self, a, rows, out) },
            #[cfg(target_arch = "x86_64")]
            Path::Avx512Vnni => unsafe { x86::vnni512::rows(self, a, rows, out) },
            _ => unsafe { self.rows_scalar(a, rows, out) },
        }
    }

    /// The reference kernel: integer dot products block by block.
    ///
    /// # Safety
    /// As [`QWeights::rows`].
    unsafe fn rows_scalar(&self, a: &Acts, rows: Range<usize>, out: *mut f32) {
        let nb = self.k / BLOCK;
        for r in rows {
            for t in 0..a.t {
                let mut sum = 0f32;
                for b in 0..nb {
                    let aq = &a.q[t * self.k + b * BLOCK..][..BLOCK];
                    let mut halves = [0i32; 2];
                    for (i, &x) in aq.iter().enumerate() {
                        halves[i / 16] += self.code(r, b * BLOCK + i) * x as i32;
                    }
                    let ad = a.d[t * nb + b];
                    let blk = r * nb + b;
                    sum += match self.codes {
                        Codes::I8Half => {
                            ad * (self.scales[2 * blk] * halves[0] as f32
                                + self.scales[2 * blk + 1] * halves[1] as f32)
                        }
                        _ => ad * self.scales[blk] * (halves[0] + halves[1]) as f32,
                    };
                    if let Some(m) = &self.mins {
                        sum += m[blk] * a.s[t * nb + b];
                    }
                }
                // SAFETY: in bounds and this worker's alone, by the caller's contract.
                unsafe { *out.add(t * self.n + r) = sum };
            }
        }
    }
}

/// Activations quantized to bytes in blocks of 32: `q * d` per block, and `s = d * sum(q)` for
/// the weight types with offsets.
struct Acts {
    t: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
}

impl Acts {
    fn quantize(x: &[f32], t: usize, k: usize) -> Acts {
        let nb = k / BLOCK;
        let mut a = Acts {
            t,
            q: vec![0; t * k],
            d: vec![0.0; t * nb],
            s: vec![0.0; t * nb],
        };
        for ((xb, qb), (d, s)) in x
            .chunks_exact(BLOCK)
            .zip(a.q.chunks_exact_mut(BLOCK))
            .zip(a.d.iter_mut().zip(a.s.iter_mut()))
        {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = amax / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (q, &v) in qb.iter_mut().zip(xb) {
                let c = (v * inv).round().clamp(-127.0, 127.0) as i32;
                *q = c as i8;
                sum += c;
            }
            *d = scale;
            *s = scale * sum as f32;
        }
        a
    }
}

/// A linear layer's weights: folio's kernels where the type has them, candle's otherwise.
pub enum QLinear {
    Folio(QWeights),
    Candle(QMatMul),
}

impl QLinear {
    pub fn new(t: QTensor) -> Result<QLinear> {
        match QWeights::from_qtensor(&t)? {
            Some(w) => Ok(QLinear::Folio(w)),
            None => Ok(QLinear::Candle(QMatMul::from_qtensor(t)?)),
        }
    }

    /// A tensor shared with another use (tied input and output embeddings).
    pub fn from_arc(t: std::sync::Arc<QTensor>) -> Result<QLinear> {
        match QWeights::from_qtensor(&t)? {
            Some(w) => Ok(QLinear::Folio(w)),
            None => Ok(QLinear::Candle(QMatMul::from_arc(t)?)),
        }
    }

    /// `x (..., k) -> (..., n)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = match self {
            QLinear::Candle(m) => return m.forward(x),
            QLinear::Folio(w) => w,
        };
        let dims = x.dims();
        let Some((&k, lead)) = dims.split_last() else {
            bail!("a linear layer needs at least one dimension");
        };
        if k != w.k {
            bail!("input of width {k} for a layer of width {}", w.k);
        }
        let t: usize = lead.iter().product();
        let x = x.to_dtype(candle_core::DType::F32)?.contiguous()?;
        let mut out = vec![0f32; t * w.n];
        {
            let (storage, layout) = x.storage_and_layout();
            let Storage::Cpu(cpu) = &*storage else {
                bail!("folio's kernels run on the CPU");
            };
            let all = cpu.as_slice::<f32>()?;
            let start = layout.start_offset();
            w.matmul(&all[start..start + t * k], t, &mut out, Path::current());
        }
        let mut shape = lead.to_vec();
        shape.push(w.n);
        Tensor::from_vec(out, shape, x.device())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use proptest::prelude::*;

    const TYPES: [GgmlDType; 8] = [
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
    ];

    /// Deterministic noise with a few large values, as real weights and activations have.
    fn noise(seed: u64, len: usize) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                if i % 97 == 5 { u * 20.0 } else { u }
            })
            .collect()
    }

    fn quantized(t: GgmlDType, n: usize, k: usize, seed: u64) -> QTensor {
        let w = Tensor::from_vec(noise(seed, n * k), (n, k), &Device::Cpu).unwrap();
        QTensor::quantize(&w, t).unwrap()
    }

    #[test]
    fn every_type_converts_to_exactly_what_candle_dequantizes() {
        for t in TYPES {
            let q = quantized(t, 3, 512, 7);
            let theirs = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let w = QWeights::from_qtensor(&q).unwrap().unwrap();
            for (r, row) in theirs.iter().enumerate() {
                let ours = w.dequantize_row(r);
                for (c, (a, b)) in ours.iter().zip(row).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{t:?} ({r},{c}): {a} vs {b}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Every path against plain floats, on awkward shapes: the only difference allowed is
        /// the activations' rounding to bytes (at most half a step per element).
        #[test]
        fn every_path_matches_the_plain_product(
            ti in 0usize..8, n in 1usize..40, kb in 1usize..5, t in 1usize..11, seed in 0u64..1000
        ) {
            let ty = TYPES[ti];
            let k = kb * ty.block_size().max(BLOCK);
            let q = quantized(ty, n, k, seed);
            let w = QWeights::from_qtensor(&q).unwrap().unwrap();
            let x = noise(seed + 1, t * k);
            let acts = Acts::quantize(&x, t, k);
            let rows: Vec<Vec<f32>> = (0..n).map(|r| w.dequantize_row(r)).collect();
            for path in Path::ALL.into_iter().filter(|p| p.supported()) {
                let mut out = vec![0f32; t * n];
                w.matmul(&x, t, &mut out, path);
                for tok in 0..t {
                    let xr = &x[tok * k..][..k];
                    for (r, wr) in rows.iter().enumerate() {
                        let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let bound: f64 = wr.iter().enumerate().map(|(c, v)| {
                            v.abs() as f64 * acts.d[tok * (k / BLOCK) + c / BLOCK] as f64 * 0.5
                        }).sum::<f64>() * 1.001 + 1e-3 * (1.0 + exact.abs());
                        let got = out[tok * n + r] as f64;
                        prop_assert!((got - exact).abs() <= bound,
                            "{:?} {} t={tok} r={r}: {got} vs {exact} (bound {bound})", ty, path.name());
                    }
                }
            }
        }
    }

    #[test]
    fn simd_paths_agree_with_the_scalar_kernel_on_every_type_and_tile() {
        for ty in TYPES {
            for (n, t) in [(1, 1), (5, 3), (33, 9), (64, 4)] {
                let k = 2 * ty.block_size().max(BLOCK);
                let w = QWeights::from_qtensor(&quantized(ty, n, k, 3))
                    .unwrap()
                    .unwrap();
                let x = noise(11, t * k);
                let mut want = vec![0f32; t * n];
                w.matmul(&x, t, &mut want, Path::Scalar);
                for path in Path::ALL.into_iter().filter(|p| p.supported()) {
                    let mut got = vec![0f32; t * n];
                    w.matmul(&x, t, &mut got, path);
                    for (g, e) in got.iter().zip(&want) {
                        assert!(
                            (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                            "{ty:?} {}: {g} vs {e}",
                            path.name()
                        );
                    }
                }
            }
        }
    }
}
