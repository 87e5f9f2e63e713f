//! Nothing panics: truncated and bit-flipped versions of every fixture, and
//! random bytes behind each magic number, go through `parse_file`, which
//! must return `Ok` or `Err` every time.
//!
//! The PDF libraries do panic on some of these inputs; the crate catches
//! those panics. The test's panic hook stays quiet about panics raised
//! inside dependencies (they are expected and contained) and reports how
//! many there were.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use resume_agent_resume::{match_resume, parse_file, parse_resume};

static CONTAINED: AtomicUsize = AtomicUsize::new(0);

fn quiet_dependency_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_dependency = info
            .location()
            .is_some_and(|l| l.file().contains(".cargo/registry"));
        if in_dependency {
            CONTAINED.fetch_add(1, Ordering::Relaxed);
        } else {
            default(info);
        }
    }));
}

fn all_fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["labelled", "bad", "match"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("fixtures") {
            let path = entry.expect("entry").path();
            if !path.to_string_lossy().ends_with(".json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// xorshift64*: deterministic variants on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    quiet_dependency_panics();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut runs = 0usize;
    let mut ok = 0usize;
    for path in all_fixtures() {
        let bytes = std::fs::read(&path).expect("fixture");
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for k in 1..=8 {
            variants.push(bytes[..bytes.len() * k / 9].to_vec());
        }
        for _ in 0..24 {
            let mut v = bytes.clone();
            if v.is_empty() {
                break;
            }
            for _ in 0..=rng.below(8) {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            variants.push(v);
        }
        for _ in 0..4 {
            // Overwrite a random range with random bytes.
            let mut v = bytes.clone();
            if v.len() < 16 {
                break;
            }
            let start = rng.below(v.len() - 8);
            let len = rng.below((v.len() - start).min(512)) + 1;
            for b in &mut v[start..start + len] {
                *b = rng.next() as u8;
            }
            variants.push(v);
        }
        for v in variants {
            runs += 1;
            if let Ok(r) = parse_file(&v, Some(&name)) {
                ok += 1;
                let _ = match_resume(&r, "Go, Kubernetes and PostgreSQL; nice to have: Kafka");
            }
        }
    }
    // Random bytes behind each magic number.
    for magic in [
        &b"%PDF-1.7\n"[..],
        b"PK\x03\x04",
        b"\xFF\xFE",
        b"\xEF\xBB\xBF",
        b"# ",
        b"",
    ] {
        for len in [0usize, 1, 7, 64, 1000, 10_000] {
            let mut v = magic.to_vec();
            v.extend((0..len).map(|_| rng.next() as u8));
            runs += 1;
            if parse_file(&v, None).is_ok() {
                ok += 1;
            }
        }
    }
    println!(
        "{runs} mutated inputs parsed without a panic escaping ({ok} parsed, {} refused); {} panics inside dependencies were contained",
        runs - ok,
        CONTAINED.load(Ordering::Relaxed)
    );
    assert!(runs > 1000);
}

#[test]
fn odd_text_never_panics() {
    let long_line = "a".repeat(200_000);
    let many_lines = "Go\n".repeat(50_000);
    let emails = "@".repeat(10_000);
    let digits = "1-".repeat(20_000);
    let nested = "(".repeat(10_000);
    let mixed = "Jan 2020 – Present\t".repeat(5_000);
    let unicode = "José 李娜 Дмитрий 🙂 ﬁ \u{202e}\u{0} \u{feff}".repeat(1_000);
    for text in [
        &long_line,
        &many_lines,
        &emails,
        &digits,
        &nested,
        &mixed,
        &unicode,
        &String::new(),
    ] {
        let t = std::time::Instant::now();
        let r = parse_resume(text);
        let p = t.elapsed();
        let _ = match_resume(&r, text);
        println!(
            "{:>8} chars: parse {:?}, match {:?}",
            text.len(),
            p,
            t.elapsed() - p
        );
    }
}
