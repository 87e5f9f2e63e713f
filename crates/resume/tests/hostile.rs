//! Every hostile file of issue 11 against the extractors in this process:
//! each is refused (or, for the text ones, parsed) quickly with a one-line
//! reason, without a crash, a panic or a large allocation. The worker runs
//! the same code in a resource-limited child too (`tests/hostile_files.rs`
//! at the top level); these limits are the first line.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use resume_agent_resume::hostile;
use resume_agent_resume::parse_file;

/// Peak resident memory of this process so far (KiB), from /proc.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn hostile_files_fail_fast_with_one_line_reasons() {
    let files = hostile::all();
    assert_eq!(files.len(), 9);
    let before = peak_rss_kib();
    for f in files {
        let started = Instant::now();
        let result = parse_file(&f.bytes, Some(f.name));
        let took = started.elapsed();
        println!(
            "{:<28} {:>9} B  {:>6} ms  {}",
            f.name,
            f.bytes.len(),
            took.as_millis(),
            match &result {
                Ok(p) => format!("ok: {} words, {} bytes of text", p.word_count, p.text.len()),
                Err(e) => format!("{}: {e}", e.code()),
            }
        );
        assert!(
            took < Duration::from_secs(60),
            "{} took {took:?} ({})",
            f.name,
            f.attack
        );
        match f.name {
            "curly-quotes.txt" => {
                let p = result.unwrap();
                assert!(p.skills.iter().any(|s| s == "Rust"), "{:?}", p.skills);
            }
            _ => {
                let Err(e) = result else {
                    panic!("{} was accepted ({})", f.name, f.attack);
                };
                assert!(!e.to_string().contains('\n'));
            }
        }
    }
    let grown = peak_rss_kib().saturating_sub(before);
    println!("peak RSS grew by {} MiB", grown / 1024);
    assert!(grown < 400 * 1024, "peak RSS grew by {} MiB", grown / 1024);
}
