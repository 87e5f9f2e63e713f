//! The résumé work end to end through the web API against PostgreSQL, with
//! web and worker as separate processes: upload → `resume.parse` → result
//! for every fixture, bad files failing after exactly one attempt,
//! `resume.match` ranking, upload limits and hostile filenames.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::Phase5;
use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/resume/tests/fixtures")
}

async fn upload(p: &Phase5, bytes: Vec<u8>, name: &str, client_type: &str) -> (u16, Value) {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(client_type)
        .unwrap();
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = p
        .http
        .post(format!("{}/api/files", p.web_url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn parse(p: &Phase5, file_id: &str) -> String {
    p.submit_ok(json!({"kind": "resume.parse", "payload": {"file_id": file_id}}))
        .await
}

async fn finished(p: &Phase5, id: &str) -> Value {
    common::eventually(Duration::from_secs(60), "terminal", || async {
        let t = p.task(id).await;
        matches!(t["status"].as_str(), Some("succeeded" | "failed")).then_some(t)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_labelled_fixture_parses_end_to_end() {
    let p = Phase5::start(&[]).await;
    let dir = fixtures().join("labelled");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    names.sort();
    assert!(names.len() >= 20);
    let mut formats = std::collections::BTreeSet::new();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!(
                "{}.expected.json",
                path.file_stem().unwrap().to_string_lossy()
            )))
            .unwrap(),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // The client claims a generic type: the server sniffs the real one.
        let (status, file) = upload(&p, bytes.clone(), &name, "application/octet-stream").await;
        assert_eq!(status, 201, "{name}: {file}");
        formats.insert(file["content_type"].as_str().unwrap().to_owned());
        assert_eq!(file["size"], json!(bytes.len()));
        assert_eq!(file["filename"], json!(name));
        let t = finished(&p, &parse(&p, file["id"].as_str().unwrap()).await).await;
        assert_eq!(t["status"], "succeeded", "{name}: {t}");
        let r = &t["result"];
        assert_eq!(r["email"], expected["email"], "{name}");
        assert_eq!(r["name"], expected["name"], "{name}");
        assert!(
            r["skills"].as_array().is_some_and(|s| !s.is_empty()),
            "{name}: no skills"
        );
        assert!(r["text"].as_str().is_some_and(|s| !s.is_empty()));
    }
    for want in [
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "text/markdown",
        "text/plain",
    ] {
        assert!(
            formats.contains(want),
            "no fixture sniffed as {want}: {formats:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_fail_after_exactly_one_attempt_or_are_refused_at_upload() {
    let p = Phase5::start(&[]).await;
    let bad = fixtures().join("bad");
    // Stored, then fail to parse with a one-line reason, without retrying.
    for (file, hint) in [
        ("empty.pdf", "empty"),
        ("scanned-no-text.pdf", "text"),
        ("encrypted-user-password.pdf", "password"),
        ("truncated.pdf", ""),
        ("truncated.docx", ""),
    ] {
        let (status, f) = upload(
            &p,
            std::fs::read(bad.join(file)).unwrap(),
            file,
            "application/pdf",
        )
        .await;
        assert_eq!(status, 201, "{file}: {f}");
        let t = finished(&p, &parse(&p, f["id"].as_str().unwrap()).await).await;
        assert_eq!(t["status"], "failed", "{file}: {t}");
        assert_eq!(
            t["attempts"], 1,
            "{file}: a permanent error was retried: {t}"
        );
        let err = t["error"].as_str().unwrap();
        assert!(!err.is_empty() && !err.contains('\n'), "{file}: {err:?}");
        assert!(
            err.to_lowercase().contains(hint),
            "{file}: {err:?} should mention {hint:?}"
        );
        eprintln!("{file}: {err}");
    }
    // Lying about the type: sniffed from the bytes.
    for file in [
        "png-named-resume.pdf",
        "binary.bin",
        "zip-not-docx.zip",
        "xlsx-named-resume.docx",
        "legacy-word.doc",
    ] {
        let (status, body) = upload(
            &p,
            std::fs::read(bad.join(file)).unwrap(),
            file,
            "application/pdf",
        )
        .await;
        assert_eq!(status, 415, "{file}: {body}");
        assert_eq!(body["status"], 415);
    }
    let (status, f) = upload(
        &p,
        std::fs::read(bad.join("pdf-named-resume.txt")).unwrap(),
        "resume.txt",
        "text/plain",
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        f["content_type"], "application/pdf",
        "a PDF named .txt is a PDF"
    );
    let t = finished(&p, &parse(&p, f["id"].as_str().unwrap()).await).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    // A task naming a file that does not exist (or is not the caller's) is refused.
    let (status, body) = p
        .submit(json!({"kind": "resume.parse", "payload": {"file_id": uuid::Uuid::now_v7()}}))
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_ranks_strong_above_partial_above_unrelated_and_names_the_gaps() {
    let p = Phase5::start(&[]).await;
    let job = std::fs::read_to_string(fixtures().join("match/job.txt")).unwrap();
    let mut scores = Vec::new();
    let mut missing_partial = Vec::new();
    for (i, file) in [
        "labelled/01-jane-doe.pdf",
        "labelled/02-jose-alvarez.pdf",
        "labelled/20-kwame-mensah-utf16.txt",
    ]
    .iter()
    .enumerate()
    {
        let (status, f) = upload(
            &p,
            std::fs::read(fixtures().join(file)).unwrap(),
            file,
            "application/octet-stream",
        )
        .await;
        assert_eq!(status, 201);
        let id = p
            .submit_ok(json!({"kind": "resume.match", "payload": {"file_id": f["id"], "job_description": job}}))
            .await;
        let t = finished(&p, &id).await;
        assert_eq!(t["status"], "succeeded", "{t}");
        let score = t["result"]["score"].as_u64().unwrap();
        assert!(score <= 100);
        eprintln!(
            "{file}: score {score}, missing {}",
            t["result"]["missing_skills"]
        );
        if i == 1 {
            missing_partial = t["result"]["missing_skills"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect();
        }
        // Deterministic: the same inputs give the same result (the second run reuses the stored parse).
        let again = p
            .submit_ok(json!({"kind": "resume.match", "payload": {"file_id": f["id"], "job_description": job}}))
            .await;
        assert_eq!(finished(&p, &again).await["result"], t["result"]);
        scores.push(score);
    }
    assert!(scores[0] > scores[1] && scores[1] > scores[2], "{scores:?}");
    for skill in ["Go", "Kubernetes"] {
        assert!(
            missing_partial.iter().any(|s| s == skill),
            "the Java developer should be missing {skill}: {missing_partial:?}"
        );
    }
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

fn curl_status(args: &[&str]) -> u16 {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50_mib_upload_is_refused_without_being_read_and_hostile_names_are_harmless() {
    let p = Phase5::start(&[]).await;
    let big = std::env::temp_dir().join(format!("ra-big-{}", uuid::Uuid::new_v4().simple()));
    {
        let mut data = b"%PDF-1.4\n".to_vec();
        data.resize(50 * 1024 * 1024, b'x');
        std::fs::write(&big, data).unwrap();
    }
    let pid = p.web.child.id();
    let before = peak_rss_kib(pid);
    let url = format!("{}/api/files", p.web_url);
    let form = format!("file=@{}", big.display());
    // With a Content-Length: refused from the header.
    assert_eq!(curl_status(&["-F", &form, &url]), 413);
    // Chunked, no length: refused once the limit is passed.
    assert_eq!(
        curl_status(&["-H", "Transfer-Encoding: chunked", "-F", &form, &url]),
        413
    );
    let grew = peak_rss_kib(pid).saturating_sub(before);
    eprintln!("web peak RSS grew {grew} KiB while refusing two 50 MiB uploads");
    assert!(
        grew < 30 * 1024,
        "the web read the oversized upload into memory: +{grew} KiB"
    );
    std::fs::remove_file(&big).ok();

    let (status, f) = upload(
        &p,
        b"Jane Doe\njane@example.com\n".to_vec(),
        "../../etc/passwd",
        "text/plain",
    )
    .await;
    assert_eq!(status, 201, "{f}");
    assert_eq!(f["filename"], "passwd");
    let r = p
        .http
        .get(format!(
            "{}/api/files/{}",
            p.web_url,
            f["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"passwd\""
    );
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        b"Jane Doe\njane@example.com\n"
    );
    assert!(!Path::new("/etc/passwd.tmp").exists());
    // Not multipart → 415; no `file` field → 400; unknown id → 404.
    let r = p
        .http
        .post(format!("{}/api/files", p.web_url))
        .body("x")
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let form = reqwest::multipart::Form::new().text("other", "x");
    let r = p
        .http
        .post(format!("{}/api/files", p.web_url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let r = p
        .http
        .get(format!("{}/api/files/{}", p.web_url, uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
