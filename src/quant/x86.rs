//! The x86 kernels of [`super::QWeights`]: one body, compiled twice (AVX2 with FMA, and AVX-512
//! VL with VNNI), that differ only in the byte dot product and in how many weight rows a tile
//! holds (AVX-512 has twice the registers).
//!
//! A tile is up to 4 tokens by up to `R` weight rows. Per block of 32 it loads each token's
//! activation bytes once and each row's codes once, forms every token-row product as 8 lanes of
//! 32-bit sums, and adds them, times both blocks' scales, into one float accumulator per pair.
//! The offsets (`mins`) of Q4/Q5 types multiply each block's activation sum, which is a plain
//! dot product over blocks done after the loop.
//!
//! Loads use `lddqu` (as fast as `loadu` on every CPU since 2008): the `loadu` intrinsics go
//! through `copy_nonoverlapping`, whose debug-build precondition checks made the README's
//! (debug-profile) binary several times slower here.

/// Runs `$body` with `$i` = 0, 1, .. up to `$n` (at most 4), written out, so that arrays indexed
/// by `$i` live in registers (a loop, even with a constant bound, is not always unrolled).
macro_rules! unroll4 {
    ($n:expr, $i:ident, $body:block) => {
        if $n > 0 {
            let $i = 0;
            $body
        }
        if $n > 1 {
            let $i = 1;
            $body
        }
        if $n > 2 {
            let $i = 2;
            $body
        }
        if $n > 3 {
            let $i = 3;
            $body
        }
    };
}

/// Walks `rows` of every token of `a` in tiles of up to 4 tokens by up to `$r` rows, calling
/// `$tile::<TOKENS, ROWS>(w, a, t0, r0, out)` for each.
macro_rules! drive_tiles {
    ($tile:ident, $r:expr, $w:expr, $a:expr, $rows:expr, $out:expr) => {{
        let mut t0 = 0;
        while t0 < $a.t {
            let tn = ($a.t - t0).min(4);
            let mut r0 = $rows.start;
            while r0 < $rows.end {
                let rn = ($rows.end - r0).min($r);
                // SAFETY: the tile lies inside `rows` and `a`'s tokens; the caller's contract
                // covers the rest.
                unsafe {
                    match (tn, rn) {
                        (1, 1) => $tile::<1, 1>($w, $a, t0, r0, $out),
                        (1, 2) => $tile::<1, 2>($w, $a, t0, r0, $out),
                        (1, 3) => $tile::<1, 3>($w, $a, t0, r0, $out),
                        (1, 4) => $tile::<1, 4>($w, $a, t0, r0, $out),
                        (2, 1) => $tile::<2, 1>($w, $a, t0, r0, $out),
                        (2, 2) => $tile::<2, 2>($w, $a, t0, r0, $out),
                        (2, 3) => $tile::<2, 3>($w, $a, t0, r0, $out),
                        (2, 4) => $tile::<2, 4>($w, $a, t0, r0, $out),
                        (3, 1) => $tile::<3, 1>($w, $a, t0, r0, $out),
                        (3, 2) => $tile::<3, 2>($w, $a, t0, r0, $out),
                        (3, 3) => $tile::<3, 3>($w, $a, t0, r0, $out),
                        (3, 4) => $tile::<3, 4>($w, $a, t0, r0, $out),
                        (4, 1) => $tile::<4, 1>($w, $a, t0, r0, $out),
                        (4, 2) => $tile::<4, 2>($w, $a, t0, r0, $out),
                        (4, 3) => $tile::<4, 3>($w, $a, t0, r0, $out),
                        _ => $tile::<4, 4>($w, $a, t0, r0, $out),
                    }
                }
                r0 += rn;
            }
            t0 += tn;
        }
    }};
}

macro_rules! kernels {
    ($name:ident, $features:literal, $rows_per_tile:literal, $($dot:item),*) => {
        pub mod $name {
            use std::arch::x86_64::*;
            use std::ops::Range;

            use candle_core::quantized::GgmlDType;

            use super::super::{Acts, BLOCK, Codes, GROUP_ROWS, QWeights, SUPER};

            $($dot)*

            #[inline]
            #[target_feature(enable = $features)]
            fn hsum(v: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
                _mm_cvtss_f32(s)
            }

            /// Asks for the cache line at `p`, which may lie past the weights' end: decoding
            /// reads each weight once, in rows too short for the hardware prefetcher to
            /// follow, so each tile fetches the same blocks of the next tile's rows.
            #[inline]
            #[target_feature(enable = $features)]
            fn fetch(p: *const u8) {
                // A prefetch never faults, whatever the address.
                _mm_prefetch::<_MM_HINT_T0>(p as *const i8)
            }

            /// Output rows `rows` of every token of `a`.
            ///
            /// # Safety
            /// The CPU has this module's features; `out` points at `a.t * w.n` floats and no
            /// other thread writes these rows.
            #[target_feature(enable = $features)]
            pub unsafe fn rows(w: &QWeights, a: &Acts, rows: Range<usize>, out: *mut f32) {
                match w.codes {
                    // SAFETY: as the caller's.
                    Codes::Super if a.t >= 4 => unsafe { super_prompt(w, a, rows, out) },
                    Codes::Super => unsafe { super_decode(w, a, rows, out) },
                    // SAFETY: as the caller's.
                    _ => unsafe { blocks(w, a, rows, out) },
                }
            }

            /// Rows of the 32-element block layouts (its own function, as [`super_prompt`]).
            ///
            /// # Safety
            /// As for [`rows`].
            #[inline(never)]
            #[target_feature(enable = $features)]
            unsafe fn blocks(w: &QWeights, a: &Acts, rows: Range<usize>, out: *mut f32) {
                drive_tiles!(tile, $rows_per_tile, w, a, rows, out);
            }

            /// Super-block rows of a prompt pass: two rows by four tokens keeps the integer
            /// sums in registers (four rows spilled them: 5 to 10% slower). Its own function,
            /// so that the register allocation of one tile shape does not disturb the other's.
            ///
            /// # Safety
            /// As for [`rows`].
            #[inline(never)]
            #[target_feature(enable = $features)]
            unsafe fn super_prompt(w: &QWeights, a: &Acts, rows: Range<usize>, out: *mut f32) {
                drive_tiles!(tile_super, 2, w, a, rows, out);
            }

            /// Super-block rows while decoding, which streams whole row groups from memory:
            /// all four rows at once (two rows at a time halved the speed).
            ///
            /// # Safety
            /// As for [`rows`].
            #[inline(never)]
            #[target_feature(enable = $features)]
            unsafe fn super_decode(w: &QWeights, a: &Acts, rows: Range<usize>, out: *mut f32) {
                drive_tiles!(tile_super, GROUP_ROWS, w, a, rows, out);
            }

            /// Tokens `t0..t0 + T` by rows `r0..r0 + R` of GGUF super-blocks (the rows lie in
            /// one group, so their records are adjacent). Per 32 elements, the byte products
            /// (pairs summed to 16 bits) are multiplied by the integer sub-block scales and
            /// summed to 32 bits; floats appear once per 256.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn tile_super<const T: usize, const R: usize>(
                w: &QWeights,
                a: &Acts,
                t0: usize,
                r0: usize,
                out: *mut f32,
            ) {
                // SAFETY: as the caller's.
                unsafe {
                    match w.source {
                        GgmlDType::Q4K => tile_k::<T, R, 4>(w, a, t0, r0, out),
                        GgmlDType::Q5K => tile_k::<T, R, 5>(w, a, t0, r0, out),
                        _ => tile_k::<T, R, 6>(w, a, t0, r0, out),
                    }
                }
            }

            /// The integer scales of a record as 16-bit words, both 128-bit lanes alike (see
            /// [`pick`]); its mins, one word per 16 elements; and `[d, dmin]` in lanes 0 and 1.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn header<const BITS: u8>(rec: *const u8) -> ([__m256i; 2], __m256i, __m128) {
                let words = |b: __m128i| _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(b));
                // SAFETY: the record holds these bytes (a Q6_K record is 210 long).
                unsafe {
                    let half2 = |at: usize| {
                        _mm_cvtph_ps(_mm_cvtsi32_si128((rec.add(at) as *const i32).read_unaligned()))
                    };
                    if BITS == 6 {
                        let sc = _mm_lddqu_si128(rec.add(192) as *const __m128i);
                        // d, and 32 d for the codes' offset of 32.
                        let d = _mm_mul_ps(_mm_broadcastss_ps(half2(208)), _mm_setr_ps(1.0, 32.0, 0.0, 0.0));
                        let hi = _mm_unpackhi_epi64(sc, sc);
                        return ([words(sc), words(hi)], _mm256_cvtepi8_epi16(sc), d);
                    }
                    // 8 scales, then 8 mins (`store_record`); each min covers 32 elements,
                    // two words of the result.
                    let both = _mm_lddqu_si128(rec.add(4) as *const __m128i);
                    let twice = _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
                    let mn = _mm_shuffle_epi8(both, twice);
                    let sc = words(both);
                    ([sc, sc], _mm256_cvtepi8_epi16(mn), half2(0))
                }
            }

            /// The 16 scale words of 32-element chunk `c` (0..8), from [`header`]'s scales.
            #[inline]
            #[target_feature(enable = $features)]
            fn pick<const BITS: u8>(sc: &[__m256i; 2], c: usize) -> __m256i {
                // Words as byte pairs: `w` repeated in a lane is the control (2w, 2w + 1)*8.
                let word = |w: i64| (2 * w) | (2 * w + 1) << 8;
                let lane = |w: i64| _mm_set1_epi16(word(w) as i16);
                if BITS == 6 {
                    // A scale per 16: the low lane takes the even one, the high lane the odd.
                    let w = 2 * (c as i64 % 4);
                    let ctl = _mm256_set_m128i(lane(w + 1), lane(w));
                    _mm256_shuffle_epi8(sc[c / 4], ctl)
                } else {
                    // A scale per 32, in every lane.
                    _mm256_shuffle_epi8(sc[0], _mm256_set_m128i(lane(c as i64), lane(c as i64)))
                }
            }

            /// The unsigned codes of elements `64j..64j + 64` of a record, as two vectors.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn codes<const BITS: u8>(rec: *const u8, j: usize) -> (__m256i, __m256i) {
                let nib = _mm256_set1_epi8(0x0F);
                let load = |at: usize| {
                    // SAFETY: the record holds these bytes.
                    unsafe { _mm256_lddqu_si256(rec.add(at) as *const __m256i) }
                };
                let shr = |v: __m256i, n: usize| _mm256_srl_epi16(v, _mm_cvtsi64_si128(n as i64));
                match BITS {
                    4 => {
                        let raw = load(20 + 32 * j);
                        (_mm256_and_si256(raw, nib), _mm256_and_si256(shr(raw, 4), nib))
                    }
                    5 => {
                        // Bit `s` of byte `l` of the 32 high-bit bytes belongs to element
                        // `32s + l`.
                        let (raw, hb, one) = (load(52 + 32 * j), load(20), _mm256_set1_epi8(1));
                        let high = |s: usize| _mm256_slli_epi16(_mm256_and_si256(shr(hb, s), one), 4);
                        (
                            _mm256_or_si256(_mm256_and_si256(raw, nib), high(2 * j)),
                            _mm256_or_si256(_mm256_and_si256(shr(raw, 4), nib), high(2 * j + 1)),
                        )
                    }
                    _ => {
                        // Q6_K: each half of 128 elements has 64 bytes of nibbles and 32 of
                        // bit pairs; `j` odd takes the high nibbles and the upper pairs.
                        let (h, u) = (j / 2, 4 * (j % 2));
                        let (lo0, lo1, hb) = (load(64 * h), load(64 * h + 32), load(128 + 32 * h));
                        let three = _mm256_set1_epi8(3);
                        let high = |s: usize| _mm256_slli_epi16(_mm256_and_si256(shr(hb, s), three), 4);
                        (
                            _mm256_or_si256(_mm256_and_si256(shr(lo0, u), nib), high(u)),
                            _mm256_or_si256(_mm256_and_si256(shr(lo1, u), nib), high(u + 2)),
                        )
                    }
                }
            }

            /// [`tile_super`] for one type.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn tile_k<const T: usize, const R: usize, const BITS: u8>(
                w: &QWeights,
                a: &Acts,
                t0: usize,
                r0: usize,
                out: *mut f32,
            ) {
                let (k, n, rs) = (w.k, w.n, w.rec);
                let ns = k / SUPER;
                debug_assert!(t0 + T <= a.t && r0 + R <= n && r0 % GROUP_ROWS + R <= GROUP_ROWS);
                let mut acc = [[_mm256_setzero_ps(); T]; R];
                let (aq, ad, bs) = (a.q.as_ptr(), a.d.as_ptr(), a.bs.as_ptr());
                // SAFETY: every offset below is inside its buffer: tokens below `a.t`, rows
                // below `n` (stored in whole groups), super-blocks below `ns` (the sizes
                // `QWeights` and `Acts` were built with).
                unsafe {
                    let first = w.qs.as_ptr().add(QWeights::record_index(r0, 0, ns) * rs);
                    for s in 0..ns {
                        let base = first.add(s * GROUP_ROWS * rs);
                        let mut isum = [[_mm256_setzero_si256(); T]; R];
                        let mut sc = [[_mm256_setzero_si256(); 2]; R];
                        let mut mn = [_mm256_setzero_si256(); R];
                        let mut dd = [_mm_setzero_ps(); R];
                        unroll4!(R, r, {
                            (sc[r], mn[r], dd[r]) = header::<BITS>(base.add(r * rs));
                        });
                        unroll4!(4, j, {
                            unroll4!(R, r, {
                                let (v0, v1) = codes::<BITS>(base.add(r * rs), j);
                                let (s0, s1) = (pick::<BITS>(&sc[r], 2 * j), pick::<BITS>(&sc[r], 2 * j + 1));
                                unroll4!(T, i, {
                                    // Activations are read again for every row (from L1):
                                    // holding the tile's in registers spilled the sums.
                                    let at = (t0 + i) * k + s * SUPER + j * 64;
                                    let x0 = _mm256_lddqu_si256(aq.add(at) as *const __m256i);
                                    let x1 = _mm256_lddqu_si256(aq.add(at + 32) as *const __m256i);
                                    let p0 = _mm256_maddubs_epi16(v0, x0);
                                    let p1 = _mm256_maddubs_epi16(v1, x1);
                                    isum[r][i] = scaled(isum[r][i], p0, s0);
                                    isum[r][i] = scaled(isum[r][i], p1, s1);
                                });
                            });
                        });
                        // Per token its scale and sums of 16, per row its d and dmin, each
                        // spread once and shared by the tile.
                        let mut xd = [_mm256_setzero_ps(); T];
                        let mut b16 = [_mm256_setzero_si256(); T];
                        unroll4!(T, i, {
                            let xs = (t0 + i) * ns + s;
                            xd[i] = _mm256_broadcast_ss(&*ad.add(xs));
                            b16[i] = _mm256_lddqu_si256(bs.add(xs * 16) as *const __m256i);
                        });
                        unroll4!(R, r, {
                            let wd = _mm256_broadcastss_ps(dd[r]);
                            let wm = _mm256_broadcastss_ps(_mm_movehdup_ps(dd[r]));
                            unroll4!(T, i, {
                                let offs = _mm256_cvtepi32_ps(_mm256_madd_epi16(mn[r], b16[i]));
                                let sums = _mm256_cvtepi32_ps(isum[r][i]);
                                acc[r][i] = _mm256_fmadd_ps(sums, _mm256_mul_ps(wd, xd[i]), acc[r][i]);
                                acc[r][i] = _mm256_fnmadd_ps(offs, _mm256_mul_ps(wm, xd[i]), acc[r][i]);
                            });
                        });
                    }
                    unroll4!(R, r, {
                        unroll4!(T, i, {
                            *out.add((t0 + i) * n + r0 + r) = hsum(acc[r][i]);
                        });
                    });
                }
            }

            /// Tokens `t0..t0 + T` by rows `r0..r0 + R`.
            #[inline]
            #[target_feature(enable = $features)]
            unsafe fn tile<const T: usize, const R: usize>(
                w: &QWeights,
                a: &Acts,
                t0: usize,
                r0: usize,
                out: *mut f32,
            ) {
                let (k, n) = (w.k, w.n);
                let nb = k / BLOCK;
                debug_assert!(t0 + T <= a.t && r0 + R <= n);
                let mut acc = [[_mm256_setzero_ps(); T]; R];
                let (aq, ad) = (a.q.as_ptr(), a.d.as_ptr());
                let (qs, sc) = (w.qs.as_ptr(), w.scales.as_ptr());
                // The activations of block `b`: bytes and scale of each token.
                macro_rules! acts {
                    ($b:expr) => {{
                        let mut x = [_mm256_setzero_si256(); T];
                        let mut xd = [_mm256_setzero_ps(); T];
                        unroll4!(T, i, {
                            let at = (t0 + i) * k + $b * BLOCK;
                            x[i] = _mm256_lddqu_si256(aq.add(at) as *const __m256i);
                            xd[i] = _mm256_broadcast_ss(&*ad.add((t0 + i) * nb + $b));
                        });
                        (x, xd)
                    }};
                }
                // SAFETY: every offset below is inside its buffer: tokens below `a.t`, rows
                // below `n`, blocks below `nb` (the sizes `QWeights` and `Acts` were built with).
                unsafe {
                    match w.codes {
                        Codes::U4 => {
                            let mask = _mm256_set1_epi8(0x0F);
                            for b in 0..nb {
                                let (x, xd) = acts!(b);
                                unroll4!(R, r, {
                                    let p = qs.add((r0 + r) * k / 2 + b * 16);
                                    if T == 1 {
                                        fetch(p.wrapping_add(R * k / 2));
                                    }
                                    let raw = _mm_lddqu_si128(p as *const __m128i);
                                    let hi = _mm_srli_epi16(raw, 4);
                                    let wv = _mm256_and_si256(_mm256_set_m128i(hi, raw), mask);
                                    let wd = _mm256_broadcast_ss(&*sc.add((r0 + r) * nb + b));
                                    unroll4!(T, i, {
                                        let p = _mm256_cvtepi32_ps(dot(wv, x[i]));
                                        let s = _mm256_mul_ps(wd, xd[i]);
                                        acc[r][i] = _mm256_fmadd_ps(p, s, acc[r][i]);
                                    });
                                });
                            }
                        }
                        Codes::I8 | Codes::I8Half => {
                            // Q6_K's scales cover 16 elements: lanes 0..4 hold elements 0..16,
                            // lanes 4..8 the rest.
                            let halves = w.codes == Codes::I8Half;
                            for b in 0..nb {
                                let (x, xd) = acts!(b);
                                unroll4!(R, r, {
                                    let p = qs.add((r0 + r) * k + b * BLOCK);
                                    if T == 1 {
                                        fetch(p.wrapping_add(R * k));
                                    }
                                    let wv = _mm256_lddqu_si256(p as *const __m256i);
                                    let wa = _mm256_abs_epi8(wv);
                                    let blk = (r0 + r) * nb + b;
                                    let wd = if halves {
                                        _mm256_set_m128(
                                            _mm_broadcast_ss(&*sc.add(2 * blk + 1)),
                                            _mm_broadcast_ss(&*sc.add(2 * blk)),
                                        )
                                    } else {
                                        _mm256_broadcast_ss(&*sc.add(blk))
                                    };
                                    unroll4!(T, i, {
                                        let xs = _mm256_sign_epi8(x[i], wv);
                                        let p = _mm256_cvtepi32_ps(dot(wa, xs));
                                        let s = _mm256_mul_ps(wd, xd[i]);
                                        acc[r][i] = _mm256_fmadd_ps(p, s, acc[r][i]);
                                    });
                                });
                            }
                        }
                        // `tile_super`'s.
                        Codes::Super => {}
                    }
                    // The offsets: each block's offset times its activation sum, 8 blocks at a
                    // time, then whatever is left.
                    let mut tails = [[0f32; T]; R];
                    if let Some(m) = &w.mins {
                        let (mp, sp) = (m.as_ptr(), a.s.as_ptr());
                        let whole = nb / 8 * 8;
                        unroll4!(R, r, {
                            unroll4!(T, i, {
                                let (wr, tr) = ((r0 + r) * nb, (t0 + i) * nb);
                                let mut v = _mm256_setzero_ps();
                                for b in (0..whole).step_by(8) {
                                    let mv = _mm256_castsi256_ps(_mm256_lddqu_si256(mp.add(wr + b) as *const __m256i));
                                    let sv = _mm256_castsi256_ps(_mm256_lddqu_si256(sp.add(tr + b) as *const __m256i));
                                    v = _mm256_fmadd_ps(mv, sv, v);
                                }
                                let mut tail = 0f32;
                                for b in whole..nb {
                                    tail += *mp.add(wr + b) * *sp.add(tr + b);
                                }
                                acc[r][i] = _mm256_add_ps(acc[r][i], v);
                                tails[r][i] = tail;
                            });
                        });
                    }
                    unroll4!(R, r, {
                        unroll4!(T, i, {
                            *out.add((t0 + i) * n + r0 + r) = hsum(acc[r][i]) + tails[r][i];
                        });
                    });
                }
            }
        }
    };
}

kernels!(
    avx2,
    "avx2,fma,f16c",
    2,
    /// Unsigned bytes `w` times signed bytes `x`, summed in groups of 4 into 8 lanes. The
    /// 16-bit pair sums cannot saturate: `w` is at most 128 (a code or its magnitude) and `x`
    /// at most 127 in magnitude.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn dot(w: __m256i, x: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1))
    },
    /// `acc` plus 16-bit `p` times 16-bit scales `s`, pairs summed into 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn scaled(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
    }
);

kernels!(
    vnni,
    "avx2,fma,f16c,avx512f,avx512vl,avx512vnni",
    4,
    /// Unsigned bytes `w` times signed bytes `x`, summed in groups of 4 into 8 lanes, in one
    /// instruction.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    fn dot(w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)
    },
    /// `acc` plus 16-bit `p` times 16-bit scales `s`, pairs summed into 8 lanes, in one
    /// instruction.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512vnni")]
    fn scaled(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, p, s)
    }
);

/// AVX-512 VNNI on 512-bit registers: two blocks of 32 per instruction, for byte codes in
/// prompt passes (measured faster there). Four-bit codes (whose unpacking across 128-bit lanes
/// costs more than it saves), decoding (where the 256-bit kernel's prefetch matters more) and
/// rows with an odd number of blocks take the 256-bit kernel.
pub mod vnni512 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::super::{Acts, BLOCK, Codes, QWeights};

    /// Output rows `rows` of every token of `a`.
    ///
    /// # Safety
    /// The CPU has AVX-512 F, BW, VL and VNNI; `out` points at `a.t * w.n` floats and no other
    /// thread writes these rows.
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub unsafe fn rows(w: &QWeights, a: &Acts, rows: Range<usize>, out: *mut f32) {
        let bytes = matches!(w.codes, Codes::I8 | Codes::I8Half);
        if !(w.k / BLOCK).is_multiple_of(2) || !bytes || a.t < 4 {
            // SAFETY: as the caller's.
            return unsafe { super::vnni::rows(w, a, rows, out) };
        }
        drive_tiles!(tile, 4, w, a, rows, out);
    }

    /// Two consecutive floats at `p`, each spread over 8 lanes (or four, each over 4 lanes,
    /// with `idx` = [`QUARTERS`]).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn spread(p: *const f32, mask: __mmask8, idx: __m512i) -> __m512 {
        // SAFETY: the caller's `p` holds the floats `mask` selects; masked loads read no more.
        let v = unsafe { _mm_maskz_loadu_ps(mask, p) };
        _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v))
    }

    /// Tokens `t0..t0 + T` by rows `r0..r0 + R`, two blocks at a time.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn tile<const T: usize, const R: usize>(
        w: &QWeights,
        a: &Acts,
        t0: usize,
        r0: usize,
        out: *mut f32,
    ) {
        let (k, n) = (w.k, w.n);
        let nb = k / BLOCK;
        debug_assert!(t0 + T <= a.t && r0 + R <= n && nb.is_multiple_of(2));
        let halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
        let quarters = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
        let mut acc = [[_mm512_setzero_ps(); T]; R];
        let (aq, ad) = (a.q.as_ptr(), a.d.as_ptr());
        let (qs, sc) = (w.qs.as_ptr(), w.scales.as_ptr());
        let all = !0u64;
        // SAFETY: every offset below is inside its buffer: tokens below `a.t`, rows below
        // `n`, block pairs below `nb` (the sizes `QWeights` and `Acts` were built with);
        // masked loads read only the selected elements.
        unsafe {
            for b in (0..nb).step_by(2) {
                let mut x = [_mm512_setzero_si512(); T];
                let mut xd = [_mm512_setzero_ps(); T];
                unroll4!(T, i, {
                    let at = (t0 + i) * k + b * BLOCK;
                    x[i] = _mm512_maskz_loadu_epi8(all, aq.add(at));
                    xd[i] = spread(ad.add((t0 + i) * nb + b), 0b11, halves);
                });
                unroll4!(R, r, {
                    let blk = (r0 + r) * nb + b;
                    let (wv, wd, signed) = match w.codes {
                        Codes::U4 => {
                            let p = qs.add((r0 + r) * k / 2 + b * 16);
                            let raw = _mm256_lddqu_si256(p as *const __m256i);
                            let mask = _mm256_set1_epi8(0x0F);
                            let lo = _mm256_and_si256(raw, mask);
                            let hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask);
                            // [lo b, lo b+1, hi b, hi b+1] -> [lo b, hi b, lo b+1, hi b+1].
                            let z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
                            let z = _mm512_shuffle_i64x2(z, z, 0b11_01_10_00);
                            (z, spread(sc.add(blk), 0b11, halves), false)
                        }
                        Codes::I8 => {
                            let p = qs.add((r0 + r) * k + b * BLOCK);
                            let z = _mm512_maskz_loadu_epi8(all, p as *const i8);
                            (z, spread(sc.add(blk), 0b11, halves), true)
                        }
                        Codes::I8Half => {
                            let p = qs.add((r0 + r) * k + b * BLOCK);
                            let z = _mm512_maskz_loadu_epi8(all, p as *const i8);
                            (z, spread(sc.add(2 * blk), 0b1111, quarters), true)
                        }
                        // Never here: `rows` sends them to the 256-bit kernel.
                        Codes::Super => (_mm512_setzero_si512(), _mm512_setzero_ps(), false),
                    };
                    if signed {
                        // |w| times x with w's sign: unsigned by signed bytes.
                        let wa = _mm512_abs_epi8(wv);
                        let neg = _mm512_movepi8_mask(wv);
                        unroll4!(T, i, {
                            let xs = _mm512_mask_sub_epi8(x[i], neg, _mm512_setzero_si512(), x[i]);
                            let p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wa, xs);
                            let s = _mm512_mul_ps(wd, xd[i]);
                            acc[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc[r][i]);
                        });
                    } else {
                        unroll4!(T, i, {
                            let p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, x[i]);
                            let s = _mm512_mul_ps(wd, xd[i]);
                            acc[r][i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc[r][i]);
                        });
                    }
                });
            }
            let mut sums = [[0f32; T]; R];
            unroll4!(R, r, {
                unroll4!(T, i, {
                    sums[r][i] = _mm512_reduce_add_ps(acc[r][i]);
                });
            });
            if let Some(m) = &w.mins {
                unroll4!(R, r, {
                    unroll4!(T, i, {
                        let (mr, sr) = (&m[(r0 + r) * nb..][..nb], &a.s[(t0 + i) * nb..][..nb]);
                        sums[r][i] += mr.iter().zip(sr).map(|(x, y)| x * y).sum::<f32>();
                    });
                });
            }
            unroll4!(R, r, {
                unroll4!(T, i, {
                    *out.add((t0 + i) * n + r0 + r) = sums[r][i];
                });
            });
        }
    }
}
