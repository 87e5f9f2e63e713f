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

/// Words that stay lower case in a heading-style line.
const MINOR_WORDS: &[&str] = &[
    "of", "and", "the", "for", "in", "at", "with", "to", "on", "by", "a", "an", "de", "la", "del",
    "da", "der", "van", "von", "und", "et", "y", "du", "le", "les", "di", "as", "or", "from",
];

/// Share of the words (three letters or more, minor words left out) that
/// start with a capital: job and employer lines are in title case or
/// capitals, description lines are sentences.
fn capitalised_share(line: &str) -> f64 {
    let mut words = 0usize;
    let mut caps = 0usize;
    for w in line.split_whitespace() {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        let Some(first) = w.chars().next() else {
            continue;
        };
        if !first.is_alphabetic() {
            continue;
        }
        let lower = w.to_lowercase();
        if w.chars().count() < 3 && !first.is_uppercase() || MINOR_WORDS.contains(&lower.as_str()) {
            continue;
        }
        words += 1;
        if first.is_uppercase() {
            caps += 1;
        }
    }
    if words == 0 {
        return 0.0;
    }
    caps as f64 / words as f64
}

/// A line that can be part of an entry header: short, not a bullet, not a
/// sentence, in title case (or naming a role or a company).
fn header_like(line: &str) -> bool {
    !line.is_empty()
        && !is_bullet(line)
        && word_count(line) <= 10
        && line.chars().count() <= 100
        && (!line.ends_with('.') || ends_with_abbreviation(line))
        && !line.ends_with(',')
        && !line.contains(": ")
        && !line_dates(line).is_range
        && line.chars().any(char::is_alphabetic)
        && (capitalised_share(line) >= 0.6 || has_title_word(line) && word_count(line) <= 6)
}

/// `Global Payments Inc.`, `Acme Co.`, `B.S.`: a final period that ends an
/// abbreviation, not a sentence.
fn ends_with_abbreviation(line: &str) -> bool {
    let last = line.split_whitespace().next_back().unwrap_or("");
    let core = last.trim_end_matches('.');
    is_company_suffix(last)
        || core.contains('.')
        || (core.chars().count() <= 3 && core.chars().next().is_some_and(char::is_uppercase))
}

/// Split a header into fields.
pub(crate) fn fields_of(text: &str) -> Vec<String> {
    split_fields(text, true)
}

/// Split a header into fields; `at` also splits on " at " ("Engineer at
/// Acme"), which education headers must not do ("University of Texas at
/// Austin"). Places ("Sunnyvale, CA", "New Orleans, LA") are left out,
/// whole or as comma-separated parts; a parenthesis stays with its field
/// ("Software Engineer (Front-End)").
fn split_fields(text: &str, at: bool) -> Vec<String> {
    let mut s = format!(" {text} ")
        .replace("(\t)", "\t")
        .replace("[\t]", "\t");
    for sep in [" at ", " @ ", " — ", " – ", " - ", " | "] {
        if sep == " at " && !at {
            continue;
        }
        s = s.replace(sep, "\t");
    }
    let place = place_phrase;
    let clean = |p: &str| -> String {
        let p = p.replace("()", "").replace("( )", "");
        p.trim()
            .trim_matches(|c: char| matches!(c, '*' | '_' | '#' | ':' | '-' | '/' | '–' | '—'))
            .trim()
            .trim_end_matches('(')
            .trim_start_matches(')')
            .trim()
            .to_owned()
    };
    let mut fields: Vec<String> = Vec::new();
    for segment in s.split(['\t', '|', '•', '·', ';', '—', '–', '[', ']']) {
        let segment = clean(segment);
        // A whole segment is a place only with at most one comma ("Pomona,
        // CA"); "LionLike MindState, Pomona, CA" is an employer and a place.
        if segment.is_empty() || segment.matches(',').count() <= 1 && place(&segment) {
            continue;
        }
        let parts: Vec<String> = comma_parts(&segment)
            .into_iter()
            .map(|p| clean(&p))
            .collect();
        // "New Orleans, LA", "Mountain View, CA, USA": places, found from
        // the right so that "Gilmore Financial, New Orleans, LA" keeps its
        // employer.
        let mut skip = vec![false; parts.len()];
        for i in (1..parts.len()).rev() {
            if !skip[i] && place(&format!("{}, {}", parts[i - 1], parts[i])) {
                skip[i] = true;
                skip[i - 1] = true;
            }
        }
        for (i, p) in parts.iter().enumerate() {
            if place(p) {
                skip[i] = true;
            }
        }
        // "Mountain View" before a consumed "CA": the city of that place.
        for i in (0..parts.len().saturating_sub(1)).rev() {
            let code = parts[i + 1].trim();
            if !skip[i]
                && skip[i + 1]
                && code.len() == 2
                && code.chars().all(|c| c.is_ascii_uppercase())
                && place(&format!("{}, {}", parts[i], code))
            {
                skip[i] = true;
            }
        }
        for (p, skipped) in parts.iter().zip(skip) {
            if skipped || !p.chars().any(char::is_alphabetic) {
                continue;
            }
            if is_company_suffix(p)
                && let Some(last) = fields.last_mut()
            {
                last.push_str(", ");
                last.push_str(p);
                continue;
            }
            fields.push(p.clone());
        }
    }
    fields
}

/// A place in a header: "Sunnyvale, CA", "Munich", "College Station, TX"
/// (a company word before a state code is still a city), but not
/// "Globex, Inc., London" or "Siemens AG, Munich" (an employer and a city).
fn place_phrase(p: &str) -> bool {
    if !is_location(p) {
        return false;
    }
    let parts: Vec<&str> = p.split(',').map(str::trim).collect();
    if parts.iter().any(|x| is_company_suffix(x)) {
        return false;
    }
    let coded = parts.last().is_some_and(|last| {
        (2..=3).contains(&last.len()) && last.chars().all(|c| c.is_ascii_uppercase())
    });
    parts.len() < 2 || coded || !parts.first().is_some_and(|f| has_company_word(f))
}

/// A segment split on commas outside parentheses.
fn comma_parts(segment: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in segment.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// How strongly a field reads as a job title: 2 when its last word is a
/// title word ("Senior Software Engineer"), 1 with one elsewhere ("Head of
/// Data"), 0 without.
fn title_score(field: &str) -> u8 {
    if !has_title_word(field) {
        return 0;
    }
    let last = field
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .rfind(|w| !w.is_empty() && !w.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or("");
    if has_title_word(last) { 2 } else { 1 }
}

/// `(title, employer)` from header fields; `line_of` gives each field's
/// header line, so that an employer continued on its line ("Enactus,
/// University of La Verne") is kept whole.
fn title_and_employer(fields: &[String], line_of: &[usize]) -> (Option<String>, Option<String>) {
    let usable: Vec<(usize, &String)> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| !is_noise_field(f) && !is_location(f))
        .collect();
    let title = usable
        .iter()
        .filter(|(_, f)| title_score(f) > 0)
        .max_by_key(|(i, f)| (title_score(f), !has_company_word(f), std::cmp::Reverse(*i)))
        .map(|(i, _)| *i);
    let others: Vec<&(usize, &String)> = usable.iter().filter(|(i, _)| Some(*i) != title).collect();
    let employer = others
        .iter()
        .find(|(_, f)| has_company_word(f) && title_score(f) == 0)
        .or_else(|| others.first())
        .map(|(i, _)| *i);
    let title = title.or_else(|| {
        others
            .iter()
            .map(|(i, _)| *i)
            .find(|i| Some(*i) != employer)
    });
    let mut employer_text = employer.and_then(|i| fields.get(i).cloned());
    // A student organisation before its university: "Enactus, University of
    // La Verne".
    if let (Some(e), Some(text)) = (employer, employer_text.as_mut())
        && e > 0
        && Some(e - 1) != title
        && is_institution(text)
        && line_of
            .get(e - 1)
            .is_some_and(|l| Some(l) == line_of.get(e))
        && let Some(before) = fields.get(e - 1)
        && title_score(before) == 0
        && !has_company_word(before)
        && !is_noise_field(before)
    {
        *text = format!("{before}, {text}");
    }
    if let (Some(e), Some(text)) = (employer, employer_text.as_mut()) {
        let next = e + 1;
        if Some(next) != title
            && line_of.get(next).is_some_and(|l| Some(l) == line_of.get(e))
            && let Some(f) = fields.get(next)
            && title_score(f) == 0
            && (is_institution(f) || has_company_word(f))
        {
            text.push_str(", ");
            text.push_str(f);
        }
    }
    (title.and_then(|i| fields.get(i).cloned()), employer_text)
}

/// A candidate header: (quality, preference, first line, last line,
/// (fields, line of each field)).
type HeaderOption = (u8, u8, usize, usize, (Vec<String>, Vec<usize>));

struct Header {
    start: usize,
    end: usize,
    dates: LineDates,
    fields: Vec<String>,
    line_of: Vec<usize>,
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

/// Whether a line anchors an entry: a date range, or a single date at the
/// start or end of a short line (`Data Analysis Intern` and `Summer 2017` a tab apart).
fn anchor_dates(line: &str) -> Option<LineDates> {
    if line.is_empty() || is_bullet(line) || word_count(line) > 18 {
        return None;
    }
    let dates = line_dates(line);
    if dates.is_range {
        return Some(dates);
    }
    // A single date anchors only a structured line (a tab, `|`, a bullet
    // separator or parentheses set it apart) or stands alone: "Promoted to
    // lead in 2019" and "Employee of the Month, 2019" are not entries.
    let &(s, e) = dates.spans.first()?;
    let before = line.get(..s).unwrap_or("");
    let after = line.get(e..).unwrap_or("");
    let rest_words = word_count(&without_all_dates(line));
    let alone = !without_all_dates(line).chars().any(char::is_alphabetic);
    let structured = line.contains(['\t', '|', '•', '·']);
    let first_atom = super::dates::atoms(line).first().map_or(s, |a| a.start);
    let set_apart = line
        .get(..first_atom)
        .unwrap_or("")
        .trim_end_matches(' ')
        .ends_with(['\t', '|', '•', '·', '(', '–', '—'])
        || before.trim_end().ends_with('(');
    let at_edge =
        !after.chars().any(char::is_alphabetic) || !before.chars().any(char::is_alphabetic);
    let ok = alone || (structured && at_edge) || set_apart;
    (ok && rest_words <= 8 && !line.trim_end().ends_with('.')).then_some(dates)
}

/// The line without any of its dates (`YMCA, Pomona, CA` then `Summer 2013, 2014`).
fn without_all_dates(line: &str) -> String {
    let spans: Vec<(usize, usize)> = super::dates::atoms(line)
        .iter()
        .map(|a| (a.start, a.end))
        .collect();
    let dates = LineDates {
        spans,
        ..LineDates::default()
    };
    without_dates(line, &dates)
}

/// Date ranges printed over two lines in a left gutter (moderncv: `June
/// 2022 – Software Engineer…` / `Present Developing…`) joined back.
fn rejoin_split_ranges(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    for i in 0..out.len().saturating_sub(1) {
        let line = out[i].clone();
        let found = super::dates::atoms(&line);
        let Some(first) = found.first() else { continue };
        if first.start != 0 || found.len() > 1 || line_dates(&line).is_range {
            continue;
        }
        let rest = line.get(first.end..).unwrap_or("").trim_start();
        let Some(after_dash) = rest
            .strip_prefix('–')
            .or_else(|| rest.strip_prefix('-'))
            .or_else(|| rest.strip_prefix('—'))
        else {
            continue;
        };
        let next = out[i + 1].clone();
        let next_atoms = super::dates::atoms(&next);
        let Some(n) = next_atoms.first().filter(|a| a.start == 0) else {
            continue;
        };
        let (Some(date), Some(end)) = (line.get(..first.end), next.get(..n.end)) else {
            continue;
        };
        out[i] = format!("{date} – {end}\t{}", after_dash.trim());
        out[i + 1] = next.get(n.end..).unwrap_or("").trim().to_owned();
    }
    out
}

/// Jobs of an experience section.
///
/// Each anchor line (dates) takes the header-like lines next to it: none
/// when its own fields already name a role and an employer, else those
/// below it (`Title  dates` / `Employer  place`) or above it (`Title` /
/// `Employer` / `dates  place`, possibly after a blank line), whichever
/// gives a role and an employer, below first when the anchor line has a
/// field of its own.
pub(crate) fn experience(lines: &[&str]) -> Vec<Experience> {
    let owned = rejoin_split_ranges(lines);
    let lines: Vec<&str> = owned.iter().map(String::as_str).collect();
    let n = lines.len();
    let anchors: Vec<(usize, LineDates)> = (0..n)
        .filter_map(|i| anchor_dates(lines[i]).map(|d| (i, d)))
        .collect();
    if !anchors.iter().any(|(_, d)| d.is_range) {
        return undated_blocks(&lines);
    }
    let is_anchor = |i: usize| anchors.binary_search_by_key(&i, |(a, _)| *a).is_ok();
    let mut headers: Vec<Header> = Vec::new();
    let mut free_from = 0usize;
    for (d, dates) in &anchors {
        let d = *d;
        if d < free_from {
            continue;
        }
        let own = fields_of(&without_all_dates(lines[d]));
        // Lines above: at most two, one blank line allowed right above.
        let mut above: Vec<usize> = Vec::new();
        let mut j = d;
        let mut blank_skipped = false;
        while j > free_from && above.len() < 2 {
            j -= 1;
            let l = lines[j];
            if l.is_empty() && above.is_empty() && !blank_skipped {
                blank_skipped = true;
                continue;
            }
            if !header_like(l) || is_anchor(j) {
                break;
            }
            above.insert(0, j);
        }
        let mut below: Vec<usize> = Vec::new();
        let mut j = d + 1;
        while j < n && below.len() < 2 && header_like(lines[j]) && !is_anchor(j) {
            below.push(j);
            j += 1;
        }
        let build = |before: &[usize], after: &[usize]| {
            let mut fields = Vec::new();
            let mut line_of = Vec::new();
            for &i in before {
                for f in fields_of(lines[i]) {
                    fields.push(f);
                    line_of.push(i);
                }
            }
            for f in &own {
                fields.push(f.clone());
                line_of.push(d);
            }
            for &i in after {
                for f in fields_of(lines[i]) {
                    fields.push(f);
                    line_of.push(i);
                }
            }
            (fields, line_of)
        };
        let quality = |fields: &[String]| {
            let usable: Vec<&String> = fields
                .iter()
                .filter(|f| !is_noise_field(f) && !is_location(f))
                .collect();
            let titled = usable.iter().any(|f| title_score(f) > 0);
            u8::from(titled) * 2 + u8::from(usable.len() >= 2)
        };
        let alone = build(&[], &[]);
        let (mut start, mut end, mut chosen) = (d, d, alone);
        if quality(&chosen.0) < 3 {
            // Grow below one line at a time, above likewise; keep the best.
            let mut options: Vec<HeaderOption> = Vec::new();
            for k in 1..=below.len() {
                let c = build(&[], &below[..k]);
                let q = quality(&c.0);
                let pref = if own.is_empty() { 0 } else { 1 };
                options.push((q, pref, d, below[k - 1], c));
                if q >= 3 {
                    break;
                }
            }
            for k in 1..=above.len() {
                let from = above.len() - k;
                let c = build(&above[from..], &[]);
                let q = quality(&c.0);
                let pref = if own.is_empty() { 1 } else { 0 };
                options.push((q, pref, above[from], d, c));
                if q >= 3 {
                    break;
                }
            }
            let base = quality(&chosen.0);
            if let Some(best) = options
                .into_iter()
                .filter(|o| o.0 > base)
                .max_by_key(|o| (o.0, o.1))
            {
                start = best.2;
                end = best.3;
                chosen = best.4;
            }
        }
        headers.push(Header {
            start,
            end,
            dates: dates.clone(),
            fields: chosen.0,
            line_of: chosen.1,
        });
        free_from = end + 1;
    }
    let mut out = Vec::new();
    for (k, h) in headers.iter().enumerate() {
        let next = headers.get(k + 1).map_or(n, |x| x.start);
        let (title, employer) = title_and_employer(&h.fields, &h.line_of);
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
        let fields = fields_of(first);
        let line_of = vec![0; fields.len()];
        let (title, employer) = title_and_employer(&fields, &line_of);
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
        // A field set apart by a tab or `|` may name a school the word lists
        // do not know ("UC Berkeley | 2019", "M.Sc.<TAB>Wonderland").
        let strong = line.contains(['\t', '|', '•']);
        let named = fields
            .iter()
            .find(|f| is_institution(f) && !is_degree(f))
            .cloned();
        let unnamed = (strong || !dates.is_empty())
            .then(|| fields.iter().find(|f| school_like(f)).cloned())
            .flatten()
            .filter(|_| !bullet);
        let institution = named
            .or_else(|| {
                unnamed
                    .clone()
                    .filter(|_| fields.iter().any(|f| is_degree(f) && is_institution(f)))
            })
            .or_else(|| fields.iter().find(|f| is_institution(f)).cloned());
        let degree = fields
            .iter()
            .find(|f| is_degree(f) && Some(*f) != institution.as_ref())
            .cloned()
            .or_else(|| {
                fields
                    .iter()
                    .find(|f| is_degree(f))
                    .cloned()
                    .filter(|_| institution.is_none())
            });
        let institution = institution.or_else(|| unnamed.filter(|_| current.institution.is_none()));
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

/// Words of education lines that are not schools: "GPA", "Dean's List",
/// "Thesis", "Relevant Coursework", …
const NOT_SCHOOL_WORDS: &[&str] = &[
    "gpa",
    "grade",
    "grades",
    "dean",
    "dean's",
    "list",
    "honors",
    "honours",
    "award",
    "awards",
    "scholarship",
    "laude",
    "thesis",
    "dissertation",
    "coursework",
    "courses",
    "course",
    "minor",
    "major",
    "activities",
    "expected",
    "graduation",
    "graduated",
    "relevant",
    "focus",
    "concentration",
    "advisor",
    "supervisor",
    "project",
    "projects",
    "semester",
    "exchange",
    "abroad",
    "candidate",
    "studies",
    "study",
    "certificate",
    "diploma",
    "track",
];

/// A short title-case field that can be a school's name.
fn school_like(field: &str) -> bool {
    let lower = field.to_lowercase();
    !is_degree(field)
        && !is_location(field)
        && !field.contains(':')
        && !field.chars().any(|c| c.is_ascii_digit())
        && (1..=6).contains(&word_count(field))
        && capitalised_share(field) >= 0.6
        && !lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\''))
            .any(|w| NOT_SCHOOL_WORDS.contains(&w))
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
    fn experience_layouts_from_real_templates() {
        let pairs = |v: Vec<Experience>| -> Vec<(Option<String>, Option<String>)> {
            v.into_iter().map(|e| (e.title, e.employer)).collect()
        };
        // Title / employer / dates + place (AltaCV, HTML sidebars).
        let a = experience(&[
            "President & CEO",
            "Yahoo!",
            "July 2012 – Ongoing\tSunnyvale, CA",
            "• Led the acquisition",
            "DevOps Engineer Level 1",
            "Global Payments Inc.",
            "June 2017 - January 2019 / Atlanta, GA",
            "Spearheaded hands-on development",
        ]);
        assert_eq!(
            pairs(a),
            [
                (s("President & CEO"), s("Yahoo!")),
                (s("DevOps Engineer Level 1"), s("Global Payments Inc."))
            ]
        );
        // Title  dates / Employer  place (Typst, Chromium), a single date.
        let b = experience(&[
            "Data Analyst\t2017 - 2020",
            "ABC Company\tNew York, NY",
            "• Analyze large datasets using SQL",
            "to support decisions across the organization",
            "Data Analysis Intern\tSummer 2017",
            "PQR Corporation\tChicago, IL",
        ]);
        assert_eq!(
            pairs(b),
            [
                (s("Data Analyst"), s("ABC Company")),
                (s("Data Analysis Intern"), s("PQR Corporation"))
            ]
        );
        // Employer, City, ST, Title above the dates, a blank line between.
        let c = experience(&[
            "Gilmore Financial, New Orleans, LA, Certified Public Accountant",
            "",
            "Oct. 2021 – Current",
            "• Compute taxes",
        ]);
        assert_eq!(
            pairs(c),
            [(s("Certified Public Accountant"), s("Gilmore Financial"))]
        );
        // Organisation, place  dates / role below (career-centre samples).
        let d = experience(&[
            "Enactus, University of La Verne\tAugust 2013 – Present",
            "Member",
            "• Implement ideas",
            "LionLike MindState, Pomona, CA\tJune 2012 – Present",
            "Volunteer",
        ]);
        assert_eq!(
            pairs(d),
            [
                (s("Member"), s("Enactus, University of La Verne")),
                (s("Volunteer"), s("LionLike MindState"))
            ]
        );
        // moderncv: the range split over two lines in the date gutter.
        let e = experience(&[
            "June 2022 – Software Engineer (Front-End), Google, Mountain View, CA, USA",
            "Present Developing intuitive user interfaces using React.",
        ]);
        assert_eq!(e.len(), 1);
        assert_eq!(
            (e[0].title.clone(), e[0].employer.clone(), e[0].end.clone()),
            (
                s("Software Engineer (Front-End)"),
                s("Google"),
                s("present")
            )
        );
    }

    #[test]
    fn sentences_with_a_year_are_not_entries() {
        let a = experience(&[
            "Senior Engineer — Acme Corp\tJan 2018 – Present",
            "Promoted to Senior Engineer in 2019",
            "2019 – present\tSenior Data Engineer, Siemens AG, Munich",
            "Awarded Employee of the Month, 2020",
            "Technologies: Go, Kafka, Redis",
            "Engineer | Initech | 2015 – 2017",
        ]);
        assert_eq!(a.len(), 3, "{a:#?}");
        assert_eq!(a[1].employer.as_deref(), Some("Siemens AG"));
        assert_eq!(a[2].employer.as_deref(), Some("Initech"));
        assert!(anchor_dates("Summer 2017").is_some());
        assert!(anchor_dates("Getoq Consulting\tTraining, 2011 / 11").is_some());
        assert!(anchor_dates("Software Engineer, Acme (2019)").is_some());
    }

    #[test]
    fn schools_set_apart() {
        let e = education(&[
            "UC Berkeley | 2019",
            "Bachelor of Science, Computer Science",
        ]);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].institution.as_deref(), Some("UC Berkeley"));
        assert_eq!(e[0].degree.as_deref(), Some("Bachelor of Science"));
        let e = education(&["High school\tWonderland", "Dean's List | 2015"]);
        assert_eq!(e[0].institution.as_deref(), Some("Wonderland"));
        assert_eq!(e.len(), 1);
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
