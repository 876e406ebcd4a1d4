//! A bounds check of a GGUF file's header, metadata and tensor table before candle reads them.
//!
//! candle's reader allocates what the header says: a string length, an array length or a
//! tensor count of 2^60 from a damaged or hostile file makes it reserve that much memory and
//! abort the process, which no `catch_unwind` can stop. This walks the same layout reading
//! only lengths, and refuses any that the file's size cannot hold.

use std::io::{Read, Seek, SeekFrom};

/// Dimensions a tensor may have (ggml's limit).
const MAX_DIMS: u32 = 4;

/// Checks that every count and length in the header of the GGUF file `r` (of `size` bytes)
/// fits in the file. `Err` says what does not add up.
pub fn check<R: Read + Seek>(r: &mut R, size: u64) -> Result<(), String> {
    r.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut h = Header { r, size, pos: 0 };
    let magic = h.u32()?;
    if magic != u32::from_le_bytes(*b"GGUF") {
        return Err("no GGUF header".into());
    }
    let version = h.u32()?;
    if !(1..=3).contains(&version) {
        return Err(format!("unknown GGUF version {version}"));
    }
    // Version 1 used 32-bit counts and lengths.
    let wide = version >= 2;
    let tensors = h.count(wide)?;
    let kvs = h.count(wide)?;
    // Each entry takes at least a few bytes: counts beyond what the file can hold are damage.
    h.fits(tensors, 4 + 4 + 4 + 8, "tensor count")?;
    h.fits(kvs, 4 + 4, "metadata count")?;
    for _ in 0..kvs {
        h.string(wide)?;
        let ty = h.u32()?;
        h.value(ty, wide, 0)?;
    }
    for _ in 0..tensors {
        h.string(wide)?;
        let dims = h.u32()?;
        if dims == 0 || dims > MAX_DIMS {
            return Err(format!("a tensor with {dims} dimensions"));
        }
        for _ in 0..dims {
            h.count(wide)?;
        }
        h.u32()?;
        h.u64()?;
    }
    r_seek_start(h.r)
}

fn r_seek_start<R: Seek>(r: &mut R) -> Result<(), String> {
    r.seek(SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

struct Header<'a, R> {
    r: &'a mut R,
    size: u64,
    pos: u64,
}

impl<R: Read + Seek> Header<'_, R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|_| "the header ends early".to_string())?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn count(&mut self, wide: bool) -> Result<u64, String> {
        if wide {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }

    /// `n` items of at least `each` bytes fit in what is left of the file.
    fn fits(&self, n: u64, each: u64, what: &str) -> Result<(), String> {
        let left = self.size.saturating_sub(self.pos);
        match n.checked_mul(each) {
            Some(b) if b <= left => Ok(()),
            _ => Err(format!("{what} {n} does not fit in the file")),
        }
    }

    fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        self.fits(n, 1, what)?;
        let step = i64::try_from(n).map_err(|_| format!("{what} {n} is too large"))?;
        self.r
            .seek(SeekFrom::Current(step))
            .map_err(|e| e.to_string())?;
        self.pos += n;
        Ok(())
    }

    fn string(&mut self, wide: bool) -> Result<(), String> {
        let len = self.count(wide)?;
        self.skip(len, "a string length")
    }

    /// Skips a metadata value of type `ty`, checking every length in it.
    fn value(&mut self, ty: u32, wide: bool, depth: u32) -> Result<(), String> {
        match ty {
            0 | 1 | 7 => self.skip(1, "a value"),
            2 | 3 => self.skip(2, "a value"),
            4..=6 => self.skip(4, "a value"),
            10..=12 => self.skip(8, "a value"),
            8 => self.string(wide),
            9 => {
                if depth > 2 {
                    return Err("arrays nested too deep".into());
                }
                let inner = self.u32()?;
                let n = self.count(wide)?;
                let min = match inner {
                    0 | 1 | 7 => 1,
                    2 | 3 => 2,
                    4..=6 => 4,
                    8 if wide => 8,
                    8 => 4,
                    9 => 12,
                    10..=12 => 8,
                    t => return Err(format!("unknown metadata type {t}")),
                };
                self.fits(n, min, "an array length")?;
                match inner {
                    8 | 9 => (0..n).try_for_each(|_| self.value(inner, wide, depth + 1)),
                    _ => self.skip(n * min, "an array"),
                }
            }
            t => Err(format!("unknown metadata type {t}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A version 3 header: one string metadata entry, one 2-D tensor.
    fn tiny() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(b"GGUF");
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes()); // tensors
        b.extend(1u64.to_le_bytes()); // metadata
        b.extend(20u64.to_le_bytes());
        b.extend(b"general.architecture");
        b.extend(8u32.to_le_bytes());
        b.extend(5u64.to_le_bytes());
        b.extend(b"llama");
        b.extend(6u64.to_le_bytes());
        b.extend(b"weight");
        b.extend(2u32.to_le_bytes());
        b.extend(4u64.to_le_bytes());
        b.extend(4u64.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend([0u8; 64]);
        b
    }

    fn run(b: &[u8]) -> Result<(), String> {
        check(&mut Cursor::new(b), b.len() as u64)
    }

    #[test]
    fn a_sound_header_passes_and_absurd_lengths_do_not() {
        let b = tiny();
        assert_eq!(run(&b), Ok(()));
        let mut huge = b.clone();
        huge[8..16].copy_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(run(&huge).unwrap_err().contains("tensor count"));
        let mut long = b.clone();
        long[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(run(&long).is_err());
        assert!(run(&b[..30]).is_err());
        assert!(run(b"GGUF").is_err());
    }
}
