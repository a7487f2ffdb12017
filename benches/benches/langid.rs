//! Language ID: accuracy per language on the lingua test sets (sentences, word pairs, single
//! words of ../shared/data/langid/lingua-testdata) next to lingua's published table, and docs/s
//! next to Python fastText `lid.176.ftz` on the same sentences, one thread each, in one run.
//! Detectors: curate's built-in (`whichlang`) and curate serving `lid.176.ftz`.
//! "Supported languages" of a detector are those it has a label for; averages are over those.
//! Run: cargo bench -p curate-benches --bench langid

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use classifiers::fasttext::Session;
use classifiers::langid::Detector;
use curate_benches::{best_of, peer_python, run_peer, shared_dir, test_python};

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

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let data = shared.join("data/langid/lingua-testdata");
    let model = shared.join("data/langid/models/lid.176.ftz");
    let table = published(&shared.join("data/langid/lingua-average-accuracy-values.csv"));
    let detectors = [
        ("builtin", Detector::Builtin),
        ("lid176", Detector::fasttext(&model, 10_000).unwrap()),
    ];
    let mut sets: BTreeMap<String, [Vec<String>; 3]> = BTreeMap::new();
    for (_, code) in NAMES {
        let d = data.join(code);
        if d.is_dir() {
            sets.insert(
                code.to_string(),
                KINDS.map(|k| gunzip_lines(&d.join(format!("{k}.txt.gz")))),
            );
        }
    }
    // accuracy[detector][lang] = [sentences, pairs, words] in percent
    let mut acc: BTreeMap<&str, BTreeMap<String, [f64; 3]>> = BTreeMap::new();
    let mut s = Session::default();
    for (name, det) in &detectors {
        let langs = det.languages();
        for (code, kinds) in &sets {
            if !langs.contains(code) {
                continue;
            }
            let mut a = [0f64; 3];
            for (k, texts) in kinds.iter().enumerate() {
                let ok = texts
                    .iter()
                    .filter(|t| det.detect(t, &mut s).lang == *code)
                    .count();
                a[k] = 100.0 * ok as f64 / texts.len().max(1) as f64;
            }
            acc.entry(name).or_default().insert(code.clone(), a);
        }
    }
    println!("accuracy (%): sentences / word pairs / single words / average; lingua's published averages");
    println!(
        "{:<5} {:>30} {:>30} {:>8} {:>8} {:>8} {:>8}",
        "lang", "curate lid.176", "curate builtin", "lingua-lo", "lingua-hi", "whichlang", "cld2"
    );
    let fmt = |a: Option<&[f64; 3]>| {
        a.map(|a| {
            format!(
                "{:5.1} {:5.1} {:5.1} = {:5.1}",
                a[0],
                a[1],
                a[2],
                (a[0] + a[1] + a[2]) / 3.0
            )
        })
        .unwrap_or_else(|| "-".into())
    };
    let col = |code: &str, c: &str| {
        table
            .get(code)
            .and_then(|r| r.get(c))
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "-".into())
    };
    for code in sets.keys() {
        println!(
            "{code:<5} {:>30} {:>30} {:>8} {:>8} {:>8} {:>8}",
            fmt(acc["lid176"].get(code)),
            fmt(acc["builtin"].get(code)),
            col(code, "lingua-low-accuracy"),
            col(code, "lingua-high-accuracy"),
            col(code, "whichlang"),
            col(code, "cld2"),
        );
    }
    for (name, _) in &detectors {
        let ours = &acc[name];
        let mean = |f: &dyn Fn(&String, &[f64; 3]) -> Option<f64>| {
            let v: Vec<f64> = ours.iter().filter_map(|(c, a)| f(c, a)).collect();
            v.iter().sum::<f64>() / v.len().max(1) as f64
        };
        let avg = mean(&|_, a| Some((a[0] + a[1] + a[2]) / 3.0));
        let by_kind: Vec<f64> = (0..3).map(|k| mean(&|_, a| Some(a[k]))).collect();
        let lingua = |c: &str| mean(&|code, _| table.get(code).and_then(|r| r.get(c)).copied());
        println!(
            "curate {name}: {} languages, average {avg:.2} (sentences {:.2}, pairs {:.2}, words {:.2}); \
             on these languages lingua-low {:.2}, lingua-high {:.2}, whichlang {:.2}, cld2 {:.2}",
            ours.len(),
            by_kind[0], by_kind[1], by_kind[2],
            lingua("lingua-low-accuracy"),
            lingua("lingua-high-accuracy"),
            lingua("whichlang"),
            lingua("cld2"),
        );
    }

    // Speed on every sentence of every language, one thread.
    let sentences: Vec<&String> = sets.values().flat_map(|k| k[0].iter()).collect();
    let bytes: usize = sentences.iter().map(|t| t.len()).sum();
    println!(
        "\nspeed: {} sentences, {:.1} MB, one thread, best of 3",
        sentences.len(),
        bytes as f64 / 1e6
    );
    let mut rates = BTreeMap::new();
    for (name, det) in &detectors {
        let secs = best_of(3, || {
            for t in &sentences {
                std::hint::black_box(det.detect(t, &mut s));
            }
        });
        let r = sentences.len() as f64 / secs;
        rates.insert(*name, r);
        println!(
            "  curate {name:<10} {r:>10.0} docs/s {:>7.2} MB/s",
            bytes as f64 / secs / 1e6
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
                "  Python fastText lid.176.ftz {p:>10.0} docs/s {:>7.2} MB/s",
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
