//! Megatron-LM indexed datasets: the `.bin` + `.idx` pair that megatron-core's
//! `IndexedDataset` reads.
//!
//! `.bin` holds the token ids of every sequence back to back, in one integer type. `.idx` is,
//! little-endian throughout:
//!
//! | bytes | field |
//! |---|---|
//! | 9 | magic `MMIDIDX\x00\x00` |
//! | 8 | version, u64 = 1 |
//! | 1 | dtype code, u8: 1 u8, 2 i8, 3 i16, 4 i32, 5 i64, 6 f64, 7 f32, 8 u16 |
//! | 8 | sequence count S, u64 |
//! | 8 | document count D, u64 (entries of the document index, = documents + 1) |
//! | 4 S | sequence lengths in tokens, i32 |
//! | 8 S | sequence byte offsets into `.bin`, i64 |
//! | 8 D | document index, i64: 0, then the sequence index where each document ends |
//!
//! curate writes one sequence per document, so the document index is `0, 1, ..., S` and the
//! trainer sees every document boundary. Token ids go in u16 when the vocabulary has fewer
//! than 65,500 ids, else in i32 (megatron-core's own rule).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use stages::error::{Error, Result};

/// The index file's magic bytes.
pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
/// Size of the fixed `.idx` header.
pub const HEADER_LEN: usize = 9 + 8 + 1 + 8 + 8;

/// Integer types of token ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint16,
}

impl Dtype {
    /// megatron-core's choice for a vocabulary of this size.
    pub fn for_vocab(vocab_size: u32) -> Dtype {
        if vocab_size < 65500 {
            Dtype::Uint16
        } else {
            Dtype::Int32
        }
    }
    pub fn code(self) -> u8 {
        match self {
            Dtype::Uint8 => 1,
            Dtype::Int8 => 2,
            Dtype::Int16 => 3,
            Dtype::Int32 => 4,
            Dtype::Int64 => 5,
            Dtype::Uint16 => 8,
        }
    }
    pub fn from_code(code: u8) -> Option<Dtype> {
        Some(match code {
            1 => Dtype::Uint8,
            2 => Dtype::Int8,
            3 => Dtype::Int16,
            4 => Dtype::Int32,
            5 => Dtype::Int64,
            8 => Dtype::Uint16,
            _ => return None,
        })
    }
    /// Bytes per token.
    pub fn size(self) -> usize {
        match self {
            Dtype::Uint8 | Dtype::Int8 => 1,
            Dtype::Int16 | Dtype::Uint16 => 2,
            Dtype::Int32 => 4,
            Dtype::Int64 => 8,
        }
    }
    /// The largest id this type holds.
    pub fn max_id(self) -> u64 {
        match self {
            Dtype::Uint8 => u8::MAX as u64,
            Dtype::Int8 => i8::MAX as u64,
            Dtype::Int16 => i16::MAX as u64,
            Dtype::Uint16 => u16::MAX as u64,
            Dtype::Int32 => i32::MAX as u64,
            Dtype::Int64 => i64::MAX as u64,
        }
    }
    /// Appends the little-endian encoding of `tokens` to `buf`; fails on an id that does not fit.
    pub fn encode(self, tokens: &[u32], buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some(&t) = tokens.iter().find(|&&t| t as u64 > self.max_id()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("token id {t} does not fit {self:?}"),
            ));
        }
        buf.reserve(tokens.len() * self.size());
        for &t in tokens {
            match self {
                Dtype::Uint8 | Dtype::Int8 => buf.push(t as u8),
                Dtype::Int16 | Dtype::Uint16 => buf.extend_from_slice(&(t as u16).to_le_bytes()),
                Dtype::Int32 => buf.extend_from_slice(&(t as i32).to_le_bytes()),
                Dtype::Int64 => buf.extend_from_slice(&(t as i64).to_le_bytes()),
            }
        }
        Ok(())
    }
}

/// Writes an `.idx` file for sequences of the given lengths (one sequence per document when
/// `doc_index` is `0..=S`).
pub fn write_index(
    out: &mut impl Write,
    dtype: Dtype,
    lengths: &[i32],
    doc_index: &[i64],
) -> io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&1u64.to_le_bytes())?;
    out.write_all(&[dtype.code()])?;
    out.write_all(&(lengths.len() as u64).to_le_bytes())?;
    out.write_all(&(doc_index.len() as u64).to_le_bytes())?;
    let mut buf = Vec::with_capacity(lengths.len() * 12 + doc_index.len() * 8);
    for &l in lengths {
        buf.extend_from_slice(&l.to_le_bytes());
    }
    let mut ptr = 0i64;
    for &l in lengths {
        buf.extend_from_slice(&ptr.to_le_bytes());
        ptr += l as i64 * dtype.size() as i64;
    }
    for &d in doc_index {
        buf.extend_from_slice(&d.to_le_bytes());
    }
    out.write_all(&buf)
}

/// A parsed `.idx` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Index {
    pub dtype: Dtype,
    pub lengths: Vec<i32>,
    pub pointers: Vec<i64>,
    pub doc_index: Vec<i64>,
}

impl Index {
    /// Parses and checks an `.idx` file's bytes (`path` only names errors).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Index> {
        let bad = |offset: usize, message: String| Error::Format {
            path: path.to_path_buf(),
            offset: offset as u64,
            message,
        };
        if bytes.len() < HEADER_LEN {
            return Err(bad(
                0,
                format!("{} bytes: shorter than the header", bytes.len()),
            ));
        }
        if &bytes[..9] != MAGIC {
            return Err(bad(0, "bad magic (not an MMIDIDX index)".into()));
        }
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
        let version = u64_at(9);
        if version != 1 {
            return Err(bad(9, format!("version {version}, expected 1")));
        }
        let dtype = Dtype::from_code(bytes[17]).ok_or_else(|| {
            bad(
                17,
                format!("dtype code {} is not an integer type", bytes[17]),
            )
        })?;
        let seqs = u64_at(18) as usize;
        let docs = u64_at(26) as usize;
        let need = seqs
            .checked_mul(12)
            .and_then(|x| x.checked_add(docs.checked_mul(8)?))
            .and_then(|x| x.checked_add(HEADER_LEN))
            .ok_or_else(|| bad(18, "counts overflow".into()))?;
        if bytes.len() < need {
            return Err(bad(
                18,
                format!(
                    "{seqs} sequences and {docs} document entries need {need} bytes, file has {}",
                    bytes.len()
                ),
            ));
        }
        let mut o = HEADER_LEN;
        let lengths: Vec<i32> = bytes[o..o + 4 * seqs]
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        o += 4 * seqs;
        let pointers: Vec<i64> = bytes[o..o + 8 * seqs]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        o += 8 * seqs;
        let doc_index: Vec<i64> = bytes[o..o + 8 * docs]
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        if let Some(i) = lengths.iter().position(|&l| l < 0) {
            return Err(bad(HEADER_LEN + 4 * i, "negative sequence length".into()));
        }
        let mut expect = 0i64;
        for (i, (&p, &l)) in pointers.iter().zip(&lengths).enumerate() {
            if p != expect {
                return Err(bad(
                    HEADER_LEN + 4 * seqs + 8 * i,
                    format!("sequence {i} starts at byte {p}, expected {expect}"),
                ));
            }
            expect += l as i64 * dtype.size() as i64;
        }
        if doc_index.first().is_some_and(|&d| d != 0)
            || doc_index.windows(2).any(|w| w[0] > w[1])
            || doc_index.last().is_some_and(|&d| d as usize != seqs)
        {
            return Err(bad(
                HEADER_LEN + 12 * seqs,
                "document index is not 0 .. sequence count, ascending".into(),
            ));
        }
        Ok(Index {
            dtype,
            lengths,
            pointers,
            doc_index,
        })
    }

    /// Total bytes the `.bin` must hold.
    pub fn bin_len(&self) -> u64 {
        self.lengths.iter().map(|&l| l as u64).sum::<u64>() * self.dtype.size() as u64
    }
}

/// A whole indexed dataset read into memory: the reader tests and tools use.
#[derive(Clone, Debug)]
pub struct IndexedDataset {
    pub path: PathBuf,
    pub index: Index,
    bin: Vec<u8>,
}

impl IndexedDataset {
    /// Opens `<prefix>.idx` and `<prefix>.bin`.
    pub fn open(prefix: impl AsRef<Path>) -> Result<IndexedDataset> {
        let prefix = prefix.as_ref();
        let idx_path = PathBuf::from(format!("{}.idx", prefix.display()));
        let bin_path = PathBuf::from(format!("{}.bin", prefix.display()));
        let idx = std::fs::read(&idx_path).map_err(|e| Error::io(&idx_path, e))?;
        let index = Index::parse(&idx, &idx_path)?;
        let bin = std::fs::read(&bin_path).map_err(|e| Error::io(&bin_path, e))?;
        if bin.len() as u64 != index.bin_len() {
            return Err(Error::Format {
                path: bin_path,
                offset: 0,
                message: format!("{} bytes, the index says {}", bin.len(), index.bin_len()),
            });
        }
        Ok(IndexedDataset {
            path: prefix.to_path_buf(),
            index,
            bin,
        })
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.index.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.index.doc_index.len().saturating_sub(1)
    }

    /// The token ids of sequence `i`.
    pub fn get(&self, i: usize) -> Vec<i64> {
        let d = self.index.dtype;
        let start = self.index.pointers[i] as usize;
        let end = start + self.index.lengths[i] as usize * d.size();
        let b = &self.bin[start..end];
        match d {
            Dtype::Uint8 => b.iter().map(|&x| x as i64).collect(),
            Dtype::Int8 => b.iter().map(|&x| x as i8 as i64).collect(),
            Dtype::Int16 => b
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            Dtype::Uint16 => b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
            Dtype::Int32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("4")) as i64)
                .collect(),
            Dtype::Int64 => b
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
                .collect(),
        }
    }

    /// The token ids of each document (its sequences concatenated).
    pub fn document(&self, d: usize) -> Vec<i64> {
        let (a, b) = (self.index.doc_index[d], self.index.doc_index[d + 1]);
        (a..b).flat_map(|s| self.get(s as usize)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_and_corruption() {
        let mut idx = Vec::new();
        write_index(&mut idx, Dtype::Uint16, &[3, 0, 2], &[0, 1, 2, 3]).unwrap();
        let p = Path::new("t.idx");
        let ix = Index::parse(&idx, p).unwrap();
        assert_eq!(ix.pointers, vec![0, 6, 6]);
        assert_eq!(ix.bin_len(), 10);
        assert_eq!(idx.len(), HEADER_LEN + 3 * 12 + 4 * 8);
        let mut bad = idx.clone();
        bad[0] = b'X';
        assert!(Index::parse(&bad, p).is_err());
        let mut bad = idx.clone();
        bad[17] = 6; // float64
        assert!(Index::parse(&bad, p).is_err());
        assert!(Index::parse(&idx[..idx.len() - 1], p).is_err());
        let mut buf = Vec::new();
        assert!(Dtype::Uint16.encode(&[70000], &mut buf).is_err());
        assert_eq!(Dtype::for_vocab(50280), Dtype::Uint16);
        assert_eq!(Dtype::for_vocab(100277), Dtype::Int32);
    }
}
