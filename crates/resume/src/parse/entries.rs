//! Entries of the experience, education, projects and certifications
//! sections.
//!
//! **Experience.** An entry starts at a non-bullet line with a date range
//! ("Jan 2020 – Present", "2016-2019", "03/2019 - 06/2021"). When that line
//! holds fewer than two fields (title, employer) besides the dates, the one
//! or two header-like lines just above it (short, not bullets, no final
//! period) and, if still short, the one below it join the header. The
//! header is split into fields on `|`, tabs, `—`, `–`, ` - `, ` at `, ` @ `,
//! commas and parentheses; the field with a job-title word ("Engineer",
//! "Manager", "Head", ...) is the title, the first other field that is not a
//! place or an employment type ("Remote", "Full-time") is the employer (a
//! field with a company word such as "Ltd" or "Labs" is preferred). The
//! lines up to the next entry are its description. Without any date range
//! the section is split on blank lines, first line as header.
//!
//! **Education.** Each line's fields are checked for a degree ("BSc",
//! "Master of Science", "PhD", ...) and an institution ("University",
//! "College", "Institute", known acronyms); a second degree or a second
//! institution starts a new entry; the first dates seen belong to the entry
//! (a lone year is its end).
//!
//! **Projects.** A short non-bullet line, or a line `Name — description` /
//! `Name: description`, starts a project; other lines describe it; its first
//! URL is kept. **Certifications** are the section's lines.

use super::dates::{LineDates, line_dates, without_dates};
use super::lexicon::{
    has_company_word, has_title_word, is_company_suffix, is_degree, is_institution, is_location,
    is_noise_field,
};
use super::{Education, Experience, Project};
use crate::skills::is_link_token;

const BULLETS: &[char] = &[
    '-', '*', '•', '▪', '◦', '●', '‣', '–', '○', '■', '►', '✓', '➢', '>', '·', '+',
];

pub(crate) fn is_bullet(line: &str) -> bool {
    let mut chars = line.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some(n)) if BULLETS.contains(&c) => {
            n == ' ' || n == '\t' || !n.is_ascii_punctuation()
        }
        _ => false,
    }
}

pub(crate) fn strip_bullet(line: &str) -> &str {
    if is_bullet(line) {
        line.trim_start_matches(BULLETS).trim_start()
    } else {
        line
    }
}

fn word_count(line: &str) -> usize {
    line.split_whitespace().count()
}

/// A line that can be part of an entry header.
fn header_like(line: &str) -> bool {
    !line.is_empty()
        && !is_bullet(line)
        && word_count(line) <= 10
        && line.chars().count() <= 100
        && !line.ends_with('.')
        && !line_dates(line).is_range
}

/// Split a header into fields.
pub(crate) fn fields_of(text: &str) -> Vec<String> {
    split_fields(text, true)
}

/// Split a header into fields; `at` also splits on " at " ("Engineer at
/// Acme"), which education headers must not do ("University of Texas at
/// Austin").
fn split_fields(text: &str, at: bool) -> Vec<String> {
    let mut s = format!(" {text} ");
    for sep in [" at ", " @ ", " — ", " – ", " - ", " | ", " / "] {
        if sep == " at " && !at {
            continue;
        }
        s = s.replace(sep, "\t");
    }
    let parts: Vec<&str> = s
        .split(['\t', '|', '•', '·', ',', '(', ')', '[', ']', ';', '—', '–'])
        .map(|p| {
            p.trim()
                .trim_matches(|c: char| matches!(c, '*' | '_' | '#' | ':' | '-'))
                .trim()
        })
        .collect();
    let mut fields: Vec<String> = Vec::new();
    for p in parts {
        if !p.chars().any(char::is_alphabetic) {
            continue;
        }
        if is_company_suffix(p)
            && let Some(last) = fields.last_mut()
        {
            last.push_str(", ");
            last.push_str(p);
            continue;
        }
        fields.push(p.to_owned());
    }
    fields
}

/// `(title, employer)` from header fields.
fn title_and_employer(fields: &[String]) -> (Option<String>, Option<String>) {
    let usable: Vec<(usize, &String)> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_noise_field(f) && !is_location(f))
        .collect();
    let title = usable
        .iter()
        .find(|(_, f)| has_title_word(f) && !has_company_word(f))
        .or_else(|| usable.iter().find(|(_, f)| has_title_word(f)))
        .map(|(i, _)| *i);
    let others: Vec<&(usize, &String)> = usable.iter().filter(|(i, _)| Some(*i) != title).collect();
    let employer = others
        .iter()
        .find(|(_, f)| has_company_word(f))
        .or_else(|| others.first())
        .map(|(i, _)| *i);
    let title = title.or_else(|| {
        others
            .iter()
            .map(|(i, _)| *i)
            .find(|i| Some(*i) != employer)
    });
    (
        title.and_then(|i| fields.get(i).cloned()),
        employer.and_then(|i| fields.get(i).cloned()),
    )
}

struct Header {
    start: usize,
    end: usize,
    dates: LineDates,
    fields: Vec<String>,
}

fn description(lines: &[&str]) -> Option<String> {
    // With bullets, a non-bullet line continues the bullet above it (a
    // wrapped line); without bullets, lines are kept as they are.
    let bulleted = lines.iter().any(|l| is_bullet(l));
    let mut items: Vec<String> = Vec::new();
    let mut continues = false;
    for line in lines.iter().map(|l| l.trim()) {
        if line.is_empty() {
            continues = false;
            continue;
        }
        let bullet = is_bullet(line);
        let text = strip_bullet(line).trim();
        match items.last_mut() {
            Some(last) if bulleted && !bullet && continues => {
                last.push(' ');
                last.push_str(text);
            }
            _ => items.push(text.to_owned()),
        }
        continues = bullet || continues;
    }
    (!items.is_empty()).then(|| items.join("\n"))
}

/// Jobs of an experience section.
pub(crate) fn experience(lines: &[&str]) -> Vec<Experience> {
    let n = lines.len();
    let dated: Vec<usize> = (0..n)
        .filter(|&i| {
            let l = lines[i];
            !l.is_empty() && !is_bullet(l) && word_count(l) <= 18 && line_dates(l).is_range
        })
        .collect();
    if dated.is_empty() {
        return undated_blocks(lines);
    }
    let mut headers: Vec<Header> = Vec::new();
    let mut free_from = 0usize;
    for &d in &dated {
        if d < free_from {
            continue;
        }
        let dates = line_dates(lines[d]);
        let mut fields = fields_of(&without_dates(lines[d], &dates));
        let mut start = d;
        let mut end = d;
        while fields.len() < 2
            && start > free_from
            && d - start < 2
            && header_like(lines[start - 1])
        {
            start -= 1;
            let mut above = fields_of(lines[start]);
            above.append(&mut fields);
            fields = above;
        }
        if fields.len() < 2
            && d + 1 < n
            && header_like(lines[d + 1])
            && dated.binary_search(&(d + 1)).is_err()
        {
            end = d + 1;
            fields.extend(fields_of(lines[d + 1]));
        }
        headers.push(Header {
            start,
            end,
            dates,
            fields,
        });
        free_from = end + 1;
    }
    let mut out = Vec::new();
    for (k, h) in headers.iter().enumerate() {
        let next = headers.get(k + 1).map_or(n, |x| x.start);
        let (title, employer) = title_and_employer(&h.fields);
        out.push(Experience {
            employer,
            title,
            start: h.dates.start.clone(),
            end: h.dates.end.clone(),
            description: description(lines.get(h.end + 1..next).unwrap_or(&[])),
        });
    }
    out
}

/// Entries separated by blank lines, the first line of each as header.
fn undated_blocks(lines: &[&str]) -> Vec<Experience> {
    let mut out = Vec::new();
    for block in lines.split(|l| l.is_empty()) {
        let Some(first) = block.first() else { continue };
        if is_bullet(first) || !header_like(first) {
            continue;
        }
        let (title, employer) = title_and_employer(&fields_of(first));
        if title.is_none() && employer.is_none() {
            continue;
        }
        out.push(Experience {
            employer,
            title,
            start: None,
            end: None,
            description: description(&block[1..]),
        });
    }
    out
}

/// Degrees of an education section.
pub(crate) fn education(lines: &[&str]) -> Vec<Education> {
    let mut out = Vec::new();
    let mut current = Education::default();
    let has_any = |e: &Education| e.institution.is_some() || e.degree.is_some();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let bullet = is_bullet(line);
        let dates = line_dates(line);
        let text = without_dates(strip_bullet(line), &line_dates(strip_bullet(line)));
        let fields = split_fields(&text, false);
        let institution = fields.iter().find(|f| is_institution(f)).cloned();
        let degree = fields
            .iter()
            .find(|f| is_degree(f) && !is_institution(f))
            .cloned()
            .or_else(|| {
                fields
                    .iter()
                    .find(|f| is_degree(f))
                    .cloned()
                    .filter(|_| institution.is_none())
            });
        if bullet && institution.is_none() && degree.is_none() {
            continue;
        }
        let starts_new = (institution.is_some() && current.institution.is_some())
            || (degree.is_some() && current.degree.is_some());
        if starts_new && has_any(&current) {
            out.push(std::mem::take(&mut current));
        }
        if current.institution.is_none() {
            current.institution = institution;
        }
        if current.degree.is_none() {
            current.degree = degree;
        }
        if !dates.is_empty() && current.start.is_none() && current.end.is_none() {
            current.start = dates.start;
            current.end = dates.end;
        }
    }
    if has_any(&current) {
        out.push(current);
    }
    out
}

/// Normalise a link token to an `https://` URL.
pub(crate) fn normalise_url(token: &str) -> String {
    let t = token.trim_matches(|c: char| {
        matches!(
            c,
            '(' | ')' | '<' | '>' | '[' | ']' | ',' | ';' | '"' | '\'' | '.'
        )
    });
    let t = t.trim_end_matches('/');
    if t.contains("://") {
        t.to_owned()
    } else {
        format!("https://{t}")
    }
}

fn first_url(lines: &[&str]) -> Option<String> {
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .find(|t| is_link_token(t) && !t.contains('@'))
        .map(normalise_url)
}

fn without_links(text: &str) -> String {
    let kept: Vec<&str> = text
        .split_whitespace()
        .filter(|t| !is_link_token(t))
        .collect();
    kept.join(" ")
        .trim_end_matches(['(', '|', '-', '–', '—', ':'])
        .trim()
        .replace("()", "")
}

/// `(name, rest)` when a line reads `Name — rest` with a short name.
fn split_name(line: &str) -> Option<(String, String)> {
    let seps = [" — ", " – ", " - ", ": ", " | "];
    let (pos, sep) = seps
        .iter()
        .filter_map(|s| line.find(s).map(|p| (p, *s)))
        .min_by_key(|(p, _)| *p)?;
    let name = line[..pos]
        .trim()
        .trim_matches(|c: char| matches!(c, '*' | '_'))
        .trim();
    let rest = line[pos + sep.len()..].trim();
    (!name.is_empty() && word_count(name) <= 6).then(|| (name.to_owned(), rest.to_owned()))
}

/// Projects of a projects section.
pub(crate) fn projects(lines: &[&str]) -> Vec<Project> {
    let mut out: Vec<(Project, Vec<String>, bool)> = Vec::new();
    for line in lines.iter().filter(|l| !l.is_empty()) {
        let bullet = is_bullet(line);
        let text = strip_bullet(line).trim();
        let split = split_name(text);
        let list_style = out.last().is_none_or(|(_, _, from_split)| *from_split);
        let new_header = !bullet && header_like(text);
        if new_header || (split.is_some() && list_style) {
            let (name, rest, from_split) = match (&split, new_header) {
                (Some((n, r)), _) => (n.clone(), r.clone(), !new_header || !r.is_empty()),
                (None, _) => (text.to_owned(), String::new(), false),
            };
            let mut desc = Vec::new();
            if !rest.is_empty() {
                desc.push(rest);
            }
            let name = without_links(&name);
            let name = if name.is_empty() {
                text.to_owned()
            } else {
                name
            };
            out.push((
                Project {
                    name,
                    description: None,
                    url: first_url(&[text]),
                },
                desc,
                from_split,
            ));
        } else if let Some((project, desc, _)) = out.last_mut() {
            if project.url.is_none() {
                project.url = first_url(&[text]);
            }
            desc.push(text.to_owned());
        }
    }
    out.into_iter()
        .map(|(mut p, desc, _)| {
            let joined: Vec<String> = desc
                .iter()
                .map(|d| without_links(d))
                .filter(|d| !d.is_empty())
                .collect();
            p.description = (!joined.is_empty()).then(|| joined.join("\n"));
            p
        })
        .collect()
}

/// Certifications: one per line (bullet markers removed), deduplicated.
pub(crate) fn certifications(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let t = strip_bullet(line).trim();
        if t.chars().filter(|c| c.is_alphabetic()).count() < 2 {
            continue;
        }
        let t = t.replace('\t', " — ");
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn experience_layouts() {
        // Title — Employer, dates on the same line.
        let a = experience(&[
            "Senior Engineer — Acme Corp\tJan 2020 – Present",
            "• Built X",
            "• Ran Y",
        ]);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].title.clone(), a[0].employer.clone()),
            (s("Senior Engineer"), s("Acme Corp"))
        );
        assert_eq!(a[0].description, s("Built X\nRan Y"));
        // Employer line above "Title | dates".
        let b = experience(&[
            "Globex, Inc., London",
            "Data Analyst | 2018 – 2020",
            "- SQL reports",
            "Initech",
            "Intern | 2017 - 2018",
        ]);
        assert_eq!(b.len(), 2, "{b:#?}");
        assert_eq!(
            (b[0].title.clone(), b[0].employer.clone()),
            (s("Data Analyst"), s("Globex, Inc."))
        );
        assert_eq!(
            (b[1].title.clone(), b[1].employer.clone()),
            (s("Intern"), s("Initech"))
        );
        // Title line, then "Employer | dates".
        let c = experience(&[
            "Product Manager",
            "Hooli | Mar 2019 - Jun 2021",
            "Shipped things.",
        ]);
        assert_eq!(
            (c[0].title.clone(), c[0].employer.clone()),
            (s("Product Manager"), s("Hooli"))
        );
        assert_eq!(
            (c[0].start.clone(), c[0].end.clone()),
            (s("2019-03"), s("2021-06"))
        );
        // Markdown: heading, then dates alone.
        let e = experience(&[
            "Backend Developer, Pied Piper",
            "Jan 2015 – Dec 2016",
            "- Compression",
        ]);
        assert_eq!(
            (e[0].title.clone(), e[0].employer.clone()),
            (s("Backend Developer"), s("Pied Piper"))
        );
        // Software Engineer at X (dates)
        let f = experience(&["Software Engineer at Stripe (2019–2021)", "Payments."]);
        assert_eq!(
            (f[0].title.clone(), f[0].employer.clone()),
            (s("Software Engineer"), s("Stripe"))
        );
    }

    #[test]
    fn education_entries() {
        let e = education(&[
            "University of Leeds",
            "BSc Computer Science, 2012 – 2015",
            "- Coursework: algorithms",
            "MSc Artificial Intelligence — University of Edinburgh, 2016",
        ]);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_eq!(e[0].institution, s("University of Leeds"));
        assert_eq!(e[0].degree, s("BSc Computer Science"));
        assert_eq!(
            (e[0].start.clone(), e[0].end.clone()),
            (s("2012"), s("2015"))
        );
        assert_eq!(e[1].institution, s("University of Edinburgh"));
        assert_eq!(e[1].degree, s("MSc Artificial Intelligence"));
        assert_eq!(e[1].end, s("2016"));
    }

    #[test]
    fn project_entries() {
        let p = projects(&[
            "- tinydb — a key-value store in Rust (github.com/jdoe/tinydb)",
            "- Weather bot: Slack bot for forecasts",
        ]);
        assert_eq!(p.len(), 2, "{p:#?}");
        assert_eq!(p[0].name, "tinydb");
        assert_eq!(p[0].url, s("https://github.com/jdoe/tinydb"));
        assert_eq!(p[0].description, s("a key-value store in Rust"));
        assert_eq!(p[1].name, "Weather bot");
        let q = projects(&["Resume Parser", "- Parses PDFs", "- Written in Rust"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].description, s("Parses PDFs\nWritten in Rust"));
    }
}
