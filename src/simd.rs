//! Runtime choice of instruction set: [`Path`] is the family of kernels this CPU runs (or
//! `FOLIO_KERNELS` forces), which the hand-written kernels (`quant`, attention) dispatch
//! on; [`avx2!`] compiles a plain-Rust hot loop (activation quantization, attention tiles, the
//! encoder's GELU) twice, for the baseline x86-64 and for AVX2 with FMA, and runs the second
//! where the CPU has them. Nothing here depends on the rest of folio.

use std::sync::OnceLock;

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
                    && std::arch::is_x86_feature_detected!("f16c")
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

/// Whether the AVX2 copies run: the CPU has AVX2 and FMA and `FOLIO_KERNELS` does not ask
/// for the scalar kernels.
pub fn use_avx2() -> bool {
    Path::current() != Path::Scalar
}

/// `e^x` to within a few units in the last place, branch-free so that loops over it
/// vectorise (libm's `expf` does not); `-inf` and anything below -87 give 0.
#[inline]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // x = n ln 2 + r, |r| <= ln 2 / 2; e^r by its Taylor series to r^7 / 7!.
    // ln 2 in two parts (Cody and Waite), so that n * LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0 / 5040.0;
    let p = p * r + 1.0 / 720.0;
    let p = p * r + 1.0 / 120.0;
    let p = p * r + 1.0 / 24.0;
    let p = p * r + 1.0 / 6.0;
    let p = p * r + 0.5;
    let p = p * r + 1.0;
    let p = p * r + 1.0;
    let e = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x <= -87.0 { 0.0 } else { p * e }
}

/// Defines a function whose body is compiled for the baseline and for AVX2 with FMA, and picks
/// one per call with [`use_avx2`]. Arguments are plain names; the body may call `#[inline]`
/// helpers, which are compiled into each copy.
macro_rules! avx2 {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::simd::avx2!(@copies [] ($($arg: $ty),*) ($($ret)?) $body);
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::use_avx2() {
                // SAFETY: the CPU has AVX2 and FMA (checked by `use_avx2()`).
                return unsafe { fast($($arg),*) };
            }
            body($($arg),*)
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis unsafe fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    ) => {
        $(#[$meta])*
        $vis unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::simd::avx2!(@copies [unsafe] ($($arg: $ty),*) ($($ret)?) $body);
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::use_avx2() {
                // SAFETY: the CPU has AVX2 and FMA (checked by `use_avx2()`); the rest is
                // the caller's contract.
                return unsafe { fast($($arg),*) };
            }
            // SAFETY: the caller's contract.
            unsafe { body($($arg),*) }
        }
    };
    // The two copies: `body` for the baseline, `fast` for AVX2 with FMA.
    (@copies [$($unsafe:tt)?] ($($arg:ident: $ty:ty),*) ($($ret:ty)?) $body:block) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        $($unsafe)? fn body($($arg: $ty),*) $(-> $ret)? $body

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        $($unsafe)? fn fast($($arg: $ty),*) $(-> $ret)? {
            // SAFETY: as for the function being defined.
            #[allow(unused_unsafe)]
            unsafe {
                body($($arg),*)
            }
        }
    };
}

pub(crate) use avx2;

/// Keys per attention tile: the scores of one query against a tile stay in registers.
pub const KEY_TILE: usize = 32;

/// An element of a key or value tile: f32 (the encoder's attention) or f16 (the language
/// model's cache, half the bytes that decoding streams through for every token).
pub trait Elem: Copy {
    fn f32(self) -> f32;
    /// Eight consecutive elements from `p`, widened.
    ///
    /// # Safety
    /// `p` points at eight readable elements and the CPU has AVX2 and F16C.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(p: *const Self) -> std::arch::x86_64::__m256;
}

impl Elem for f32 {
    #[inline(always)]
    fn f32(self) -> f32 {
        self
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> std::arch::x86_64::__m256 {
        // SAFETY: the caller's contract.
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
}

impl Elem for half::f16 {
    #[inline(always)]
    fn f32(self) -> f32 {
        self.to_f32()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(p: *const half::f16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        // SAFETY: the caller's contract (eight f16 are 128 bits).
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
    }
}

/// The scores of one query (`hd` floats) against a tile of keys: `cols` holds, for each
/// dimension, that dimension of the tile's 32 keys.
pub fn tile_scores<E: Elem>(q: &[f32], cols: &[E]) -> [f32; KEY_TILE] {
    assert!(cols.len() >= q.len() * KEY_TILE, "a whole tile of keys");
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: the CPU has AVX2, FMA and F16C; `cols` holds the tile (asserted).
        return unsafe { x86::tile_scores(q, cols) };
    }
    tile_scores_plain(q, cols)
}

/// [`tile_scores`] in plain Rust: the reference, and the path for CPUs without AVX2.
pub fn tile_scores_plain<E: Elem>(q: &[f32], cols: &[E]) -> [f32; KEY_TILE] {
    let mut out = [0f32; KEY_TILE];
    for (&x, col) in q.iter().zip(cols.chunks_exact(KEY_TILE)) {
        for (o, &k) in out.iter_mut().zip(col) {
            *o += x * k.f32();
        }
    }
    out
}

/// `o += sum_j p[j] * value_j`, value `j` being the `o.len()` elements at `values[j * stride..]`.
pub fn add_values<E: Elem>(o: &mut [f32], p: &[f32], values: &[E], stride: usize) {
    if let Some(last) = p.len().checked_sub(1) {
        assert!(values.len() >= last * stride + o.len(), "every value row");
    }
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: the CPU has AVX2, FMA and F16C; `values` holds every row (asserted).
        return unsafe { x86::add_values(o, p, values, stride) };
    }
    add_values_plain(o, p, values, stride)
}

/// [`add_values`] in plain Rust: the reference, and the path for CPUs without AVX2.
pub fn add_values_plain<E: Elem>(o: &mut [f32], p: &[f32], values: &[E], stride: usize) {
    for (j, &w) in p.iter().enumerate() {
        for (x, &y) in o.iter_mut().zip(&values[j * stride..]) {
            *x += w * y.f32();
        }
    }
}

/// The two inner products of a tile with AVX2 and FMA. Each keeps eight independent sums in
/// registers (even and odd dimensions, or even and odd keys, apart): with four, every FMA
/// waits for the one before it and the units sit half idle.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Elem, KEY_TILE};

    /// [`super::tile_scores`].
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `cols` holds `q.len() * KEY_TILE` elements.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn tile_scores<E: Elem>(q: &[f32], cols: &[E]) -> [f32; KEY_TILE] {
        let mut even = [_mm256_setzero_ps(); KEY_TILE / 8];
        let mut odd = [_mm256_setzero_ps(); KEY_TILE / 8];
        let c = cols.as_ptr();
        let pairs = q.len() / 2;
        for d in 0..pairs {
            let (x0, x1) = (_mm256_set1_ps(q[2 * d]), _mm256_set1_ps(q[2 * d + 1]));
            for l in 0..KEY_TILE / 8 {
                // SAFETY: dimensions 2d and 2d + 1 lie within the asserted tile.
                unsafe {
                    let k0 = E::load8(c.add(2 * d * KEY_TILE + 8 * l));
                    let k1 = E::load8(c.add((2 * d + 1) * KEY_TILE + 8 * l));
                    even[l] = _mm256_fmadd_ps(x0, k0, even[l]);
                    odd[l] = _mm256_fmadd_ps(x1, k1, odd[l]);
                }
            }
        }
        if q.len() % 2 == 1 {
            let d = q.len() - 1;
            let x = _mm256_set1_ps(q[d]);
            for (l, e) in even.iter_mut().enumerate() {
                // SAFETY: dimension d lies within the asserted tile.
                *e = _mm256_fmadd_ps(x, unsafe { E::load8(c.add(d * KEY_TILE + 8 * l)) }, *e);
            }
        }
        let mut out = [0f32; KEY_TILE];
        for (l, o) in out.chunks_exact_mut(8).enumerate() {
            // SAFETY: `o` holds 8 floats.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), _mm256_add_ps(even[l], odd[l])) };
        }
        out
    }

    /// [`super::add_values`]: 32 outputs at a time, held in registers while the values stream
    /// past; the rest (head sizes not a multiple of 32) in plain Rust.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `values` holds `o.len()` elements at every
    /// `j * stride` for `j < p.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn add_values<E: Elem>(o: &mut [f32], p: &[f32], values: &[E], stride: usize) {
        let done = o.len() / 32 * 32;
        let v = values.as_ptr();
        for (c, chunk) in o[..done].chunks_exact_mut(32).enumerate() {
            let mut even = [_mm256_setzero_ps(); 4];
            let mut odd = [_mm256_setzero_ps(); 4];
            for (a, x) in even.iter_mut().zip(chunk.chunks_exact(8)) {
                // SAFETY: `x` holds 8 floats.
                *a = unsafe { _mm256_loadu_ps(x.as_ptr()) };
            }
            let row = |j: usize, l: usize| {
                // SAFETY: row j < p.len() holds the chunk's outputs (the caller's contract).
                unsafe { E::load8(v.add(j * stride + c * 32 + 8 * l)) }
            };
            let pairs = p.len() / 2;
            for j in 0..pairs {
                let (w0, w1) = (_mm256_set1_ps(p[2 * j]), _mm256_set1_ps(p[2 * j + 1]));
                for l in 0..4 {
                    even[l] = _mm256_fmadd_ps(w0, row(2 * j, l), even[l]);
                    odd[l] = _mm256_fmadd_ps(w1, row(2 * j + 1, l), odd[l]);
                }
            }
            if p.len() % 2 == 1 {
                let j = p.len() - 1;
                let w = _mm256_set1_ps(p[j]);
                for (l, e) in even.iter_mut().enumerate() {
                    *e = _mm256_fmadd_ps(w, row(j, l), *e);
                }
            }
            for (l, x) in chunk.chunks_exact_mut(8).enumerate() {
                // SAFETY: `x` holds 8 floats.
                unsafe { _mm256_storeu_ps(x.as_mut_ptr(), _mm256_add_ps(even[l], odd[l])) };
            }
        }
        if done < o.len() {
            super::add_values_plain(&mut o[done..], p, &values[done..], stride);
        }
    }
}

/// Deterministic uniform noise in [-1, 1), for the tests of the kernels here and of their
/// callers.
#[cfg(test)]
pub(crate) fn random(n: usize, seed: u64) -> Vec<f32> {
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

#[cfg(test)]
mod tests {
    use super::random;

    avx2! {
        /// A dot product, as the compiler vectorises it.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn exp_is_within_a_few_ulps_of_libm() {
        assert_eq!(super::exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(super::exp(-100.0), 0.0);
        assert_eq!(super::exp(0.0), 1.0);
        for i in 0..100_000 {
            let x = -86.0 + 174.0 * i as f32 / 100_000.0;
            let (a, b) = (super::exp(x), x.exp());
            assert!((a - b).abs() <= 4.0 * f32::EPSILON * b, "{x}: {a} vs {b}");
        }
    }

    #[test]
    fn both_copies_compute_the_same() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - plain).abs() < 1e-3);
    }

    #[test]
    fn simd_tile_products_match_plain_rust() {
        if !super::use_avx2() {
            return;
        }
        check_tile_products::<f32>(|x| x);
        check_tile_products::<half::f16>(half::f16::from_f32);
    }

    fn check_tile_products<E: super::Elem>(elem: fn(f32) -> E) {
        let elems = |v: Vec<f32>| -> Vec<E> { v.into_iter().map(elem).collect() };
        for hd in [1usize, 3, 8, 17, 32, 64, 96, 128] {
            let q = random(hd, hd as u64);
            let cols = elems(random(hd * super::KEY_TILE, 7));
            let want = super::tile_scores_plain(&q, &cols);
            // SAFETY: the CPU has AVX2, FMA and F16C (checked above); `cols` is a tile.
            let got = unsafe { super::x86::tile_scores(&q, &cols) };
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "scores, hd {hd}");
            }
            let stride = hd + 5;
            for keys in [0usize, 1, 2, 7, 32] {
                let p = random(keys, 3);
                let values = elems(random(keys * stride + hd, 4));
                let (mut want, mut got) = (random(hd, 5), random(hd, 5));
                super::add_values_plain(&mut want, &p, &values, stride);
                // SAFETY: as above; `values` holds every row.
                unsafe { super::x86::add_values(&mut got, &p, &values, stride) };
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * (1.0 + w.abs()), "values, hd {hd}");
                }
            }
        }
    }
}
