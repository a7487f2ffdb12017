//! S3 faults: a fault-injecting TCP proxy on 127.0.0.1 between curate and a real S3 server
//! (moto) drops connections mid-transfer, delays them, and answers `503 SlowDown`; the run must
//! retry through all of it and produce the same output as a run without faults, with no
//! partial object visible.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::*;

/// Counts of injected faults.
#[derive(Default)]
pub struct FaultCounts {
    pub connections: AtomicU64,
    pub dropped: AtomicU64,
    pub delayed: AtomicU64,
    pub slowdowns: AtomicU64,
}

/// A TCP proxy that injects faults into a fraction of connections.
pub struct FaultProxy {
    pub endpoint: String,
    pub counts: Arc<FaultCounts>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: String, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let counts = Arc::new(FaultCounts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut rng = Words::new(seed);
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let n = c.connections.fetch_add(1, Ordering::Relaxed);
                        // The first connections pass, so the server is reached at all; then faults.
                        let roll = if n < 2 { 99 } else { rng.next() % 100 };
                        let cut = 200 + rng.next() % 20_000;
                        let up = upstream.clone();
                        let c2 = c.clone();
                        std::thread::spawn(move || handle(client, &up, roll, cut, &c2));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FaultProxy {
            endpoint,
            counts,
            stop,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn handle(mut client: TcpStream, upstream: &str, roll: u64, cut: u64, c: &FaultCounts) {
    let addr = upstream.trim_start_matches("http://");
    if roll < 12 {
        // Throttling: read the request head, answer 503 SlowDown, close.
        c.slowdowns.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 4096];
        let _ = client.read(&mut buf);
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let _ = write!(client, "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    let Ok(server) = TcpStream::connect(addr) else {
        return;
    };
    let drop_after = if roll < 24 {
        c.dropped.fetch_add(1, Ordering::Relaxed);
        Some(cut)
    } else {
        None
    };
    if (24..32).contains(&roll) {
        c.delayed.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (mut c_r, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c_r, &mut s_w);
        let _ = s_w.shutdown(Shutdown::Write);
    });
    // Server -> client, possibly cut mid-response (a dropped connection).
    let (mut s_r, mut c_w) = (server, client);
    let mut sent = 0u64;
    let mut buf = [0u8; 8192];
    loop {
        let n = match s_r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(limit) = drop_after {
            if sent + n as u64 > limit {
                let k = (limit - sent) as usize;
                let _ = c_w.write_all(&buf[..k]);
                let _ = c_w.shutdown(Shutdown::Both);
                let _ = s_r.shutdown(Shutdown::Both);
                break;
            }
        }
        if c_w.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let _ = c_w.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[test]
fn s3_run_survives_drops_delays_and_throttling() {
    let m = crate::need_moto!();
    let d = tempfile::tempdir().unwrap();
    write_jsonl(&d.path().join("a.jsonl"), 4000, 31);
    m.boto(
        "s3.create_bucket(Bucket='faulty')\ns3.upload_file(sys.argv[1], 'faulty', 'in/a.jsonl')",
        &[d.path().join("a.jsonl").to_str().unwrap()],
    );
    let p = pipeline(
        d.path(),
        "[input]\npaths = [\"a.jsonl\"]\npartition_bytes = 60000\n[output]\npath = \"local\"\n[stages.length]\ntype = \"filter.length\"\nmin_words = 10\n[storage]\nmax_retries = 20\nretry_timeout_s = 120\n",
    );
    let ps = p.to_str().unwrap();
    curate_ok(&["run", ps, "-q"]);
    let proxy = FaultProxy::start(m.endpoint.clone(), 7);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_curate"))
        .args([
            "run",
            ps,
            "--input",
            "s3://faulty/in/a.jsonl",
            "--output",
            "s3://faulty/out",
            "-q",
        ])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .output()
        .unwrap();
    let c = &proxy.counts;
    let (conns, drops, delays, slow) = (
        c.connections.load(Ordering::Relaxed),
        c.dropped.load(Ordering::Relaxed),
        c.delayed.load(Ordering::Relaxed),
        c.slowdowns.load(Ordering::Relaxed),
    );
    assert!(
        out.status.success(),
        "run through faults failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        conns
    );
    assert!(
        drops > 0 && slow > 0 && delays > 0,
        "faults were injected: conns {conns} drops {drops} delays {delays} 503s {slow}"
    );
    let got = d.path().join("got");
    let dl = "import os\nb, p, d = sys.argv[1:4]\nfor o in s3.list_objects_v2(Bucket=b, Prefix=p).get('Contents', []):\n  k = o['Key']; f = os.path.join(d, k[len(p):].lstrip('/'))\n  os.makedirs(os.path.dirname(f), exist_ok=True); s3.download_file(b, k, f)";
    m.boto(dl, &["faulty", "out", got.to_str().unwrap()]);
    let local = outputs(&d.path().join("local"));
    let remote = outputs(&got);
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>(),
        "every partition committed exactly once"
    );
    let rows = |files: &std::collections::BTreeMap<String, Vec<u8>>| -> i64 {
        files
            .values()
            .map(|b| {
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                    bytes::Bytes::from(b.clone()),
                )
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows()
            })
            .sum()
    };
    assert_eq!(rows(&local), rows(&remote));
    eprintln!("faults injected: {conns} connections, {drops} dropped, {delays} delayed, {slow} answered 503 SlowDown");
}
