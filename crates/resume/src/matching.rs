//! Matching a parsed résumé against a job description.
//!
//! **Skills.** The job description's skills are found with the vocabulary
//! matcher. Each gets a weight from where it appears: **3** (required) under
//! a heading such as "Requirements", "Must have", "What you'll need",
//! "Qualifications", or on a line that says "must", "required",
//! "essential", "at least", "proficient"; **1** (nice to have) under "Nice
//! to have", "Preferred", "Bonus", "Desirable", or on a line that says "a
//! plus", "preferred", "nice to have", "ideally", "familiarity"; **2**
//! otherwise. A skill seen several times keeps its highest weight. A skill
//! counts as matched when the résumé's skills (which include implied ones:
//! `Amazon EKS` gives `Kubernetes`) or its text contain it.
//! `skill_coverage` = matched weight / total weight.
//!
//! **Keywords.** The other words of the job description (skills masked out,
//! lower-cased, plural `s` stripped, stop words and job-ad boilerplate such
//! as "experience", "team", "role" removed) are ranked by frequency, ties by
//! first appearance; the top 25 are the keywords. `keyword_coverage` =
//! share of them found among the résumé's words.
//!
//! **Score** = round(100 × (0.7 × skill_coverage + 0.3 × keyword_coverage)),
//! or round(100 × keyword_coverage) when the description names no known
//! skill. Everything is computed over sorted collections, so the same inputs
//! always give the same result.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::parse::ParsedResume;
use crate::skills::{sort_names, vocabulary};

/// How well a résumé fits a job description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchResult {
    /// 0–100; see the module documentation for the method.
    pub score: u8,
    /// Weighted share of the job's skills found in the résumé (0.0–1.0;
    /// 1.0 when the job names no known skill).
    pub skill_coverage: f64,
    /// Skills of the job that the résumé has, sorted by name.
    pub matched_skills: Vec<String>,
    /// Skills of the job that the résumé lacks, most important first
    /// (required, then asked, then nice-to-have; by name within each).
    pub missing_skills: Vec<String>,
    /// Skills of the résumé that the job does not ask for, sorted by name.
    pub extra_skills: Vec<String>,
    /// Share of the job's keywords found in the résumé (0.0–1.0; 1.0 when
    /// there are none).
    pub keyword_coverage: f64,
    /// Keywords of the job found in the résumé, most frequent first.
    pub matched_keywords: Vec<String>,
    /// Keywords of the job missing from the résumé, most frequent first.
    pub missing_keywords: Vec<String>,
    /// Concrete, actionable advice, most important first (at most ten).
    pub suggestions: Vec<String>,
}

const REQUIRED: u8 = 3;
const ASKED: u8 = 2;
const NICE: u8 = 1;
const TOP_KEYWORDS: usize = 25;

const REQUIRED_HEADINGS: &[&str] = &[
    "requirements",
    "required",
    "required skills",
    "required qualifications",
    "required experience",
    "minimum qualifications",
    "basic qualifications",
    "must have",
    "must haves",
    "must-have",
    "must-haves",
    "what you need",
    "what you'll need",
    "what you will need",
    "what you'll bring",
    "what you bring",
    "you have",
    "you should have",
    "qualifications",
    "who you are",
    "what we're looking for",
    "what we are looking for",
    "skills and experience",
    "essential",
    "essential skills",
    "key requirements",
    "your profile",
    "about you",
    "you will have",
    "you'll have",
    "skills",
];

const NICE_HEADINGS: &[&str] = &[
    "nice to have",
    "nice to haves",
    "nice-to-have",
    "nice-to-haves",
    "preferred",
    "preferred qualifications",
    "preferred skills",
    "preferred experience",
    "bonus",
    "bonus points",
    "pluses",
    "plus",
    "desirable",
    "desired",
    "desired skills",
    "good to have",
    "extra credit",
    "bonus if you have",
    "it's a plus",
    "would be a plus",
    "ideally",
];

fn heading_key(line: &str) -> String {
    let t = line
        .trim()
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
        .to_lowercase()
        .replace('’', "'");
    t.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The weight a heading sets for the lines under it, if it is a heading.
fn heading_weight(line: &str) -> Option<u8> {
    let t = line.trim();
    if t.is_empty() || t.split_whitespace().count() > 8 {
        return None;
    }
    // "Requirements:" or "Nice to have (any of):"
    let head = t.split(['(', ':']).next().unwrap_or(t);
    let key = heading_key(head);
    if key.is_empty() {
        return None;
    }
    if NICE_HEADINGS.contains(&key.as_str()) {
        return Some(NICE);
    }
    if REQUIRED_HEADINGS.contains(&key.as_str()) {
        return Some(REQUIRED);
    }
    let bullet = t.starts_with(['-', '*', '•', '–', '+']);
    let letters: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
    let shouted = !bullet
        && letters.len() >= 4
        && letters.iter().all(|c| c.is_uppercase())
        && !t.contains([',', '(', '/']);
    (t.ends_with(':') && !bullet || t.starts_with('#') || shouted).then_some(ASKED)
}

fn line_cue(line: &str) -> Option<u8> {
    let l = line.to_lowercase();
    let nice = [
        "nice to have",
        "nice-to-have",
        "preferred",
        "bonus",
        "a plus",
        "desirable",
        "ideally",
        "familiarity",
        "is a plus",
        "would be great",
        "not required",
    ];
    if nice.iter().any(|c| l.contains(c)) {
        return Some(NICE);
    }
    let required = [
        "must",
        "required",
        "require",
        "essential",
        "mandatory",
        "at least",
        "proficien",
        "strong experience",
        "expert in",
        "deep experience",
        "solid experience",
        "need to have",
    ];
    if required.iter().any(|c| l.contains(c)) {
        return Some(REQUIRED);
    }
    None
}

/// The job's skills: the weight of each, and the groups of alternatives
/// ("Go or Rust", "AWS/GCP": one of them is enough). Every skill is in
/// exactly one group.
struct JobSkills {
    weights: BTreeMap<usize, u8>,
    groups: Vec<Vec<usize>>,
}

fn find_root(parent: &BTreeMap<usize, usize>, mut x: usize) -> usize {
    while let Some(&p) = parent.get(&x) {
        if p == x {
            break;
        }
        x = p;
    }
    x
}

/// Skills of the job description with their weights and alternatives.
fn job_skills(job: &str) -> JobSkills {
    let v = vocabulary();
    let mut weights: BTreeMap<usize, u8> = BTreeMap::new();
    let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
    let mut section = ASKED;
    let mut list_section = false;
    for line in job.lines() {
        let inline_rest = line
            .split_once(':')
            .map(|(_, r)| r.trim())
            .filter(|r| !r.is_empty());
        if let Some(w) = heading_weight(line)
            && inline_rest.is_none()
        {
            section = w;
            list_section = w != ASKED || heading_key(line).contains("stack");
            continue;
        }
        let weight = line_cue(line)
            .or_else(|| {
                heading_weight(line.split(':').next().unwrap_or(""))
                    .filter(|_| inline_rest.is_some())
            })
            .unwrap_or(section);
        let matches = v.scan_line(line, list_section);
        for m in &matches {
            let e = weights.entry(m.skill).or_insert(weight);
            *e = (*e).max(weight);
            parent.entry(m.skill).or_insert(m.skill);
        }
        // "AWS (EKS, RDS, S3)": the parenthesised skills detail the one before.
        for (i, m) in matches.iter().enumerate() {
            let rest = line.get(m.end..).unwrap_or("");
            if !rest.trim_start().starts_with('(') {
                continue;
            }
            let close = rest.find(')').map_or(line.len(), |c| m.end + c);
            for inner in matches.iter().skip(i + 1).take_while(|x| x.start < close) {
                let (a, b) = (find_root(&parent, m.skill), find_root(&parent, inner.skill));
                if a != b {
                    parent.insert(a.max(b), a.min(b));
                }
            }
        }
        for pair in matches.windows(2) {
            let between = line
                .get(pair[0].end..pair[1].start)
                .unwrap_or("")
                .trim()
                .to_lowercase();
            if matches!(between.as_str(), "or" | "/" | "or a" | "or an" | "and/or")
                && pair[0].skill != pair[1].skill
            {
                let (a, b) = (
                    find_root(&parent, pair[0].skill),
                    find_root(&parent, pair[1].skill),
                );
                if a != b {
                    parent.insert(a.max(b), a.min(b));
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &skill in weights.keys() {
        groups
            .entry(find_root(&parent, skill))
            .or_default()
            .push(skill);
    }
    JobSkills {
        weights,
        groups: groups.into_values().collect(),
    }
}

const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "across",
    "after",
    "again",
    "against",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "either",
    "else",
    "etc",
    "ever",
    "every",
    "few",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "like",
    "made",
    "make",
    "makes",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "need",
    "needs",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "often",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "others",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "per",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "very",
    "via",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
    "able",
    "ability",
    "abilities",
    "apply",
    "applicant",
    "applicants",
    "benefit",
    "benefits",
    "bonus",
    "candidate",
    "candidates",
    "company",
    "competitive",
    "culture",
    "day",
    "days",
    "degree",
    "desired",
    "desirable",
    "employer",
    "environment",
    "equal",
    "equivalent",
    "excellent",
    "experience",
    "experienced",
    "familiar",
    "familiarity",
    "good",
    "great",
    "help",
    "highly",
    "ideal",
    "ideally",
    "including",
    "include",
    "includes",
    "job",
    "join",
    "joining",
    "knowledge",
    "least",
    "level",
    "looking",
    "mandatory",
    "minimum",
    "nice",
    "opportunity",
    "opportunities",
    "plus",
    "position",
    "preferred",
    "proficiency",
    "proficient",
    "qualification",
    "qualifications",
    "related",
    "relevant",
    "required",
    "requirement",
    "requirements",
    "responsibilities",
    "responsibility",
    "responsible",
    "role",
    "roles",
    "salary",
    "seeking",
    "skill",
    "skills",
    "solid",
    "strong",
    "successful",
    "team",
    "teams",
    "understanding",
    "want",
    "well",
    "work",
    "working",
    "works",
    "year",
    "years",
    "using",
    "use",
    "used",
    "based",
    "new",
    "across",
    "ensure",
    "role",
    "we're",
    "you'll",
    "you're",
    "it's",
    "don't",
    "they're",
    "let's",
    "what's",
    "who's",
    "etc",
    "e.g",
    "i.e",
    "eg",
    "ie",
    "hands-on",
    "bring",
    "love",
    "passion",
    "passionate",
    "excited",
    "exciting",
    "world",
    "best",
    "hire",
    "hiring",
    "offer",
    "offers",
    "perks",
    "remote",
    "hybrid",
    "office",
    "full-time",
    "part-time",
    "time",
    "week",
    "weeks",
    "month",
    "months",
    "people",
    "person",
    "someone",
    "thing",
    "things",
    "way",
    "ways",
    "well-being",
    "inclusive",
    "diverse",
    "diversity",
    "employment",
    "gender",
    "race",
    "religion",
    "status",
    "veteran",
    "disability",
    "age",
    "national",
    "origin",
    "sexual",
    "orientation",
    "identity",
    "law",
    "applicable",
    "stack",
    "tools",
    "tool",
    "technologies",
    "technology",
    "plus",
    "big",
    "small",
    "large",
    "high",
    "low",
    "key",
    "core",
    "part",
    "take",
    "taking",
    "make",
    "making",
    "build",
    "building",
    "built",
    "lead",
    "leading",
    "own",
    "owning",
    "grow",
    "growing",
    "growth",
    "drive",
    "driving",
    "deliver",
    "delivering",
    "design",
    "designing",
    "write",
    "writing",
    "wrote",
    "run",
    "running",
    "support",
    "supporting",
    "collaborate",
    "collaborating",
    "closely",
    "range",
    "wide",
    "variety",
    "multiple",
    "various",
    "strongly",
    "encourage",
    "encouraged",
    "behind",
    "million",
    "millions",
    "thousand",
    "thousands",
    "billion",
    "billions",
    "daily",
    "every",
    "like",
    "along",
    "alongside",
    "around",
    "towards",
    "toward",
    "whole",
    "real",
    "really",
    "lot",
    "lots",
    "fast",
    "quickly",
];

/// Light stemming: possessive and plural endings.
fn stem(word: &str) -> String {
    let w = word.trim_end_matches("'s").trim_end_matches("’s");
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if n > 4
        && (w.ends_with("sses") || w.ends_with("xes") || w.ends_with("ches") || w.ends_with("shes"))
    {
        return w[..w.len() - 2].to_owned();
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_owned();
    }
    w.to_owned()
}

/// Words of a text: letters with inner `-` or `'`, lower-cased.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn is_keyword(word: &str) -> bool {
    word.chars().count() >= 3
        && word.chars().any(char::is_alphabetic)
        && !word.chars().any(|c| c.is_ascii_digit())
        && !STOP_WORDS.contains(&word)
        && !vocabulary().is_form(word)
}

/// The job's keywords: `(stem, surface form)`, most frequent first.
fn job_keywords(job: &str) -> Vec<(String, String)> {
    let v = vocabulary();
    // stem -> (count, first position, surface)
    let mut counts: BTreeMap<String, (usize, usize, String)> = BTreeMap::new();
    let mut position = 0usize;
    for line in job.lines() {
        let mut masked: Vec<u8> = line.as_bytes().to_vec();
        for m in v.scan_line(line, true) {
            for b in masked.iter_mut().take(m.end).skip(m.start) {
                *b = b' ';
            }
        }
        let masked = String::from_utf8_lossy(&masked).into_owned();
        let masked: String = masked
            .split_whitespace()
            .filter(|t| !crate::skills::is_link_token(t))
            .collect::<Vec<_>>()
            .join(" ");
        for w in words(&masked) {
            if !is_keyword(&w) {
                continue;
            }
            let s = stem(&w);
            if STOP_WORDS.contains(&s.as_str()) {
                continue;
            }
            position += 1;
            let entry = counts.entry(s).or_insert((0, position, w));
            entry.0 += 1;
        }
    }
    let mut ranked: Vec<(String, (usize, usize, String))> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.1.1.cmp(&b.1.1)));
    ranked
        .into_iter()
        .take(TOP_KEYWORDS)
        .map(|(stem, (_, _, surface))| (stem, surface))
        .collect()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    quoted.join(", ")
}

/// Score a résumé against a job description. Deterministic.
pub fn match_resume(resume: &ParsedResume, job_description: &str) -> MatchResult {
    let v = vocabulary();
    let job_text = crate::text::normalize_text(job_description);
    let job = job_skills(&job_text);
    let weights = &job.weights;

    // The résumé's skills: its list plus whatever its text mentions.
    let mut have: BTreeSet<String> = resume.skills.iter().map(|s| s.to_lowercase()).collect();
    let mut text_skills = BTreeSet::new();
    for line in resume.text.lines() {
        for m in v.scan_line(line, false) {
            text_skills.insert(m.skill);
        }
    }
    for i in v.close(&text_skills) {
        have.insert(v.name(i).to_lowercase());
    }

    let mut matched = Vec::new();
    let mut missing: Vec<(u8, String)> = Vec::new();
    let mut missing_groups: Vec<(u8, Vec<String>)> = Vec::new();
    let mut total = 0u32;
    let mut got = 0u32;
    for group in &job.groups {
        let w = group
            .iter()
            .filter_map(|s| weights.get(s))
            .copied()
            .max()
            .unwrap_or(ASKED);
        total += u32::from(w);
        let mut names: Vec<String> = group.iter().map(|&s| v.name(s).to_owned()).collect();
        sort_names(&mut names);
        let present: Vec<String> = names
            .iter()
            .filter(|n| have.contains(&n.to_lowercase()))
            .cloned()
            .collect();
        if present.is_empty() {
            missing.extend(names.iter().map(|n| (w, n.clone())));
            // "AWS (EKS, RDS, S3)" reads as AWS: the member the others imply.
            let head = group.iter().find(|&&h| {
                group
                    .iter()
                    .all(|&o| o == h || v.close(&BTreeSet::from([o])).contains(&h))
            });
            let shown = match head {
                Some(&h) if group.len() > 1 => vec![v.name(h).to_owned()],
                _ => names,
            };
            missing_groups.push((w, shown));
        } else {
            got += u32::from(w);
            matched.extend(present);
        }
    }
    sort_names(&mut matched);
    missing.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1.to_lowercase().cmp(&b.1.to_lowercase()))
    });
    missing_groups.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(a.1[0].to_lowercase().cmp(&b.1[0].to_lowercase()))
    });
    let job_names: BTreeSet<String> = weights.keys().map(|&i| v.name(i).to_lowercase()).collect();
    let mut extra: Vec<String> = resume
        .skills
        .iter()
        .filter(|s| !job_names.contains(&s.to_lowercase()))
        .cloned()
        .collect();
    sort_names(&mut extra);

    let keywords = job_keywords(&job_text);
    let resume_stems: BTreeSet<String> = words(&resume.text).map(|w| stem(&w)).collect();
    let mut matched_keywords = Vec::new();
    let mut missing_keywords = Vec::new();
    for (s, surface) in &keywords {
        if resume_stems.contains(s) {
            matched_keywords.push(surface.clone());
        } else {
            missing_keywords.push(surface.clone());
        }
    }

    let skill_coverage = if total == 0 {
        1.0
    } else {
        f64::from(got) / f64::from(total)
    };
    let keyword_coverage = if keywords.is_empty() {
        1.0
    } else {
        matched_keywords.len() as f64 / keywords.len() as f64
    };
    let raw = if total == 0 {
        100.0 * keyword_coverage
    } else {
        100.0 * (0.7 * skill_coverage + 0.3 * keyword_coverage)
    };
    let score = raw.round().clamp(0.0, 100.0) as u8;

    // Only skills the résumé names itself (not merely implied ones) can be
    // "shown in context".
    let named: Vec<String> = matched
        .iter()
        .filter(|m| text_skills.iter().any(|&i| v.name(i) == m.as_str()))
        .cloned()
        .collect();
    let suggestions = suggestions(resume, weights, &missing_groups, &named, &missing_keywords);
    MatchResult {
        score,
        skill_coverage: round3(skill_coverage),
        matched_skills: matched,
        missing_skills: missing.into_iter().map(|(_, n)| n).collect(),
        extra_skills: extra,
        keyword_coverage: round3(keyword_coverage),
        matched_keywords,
        missing_keywords,
        suggestions,
    }
}

fn suggestions(
    resume: &ParsedResume,
    weights: &BTreeMap<usize, u8>,
    missing: &[(u8, Vec<String>)],
    matched: &[String],
    missing_keywords: &[String],
) -> Vec<String> {
    let v = vocabulary();
    let mut out = Vec::new();
    let mut nice_count = 0;
    for (w, names) in missing {
        if names.len() > 1 {
            let name = names.join(" or ");
            let how = if *w == REQUIRED {
                "requires"
            } else {
                "asks for"
            };
            if *w >= ASKED {
                out.push(format!(
                    "Add evidence of {name}: the job {how} one of them and the résumé mentions none"
                ));
            } else if nice_count < 3 {
                nice_count += 1;
                out.push(format!(
                    "Mention {name} if you have used one: the job lists them as a nice-to-have"
                ));
            }
            continue;
        }
        let name = &names[0];
        match *w {
            REQUIRED => out.push(format!(
                "Add evidence of {name}: the job requires it and the résumé does not mention it"
            )),
            ASKED => out.push(format!(
                "Add evidence of {name}: the job asks for it and the résumé does not mention it"
            )),
            _ if nice_count < 3 => {
                nice_count += 1;
                out.push(format!(
                    "Mention {name} if you have used it: the job lists it as a nice-to-have"
                ));
            }
            _ => {}
        }
    }
    // Important skills that only appear in a skills list, not in any role.
    if !resume.experience.is_empty() {
        let mut in_context = BTreeSet::new();
        let prose = resume
            .experience
            .iter()
            .flat_map(|e| [e.title.as_deref(), e.description.as_deref()])
            .chain(
                resume
                    .projects
                    .iter()
                    .flat_map(|p| [Some(p.name.as_str()), p.description.as_deref()]),
            )
            .chain([resume.summary.as_deref()])
            .flatten();
        for text in prose {
            for line in text.lines() {
                for m in v.scan_line(line, false) {
                    in_context.insert(v.name(m.skill).to_lowercase());
                }
            }
        }
        let important: BTreeSet<String> = weights
            .iter()
            .filter(|(_, w)| **w >= ASKED)
            .map(|(&i, _)| v.name(i).to_lowercase())
            .collect();
        let listed_only: Vec<String> = matched
            .iter()
            .filter(|m| {
                important.contains(&m.to_lowercase()) && !in_context.contains(&m.to_lowercase())
            })
            .take(3)
            .cloned()
            .collect();
        if !listed_only.is_empty() {
            let (them, it) = if listed_only.len() == 1 {
                ("it", "it appears")
            } else {
                ("them", "they appear")
            };
            out.push(format!(
                "Show {} in context: {it} only in a skills list; add a bullet under a role or project where you used {them}",
                listed_only.join(", ")
            ));
        }
    }
    if !missing_keywords.is_empty() {
        let top: Vec<String> = missing_keywords.iter().take(5).cloned().collect();
        out.push(format!(
            "Use the job's own words where they are true for you: the résumé never mentions {}",
            quote_list(&top)
        ));
    }
    if resume.experience.is_empty() && resume.word_count > 0 {
        out.push(
            "Add a clearly headed Experience section with job titles, employers and dates so screening software can read your history"
                .to_owned(),
        );
    }
    if resume.email.is_none() {
        out.push("Add an e-mail address: the résumé has none that could be found".to_owned());
    }
    if resume.phone.is_none() {
        out.push("Add a phone number: the résumé has none that could be found".to_owned());
    }
    out.truncate(10);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_resume;

    const JOB: &str = "Senior Backend Engineer\n\nRequirements:\n- 5+ years with Go or Rust\n- Kubernetes and Docker in production\n- PostgreSQL\n\nNice to have:\n- Terraform\n- Kafka\n\nYou will build payment ledgers and reconciliation services.";

    #[test]
    fn weights_and_order() {
        let w = job_skills(JOB);
        let v = vocabulary();
        let named: BTreeMap<&str, u8> = w.weights.iter().map(|(&i, &w)| (v.name(i), w)).collect();
        assert_eq!(named.get("Go"), Some(&3));
        assert_eq!(named.get("Kubernetes"), Some(&3));
        assert_eq!(named.get("Terraform"), Some(&1));
        assert_eq!(named.get("Apache Kafka"), Some(&1));
        let r = parse_resume(
            "Jane Doe\njane@x.io\n\nExperience\nEngineer, Acme 2019 - 2021\n- Built payment services in Go with PostgreSQL\n\nSkills\nGo, PostgreSQL, Docker, Python\n",
        );
        let m = match_resume(&r, JOB);
        assert_eq!(m.matched_skills, ["Docker", "Go", "PostgreSQL"]);
        // "Go or Rust": Go is enough.
        assert_eq!(
            m.missing_skills,
            ["Kubernetes", "Apache Kafka", "Terraform"]
        );
        assert_eq!(m.extra_skills, ["Python"]);
        assert!(m.suggestions[0].starts_with("Add evidence of Kubernetes: the job requires it"));
        assert!(
            m.suggestions
                .iter()
                .any(|s| s.starts_with("Show Docker in context"))
        );
        assert!(
            m.missing_keywords.contains(&"ledgers".to_owned())
                || m.missing_keywords.contains(&"ledger".to_owned())
        );
        assert_eq!(m, match_resume(&r, JOB));
        assert!(m.score > 0 && m.score < 100);
    }

    #[test]
    fn stems() {
        assert_eq!(stem("ledgers"), "ledger");
        assert_eq!(stem("companies"), "company");
        assert_eq!(stem("business"), "business");
        assert_eq!(stem("analysis"), "analysis");
    }
}
