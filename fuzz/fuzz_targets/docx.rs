//! `extract_text` as Docx on arbitrary bytes: never a panic, a hang or an
//! unbounded allocation; errors are one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resume_agent_resume::{FileType, extract_text};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = extract_text(data, FileType::Docx) {
        assert!(!e.to_string().contains('\n'));
    }
});
