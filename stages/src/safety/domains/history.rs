//! `safety.domains` across nights: the per-domain counts that earlier runs of a dedup history
//! measured, so that tonight judges a site on every page the history has seen of it.
//!
//! A generation holds, per shard of the domain space (the stage's `shards`, which must stay
//! fixed across nights, as for the dedup stages), the counts of the run's own pages:
//! `gens/<gen>/<stage>/shard-NNNNN.tsv`, one `domain\tpages\twords\tpii\tdirty\tblocked\tlow`
//! line per domain, sorted by domain. Tonight's aggregate task streams its shard of every
//! generation once (a sequential read per shard and task) and keeps the earlier counts of
//! tonight's domains only, so memory grows with tonight's domains, never with the history.
//! Compaction sums the generations' files with [`merge_counts`].
//!
//! A domain that tonight's figures (earlier pages + tonight's) make offending, and that the
//! earlier figures alone did not, has pages that earlier nights kept: the run retracts them by
//! domain (`{"domain": ..., "stage": ..., "reason": ...}` in `retractions.jsonl`), since the
//! history does not list every page of every site. Earlier figures alone are exactly what the
//! last night that saw the domain judged (counts change only on nights that have its pages).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use super::{parse_counts, Counts};
use crate::dedup::history::{generations_of, snapshot, MOUNT};
use crate::store::Store;

/// A count file being read, with its path for errors.
pub type CountFile = (String, Box<dyn BufRead + Send>);

/// Path of a shard of a stage's counts in a generation, relative to the history root.
pub fn gen_counts_path(gen: &str, stage: &str, shard: usize) -> String {
    format!("gens/{gen}/{stage}/shard-{shard:05}.tsv")
}

/// Tonight's counts of one shard, which the engine copies into the new generation.
pub fn out_counts_path(dir: &str, shard: usize) -> String {
    format!("{dir}/history/shard-{shard:05}.tsv")
}

/// Readers of shard `shard` of `stage` in every generation of the run's history snapshot;
/// `None` without a history (shard counts checked by [`generations_of`]).
pub fn earlier_sources(
    store: &Arc<dyn Store>,
    stage: &str,
    shards: usize,
    shard: usize,
) -> io::Result<Option<Vec<CountFile>>> {
    let Some(snap) = snapshot(store.as_ref())? else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for g in generations_of(&snap, stage, shards)? {
        let path = format!("{MOUNT}{}", gen_counts_path(&g.name, stage, shard));
        let r = store.open(&path)?;
        out.push((
            path,
            Box::new(io::BufReader::with_capacity(1 << 16, r)) as _,
        ));
    }
    Ok(Some(out))
}

/// Reads one count line; `None` at the end. A line that does not parse is an error naming
/// the file.
pub(super) fn next_line(
    r: &mut dyn BufRead,
    path: &str,
    buf: &mut String,
) -> io::Result<Option<(String, Counts)>> {
    buf.clear();
    if r.read_line(buf)? == 0 {
        return Ok(None);
    }
    match parse_counts(buf.trim_end_matches('\n')) {
        Some((site, c)) => Ok(Some((site.to_string(), c))),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: bad domain counts line {buf:?}"),
        )),
    }
}

/// Merges count files sorted by domain into one, summing the counts of a domain found in
/// several; returns the domains and bytes written. Memory: one line per input.
pub fn merge_counts(mut inputs: Vec<CountFile>, out: &mut dyn Write) -> io::Result<(u64, u64)> {
    let mut buf = String::new();
    let mut heap = BinaryHeap::new();
    for (i, (path, r)) in inputs.iter_mut().enumerate() {
        if let Some((site, c)) = next_line(r.as_mut(), path, &mut buf)? {
            heap.push(Reverse((site, i, CountsOrd(c))));
        }
    }
    let mut current: Option<(String, Counts)> = None;
    let (mut written, mut bytes) = (0, 0);
    while let Some(Reverse((site, i, CountsOrd(c)))) = heap.pop() {
        match &mut current {
            Some((s, t)) if *s == site => t.add(&c),
            _ => {
                if let Some((s, t)) = current.take() {
                    bytes += super::write_counts(out, &s, &t)?;
                    written += 1;
                }
                current = Some((site, c));
            }
        }
        let (path, r) = &mut inputs[i];
        if let Some((site, c)) = next_line(r.as_mut(), path, &mut buf)? {
            heap.push(Reverse((site, i, CountsOrd(c))));
        }
    }
    if let Some((s, t)) = current {
        bytes += super::write_counts(out, &s, &t)?;
        written += 1;
    }
    Ok((written, bytes))
}

/// Counts in the heap: ordered by domain and input only, so the payload needs no order.
#[derive(Debug)]
struct CountsOrd(Counts);
impl PartialEq for CountsOrd {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for CountsOrd {}
impl PartialOrd for CountsOrd {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for CountsOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(lines: &[(&str, u64)]) -> (String, Box<dyn BufRead + Send>) {
        let mut s = Vec::new();
        for (d, n) in lines {
            super::super::write_counts(
                &mut s,
                d,
                &Counts {
                    pages: *n,
                    words: 10 * n,
                    pii: *n,
                    dirty: 0,
                    blocked: 1,
                    low_quality: 0,
                },
            )
            .unwrap();
        }
        ("f".into(), Box::new(io::Cursor::new(s)))
    }

    #[test]
    fn merge_sums_a_domain_seen_in_several_files() {
        let mut out = Vec::new();
        let n = merge_counts(
            vec![
                file(&[("a.com", 1), ("c.com", 2)]),
                file(&[("b.com", 5), ("c.com", 3)]),
                file(&[]),
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(n.0, 3);
        assert_eq!(n.1, out.len() as u64);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a.com\t1\t10\t1\t0\t1\t0\nb.com\t5\t50\t5\t0\t1\t0\nc.com\t5\t50\t5\t0\t2\t0\n"
        );
    }

    #[test]
    fn a_bad_line_names_its_file() {
        let r: Box<dyn BufRead + Send> = Box::new(io::Cursor::new(b"x.com\t1\n".to_vec()));
        let e = merge_counts(
            vec![("gens/g/sites/shard-00000.tsv".into(), r)],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("gens/g/sites/shard-00000.tsv"),
            "{e}"
        );
    }
}
