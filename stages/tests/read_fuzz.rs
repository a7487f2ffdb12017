//! The WARC reader under generated and mutated input: records round-trip, bad bytes never panic
//! or hang, and memory stays bounded by `max_record_bytes` whatever the declared lengths.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;

use proptest::prelude::*;
use stages::read::{align, read_docs, Format, ReadEvent, ReadOptions};

// ------------------------------------------------------------ per-thread allocation tracking

struct Tracking;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn track(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let v = c.get() + delta;
        c.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            track(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            track(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        track(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            track(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Peak bytes allocated by this thread while `f` runs (above what it held before).
fn peak_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    CURRENT.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    let r = f();
    (r, PEAK.with(|p| p.get()).max(0) as usize)
}

// ------------------------------------------------------------ generated WARC files

#[derive(Clone, Debug)]
enum Body {
    Html,
    Latin1Html,
    ChunkedHtml,
    GzipHtml,
    Png,
    Json,
}

#[derive(Clone, Debug)]
struct Rec {
    kind: &'static str,
    status: u16,
    body: Body,
    n: usize,
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        prop::sample::select(vec![
            "response", "response", "response", "resource", "request", "metadata", "warcinfo",
            "revisit",
        ]),
        prop::sample::select(vec![200u16, 200, 200, 301, 404, 500]),
        prop::sample::select(vec![
            Body::Html,
            Body::Latin1Html,
            Body::ChunkedHtml,
            Body::GzipHtml,
            Body::Png,
            Body::Json,
        ]),
        0usize..200,
    )
        .prop_map(|(kind, status, body, n)| Rec {
            kind,
            status,
            body,
            n,
        })
}

fn marker(i: usize) -> String {
    format!("page number {i} café")
}

/// The record's bytes, and whether it should become a document.
fn record(i: usize, r: &Rec) -> (Vec<u8>, bool) {
    let text = format!(
        "<!DOCTYPE html><html><head><title>{}</title></head><body>{}</body></html>",
        marker(i),
        "lorem ipsum ".repeat(r.n)
    );
    let (payload, ctype, extra, html): (Vec<u8>, &str, &str, bool) = match r.body {
        Body::Html => (text.into_bytes(), "text/html; charset=utf-8", "", true),
        Body::Latin1Html => {
            let (b, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
            (b.into_owned(), "text/html; charset=iso-8859-1", "", true)
        }
        Body::ChunkedHtml => {
            let b = text.as_bytes();
            let mut out = vec![];
            for c in b.chunks(37) {
                out.extend(format!("{:x}\r\n", c.len()).as_bytes());
                out.extend(c);
                out.extend(b"\r\n");
            }
            out.extend(b"0\r\n\r\n");
            (out, "text/html", "Transfer-Encoding: chunked\r\n", true)
        }
        Body::GzipHtml => {
            let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
            e.write_all(text.as_bytes()).unwrap();
            (
                e.finish().unwrap(),
                "text/html",
                "Content-Encoding: gzip\r\n",
                true,
            )
        }
        Body::Png => (
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            "image/png",
            "",
            false,
        ),
        Body::Json => (b"{\"a\": 1}".to_vec(), "application/json", "", false),
    };
    let (block, ctype_warc, doc) = match r.kind {
        "response" => {
            let mut b = format!(
                "HTTP/1.1 {} X\r\nContent-Type: {ctype}\r\n{extra}\r\n",
                r.status
            )
            .into_bytes();
            b.extend(&payload);
            (
                b,
                "application/http; msgtype=response",
                html && r.status == 200,
            )
        }
        "resource" if extra.is_empty() => (payload, ctype, html),
        "resource" => (text_only(i, r), "text/html", true),
        _ => (
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "application/http; msgtype=request",
            false,
        ),
    };
    let mut out = format!(
        "WARC/1.1\r\nWARC-Type: {}\r\nWARC-Record-ID: <urn:uuid:{i:08}>\r\nWARC-Target-URI: http://example.com/{i}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\nContent-Type: {ctype_warc}\r\nContent-Length: {}\r\n\r\n",
        r.kind,
        block.len()
    )
    .into_bytes();
    out.extend(block);
    out.extend(b"\r\n\r\n");
    (out, doc)
}

fn text_only(i: usize, r: &Rec) -> Vec<u8> {
    format!("<html><body>{} {}</body></html>", marker(i), r.n).into_bytes()
}

fn gzip_members(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![];
    for r in records {
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
        e.write_all(r).unwrap();
        out.extend(e.finish().unwrap());
    }
    out
}

fn read_bytes(data: Vec<u8>, opts: &ReadOptions) -> Vec<ReadEvent> {
    read_docs(
        Format::Warc,
        Arc::from("mem"),
        Box::new(std::io::Cursor::new(data)),
        0,
        None,
        opts,
    )
    .collect()
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(p, x)| Mutation::Flip(p, x)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..32))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                &b"WARC/1.0\r\n"[..],
                b"\r\n\r\n",
                b"Content-Length: 99999999\r\n",
                b"\x1f\x8b\x08"
            ])
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b.to_vec())),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(data: &mut Vec<u8>, muts: &[Mutation]) {
    for m in muts {
        if data.is_empty() {
            return;
        }
        let at = |p: usize| p % data.len();
        match m {
            Mutation::Flip(p, x) => {
                let i = at(*p);
                data[i] ^= x;
            }
            Mutation::Delete(p, n) => {
                let i = at(*p);
                let e = (i + n).min(data.len());
                data.drain(i..e);
            }
            Mutation::Insert(p, b) => {
                let i = at(*p);
                data.splice(i..i, b.iter().copied());
            }
            Mutation::Truncate(p) => {
                let i = at(*p);
                data.truncate(i);
            }
        }
    }
}

/// No panic, a bounded number of events, and `align` answers at or after its offset.
fn survives(data: Vec<u8>) {
    let n = data.len();
    let opts = ReadOptions {
        max_record_bytes: 1 << 16,
        ..Default::default()
    };
    let events = read_bytes(data.clone(), &opts);
    assert!(
        events.len() <= n / 5 + 2,
        "{} events from {n} bytes",
        events.len()
    );
    let mut cur = std::io::Cursor::new(data);
    for off in [1, n as u64 / 3, n as u64 / 2] {
        if let Ok(Some(a)) = align(Format::Warc, &mut cur, off) {
            assert!(a >= off && a <= n as u64);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn generated_records_round_trip(recs in prop::collection::vec(rec_strategy(), 1..12), gz in any::<bool>()) {
        let built: Vec<(Vec<u8>, bool)> = recs.iter().enumerate().map(|(i, r)| record(i, r)).collect();
        let bytes: Vec<Vec<u8>> = built.iter().map(|b| b.0.clone()).collect();
        let data = if gz { gzip_members(&bytes) } else { bytes.concat() };
        let events = read_bytes(data, &ReadOptions::default());
        prop_assert_eq!(events.len(), recs.len(), "records = docs + skips");
        for (i, (e, (_, doc))) in events.iter().zip(&built).enumerate() {
            match e {
                ReadEvent::Doc(d) => {
                    prop_assert!(*doc, "record {} should be skipped: {:?}", i, recs[i]);
                    prop_assert_eq!(&d.id, &format!("urn:uuid:{i:08}"));
                    let html = d.html.as_deref().unwrap();
                    prop_assert!(html.contains(&marker(i)), "{}: {:?}", i, &html[..html.len().min(200)]);
                }
                ReadEvent::Skip { reason, .. } => prop_assert!(!*doc, "record {} skipped as {}: {:?}", i, reason, recs[i]),
            }
        }
    }

    #[test]
    fn mutated_files_never_panic(recs in prop::collection::vec(rec_strategy(), 1..8), gz in any::<bool>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let bytes: Vec<Vec<u8>> = recs.iter().enumerate().map(|(i, r)| record(i, r).0).collect();
        let mut data = if gz { gzip_members(&bytes) } else { bytes.concat() };
        apply(&mut data, &muts);
        survives(data);
    }

    #[test]
    fn mutated_arc_files_never_panic(n in 1usize..8, gz in any::<bool>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let mut recs = vec![b"filedesc://f.arc 0.0.0.0 20080101000000 text/plain 4\nv 1\n\n".to_vec()];
        for i in 0..n {
            let block = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>{}</html>", marker(i));
            recs.push(format!("http://e.com/{i} 1.2.3.4 20080101000000 text/html {}\n{block}\n", block.len()).into_bytes());
        }
        let mut data = if gz { gzip_members(&recs) } else { recs.concat() };
        apply(&mut data, &muts);
        survives(data);
    }

    #[test]
    fn random_bytes_never_panic(prefix in prop::sample::select(vec![&b""[..], b"WARC/1.0\r\n", b"filedesc://x 0.0.0.0 20080101000000 text/plain 9\n", b"\x1f\x8b\x08\x00", b"\x04\x22\x4d\x18", b"\x28\xb5\x2f\xfd"]), body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut data = prefix.to_vec();
        data.extend(body);
        survives(data);
    }
}

// ------------------------------------------------------------ bounded memory

fn header(kind: &str, len: u64) -> Vec<u8> {
    format!("WARC/1.0\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:x>\r\nContent-Type: application/http; msgtype=response\r\nContent-Length: {len}\r\n\r\n").into_bytes()
}

#[test]
fn memory_is_bounded_by_max_record_bytes() {
    let max = 1 << 20;
    let opts = ReadOptions {
        max_record_bytes: max,
        ..Default::default()
    };
    // The reader's fixed buffers: compressed input, and a window with room for one
    // Common Crawl record (1 MiB payload) besides the record being read.
    let fixed = 4 << 20;
    // Records of 16 MiB (over the limit) are passed over, never buffered.
    let mut data = vec![];
    for kind in ["response", "request", "response"] {
        data.extend(header(kind, 16 << 20));
        data.extend(std::iter::repeat_n(b'x', 16 << 20));
        data.extend(b"\r\n\r\n");
    }
    // A declared length far beyond the input: passed over to the end of the input.
    data.extend(header("response", 1 << 40));
    data.extend(b"<html>short</html>");
    let len = data.len();
    let (events, peak) = peak_alloc(|| read_bytes(data, &opts));
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| match e {
            ReadEvent::Skip { reason, .. } => *reason,
            ReadEvent::Doc(_) => "doc",
        })
        .collect();
    assert_eq!(
        reasons,
        ["too_large", "request", "too_large", "truncated_record"]
    );
    eprintln!("{len} bytes of input, peak {peak} bytes allocated");
    assert!(peak < max + fixed, "peak {peak}");

    // A gzip bomb in a Content-Encoding: 250 MB of zeros in ~250 KB (decoded up to the limit).
    let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..250 {
        e.write_all(&zeros).unwrap();
    }
    let bomb = e.finish().unwrap();
    let mut block =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n\r\n".to_vec();
    block.extend(&bomb);
    let mut data = header("response", block.len() as u64);
    data.extend(block);
    let gz = gzip_members(&[data.clone()]);
    for input in [data, gz] {
        let (events, peak) = peak_alloc(|| read_bytes(input, &opts));
        assert!(
            matches!(
                events[..],
                [ReadEvent::Skip {
                    reason: "too_large",
                    ..
                }]
            ),
            "{events:?}"
        );
        eprintln!("gzip bomb: peak {peak} bytes allocated");
        assert!(peak < 2 * max + fixed, "peak {peak}");
    }
}
