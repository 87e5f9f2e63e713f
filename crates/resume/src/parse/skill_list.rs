//! The items of an explicit skills list, as written.
//!
//! The vocabulary finds the skills it knows anywhere in the text; a
//! skills/strengths/technologies section also names skills nobody can list
//! in advance ("Motivator & Leader", "SourceTree", "Attention to detail").
//! Those items are kept verbatim when they do not contain a vocabulary
//! skill (which is reported under its canonical name instead):
//!
//! - a line is split on `,` `;` `|` `•` `·` tabs and on icon glyphs read as
//!   lone punctuation (`` ` `` `"` `/`), after a category label
//!   (`Languages: …`, `Computer: Proficient in …`) is dropped;
//! - an item loses a leading icon letter (`t Blaze`, `0 Git`), a leading
//!   "and", "Proficient in", "Fluent in", "Knowledge of", a trailing rating
//!   (`(18/24)`, `⋆4`, `★★★`) and level words (`Expert`, `Advanced`);
//! - an item is kept when it has one to five words, at most 40 characters,
//!   a letter, and no sentence punctuation, brackets or digits-only parts.

use std::collections::BTreeSet;

use super::entries::strip_bullet;
use crate::skills::vocabulary;

const LEAD_INS: &[&str] = &[
    "and ",
    "proficient in ",
    "proficient with ",
    "proficiency in ",
    "fluent in ",
    "knowledge of ",
    "familiar with ",
    "experience with ",
    "experience in ",
    "skilled in ",
    "expert in ",
    "strong ",
];

const LEVELS: &[&str] = &[
    "expert",
    "advanced",
    "intermediate",
    "beginner",
    "basic",
    "proficient",
    "native",
    "fluent",
    "elementary",
    "good",
    "excellent",
    "strong",
    "familiar",
];

/// Column headings and category labels of skills tables, not skills.
const CATEGORY_WORDS: &[&str] = &[
    "area",
    "areas",
    "tools",
    "tool",
    "other",
    "others",
    "misc",
    "miscellaneous",
    "category",
    "categories",
    "level",
    "backend",
    "back-end",
    "frontend",
    "front-end",
    "cloud",
    "data",
    "databases",
    "database",
    "languages",
    "language",
    "frameworks",
    "framework",
    "libraries",
    "platforms",
    "platform",
    "technologies",
    "technology",
    "skills",
    "skill",
    "software",
    "hardware",
    "web",
    "mobile",
    "general",
    "technical",
    "soft skills",
    "hard skills",
    "core",
    "methods",
    "methodologies",
    "practices",
    "concepts",
    "infrastructure",
    "operating systems",
    "programming",
    "scripting",
    "years",
    "proficiency",
    "name",
];

/// At most this many verbatim items per résumé.
const MAX_ITEMS: usize = 40;

/// Verbatim items of the given skills-section lines that name no vocabulary
/// skill.
pub(crate) fn verbatim_items(lines: &[&str]) -> Vec<String> {
    let v = vocabulary();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for line in lines {
        for item in items_of(line) {
            if out.len() >= MAX_ITEMS {
                return out;
            }
            if !v.scan_line(&item, true).is_empty() {
                continue;
            }
            if seen.insert(item.to_lowercase()) {
                out.push(item);
            }
        }
    }
    out
}

fn items_of(line: &str) -> Vec<String> {
    let line = strip_bullet(line.trim());
    // A table row "Design<TAB>Figma, Sketch": the first cell labels a list.
    let line = match line.split_once('\t') {
        Some((label, rest))
            if label.split_whitespace().count() <= 3
                && rest.contains([',', '|', '\t'])
                && vocabulary().scan_line(label, true).is_empty() =>
        {
            rest
        }
        _ => line,
    };
    // A category label: "Languages: Go, Rust", "Computer: Proficient in …".
    let body = match line.split_once(':') {
        Some((label, rest)) if label.split_whitespace().count() <= 4 && !rest.trim().is_empty() => {
            rest
        }
        _ => line,
    };
    // Rating glyphs end an item: "lovely⋆4 narcissistic⋆3".
    let body: String = body
        .chars()
        .map(|c| {
            if matches!(c, '⋆' | '★' | '☆') {
                '|'
            } else {
                c
            }
        })
        .collect();
    let mut parts: Vec<String> = vec![String::new()];
    for token in body.split(' ') {
        let lone_icon = token.chars().count() == 1
            && token
                .chars()
                .all(|c| !c.is_alphanumeric() && !matches!(c, '+' | '#' | '.' | '&'));
        if lone_icon {
            parts.push(String::new());
            continue;
        }
        if let Some(last) = parts.last_mut() {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(token);
        }
    }
    parts
        .iter()
        .flat_map(|p| p.split([',', ';', '|', '•', '·', '\t', '◦', '▪']))
        .filter_map(clean_item)
        .collect()
}

fn clean_item(raw: &str) -> Option<String> {
    let mut item = raw.trim();
    // An icon glyph read as a letter or digit: "t Blaze", "0 Git".
    if let Some((first, rest)) = item.split_once(' ')
        && first.chars().count() == 1
        && rest.chars().next().is_some_and(char::is_uppercase)
    {
        item = rest.trim();
    }
    // A rating number left before the next item: "4 narcissistic".
    if let Some((first, rest)) = item.split_once(' ')
        && first.chars().all(|c| c.is_ascii_digit())
    {
        item = rest.trim();
    }
    loop {
        let lower = item.to_lowercase();
        let Some(lead) = LEAD_INS.iter().find(|l| lower.starts_with(*l)) else {
            break;
        };
        item = item.get(lead.len()..).unwrap_or("").trim();
    }
    // Ratings after the item: "(18/24)", "⋆4", "★★★★☆", "- Expert".
    let item = item
        .trim_end_matches(|c: char| {
            c.is_ascii_digit() || matches!(c, '⋆' | '★' | '☆' | '●' | '○' | '/' | ' ' | '%')
        })
        .trim();
    let item = match item.rfind('(') {
        Some(i) if item.ends_with(')') && item[i..].chars().any(|c| c.is_ascii_digit()) => {
            item[..i].trim()
        }
        _ => item,
    };
    let item = match item.rsplit_once(" - ").or_else(|| item.rsplit_once(" – ")) {
        Some((head, level)) if LEVELS.contains(&level.trim().to_lowercase().as_str()) => {
            head.trim()
        }
        _ => item,
    };
    let item = item.trim_matches(|c: char| matches!(c, '-' | '–' | '*' | '.' | ' '));
    let words = item.split_whitespace().count();
    let lower = item.to_lowercase();
    let ok = (1..=5).contains(&words)
        && item.chars().count() <= 40
        && item.chars().any(char::is_alphabetic)
        && !item.contains(['[', ']', '{', '}', '(', ')', '"', '“', '”', '@', '*', ':'])
        && !item.contains("http")
        && !LEVELS.contains(&lower.as_str())
        && !CATEGORY_WORDS.contains(&lower.as_str())
        && !lower.starts_with("to ")
        && !lower.starts_with("the ")
        && item
            .split_whitespace()
            .all(|w| w.chars().any(char::is_alphabetic) || w.len() <= 2);
    ok.then(|| item.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items() {
        assert_eq!(
            items_of("Hard-working (18/24)\tPersuasive"),
            ["Hard-working", "Persuasive"]
        );
        assert_eq!(items_of("t Blaze"), ["Blaze"]);
        assert_eq!(items_of("` Inkscape \" Blender"), ["Inkscape", "Blender"]);
        assert_eq!(items_of("• Attention to detail"), ["Attention to detail"]);
        assert_eq!(
            items_of("lovely⋆4 narcissistic⋆3"),
            ["lovely", "narcissistic"]
        );
        assert!(items_of("(*)[The skill scale is from 0 (Fundamental Awareness)").is_empty());
        assert_eq!(
            items_of("Social Media: Facebook, Twitter, and Instagram"),
            ["Facebook", "Twitter", "Instagram"]
        );
        assert_eq!(items_of("Spanish - Native"), ["Spanish"]);
    }

    #[test]
    fn vocabulary_skills_are_not_verbatim() {
        let got = verbatim_items(&["Python, Motivator & Leader, Docker", "Good manners"]);
        assert_eq!(got, ["Motivator & Leader", "Good manners"]);
    }
}
