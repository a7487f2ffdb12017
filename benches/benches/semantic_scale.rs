//! `dedup.semantic`'s clustering and within-cluster dedup at scale, on synthetic embeddings:
//! the centroids, assign and dedup steps of the stage itself (built without an encoder), over
//! embedding files written the way the stage's collectors write them.
//!
//! **Data** (seeded, the same every run): `SCALE_DOCS` documents (default 1,000,000) of
//! `SCALE_DIM` dimensions (256, the static model's), document `i` in partition `i mod
//! SCALE_PARTS` (default 100). Every vector lies around one of `SCALE_TOPICS` topic centres
//! (default docs / 5,000; two documents of a topic have cosine about 0.5). One group of 4
//! consecutive documents in 5 is a *planted near-duplicate group*: one base vector plus
//! independent noise per member (cosine about 0.97 between members); member 0 has the best
//! quality, so members 1 to 3 are the planted duplicates (15% of the documents). The others
//! are unique.
//!
//! **Run**: the stage's steps with `threshold = 0.9`, `cluster_docs = SCALE_CLUSTER_DOCS`
//! (default 1,000), the stage's defaults otherwise (sample 100,000 rows, one streamed pass,
//! cap 50,000); the tasks of a step run two at a time (this machine's 2 cores, like two
//! single-threaded workers). Printed: wall and CPU seconds per step, the peak RSS of the
//! process after generation (VmHWM, reset through /proc/self/clear_refs once the files are
//! written), the bytes on disk, and the decisions against the planted groups.
//!
//! Run: `SCALE_DOCS=10000000 cargo bench -p curate-benches --bench semantic_scale`
//! (`SCALE_DIR` for the files, default a temporary folder, deleted at the end; 10M documents
//! take about 5.5 GB).

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use classifiers::semantic::files::*;
use classifiers::semantic::kmeans::mix64;
use rayon::prelude::*;
use stages::{Built, LocalStore, Purpose, StageArgs, StepCtx, Store};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// VmHWM of this process, bytes.
fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Seeded standard normal numbers (Box-Muller on splitmix64).
struct Gauss(u64);

impl Gauss {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(1);
        ((mix64(self.0) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn fill(&mut self, out: &mut [f32], scale: f32) {
        for pair in out.chunks_mut(2) {
            let (u, v) = (self.unit(), self.unit());
            let r = (-2.0 * u.ln()).sqrt();
            let t = std::f64::consts::TAU * v;
            pair[0] += (r * t.cos()) as f32 * scale;
            if let Some(x) = pair.get_mut(1) {
                *x += (r * t.sin()) as f32 * scale;
            }
        }
    }
}

fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
}

struct Synth {
    dim: usize,
    topics: Vec<f32>,
}

impl Synth {
    fn new(dim: usize, topics: usize) -> Synth {
        let mut c = vec![0f32; topics * dim];
        for (t, v) in c.chunks_exact_mut(dim).enumerate() {
            Gauss(mix64(0x70_91c ^ t as u64)).fill(v, 1.0);
            normalize(v);
        }
        Synth { dim, topics: c }
    }

    /// Document `i`: `(quality, vector, planted duplicate)`.
    fn doc(&self, i: u64, out: &mut Vec<f32>) -> (f32, bool) {
        let group = i / 4;
        let planted = group % 5 == 0;
        // A planted group shares its base; any other document is its own base.
        let base = if planted { group << 1 } else { (i << 1) | 1 };
        let topic = (mix64(base ^ 0xba5e) % (self.topics.len() / self.dim) as u64) as usize;
        out.clear();
        out.extend_from_slice(&self.topics[topic * self.dim..(topic + 1) * self.dim]);
        // |m|^2 = 1: cosine about 0.5 between two bases of a topic.
        Gauss(mix64(base)).fill(out, 1.0 / (self.dim as f32).sqrt());
        normalize(out);
        if planted {
            // |n|^2 = 0.015 per member: cosine about 0.97 between two members.
            Gauss(mix64(i ^ 0x0e15e)).fill(out, (0.015 / self.dim as f32).sqrt());
            normalize(out);
            let member = i % 4;
            (1.0 - 0.1 * member as f32, member > 0)
        } else {
            (0.5, false)
        }
    }
}

fn main() {
    let docs = env("SCALE_DOCS", 1_000_000) as u64;
    let parts = env("SCALE_PARTS", 100);
    let dim = env("SCALE_DIM", 256);
    let topics = env("SCALE_TOPICS", (docs as usize / 5_000).max(1));
    let cluster_docs = env("SCALE_CLUSTER_DOCS", 1_000);
    let tmp;
    let dir = match std::env::var("SCALE_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().to_path_buf()
        }
    };
    println!(
        "semantic_scale: {docs} documents x {dim} dims, {parts} partitions, {topics} topics, \
         cluster_docs {cluster_docs}, {} threads",
        rayon::current_num_threads()
    );
    let store: Arc<dyn Store> = Arc::new(LocalStore::new(dir.join("out")).unwrap());
    let wd = "work/semantic".to_string();
    let synth = Synth::new(dim, topics);

    // 1. The embedding files, as the collectors write them.
    let (t0, c0) = (Instant::now(), cpu_seconds());
    (0..parts).into_par_iter().for_each(|p| {
        let mut w = store.create(&emb_path(&wd, p)).unwrap();
        w.write_all(&header(EMB_MAGIC, dim as u32, 0)).unwrap();
        let (mut v, mut scratch, mut rows) = (Vec::new(), Vec::new(), 0u64);
        let mut i = p as u64;
        while i < docs {
            let (q, _) = synth.doc(i, &mut v);
            write_emb_row(&mut w, q, 1000, &v, &[], &mut scratch).unwrap();
            rows += 1;
            i += parts as u64;
        }
        w.finish().unwrap();
        put_json(
            store.as_ref(),
            &emb_meta_path(&wd, p),
            &EmbMeta {
                rows,
                dim,
                payload: 0,
            },
        )
        .unwrap();
    });
    println!(
        "generate + write: {:.1} s wall, {:.1} s CPU",
        t0.elapsed().as_secs_f64(),
        cpu_seconds() - c0
    );
    // Peak RSS from here on: the steps alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");

    // 2. The stage's steps.
    let table: toml::Table = format!(
        "model = \"classifiers/testdata/tiny-bert-mean\"\nthreshold = 0.9\ncluster_docs = {cluster_docs}"
    )
    .parse()
    .unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let Built::Global(stage) = (classifiers::semantic::DEF.build)(&StageArgs {
        name: "semantic",
        table: &table,
        base_dir: &root,
        purpose: Purpose::Select,
        seed: 20240723,
    })
    .unwrap() else {
        panic!("a global stage")
    };
    let ctx = StepCtx {
        store: store.clone(),
        dir: wd.clone(),
        partitions: parts,
        scratch: dir.join("scratch"),
        memory_budget: 1 << 30,
        threads: 2,
        seed: 20240723,
    };
    let (s0, sc0) = (Instant::now(), cpu_seconds());
    let mut cpu_of = std::collections::BTreeMap::<String, f64>::new();
    let mut all = std::collections::BTreeMap::<String, u64>::new();
    for step in stage.steps() {
        let (t, c) = (Instant::now(), cpu_seconds());
        let tasks = step.tasks(&ctx).unwrap();
        let stats: Vec<_> = (0..tasks)
            .into_par_iter()
            .with_max_len(1)
            .map(|k| step.run(k, &ctx).unwrap())
            .collect();
        let mut counters = std::collections::BTreeMap::<String, u64>::new();
        for s in &stats {
            for (k, v) in &s.counters {
                let e = counters.entry(k.clone()).or_default();
                if k == "largest_cluster" {
                    *e = (*e).max(*v);
                } else {
                    *e += v;
                }
            }
        }
        let cpu = cpu_seconds() - c;
        println!(
            "step {:<9} {tasks:>4} tasks: {:>7.1} s wall, {:>7.1} s CPU, peak RSS so far {:.0} MB; {counters:?}",
            step.name(),
            t.elapsed().as_secs_f64(),
            cpu,
            peak_rss() as f64 / 1e6
        );
        cpu_of.insert(step.name().to_string(), cpu);
        all.extend(
            counters
                .into_iter()
                .map(|(k, v)| (format!("{}.{k}", step.name()), v)),
        );
    }
    // Unit costs for extrapolation: assigning a row computes about k1 + k / k1 dot products
    // (coarse, then the fine centroids under the nearest coarse one).
    let (k, k1) = (
        all["centroids.clusters"] as f64,
        all["centroids.coarse"] as f64,
    );
    let dots = k1 + k / k1;
    let comparisons = all["dedup.comparisons"] as f64;
    println!(
        "unit costs: assign {:.2} us CPU per row ({dots:.0} centroid dot products per row); \
         dedup {comparisons:.3e} cosines ({:.0} per row), {:.1} ns CPU per cosine",
        cpu_of["assign"] / docs as f64 * 1e6,
        comparisons / docs as f64,
        cpu_of["dedup"] / comparisons.max(1.0) * 1e9
    );
    let (wall, cpu) = (s0.elapsed().as_secs_f64(), cpu_seconds() - sc0);
    let du = |sub: &str| -> u64 {
        store
            .list(&format!("{wd}/{sub}"))
            .unwrap()
            .iter()
            .map(|f| std::fs::metadata(dir.join("out").join(f)).map_or(0, |m| m.len()))
            .sum()
    };
    println!(
        "steps total: {wall:.1} s wall, {cpu:.1} s CPU ({:.0} docs per CPU-second), peak RSS {:.0} MB; \
         on disk: embeddings {:.2} GB, groups {:.2} GB",
        docs as f64 / cpu,
        peak_rss() as f64 / 1e6,
        du("emb") as f64 / 1e9,
        du("groups") as f64 / 1e9
    );

    // 3. Decisions against the planted groups.
    let plan: Plan = read_json(store.as_ref(), &plan_path(&wd)).unwrap();
    let (mut found, mut planted, mut wrong, mut decided) = (0u64, 0u64, 0u64, 0u64);
    let mut v = Vec::new();
    for p in 0..parts {
        for g in 0..plan.groups {
            let path = decision_path(&wd, g, p / plan.range);
            let b = read_decisions(store.as_ref(), &path, p % plan.range).unwrap();
            for r in b.chunks_exact(DECISION_ROW) {
                let i = u32_at(r, 0) as u64 * parts as u64 + p as u64;
                let (_, dup) = synth.doc(i, &mut v);
                let dropped = u32_at(r, 16) != 0;
                decided += 1;
                found += (dup && dropped) as u64;
                wrong += (!dup && dropped) as u64;
            }
        }
    }
    for i in 0..docs {
        planted += (i / 4 % 5 == 0 && i % 4 > 0) as u64;
    }
    println!(
        "decisions: {decided} documents, planted duplicates {planted}, found {found} ({:.2}%), \
         dropped but not planted {wrong}",
        100.0 * found as f64 / planted.max(1) as f64
    );
    if std::env::var("SCALE_DIR").is_ok() && std::env::var("SCALE_KEEP").is_err() {
        let _ = std::fs::remove_dir_all(dir.join("out"));
    }
}
