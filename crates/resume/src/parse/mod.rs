//! Résumé structuring: from plain text to [`ParsedResume`].
//!
//! The parser is a set of deterministic heuristics, documented where they
//! live: [`sections`] finds headings, [`contact`] the name, e-mail, phone,
//! links and location, [`entries`] the dated entries of the experience and
//! education sections, projects and certifications.

mod contact;
mod dates;
mod entries;
mod lexicon;
mod sections;
mod skill_list;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::skills::vocabulary;
use crate::text::normalize_text;
pub(crate) use sections::{Doc, SectionKind as Kind};

pub use sections::SectionKind;

/// A résumé, structured. Absent values are `None` or empty; nothing is
/// invented. Serialised as JSON with these field names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedResume {
    /// The candidate's name, as written (ALL-CAPS names are title-cased).
    pub name: Option<String>,
    /// The first e-mail address of the header or contact section.
    pub email: Option<String>,
    /// The phone number as written (whitespace collapsed).
    pub phone: Option<String>,
    /// Profile and personal links.
    pub links: Links,
    /// Where the candidate is based, when stated ("Austin, TX", "Remote").
    pub location: Option<String>,
    /// The summary/profile/objective paragraph.
    pub summary: Option<String>,
    /// Jobs, most often newest first (document order).
    pub experience: Vec<Experience>,
    /// Degrees and schools (document order).
    pub education: Vec<Education>,
    /// Canonical skill names from the vocabulary, sorted, deduplicated.
    pub skills: Vec<String>,
    /// Projects (document order).
    pub projects: Vec<Project>,
    /// Certifications and licences, one per line of that section.
    pub certifications: Vec<String>,
    /// Every recognised section with its text (document order).
    pub sections: Vec<Section>,
    /// The full normalised plain text.
    pub text: String,
    /// Words in `text` (whitespace-separated tokens with a letter or digit).
    pub word_count: usize,
}

/// Links found anywhere in the résumé, normalised to `https://` URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// A `linkedin.com` profile.
    pub linkedin: Option<String>,
    /// A `github.com` profile or repository.
    pub github: Option<String>,
    /// Any other web addresses (portfolio, blog), in order, at most five.
    pub websites: Vec<String>,
}

/// One job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experience {
    /// The organisation.
    pub employer: Option<String>,
    /// The role.
    pub title: Option<String>,
    /// `YYYY` or `YYYY-MM`.
    pub start: Option<String>,
    /// `YYYY`, `YYYY-MM`, or `present`.
    pub end: Option<String>,
    /// The lines under the entry (bullet markers removed), one per line.
    pub description: Option<String>,
}

/// One degree or school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Education {
    /// University, college or school.
    pub institution: Option<String>,
    /// The degree or qualification with its subject.
    pub degree: Option<String>,
    /// `YYYY` or `YYYY-MM`.
    pub start: Option<String>,
    /// `YYYY`, `YYYY-MM`, or `present` (a lone year is the end/graduation).
    pub end: Option<String>,
}

/// One project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Its name (the text before a `:`/`—` separator, or the header line).
    pub name: String,
    /// What follows the name.
    pub description: Option<String>,
    /// The first URL of the entry.
    pub url: Option<String>,
}

/// A section as found: its heading as written, its kind and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// The heading as written (without Markdown `#` or a trailing colon).
    pub heading: String,
    /// What the heading means.
    pub kind: SectionKind,
    /// The section's text, lines joined with `\n`.
    pub text: String,
}

/// Structure a résumé's plain text. Never fails: what cannot be found is
/// left empty. Deterministic: the same text gives the same result.
pub fn parse_resume(text: &str) -> ParsedResume {
    let text = normalize_text(text);
    let doc = Doc::new(&text);

    let sections: Vec<Section> = doc
        .sections
        .iter()
        .map(|s| Section {
            heading: s.heading.clone(),
            kind: s.kind,
            text: doc.section_text(s),
        })
        .collect();

    let contact = contact::extract(&doc);
    let summary = summary(&doc);
    // Volunteering and campus involvement are roles too (employer, title,
    // dates); they follow the jobs.
    let experience: Vec<Experience> = doc
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Experience)
        .chain(doc.sections.iter().filter(|s| s.kind == Kind::Volunteering))
        .flat_map(|s| entries::experience(&doc.section_lines(s)))
        .collect();
    let education: Vec<Education> = doc
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Education)
        .flat_map(|s| entries::education(&doc.section_lines(s)))
        .collect();
    let projects = doc
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Projects)
        .flat_map(|s| entries::projects(&doc.section_lines(s)))
        .collect();
    let certifications = doc
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Certifications)
        .flat_map(|s| entries::certifications(&doc.section_lines(s)))
        .collect();

    // Employer and school names are not skills ("Account Executive, Tableau").
    let names: Vec<&str> = experience
        .iter()
        .filter_map(|e| e.employer.as_deref())
        .chain(education.iter().filter_map(|e| e.institution.as_deref()))
        .collect();
    let mut skills = skills_of(&doc, &names);
    // Items of the skills lists that the vocabulary does not know, verbatim.
    let listed: Vec<&str> = doc
        .sections
        .iter()
        .filter(|s| s.kind == Kind::Skills)
        .flat_map(|s| doc.section_lines(s))
        .collect();
    // A word of a skill already found ("Microsoft" of "Microsoft Office"
    // written across a line break) is not another skill.
    let known: Vec<String> = skills
        .iter()
        .map(|s| format!(" {} ", s.to_lowercase()))
        .collect();
    skills.extend(
        skill_list::verbatim_items(&listed)
            .into_iter()
            .filter(|item| {
                let needle = format!(" {} ", item.to_lowercase());
                !known.iter().any(|k| k.contains(&needle))
            }),
    );
    crate::skills::sort_names(&mut skills);
    let word_count = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count();

    ParsedResume {
        name: contact.name,
        email: contact.email,
        phone: contact.phone,
        links: contact.links,
        location: contact.location,
        summary,
        experience,
        education,
        skills,
        projects,
        certifications,
        sections,
        word_count,
        text,
    }
}

/// Skills of every line but the references; skills-like sections (and
/// inline `Skills: ...` lines) let the strict forms match. A skill written
/// across a line break ("Microsoft" / "Office") is found on the pair of
/// lines; a match inside an employer or school name is not a skill.
fn skills_of(doc: &Doc<'_>, names: &[&str]) -> Vec<String> {
    let v = vocabulary();
    let mut found = BTreeSet::new();
    for (i, line) in doc.lines.iter().enumerate() {
        let kind = doc.kind_of_line(i);
        if kind == Some(Kind::References) || line.is_empty() {
            continue;
        }
        let context = matches!(kind, Some(Kind::Skills) | Some(Kind::Languages));
        let skip: Vec<(usize, usize)> = names
            .iter()
            .filter(|n| n.len() >= 3)
            .flat_map(|n| line.match_indices(n).map(|(s, m)| (s, s + m.len())))
            .collect();
        for m in v.scan_line(line, context) {
            if !skip.iter().any(|&(s, e)| m.start >= s && m.end <= e) {
                found.insert(m.skill);
            }
        }
        if let Some(next) = doc.lines.get(i + 1).filter(|n| !n.is_empty()) {
            let joined = format!("{line} {next}");
            let cut = line.len();
            for m in v.scan_line(&joined, context) {
                if m.start < cut && m.end > cut + 1 {
                    found.insert(m.skill);
                }
            }
        }
    }
    v.names(&found)
}

/// The summary section, else a long first paragraph of the header.
fn summary(doc: &Doc<'_>) -> Option<String> {
    if let Some(s) = doc.sections.iter().find(|s| s.kind == Kind::Summary) {
        let text = join_paragraph(&doc.section_lines(s));
        if !text.is_empty() {
            return Some(text);
        }
    }
    let preamble = doc.preamble_lines();
    let long: Vec<&str> = preamble
        .iter()
        .copied()
        .skip_while(|l| l.split_whitespace().count() < 12)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    let text = join_paragraph(&long);
    (text.split_whitespace().count() >= 15).then_some(text)
}

fn join_paragraph(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        for word in line.split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_resume() {
        let text = "JOSÉ ÁLVAREZ\nSenior Backend Engineer\nMadrid, Spain | jose.alvarez@example.es | +34 612 345 678\nlinkedin.com/in/josealvarez · github.com/jalvarez\n\nSummary\nBackend engineer with eight years of experience building payment systems in Go and Java for European banks.\n\nExperience\nSenior Backend Engineer — Banco Ejemplo\tJan 2020 – Present\n• Built payment services in Go on Kubernetes\n• Cut p99 latency by 40%\nSoftware Engineer, Acme Ltd (2016 - 2019)\n- Java and PostgreSQL\n\nEducation\nUniversidad Politécnica de Madrid\nBSc Computer Science, 2012 – 2016\n\nSkills\nGo, Java, PostgreSQL, Docker, Kubernetes, R\n";
        let r = parse_resume(text);
        assert_eq!(r.name.as_deref(), Some("José Álvarez"));
        assert_eq!(r.email.as_deref(), Some("jose.alvarez@example.es"));
        assert_eq!(r.phone.as_deref(), Some("+34 612 345 678"));
        assert_eq!(r.location.as_deref(), Some("Madrid, Spain"));
        assert_eq!(
            r.links.linkedin.as_deref(),
            Some("https://linkedin.com/in/josealvarez")
        );
        assert_eq!(
            r.links.github.as_deref(),
            Some("https://github.com/jalvarez")
        );
        assert_eq!(
            r.skills,
            [
                "Docker",
                "Go",
                "Java",
                "Kubernetes",
                "Payments",
                "PostgreSQL",
                "R"
            ]
        );
        assert_eq!(r.experience.len(), 2, "{:#?}", r.experience);
        assert_eq!(
            r.experience[0].title.as_deref(),
            Some("Senior Backend Engineer")
        );
        assert_eq!(r.experience[0].employer.as_deref(), Some("Banco Ejemplo"));
        assert_eq!(r.experience[0].start.as_deref(), Some("2020-01"));
        assert_eq!(r.experience[0].end.as_deref(), Some("present"));
        assert_eq!(r.experience[1].employer.as_deref(), Some("Acme Ltd"));
        assert_eq!(r.experience[1].start.as_deref(), Some("2016"));
        assert_eq!(r.education.len(), 1, "{:#?}", r.education);
        assert_eq!(
            r.education[0].institution.as_deref(),
            Some("Universidad Politécnica de Madrid")
        );
        assert_eq!(
            r.education[0].degree.as_deref(),
            Some("BSc Computer Science")
        );
        assert_eq!(r.education[0].end.as_deref(), Some("2016"));
        assert!(
            r.summary
                .as_deref()
                .is_some_and(|s| s.starts_with("Backend engineer"))
        );
        let kinds: Vec<SectionKind> = r.sections.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [
                SectionKind::Summary,
                SectionKind::Experience,
                SectionKind::Education,
                SectionKind::Skills
            ]
        );
        let json = serde_json::to_string(&r).unwrap_or_default();
        let back: ParsedResume = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, r);
    }

    #[test]
    fn nothing_to_find() {
        let r = parse_resume("");
        assert_eq!(r, ParsedResume::default());
        let r = parse_resume("lorem ipsum dolor sit amet");
        assert_eq!(r.name, None);
        assert_eq!(r.word_count, 5);
    }
}
