//! What parsing in a child process costs, measured without building the
//! whole service: this example re-executes itself as a child speaking the
//! worker's parse-child protocol (file name line + bytes on stdin, the JSON
//! answer on stdout) and compares that with parsing in process.
//!
//! ```text
//! cargo run --release -p resume-agent-resume --example child_overhead
//! ```
//!
//! The real child is the `resume-agent` binary (larger, so its exec costs a
//! little more) and also sets its rlimits (two system calls).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use resume_agent_resume::{ParsedResume, parse_file};

fn child() -> ExitCode {
    let mut input = Vec::new();
    if std::io::stdin().read_to_end(&mut input).is_err() {
        return ExitCode::FAILURE;
    }
    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
        return ExitCode::FAILURE;
    };
    let name: String = serde_json::from_slice(&input[..newline]).unwrap_or_default();
    let answer = match parse_file(&input[newline + 1..], Some(&name)) {
        Ok(p) => serde_json::json!({ "ok": p }),
        Err(e) => serde_json::json!({ "error": { "code": e.code(), "message": e.to_string() } }),
    };
    let mut out = std::io::stdout().lock();
    if serde_json::to_writer(&mut out, &answer).is_err() || out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn in_child(exe: &Path, bytes: &[u8], name: &str) -> Option<ParsedResume> {
    let mut c = Command::new(exe)
        .arg("--child")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = c.stdin.take()?;
    let mut input = serde_json::to_vec(name).ok()?;
    input.push(b'\n');
    input.extend_from_slice(bytes);
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = Vec::new();
    c.stdout.take()?.read_to_end(&mut out).ok()?;
    let _ = writer.join();
    c.wait().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
    serde_json::from_value(v.get("ok")?.clone()).ok()
}

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

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--child") {
        return child();
    }
    let Ok(exe) = std::env::current_exe() else {
        return ExitCode::FAILURE;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labelled");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "pdf" || e == "docx"));
    files.sort();
    const ROUNDS: u32 = 30;
    let (mut direct_total, mut child_total, mut pages_total) =
        (Duration::ZERO, Duration::ZERO, 0usize);
    println!(
        "{:<40} {:>5} {:>12} {:>12}",
        "file", "pages", "in-proc ms", "child ms"
    );
    for path in files {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pages = if name.ends_with(".pdf") {
            pdf_pages(&bytes)
        } else {
            1
        };
        let _ = parse_file(&bytes, Some(&name)); // warm (vocabulary built once)
        let t = Instant::now();
        for _ in 0..ROUNDS {
            let _ = parse_file(&bytes, Some(&name));
        }
        let direct = t.elapsed() / ROUNDS;
        let t = Instant::now();
        for _ in 0..ROUNDS {
            if in_child(&exe, &bytes, &name).is_none() {
                eprintln!("{name}: the child failed");
                return ExitCode::FAILURE;
            }
        }
        let child = t.elapsed() / ROUNDS;
        println!(
            "{name:<40} {pages:>5} {:>12.2} {:>12.2}",
            direct.as_secs_f64() * 1e3,
            child.as_secs_f64() * 1e3
        );
        direct_total += direct;
        child_total += child;
        pages_total += pages;
    }
    let per_page = |d: Duration| d.as_secs_f64() * 1e3 / pages_total.max(1) as f64;
    println!(
        "per page: in process {:.2} ms, in a child {:.2} ms (+{:.2} ms per page)",
        per_page(direct_total),
        per_page(child_total),
        per_page(child_total) - per_page(direct_total)
    );
    ExitCode::SUCCESS
}
