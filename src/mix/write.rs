//! Tokenizing a planned mix into Megatron shards, reading text only for the rows it needs.
//!
//! Two passes keep memory bounded whatever the mix's size:
//! 1. per stored file (in parallel), the picked rows' `id` and `text` columns are read with a
//!    Parquet row selection (pages of other rows are skipped through the page index), each
//!    document is tokenized once (its copies reuse the tokens) and its ids are appended to a
//!    scratch file;
//! 2. every copy, in the plan's seeded shuffled order, is read back from scratch and appended
//!    to the shard set (per bucket, or one mixed stream).
//!
//! The same row reader counts tokens for candidates without a stored count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::plan::{Candidate, MixPlan};
use super::shards::{Layout, Manifest, ShardSetWriter, TokenizerInfo};
use crate::io::parquet::TextCol;
use crate::io::row_groups::{rows_selection, ParquetFile};
use rayon::prelude::*;
use stages::tokenize::Tokenizer;
use stages::{Error, Result, Store};

use super::select::Selection;

/// Calls `f(position in rows, id, text)` for the given rows (sorted, distinct) of one stored
/// document file, in order.
pub fn for_rows(
    store: &dyn Store,
    path: &str,
    rows: &[u32],
    mut f: impl FnMut(usize, &str, &str) -> Result<()>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // Local files are read in place (only the pages needed); remote ones are fetched whole.
    let file = ParquetFile::from_store(store, path)?;
    let total = file.num_rows() as usize;
    let reader = file.batches(
        None,
        Some(&["id", "text"]),
        Some(rows_selection(rows, total)?),
        1024,
    )?;
    let mut k = 0usize;
    for batch in reader {
        let batch = batch.map_err(|e| Error::other(format!("{path}: {e}")))?;
        let ids = batch
            .column_by_name("id")
            .and_then(TextCol::new)
            .ok_or_else(|| Error::other(format!("{path}: no id column")))?;
        let text = batch
            .column_by_name("text")
            .and_then(TextCol::new)
            .ok_or_else(|| Error::other(format!("{path}: no text column")))?;
        for i in 0..batch.num_rows() {
            f(
                k,
                ids.get(i).unwrap_or_default(),
                text.get(i).unwrap_or_default(),
            )?;
            k += 1;
        }
    }
    if k != rows.len() {
        return Err(Error::other(format!(
            "{path}: read {k} of {} selected rows",
            rows.len()
        )));
    }
    Ok(())
}

/// Groups candidate indices by file, each group sorted by row.
fn by_file(sel: &Selection, cands: impl Iterator<Item = u32>) -> Vec<Vec<u32>> {
    let mut groups: Vec<Vec<u32>> = vec![Vec::new(); sel.files.len()];
    for c in cands {
        groups[sel.rows[c as usize].0 as usize].push(c);
    }
    for g in &mut groups {
        g.sort_unstable_by_key(|&c| sel.rows[c as usize].1);
    }
    groups
}

fn key_of(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Counts the tokens of every candidate without a stored count (reads their text).
pub fn count_tokens(sel: &mut Selection, store: &dyn Store, tok: &Tokenizer) -> Result<()> {
    let groups = by_file(sel, sel.uncounted.iter().copied());
    let counts: Vec<Vec<(u32, u32)>> = groups
        .par_iter()
        .enumerate()
        .map(|(fi, g)| {
            let rows: Vec<u32> = g.iter().map(|&c| sel.rows[c as usize].1).collect();
            let mut session = tok.session();
            let mut ids = Vec::new();
            let mut out = Vec::with_capacity(g.len());
            for_rows(store, &sel.files[fi], &rows, |k, id, text| {
                let c = g[k];
                if key_of(id) != sel.candidates[c as usize].key {
                    return Err(Error::other(format!(
                        "{}: row {} is not document {id} (stored files changed during the mix?)",
                        sel.files[fi], rows[k]
                    )));
                }
                ids.clear();
                session.encode_document(text, &mut ids);
                out.push((c, ids.len().min(u32::MAX as usize) as u32));
                Ok(())
            })?;
            Ok(out)
        })
        .collect::<Result<_>>()?;
    for (c, n) in counts.into_iter().flatten() {
        sel.candidates[c as usize].tokens = n;
    }
    sel.stats.counted_documents = sel.uncounted.len() as u64;
    sel.uncounted.clear();
    Ok(())
}

/// Where one picked document's tokens lie in scratch.
struct Spilled {
    file: u32,
    offset: u64,
    len: u32,
    id: String,
}

/// Removes the scratch folder however writing ends.
struct ScratchDir(PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What writing produced.
pub struct Written {
    pub manifest: Manifest,
    /// Picked documents' keys (distinct), sorted: for overlap between mixes.
    pub keys: Vec<u64>,
}

/// Tokenizes the picks of `plan` and writes the shard set into `dest`/`dir`.
#[allow(clippy::too_many_arguments)]
pub fn write(
    sel: &Selection,
    plan: &MixPlan,
    store: &dyn Store,
    tok: &Tokenizer,
    dest: &dyn Store,
    dir: &str,
    name: &str,
    layout: Layout,
    shard_bytes: u64,
    scratch: &Path,
) -> Result<Written> {
    std::fs::create_dir_all(scratch).map_err(|e| Error::io(scratch, e))?;
    let _cleanup = ScratchDir(scratch.to_path_buf());
    let picked: Vec<u32> = plan.picks.iter().flatten().map(|&(i, _)| i).collect();
    let groups = by_file(sel, picked.iter().copied());
    // Pass 1: tokenize each picked document once, spilling to one scratch file per input file.
    let spills: Vec<(PathBuf, Vec<(u32, Spilled)>)> = groups
        .par_iter()
        .enumerate()
        .map(|(fi, g)| {
            let path = scratch.join(format!("{fi:06}.tok"));
            if g.is_empty() {
                return Ok((path, Vec::new()));
            }
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, file);
            let rows: Vec<u32> = g.iter().map(|&c| sel.rows[c as usize].1).collect();
            let mut session = tok.session();
            let mut ids = Vec::new();
            let mut out = Vec::with_capacity(g.len());
            let mut offset = 0u64;
            for_rows(store, &sel.files[fi], &rows, |k, id, text| {
                let c = g[k];
                let cand: &Candidate = &sel.candidates[c as usize];
                if key_of(id) != cand.key {
                    return Err(Error::other(format!(
                        "{}: row {} is not the selected document (stored files changed during the mix?)",
                        sel.files[fi], rows[k]
                    )));
                }
                ids.clear();
                session.encode_document(text, &mut ids);
                if ids.len() as u64 != cand.tokens as u64 {
                    return Err(Error::other(format!(
                        "document {id}: the mix planned {} tokens (stored token count) but its text has {} with this tokenizer; the stored count was made with another tokenizer: set the mix's `tokens` to the right signal or remove it so that tokens are counted",
                        cand.tokens,
                        ids.len()
                    )));
                }
                for t in &ids {
                    w.write_all(&t.to_le_bytes())
                        .map_err(|e| Error::io(&path, e))?;
                }
                out.push((
                    c,
                    Spilled {
                        file: fi as u32,
                        offset,
                        len: ids.len() as u32,
                        id: id.to_string(),
                    },
                ));
                offset += ids.len() as u64 * 4;
                Ok(())
            })?;
            w.flush().map_err(|e| Error::io(&path, e))?;
            Ok((path, out))
        })
        .collect::<Result<_>>()?;
    // Candidate index -> its spill (u32::MAX: not picked); 4 bytes per candidate.
    let mut spill_of = vec![u32::MAX; sel.candidates.len()];
    let mut spilled: Vec<Spilled> = Vec::with_capacity(picked.len());
    let mut files = Vec::with_capacity(spills.len());
    for (path, list) in spills {
        for (c, s) in list {
            spill_of[c as usize] = spilled.len() as u32;
            spilled.push(s);
        }
        files.push(path);
    }
    let handles: Vec<Option<File>> = files.iter().map(|p| File::open(p).ok()).collect();

    // Pass 2: every copy in the plan's shuffled order.
    let mut writer = ShardSetWriter::new(
        dest,
        dir,
        name,
        layout,
        TokenizerInfo::from(tok),
        shard_bytes,
    );
    let mut bytes = Vec::new();
    let mut tokens: Vec<u32> = Vec::new();
    let bucket_of = |c: &Candidate| sel.buckets[c.bucket as usize].as_str();
    for (i, _copy) in plan.shuffled(&sel.candidates, plan.report.seed) {
        let s = spilled
            .get(spill_of[i as usize] as usize)
            .ok_or_else(|| Error::other("a picked document was not tokenized"))?;
        let f = handles[s.file as usize]
            .as_ref()
            .ok_or_else(|| Error::other("scratch file vanished"))?;
        bytes.resize(s.len as usize * 4, 0);
        f.read_exact_at(&mut bytes, s.offset)
            .map_err(|e| Error::io(&files[s.file as usize], e))?;
        tokens.clear();
        tokens.extend(
            bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        let lang = sel
            .langs
            .get(i as usize)
            .map_or("", |&l| sel.languages[l as usize].as_str());
        let bucket = bucket_of(&sel.candidates[i as usize]);
        if lang.is_empty() {
            writer.add(bucket, &s.id, &tokens)
        } else {
            writer.add_in_language(bucket, lang, &s.id, &tokens)
        }
        .map_err(|e| Error::io(dir, e))?;
    }
    let manifest = writer.finish().map_err(|e| Error::io(dir, e))?;
    drop(handles);
    let mut keys: Vec<u64> = picked
        .iter()
        .map(|&i| sel.candidates[i as usize].key)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    Ok(Written { manifest, keys })
}
