//! Accuracy on real-world résumés written outside this project: the labelled
//! corpus in `../shared/resume-corpus-real` (relative to the repository
//! root; its `README.md` explains the label conventions). The files are read
//! from there and never copied into this repository. When the folder is
//! absent (a checkout without the shared data) the test says so and passes.
//!
//! Every file is parsed from its bytes with `parse_file` and compared with
//! its `<file>.json` label, loosely:
//!
//! - `name`, `email`, `phone`, `location`: case-, whitespace- and
//!   punctuation-insensitive (phones by their digits); a location also
//!   counts when one contains the other (`Mountain View, CA` inside `Google
//!   HQ, Mountain View, CA, USA`). A `null` label is right when the parser
//!   returns nothing. Every file counts.
//! - `links`: recall over the label's `links` ∪ `link_uris` (deduplicated
//!   after dropping scheme, `www.`, query and trailing `/`); a handle such as
//!   `@Kuester_Jan` counts when a returned link ends with it.
//! - `employers`, `titles`, `institutions`: recall; a label value is found
//!   when a returned value is equal after normalisation or one contains the
//!   other and the shorter is at least 60 % of the longer. Titles are a
//!   multiset (one per entry).
//! - `skills` recall: a label item is found when a returned skill equals it
//!   loosely (as above: `Hard-working` for `Hard-working (18/24)`), is its
//!   canonical vocabulary name, or is a vocabulary skill named inside the
//!   item (`Python` for `Python (Pandas/Numpy)`).
//! - skills "absent": the share of returned skills that are neither in the
//!   label's skills list (as above, either way round) nor named in the
//!   text of the résumé's skills-like or experience sections.
//!
//! Run with `--nocapture` for the per-file differences and the table; the
//! parse time per file (p50/p99) is printed too (meaningful in release:
//! `cargo test -p resume-agent-resume --release --test real_corpus -- --nocapture`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use resume_agent_resume::{ParsedResume, SectionKind, parse_file, skills};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Label {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    location: Option<String>,
    #[serde(default)]
    links: Vec<String>,
    #[serde(default)]
    link_uris: Vec<String>,
    #[serde(default)]
    employers: Vec<String>,
    #[serde(default)]
    titles: Vec<String>,
    #[serde(default)]
    education_institutions: Vec<String>,
    #[serde(default)]
    skills: Vec<String>,
}

/// `../shared/resume-corpus-real` relative to the repository root, found by
/// walking up from the crate until a directory has `shared/resume-corpus-real`
/// beside (or above) the checkout.
fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RESUME_CORPUS_REAL") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared").join("resume-corpus-real"))
        .find(|p| p.is_dir())
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn loose_eq(a: &str, b: &str) -> bool {
    let (a, b) = (norm(a), norm(b));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    long.contains(short.as_str()) && short.len() * 10 >= long.len() * 6
}

fn link_key(s: &str) -> String {
    let s = s.trim().to_lowercase();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let s = s.strip_prefix("www.").unwrap_or(s);
    let s = s.split(['?', '#']).next().unwrap_or(s);
    s.trim_end_matches('/').to_owned()
}

fn link_found(want: &str, got: &[String]) -> bool {
    let key = link_key(want);
    if !key.contains('.') {
        // a handle: '@Kuester_Jan', 'posquit0'
        let handle = key.trim_start_matches('@');
        return !handle.is_empty()
            && got.iter().any(|g| {
                let g = link_key(g);
                g.trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| last.trim_start_matches('@') == handle)
            });
    }
    got.iter().any(|g| link_key(g) == key)
}

/// Recall of `want` in `got` (each returned value used once).
fn recall(want: &[String], got: &[String]) -> (usize, usize, Vec<String>) {
    let mut used = vec![false; got.len()];
    let mut hit = 0;
    let mut missed = Vec::new();
    for w in want {
        let found = got
            .iter()
            .enumerate()
            .position(|(i, g)| !used[i] && loose_eq(w, g));
        match found {
            Some(i) => {
                used[i] = true;
                hit += 1;
            }
            None => missed.push(w.clone()),
        }
    }
    (hit, want.len(), missed)
}

fn skill_found(item: &str, got: &[String]) -> bool {
    if got.iter().any(|g| loose_eq(g, item)) {
        return true;
    }
    if let Some(c) = skills::canonical(item.trim())
        && got.iter().any(|g| g == c)
    {
        return true;
    }
    skills::find_skills(item).iter().any(|s| got.contains(s))
}

/// Whether a returned skill is backed by the label's list or by the text of
/// the résumé's skills-like or experience sections.
fn skill_backed(skill: &str, label: &[String], r: &ParsedResume) -> bool {
    if label
        .iter()
        .any(|l| loose_eq(l, skill) || skill_found(l, &[skill.to_owned()]))
    {
        return true;
    }
    let text: String = r
        .sections
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                SectionKind::Skills | SectionKind::Experience | SectionKind::Languages
            )
        })
        .map(|s| format!("{}\n{}\n", s.heading, s.text))
        .collect();
    let lower = text.to_lowercase();
    let needle = skill.to_lowercase();
    skills::find_skills(&text).iter().any(|s| s == skill) || word_in(&lower, &needle)
}

fn word_in(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(needle).any(|(i, m)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + m.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[derive(Default, Clone, Copy)]
struct Score {
    hit: usize,
    total: usize,
}

impl Score {
    fn add(&mut self, hit: usize, total: usize) {
        self.hit += hit;
        self.total += total;
    }
    fn pct(self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            100.0 * self.hit as f64 / self.total as f64
        }
    }
}

const FIELDS: [&str; 10] = [
    "name",
    "email",
    "phone",
    "location",
    "links",
    "employers",
    "titles",
    "institutions",
    "skills",
    "skills absent",
];

fn scalar(got: Option<&str>, want: Option<&str>, phone: bool, contains: bool) -> bool {
    match (got, want) {
        (None, None) => true,
        (Some(g), Some(w)) if phone => !digits(w).is_empty() && digits(g) == digits(w),
        (Some(g), Some(w)) => {
            let (g, w) = (norm(g), norm(w));
            !w.is_empty()
                && (g == w || (contains && !g.is_empty() && (g.contains(&w) || w.contains(&g))))
        }
        _ => false,
    }
}

#[test]
fn real_corpus_accuracy() {
    let Some(dir) = corpus_dir() else {
        println!(
            "SKIPPED: ../shared/resume-corpus-real not found next to the checkout \
             (set RESUME_CORPUS_REAL to its path to run this test)"
        );
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x != "json" && x != "md")
                || p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n.ends_with(".md") && n != "README.md"
                })
        })
        .filter(|p| {
            p.with_file_name(format!("{}.json", p.file_name().unwrap().to_string_lossy()))
                .is_file()
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no labelled files in {}", dir.display());

    // The vocabulary is compiled once per process (process start, not
    // parse time).
    assert!(!skills::vocabulary().is_empty());
    let mut scores = [Score::default(); 10];
    let mut times: Vec<Duration> = Vec::new();
    for path in &files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let label: Label = serde_json::from_str(
            &std::fs::read_to_string(path.with_file_name(format!("{file}.json"))).expect("label"),
        )
        .expect("label json");
        let bytes = std::fs::read(path).expect("file");
        // Parse time: the median of three runs (the machine is shared).
        let mut runs: Vec<Duration> = Vec::new();
        let mut parsed = None;
        for _ in 0..3 {
            let started = Instant::now();
            let r = match parse_file(&bytes, Some(&file)) {
                Ok(r) => r,
                Err(e) => panic!("{file}: {e}"),
            };
            runs.push(started.elapsed());
            parsed = Some(r);
        }
        runs.sort();
        times.push(runs[1]);
        let r = parsed.expect("parsed");
        let mut notes = Vec::new();
        let mut one =
            |i: usize, ok: bool, got: &dyn std::fmt::Debug, want: &dyn std::fmt::Debug| {
                scores[i].add(usize::from(ok), 1);
                if !ok {
                    notes.push(format!("{}: got {got:?}, want {want:?}", FIELDS[i]));
                }
            };
        one(
            0,
            scalar(r.name.as_deref(), label.name.as_deref(), false, false),
            &r.name,
            &label.name,
        );
        one(
            1,
            scalar(r.email.as_deref(), label.email.as_deref(), false, false),
            &r.email,
            &label.email,
        );
        one(
            2,
            scalar(r.phone.as_deref(), label.phone.as_deref(), true, false),
            &r.phone,
            &label.phone,
        );
        one(
            3,
            scalar(
                r.location.as_deref(),
                label.location.as_deref(),
                false,
                true,
            ),
            &r.location,
            &label.location,
        );

        // links
        let got_links: Vec<String> = r
            .links
            .linkedin
            .iter()
            .chain(r.links.github.iter())
            .chain(r.links.websites.iter())
            .cloned()
            .collect();
        let mut want_links: Vec<String> = Vec::new();
        for l in label.links.iter().chain(label.link_uris.iter()) {
            if !want_links.iter().any(|w| link_key(w) == link_key(l)) {
                want_links.push(l.clone());
            }
        }
        let missed: Vec<&String> = want_links
            .iter()
            .filter(|w| !link_found(w, &got_links))
            .collect();
        scores[4].add(want_links.len() - missed.len(), want_links.len());
        if !missed.is_empty() {
            notes.push(format!("links: missed {missed:?}, got {got_links:?}"));
        }

        let employers: Vec<String> = r
            .experience
            .iter()
            .filter_map(|e| e.employer.clone())
            .collect();
        let titles: Vec<String> = r
            .experience
            .iter()
            .filter_map(|e| e.title.clone())
            .collect();
        let schools: Vec<String> = r
            .education
            .iter()
            .filter_map(|e| e.institution.clone())
            .collect();
        for (i, want, got) in [
            (5, &label.employers, &employers),
            (6, &label.titles, &titles),
            (7, &label.education_institutions, &schools),
        ] {
            let (hit, total, missed) = recall(want, got);
            scores[i].add(hit, total);
            if !missed.is_empty() {
                notes.push(format!("{}: missed {missed:?}, got {got:?}", FIELDS[i]));
            }
        }

        let missed: Vec<&String> = label
            .skills
            .iter()
            .filter(|s| !skill_found(s, &r.skills))
            .collect();
        scores[8].add(label.skills.len() - missed.len(), label.skills.len());
        if !missed.is_empty() {
            notes.push(format!("skills: missed {missed:?}"));
        }
        let absent: Vec<&String> = r
            .skills
            .iter()
            .filter(|s| !skill_backed(s, &label.skills, &r))
            .collect();
        scores[9].add(absent.len(), r.skills.len());
        if !absent.is_empty() {
            notes.push(format!("skills absent from list/experience: {absent:?}"));
        }

        println!(
            "== {file} ({:.1} ms)",
            times.last().unwrap().as_secs_f64() * 1000.0
        );
        for n in &notes {
            println!("   {n}");
        }
    }

    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 - 1.0) * q).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1000.0
    };
    println!();
    println!("| {} |", FIELDS.join(" | "));
    println!("| {} |", FIELDS.map(|_| "---").join(" | "));
    println!(
        "| {} |",
        scores
            .iter()
            .map(|s| format!("{:.0} % ({}/{})", s.pct(), s.hit, s.total))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    println!(
        "parse time per file ({} files, median of 3 runs, {} build): p50 {:.1} ms, p99 {:.1} ms",
        times.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        at(0.5),
        at(0.99)
    );

    // The targets of issue 12, all reached on this set (see
    // crates/resume/README.md for the figures). Parse time is printed, not
    // asserted: it depends on the machine's load.
    let floors: [f64; 9] = [97.0, 97.0, 97.0, 85.0, 85.0, 85.0, 85.0, 90.0, 90.0];
    for (i, floor) in floors.iter().enumerate() {
        assert!(
            scores[i].pct() + 1e-9 >= *floor,
            "{} at {:.1} %, below the floor {floor} %",
            FIELDS[i],
            scores[i].pct()
        );
    }
    assert!(
        scores[9].pct() <= 25.0 + 1e-9,
        "{:.1} % of the returned skills are absent from the skills lists and experience text (at most 25 %)",
        scores[9].pct()
    );
}
