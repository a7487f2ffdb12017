//! WARC/WET/ARC reader over arbitrary bytes (plain or any compression the reader sniffs): every
//! record is read or skipped with a reason; nothing panics, hangs or allocates without bound.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stages::read::{read_docs, Format, ReadEvent, ReadOptions};

fuzz_target!(|data: &[u8]| {
    let opts = ReadOptions {
        max_record_bytes: 1 << 20,
        ..ReadOptions::default()
    };
    // The first byte picks the format so one corpus drives both framings.
    let (format, body) = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => (Format::Wet, rest),
        Some((_, rest)) => (Format::Warc, rest),
        None => (Format::Warc, data),
    };
    let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(body.to_vec()));
    let mut n = 0usize;
    for ev in read_docs(format, Arc::from("fuzz"), input, 0, None, &opts) {
        if let ReadEvent::Doc(d) = ev {
            assert!(d.html.as_ref().map_or(0, |h| h.len()) <= 4 << 20);
        }
        n += 1;
        assert!(n <= body.len() + 1, "more events than bytes");
    }
});
