//! `dedup.minhash` across nights: what the dedup history holds for near-duplicates, and the
//! `history` step that joins tonight's candidates with it.
//!
//! One run over nights 1..k clusters every pair `(first, other)` of documents that share a band
//! key, `first` being the earliest holder of the key, verified by their fingerprints; then
//! union-find; then the best (rank, input order) member of each component survives. A night
//! gives the same result when the history holds, for every earlier document (dropped ones too):
//!
//! - **key records** `shard-NNNNN.bin` per band section, [`MhKey`] `(band key, ord)` sorted:
//!   the first holder of each band key (a later holder never becomes `first`, so only the first
//!   is stored). `ord` is `seq << 32 | row`: the night's commit order and the document's global
//!   row that night, the order one run over the nights in order would give;
//! - **document rows** `docs-SSSSSSSS.bin` (night `seq`), one fixed-size row per document of
//!   the night in row order: its cluster at that night (the survivor's ord, rank and id hash)
//!   and its 16-bit signature fingerprints (for verification);
//! - **remaps** `remaps.bin`, [`Remap`]: a cluster that a later night merged into another
//!   (tonight's document bridged two earlier clusters, or beat their survivor under the keep
//!   rule). A night never rewrites earlier rows: a cluster is resolved through the remaps of
//!   every later generation, which `components` holds in memory (one record per merge since
//!   the last compaction; `curate history compact` resolves the rows and drops them).
//!
//! Tonight: `pairs` merges each band section with the history's sorted key records (one
//! sequential read per section and task); a key an earlier night holds pairs tonight's holders
//! with that earlier document only (as one run would: it is `first`), written as [`HCand`]; the
//! keys new tonight go to the new generation. The `history` step (one task) sorts the
//! candidates by earlier document, reads their rows in one forward pass per night file, sorts
//! them by tonight's document and verifies them against tonight's fingerprints; the pairs that
//! pass are [`HEdge`]s to the earlier cluster. `components` adds one node per earlier cluster
//! touched; a component's survivor is its best member, earlier survivors included; an earlier
//! survivor that loses is retracted and its cluster remapped.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Arc;

use super::decisions::{peak_rss_bytes, split_key, task_budget};
use super::extsort::{ExtSorter, Scratch};
use super::history::{self, Snapshot, MOUNT};
use super::keys::Index;
use super::records::{record, u64_at, Record, RecordReader, RecordWriter, Source};
use super::verify::{by_width, equal_values, width_class, SigCursor};
use crate::error::{Error, Result};
use crate::stage::{GlobalStep, StepCtx};
use crate::stats::StepStats;
use crate::store::Store;

/// The first holder of a band key: sorted by key, then ord.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MhKey {
    pub key: u64,
    pub ord: u64,
}
record!(MhKey { key: u64, ord: u64 });

/// Cluster `from` (a survivor's ord) is now cluster `to`, whose survivor has rank `rank` and
/// id hash `rid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Remap {
    pub from: u64,
    pub to: u64,
    pub rank: u64,
    pub rid: u128,
}
record!(Remap {
    from: u64,
    to: u64,
    rank: u64,
    rid: u128
});

/// A candidate pair of an earlier document (`h`: its ord) and tonight's (`b`: document key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HCand {
    pub h: u64,
    pub b: u64,
}
record!(HCand { h: u64, b: u64 });

/// A verified pair of tonight's document (`b`: global row) and an earlier cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HEdge {
    pub b: u64,
    pub cluster: u64,
    pub rank: u64,
    pub rid: u128,
}
record!(HEdge {
    b: u64,
    cluster: u64,
    rank: u64,
    rid: u128
});

/// A document's id hash, one per row (`ids/part-NNNNN.bin`, written only with a history).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct IdRec {
    pub id: u128,
}
record!(IdRec { id: u128 });

/// A candidate with the earlier document's row, sorted by tonight's document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HHalf<const N: usize> {
    b: u64,
    cluster: u64,
    rank: u64,
    rid: u128,
    sig: [u8; N],
}

impl<const N: usize> Record for HHalf<N> {
    const SIZE: usize = 40 + N;
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.b.to_le_bytes());
        out.extend_from_slice(&self.cluster.to_le_bytes());
        out.extend_from_slice(&self.rank.to_le_bytes());
        out.extend_from_slice(&self.rid.to_le_bytes());
        out.extend_from_slice(&self.sig);
    }
    fn get(b: &[u8]) -> Self {
        HHalf {
            b: u64_at(b, 0),
            cluster: u64_at(b, 8),
            rank: u64_at(b, 16),
            rid: u128::from_le_bytes(b[24..40].try_into().expect("16 bytes")),
            sig: b[40..40 + N].try_into().expect("N bytes"),
        }
    }
}

const DOCS_MAGIC: &[u8; 8] = b"CURMHDC1";
/// Magic, hashes (u32), seq (u32), rows (u64).
pub const DOCS_HEADER: u64 = 24;

/// Bytes of one document row: cluster (8), rank (8), rid (16), fingerprints (2 per hash).
pub fn row_width(hashes: usize) -> usize {
    32 + 2 * hashes
}

/// The night's document rows, in tonight's output.
pub fn docs_path(dir: &str, seq: u64) -> String {
    format!("{dir}/history/docs-{seq:08}.bin")
}

/// The night's remaps, in tonight's output.
pub fn remaps_path(dir: &str) -> String {
    format!("{dir}/history/remaps.bin")
}

/// Tonight's document id hashes of partition `p`.
pub fn ids_path(dir: &str, p: usize) -> String {
    format!("{dir}/ids/part-{p:05}.bin")
}

fn hcand_path(dir: &str, task: usize) -> String {
    format!("{dir}/hcand/task-{task:05}.bin")
}

/// Where `history` writes the verified pairs with earlier clusters.
pub fn hedges_path(dir: &str) -> String {
    format!("{dir}/hedges.bin")
}

/// Tonight's seq: after every generation of the snapshot (a compacted one carries the
/// largest seq it replaces).
pub fn tonight_seq(snap: &Snapshot) -> u64 {
    snap.generations.iter().map(|g| g.seq).max().unwrap_or(0) + 1
}

/// The header of a night's document rows: hashes per row, seq, rows.
pub fn docs_header(hashes: usize, seq: u64, rows: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(DOCS_HEADER as usize);
    h.extend_from_slice(DOCS_MAGIC);
    h.extend_from_slice(&(hashes as u32).to_le_bytes());
    h.extend_from_slice(&(seq as u32).to_le_bytes());
    h.extend_from_slice(&rows.to_le_bytes());
    h
}

/// Parses a docs header: `(hashes, seq, rows)`.
pub fn parse_docs_header(b: &[u8], path: &str) -> io::Result<(usize, u64, u64)> {
    if b.len() < DOCS_HEADER as usize || &b[..8] != DOCS_MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: not a MinHash history document file"),
        ));
    }
    let hashes = u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")) as usize;
    let seq = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")) as u64;
    Ok((hashes, seq, u64_at(b, 16)))
}

/// Reads rows of one night's document file in ascending order; a long gap reopens the file at
/// the row instead of reading through.
struct DocsReader {
    store: Arc<dyn Store>,
    path: String,
    rows: u64,
    width: usize,
    next: u64,
    input: Option<Box<dyn Read + Send>>,
}

impl DocsReader {
    fn read(&mut self, row: u64, out: &mut [u8]) -> io::Result<()> {
        let bad =
            |m: String| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {m}", self.path));
        if row >= self.rows {
            return Err(bad(format!("row {row} of {}", self.rows)));
        }
        if row < self.next {
            return Err(bad("rows requested out of order".into()));
        }
        let skip = (row - self.next) * self.width as u64;
        match self.input.as_mut() {
            Some(input) if skip < 1 << 20 => {
                io::copy(&mut input.take(skip), &mut io::sink())?;
            }
            _ => {
                let start = DOCS_HEADER + row * self.width as u64;
                let len = (self.rows - row) * self.width as u64;
                self.input = Some(self.store.open_range(&self.path, start, len)?);
            }
        }
        let input = self.input.as_mut().expect("opened above");
        input
            .read_exact(&mut out[..self.width])
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => bad("truncated".into()),
                _ => e,
            })?;
        self.next = row + 1;
        Ok(())
    }
}

/// Every night's document file of `stage` in the snapshot's generations, by seq.
fn night_files(
    store: &Arc<dyn Store>,
    snap: &Snapshot,
    stage: &str,
    hashes: usize,
) -> Result<HashMap<u64, DocsReader>> {
    let mut out = HashMap::new();
    for g in &snap.generations {
        if !g.stages.contains_key(stage) {
            continue;
        }
        let dir = format!("{MOUNT}gens/{}/{stage}/", g.name);
        for f in store.list(&dir)? {
            let name = f.strip_prefix(&dir).unwrap_or(&f);
            if !(name.starts_with("docs-") && name.ends_with(".bin")) {
                continue;
            }
            let mut head = Vec::new();
            store
                .open_range(&f, 0, DOCS_HEADER)
                .and_then(|mut r| r.read_to_end(&mut head))
                .map_err(|e| Error::io(&f, e))?;
            let (h, seq, rows) = parse_docs_header(&head, &f).map_err(|e| Error::io(&f, e))?;
            if h != hashes {
                return Err(Error::other(format!(
                    "history file {f}: written with {h} fingerprints per document, the stage \
                     now has {hashes} (keep bands, rows and verify fixed across nights)"
                )));
            }
            out.insert(
                seq,
                DocsReader {
                    store: store.clone(),
                    path: f,
                    rows,
                    width: row_width(hashes),
                    next: 0,
                    input: None,
                },
            );
        }
    }
    Ok(out)
}

/// The remaps of every generation of the snapshot: cluster -> (cluster, rank, rid).
pub fn load_remaps(
    store: &Arc<dyn Store>,
    snap: &Snapshot,
    stage: &str,
) -> Result<HashMap<u64, (u64, u64, u128)>> {
    let mut out = HashMap::new();
    for g in &snap.generations {
        if !g.stages.contains_key(stage) {
            continue;
        }
        let path = format!("{MOUNT}gens/{}/{stage}/remaps.bin", g.name);
        let r = match store.open(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        let mut r = RecordReader::<Remap>::new(r, path.clone(), 1 << 16);
        while let Some(m) = r.next_record().map_err(|e| Error::io(&path, e))? {
            out.insert(m.from, (m.to, m.rank, m.rid));
        }
    }
    Ok(out)
}

/// The cluster `c` is now, through every remap.
pub fn resolve(
    remaps: &HashMap<u64, (u64, u64, u128)>,
    mut c: (u64, u64, u128),
) -> (u64, u64, u128) {
    // Each remap points to a cluster that a later night made; chains end.
    while let Some(&next) = remaps.get(&c.0) {
        c = next;
    }
    c
}

/// Writes tonight's candidates with earlier documents (one file per `pairs` task).
pub struct HCandWriter {
    out: RecordWriter<Box<dyn crate::store::ObjectWriter>>,
    path: String,
}

impl HCandWriter {
    pub fn create(store: &dyn Store, dir: &str, task: usize) -> io::Result<Self> {
        let path = hcand_path(dir, task);
        Ok(HCandWriter {
            out: RecordWriter::new(store.create(&path)?),
            path,
        })
    }

    pub fn write(&mut self, c: &HCand) -> io::Result<()> {
        self.out.write(c)
    }

    pub fn finish(self) -> Result<u64> {
        let n = self.out.written();
        let p = self.path;
        self.out
            .into_inner()
            .and_then(|w| w.finish())
            .map_err(|e| Error::io(&p, e))?;
        Ok(n)
    }
}

/// `history`: one task; nothing to do without a history.
pub struct HistoryStep {
    pub stage: String,
    /// Fingerprints per document (0 without verification).
    pub hashes: usize,
    /// Equal fingerprints a pair needs (`None`: not verified).
    pub min_equal: Option<usize>,
}

impl GlobalStep for HistoryStep {
    fn name(&self) -> &str {
        "history"
    }

    fn tasks(&self, _ctx: &StepCtx) -> Result<usize> {
        Ok(1)
    }

    fn run(&self, task: usize, ctx: &StepCtx) -> Result<StepStats> {
        let Some(snap) =
            history::snapshot(ctx.store.as_ref()).map_err(|e| Error::io(&ctx.dir, e))?
        else {
            return Ok(StepStats::new("history", task));
        };
        by_width!(self.hashes, join(self, &snap, task, ctx))
    }
}

fn join<const N: usize>(
    step: &HistoryStep,
    snap: &Snapshot,
    task: usize,
    ctx: &StepCtx,
) -> Result<StepStats> {
    let io = |e| Error::io(&ctx.dir, e);
    let mut st = StepStats::new("history", task);
    let scratch = Scratch::new(&ctx.scratch).map_err(|e| Error::io(&ctx.scratch, e))?;
    let budget = task_budget(ctx);
    let index = Index::load(ctx.store.as_ref(), &ctx.dir).map_err(io)?;
    let mut nights = night_files(&ctx.store, snap, &step.stage, step.hashes)?;
    let mut by_h = ExtSorter::<HCand>::new(&scratch, budget / 4);
    let files = ctx.store.list(&format!("{}/hcand", ctx.dir))?;
    for f in &files {
        let mut r = RecordReader::<HCand>::new(ctx.store.open(f).map_err(io)?, f.clone(), 1 << 16);
        while let Some(c) = r.next_record().map_err(io)? {
            by_h.push(c).map_err(io)?;
        }
    }
    let mut by_h = by_h.finish().map_err(io)?;
    let mut by_b = ExtSorter::<HHalf<N>>::new(&scratch, budget / 2);
    let width = row_width(step.hashes);
    let mut row = vec![0u8; width];
    let mut half = HHalf::<N> {
        b: 0,
        cluster: 0,
        rank: 0,
        rid: 0,
        sig: [0u8; N],
    };
    let (mut last, mut current): (Option<HCand>, Option<u64>) = (None, None);
    let (mut candidates, mut repeats) = (0u64, 0u64);
    while let Some(c) = by_h.next_record().map_err(io)? {
        if last == Some(c) {
            repeats += 1;
            continue;
        }
        last = Some(c);
        candidates += 1;
        if current != Some(c.h) {
            let (seq, r) = (c.h >> 32, c.h & 0xFFFF_FFFF);
            let night = nights.get_mut(&seq).ok_or_else(|| {
                Error::other(format!(
                    "history: a key record names night {seq}, whose document file no \
                     generation of this run's snapshot has"
                ))
            })?;
            night
                .read(r, &mut row)
                .map_err(|e| Error::io(&night.path, e))?;
            half.cluster = u64_at(&row, 0);
            half.rank = u64_at(&row, 8);
            half.rid = u128::from_le_bytes(row[16..32].try_into().expect("16 bytes"));
            half.sig[..width - 32].copy_from_slice(&row[32..]);
            current = Some(c.h);
        }
        half.b = c.b;
        by_b.push(half).map_err(io)?;
    }
    let mut by_b = by_b.finish().map_err(io)?;
    let path = hedges_path(&ctx.dir);
    let mut out = RecordWriter::new(ctx.store.create(&path).map_err(|e| Error::io(&path, e))?);
    let mut sigs = SigCursor::new(ctx, &index, step.hashes);
    let mut sig_b = [0u8; N];
    let mut current = None;
    let mut rejected = 0u64;
    while let Some(h) = by_b.next_record().map_err(io)? {
        if let Some(min) = step.min_equal {
            if current != Some(h.b) {
                sigs.read(h.b, &mut sig_b)?;
                current = Some(h.b);
            }
            if equal_values(&h.sig, &sig_b, step.hashes) < min {
                rejected += 1;
                continue;
            }
        }
        let (p, r) = split_key(h.b);
        out.write(&HEdge {
            b: index.offsets[p] + r as u64,
            cluster: h.cluster,
            rank: h.rank,
            rid: h.rid,
        })
        .map_err(|e| Error::io(&path, e))?;
    }
    st.count("history_candidates", candidates);
    st.count("repeats", repeats);
    st.count("rejected", rejected);
    st.count("history_matches", out.written());
    out.into_inner()
        .and_then(|w| w.finish())
        .map_err(|e| Error::io(&path, e))?;
    st.count("spilled_bytes", scratch.spill.bytes());
    st.peak_rss_bytes = peak_rss_bytes();
    debug_assert!(width_class(step.hashes) == N);
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::minhash::DEF;
    use crate::dedup::testing::{build, doc};
    use crate::dedup::{run_local, DUPLICATE};
    use crate::stage::Outcome;
    use crate::LocalStore;

    /// 300 words of text `seed` with the words at `changed` replaced.
    fn text(seed: u64, changed: &[usize]) -> String {
        let mut st = seed | 1;
        let mut w: Vec<String> = (0..300)
            .map(|_| {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                format!("w{}", st % 5000)
            })
            .collect();
        for &i in changed {
            w[i] = format!("changed{i}");
        }
        w.join(" ")
    }

    /// Copies every file under `from` to `to` (a history into a night's mount).
    fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
        for e in std::fs::read_dir(from).into_iter().flatten().flatten() {
            let t = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                std::fs::create_dir_all(&t).unwrap();
                copy_tree(&e.path(), &t);
            } else {
                std::fs::copy(e.path(), t).unwrap();
            }
        }
    }

    /// Runs nights in order with one history (committed as the engine does: the night's
    /// `work/mh/history/` becomes generation `gN`); returns each night's (id, outcome) and its
    /// retractions.
    fn nights(toml: &str, docs: &[Vec<crate::Document>]) -> Vec<(Vec<(String, Outcome)>, String)> {
        let dir = tempfile::tempdir().unwrap();
        let hist = dir.path().join("history");
        std::fs::create_dir_all(&hist).unwrap();
        let stage = build(&DEF, "mh", toml);
        let mut gens = Vec::new();
        let mut out = Vec::new();
        for (n, night) in docs.iter().enumerate() {
            let root = dir.path().join(format!("night{n}"));
            std::fs::create_dir_all(root.join("@history")).unwrap();
            copy_tree(&hist, &root.join("@history"));
            let store: Arc<dyn Store> = Arc::new(LocalStore::new(&root).unwrap());
            let snap = serde_json::json!({"generations": gens});
            store
                .put(history::SNAPSHOT, snap.to_string().as_bytes())
                .unwrap();
            let r = run_local(
                stage.as_ref(),
                vec![night.clone()],
                store.clone(),
                &dir.path().join("scratch"),
                7,
                16 << 20,
            )
            .unwrap();
            let g = hist.join(format!("gens/g{n}/mh"));
            std::fs::create_dir_all(&g).unwrap();
            copy_tree(&root.join("work/mh/history"), &g);
            let retracted = String::from_utf8(
                store
                    .read(&history::retractions_path("work/mh", 0))
                    .unwrap(),
            )
            .unwrap();
            gens.push(serde_json::json!({"name": format!("g{n}"), "seq": n + 1,
                "stages": {"mh": {"shards": 14}}}));
            out.push((
                r.into_iter()
                    .flatten()
                    .map(|(d, o)| (d.id.clone(), o))
                    .collect(),
                retracted,
            ));
        }
        out
    }

    /// Kept ids of one run over all the nights' documents in order.
    fn one_run(toml: &str, docs: &[Vec<crate::Document>]) -> Vec<String> {
        let stage = build(&DEF, "mh", toml);
        crate::dedup::testing::run(stage.as_ref(), docs.to_vec())
            .into_iter()
            .flatten()
            .filter(|(_, o)| o.is_keep())
            .map(|(d, _)| d.id)
            .collect()
    }

    #[test]
    fn a_chain_across_nights_is_one_cluster() {
        // A (night 1) ~ B (night 2) ~ C (night 3), A !~ C: one cluster in one run, kept A.
        let a = text(11, &[]);
        let b = text(11, &[20, 70, 120, 170, 220, 270]);
        let c = text(
            11,
            &[20, 70, 120, 170, 220, 270, 45, 95, 145, 195, 245, 290],
        );
        let docs = |x: &str, y: &str| vec![vec![doc("a", "", x)], vec![doc("c", "", y)]];
        assert_eq!(one_run("", &docs(&a, &c)), vec!["a", "c"], "A !~ C");
        let three = vec![
            vec![doc("a", "", &a), doc("other", "", &text(99, &[]))],
            vec![doc("b", "", &b)],
            vec![doc("c", "", &c)],
        ];
        assert_eq!(one_run("", &three), vec!["a", "other"]);
        let n = nights("", &three);
        assert_eq!(n[0].0[0].1, Outcome::Keep);
        assert_eq!(n[1].0[0].1, Outcome::Drop(DUPLICATE), "B joins A's cluster");
        assert_eq!(
            n[2].0[0].1,
            Outcome::Drop(DUPLICATE),
            "C joins it through B"
        );
        assert!(
            n.iter().all(|x| x.1.is_empty()),
            "keep = first retracts nothing"
        );

        // keep = "newest": each night's copy is newer; the earlier survivor is retracted, and
        // the corpus keeps C as one run does.
        let dated = |mut d: crate::Document, t: i64| {
            d.crawl_date = Some(t);
            d
        };
        let three = vec![
            vec![dated(doc("a", "", &a), 1)],
            vec![dated(doc("b", "", &b), 2)],
            vec![dated(doc("c", "", &c), 3)],
        ];
        assert_eq!(one_run("keep = \"newest\"", &three), vec!["c"]);
        let n = nights("keep = \"newest\"", &three);
        assert!(n.iter().all(|x| x.0[0].1 == Outcome::Keep));
        assert!(n[0].1.is_empty());
        let hex = |id: &str| format!("{:032x}", history::id_hash(id));
        assert!(n[1].1.contains(&hex("a")), "{}", n[1].1);
        assert!(n[2].1.contains(&hex("b")), "{}", n[2].1);
        assert!(!n[2].1.contains(&hex("a")), "a was retracted once");
    }

    #[test]
    fn remaps_resolve_to_the_last_cluster() {
        let m: HashMap<u64, (u64, u64, u128)> = [(1, (5, 0, 50)), (5, (9, 0, 90))].into();
        assert_eq!(resolve(&m, (1, 3, 10)), (9, 0, 90));
        assert_eq!(resolve(&m, (2, 3, 20)), (2, 3, 20));
        let h = docs_header(112, 3, 1000);
        assert_eq!(parse_docs_header(&h, "x").unwrap(), (112, 3, 1000));
        assert!(parse_docs_header(b"nope", "x").is_err());
    }
}
