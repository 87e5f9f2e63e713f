//! Accuracy on the labelled fixtures (`tests/fixtures/labelled`): every
//! résumé is parsed from its bytes with `parse_file`, and its name, e-mail,
//! phone and skills are compared with `NN-*.expected.json` next to it.
//!
//! Run with `--nocapture` to see the per-file report and the figures.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use resume_agent_resume::parse_file;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    file: String,
    name: String,
    email: String,
    phone: String,
    location: String,
    skills: Vec<String>,
    experience_entries: usize,
}

fn labelled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/labelled")
}

fn expectations() -> Vec<Expected> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(labelled_dir())
        .expect("labelled fixtures directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".expected.json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("expected.json")
        })
        .collect()
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 {
        100.0
    } else {
        100.0 * n as f64 / d as f64
    }
}

#[test]
fn labelled_accuracy() {
    let all = expectations();
    assert!(all.len() >= 20, "only {} labelled fixtures", all.len());
    let (mut name_ok, mut email_ok, mut phone_ok, mut location_ok, mut exp_ok) = (0, 0, 0, 0, 0);
    let (mut skills_expected, mut skills_found, mut skills_right) = (0, 0, 0);
    let mut formats = BTreeSet::new();
    for e in &all {
        let path = labelled_dir().join(&e.file);
        let bytes = std::fs::read(&path).expect("fixture");
        formats.insert(
            path.extension()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let r = match parse_file(&bytes, Some(&e.file)) {
            Ok(r) => r,
            Err(err) => panic!("{}: {err}", e.file),
        };
        let mut notes = Vec::new();
        let mut check = |field: &str, got: Option<&str>, want: &str, counter: &mut usize| {
            if got == Some(want) {
                *counter += 1;
            } else {
                notes.push(format!("{field}: got {got:?}, want {want:?}"));
            }
        };
        check("name", r.name.as_deref(), &e.name, &mut name_ok);
        check("email", r.email.as_deref(), &e.email, &mut email_ok);
        check("phone", r.phone.as_deref(), &e.phone, &mut phone_ok);
        check(
            "location",
            r.location.as_deref(),
            &e.location,
            &mut location_ok,
        );
        if r.experience.len() == e.experience_entries {
            exp_ok += 1;
        } else {
            notes.push(format!(
                "experience entries: got {}, want {}",
                r.experience.len(),
                e.experience_entries
            ));
        }
        let want: BTreeSet<&str> = e.skills.iter().map(String::as_str).collect();
        let got: BTreeSet<&str> = r.skills.iter().map(String::as_str).collect();
        let right = want.intersection(&got).count();
        skills_expected += want.len();
        skills_found += got.len();
        skills_right += right;
        let missed: Vec<&&str> = want.difference(&got).collect();
        let extra: Vec<&&str> = got.difference(&want).collect();
        if !missed.is_empty() {
            notes.push(format!("skills missed: {missed:?}"));
        }
        if !extra.is_empty() {
            notes.push(format!("skills extra: {extra:?}"));
        }
        println!(
            "{:<40} {}",
            e.file,
            if notes.is_empty() {
                "ok".to_owned()
            } else {
                notes.join("; ")
            }
        );
    }
    let n = all.len();
    let contact_ok = name_ok + email_ok + phone_ok;
    let recall = pct(skills_right, skills_expected);
    let precision = pct(skills_right, skills_found);
    println!();
    println!(
        "labelled résumés: {n} ({} formats: {})",
        formats.len(),
        formats.into_iter().collect::<Vec<_>>().join(", ")
    );
    println!("name accuracy:     {name_ok}/{n} = {:.1}%", pct(name_ok, n));
    println!(
        "email accuracy:    {email_ok}/{n} = {:.1}%",
        pct(email_ok, n)
    );
    println!(
        "phone accuracy:    {phone_ok}/{n} = {:.1}%",
        pct(phone_ok, n)
    );
    println!(
        "name+email+phone:  {contact_ok}/{} = {:.1}%",
        3 * n,
        pct(contact_ok, 3 * n)
    );
    println!(
        "location (info):   {location_ok}/{n} = {:.1}%",
        pct(location_ok, n)
    );
    println!(
        "experience count (info): {exp_ok}/{n} = {:.1}%",
        pct(exp_ok, n)
    );
    println!("skill recall:      {skills_right}/{skills_expected} = {recall:.1}%");
    println!("skill precision:   {skills_right}/{skills_found} = {precision:.1}%");
    assert!(
        pct(contact_ok, 3 * n) >= 95.0,
        "name/email/phone accuracy below 95%"
    );
    assert!(recall >= 90.0, "skill recall below 90%");
    assert!(precision >= 85.0, "skill precision below 85%");
}
