//! The worker's entry point: sniff + extract + structure, on arbitrary bytes
//! with each filename hint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resume_agent_resume::parse_file;

fuzz_target!(|data: &[u8]| {
    for name in [None, Some("cv.pdf"), Some("cv.docx"), Some("cv.md"), Some("cv.txt")] {
        if let Err(e) = parse_file(data, name) {
            assert!(!e.to_string().contains('\n'));
        }
    }
});
