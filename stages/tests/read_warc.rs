//! The WARC/WET reader on the real files of ../shared/data/warc: every file read without a
//! panic with docs and skips counted by reason; record lists and decoded payloads equal to
//! Python warcio's (run live); byte-range reads equal to whole-file reads.

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use stages::read::warc::WarcReader;
use stages::read::{align, read_docs, Format, ReadEvent, ReadOptions};
use stages::Document;

fn warc_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/warc");
    if d.is_dir() {
        Some(d)
    } else {
        testkit::skip(format!("{} not found", d.display()));
        None
    }
}

/// Every WARC/WET/WAT file of the shared folder and its edge cases.
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("edge-cases")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x != "md"))
        .collect();
    v.sort();
    v
}

fn format_of(p: &Path) -> Format {
    Format::from_path(&p.to_string_lossy()).unwrap_or(Format::Warc)
}

fn read_file(p: &Path, format: Format) -> Vec<ReadEvent> {
    let f = std::fs::File::open(p).unwrap();
    read_docs(
        format,
        Arc::from(p.to_string_lossy().as_ref()),
        Box::new(BufReader::new(f)),
        0,
        None,
        &ReadOptions::default(),
    )
    .collect()
}

struct Summary {
    docs: Vec<Document>,
    skips: BTreeMap<&'static str, usize>,
}

fn summarize(events: Vec<ReadEvent>) -> Summary {
    let mut s = Summary {
        docs: vec![],
        skips: BTreeMap::new(),
    };
    for e in events {
        match e {
            ReadEvent::Doc(d) => s.docs.push(d),
            ReadEvent::Skip { reason, .. } => *s.skips.entry(reason).or_default() += 1,
        }
    }
    s
}

fn skips(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

fn meta<'a>(d: &'a Document, k: &str) -> &'a str {
    d.metadata.get(k).map_or("", String::as_str)
}

#[test]
fn every_file_reads_with_named_skips() {
    let Some(dir) = warc_dir() else { return };
    let reasons = stages::read::skip_reasons(Format::Warc);
    for p in all_files(&dir) {
        let s = summarize(read_file(&p, format_of(&p)));
        for r in s.skips.keys() {
            assert!(reasons.contains(r), "{}: unlisted reason {r}", p.display());
        }
        for d in &s.docs {
            assert!(!d.id.is_empty() && !d.id.starts_with('<'), "{}", d.id);
            assert!(d.html.as_deref().is_some_and(|h| !h.is_empty()) || !d.text().is_empty());
            assert!(!d.metadata.get("warc_type").unwrap().is_empty());
        }
        eprintln!(
            "{}: {} docs, skips {:?}",
            p.display(),
            s.docs.len(),
            s.skips
        );
    }
}

#[test]
fn common_crawl_sample_gz_and_lz4() {
    let Some(dir) = warc_dir() else { return };
    let gz = summarize(read_file(
        &dir.join("cc-main-2020-34-sample.warc.gz"),
        Format::Warc,
    ));
    // The README and warcio agree: 1 warcinfo, 17 requests, 16 responses, 16 metadata.
    assert_eq!(gz.docs.len(), 16);
    assert_eq!(
        gz.skips,
        skips(&[("warcinfo", 1), ("request", 17), ("metadata", 16)])
    );
    for d in &gz.docs {
        assert!(d.id.starts_with("urn:uuid:"));
        assert!(d.url.starts_with("http"));
        assert!(
            d.crawl_date
                .is_some_and(|t| (1596844800..1596931200).contains(&t)),
            "2020-08-08"
        );
        assert_eq!(meta(d, "http_status"), "200");
        assert!(["text/html", "application/xhtml+xml"].contains(&meta(d, "payload_type")));
        assert!(!meta(d, "ip").is_empty());
        let html = d.html.as_deref().unwrap();
        assert!(html.to_ascii_lowercase().contains("<html"), "{}", d.url);
        let bad = html.chars().filter(|&c| c == '\u{fffd}').count();
        assert!(
            bad * 1000 < html.len(),
            "{}: {bad} replacement chars",
            d.url
        );
    }
    // The sample's legacy-encoded pages (README: utf-8/gb2312/cp1251) are decoded as such.
    let charsets: Vec<&str> = gz.docs.iter().map(|d| meta(d, "charset")).collect();
    assert!(
        charsets.contains(&"GBK") && charsets.contains(&"windows-1251"),
        "{charsets:?}"
    );
    let lz = summarize(read_file(
        &dir.join("edge-cases/cc-main-2020-34-sample.warc.lz4"),
        Format::Warc,
    ));
    assert_eq!(lz.skips, gz.skips);
    let key = |d: &Document| {
        (
            d.id.clone(),
            d.url.clone(),
            d.html.clone(),
            d.metadata.clone(),
        )
    };
    assert_eq!(
        lz.docs.iter().map(key).collect::<Vec<_>>(),
        gz.docs.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn clueweb_quirks_dates_euc_jp_and_stale_gzip_headers() {
    let Some(dir) = warc_dir() else { return };
    let s = summarize(read_file(
        &dir.join("edge-cases/clueweb09-quirk.warc.gz"),
        Format::Warc,
    ));
    assert_eq!(s.docs.len(), 29);
    assert_eq!(s.skips, skips(&[("warcinfo", 1)]));
    for d in &s.docs {
        // WARC-Date: 2008-10-294T05:21:46-0700 is not a date.
        assert_eq!(d.crawl_date, None);
        assert_eq!(
            (meta(d, "charset"), meta(d, "charset_source")),
            ("EUC-JP", "http")
        );
        // `Content-Encoding: gzip` on bodies ClueWeb stored decoded: kept raw, not an error.
        assert_eq!(meta(d, "content_encoding"), "");
        let html = d.html.as_deref().unwrap();
        let kana = html
            .chars()
            .filter(|c| ('\u{3040}'..='\u{30ff}').contains(c))
            .count();
        assert!(kana > 50, "{}: {kana} kana", d.url);
        assert!(!html.contains('\u{fffd}'), "{}", d.url);
    }
}

#[test]
fn edge_cases() {
    let Some(dir) = warc_dir() else { return };
    let e = |n: &str| summarize(read_file(&dir.join("edge-cases").join(n), Format::Warc));

    let s = e("clipped-truncated.warc.gz");
    assert_eq!(
        (s.docs.len(), s.skips),
        (0, skips(&[("truncated_gzip", 1)]))
    );

    let s = e("warcio-example-iana.org-chunked.warc");
    assert_eq!(s.docs.len(), 1);
    let html = s.docs[0].html.as_deref().unwrap();
    assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));

    // Gzip-encoded body inflated.
    let s = e("warcio-example.warc.gz");
    assert_eq!(
        s.skips,
        skips(&[("warcinfo", 2), ("request", 2), ("revisit", 1)])
    );
    assert_eq!(meta(&s.docs[0], "content_encoding"), "gzip");
    assert!(s.docs[0]
        .html
        .as_deref()
        .unwrap()
        .contains("<title>Example Domain</title>"));

    // Record declared 2 bytes short: resync to the next record, nothing lost.
    let s = e("warcio-example-trunc.warc");
    assert_eq!(s.docs.len(), 1);
    assert_eq!(s.skips, skips(&[("warcinfo", 2), ("request", 1)]));

    // One gzip member for the whole file, and records that straddle members: both read.
    let s = e("warcio-example-bad-non-chunked.warc.gz");
    assert_eq!(s.docs.len(), 1);
    assert_eq!(
        s.skips,
        skips(&[("warcinfo", 2), ("request", 2), ("revisit", 1)])
    );
    let s = e("warcio-example-wrong-chunks.warc.gz");
    assert_eq!((s.docs.len(), s.skips), (1, skips(&[("request", 1)])));

    // `<...>` target URIs (wget) lose their brackets.
    let s = e("warcio-example-wget-bad-target-uri.warc.gz");
    assert_eq!(s.docs[0].url, "http://example.com/");
    let s = summarize(read_file(
        &dir.join("dolma-sample-0000.warc.gz"),
        Format::Warc,
    ));
    assert_eq!(s.docs.len(), 22);
    assert!(s.docs.iter().all(|d| d.url.starts_with("https://")));
    // wget's own log and arguments are text/plain resources.
    assert_eq!(s.skips.get("not_html"), Some(&2));

    // A PNG resource is not a page.
    let s = e("warcio-example-space-in-target-uri.warc.gz");
    assert_eq!(s.skips, skips(&[("warcinfo", 1), ("not_html", 1)]));
    // httpbin JSON responses are not pages either.
    let s = e("warcio-post-test.warc.gz");
    assert_eq!(s.skips, skips(&[("request", 3), ("not_html", 3)]));

    let s = e("resiliparse-block-sized-records.warc.gz");
    assert_eq!(s.skips, skips(&[("unknown_record_type", 3)]));
}

#[test]
fn wet_conversion_records_and_their_warc_response() {
    let Some(dir) = warc_dir() else { return };
    let wet = summarize(read_file(&dir.join("whirlwind.warc.wet.gz"), Format::Wet));
    assert_eq!(wet.skips, skips(&[("warcinfo", 1)]));
    assert_eq!(wet.docs.len(), 1);
    let d = &wet.docs[0];
    assert!(d.html.is_none() && d.text().starts_with("Escopete"));
    assert_eq!(meta(d, "languages"), "spa");
    let warc = summarize(read_file(&dir.join("whirlwind.warc.gz"), Format::Warc));
    assert_eq!(warc.docs.len(), 1);
    assert_eq!(meta(d, "refers_to"), warc.docs[0].id);
    assert_eq!(d.url, warc.docs[0].url);
    let wat = summarize(read_file(&dir.join("whirlwind.warc.wat.gz"), Format::Warc));
    assert_eq!(
        (wat.docs.len(), wat.skips),
        (0, skips(&[("warcinfo", 1), ("metadata", 1)]))
    );
}

// ---------------------------------------------------------------------------- warcio

fn python_with_warcio() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let candidates = [
        std::env::var_os("CURATE_PY").map(PathBuf::from),
        home.as_ref()
            .map(|h| h.join(".cache/curate/venv/bin/python")),
        std::env::var_os("CURATE_PEERS")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".cache/curate-peers")))
            .map(|p| p.join("dt/bin/python")),
    ];
    candidates.into_iter().flatten().find(|py| {
        Command::new(py)
            .args(["-c", "import warcio"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn records_and_payloads_equal_warcio() {
    let Some(dir) = warc_dir() else { return };
    let Some(py) = python_with_warcio() else {
        testkit::skip!("no Python with warcio (set CURATE_PY)")
    };
    let files = all_files(&dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/warcio_records.py");
    let out = Command::new(&py)
        .arg(&script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut compared_payloads = 0;
    let mut full_files = 0;
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let path = PathBuf::from(v["file"].as_str().unwrap());
        let theirs: Vec<&serde_json::Value> = v["records"].as_array().unwrap().iter().collect();
        let complete = v["error"].is_null();
        // Our record list: type, offset, id.
        let f = std::fs::File::open(&path).unwrap();
        let mut r = WarcReader::new(
            format_of(&path),
            Arc::from("t"),
            Box::new(BufReader::new(f)),
            0,
            None,
            ReadOptions::default(),
        )
        .unwrap();
        // Records we could not frame (truncated, corrupt) have an offset but no type or id.
        let mut ours = vec![];
        while let Some(rec) = r.next_record() {
            match rec {
                Ok(rec) => {
                    let g = |x: &std::ops::Range<usize>| {
                        String::from_utf8_lossy(&rec.header[x.clone()]).into_owned()
                    };
                    ours.push((
                        g(&rec.fields.warc_type).to_ascii_lowercase(),
                        rec.offset,
                        stages::read::warc::clean_uri(g(&rec.fields.record_id).as_bytes()),
                    ));
                }
                Err(ReadEvent::Skip { offset, .. }) => {
                    ours.push((String::new(), offset, String::new()))
                }
                Err(ReadEvent::Doc(_)) => unreachable!(),
            }
        }
        let same = |a: &[(String, u64, String)], b: &[(String, u64, String)]| {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|(x, y)| x.1 == y.1 && (x.0.is_empty() || x == y))
        };
        let theirs_t: Vec<(String, u64, String)> = theirs
            .iter()
            .map(|r| {
                (
                    r[0].as_str().unwrap().to_string(),
                    r[1].as_u64().unwrap(),
                    r[2].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let events = read_file(&path, format_of(&path));
        if complete {
            full_files += 1;
            assert!(
                same(&ours, &theirs_t),
                "{}: {ours:?} vs {theirs_t:?}",
                path.display()
            );
            assert_eq!(
                events.len(),
                theirs.len(),
                "{}: records = docs + skips",
                path.display()
            );
        } else {
            // warcio gave up part-way (LZ4, single-member gzip, records across members): we read
            // at least what it read, identically.
            eprintln!("{}: warcio stopped: {}", path.display(), v["error"]);
            assert!(ours.len() >= theirs_t.len(), "{}", path.display());
            assert!(
                same(&ours[..theirs_t.len()], &theirs_t),
                "{}",
                path.display()
            );
        }
        // Decoded payloads (chunked, gzip) equal warcio's, for UTF-8 pages read verbatim (when
        // warcio read the file to its end: where it fails, it fails mid-payload).
        let payloads: BTreeMap<&str, (u64, u64)> = theirs
            .iter()
            .filter(|r| complete && !r[3].is_null())
            .map(|r| {
                (
                    r[2].as_str().unwrap(),
                    (r[3].as_u64().unwrap(), r[4].as_u64().unwrap()),
                )
            })
            .collect();
        for e in &events {
            let ReadEvent::Doc(d) = e else { continue };
            let Some(&(len, crc)) = payloads.get(d.id.as_str()) else {
                continue;
            };
            let html = d.html.as_deref().unwrap_or(d.text());
            // warcio parses HTTP headers only for http(s) target URIs (the trafilatura file's
            // synthetic `hard::x.html` URIs get the raw block); we go by the WARC Content-Type.
            if d.url.starts_with("http")
                && meta(d, "charset") == "UTF-8"
                && meta(d, "charset_source") != "bom"
                && !html.contains('\u{fffd}')
            {
                let mut c = flate2::Crc::new();
                c.update(html.as_bytes());
                assert_eq!(
                    (html.len() as u64, c.sum() as u64),
                    (len, crc),
                    "{} {}",
                    path.display(),
                    d.url
                );
                compared_payloads += 1;
            }
        }
    }
    eprintln!("{full_files} files equal to warcio, {compared_payloads} payloads compared");
    assert!(full_files >= 15 && compared_payloads > 1000);
}

// ---------------------------------------------------------------------------- byte ranges

type Key = (String, u64, String);

fn key(e: &ReadEvent) -> Key {
    match e {
        ReadEvent::Doc(d) => (
            d.id.clone(),
            d.source.offset,
            format!("{}", d.html.as_ref().map_or(d.text().len(), String::len)),
        ),
        ReadEvent::Skip {
            reason,
            offset,
            bytes,
        } => (reason.to_string(), *offset, bytes.to_string()),
    }
}

/// Reads `[align(from), align(to))` the way the runner does.
fn read_range(p: &Path, format: Format, from: u64, to: Option<u64>) -> Vec<Key> {
    let mut f = BufReader::new(std::fs::File::open(p).unwrap());
    let Some(start) = align(format, &mut f, from).unwrap() else {
        return vec![];
    };
    let end = match to {
        Some(t) => align(format, &mut f, t).unwrap(),
        None => None,
    };
    if end.is_some_and(|e| e <= start) {
        return vec![];
    }
    let mut f = f.into_inner();
    f.seek(SeekFrom::Start(start)).unwrap();
    let name: Arc<str> = Arc::from(p.to_string_lossy().as_ref());
    read_docs(
        format,
        name,
        Box::new(BufReader::new(f)),
        start,
        end,
        &ReadOptions::default(),
    )
    .map(|e| key(&e))
    .collect()
}

fn check_ranges(p: &Path, format: Format, cuts: usize) {
    let size = std::fs::metadata(p).unwrap().len();
    let whole = read_range(p, format, 0, None);
    assert!(!whole.is_empty());
    // Evenly spaced cuts, plus cuts one byte around record starts.
    let mut points: Vec<u64> = (1..cuts as u64).map(|k| size * k / cuts as u64).collect();
    for k in whole.iter().step_by(5).map(|k| k.1) {
        points.extend([k.saturating_sub(1), k, k + 1]);
    }
    points.retain(|&c| c > 0 && c < size);
    points.sort();
    points.dedup();
    let mut bounds = vec![0];
    bounds.extend(points);
    let mut joined = vec![];
    let mut nonempty = 0;
    for (i, &from) in bounds.iter().enumerate() {
        let part = read_range(p, format, from, bounds.get(i + 1).copied());
        nonempty += usize::from(!part.is_empty());
        joined.extend(part);
    }
    assert_eq!(joined, whole, "{}", p.display());
    eprintln!(
        "{}: {} ranges ({} non-empty) = {} records",
        p.display(),
        bounds.len(),
        nonempty,
        whole.len()
    );
}

#[test]
fn byte_ranges_read_exactly_the_whole_file() {
    let Some(dir) = warc_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Plain and zstd copies of the CC sample (one zstd frame per record, as CC's own zstd WARCs).
    let gz = dir.join("cc-main-2020-34-sample.warc.gz");
    let mut plain = vec![];
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    let plain_path = tmp.path().join("cc.warc");
    std::fs::write(&plain_path, &plain).unwrap();
    let zst_path = tmp.path().join("cc.warc.zst");
    let mut zst = std::fs::File::create(&zst_path).unwrap();
    let mut r = WarcReader::new(
        Format::Warc,
        Arc::from("t"),
        Box::new(std::io::Cursor::new(plain.clone())),
        0,
        None,
        ReadOptions::default(),
    )
    .unwrap();
    let mut n = 0;
    while let Some(Ok(rec)) = r.next_record() {
        let mut bytes = rec.header.to_vec();
        bytes.extend_from_slice(rec.block.unwrap());
        bytes.extend_from_slice(b"\r\n\r\n");
        zst.write_all(&zstd::encode_all(&bytes[..], 3).unwrap())
            .unwrap();
        n += 1;
    }
    assert_eq!(n, 50);
    drop(zst);
    for (p, cuts) in [
        (gz.clone(), 9),
        (plain_path, 9),
        (zst_path, 5),
        (dir.join("edge-cases/cc-main-2020-34-sample.warc.lz4"), 5),
        (dir.join("edge-cases/clueweb09-quirk.warc.gz"), 7),
        (dir.join("edge-cases/warcio-example-trunc.warc"), 4),
        (
            dir.join("edge-cases/warcio-example-iana.org-chunked.warc"),
            3,
        ),
        (
            dir.join("edge-cases/warcio-example-wrong-chunks.warc.gz"),
            3,
        ),
        (
            dir.join("edge-cases/warcio-example-bad-non-chunked.warc.gz"),
            3,
        ),
        (dir.join("edge-cases/clipped-truncated.warc.gz"), 3),
        (dir.join("dolma-sample-0001.warc.gz"), 5),
        (dir.join("trafilatura-eval-pages.warc.gz"), 6),
    ] {
        check_ranges(&p, Format::Warc, cuts);
    }
    check_ranges(&dir.join("whirlwind.warc.wet.gz"), Format::Wet, 3);
}

#[test]
fn corrupt_member_costs_one_record() {
    let Some(dir) = warc_dir() else { return };
    let mut data = std::fs::read(dir.join("cc-main-2020-34-sample.warc.gz")).unwrap();
    let whole = read_bytes_events(data.clone());
    // Damage the deflate data of the member of the 3rd document.
    let victim = whole
        .iter()
        .filter_map(|e| match e {
            ReadEvent::Doc(d) => Some(d.source.offset),
            _ => None,
        })
        .nth(2)
        .unwrap() as usize;
    for b in &mut data[victim + 200..victim + 260] {
        *b ^= 0x5a;
    }
    let damaged = read_bytes_events(data);
    let keys = |v: &[ReadEvent]| v.iter().map(key).collect::<Vec<_>>();
    let (w, d) = (keys(&whole), keys(&damaged));
    assert_eq!(w.len(), d.len(), "one event per record still");
    let diff: Vec<_> = w.iter().zip(&d).filter(|(a, b)| a != b).collect();
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(
        (diff[0].1 .0.as_str(), diff[0].1 .1),
        ("corrupt_gzip", victim as u64)
    );
}

fn read_bytes_events(data: Vec<u8>) -> Vec<ReadEvent> {
    read_docs(
        Format::Warc,
        Arc::from("mem"),
        Box::new(std::io::Cursor::new(data)),
        0,
        None,
        &ReadOptions::default(),
    )
    .collect()
}

// ---------------------------------------------------------------------------- ARC

/// An ARC v1 file of our own pages: filedesc, an HTML page, a DNS record, a 404, a PNG, and a
/// URL with a space (ARC fields are taken from the right).
fn arc_records() -> Vec<Vec<u8>> {
    let rec = |head: &str, block: &[u8]| {
        let mut r = format!("{head} {}\n", block.len()).into_bytes();
        r.extend_from_slice(block);
        r.push(b'\n');
        r
    };
    let page = |status: &str, ctype: &str, body: &[u8]| {
        let mut b = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n\r\n").into_bytes();
        b.extend_from_slice(body);
        b
    };
    vec![
        rec(
            "filedesc://curate-test.arc 0.0.0.0 20080430204825 text/plain",
            b"1 0 curate\nURL IP-address Archive-date Content-type Archive-length\n",
        ),
        rec(
            "http://example.com/a 10.0.0.1 20080430204826 text/html",
            &page(
                "200 OK",
                "text/html; charset=utf-8",
                "<html><title>Café page A</title></html>".as_bytes(),
            ),
        ),
        rec(
            "dns:example.com 10.0.0.1 20080430204827 text/dns",
            b"20080430204827\nexample.com. 300 IN A 10.0.0.1\n",
        ),
        rec(
            "http://example.com/missing 10.0.0.1 20080430204828 text/html",
            &page("404 Not Found", "text/html", b"<html>gone</html>"),
        ),
        rec(
            "http://example.com/i.png 10.0.0.1 20080430204829 image/png",
            &page("200 OK", "image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
        ),
        rec(
            "http://example.com/b c.html 10.0.0.1 20080430204830 text/html",
            &page(
                "200 OK",
                "text/html",
                "<html><p>page B – ok</p></html>".as_bytes(),
            ),
        ),
    ]
}

#[test]
fn arc_files_plain_and_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let recs = arc_records();
    let plain = tmp.path().join("t.arc");
    std::fs::write(&plain, recs.concat()).unwrap();
    let gz = tmp.path().join("t.arc.gz");
    let mut out = vec![];
    for r in &recs {
        let mut e = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
        e.write_all(r).unwrap();
        out.extend(e.finish().unwrap());
    }
    std::fs::write(&gz, out).unwrap();
    assert_eq!(Format::from_path("x.arc.gz"), Some(Format::Warc));
    for p in [&plain, &gz] {
        let s = summarize(read_file(p, Format::Warc));
        assert_eq!(
            s.skips,
            skips(&[
                ("arc_filedesc", 1),
                ("not_html", 2),
                ("http_client_error", 1)
            ]),
            "{}",
            p.display()
        );
        assert_eq!(s.docs.len(), 2);
        let a = &s.docs[0];
        assert_eq!(a.url, "http://example.com/a");
        assert_eq!(
            a.html.as_deref(),
            Some("<html><title>Café page A</title></html>")
        );
        assert_eq!(
            a.crawl_date,
            stages::time::parse_datetime("2008-04-30T20:48:26Z")
        );
        assert!(a.id.starts_with("xxh3:"), "ARC has no record ids: {}", a.id);
        assert_eq!((meta(a, "ip"), meta(a, "http_status")), ("10.0.0.1", "200"));
        assert_eq!(s.docs[1].url, "http://example.com/b%20c.html");
        check_ranges(p, Format::Warc, 4);
    }
    // warcio reads ARC too: same records, offsets and payloads.
    let Some(py) = python_with_warcio() else {
        testkit::skip!("no Python with warcio")
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/warcio_records.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&plain)
        .arg(&gz)
        .output()
        .unwrap();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["error"].is_null(), "{v}");
        let theirs = v["records"].as_array().unwrap();
        let path = PathBuf::from(v["file"].as_str().unwrap());
        let f = std::fs::File::open(&path).unwrap();
        let mut r = WarcReader::new(
            Format::Warc,
            Arc::from("t"),
            Box::new(BufReader::new(f)),
            0,
            None,
            ReadOptions::default(),
        )
        .unwrap();
        let mut ours = vec![];
        while let Some(Ok(rec)) = r.next_record() {
            let url =
                String::from_utf8_lossy(&rec.header[rec.fields.target_uri.clone()]).into_owned();
            let kind = if url.starts_with("filedesc://") {
                "arc_header"
            } else {
                "response"
            };
            ours.push((kind.to_string(), rec.offset));
        }
        let theirs: Vec<(String, u64)> = theirs
            .iter()
            .map(|r| (r[0].as_str().unwrap().to_string(), r[1].as_u64().unwrap()))
            .collect();
        assert_eq!(ours, theirs, "{}", path.display());
        // The HTML page's payload is warcio's.
        let a = &summarize(read_file(&path, Format::Warc)).docs[0];
        let w = &v["records"][1];
        let mut c = flate2::Crc::new();
        c.update(a.html.as_deref().unwrap().as_bytes());
        assert_eq!(
            (a.html.as_ref().unwrap().len() as u64, c.sum() as u64),
            (w[3].as_u64().unwrap(), w[4].as_u64().unwrap())
        );
    }
}
