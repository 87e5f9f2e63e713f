//! Parse résumé files and print what the crate makes of them.
//!
//! ```text
//! cargo run --example parse -- path/to/resume.pdf [--text] [--job job.txt]
//! ```

use std::process::ExitCode;

use resume_agent_resume::{extract_text, match_resume, parse_file, sniff};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let show_text = args.iter().any(|a| a == "--text");
    let job = args
        .iter()
        .position(|a| a == "--job")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut status = ExitCode::SUCCESS;
    let mut skip_next = false;
    for path in &args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if path == "--job" {
            skip_next = true;
            continue;
        }
        if path.starts_with("--") {
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: {e}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        println!("== {path}");
        match sniff(&bytes, Some(path)) {
            Ok(ty) => {
                println!("type: {ty}");
                if show_text {
                    match extract_text(&bytes, ty) {
                        Ok(t) => println!("--- text ---\n{t}--- end ---"),
                        Err(e) => println!("extract error: {e}"),
                    }
                }
            }
            Err(e) => println!("sniff error: {e}"),
        }
        match parse_file(&bytes, Some(path)) {
            Ok(mut r) => {
                let matched = job.as_ref().map(|job| match_resume(&r, job));
                r.text = format!("<{} chars>", r.text.chars().count());
                for s in &mut r.sections {
                    s.text = format!("<{} chars>", s.text.chars().count());
                }
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                if let Some(m) = matched {
                    println!("{}", serde_json::to_string_pretty(&m).unwrap_or_default());
                }
            }
            Err(e) => {
                println!("error [{}]: {e}", e.code());
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
