//! Little-endian reading and writing of fastText's binary layout, with bounds checks so that a
//! truncated or corrupt file is an error, never a panic or a huge allocation.

use std::io::Write;

/// A cursor over a model file held in memory.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated at byte {}: {n} more bytes expected, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    pub fn bool(&mut self) -> Result<bool, String> {
        Ok(self.u8()? != 0)
    }
    pub fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> Result<i64, String> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A NUL-terminated byte string.
    pub fn cstr(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == 0) else {
            return Err(format!("unterminated string at byte {}", self.pos));
        };
        self.pos += end + 1;
        Ok(&rest[..end])
    }

    /// `n` little-endian f32 values; `n` is checked against the bytes left first.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>, String> {
        let bytes = self.bytes(n.checked_mul(4).ok_or("matrix size overflows")?)?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A count read from the file that must be non-negative and at most `max`.
    pub fn count(&mut self, what: &str, v: i64, max: usize) -> Result<usize, String> {
        if v < 0 || v as u64 > max as u64 {
            return Err(format!("bad {what}: {v}"));
        }
        let _ = self;
        Ok(v as usize)
    }
}

/// Writers of the same layout.
pub fn put_i32(w: &mut impl Write, v: i32) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}
pub fn put_i64(w: &mut impl Write, v: i64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}
pub fn put_f64(w: &mut impl Write, v: f64) -> std::io::Result<()> {
    w.write_all(&v.to_le_bytes())
}
pub fn put_bool(w: &mut impl Write, v: bool) -> std::io::Result<()> {
    w.write_all(&[v as u8])
}
pub fn put_f32s(w: &mut impl Write, v: &[f32]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(v.len().min(1 << 16) * 4);
    for chunk in v.chunks(1 << 16) {
        buf.clear();
        for x in chunk {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}
