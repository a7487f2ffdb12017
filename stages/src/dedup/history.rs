//! The dedup history as a global step sees it: the generations earlier runs committed, read
//! through the run's store, and the files a step writes for tonight's generation.
//!
//! The engine (`src/history/` in the `curate` crate) owns the history itself: it mounts the
//! history's store under [`MOUNT`] in the run's store and writes [`SNAPSHOT`] (which committed
//! generations this run deduplicates against) into the run's output before any work, so that a
//! resumed run sees exactly the generations its first attempt saw. A stage never opens the
//! history by itself: without a snapshot it runs as an island, exactly as before.
//!
//! For a keyed stage (`dedup.url`, `dedup.exact`) a generation holds, per section of the key
//! space (`shards`, key ranges), the keys of the documents the run kept, sorted:
//! `gens/<gen>/<stage>/shard-NNNNN.bin`, [`HistRec`] records (key, rank, id hash). Documents
//! are named by the xxh3-128 of their stable id (`Document::id`: the WARC-Record-ID, the id
//! field, else a content hash), never by row numbers. A task of the `groups` step merges its
//! key range of every generation beside tonight's: one sequential read per range and task.

use std::io;
use std::sync::Arc;

use serde::Deserialize;

use super::records::{record, LazySource, Record, RecordReader, Source};
use crate::store::Store;

/// Where the engine mounts the history's store inside the run's store.
pub const MOUNT: &str = "@history/";

/// The run's snapshot of the history (at the output root).
pub const SNAPSHOT: &str = "history.json";

/// One document an earlier run kept: sorted by key, then rank (the live copy first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistRec {
    pub key: u128,
    pub rank: u64,
    /// xxh3-128 of the document's stable id.
    pub id: u128,
}
record!(HistRec {
    key: u128,
    rank: u64,
    id: u128
});

/// The xxh3-128 of a stable document id: how the history names a document.
pub fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

/// A stage's files of one generation, as recorded in the snapshot.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct StageFiles {
    pub shards: usize,
}

/// One committed generation.
#[derive(Clone, Debug, Deserialize)]
pub struct SnapGen {
    pub name: String,
    /// Commit order (a compacted generation: the largest of those it replaces).
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub stages: std::collections::BTreeMap<String, StageFiles>,
}

/// What `history.json` says.
#[derive(Clone, Debug, Deserialize)]
pub struct Snapshot {
    pub generations: Vec<SnapGen>,
}

/// Path of a stage's shard in a generation, relative to the history root.
pub fn gen_shard_path(gen: &str, stage: &str, shard: usize) -> String {
    format!("gens/{gen}/{stage}/shard-{shard:05}.bin")
}

/// Tonight's keys of one shard, which the engine copies into the new generation.
pub fn out_shard_path(dir: &str, shard: usize) -> String {
    format!("{dir}/history/shard-{shard:05}.bin")
}

/// Tonight's retractions of one shard (JSON lines).
pub fn retractions_path(dir: &str, shard: usize) -> String {
    format!("{dir}/retractions/shard-{shard:05}.jsonl")
}

/// Reads the run's snapshot: `None` when the run has no history.
pub fn snapshot(store: &dyn Store) -> io::Result<Option<Snapshot>> {
    match store.read(SNAPSHOT) {
        Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}/{SNAPSHOT}: {e}", store.root()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The generations of `snap` that hold `stage`, in order. A generation written with another
/// number of shards is an error naming it: its key ranges (or domain sections) would not line
/// up with tonight's.
pub fn generations_of<'a>(
    snap: &'a Snapshot,
    stage: &str,
    shards: usize,
) -> io::Result<Vec<&'a SnapGen>> {
    let mut out = Vec::new();
    for g in &snap.generations {
        let Some(f) = g.stages.get(stage) else {
            continue;
        };
        if f.shards != shards {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "history generation {}: stage {stage} was written with {} shards, the \
                     pipeline now has {shards} (keep `shards` fixed across nights)",
                    g.name, f.shards
                ),
            ));
        }
        out.push(g);
    }
    Ok(out)
}

/// Sorted sources of `stage`'s shard `shard` in every generation that has the stage. A
/// generation written with another number of shards is an error naming it: its key ranges
/// would not line up with tonight's.
pub fn shard_sources<R: Record>(
    store: &Arc<dyn Store>,
    snap: &Snapshot,
    stage: &str,
    shards: usize,
    shard: usize,
) -> io::Result<Vec<Box<dyn Source<R>>>> {
    let mut out: Vec<Box<dyn Source<R>>> = Vec::new();
    for g in generations_of(snap, stage, shards)? {
        let path = format!("{MOUNT}{}", gen_shard_path(&g.name, stage, shard));
        let store = store.clone();
        out.push(Box::new(LazySource::new(move || {
            let r = store.open(&path)?;
            Ok(Box::new(RecordReader::<R>::new(r, path, 1 << 16)) as Box<dyn Source<R>>)
        })));
    }
    Ok(out)
}

/// The `cluster_id` given to copies whose survivor is a document of an earlier run: negative
/// (bit 63 set), the low 63 bits of its id hash, so it never equals a row key of this run.
pub fn history_rep(id: u128) -> u64 {
    (1 << 63) | (id as u64 & (u64::MAX >> 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::records::Record;
    use crate::dedup::testing::{build, doc};
    use crate::dedup::{run_local, url};
    use crate::stage::Outcome;
    use crate::LocalStore;

    /// Runs `docs` (one partition) through a `dedup.url` stage in `store` with `snapshot`.
    fn night(
        store: &Arc<dyn Store>,
        scratch: &std::path::Path,
        snapshot: &str,
        docs: Vec<crate::Document>,
    ) -> Vec<(String, Outcome, Option<i64>)> {
        store.put(SNAPSHOT, snapshot.as_bytes()).unwrap();
        let stage = build(&url::DEF, "url", "keep = \"newest\"\nshards = 2");
        let out = run_local(
            stage.as_ref(),
            vec![docs],
            store.clone(),
            scratch,
            7,
            16 << 20,
        );
        out.unwrap()
            .into_iter()
            .flatten()
            .map(|(d, o)| (d.id.clone(), o, d.signals.i64("url.cluster_id")))
            .collect()
    }

    #[test]
    fn a_night_dedups_against_an_earlier_generation() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = dir.path().join("scratch");
        // The history lives in the same folder under the mount prefix (the engine mounts
        // another store there; a folder is enough for the stage).
        let s1: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().join("n1")).unwrap());
        let dated = |id: &str, u: &str, t: i64| {
            let mut d = doc(id, u, "text");
            d.crawl_date = Some(t);
            d
        };
        let r1 = night(
            &s1,
            &scratch,
            "{\"generations\": []}",
            vec![
                dated("a", "http://x.org/a", 10),
                dated("b", "http://x.org/b", 10),
            ],
        );
        assert!(r1.iter().all(|r| r.1 == Outcome::Keep));
        let s2: Arc<dyn Store> = Arc::new(LocalStore::new(dir.path().join("n2")).unwrap());
        for shard in 0..2 {
            let b = s1.read(&out_shard_path("work/url", shard)).unwrap();
            s2.put(
                &format!("{MOUNT}{}", gen_shard_path("g1", "url", shard)),
                &b,
            )
            .unwrap();
        }
        let snap = r#"{"generations": [{"name": "g1", "stages": {"url": {"shards": 2}}}]}"#;
        let r2 = night(
            &s2,
            &scratch,
            snap,
            vec![
                dated("a2", "https://x.org/a/", 10), // same date: the earlier night's stays
                dated("b2", "http://x.org/b?utm_source=z", 20), // newer: retracts b
                dated("c", "http://x.org/c", 5),
            ],
        );
        assert_eq!(r2[0].1, Outcome::Drop(crate::dedup::DUPLICATE));
        assert_eq!(r2[0].2, Some(history_rep(id_hash("a")) as i64));
        assert!(r2[0].2.unwrap() < 0);
        assert_eq!(r2[1].1, Outcome::Keep);
        assert_eq!(r2[2].1, Outcome::Keep);
        let mut retracted = String::new();
        for shard in 0..2 {
            retracted.push_str(
                &String::from_utf8(s2.read(&retractions_path("work/url", shard)).unwrap()).unwrap(),
            );
        }
        assert_eq!(retracted.lines().count(), 1, "{retracted}");
        assert!(retracted.contains(&format!("{:032x}", id_hash("b"))));
        // Tonight's survivors (b2, c) form the new generation; a2 does not.
        let kept: u64 = (0..2)
            .map(|s| s2.read(&out_shard_path("work/url", s)).unwrap().len() as u64)
            .sum();
        assert_eq!(kept, 2 * HistRec::SIZE as u64);
    }
}
