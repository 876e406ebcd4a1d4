//! Quantized linear layers: GGUF weights in the layouts folio's own kernels multiply, and
//! those kernels, picked at run time for the CPU at hand.
//!
//! Every GGUF type handled here is small integers times scales (and, for some, minus
//! offsets); nothing is rounded again at load. The 32-element block types convert to codes
//! (four bits for Q4_0 and Q4_1, one byte for Q5_0, Q5_1 and Q8_0) with f32 scales per block.
//! The K types (Q4_K, Q5_K, Q6_K) keep the file's super-block records of 256 (Q4_K and Q5_K
//! with their six-bit scales unpacked), four rows' records side by side, and their kernels
//! apply the integer sub-block scales in integer arithmetic, converting to float once per 256.
//! A product quantizes the activations once to bytes with a scale (per 32, or per 256 with
//! sums per 16 for the K types), then multiplies integers in register tiles of up to four
//! tokens by several weight rows, so that a prompt pass reads each weight block once per tile
//! of tokens rather than once per token. Output rows are shared out over candle's thread pool,
//! which the rest of the forward pass keeps warm.
//!
//! Kernel paths: `scalar` (any CPU, and the reference the others are tested against), `avx2`
//! (AVX2, FMA and F16C) and `avx512vnni` (AVX-512 VL with VNNI dot products; 512-bit tiles
//! for byte codes in prompt passes, 256-bit otherwise). The best one the CPU has is chosen at
//! run time; `FOLIO_KERNELS` forces one.
//! Types without a kernel here (F16, F32, Q2_K, Q3_K, ...) run on candle's own `QMatMul`.

#[cfg(target_arch = "x86_64")]
mod x86;

use std::ops::Range;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Result, Storage, Tensor, bail};
use half::f16;

pub use crate::simd::Path;

/// Activations and 32-element weight blocks share this size.
const BLOCK: usize = 32;

/// The super-block of the K types (Q4_K, Q5_K, Q6_K): one float scale (and offset) per 256
/// elements, small integer scales per 16 or 32 inside it.
const SUPER: usize = 256;

/// Rows of the super-block layout are stored in groups of this many, their super-blocks
/// interleaved, so that a tile of rows reads one contiguous stream.
const GROUP_ROWS: usize = 4;

/// How the integer codes of a weight matrix are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codes {
    /// Four bits, 0..=15; byte `i` of a block holds element `i` (low nibble) and `i + 16`.
    U4,
    /// One signed byte per element, a scale per 32.
    I8,
    /// One signed byte per element, a scale per 16.
    I8Half,
    /// The GGUF's own super-blocks of 256 (Q4_K, Q5_K, Q6_K), as stored but for Q4_K's and
    /// Q5_K's unpacked scales ([`store_record`]), so that a product reads little more than the
    /// file holds: rows in groups of [`GROUP_ROWS`], super-block
    /// `s` of the group's rows one after another (see [`QWeights::record`]). Kernels apply the
    /// integer sub-block scales in integer arithmetic and convert to float once per 256.
    Super,
}

/// One super-block, decoded: element `e` is `d * sc[e / 16] * q[e] - dmin * mn[e / 16]`.
/// (Q6_K's codes are stored unsigned, 0..64: its offset of 32 is the min `32 * d * sc`.)
struct SuperBlock {
    q: [u8; SUPER],
    sc: [i8; 16],
    mn: [i8; 16],
    d: f32,
    dmin: f32,
}

/// A weight matrix of `n` rows (outputs) by `k` columns (inputs) in one of folio's layouts.
/// Element `(r, c)` is `code * scale + min` of its block (block layouts), or as its
/// [`SuperBlock`] says.
pub struct QWeights {
    n: usize,
    k: usize,
    codes: Codes,
    /// Row-major codes: `k / 2` bytes per row for [`Codes::U4`], `k` for the other block
    /// layouts; the GGUF records for [`Codes::Super`].
    qs: Vec<u8>,
    /// A scale per block of 32 (per 16 for [`Codes::I8Half`]), row-major; empty for the
    /// super-block layouts.
    scales: Vec<f32>,
    /// An offset per block of 32, for types that have one.
    mins: Option<Vec<f32>>,
    /// Bytes per record ([`Codes::Super`] only).
    rec: usize,
    source: GgmlDType,
}

/// One decoded block of 32 elements.
struct Sub {
    q: [i8; BLOCK],
    /// The scale of elements 0..16 and of 16..32 (equal unless the type has 16-blocks).
    d: [f32; 2],
    m: f32,
}

/// An empty vector with room for `cap` elements, whose memory the kernel is asked to back with
/// huge pages: decoding streams every weight once per token, and with 4 KiB pages the address
/// translations cost about a fifth of that time (measured on the 1B-shaped file).
fn weights_vec<T>(cap: usize) -> Vec<T> {
    let v = Vec::with_capacity(cap);
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let (start, bytes) = (v.as_ptr() as usize, cap * std::mem::size_of::<T>());
        let first = start.next_multiple_of(PAGE);
        if bytes >= 1 << 21 && first < start + bytes {
            // SAFETY: the range lies inside this vector's allocation and the advice changes
            // how it is backed, never its contents; a refusal (no transparent huge pages) is
            // harmless.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    start + bytes - first,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
    }
    v
}

fn half_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K super-block (ggml's packing).
fn k_scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// The layout a GGUF type converts to, or `None` when it has no kernel here.
fn codes_for(t: GgmlDType) -> Option<(Codes, bool)> {
    Some(match t {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 => (Codes::U4, true),
        GgmlDType::Q5_0 | GgmlDType::Q8_0 => (Codes::I8, false),
        GgmlDType::Q5_1 => (Codes::I8, true),
        GgmlDType::Q4K | GgmlDType::Q5K | GgmlDType::Q6K => (Codes::Super, false),
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
        _ => {}
    }
}

/// The bytes a Q4_K or Q5_K record gains at load: its twelve bytes of packed six-bit scales
/// and mins become eight of each, so that kernels need not unpack them for every row.
const UNPACKED: usize = 4;

/// A GGUF record of type `t` as folio stores it: Q6_K as is; Q4_K and Q5_K with their scales
/// and mins unpacked (d, dmin, 8 scales, 8 mins, then the rest as in the file).
fn store_record(t: GgmlDType, b: &[u8], out: &mut [u8]) {
    if t == GgmlDType::Q6K {
        out.copy_from_slice(b);
        return;
    }
    out[..4].copy_from_slice(&b[..4]);
    for j in 0..8 {
        let (sc, mn) = k_scale_min(j, &b[4..16]);
        out[4 + j] = sc;
        out[12 + j] = mn;
    }
    out[20..].copy_from_slice(&b[16..]);
}

/// Decodes one record of type `t` (Q4_K, Q5_K or Q6_K) as [`store_record`] wrote it: the
/// reference the kernels are tested against.
fn decode_super(t: GgmlDType, b: &[u8]) -> SuperBlock {
    let mut out = SuperBlock {
        q: [0; SUPER],
        sc: [0; 16],
        mn: [0; 16],
        d: 0.0,
        dmin: 0.0,
    };
    if t == GgmlDType::Q6K {
        // 128 bytes of low nibbles, 64 of high bit pairs, 16 signed scales, d.
        let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
        for half in 0..2 {
            let (ql, qh, y) = (&ql[half * 64..], &qh[half * 32..], half * 128);
            for l in 0..32 {
                let q = |lo: u8, shift: u32| lo | ((qh[l] >> shift) & 3) << 4;
                out.q[y + l] = q(ql[l] & 0xF, 0);
                out.q[y + l + 32] = q(ql[l + 32] & 0xF, 2);
                out.q[y + l + 64] = q(ql[l] >> 4, 4);
                out.q[y + l + 96] = q(ql[l + 32] >> 4, 6);
            }
        }
        for (g, &v) in sc.iter().enumerate() {
            out.sc[g] = v as i8;
            out.mn[g] = v as i8;
        }
        out.d = half_at(b, 208);
        out.dmin = 32.0 * out.d;
        return out;
    }
    // d, dmin, 8 scales, 8 mins, [32 bytes of high bits (Q5_K)], 128 bytes of nibbles.
    let (qh, ql) = if t == GgmlDType::Q5K {
        (Some(&b[20..52]), &b[52..180])
    } else {
        (None, &b[20..148])
    };
    for j in 0..8 {
        // Six bits: both fit a signed byte.
        out.sc[2 * j..2 * j + 2].fill(b[4 + j] as i8);
        out.mn[2 * j..2 * j + 2].fill(b[12 + j] as i8);
        let group = &ql[(j / 2) * 32..][..32];
        for l in 0..32 {
            let nib = if j % 2 == 0 {
                group[l] & 0xF
            } else {
                group[l] >> 4
            };
            out.q[j * 32 + l] = nib | qh.map_or(0, |h| ((h[l] >> j) & 1) << 4);
        }
    }
    out.d = half_at(b, 0);
    out.dmin = half_at(b, 2);
    out
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
        if codes == Codes::Super {
            // Rows padded to whole groups (the padding is zeros and never read out).
            let (ns, groups) = (k / SUPER, n.div_ceil(GROUP_ROWS));
            let rec = if source == GgmlDType::Q6K {
                ts
            } else {
                ts + UNPACKED
            };
            let len = groups * GROUP_ROWS * ns * rec;
            let mut qs = weights_vec(len);
            qs.resize(len, 0u8);
            for (r, row) in data.chunks_exact(ns * ts).enumerate() {
                for (sb, block) in row.chunks_exact(ts).enumerate() {
                    let at = Self::record_index(r, sb, ns) * rec;
                    store_record(source, block, &mut qs[at..at + rec]);
                }
            }
            return Ok(Some(QWeights {
                n,
                k,
                codes,
                qs,
                scales: Vec::new(),
                mins: None,
                rec,
                source,
            }));
        }
        let blocks = n * k / BLOCK;
        let per_block = if codes == Codes::I8Half { 2 } else { 1 };
        let mut w = QWeights {
            n,
            k,
            codes,
            qs: weights_vec(if codes == Codes::U4 { n * k / 2 } else { n * k }),
            scales: weights_vec(blocks * per_block),
            mins: has_min.then(|| weights_vec(blocks)),
            rec: 0,
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
    /// Where super-block `s` of row `r` starts, in records: groups of [`GROUP_ROWS`] rows,
    /// then super-blocks, then the group's rows.
    fn record_index(r: usize, s: usize, ns: usize) -> usize {
        ((r / GROUP_ROWS) * ns + s) * GROUP_ROWS + r % GROUP_ROWS
    }

    /// Super-block `s` of row `r`, decoded ([`Codes::Super`] only).
    fn record(&self, r: usize, s: usize) -> SuperBlock {
        let at = Self::record_index(r, s, self.k / SUPER) * self.rec;
        decode_super(self.source, &self.qs[at..at + self.rec])
    }

    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        if self.codes == Codes::Super {
            return (0..self.k / SUPER)
                .flat_map(|s| {
                    let b = self.record(r, s);
                    (0..SUPER).map(move |e| {
                        let g = e / 16;
                        b.d * b.sc[g] as f32 * b.q[e] as f32 - b.dmin * b.mn[g] as f32
                    })
                })
                .collect();
        }
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
            Codes::Super => self.record(r, c / SUPER).q[c % SUPER] as i32,
            Codes::I8 | Codes::I8Half => self.qs[r * self.k + c] as i8 as i32,
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
        let acts = if self.codes == Codes::Super {
            Acts::quantize_super(x, t, self.k)
        } else {
            Acts::quantize(x, t, self.k)
        };
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
        if self.codes == Codes::Super {
            // SAFETY: the caller's contract.
            return unsafe { self.rows_scalar_super(a, rows, out) };
        }
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

    /// The reference kernel of the super-block layouts: integer sums per super-block, scaled
    /// by the integer sub-block scales, then by the two floats.
    ///
    /// # Safety
    /// As [`QWeights::rows`].
    unsafe fn rows_scalar_super(&self, a: &Acts, rows: Range<usize>, out: *mut f32) {
        let ns = self.k / SUPER;
        for r in rows {
            let blocks: Vec<SuperBlock> = (0..ns).map(|s| self.record(r, s)).collect();
            for t in 0..a.t {
                let mut sum = 0f32;
                for (s, b) in blocks.iter().enumerate() {
                    let (mut dots, mut offs) = (0i32, 0i32);
                    for g in 0..16 {
                        let at = t * self.k + s * SUPER + g * 16;
                        let dot: i32 = (0..16)
                            .map(|e| b.q[g * 16 + e] as i32 * a.q[at + e] as i32)
                            .sum();
                        dots += b.sc[g] as i32 * dot;
                        offs += b.mn[g] as i32 * a.bs[(t * ns + s) * 16 + g] as i32;
                    }
                    sum += a.d[t * ns + s] * (b.d * dots as f32 - b.dmin * offs as f32);
                }
                // SAFETY: in bounds and this worker's alone, by the caller's contract.
                unsafe { *out.add(t * self.n + r) = sum };
            }
        }
    }
}

/// Activations quantized to bytes: `q * d`, with a scale `d` per 32 elements for the block
/// layouts, per 256 for the super-block ones. For the block layouts' offsets, `s = d *
/// sum(q)` per block; for the super-blocks', `bs` is `sum(q)` per 16 elements.
struct Acts {
    t: usize,
    q: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
    bs: Vec<i16>,
}

/// `x` to bytes, `x ≈ q * d`, with `d` from the largest magnitude; returns `d`.
#[inline]
fn to_bytes(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = amax / 127.0;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * inv).round().clamp(-127.0, 127.0) as i8;
    }
    scale
}

crate::simd::avx2! {
    /// Blocks of 32: a scale `d` and `s = d * sum(q)` per block.
    fn quantize_blocks(x: &[f32], q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
        for ((xb, qb), (d, s)) in x
            .chunks_exact(BLOCK)
            .zip(q.chunks_exact_mut(BLOCK))
            .zip(d.iter_mut().zip(s.iter_mut()))
        {
            *d = to_bytes(xb, qb);
            *s = *d * qb.iter().map(|&v| v as i32).sum::<i32>() as f32;
        }
    }
}

crate::simd::avx2! {
    /// Super-blocks of 256: a scale per super-block, sums of `q` per 16.
    fn quantize_supers(x: &[f32], q: &mut [i8], d: &mut Vec<f32>, bs: &mut Vec<i16>) {
        for (xs, qs) in x.chunks_exact(SUPER).zip(q.chunks_exact_mut(SUPER)) {
            d.push(to_bytes(xs, qs));
            bs.extend(
                qs.chunks_exact(16)
                    .map(|g| g.iter().map(|&v| v as i16).sum::<i16>()),
            );
        }
    }
}

impl Acts {
    /// The scale step of element `c` of token `tok` (tests bound rounding with it).
    #[cfg(test)]
    fn step(&self, tok: usize, c: usize, k: usize) -> f32 {
        let span = self.t * k / self.d.len();
        self.d[tok * (k / span) + c / span]
    }

    /// For the super-block layouts: a scale per 256, sums per 16.
    fn quantize_super(x: &[f32], t: usize, k: usize) -> Acts {
        let mut a = Acts {
            t,
            q: vec![0; t * k],
            d: Vec::with_capacity(t * k / SUPER),
            s: Vec::new(),
            bs: Vec::with_capacity(t * k / 16),
        };
        quantize_supers(x, &mut a.q, &mut a.d, &mut a.bs);
        a
    }

    fn quantize(x: &[f32], t: usize, k: usize) -> Acts {
        let nb = k / BLOCK;
        let mut a = Acts {
            t,
            q: vec![0; t * k],
            d: vec![0.0; t * nb],
            s: vec![0.0; t * nb],
            bs: Vec::new(),
        };
        quantize_blocks(x, &mut a.q, &mut a.d, &mut a.s);
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

    /// `(n, k)`: outputs by inputs.
    pub fn dims(&self) -> Result<(usize, usize)> {
        match self {
            QLinear::Folio(w) => Ok(w.dims()),
            QLinear::Candle(QMatMul::QTensor(t)) => t.shape().dims2(),
            QLinear::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => t.dims2(),
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
        // simd's uniform noise halved to [-0.5, 0.5): the same values bit for bit.
        crate::simd::random(len, seed)
            .into_iter()
            .enumerate()
            .map(|(i, x)| {
                let u = x * 0.5;
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
            let acts = if w.codes == Codes::Super {
                Acts::quantize_super(&x, t, k)
            } else {
                Acts::quantize(&x, t, k)
            };
            let rows: Vec<Vec<f32>> = (0..n).map(|r| w.dequantize_row(r)).collect();
            for path in Path::ALL.into_iter().filter(|p| p.supported()) {
                let mut out = vec![0f32; t * n];
                w.matmul(&x, t, &mut out, path);
                for tok in 0..t {
                    let xr = &x[tok * k..][..k];
                    for (r, wr) in rows.iter().enumerate() {
                        let exact: f64 = wr.iter().zip(xr).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let bound: f64 = wr.iter().enumerate().map(|(c, v)| {
                            v.abs() as f64 * acts.step(tok, c, k) as f64 * 0.5
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
