//! Mix speed: selection over a 10M-document signal table.
//!
//! Part 1 times the planner alone on 10M synthetic candidates. Part 2 writes 10M rows as a
//! finished run's Parquet outputs (curate's document schema, 17 signal columns of the stages a
//! real pipeline has: imported language/topic/quality scores, token counts, buckets, three
//! length filters; 5% of rows in `dropped/`), then times what `curate mix` does before
//! tokenizing: the scan of every file (the one Parquet reader), re-deriving buckets, re-judging every stage
//! per row, and planning. Target: under 30 s.
//!
//! Run: cargo bench -p curate-benches --bench mix   (MIX_ROWS=1000000 for a quick run;
//! the table is kept in the temp folder and reused by later runs of the same size)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    ArrayRef, Float32Builder, Int64Builder, LargeStringBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use curate::config::Plan;
use curate::mix::plan::{plan, Candidate, MixConfig};
use curate::mix::{select, spec, StoredRun};
use parquet::arrow::ArrowWriter;
use rayon::prelude::*;
use stages::signals::SignalType;

const PIPELINE: &str = r#"[pipeline]
seed = 1
[input]
paths = ["in.jsonl"]
[output]
path = "run"
[stages.doc]
type = "signal.import"
[stages.doc.fields]
lang = "str"
lang_score = "f32"
q = "f32"
[stages.topic]
type = "signal.import"
[stages.topic.fields]
code = "f32"
math = "f32"
[stages.tokens]
type = "tokenize.count"
tokenizer = "cl100k_base"
[stages.bucket]
type = "mix.bucket"
lang_signal = "doc.lang"
lang_score_signal = "doc.lang_score"
any_language = ["code"]
[stages.short]
type = "filter.length"
min_words = 50
[stages.length]
type = "filter.length"
mode = "tag"
min_words = 100
[stages.long]
type = "filter.length"
max_words = 1900
[mix]
quality = "doc.q"
"#;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn planner_only(n: usize) {
    let mut s = Rng(0x2545_F491_4F6C_DD1D);
    let t = Instant::now();
    let cands: Vec<Candidate> = (0..n)
        .map(|_| {
            let r = s.next();
            // Buckets skewed like web data: mostly general, little math.
            let bucket = match r % 100 {
                0..=69 => 0,
                70..=74 => 1,
                75..=84 => 2,
                _ => 3,
            };
            // Long-tailed lengths: 50 to ~20k tokens.
            let tokens = 50 + ((r >> 8) % 1000) * ((r >> 20) % 20 + 1);
            Candidate {
                key: s.next(),
                bucket,
                tokens: tokens as u32,
                quality: ((r >> 40) % 10_000) as f32 / 10_000.0,
                source: ((r >> 60) % 4) as u32,
            }
        })
        .collect();
    let gen = t.elapsed().as_secs_f64();
    let buckets: Vec<String> = ["general", "math", "code", "multilingual"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let sources: Vec<String> = (0..4).map(|i| format!("crawl-{i}")).collect();
    let total: u64 = cands.iter().map(|c| c.tokens as u64).sum();
    println!("planner: {n} candidate rows, {total} tokens (generated in {gen:.1} s)");
    for (what, table) in [
        (
            "quality, budget 30% of data",
            format!("total_tokens = {}", total * 3 / 10),
        ),
        (
            "uniform, budget from data",
            "sampling = 'uniform'".to_string(),
        ),
        (
            "weighted, short math x4",
            format!("sampling = 'weighted'\ntotal_tokens = {}", total),
        ),
    ] {
        let cfg = MixConfig::from_table(&table.parse().unwrap(), 42).unwrap();
        let t = Instant::now();
        let p = plan(&cands, &buckets, &sources, &cfg);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {what:<32} {secs:>6.2} s  {:>10.0} rows/s  {} docs, {} tokens, {} warnings",
            n as f64 / secs,
            p.report.documents,
            p.report.tokens,
            p.report.warnings.len()
        );
    }
}

/// Writes `n` rows as a run's `docs/` and `dropped/` files (40 partitions).
fn write_table(dir: &Path, plan: &Plan, n: usize) {
    let signals = plan.all_signals();
    let schema = curate::io::parquet::schema(&signals, false);
    let parts = 40;
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::create_dir_all(dir.join("dropped/map0")).unwrap();
    (0..parts).into_par_iter().for_each(|p| {
        let rows = n / parts + usize::from(p < n % parts);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((p as u64 + 1) * 0x1234_5678_9ABC_DEF1));
        let mut kept_w = None;
        let mut dropped_w = None;
        let mut done = 0;
        while done < rows {
            let b = (rows - done).min(8192);
            // Row values, then a batch for kept and one for dropped rows.
            let mut kept = Vec::with_capacity(b);
            let mut dropped = Vec::new();
            for i in 0..b {
                let words = 3 + (rng.next() % 2000) as i64;
                let kind = rng.next() % 100;
                let (mut code, mut math, mut lang) = (rng.unit() * 0.4, rng.unit() * 0.4, "en");
                match kind {
                    0..=14 => code = 0.6 + rng.unit() * 0.4,
                    15..=34 => math = 0.6 + rng.unit() * 0.4,
                    35..=46 => lang = ["de", "fr", "es", "ja", "ru"][(rng.next() % 5) as usize],
                    _ => {}
                }
                let row = Row {
                    id: format!("p{p:03}-{:08}", done + i),
                    words,
                    lang,
                    lang_score: 0.5 + rng.unit() / 2.0,
                    q: rng.unit(),
                    code,
                    math,
                };
                if words > 1900 {
                    dropped.push(row);
                } else {
                    kept.push(row);
                }
            }
            for (rows, w, path, drop) in [
                (
                    &kept,
                    &mut kept_w,
                    format!("docs/part-{p:05}.parquet"),
                    false,
                ),
                (
                    &dropped,
                    &mut dropped_w,
                    format!("dropped/map0/part-{p:05}.parquet"),
                    true,
                ),
            ] {
                if rows.is_empty() {
                    continue;
                }
                let batch = to_batch(&schema, &signals, rows, p, drop);
                let w = w.get_or_insert_with(|| {
                    let f = std::fs::File::create(dir.join(&path)).unwrap();
                    ArrowWriter::try_new(
                        f,
                        schema.clone(),
                        Some(curate::io::parquet::writer_properties(3, 8192)),
                    )
                    .unwrap()
                });
                w.write(&batch).unwrap();
            }
            done += b;
        }
        for w in [kept_w, dropped_w].into_iter().flatten() {
            w.close().unwrap();
        }
    });
    std::fs::write(dir.join("config.toml"), PIPELINE).unwrap();
    std::fs::write(dir.join("done"), n.to_string()).unwrap();
}

struct Row {
    id: String,
    words: i64,
    lang: &'static str,
    lang_score: f64,
    q: f64,
    code: f64,
    math: f64,
}

fn to_batch(
    schema: &arrow::datatypes::SchemaRef,
    signals: &[stages::SignalSpec],
    rows: &[Row],
    part: usize,
    dropped: bool,
) -> RecordBatch {
    let n = rows.len();
    let strs = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(n, n * 16);
        rows.iter().for_each(|r| b.append_option(f(r)));
        Arc::new(b.finish())
    };
    let mut cols: Vec<ArrayRef> = vec![
        strs(&|r| Some(r.id.clone())),
        strs(&|r| Some(format!("https://example.org/{}", r.id))),
        {
            let mut b = TimestampMillisecondBuilder::with_capacity(n);
            rows.iter().for_each(|_| b.append_value(1_709_251_200_000));
            Arc::new(b.finish().with_timezone("UTC"))
        },
        strs(&|_| {
            Some(format!(
                "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/1/warc/f{part:05}.warc.gz"
            ))
        }),
        {
            let mut b = Int64Builder::with_capacity(n);
            rows.iter()
                .enumerate()
                .for_each(|(i, _)| b.append_value(i as i64 * 4096));
            Arc::new(b.finish())
        },
        {
            let mut b = LargeStringBuilder::with_capacity(n, n);
            rows.iter().for_each(|_| b.append_value("-"));
            Arc::new(b.finish())
        },
        strs(&|_| Some("{}".into())),
        strs(&|_| Some(if dropped { "dropped" } else { "kept" }.into())),
        strs(&|_| dropped.then(|| "long".into())),
        strs(&|_| dropped.then(|| "too_many_words".into())),
        strs(&|r| (r.words < 100).then(|| "length:too_few_words".into())),
    ];
    for s in signals {
        let name = s.name.as_ref();
        let f32v = |r: &Row| -> f64 {
            match name {
                "doc.lang_score" => r.lang_score,
                "doc.q" => r.q,
                "topic.code" => r.code,
                "topic.math" => r.math,
                _ => 0.9,
            }
        };
        let col: ArrayRef = match s.ty {
            SignalType::F32 => {
                let mut b = Float32Builder::with_capacity(n);
                rows.iter().for_each(|r| b.append_value(f32v(r) as f32));
                Arc::new(b.finish())
            }
            SignalType::I64 => {
                let mut b = Int64Builder::with_capacity(n);
                for r in rows {
                    let v = match name.rsplit('.').next() {
                        Some("words") => r.words,
                        Some("chars") => r.words * 6,
                        Some("lines") => r.words / 12 + 1,
                        _ => r.words * 13 / 10 + 1, // tokens
                    };
                    b.append_value(v);
                }
                Arc::new(b.finish())
            }
            _ => match name {
                "doc.lang" => strs(&|r| Some(r.lang.to_string())),
                _ => strs(&|r| {
                    Some(
                        if r.code > 0.5 {
                            "code"
                        } else if r.lang != "en" {
                            "multilingual"
                        } else if r.math > 0.5 {
                            "math"
                        } else {
                            "general"
                        }
                        .into(),
                    )
                }),
            },
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema.clone(), cols).unwrap()
}

fn selection(dir: &Path, pipeline: &Path, set: &[&str]) {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let text = std::fs::read_to_string(pipeline).unwrap();
    let cf = curate::config::parse(pipeline, text.clone(), &set).unwrap();
    let spec = spec::resolve(&cf, &[]).unwrap().remove(0);
    let d = dir.to_str().unwrap();
    let plan = Plan::for_selection(
        curate::config::parse(pipeline, text, &set).unwrap(),
        Some(d),
    )
    .unwrap();
    let t = Instant::now();
    let run = StoredRun::open(&cf, d).unwrap_or_else(|e| panic!("{e}"));
    let tokens = select::token_signal(&spec, run.plan.as_ref());
    let judge = select::Judge::new(&plan, run.plan.as_ref(), &spec, tokens.as_deref());
    let sel = run
        .select(&judge, spec.where_sql.as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    let scan = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let p = plan_mix(&sel, &spec);
    let planning = t.elapsed().as_secs_f64();
    let rows = sel.stats.kept_rows + sel.stats.dropped_rows;
    println!(
        "  {:<44} scan+judge {scan:>6.2} s ({:>5.2} M rows/s)  plan {planning:>5.2} s  total {:>6.2} s  {} candidates ({} recovered), {} picked, {}",
        if set.is_empty() { "as run".to_string() } else { set.join(" ") },
        rows as f64 / scan / 1e6,
        scan + planning,
        sel.stats.candidates,
        sel.stats.recovered,
        p.report.documents,
        if scan + planning < 30.0 { "under 30 s" } else { "OVER 30 s" }
    );
}

fn plan_mix(sel: &select::Selection, spec: &spec::MixSpec) -> curate::mix::plan::MixPlan {
    plan(&sel.candidates, &sel.buckets, &sel.sources, &spec.planner)
}

fn main() {
    let n: usize = std::env::var("MIX_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let threads = rayon::current_num_threads();
    planner_only(n);

    let base: PathBuf = std::env::temp_dir().join(format!("curate-mix-bench-{n}"));
    let pipeline = base.join("pipeline.toml");
    let run = base.join("run");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(&pipeline, PIPELINE).unwrap();
    let done = std::fs::read_to_string(run.join("done")).ok();
    if done.as_deref() != Some(n.to_string().as_str()) {
        let _ = std::fs::remove_dir_all(&run);
        let cf = curate::config::parse(&pipeline, PIPELINE.into(), &[]).unwrap();
        let plan = Plan::for_selection(cf, None).unwrap();
        let t = Instant::now();
        write_table(&run, &plan, n);
        println!(
            "wrote {n} rows as 80 Parquet files in {:.1} s ({})",
            t.elapsed().as_secs_f64(),
            run.display()
        );
    }
    let bytes: u64 = ["docs", "dropped/map0"]
        .iter()
        .flat_map(|d| std::fs::read_dir(run.join(d)).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "selection over {n} stored rows ({:.0} MB of Parquet, 17 signal columns), {threads} threads:",
        bytes as f64 / 1e6
    );
    selection(&run, &pipeline, &[]);
    selection(
        &run,
        &pipeline,
        &[
            "stages.length.min_words=300",
            "mix.code=0.25",
            "mix.general=0.42",
        ],
    );
    selection(&run, &pipeline, &["stages.long.max_words=100000"]);
    selection(
        &run,
        &pipeline,
        &["mix.where=doc.q > 0.3 AND topic.math < 0.9"],
    );
}
