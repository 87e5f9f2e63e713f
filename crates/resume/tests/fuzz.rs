//! A deterministic mutation fuzzer on stable Rust (cargo-fuzz needs a
//! nightly toolchain): the fixtures and every hostile file of issue 11 are
//! the seeds; each iteration mutates one (bit flips, interesting bytes,
//! multi-byte characters, PDF and XML tokens, splices, duplications,
//! truncation) or generates a PDF whose content stream is random tokens, and
//! feeds it to every entry point: `sniff`, `extract_text` for every type,
//! `parse_file`, `parse_resume` and `match_resume`. No call may panic (the
//! test catches and reports the input), take more than a few seconds, or
//! fail with a multi-line message.
//!
//! The short run is part of the test command. Longer runs:
//!
//! ```text
//! RESUME_FUZZ_ITERS=1000000 RESUME_FUZZ_SECS=3600 RESUME_FUZZ_SEED=7 \
//!   cargo test --release -p resume-agent-resume --test fuzz -- --nocapture
//! ```
//!
//! The libFuzzer targets for the same entry points are in `fuzz/` (nightly,
//! `cargo fuzz`); `fuzz/seed.sh` fills their corpus from these seeds.
//!
//! A failing input is written to `target/fuzz-failures/` with the seed and
//! iteration in its name; replay it with `RESUME_FUZZ_REPLAY=path cargo test
//! -p resume-agent-resume --test fuzz replay -- --nocapture`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use resume_agent_resume::{
    FileType, extract_text, hostile, match_resume, parse_file, parse_resume, sniff,
};

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TOKENS: &[&[u8]] = &[
    b"Do",
    b"/Fx0",
    b"/Fx0 /Nope Do",
    b"q",
    b"Q",
    b"BT",
    b"ET",
    b"Tj",
    b"TJ",
    b"Tf",
    b"Td",
    b"cm",
    b"<<",
    b">>",
    b"[",
    b"]",
    b"(",
    b")",
    b"<",
    b">",
    b"\\",
    b"%",
    b"/",
    b"obj",
    b"endobj",
    b"stream\n",
    b"endstream",
    b"R",
    b"0 0 R",
    b"/FlateDecode",
    b"/Filter",
    b"beginbfrange",
    b"endbfrange",
    b"<0000> <FFFF> <0041>",
    b"BI",
    b"ID",
    b"EI",
    b"-1e999",
    b"99999999999",
    b"<w:p>",
    b"</w:p>",
    b"<w:t>",
    b"</w:t>",
    b"<w:tbl><w:tr><w:tc>",
    b"&#x1F600;",
    b"&amp;",
    b"<![CDATA[",
    b"]]>",
    "“".as_bytes(),
    "”".as_bytes(),
    "’".as_bytes(),
    "é".as_bytes(),
    "😀".as_bytes(),
    "\u{ad}".as_bytes(),
    "ﬁ".as_bytes(),
    b"\r\n",
    b"\t",
    b"\x00",
    b"\xff\xfe",
    b"@",
    b"https://",
    b"Experience\n",
    b"Education\n",
    b"Skills: ",
    b"2019 \xe2\x80\x93 present",
    b"Jan 2020 - Dec 2021",
    b" | ",
    b" and ",
    b" or ",
];

const CONTENT_TOKENS: &[&str] = &[
    "q",
    "Q",
    "BT",
    "ET",
    "/F1 12 Tf",
    "72 720 Td",
    "(Jane Doe) Tj",
    "[(A) -250 (B)] TJ",
    "0 0 m",
    "1 1 l",
    "S",
    "1 0 0 1 10 10 cm",
    "/Fx0 Do",
    "/Fx1 Do",
    "/Nope /Fx0 Do",
    "T*",
    "(x) '",
    "1 2 (y) \"",
    "12 TL",
    "3 Tr",
    "BI /W 1 /H 1 ID \x00 EI",
    "/P <</MCID 0>> BDC",
    "EMC",
    "(unbalanced",
    ")",
    "<4142> Tj",
    "-0 Tc",
    "1e10 Tw",
    "1 0 0 -1 0 0 Tm",
];

/// How many seeds at the end of [`seeds`] are hostile files.
const HOSTILE_SEEDS: usize = 9;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["labelled", "bad"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.sort();
        for p in paths {
            if p.to_string_lossy().ends_with(".json") {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&p) {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push((name, bytes));
            }
        }
    }
    let hostile = hostile::all();
    assert_eq!(hostile.len(), HOSTILE_SEEDS);
    for h in hostile {
        out.push((h.name.to_owned(), h.bytes));
    }
    out
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[(String, Vec<u8>)]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                input[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                input[i] = *rng.pick(&[
                    0, 0xff, 0x7f, 0x80, b'(', b')', b'<', b'>', b'/', b'\n', b' ', b'0', b'9',
                ]);
            }
            2 | 3 => {
                let i = rng.below(len + 1);
                let token = rng.pick(TOKENS).to_vec();
                input.splice(i..i, token);
            }
            4 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                input.drain(a..b);
            }
            5 if len > 1 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(1024)).min(len);
                let chunk = input[a..b].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, chunk);
            }
            6 => {
                let (_, other) = rng.pick(seeds);
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(4096)).min(other.len());
                    let at = rng.below(len + 1);
                    input.splice(at..at, other[a..b].iter().copied());
                }
            }
            7 if len > 0 => {
                input.truncate(rng.below(len));
            }
            _ => {
                // A multi-byte character right before a word.
                let i = rng.below(len + 1);
                let c = rng.pick(&["“", "”", "’", "é", "😀", "\u{a0}"]);
                input.splice(i..i, c.bytes());
            }
        }
    }
}

/// A PDF whose page content (and a form XObject's) are random tokens.
fn generated_pdf(rng: &mut Rng) -> Vec<u8> {
    let content = |rng: &mut Rng| -> Vec<u8> {
        let mut c = String::new();
        for _ in 0..rng.below(200) {
            let token: &&str = rng.pick(CONTENT_TOKENS);
            c.push_str(token);
            c.push(if rng.below(5) == 0 { '\n' } else { ' ' });
        }
        c.into_bytes()
    };
    let page = content(rng);
    let form = content(rng);
    let compress = rng.below(2) == 0;
    let body = |data: Vec<u8>| {
        if compress {
            hostile::stream("/Filter /FlateDecode", &hostile::zlib(&data))
        } else {
            hostile::stream("", &data)
        }
    };
    let form_resources = if rng.below(2) == 0 {
        "/Resources << /XObject << /Fx0 6 0 R /Fx1 6 0 R >> /Font << /F1 4 0 R >> >>"
    } else {
        ""
    };
    hostile::pdf(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> /XObject << /Fx0 6 0 R >> >> /Contents [5 0 R 5 0 R] >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
        body(page),
        hostile::stream(
            &format!("/Type /XObject /Subtype /Form /BBox [0 0 612 792] {form_resources}"),
            &form,
        ),
    ])
}

/// Runs every entry point on `input`; a panic, a slow call or a multi-line
/// error message is a failure.
fn exercise(name: &str, input: &[u8]) -> Result<(), String> {
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| -> Result<(), String> {
        let _ = sniff(input, Some(name));
        for ty in [
            FileType::Pdf,
            FileType::Docx,
            FileType::Markdown,
            FileType::PlainText,
        ] {
            if let Err(e) = extract_text(input, ty)
                && e.to_string().contains('\n')
            {
                return Err(format!("multi-line error: {e:?}"));
            }
        }
        match parse_file(input, Some(name)) {
            Ok(parsed) => {
                let _ = match_resume(&parsed, &String::from_utf8_lossy(input));
            }
            Err(e) if e.to_string().contains('\n') => {
                return Err(format!("multi-line error: {e:?}"));
            }
            Err(_) => {}
        }
        let text = String::from_utf8_lossy(input);
        let parsed = parse_resume(&text);
        let _ = match_resume(&parsed, "Rust, Go or Python; “Kubernetes” required");
        Ok(())
    }));
    let took = started.elapsed();
    match outcome {
        Err(_) => Err("panicked".into()),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) if took > Duration::from_secs(20) => Err(format!("took {took:?}")),
        Ok(Ok(())) => Ok(()),
    }
}

fn env_u64(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `RESUME_FUZZ_REPLAY=path`: runs every entry point on one saved input.
#[test]
fn replay_a_saved_input() {
    let Ok(path) = std::env::var("RESUME_FUZZ_REPLAY") else {
        return;
    };
    let bytes = std::fs::read(&path).unwrap_or_default();
    let name = Path::new(&path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let outcome = exercise(&name, &bytes);
    println!("replay {path}: {outcome:?} in {:?}", started.elapsed());
    assert!(outcome.is_ok(), "{outcome:?}");
}

#[test]
fn fuzz_extractors_and_parsers() {
    let seed = env_u64("RESUME_FUZZ_SEED", 11);
    let iterations = env_u64("RESUME_FUZZ_ITERS", 150);
    let seeds = seeds();
    // `fuzz/seed.sh`: the cargo-fuzz corpus gets every seed, hostile included.
    if let Ok(dir) = std::env::var("RESUME_FUZZ_WRITE_SEEDS") {
        let dir = PathBuf::from(dir);
        let _ = std::fs::create_dir_all(&dir);
        for (name, bytes) in &seeds {
            let _ = std::fs::write(dir.join(name), bytes);
        }
    }
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut failures = Vec::new();
    // Panics inside the PDF libraries are expected (and contained by the
    // extractor); report only the others, which are bugs of ours.
    std::panic::set_hook(Box::new(|info| {
        let third_party = info
            .location()
            .is_some_and(|l| l.file().contains(".cargo/registry"));
        if !third_party {
            eprintln!("panic: {info}");
        }
    }));
    // Every fixture as it is, first (the hostile files as they are have
    // their own test).
    let fixtures = seeds.len() - HOSTILE_SEEDS;
    for (name, bytes) in seeds.iter().take(fixtures) {
        if let Err(why) = exercise(name, bytes) {
            failures.push(format!("seed {name}: {why}"));
        }
    }
    let started = Instant::now();
    // Optional wall-clock budget for long runs (the iteration count stays
    // the reproducible part: seed + iteration name an input).
    let budget = std::env::var("RESUME_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs);
    let mut done = 0u64;
    for i in 0..iterations {
        if budget.is_some_and(|b| started.elapsed() > b) {
            break;
        }
        done = i + 1;
        if i > 0 && i % 1000 == 0 {
            println!(
                "fuzz: {i} iterations, {:.0} s, {} failures",
                started.elapsed().as_secs_f64(),
                failures.len()
            );
        }
        let (name, input) = if rng.below(4) == 0 {
            ("generated.pdf".to_owned(), generated_pdf(&mut rng))
        } else {
            let (name, base) = rng.pick(&seeds);
            // Large hostile seeds are mutated less often (they are slow).
            if base.len() > 512 * 1024 && rng.below(8) != 0 {
                continue;
            }
            let mut input = base.clone();
            mutate(&mut rng, &mut input, &seeds);
            (name.clone(), input)
        };
        if let Err(why) = exercise(&name, &input) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("seed{seed}-iter{i}-{name}"));
            let _ = std::fs::write(&file, &input);
            failures.push(format!(
                "iteration {i} ({name}): {why}; input in {}",
                file.display()
            ));
        }
    }
    println!(
        "fuzz: seed {seed}, {done} iterations over {} seeds in {:.1} s, {} failures",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
