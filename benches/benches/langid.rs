//! Language ID: accuracy per language on the lingua test sets (sentences, word pairs, single
//! words of ../shared/data/langid/lingua-testdata, all 75 languages) and sentences/s, one thread
//! each, in one run: curate's built-in (`whichlang`), curate serving `lid.176.ftz`, lingua-rs
//! in its low- and high-accuracy modes, curate's n-gram scorer over lingua's models (`ngram`),
//! and lid.176 with `ngram` or lingua as the second opinion below a lid.176 probability
//! (`lid176+ngram`, `lid176+lingua*`), next to Python fastText on the same sentences.
//!
//! The test sets are split by the one split rule's hash of each text (`src/split.rs`,
//! `sha1_prefix32(text) % 5 == 0`): that fifth is the *tuning* fold, on which the n-gram
//! scorer's floor and back-off, the second opinion's threshold and lingua mode were chosen (the
//! grids are printed); every accuracy in the
//! tables is on the other four fifths. A detector is scored on every language (a language it
//! has no label for counts as wrong), and its average is over all 75.
//! Run: cargo bench -p curate-benches --bench langid

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use classifiers::fasttext::Session;
use classifiers::langid::lingua_rs::{Lingua, DEFAULT_TRUST};
use classifiers::langid::ngram::{self, NgramLid};
use classifiers::langid::{merge_second_opinion, Detection, Detector, Second};
use curate_benches::{best_of, peer_python, run_peer, shared_dir, test_python};
use rayon::prelude::*;

/// lingua's language names (the CSV's first column) and their ISO 639-1 codes.
const NAMES: &[(&str, &str)] = &[
    ("Afrikaans", "af"),
    ("Albanian", "sq"),
    ("Arabic", "ar"),
    ("Armenian", "hy"),
    ("Azerbaijani", "az"),
    ("Basque", "eu"),
    ("Belarusian", "be"),
    ("Bengali", "bn"),
    ("Bokmal", "nb"),
    ("Bosnian", "bs"),
    ("Bulgarian", "bg"),
    ("Catalan", "ca"),
    ("Chinese", "zh"),
    ("Croatian", "hr"),
    ("Czech", "cs"),
    ("Danish", "da"),
    ("Dutch", "nl"),
    ("English", "en"),
    ("Esperanto", "eo"),
    ("Estonian", "et"),
    ("Finnish", "fi"),
    ("French", "fr"),
    ("Ganda", "lg"),
    ("Georgian", "ka"),
    ("German", "de"),
    ("Greek", "el"),
    ("Gujarati", "gu"),
    ("Hebrew", "he"),
    ("Hindi", "hi"),
    ("Hungarian", "hu"),
    ("Icelandic", "is"),
    ("Indonesian", "id"),
    ("Irish", "ga"),
    ("Italian", "it"),
    ("Japanese", "ja"),
    ("Kazakh", "kk"),
    ("Korean", "ko"),
    ("Latin", "la"),
    ("Latvian", "lv"),
    ("Lithuanian", "lt"),
    ("Macedonian", "mk"),
    ("Malay", "ms"),
    ("Maori", "mi"),
    ("Marathi", "mr"),
    ("Mongolian", "mn"),
    ("Nynorsk", "nn"),
    ("Persian", "fa"),
    ("Polish", "pl"),
    ("Portuguese", "pt"),
    ("Punjabi", "pa"),
    ("Romanian", "ro"),
    ("Russian", "ru"),
    ("Serbian", "sr"),
    ("Shona", "sn"),
    ("Slovak", "sk"),
    ("Slovene", "sl"),
    ("Somali", "so"),
    ("Sotho", "st"),
    ("Spanish", "es"),
    ("Swahili", "sw"),
    ("Swedish", "sv"),
    ("Tagalog", "tl"),
    ("Tamil", "ta"),
    ("Telugu", "te"),
    ("Thai", "th"),
    ("Tsonga", "ts"),
    ("Tswana", "tn"),
    ("Turkish", "tr"),
    ("Ukrainian", "uk"),
    ("Urdu", "ur"),
    ("Vietnamese", "vi"),
    ("Welsh", "cy"),
    ("Xhosa", "xh"),
    ("Yoruba", "yo"),
    ("Zulu", "zu"),
];

const KINDS: [&str; 3] = ["sentences", "word-pairs", "single-words"];

fn gunzip_lines(p: &Path) -> Vec<String> {
    let mut s = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(p).unwrap()),
        &mut s,
    )
    .unwrap();
    s.lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// lingua's CSV: code -> column -> accuracy (percent).
fn published(path: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut out = BTreeMap::new();
    for l in lines {
        let cells: Vec<&str> = l.split(',').collect();
        let Some(code) = NAMES.iter().find(|(n, _)| *n == cells[0]).map(|x| x.1) else {
            continue;
        };
        let row = header[1..]
            .iter()
            .zip(&cells[1..])
            .filter_map(|(h, v)| {
                v.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| (h.to_string(), v))
            })
            .collect();
        out.insert(code.to_string(), row);
    }
    out
}

/// What every detector answered for one text (computed once; the combinations are derived).
struct Answers {
    builtin: String,
    lid: Detection,
    low: Detection,
    high: Detection,
    ngram: Detection,
}

/// The second opinions compared, by name.
const SECONDS: [&str; 3] = ["lingua-low", "lingua-high", "ngram"];

impl Answers {
    fn second(&self, name: &str) -> &Detection {
        match name {
            "lingua-low" => &self.low,
            "lingua-high" => &self.high,
            _ => &self.ngram,
        }
    }
}

/// lid.176's answer when its probability reaches `trust`, else the second opinion's (as
/// [`Detector::Combined`] answers).
fn combine<'a>(a: &'a Answers, second: &str, trust: f32) -> (&'a str, f32) {
    if a.lid.score >= trust {
        return (&a.lid.lang, a.lid.score);
    }
    merge_second_opinion(&a.lid, a.second(second))
}

/// Per language: accuracy (%) for sentences, pairs, words.
type Table = BTreeMap<String, [f64; 3]>;

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let data = shared.join("data/langid/lingua-testdata");
    let model = shared.join("data/langid/models/lid.176.ftz");
    let table = published(&shared.join("data/langid/lingua-average-accuracy-values.csv"));
    let builtin = Detector::Builtin;
    let lid = Detector::fasttext(&model, 10_000).unwrap();
    let low = Lingua::shared(false);
    let high = Lingua::shared(true);
    let t_build = std::time::Instant::now();
    let ng = NgramLid::shared();
    println!(
        "n-gram table built in {:.1} s ({} entries, {:.0} MB)",
        t_build.elapsed().as_secs_f64(),
        ng.len(),
        ng.bytes() as f64 / 1e6
    );
    // CURATE_LANGID_EVERY=N keeps every Nth text of each set (a quick look in a debug build).
    let every: usize = std::env::var("CURATE_LANGID_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut sets: BTreeMap<String, [Vec<String>; 3]> = BTreeMap::new();
    for (_, code) in NAMES {
        let d = data.join(code);
        if d.is_dir() {
            sets.insert(
                code.to_string(),
                KINDS.map(|k| {
                    gunzip_lines(&d.join(format!("{k}.txt.gz")))
                        .into_iter()
                        .step_by(every)
                        .collect()
                }),
            );
        }
    }
    println!("{} languages in lingua-testdata", sets.len());
    let tuning = |t: &str| curate::split::sha1_prefix32(t) % 5 == 0;
    // answers[lang][kind] = (text is in the tuning fold, answers)
    let t0 = std::time::Instant::now();
    let answers: BTreeMap<String, Vec<Vec<(bool, Answers)>>> = sets
        .par_iter()
        .map(|(code, kinds)| {
            let mut s = Session::default();
            let per_kind = kinds
                .iter()
                .map(|texts| {
                    texts
                        .iter()
                        .map(|t| {
                            (
                                tuning(t),
                                Answers {
                                    builtin: builtin.detect(t, &mut s).lang,
                                    lid: lid.detect(t, &mut s),
                                    low: low.detect(t),
                                    high: high.detect(t),
                                    ngram: ng.detect(t),
                                },
                            )
                        })
                        .collect()
                })
                .collect();
            (code.clone(), per_kind)
        })
        .collect();
    println!("(answers computed in {:.0} s)", t0.elapsed().as_secs_f64());

    // Accuracy of one answer rule on one fold.
    let score = |fold: bool, rule: &dyn Fn(&Answers) -> &str| -> Table {
        answers
            .iter()
            .map(|(code, kinds)| {
                let mut a = [0f64; 3];
                for (k, texts) in kinds.iter().enumerate() {
                    let of: Vec<&Answers> =
                        texts.iter().filter(|x| x.0 == fold).map(|x| &x.1).collect();
                    let ok = of.iter().filter(|x| rule(x) == code).count();
                    a[k] = 100.0 * ok as f64 / of.len().max(1) as f64;
                }
                (code.clone(), a)
            })
            .collect()
    };
    let means = |t: &Table| -> [f64; 4] {
        let n = t.len().max(1) as f64;
        let k = |i: usize| t.values().map(|a| a[i]).sum::<f64>() / n;
        let (a, b, c) = (k(0), k(1), k(2));
        [a, b, c, (a + b + c) / 3.0]
    };

    let hi_sent = means(&score(true, &|a| &a.high.lang))[0];
    // The n-gram scorer's floor and back-off, on the tuning fold only: the highest three-set
    // average among those whose sentence accuracy reaches lingua-high's.
    println!("\ntuning fold (a fifth of every set): the n-gram scorer's floor and back-off");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9}",
        "params", "sentences", "pairs", "words", "average"
    );
    let shipped = ngram::DEFAULT_PARAMS;
    let mut grid_model = NgramLid::build(shipped);
    let mut ng_pick: Option<((f32, f32), f64)> = None;
    for floor in [-8.0f32, -10.0, -12.0, -15.0] {
        for backoff in [0.0f32, -1.0, -2.0, -3.0] {
            grid_model.set_scoring(ngram::Params {
                floor,
                backoff,
                ..shipped
            });
            let t: Table = sets
                .par_iter()
                .map(|(code, kinds)| {
                    let mut a = [0f64; 3];
                    for (k, texts) in kinds.iter().enumerate() {
                        let of: Vec<&String> = texts.iter().filter(|t| tuning(t)).collect();
                        let ok = of
                            .iter()
                            .filter(|t| grid_model.detect(t).lang == *code)
                            .count();
                        a[k] = 100.0 * ok as f64 / of.len().max(1) as f64;
                    }
                    (code.clone(), a)
                })
                .collect();
            let m = means(&t);
            if m[0] >= hi_sent && ng_pick.is_none_or(|p| m[3] > p.1) {
                ng_pick = Some(((floor, backoff), m[3]));
            }
            println!(
                "{:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                format!("floor {floor} back-off {backoff}"),
                m[0],
                m[1],
                m[2],
                m[3]
            );
        }
    }
    println!(
        "chosen on the tuning fold: {} (shipped: floor {} back-off {}; lingua-high alone: sentences {hi_sent:.2})",
        ng_pick.map_or("none reaches lingua-high".into(), |p| format!(
            "floor {} back-off {}",
            p.0 .0, p.0 .1
        )),
        shipped.floor,
        shipped.backoff
    );
    // The confidence's sharpness: the lowest log loss of the true language's confidence on the
    // tuning fold, with the shipped floor and back-off.
    grid_model.set_scoring(shipped);
    let tuning_ll: Vec<(usize, Vec<f32>, usize)> = sets
        .par_iter()
        .flat_map_iter(|(code, kinds)| {
            let truth = grid_model.languages().iter().position(|c| c == code);
            kinds
                .iter()
                .flatten()
                .filter(|t| tuning(t))
                .filter_map(|t| {
                    let sc = grid_model.log_likelihoods(t)?;
                    Some((truth?, sc.log_likelihoods, sc.terms))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut sharp_pick = ((f32::NAN, f32::NAN), f64::INFINITY);
    println!("confidence: log loss of the true language's confidence, tuning fold");
    for exponent in [1.0f32, 0.5] {
        print!("  length exponent {exponent}, sharpness:");
        for sharpness in [0.25f32, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0] {
            let p = ngram::Params {
                sharpness,
                length_exponent: exponent,
                ..shipped
            };
            let loss = tuning_ll
                .iter()
                .map(|(truth, ll, terms)| {
                    -(ngram::confidences(ll, *terms, &p)[*truth].max(1e-9) as f64).ln()
                })
                .sum::<f64>()
                / tuning_ll.len().max(1) as f64;
            if loss < sharp_pick.1 {
                sharp_pick = ((exponent, sharpness), loss);
            }
            print!(" {sharpness}: {loss:.4}");
        }
        println!();
    }
    println!(
        "chosen on the tuning fold: length exponent {}, sharpness {} (shipped: {}, {})",
        sharp_pick.0 .0, sharp_pick.0 .1, shipped.length_exponent, shipped.sharpness
    );
    drop(tuning_ll);
    drop(grid_model);

    // The second opinion's choice, on the tuning fold only.
    println!("\ntuning fold: lid.176 + a second opinion below a lid.176 probability");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "rule", "sentences", "pairs", "words", "average", "2nd on"
    );
    let tune_total: usize = answers
        .values()
        .flat_map(|k| k.iter().flatten())
        .filter(|x| x.0)
        .count();
    // Per mode, the threshold: the lowest (lingua asked least often, fastest) whose sentence
    // accuracy reaches lingua-high's and whose three-set average is within half a point of
    // the best threshold's, on the tuning fold.
    let trusts = [0.0f32, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01];
    let mut tuned = [DEFAULT_TRUST, DEFAULT_TRUST, ngram::DEFAULT_TRUST];
    for (mode, second) in SECONDS.iter().enumerate() {
        let grid: Vec<(f32, [f64; 4])> = trusts
            .iter()
            .map(|&t| (t, means(&score(true, &|a| combine(a, second, t).0))))
            .collect();
        let best = grid
            .iter()
            .map(|g| g.1[3])
            .fold(f64::NEG_INFINITY, f64::max);
        let pick = grid
            .iter()
            .find(|(_, m)| m[0] >= hi_sent && m[3] >= best - 0.5)
            .or_else(|| grid.iter().find(|(_, m)| m[3] >= best - 0.5))
            .map(|g| g.0);
        tuned[mode] = pick.unwrap_or(tuned[mode]);
        for (trust, m) in &grid {
            let asked = answers
                .values()
                .flat_map(|k| k.iter().flatten())
                .filter(|x| x.0 && x.1.lid.score < *trust)
                .count();
            println!(
                "{:<22} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.1}%",
                format!("{second} < {trust}"),
                m[0],
                m[1],
                m[2],
                m[3],
                100.0 * asked as f64 / tune_total.max(1) as f64
            );
        }
    }
    let (t_low, t_high, t_ngram) = (tuned[0], tuned[1], tuned[2]);
    println!(
        "chosen on the tuning fold: lingua-low below {t_low}, lingua-high below {t_high}, ngram below {t_ngram} (shipped: lingua {DEFAULT_TRUST}, ngram {}; lingua-high alone: sentences {hi_sent:.2})",
        ngram::DEFAULT_TRUST
    );

    // The evaluation folds.
    let columns: Vec<(&str, Table)> = vec![
        (
            "lid176+ngram",
            score(false, &|a| combine(a, "ngram", t_ngram).0),
        ),
        ("ngram", score(false, &|a| &a.ngram.lang)),
        (
            "lid176+lingua",
            score(false, &|a| combine(a, "lingua-low", t_low).0),
        ),
        (
            "lid176+lingua-high",
            score(false, &|a| combine(a, "lingua-high", t_high).0),
        ),
        ("lid176", score(false, &|a| &a.lid.lang)),
        ("lingua-low", score(false, &|a| &a.low.lang)),
        ("lingua-high", score(false, &|a| &a.high.lang)),
        ("builtin", score(false, &|a| &a.builtin)),
    ];
    println!(
        "\nevaluation folds (four fifths): accuracy % per language, sentences / word pairs / single words"
    );
    print!("{:<5}", "lang");
    for (n, _) in &columns {
        print!(" | {n:^23}");
    }
    println!(" | published lingua lo/hi avg");
    for code in sets.keys() {
        print!("{code:<5}");
        for (_, t) in &columns {
            let a = t[code];
            print!(" | {:>7.1} {:>7.1} {:>7.1}", a[0], a[1], a[2]);
        }
        let col = |c: &str| {
            table
                .get(code)
                .and_then(|r| r.get(c))
                .map_or("-".into(), |v| format!("{v:.1}"))
        };
        println!(
            " | {} / {}",
            col("lingua-low-accuracy"),
            col("lingua-high-accuracy")
        );
    }
    println!("\nmeans over {} languages (evaluation folds):", sets.len());
    println!(
        "{:<20} {:>9} {:>9} {:>9} {:>9}",
        "detector", "sentences", "pairs", "words", "average"
    );
    let mut m_of = BTreeMap::new();
    for (n, t) in &columns {
        let m = means(t);
        m_of.insert(*n, m);
        println!(
            "{n:<20} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            m[0], m[1], m[2], m[3]
        );
    }
    for ours in [
        "lid176+ngram",
        "ngram",
        "lid176+lingua",
        "lid176+lingua-high",
    ] {
        let (o, lo, hi) = (m_of[ours], m_of["lingua-low"], m_of["lingua-high"]);
        println!(
            "targets for {ours}: sentences {:.2} >= lingua-high {:.2}: {}; three-set average {:.2} >= lingua-low {:.2}: {}",
            o[0],
            hi[0],
            if o[0] >= hi[0] { "met" } else { "NOT met" },
            o[3],
            lo[3],
            if o[3] >= lo[3] { "met" } else { "NOT met" },
        );
    }

    // Calibration: the confidence against the share right, evaluation folds, all three sets.
    println!(
        "\ncalibration (evaluation folds, all three sets): texts and accuracy per confidence bin"
    );
    let bins = [0.0f32, 0.5, 0.8, 0.95, 0.99, 1.01];
    for (name, trust) in [("ngram", 0.0f32), ("lid176+ngram", t_ngram)] {
        print!("{name:<14}");
        let mut per = vec![(0usize, 0usize); bins.len() - 1];
        for (code, kinds) in &answers {
            for (_, a) in kinds.iter().flatten().filter(|x| !x.0) {
                let (lang, score) = if name == "ngram" {
                    (a.ngram.lang.as_str(), a.ngram.score)
                } else {
                    combine(a, "ngram", trust)
                };
                let b = bins.windows(2).position(|w| score >= w[0] && score < w[1]);
                if let Some(b) = b {
                    per[b].0 += 1;
                    per[b].1 += (lang == code) as usize;
                }
            }
        }
        let all: usize = per.iter().map(|x| x.0).sum();
        for (w, (n, ok)) in bins.windows(2).zip(&per) {
            print!(
                " | [{:.2},{:.2}) {:>5.1}% of texts, {:>5.1}% right",
                w[0],
                w[1].min(1.0),
                100.0 * *n as f64 / all.max(1) as f64,
                100.0 * *ok as f64 / (*n).max(1) as f64
            );
        }
        println!();
    }

    // Speed on every 5th sentence of every language, one thread, best of 3 each.
    let sentences: Vec<&String> = sets.values().flat_map(|k| k[0].iter().step_by(5)).collect();
    let bytes: usize = sentences.iter().map(|t| t.len()).sum();
    println!(
        "\nspeed: {} sentences (every 5th of each language), {:.1} MB, one thread, best of 3",
        sentences.len(),
        bytes as f64 / 1e6
    );
    let detectors: Vec<(&str, Detector)> = vec![
        ("builtin", Detector::Builtin),
        ("lid176", Detector::fasttext(&model, 10_000).unwrap()),
        ("lingua-low", Detector::Lingua(low.clone())),
        ("lingua-high", Detector::Lingua(high.clone())),
        ("ngram", Detector::Ngram(ng.clone())),
        (
            "lid176+ngram",
            Detector::combined(&model, 10_000, Second::Ngram(ng.clone()), t_ngram).unwrap(),
        ),
        (
            "lid176+lingua",
            Detector::combined(&model, 10_000, Second::Lingua(low.clone()), t_low).unwrap(),
        ),
        (
            "lid176+lingua-high",
            Detector::combined(&model, 10_000, Second::Lingua(high.clone()), t_high).unwrap(),
        ),
    ];
    let mut s = Session::default();
    let mut rates = BTreeMap::new();
    for (name, det) in &detectors {
        // Warm: lingua loads its models on first use.
        for t in sentences.iter().take(2000) {
            std::hint::black_box(det.detect(t, &mut s));
        }
        let (mut cpu, mut wall) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..3 {
            let c0 = thread_cpu();
            let w = best_of(1, || {
                for t in &sentences {
                    std::hint::black_box(det.detect(t, &mut s));
                }
            });
            cpu = cpu.min(thread_cpu() - c0);
            wall = wall.min(w);
        }
        let r = sentences.len() as f64 / wall;
        rates.insert(*name, r);
        println!(
            "  curate {name:<20} {r:>10.0} sentences/s wall {:>10.0} /s CPU {:>7.2} MB/s",
            sentences.len() as f64 / cpu,
            bytes as f64 / wall / 1e6
        );
    }
    for ours in ["lid176+ngram", "ngram"] {
        let r = rates[ours];
        println!(
            "  speed target for {ours}: {r:.0} >= 20,000 sentences/s per core: {}",
            if r >= 20_000.0 { "met" } else { "NOT met" }
        );
    }
    let py = test_python()
        .into_iter()
        .chain(peer_python("dt"))
        .find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import fasttext"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if let Some(py) = py {
        let file = std::env::temp_dir().join(format!("curate-langid-{}.txt", std::process::id()));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for t in &sentences {
            writeln!(f, "{t}").unwrap();
        }
        drop(f);
        let script = curate_benches::repo_root().join("benches/peers/fasttext_peer.py");
        if let Some(v) = run_peer(
            &py,
            &[
                script.to_str().unwrap(),
                "bench",
                model.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        ) {
            let p = v["docs_per_s"].as_f64().unwrap_or(0.0);
            println!(
                "  Python fastText lid.176.ftz {p:>10.0} sentences/s {:>7.2} MB/s",
                v["mb_per_s"].as_f64().unwrap_or(0.0)
            );
            for (name, r) in &rates {
                println!("  ratio curate {name} / Python lid.176: {:.2}x", r / p);
            }
        }
        let _ = std::fs::remove_file(&file);
    } else {
        println!("  Python fastText: skipped (no Python with fasttext)");
    }
}

/// CPU seconds of this thread.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}
