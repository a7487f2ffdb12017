//! fastText training and prediction throughput: curate against Python fastText on the same
//! texts with the same hyper-parameters (`curate train fasttext`'s defaults), one thread each,
//! in one run. Texts: the quality data set (hq train file + web text), normalized once by
//! curate's preprocessing and written in fastText's format, so both sides tokenize the same
//! lines; curate's training time includes its own preprocessing.
//! Run: cargo bench -p curate-benches --bench fasttext (CURATE_BENCH_KEEP=1 keeps both models)

use std::io::Write;

use classifiers::fasttext::train::{TrainOptions, Trainer};
use classifiers::fasttext::{FastText, Session};
use curate_benches::classdata::quality_docs;
use curate_benches::{best_of, peer_python, run_peer, shared_dir, test_python};

fn main() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: ../shared is absent");
        return;
    };
    let docs = quality_docs(&shared);
    let o = TrainOptions::default();
    let lines: Vec<String> = docs
        .iter()
        .map(|d| o.preprocess.normalize(&d.text))
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len()).sum();
    let dir = std::env::temp_dir().join(format!("curate-fasttext-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let train_file = dir.join("train.txt");
    let texts_file = dir.join("texts.txt");
    {
        let mut t = std::io::BufWriter::new(std::fs::File::create(&train_file).unwrap());
        let mut x = std::io::BufWriter::new(std::fs::File::create(&texts_file).unwrap());
        for (d, l) in docs.iter().zip(&lines) {
            writeln!(t, "__label__{} {l}", d.label).unwrap();
            writeln!(x, "{l}").unwrap();
        }
    }
    println!(
        "{} docs, {:.1} MB normalized; options {:?}",
        docs.len(),
        bytes as f64 / 1e6,
        o
    );

    // Training.
    let start = std::time::Instant::now();
    let mut trainer = Trainer::new(o.clone());
    for d in &docs {
        trainer.add(&d.label, &d.text);
    }
    let (model, report) = trainer.train().unwrap();
    let ours_train = start.elapsed().as_secs_f64();
    let work = report.tokens as f64 * o.epoch as f64;
    println!(
        "train  curate                {ours_train:>7.2} s  {:>10.0} tokens/s ({} tokens x {} epochs)",
        work / ours_train,
        report.tokens,
        o.epoch
    );
    let model_path = dir.join("ours.bin");
    model.save(&model_path).unwrap();

    let py = test_python()
        .into_iter()
        .chain(peer_python("dt"))
        .find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import fasttext"])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    let script = curate_benches::repo_root().join("benches/peers/fasttext_peer.py");
    let params = [
        format!("epoch={}", o.epoch),
        format!("lr={:.2}", o.lr),
        format!("dim={}", o.dim),
        format!("wordNgrams={}", o.word_ngrams),
        format!("bucket={}", o.buckets),
        format!("minCount={}", o.min_count),
        "thread=1".to_string(),
    ];
    let py_model = dir.join("py.bin");
    if let Some(py) = &py {
        let mut args = vec![
            script.to_str().unwrap(),
            "train",
            train_file.to_str().unwrap(),
            py_model.to_str().unwrap(),
        ];
        args.extend(params.iter().map(|s| s.as_str()));
        if let Some(v) = run_peer(py, &args) {
            let secs = v["seconds"].as_f64().unwrap();
            println!(
                "train  Python fastText       {secs:>7.2} s  {:>10.0} tokens/s   curate {:.2}x",
                work / secs,
                secs / ours_train
            );
        }
    } else {
        println!("train  Python fastText: skipped (no Python with fasttext)");
    }

    // Prediction (k = 1) on the normalized lines, with each side's own model.
    let mut s = Session::default();
    let secs = best_of(3, || {
        for l in &lines {
            std::hint::black_box(model.predict_line(l, 1, 0.0, &mut s));
        }
    });
    let ours_rate = lines.len() as f64 / secs;
    println!(
        "predict curate               {ours_rate:>10.0} docs/s {:>7.2} MB/s",
        bytes as f64 / secs / 1e6
    );
    let secs_raw = best_of(3, || {
        for d in &docs {
            std::hint::black_box(model.probabilities(&d.text, &o.preprocess, &mut s));
        }
    });
    println!(
        "predict curate (raw text, with preprocessing, all labels) {:>10.0} docs/s",
        docs.len() as f64 / secs_raw
    );
    if let Some(py) = &py {
        let m = if py_model.exists() {
            &py_model
        } else {
            &model_path
        };
        if let Some(v) = run_peer(
            py,
            &[
                script.to_str().unwrap(),
                "bench",
                m.to_str().unwrap(),
                texts_file.to_str().unwrap(),
            ],
        ) {
            let p = v["docs_per_s"].as_f64().unwrap();
            println!(
                "predict Python fastText      {p:>10.0} docs/s {:>7.2} MB/s   curate {:.2}x",
                v["mb_per_s"].as_f64().unwrap(),
                ours_rate / p
            );
        }
        // Python's model served by curate: same files, same speed question from the other side.
        if py_model.exists() {
            let pm = FastText::load(&py_model).unwrap();
            let secs = best_of(3, || {
                for l in &lines {
                    std::hint::black_box(pm.predict_line(l, 1, 0.0, &mut s));
                }
            });
            println!(
                "predict curate on Python's model {:>10.0} docs/s",
                lines.len() as f64 / secs
            );
        }
    }
    if std::env::var_os("CURATE_BENCH_KEEP").is_some() {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
