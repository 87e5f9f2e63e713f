//! Matching: for one job description (`tests/fixtures/match/job.txt`, a Go /
//! Kubernetes / PostgreSQL backend role), a clearly matching résumé scores
//! above a partly matching one, which scores above an unrelated one, and the
//! missing skills are the ones a person would name.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::path::Path;

use resume_agent_resume::{MatchResult, ParsedResume, match_resume, parse_file};

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel),
    )
    .expect("fixture")
}

fn resume(rel: &str) -> ParsedResume {
    parse_file(&fixture(rel), Some(rel)).expect("parses")
}

fn job() -> String {
    String::from_utf8(fixture("match/job.txt")).expect("utf-8")
}

fn show(label: &str, m: &MatchResult) {
    println!(
        "{label}: score {} (skills {:.2}, keywords {:.2})",
        m.score, m.skill_coverage, m.keyword_coverage
    );
    println!("  matched: {:?}", m.matched_skills);
    println!("  missing: {:?}", m.missing_skills);
    for s in &m.suggestions {
        println!("  - {s}");
    }
}

#[test]
fn strong_beats_partial_beats_unrelated() {
    let job = job();
    // A Go/Kubernetes/PostgreSQL engineer (PDF).
    let strong = match_resume(&resume("labelled/01-jane-doe.pdf"), &job);
    // A Java/Spring payments developer with Kafka and Docker (PDF).
    let partial = match_resume(&resume("labelled/02-jose-alvarez.pdf"), &job);
    // A registered nurse (UTF-16 text).
    let unrelated = match_resume(&resume("labelled/20-kwame-mensah-utf16.txt"), &job);
    show("strong", &strong);
    show("partial", &partial);
    show("unrelated", &unrelated);

    assert!(
        strong.score > partial.score,
        "{} <= {}",
        strong.score,
        partial.score
    );
    assert!(
        partial.score > unrelated.score,
        "{} <= {}",
        partial.score,
        unrelated.score
    );
    assert!(strong.score >= 50, "strong match scored {}", strong.score);
    assert!(
        strong.score >= partial.score + 20,
        "no clear gap: {} vs {}",
        strong.score,
        partial.score
    );
    assert!(
        partial.score <= 35,
        "partial match scored {}",
        partial.score
    );
    assert!(
        unrelated.score <= 10,
        "unrelated résumé scored {}",
        unrelated.score
    );

    // What the strong candidate has, and what a reviewer would say she lacks.
    for have in [
        "Go",
        "Kubernetes",
        "PostgreSQL",
        "Docker",
        "Redis",
        "Terraform",
        "CI/CD",
        "Amazon Web Services",
    ] {
        assert!(
            strong.matched_skills.iter().any(|s| s == have),
            "{have} should match"
        );
        assert!(
            !strong.missing_skills.iter().any(|s| s == have),
            "{have} is not missing"
        );
    }
    for lack in ["Apache Kafka", "Prometheus", "Grafana"] {
        assert!(
            strong.missing_skills.iter().any(|s| s == lack),
            "{lack} should be missing"
        );
    }
    // "Go or Rust": she has Go, so Rust is not held against her.
    assert!(!strong.missing_skills.iter().any(|s| s == "Rust"));
    assert!(
        strong.suggestions.iter().any(|s| s == "Add evidence of Apache Kafka: the job asks for it and the résumé does not mention it"),
        "{:?}",
        strong.suggestions
    );

    // The Java developer lacks the platform skills the job requires.
    for lack in ["Go", "Kubernetes", "PostgreSQL", "Terraform"] {
        assert!(
            partial.missing_skills.iter().any(|s| s == lack),
            "{lack} should be missing"
        );
    }
    assert!(partial.matched_skills.iter().any(|s| s == "Apache Kafka"));
    assert!(partial.matched_skills.iter().any(|s| s == "Docker"));
    assert!(
        partial
            .suggestions
            .iter()
            .any(|s| s == "Add evidence of Go or Rust: the job requires one of them and the résumé mentions none"),
        "{:?}",
        partial.suggestions
    );

    assert!(
        unrelated.matched_skills.is_empty(),
        "{:?}",
        unrelated.matched_skills
    );
    assert!(unrelated.extra_skills.iter().any(|s| s == "Patient Care"));
}

#[test]
fn deterministic_and_serialisable() {
    let job = job();
    let r = resume("labelled/14-wei-chen.md");
    let a = match_resume(&r, &job);
    let b = match_resume(&r.clone(), &job);
    assert_eq!(a, b);
    let json = serde_json::to_string(&a).expect("serialises");
    assert_eq!(json, serde_json::to_string(&b).expect("serialises"));
    assert!(a.score <= 100);
    assert!((0.0..=1.0).contains(&a.keyword_coverage) && (0.0..=1.0).contains(&a.skill_coverage));
    let back: MatchResult = serde_json::from_str(&json).expect("deserialises");
    assert_eq!(back, a);
    // An empty job description: nothing asked, nothing missing.
    let empty = match_resume(&r, "");
    assert!(empty.missing_skills.is_empty() && empty.matched_skills.is_empty());
    assert_eq!(empty.score, 100);
}
