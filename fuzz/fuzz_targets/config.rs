//! The pipeline config parser over arbitrary text, validated as `curate check` validates it
//! (every stage built for selection): a plan, or an error that names a key or a line; never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = curate::config::check_text(text) {
        assert!(
            e.line.is_some() || !e.key.is_empty(),
            "error without location: {e}"
        );
    }
});
