//! Name, e-mail, phone, links and location.
//!
//! - **E-mail**: the first address in the preamble or a contact section,
//!   else the first outside the references.
//! - **Phone**: runs of digits with `+ ( ) - . /` and single spaces, 7–15
//!   digits, that are not dates or date ranges ("2019-2021", "03/2020").
//!   Candidates score for a label ("Phone", "Mobile", "Tel", ☎), a leading
//!   `+`, parentheses and being in the header; an unlabelled number outside
//!   the header needs a `+` or parentheses. The best scoring, first in
//!   order, wins and is returned as written.
//! - **Name**: a `Name:` label, else the first of the first 15 lines whose
//!   first segment (before `|`, `•`, `,`, a tab, ...) is 2–5 words, each
//!   capitalised (or a particle such as "de", "van", "bin"; scripts without
//!   case are accepted), with no digits or symbols, no job-title or heading
//!   word, not a place and not a skill. ALL-CAPS names are title-cased.
//! - **Links**: tokens with `linkedin.com/`, `github.com/`, or other URLs
//!   and domains, normalised to `https://`.
//! - **Location**: a `Location:`/`Address:`/`Based in` label, else the first
//!   segment of the first 15 lines (or a contact section) that reads as a
//!   place: "City, ST", "City, Country", a known city or country, "Remote".

use super::Links;
use super::entries::normalise_url;
use super::lexicon::{has_title_word, is_location};
use super::sections::{Doc, SectionKind, heading_of};
use crate::skills::{is_link_token, vocabulary};

pub(crate) struct Contact {
    pub(crate) name: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) phone: Option<String>,
    pub(crate) links: Links,
    pub(crate) location: Option<String>,
}

/// How many lines from the top count as the header for name and location.
const HEADER_LINES: usize = 15;

pub(crate) fn extract(doc: &Doc<'_>) -> Contact {
    let header: Vec<usize> = header_indices(doc);
    Contact {
        name: name(doc),
        email: email(doc, &header),
        phone: phone(doc, &header),
        links: links(doc),
        location: location(doc, &header),
    }
}

/// Indices of the preamble lines, the first lines of the text and the lines
/// of contact sections.
fn header_indices(doc: &Doc<'_>) -> Vec<usize> {
    let preamble_end = doc
        .sections
        .first()
        .map_or(doc.lines.len(), |s| s.heading_line);
    let mut out: Vec<usize> = (0..doc.lines.len())
        .filter(|&i| {
            i < preamble_end
                || i < HEADER_LINES
                || doc.kind_of_line(i) == Some(SectionKind::Contact)
        })
        .collect();
    out.dedup();
    out
}

// ---------------------------------------------------------------- e-mail

fn is_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-')
}

/// E-mail addresses of a line, in order.
pub(crate) fn emails_in(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in line.match_indices('@') {
        let local_start = line[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_local_char(*c))
            .last()
            .map_or(at, |(i, _)| i);
        let domain_end = line[at + 1..]
            .char_indices()
            .take_while(|(_, c)| is_domain_char(*c))
            .last()
            .map_or(at + 1, |(i, c)| at + 1 + i + c.len_utf8());
        let local = line[local_start..at].trim_start_matches(['.', '-', '+']);
        let domain = line[at + 1..domain_end].trim_end_matches(['.', '-']);
        if local.is_empty() || local.len() > 64 || domain.len() > 253 {
            continue;
        }
        let Some((host, tld)) = domain.rsplit_once('.') else {
            continue;
        };
        if host.is_empty() || tld.len() < 2 || !tld.chars().all(|c| c.is_ascii_alphabetic()) {
            continue;
        }
        if line[..local_start].ends_with("://") || line[..local_start].ends_with('/') {
            continue;
        }
        out.push(format!("{local}@{domain}"));
    }
    out
}

fn email(doc: &Doc<'_>, header: &[usize]) -> Option<String> {
    let in_header = header
        .iter()
        .find_map(|&i| emails_in(doc.lines[i]).into_iter().next());
    in_header.or_else(|| {
        doc.lines
            .iter()
            .enumerate()
            .filter(|(i, _)| doc.kind_of_line(*i) != Some(SectionKind::References))
            .find_map(|(_, l)| emails_in(l).into_iter().next())
    })
}

// ---------------------------------------------------------------- phone

struct PhoneCandidate {
    text: String,
    plus: bool,
    parens: bool,
}

/// Link and e-mail tokens replaced by spaces (so their digits are ignored).
fn mask_links(line: &str) -> String {
    line.split_inclusive(char::is_whitespace)
        .map(|piece| {
            let token = piece.trim_end();
            if is_link_token(token) {
                " ".repeat(piece.len())
            } else {
                piece.to_owned()
            }
        })
        .collect()
}

fn phone_candidates(line: &str) -> Vec<PhoneCandidate> {
    let masked = mask_links(line);
    let chars: Vec<char> = masked.chars().collect();
    let mut out = Vec::new();
    let mut i = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let prev = if i > 0 { Some(chars[i - 1]) } else { None };
        let starts = (c == '+' || c == '(' || c.is_ascii_digit())
            && prev.is_none_or(|p| !p.is_alphanumeric());
        if !starts {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut text = String::new();
        while j < chars.len() {
            let d = chars[j];
            let ok = d.is_ascii_digit()
                || matches!(d, '(' | ')' | '-' | '.' | '/' | '‑' | '–')
                || (d == '+' && (j == i || (j == i + 1 && c == '(')))
                || (d == ' '
                    && chars
                        .get(j + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '(' || *n == '-'));
            if !ok {
                break;
            }
            text.push(if d == '‑' { '-' } else { d });
            j += 1;
        }
        let trimmed = text
            .trim_end_matches(|c: char| !c.is_ascii_digit() && c != ')')
            .to_owned();
        let next = chars.get(i + trimmed.chars().count()).copied();
        // "+49 176 313 *** **": a number masked on the page is no number.
        let masked_after = chars
            .iter()
            .skip(i + trimmed.chars().count())
            .find(|c| **c != ' ')
            .is_some_and(|c| matches!(c, '*' | '█' | '∗'));
        let glued = next.is_some_and(char::is_alphanumeric) || masked_after;
        let digits = trimmed.chars().filter(char::is_ascii_digit).count();
        if (7..=15).contains(&digits) && !glued && !date_like(&trimmed) {
            out.push(PhoneCandidate {
                plus: trimmed.starts_with('+') || trimmed.starts_with("(+"),
                parens: trimmed.contains('(') && trimmed.contains(')'),
                text: trimmed.split_whitespace().collect::<Vec<_>>().join(" "),
            });
        }
        i = j.max(i + 1);
    }
    out
}

/// Dates and date ranges that look like digit runs: "2019-2021",
/// "03/2019 - 06/2021", "2020.01.15", "12.05.2021".
fn date_like(text: &str) -> bool {
    let groups: Vec<(&str, char)> = {
        let mut v = Vec::new();
        let mut start: Option<usize> = None;
        for (i, c) in text.char_indices() {
            if c.is_ascii_digit() {
                start.get_or_insert(i);
            } else if let Some(s) = start.take() {
                v.push((&text[s..i], c));
            }
        }
        if let Some(s) = start {
            v.push((&text[s..], ' '));
        }
        v
    };
    let is_year =
        |g: &str| g.len() == 4 && g.parse::<u32>().is_ok_and(|y| (1950..=2099).contains(&y));
    if groups.len() == 2 && is_year(groups[0].0) && is_year(groups[1].0) {
        return true;
    }
    for pair in groups.windows(2) {
        let ((a, sep), (b, _)) = (pair[0], pair[1]);
        if matches!(sep, '/' | '.' | '-')
            && ((a.len() <= 2 && is_year(b)) || (is_year(a) && b.len() <= 2))
        {
            return true;
        }
    }
    if text.contains('/') && groups.len() >= 3 && groups.iter().any(|(g, _)| is_year(g)) {
        return true;
    }
    false
}

fn phone_label(line: &str) -> bool {
    let lower = line.to_lowercase();
    [
        "phone",
        "tel",
        "mobile",
        "cell",
        "mob",
        "☎",
        "📞",
        "📱",
        "whatsapp",
        "telephone",
        "móvil",
        "teléfono",
    ]
    .iter()
    .any(|l| lower.contains(l))
        || lower.starts_with("t:")
        || lower.starts_with("m:")
        || lower.starts_with("p:")
        || lower.contains(" t:")
        || lower.contains(" m:")
}

fn phone(doc: &Doc<'_>, header: &[usize]) -> Option<String> {
    let mut best: Option<(u32, usize, String)> = None;
    for (i, line) in doc.lines.iter().enumerate() {
        if doc.kind_of_line(i) == Some(SectionKind::References) {
            continue;
        }
        let labelled = phone_label(line);
        let in_header = header.binary_search(&i).is_ok();
        for c in phone_candidates(line) {
            let digits = c.text.chars().filter(char::is_ascii_digit).count();
            let grouped = c.text.contains([' ', '-', '.', '(']);
            let mut score = 0u32;
            if labelled {
                score += 4;
            }
            if c.plus {
                score += 2;
            }
            if c.parens {
                score += 1;
            }
            if in_header {
                score += 2;
            }
            if grouped && digits >= 9 {
                score += 1;
            }
            let acceptable =
                labelled || c.plus || c.parens || (in_header && (grouped || digits >= 10));
            if !acceptable {
                continue;
            }
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, i, c.text));
            }
        }
    }
    best.map(|(_, _, text)| text)
}

// ---------------------------------------------------------------- name

const PARTICLES: &[&str] = &[
    "de", "da", "del", "della", "der", "den", "di", "do", "dos", "das", "du", "la", "le", "van",
    "von", "bin", "binti", "bint", "al", "el", "y", "e", "ter", "ten", "zu", "af", "av", "ibn",
    "mac", "st.",
];

/// Words that never appear in a person's name line.
const NOT_NAME_WORDS: &[&str] = &[
    "resume",
    "résumé",
    "curriculum",
    "vitae",
    "cv",
    "page",
    "contact",
    "phone",
    "email",
    "e-mail",
    "address",
    "mobile",
    "linkedin",
    "github",
    "portfolio",
    "website",
    "summary",
    "profile",
    "objective",
    "skills",
    "experience",
    "education",
    "projects",
    "references",
    "university",
    "college",
    "school",
    "institute",
    "inc",
    "llc",
    "ltd",
    "gmbh",
    "corp",
    "street",
    "avenue",
    "road",
    "the",
    "and",
    "of",
    "for",
    "with",
    "in",
    "at",
    "to",
    "my",
    "our",
    "years",
    "year",
    "present",
    "languages",
    "certifications",
    "interests",
    "about",
    "confidential",
    "available",
    "request",
    "upon",
    "open",
    "work",
    "based",
    "full",
    "stack",
    "remote",
];

fn word_is_name_like(word: &str) -> bool {
    let w = word.trim_end_matches(',');
    let mut chars = w.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let caseless = first.is_alphabetic() && !first.is_uppercase() && !first.is_lowercase();
    if !(first.is_uppercase() || caseless) {
        return false;
    }
    let rest_ok = w
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, '-' | '\'' | '’' | '.'));
    // "J." is an initial; otherwise a dot only ends an abbreviation like "Jr."
    rest_ok
        && (w.chars().filter(|c| *c == '.').count() <= 1)
        && w.chars().filter(|c| c.is_alphabetic()).count() >= 1
}

fn title_case_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut upper_next = true;
    for c in word.chars() {
        if upper_next {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        upper_next = matches!(c, '-' | '\'' | '’' | ' ');
    }
    out
}

/// The name in a segment, normalised, if the segment is a name.
pub(crate) fn as_name(segment: &str) -> Option<String> {
    let seg = segment
        .trim()
        .trim_matches(|c: char| matches!(c, '*' | '_' | '#' | ':' | '|' | '•'));
    let seg = seg.trim();
    if seg.is_empty() || seg.chars().count() > 60 {
        return None;
    }
    if seg
        .chars()
        .any(|c| c.is_ascii_digit() || "@/\\:()[]{}<>=+#$%&!?;\"".contains(c))
    {
        return None;
    }
    let words: Vec<&str> = seg.split_whitespace().collect();
    let caseless_script = seg
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| !c.is_uppercase() && !c.is_lowercase());
    if caseless_script {
        // e.g. CJK: one or two words of 2–6 letters.
        let letters = seg.chars().filter(|c| c.is_alphabetic()).count();
        return (words.len() <= 2 && (2..=8).contains(&letters)).then(|| seg.to_owned());
    }
    if !(2..=5).contains(&words.len()) {
        return None;
    }
    let lower_words: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    if lower_words
        .iter()
        .any(|w| NOT_NAME_WORDS.contains(&w.trim_end_matches([',', '.'])))
    {
        return None;
    }
    for (i, (w, lw)) in words.iter().zip(&lower_words).enumerate() {
        let particle = PARTICLES.contains(&lw.as_str());
        if particle && i > 0 && i + 1 < words.len() {
            continue;
        }
        if !word_is_name_like(w) {
            return None;
        }
    }
    if has_title_word(seg) || is_location(seg) || vocabulary().is_form(seg) {
        return None;
    }
    // An icon read as a letter before a place: "B United Kingdom".
    if let Some((first, rest)) = seg.split_once(' ')
        && first.chars().count() == 1
        && is_location(rest)
    {
        return None;
    }
    if heading_of(seg, super::sections::Inline::No).is_some() {
        return None;
    }
    let has_lower = seg.chars().any(char::is_lowercase);
    if has_lower {
        Some(words.join(" "))
    } else {
        let titled: Vec<String> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let lw = w.to_lowercase();
                if i > 0 && i + 1 < words.len() && PARTICLES.contains(&lw.as_str()) {
                    lw
                } else {
                    title_case_word(w)
                }
            })
            .collect();
        Some(titled.join(" "))
    }
}

/// The first segment of a line (before `|`, `•`, `·`, `,`, tab, ` - `).
fn first_segment(line: &str) -> &str {
    let mut end = line.len();
    for sep in ["|", "•", "·", ",", "\t", " - ", " – ", " — ", "  ", "/"] {
        if let Some(p) = line.find(sep) {
            end = end.min(p);
        }
    }
    &line[..end]
}

fn strip_label<'l>(line: &'l str, labels: &[&str]) -> Option<&'l str> {
    let lower = line.to_lowercase();
    for label in labels {
        if lower.starts_with(label) {
            let rest = line.get(label.len()..)?.trim_start();
            if let Some(rest) = rest.strip_prefix(':').or_else(|| rest.strip_prefix('-')) {
                return Some(rest.trim());
            }
        }
    }
    None
}

fn name(doc: &Doc<'_>) -> Option<String> {
    for line in &doc.lines {
        if let Some(rest) = strip_label(line, &["full name", "name"])
            && let Some(n) = as_name(first_segment(rest))
        {
            return Some(n);
        }
    }
    let top: Vec<(usize, &str)> = doc
        .lines
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .take(HEADER_LINES)
        .collect();
    // A name set in two big lines ("Oluwaseun" / "Adeyemi") at the very top
    // (adjacent lines: the PDF extractor separates lines of different sizes).
    if let [(ia, first), (ib, second), ..] = top.as_slice() {
        let (a, b) = (
            without_doc_words(first_segment(first)),
            without_doc_words(first_segment(second)),
        );
        if let Some(n) = as_name(a) {
            return Some(n);
        }
        if *ib == ia + 1
            && a.split_whitespace().count() == 1
            && b.split_whitespace().count() == 1
            && let Some(n) = as_name(&format!("{a} {b}"))
        {
            return Some(n);
        }
    }
    if let Some(n) = top
        .iter()
        .find_map(|(_, l)| as_name(without_doc_words(first_segment(l))))
    {
        return Some(n);
    }
    // Last resort: a one-word name alone on the first line ("Alice").
    let (_, first) = top.first()?;
    let word = first_segment(first).trim();
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    (word.split_whitespace().count() == 1
        && (2..=20).contains(&letters)
        && word
            .chars()
            .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        && word.chars().next().is_some_and(char::is_uppercase))
    .then(|| as_name(&format!("{word} {word}")).map(|_| title_case_word(word)))
    .flatten()
}

/// A heading line's name without "Resume", "CV", "Curriculum Vitae" after
/// (or before) it: "JAN KÜSTER RESUME".
fn without_doc_words(segment: &str) -> &str {
    let mut s = segment.trim();
    for word in ["curriculum vitae", "résumé", "resume", "cv"] {
        let lower = s.to_lowercase();
        if lower.len() != s.len() {
            break;
        }
        if lower.ends_with(word) && lower.len() > word.len() {
            let cut = s.len() - word.len();
            if s.is_char_boundary(cut) && s[..cut].ends_with(' ') {
                s = s[..cut].trim_end();
            }
        }
        let lower = s.to_lowercase();
        if lower.starts_with(word) && lower.len() > word.len() {
            let cut = word.len();
            if s.is_char_boundary(cut) && s[cut..].starts_with(' ') {
                s = s[cut..].trim_start();
            }
        }
    }
    s
}

// ---------------------------------------------------------------- links

fn links(doc: &Doc<'_>) -> Links {
    let mut out = Links::default();
    for line in &doc.lines {
        for token in line.split_whitespace() {
            if !is_link_token(token) || token.contains('@') && !token.contains('/') {
                continue;
            }
            let lower = token.to_ascii_lowercase();
            if lower.starts_with("mailto:") {
                continue;
            }
            let url = normalise_url(token);
            let url_lower = url.to_ascii_lowercase();
            if url_lower.contains("linkedin.com/") {
                out.linkedin.get_or_insert(url);
            } else if url_lower.contains("github.com/") {
                out.github.get_or_insert(url);
            } else if !url_lower.ends_with("linkedin.com")
                && !url_lower.ends_with("github.com")
                && !out.websites.contains(&url)
                && out.websites.len() < 5
            {
                out.websites.push(url);
            }
        }
    }
    out
}

// ---------------------------------------------------------------- location

fn location(doc: &Doc<'_>, header: &[usize]) -> Option<String> {
    for line in &doc.lines {
        if let Some(rest) = strip_label(
            line,
            &["location", "address", "based in", "city", "lives in"],
        ) {
            let seg = rest
                .split(['|', '•', '·', '\t'])
                .next()
                .unwrap_or("")
                .trim();
            if !seg.is_empty() && seg.chars().count() <= 60 {
                return Some(seg.to_owned());
            }
        }
    }
    for &i in header {
        let line = doc.lines[i];
        if line.is_empty() || heading_of(line, super::sections::Inline::No).is_some() {
            continue;
        }
        // The first lines of a short preamble can be a section's (an
        // education line "University of California, Los Angeles	USA").
        if doc
            .kind_of_line(i)
            .is_some_and(|k| !matches!(k, SectionKind::Contact | SectionKind::Summary))
        {
            continue;
        }
        let line = line.strip_prefix("Based in ").unwrap_or(line);
        let segments = line
            .split(['|', '•', '·', '\t', '◦', '▪'])
            .flat_map(|s| s.split(" , "))
            .flat_map(|s| s.split(" - "))
            .flat_map(|s| s.split(" – "))
            .flat_map(|s| s.split(" — "));
        for seg in segments {
            let seg = seg
                .trim()
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .trim_end_matches(|c: char| !c.is_alphanumeric() && c != ')')
                .trim();
            if seg.contains('@') {
                continue;
            }
            if let Some(place) = place_in(seg) {
                return Some(place.to_owned());
            }
        }
    }
    None
}

/// The place a contact segment names: the segment itself, or without an
/// icon glyph read as a letter before it ("B United Kingdom", "½ Bremen,
/// Germany"), or without a street part before it ("555 La Verne Way, La
/// Verne, CA").
fn place_in(seg: &str) -> Option<&str> {
    if is_location(seg) {
        return Some(seg);
    }
    // "Greater Seattle Area", "San Francisco Bay Area".
    let words: Vec<&str> = seg.split_whitespace().collect();
    if (2..=5).contains(&words.len())
        && words.last() == Some(&"Area")
        && words
            .iter()
            .all(|w| w.chars().next().is_some_and(char::is_uppercase))
        && (words.first() == Some(&"Greater")
            || words
                .iter()
                .any(|w| matches!(*w, "Bay" | "Metro" | "Metropolitan" | "Tri-State")))
        && !seg.chars().any(|c| c.is_ascii_digit() || c == '@')
    {
        return Some(seg);
    }
    if let Some((icon, rest)) = seg.split_once(' ')
        && icon.chars().count() == 1
        && is_location(rest.trim())
    {
        return Some(rest.trim());
    }
    let mut rest = seg;
    for _ in 0..2 {
        let (street, tail) = rest.split_once(',')?;
        if !street.chars().any(|c| c.is_ascii_digit()) && !street.contains(' ') {
            return None;
        }
        rest = tail.trim();
        if is_location(rest) {
            return Some(rest);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phones(line: &str) -> Vec<String> {
        phone_candidates(line).into_iter().map(|c| c.text).collect()
    }

    #[test]
    fn phone_formats() {
        assert_eq!(phones("Call +1 (555) 123-4567 now"), ["+1 (555) 123-4567"]);
        assert_eq!(phones("+44 20 7946 0958"), ["+44 20 7946 0958"]);
        assert_eq!(phones("555.123.4567 | a@b.co"), ["555.123.4567"]);
        assert!(phones("2019-2021").is_empty());
        assert!(phones("03/2019 - 06/2021").is_empty());
        assert!(phones("2016 - 2019").is_empty());
        assert!(phones("linkedin.com/in/jane-1234567890").is_empty());
    }

    #[test]
    fn emails() {
        assert_eq!(
            emails_in("mail: Jose.Alvarez+cv@mail.example.es."),
            ["Jose.Alvarez+cv@mail.example.es"]
        );
        assert!(emails_in("@handle and a@b").is_empty());
    }

    #[test]
    fn places_in_contact_segments() {
        assert_eq!(place_in("B United Kingdom"), Some("United Kingdom"));
        assert_eq!(
            place_in("555 La Verne Way, La Verne, CA"),
            Some("La Verne, CA")
        );
        assert_eq!(place_in("Sunnyvale, CA"), Some("Sunnyvale, CA"));
        assert_eq!(place_in("Getoq Consulting"), None);
        assert_eq!(
            place_in("Greater Seattle Area"),
            Some("Greater Seattle Area")
        );
        assert_eq!(
            place_in("San Francisco Bay Area"),
            Some("San Francisco Bay Area")
        );
        assert_eq!(place_in("Focus Area"), None);
        assert!(phones("+49 176 313 *** **").is_empty());
        assert_eq!(
            phones("Madrid • +34 612 345 678 • a@b.es"),
            ["+34 612 345 678"]
        );
        assert_eq!(without_doc_words("JAN KÜSTER RESUME"), "JAN KÜSTER");
        assert_eq!(as_name("B United Kingdom"), None);
    }

    #[test]
    fn names() {
        assert_eq!(as_name("José Álvarez").as_deref(), Some("José Álvarez"));
        assert_eq!(
            as_name("ANA MARÍA DE LA CRUZ").as_deref(),
            Some("Ana María de la Cruz")
        );
        assert_eq!(
            as_name("Mary-Jane O’Connor").as_deref(),
            Some("Mary-Jane O’Connor")
        );
        assert_eq!(as_name("Дмитрий Иванов").as_deref(), Some("Дмитрий Иванов"));
        assert_eq!(as_name("李娜").as_deref(), Some("李娜"));
        assert_eq!(as_name("Senior Software Engineer"), None);
        assert_eq!(as_name("Curriculum Vitae"), None);
        assert_eq!(as_name("San Francisco"), None);
        assert_eq!(as_name("Stakeholder Management"), None);
        assert_eq!(as_name("Work Experience"), None);
    }
}
