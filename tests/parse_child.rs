//! The parse child through the real binary (`resume-agent parse-child`):
//! the same answers as parsing in process, its own limits enforced even for
//! files that pass every extractor bound, and its cost per parse.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use resume_agent_resume::hostile;
use resume_agent_worker::parse_child::{ParseChildError, ParseLimits, ParseRunner};
use tokio_util::sync::CancellationToken;

fn runner(limits: ParseLimits) -> ParseRunner {
    ParseRunner::new(
        env!("CARGO_BIN_EXE_resume-agent"),
        vec!["parse-child".into()],
        limits,
    )
}

fn labelled() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/resume/tests/fixtures/labelled");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    files.sort();
    files
}

async fn parse(
    r: &ParseRunner,
    bytes: &[u8],
    name: &str,
) -> Result<resume_agent_resume::ParsedResume, ParseChildError> {
    r.parse(
        bytes,
        name,
        Duration::from_secs(120),
        &CancellationToken::new(),
    )
    .await
}

#[tokio::test]
async fn the_child_answers_as_the_library_does() {
    let r = runner(ParseLimits::default());
    for path in labelled() {
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let direct = resume_agent_resume::parse_file(&bytes, Some(&name)).unwrap();
        let child = parse(&r, &bytes, &name).await.unwrap();
        assert_eq!(child, direct, "{name}");
    }
    for bad in ["empty.pdf", "encrypted-user-password.pdf", "truncated.docx"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/resume/tests/fixtures/bad")
            .join(bad);
        let bytes = std::fs::read(path).unwrap();
        let direct = resume_agent_resume::parse_file(&bytes, Some(bad)).unwrap_err();
        let Err(ParseChildError::Rejected { code, message }) = parse(&r, &bytes, bad).await else {
            panic!("{bad} was not rejected");
        };
        assert_eq!(
            (code.as_str(), message),
            (direct.code(), direct.to_string())
        );
    }
}

/// 195,000 path operations: within every extractor bound, but pdf-extract
/// holds them in some 130 MB.
fn memory_hungry_pdf() -> Vec<u8> {
    let mut content = b"BT /F1 12 Tf 72 720 Td (Jane Doe) Tj ET\n".to_vec();
    content.extend_from_slice(&b"0 0 m 1 1 l S\n".repeat(65_000));
    hostile::pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        hostile::stream("/Filter /FlateDecode", &hostile::zlib(&content)),
    ])
}

#[tokio::test]
async fn the_childs_own_limits_hold_where_the_extractor_bounds_do_not_reach() {
    let pdf = memory_hungry_pdf();
    // Under the default limit it parses.
    let ok = parse(&runner(ParseLimits::default()), &pdf, "ops.pdf").await;
    assert!(ok.is_ok(), "{ok:?}");
    // Under 64 MiB of address space it runs out: one line, permanent.
    let small = ParseLimits {
        max_memory_mb: 64,
        max_cpu_secs: 60,
    };
    let e = parse(&runner(small), &pdf, "ops.pdf").await.unwrap_err();
    assert_eq!(e, ParseChildError::OutOfMemory(64), "{e}");
    assert_eq!(
        e.to_string(),
        "the résumé parser ran out of memory (limit 64 MiB)"
    );
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn the_cpu_limit_stops_a_long_parse() {
    // Some 4 s of CPU in a debug build, 1 s allowed. (In a release build
    // the parse may finish first; then the limit is not reached.)
    let mut text = String::from("Jane Doe\njane@example.com\nExperience\n");
    while text.len() < 1_000_000 {
        text.push_str("Senior Engineer at Acme Inc. Jan 2019 – present, Rust Go Kubernetes\n");
    }
    let limits = ParseLimits {
        max_memory_mb: 512,
        max_cpu_secs: 1,
    };
    let started = Instant::now();
    let r = parse(&runner(limits), text.as_bytes(), "long.txt").await;
    if cfg!(debug_assertions) {
        assert_eq!(r.unwrap_err(), ParseChildError::CpuTime(1));
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

/// Page objects (`/Type /Page`, not `/Pages`) in an uncompressed object table.
fn pdf_pages(bytes: &[u8]) -> usize {
    let mut n = 0;
    for pat in [&b"/Type /Page"[..], b"/Type/Page"] {
        for (i, w) in bytes.windows(pat.len()).enumerate() {
            if w == pat && bytes.get(i + pat.len()) != Some(&b's') {
                n += 1;
            }
        }
    }
    n.max(1)
}

/// Per-parse cost of the child: in process vs through `parse-child`, for
/// every PDF and DOCX fixture. Run with
/// `cargo test --release --test parse_child -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
async fn child_overhead_per_parse() {
    const ROUNDS: u32 = 20;
    let r = runner(ParseLimits::default());
    let (mut direct_total, mut child_total, mut pages_total) = (Duration::ZERO, Duration::ZERO, 0);
    println!(
        "{:<42} {:>5} {:>10} {:>10}",
        "file", "pages", "in-proc ms", "child ms"
    );
    for path in labelled() {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "pdf" && ext != "docx" {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let pages = if ext == "pdf" { pdf_pages(&bytes) } else { 1 };
        let t = Instant::now();
        for _ in 0..ROUNDS {
            resume_agent_resume::parse_file(&bytes, Some(&name)).unwrap();
        }
        let direct = t.elapsed() / ROUNDS;
        let t = Instant::now();
        for _ in 0..ROUNDS {
            parse(&r, &bytes, &name).await.unwrap();
        }
        let child = t.elapsed() / ROUNDS;
        println!(
            "{name:<42} {pages:>5} {:>10.2} {:>10.2}",
            direct.as_secs_f64() * 1e3,
            child.as_secs_f64() * 1e3
        );
        direct_total += direct;
        child_total += child;
        pages_total += pages;
    }
    let per_page =
        |d: Duration| d.as_secs_f64() * 1e3 / f64::from(u32::try_from(pages_total).unwrap_or(1));
    println!(
        "per page: in process {:.2} ms, in the child {:.2} ms (+{:.2} ms)",
        per_page(direct_total),
        per_page(child_total),
        per_page(child_total) - per_page(direct_total)
    );
}
