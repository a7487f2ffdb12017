//! Shared helpers for the benchmark harnesses: locating ../shared data and the peer Python
//! environments, timing, and printing one comparable line per system.

pub mod classdata;
pub mod neardup;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The repository root (benches/ is one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("benches/ has a parent")
        .to_path_buf()
}

/// `../shared` beside the repository, if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = repo_root().parent()?.join("shared");
    p.is_dir().then_some(p)
}

/// The peers' Python of one environment (`dt`: datatrove, `ext`: extractors), if installed.
pub fn peer_python(env: &str) -> Option<PathBuf> {
    let base = std::env::var_os("CURATE_PEERS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate-peers"))
        })?;
    let py = base.join(env).join("bin/python");
    py.exists().then_some(py)
}

/// The test/bench Python environment (`.ci/requirements.txt`), if installed.
pub fn test_python() -> Option<PathBuf> {
    let py = std::env::var_os("CURATE_PY")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/curate/venv/bin/python"))
        })?;
    py.exists().then_some(py)
}

/// Runs a Python peer script that prints one JSON object on its last stdout line.
pub fn run_peer(python: &PathBuf, args: &[&str]) -> Option<serde_json::Value> {
    let out = Command::new(python).args(args).output().ok()?;
    if !out.status.success() {
        eprintln!("peer failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(s.lines().last()?).ok()
}

/// Times `f` (best of `reps` runs) and returns seconds.
pub fn best_of<F: FnMut()>(reps: usize, mut f: F) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..reps {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

/// Prints one result line: system, items/s, MB/s, and the ratio to a baseline rate.
pub fn report(
    system: &str,
    items: usize,
    bytes: usize,
    secs: f64,
    baseline_items_per_s: Option<f64>,
) {
    let ips = items as f64 / secs;
    let mbs = bytes as f64 / secs / 1e6;
    match baseline_items_per_s {
        Some(b) if b > 0.0 => println!(
            "{system:<40} {ips:>12.1} items/s {mbs:>9.2} MB/s   {:.1}x peer",
            ips / b
        ),
        _ => println!("{system:<40} {ips:>12.1} items/s {mbs:>9.2} MB/s"),
    }
}

/// SHA-1 of `data` (FIPS 180-4), for the data sets' split rule `int(sha1(group)[:8], 16)`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// `int(sha1(key)[:8], 16)`: the first 32 bits of SHA-1 as a number.
pub fn sha1_prefix32(key: &str) -> u32 {
    let d = sha1(key.as_bytes());
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha1_known_vectors() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(super::sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(super::sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
    }
}
