//! Plain text and Markdown extraction, then structuring and matching, on
//! arbitrary bytes (multi-byte characters at every position included).
#![no_main]

use libfuzzer_sys::fuzz_target;
use resume_agent_resume::{FileType, extract_text, match_resume, parse_resume};

fuzz_target!(|data: &[u8]| {
    for ty in [FileType::PlainText, FileType::Markdown] {
        if let Ok(text) = extract_text(data, ty) {
            let parsed = parse_resume(&text);
            let _ = match_resume(&parsed, &text);
        }
    }
    let parsed = parse_resume(&String::from_utf8_lossy(data));
    let _ = match_resume(&parsed, "Rust, Go or Python; “Kubernetes” required");
});
