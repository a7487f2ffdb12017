//! The pipeline config parser over arbitrary text: a plan, or a located error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = curate::config::check_text(text);
});
