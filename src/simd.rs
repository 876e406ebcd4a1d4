//! Runtime choice of instruction set for the hot loops written as plain Rust (attention,
//! activation quantization, the encoder's GELU): [`avx2!`] compiles a function twice, for the
//! baseline x86-64 and for AVX2 with FMA, and runs the second where the CPU has them. The
//! binary itself targets the baseline, so it runs on any x86-64; the compiler vectorises each
//! copy for its own instruction set. The hand-written kernels (`llm::quant`) choose their
//! paths the same way, from [`crate::llm::quant::Path::current`].

/// Whether the AVX2 copies run: the CPU has AVX2 and FMA and `FOLIO_KERNELS` does not ask
/// for the scalar kernels.
pub fn use_avx2() -> bool {
    crate::llm::quant::Path::current() != crate::llm::quant::Path::Scalar
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

#[cfg(test)]
mod tests {
    avx2! {
        /// A dot product, as the compiler vectorises it.
        fn dot(a: &[f32], b: &[f32]) -> f32 {
            a.iter().zip(b).map(|(x, y)| x * y).sum()
        }
    }

    #[test]
    fn both_copies_compute_the_same() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot(&a, &b) as f64 - plain).abs() < 1e-3);
    }
}
