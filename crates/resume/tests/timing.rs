//! Parse time per page for the PDF fixtures. Ignored by default; run in
//! release mode:
//!
//! ```text
//! cargo test --release -- --ignored --nocapture timing
//! ```

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::path::Path;
use std::time::{Duration, Instant};

use resume_agent_resume::parse_file;

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture timing"]
fn timing_pdf_parse_per_page() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labelled");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pdf" || e == "docx"))
        .collect();
    paths.sort();
    const ROUNDS: u32 = 50;
    let mut total = Duration::ZERO;
    let mut total_pages = 0usize;
    println!(
        "{:<42} {:>5} {:>12} {:>12}",
        "file", "pages", "ms/parse", "ms/page"
    );
    for path in paths {
        let bytes = std::fs::read(&path).expect("read");
        let pages = if path.extension().is_some_and(|e| e == "pdf") {
            pdf_extract::Document::load_mem(&bytes)
                .map(|d| d.get_pages().len())
                .unwrap_or(1)
                .max(1)
        } else {
            1
        };
        // Warm up (the skill vocabulary is built on first use).
        parse_file(&bytes, None).expect("parses");
        let start = Instant::now();
        for _ in 0..ROUNDS {
            std::hint::black_box(parse_file(std::hint::black_box(&bytes), None).expect("parses"));
        }
        let per = start.elapsed() / ROUNDS;
        if path.extension().is_some_and(|e| e == "pdf") {
            total += per;
            total_pages += pages;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "{name:<42} {pages:>5} {:>12.3} {:>12.3}",
            per.as_secs_f64() * 1e3,
            per.as_secs_f64() * 1e3 / pages as f64
        );
    }
    println!(
        "PDF average: {:.3} ms per page over {total_pages} pages",
        total.as_secs_f64() * 1e3 / total_pages.max(1) as f64
    );
}
