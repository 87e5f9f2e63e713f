//! The skill vocabulary and the matcher that finds its skills in text.
//!
//! The vocabulary lives in `data/skills.json` (compiled in, parsed once).
//! Each skill has a canonical `name`, a `category`, and three kinds of
//! surface forms:
//!
//! - `aliases` (and the canonical name itself): matched case-insensitively
//!   anywhere, on token boundaries;
//! - `cased`: matched only with exactly this case (`Rust`, `Swift`, `Excel`,
//!   `REST`, `Spark`: the lower-case words mean something else);
//! - `strict`: exact case **and** a context that shows a skill is meant.
//!   These are the short or everyday words (`Go`, `R`, `C`, `Spring`,
//!   `Chef`, `Julia`, `Make`, ...). They count only inside a skills-like
//!   section, or as a whole list item (`Languages: Go, Python`, `C/C++`,
//!   `- R`), or, for the one- and two-letter names, right after `in`/`with`/
//!   `using`/`including` or right before words such as `developer`,
//!   `services`, `programming` (`built services in Go`). Unambiguous forms
//!   (`Golang`, `R language`) are plain aliases.
//!
//! Token boundaries: a form never matches inside a longer word or name
//! (`Java` not in `JavaScript`, `C` not in `C++`/`C#`/`Objective-C`, `Node`
//! not in `Node.js`, `.NET` not in `ASP.NET`, `js` not in `node.js`), and
//! URLs and e-mail addresses are masked before matching. Where matches
//! overlap the longest wins (`React Native` over `React`), and `implies`
//! adds the skills a match entails (`AWS Lambda` → `Amazon Web Services`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

/// One skill of the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skill {
    /// The canonical name, as reported in results.
    pub name: String,
    /// Case-insensitive surface forms (the name itself is implied).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Case-sensitive surface forms.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cased: Vec<String>,
    /// Case-sensitive forms that also need a skills/list context.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strict: Vec<String>,
    /// A coarse grouping (`language`, `devops`, `soft`, ...).
    pub category: String,
    /// Canonical names of skills that a match of this one entails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implies: Vec<String>,
}

#[derive(Deserialize)]
struct VocabularyFile {
    #[allow(dead_code)]
    version: u32,
    skills: Vec<Skill>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormKind {
    Insensitive,
    Cased,
    Strict,
}

#[derive(Debug, Clone)]
struct Form {
    text: String,
    skill: usize,
    kind: FormKind,
}

/// The vocabulary and its compiled matcher.
#[derive(Debug)]
pub struct Vocabulary {
    skills: Vec<Skill>,
    forms: Vec<Form>,
    by_form: BTreeMap<String, usize>,
    implies: Vec<Vec<usize>>,
    matcher: Option<AhoCorasick>,
}

static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(|| {
    Vocabulary::from_json_files(&[
        include_str!("../data/skills.json"),
        // Programming languages of GitHub Linguist (MIT), strict forms only:
        // see data/NOTICE-linguist-languages.txt.
        include_str!("../data/linguist-languages.json"),
    ])
    .unwrap_or_else(|_| Vocabulary::empty())
});

/// The built-in vocabulary (`data/skills.json`).
pub fn vocabulary() -> &'static Vocabulary {
    &VOCABULARY
}

/// The canonical name for a skill name or alias (case-insensitive), e.g.
/// `k8s` → `Kubernetes`.
pub fn canonical(name: &str) -> Option<&'static str> {
    vocabulary().canonical(name)
}

/// The canonical skills mentioned in free text, sorted and deduplicated.
/// No line is treated as a skills section; list items still count as
/// context for the strict forms.
pub fn find_skills(text: &str) -> Vec<String> {
    let v = vocabulary();
    let mut found = BTreeSet::new();
    for line in text.lines() {
        for m in v.scan_line(line, false) {
            found.insert(m.skill);
        }
    }
    v.names(&found)
}

/// One occurrence of a skill in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SkillMatch {
    pub(crate) skill: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Vocabulary {
    fn empty() -> Self {
        Vocabulary {
            skills: Vec::new(),
            forms: Vec::new(),
            by_form: BTreeMap::new(),
            implies: Vec::new(),
            matcher: None,
        }
    }

    /// Parse and validate a vocabulary: every form (lower-cased) must belong
    /// to one skill only and every `implies` must name a skill.
    pub fn from_json(json: &str) -> Result<Self, String> {
        Self::from_json_files(&[json])
    }

    /// [`Vocabulary::from_json`] over several files, their skills in order
    /// (the same validation across all of them).
    pub fn from_json_files(jsons: &[&str]) -> Result<Self, String> {
        let mut file = VocabularyFile {
            version: 1,
            skills: Vec::new(),
        };
        for json in jsons {
            let part: VocabularyFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
            file.skills.extend(part.skills);
        }
        let mut forms = Vec::new();
        let mut by_form: BTreeMap<String, usize> = BTreeMap::new();
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        for (index, skill) in file.skills.iter().enumerate() {
            if by_name.insert(skill.name.to_lowercase(), index).is_some() {
                return Err(format!("skill {:?} is listed twice", skill.name));
            }
            let case_bound: BTreeSet<String> = skill
                .cased
                .iter()
                .chain(&skill.strict)
                .map(|f| f.to_lowercase())
                .collect();
            let mut own: Vec<(String, FormKind)> = Vec::new();
            if !case_bound.contains(&skill.name.to_lowercase()) {
                own.push((skill.name.clone(), FormKind::Insensitive));
            }
            own.extend(
                skill
                    .aliases
                    .iter()
                    .map(|a| (a.clone(), FormKind::Insensitive)),
            );
            own.extend(skill.cased.iter().map(|a| (a.clone(), FormKind::Cased)));
            own.extend(skill.strict.iter().map(|a| (a.clone(), FormKind::Strict)));
            for (text, kind) in own {
                let key = text.to_lowercase();
                if key.trim().is_empty() || !key.is_ascii() {
                    return Err(format!(
                        "skill {:?} has an empty or non-ASCII form {text:?}",
                        skill.name
                    ));
                }
                match by_form.get(&key) {
                    Some(&other) if other != index => {
                        return Err(format!(
                            "form {text:?} maps to both {:?} and {:?}",
                            file.skills[other].name, skill.name
                        ));
                    }
                    Some(_) => continue,
                    None => {
                        by_form.insert(key, index);
                    }
                }
                forms.push(Form {
                    text,
                    skill: index,
                    kind,
                });
            }
        }
        let mut implies = Vec::with_capacity(file.skills.len());
        for skill in &file.skills {
            let mut targets = Vec::new();
            for name in &skill.implies {
                match by_name.get(&name.to_lowercase()) {
                    Some(&i) => targets.push(i),
                    None => return Err(format!("{:?} implies unknown skill {name:?}", skill.name)),
                }
            }
            implies.push(targets);
        }
        let matcher = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(forms.iter().map(|f| f.text.as_str()))
            .map_err(|e| e.to_string())?;
        Ok(Vocabulary {
            skills: file.skills,
            forms,
            by_form,
            implies,
            matcher: Some(matcher),
        })
    }

    /// Number of skills.
    pub fn len(&self) -> usize {
        self.skills.len()
    }

    /// True when the vocabulary has no skills (only if the data failed to load).
    pub fn is_empty(&self) -> bool {
        self.skills.is_empty()
    }

    /// All skills, in file order.
    pub fn skills(&self) -> &[Skill] {
        &self.skills
    }

    /// The canonical name for a name or alias (case-insensitive).
    pub fn canonical(&self, name: &str) -> Option<&str> {
        let key = name.trim().to_lowercase();
        self.by_form
            .get(&key)
            .map(|&i| self.skills[i].name.as_str())
    }

    /// Whether `text` (case-insensitive) is exactly a form of some skill.
    pub(crate) fn is_form(&self, text: &str) -> bool {
        self.by_form.contains_key(&text.trim().to_lowercase())
    }

    pub(crate) fn name(&self, index: usize) -> &str {
        self.skills.get(index).map_or("", |s| s.name.as_str())
    }

    /// Canonical names of a set of skills plus everything they imply,
    /// sorted case-insensitively.
    pub(crate) fn names(&self, found: &BTreeSet<usize>) -> Vec<String> {
        let closed = self.close(found);
        let mut names: Vec<String> = closed.iter().map(|&i| self.name(i).to_owned()).collect();
        sort_names(&mut names);
        names
    }

    /// Add implied skills until nothing changes.
    pub(crate) fn close(&self, found: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut closed = found.clone();
        let mut queue: Vec<usize> = found.iter().copied().collect();
        while let Some(i) = queue.pop() {
            for &j in self.implies.get(i).map_or(&[][..], |v| v.as_slice()) {
                if closed.insert(j) {
                    queue.push(j);
                }
            }
        }
        closed
    }

    /// The skills in one line. `skills_context` says the line is inside a
    /// skills-like section (which lets the strict forms match).
    pub(crate) fn scan_line(&self, line: &str, skills_context: bool) -> Vec<SkillMatch> {
        let Some(matcher) = &self.matcher else {
            return Vec::new();
        };
        let masked = mask_links(line);
        let mut candidates: Vec<SkillMatch> = Vec::new();
        for m in matcher.find_overlapping_iter(masked.as_str()) {
            let Some(form) = self.forms.get(m.pattern().as_usize()) else {
                continue;
            };
            let (start, end) = (m.start(), m.end());
            let Some(found) = masked.get(start..end) else {
                continue;
            };
            if form.kind != FormKind::Insensitive && found != form.text {
                continue;
            }
            if !boundaries_ok(&masked, start, end, form.kind == FormKind::Strict) {
                continue;
            }
            if form.kind == FormKind::Strict
                && !skills_context
                && !strict_context(&masked, start, end)
            {
                continue;
            }
            if is_link_label(line, found) {
                continue;
            }
            candidates.push(SkillMatch {
                skill: form.skill,
                start,
                end,
            });
        }
        candidates.sort_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
        let mut chosen: Vec<SkillMatch> = Vec::new();
        let mut last_end = 0usize;
        for c in candidates {
            if c.start >= last_end {
                last_end = c.end;
                chosen.push(c);
            }
        }
        chosen
    }
}

/// "GitHub" next to a github.com URL is the label of a link, not a skill.
fn is_link_label(line: &str, found: &str) -> bool {
    let lower = found.to_ascii_lowercase();
    matches!(lower.as_str(), "github" | "gitlab" | "bitbucket")
        && line.to_ascii_lowercase().contains(&format!("{lower}."))
}

/// Sort canonical names case-insensitively (ties by exact text).
pub(crate) fn sort_names(names: &mut Vec<String>) {
    names.sort_by(|a, b| a.to_lowercase().cmp(&b.to_lowercase()).then(a.cmp(b)));
    names.dedup();
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The form must not be glued to neighbouring word characters; see the
/// module documentation for the cases.
fn boundaries_ok(line: &str, start: usize, end: usize, strict: bool) -> bool {
    let form = &line[start..end];
    let before = line[..start].chars().next_back();
    let before2 = line[..start].chars().rev().nth(1);
    let after = line[end..].chars().next();
    let after2 = line[end..].chars().nth(1);
    let first_alnum = form.chars().next().is_some_and(char::is_alphanumeric);
    let last_alnum = form.chars().next_back().is_some_and(char::is_alphanumeric);
    if let Some(b) = before {
        if is_word_char(b) {
            return false;
        }
        // "node.js": "js" is not a token of its own.
        if first_alnum && b == '.' && before2.is_some_and(char::is_alphanumeric) {
            return false;
        }
        if first_alnum && matches!(b, '@' | '#' | '$') {
            return false;
        }
        if strict && matches!(b, '-' | '.' | '\'' | '’') {
            return false;
        }
    }
    if let Some(a) = after {
        if is_word_char(a) {
            return false;
        }
        if last_alnum && matches!(a, '+' | '#') {
            return false;
        }
        let glued = after2.is_some_and(char::is_alphanumeric);
        if matches!(a, '.') && glued {
            return false;
        }
        if strict && (matches!(a, '&' | '\'' | '’') || (a == '-' && glued)) {
            return false;
        }
    }
    true
}

const LIST_DELIMITERS: &[char] = &[
    ',', ';', '|', '/', '•', '·', ':', '(', ')', '[', ']', '\t', '*', '▪', '◦', '●', '–', '—', '-',
    '+', '&',
];

/// Whether a strict form stands as a list item or in a technical phrase.
fn strict_context(line: &str, start: usize, end: usize) -> bool {
    let left = line[..start].trim_end();
    let right = line[end..].trim_start();
    let left_ok = left.is_empty()
        || left.ends_with(LIST_DELIMITERS)
        || ends_with_word(left, "and")
        || ends_with_word(left, "or");
    let right_ok = right.is_empty()
        || right.starts_with(LIST_DELIMITERS)
        || right == "."
        || right.starts_with("and ")
        || right.starts_with("or ");
    if left_ok && right_ok {
        return true;
    }
    if end - start > 2 {
        return false;
    }
    let prev = left
        .rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap_or("")
        .to_lowercase();
    if matches!(
        prev.as_str(),
        "in" | "with" | "using" | "including" | "like"
    ) && !left.is_empty()
    {
        return true;
    }
    let next: String = right
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_lowercase();
    matches!(
        next.as_str(),
        "developer"
            | "developers"
            | "engineer"
            | "engineers"
            | "programming"
            | "programmer"
            | "programmers"
            | "code"
            | "codebase"
            | "services"
            | "service"
            | "microservices"
            | "modules"
            | "libraries"
            | "library"
            | "backend"
            | "backends"
            | "apis"
            | "api"
            | "tooling"
            | "language"
            | "stack"
            | "scripts"
            | "packages"
            | "runtime"
    )
}

/// Whether `text` ends with the word `word` (ASCII case ignored). The split
/// point is checked for a character boundary: `text` may end in a curly
/// quote or any other multi-byte character.
fn ends_with_word(text: &str, word: &str) -> bool {
    let Some(split) = text.len().checked_sub(word.len()) else {
        return false;
    };
    let (Some(head), Some(tail)) = (text.get(..split), text.get(split..)) else {
        return false;
    };
    tail.eq_ignore_ascii_case(word)
        && head
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
}

const TLDS: &[&str] = &[
    "com", "org", "net", "io", "dev", "me", "co", "ai", "app", "uk", "de", "fr", "es", "it", "nl",
    "eu", "ca", "au", "in", "us", "info", "tech", "site", "page", "blog", "xyz", "ch", "se", "no",
    "dk", "fi", "pl", "br", "mx", "jp", "cn", "ru", "ie", "pt", "be", "at", "nz", "sg", "edu",
    "gov", "cc", "ly", "gg", "sh", "so",
];

/// Whether a whitespace-free token is a URL, a domain or an e-mail address.
pub(crate) fn is_link_token(token: &str) -> bool {
    let t = token
        .trim_matches(|c: char| {
            matches!(
                c,
                '(' | ')' | '<' | '>' | '[' | ']' | ',' | ';' | '"' | '\''
            )
        })
        .to_ascii_lowercase();
    if t.contains("://") || t.starts_with("www.") || t.contains('@') {
        return true;
    }
    let host = t.split('/').next().unwrap_or("");
    let Some((name, tld)) = host.rsplit_once('.') else {
        return false;
    };
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && (TLDS.contains(&tld)
            && (t.contains('/') || matches!(tld, "com" | "io" | "dev" | "me" | "org")))
}

/// Replace URL and e-mail tokens with spaces (byte offsets are kept).
fn mask_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        out.push_str(&rest[..ws]);
        rest = &rest[ws..];
        let token_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..token_len];
        if is_link_token(token) {
            out.extend(std::iter::repeat_n(' ', token.len()));
        } else {
            out.push_str(token);
        }
        rest = &rest[token_len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_with_word_survives_multibyte_text() {
        assert!(ends_with_word("Go and", "and"));
        assert!(!ends_with_word("Goand", "and"));
        assert!(!ends_with_word("“", "or"));
        assert!(!ends_with_word("x”", "or"));
        assert!(!ends_with_word("é", "and"));
        // The issue's case: a skill after a curly quote in a list.
        let _ = find_skills("Languages: “Rust”, ‘Go’ and “PostgreSQL”\nGo and“ x”");
    }

    fn found(text: &str) -> Vec<String> {
        find_skills(text)
    }

    #[test]
    fn vocabulary_loads_and_is_consistent() {
        let v = Vocabulary::from_json(include_str!("../data/skills.json"));
        assert!(v.is_ok(), "{:?}", v.err());
        let v = vocabulary();
        assert!(v.len() >= 1200, "only {} skills", v.len());
        assert_eq!(v.canonical("Haxe"), Some("Haxe"));
        // Linguist names are strict: exact case inside a skills list only.
        assert_eq!(find_skills("Languages: Haxe, Rust"), ["Haxe", "Rust"]);
        assert!(find_skills("we used haxe once").is_empty());
        // No form (lower-cased) maps to two skills: from_json enforces it;
        // check again from the outside.
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for s in v.skills() {
            let mut forms: BTreeSet<String> = BTreeSet::new();
            forms.insert(s.name.to_lowercase());
            for f in s.aliases.iter().chain(&s.cased).chain(&s.strict) {
                forms.insert(f.to_lowercase());
            }
            for f in forms {
                if let Some(other) = seen.insert(f.clone(), &s.name) {
                    panic!("{f:?} maps to {other:?} and {:?}", s.name);
                }
            }
        }
        assert_eq!(canonical("k8s"), Some("Kubernetes"));
        assert_eq!(canonical("Postgres"), Some("PostgreSQL"));
        assert_eq!(canonical("ECMAScript"), Some("JavaScript"));
        for name in [
            "C++",
            "C#",
            ".NET",
            "Node.js",
            "CI/CD",
            "Project Management",
            "Stakeholder Management",
        ] {
            assert_eq!(canonical(name), Some(name));
        }
    }

    #[test]
    fn token_boundaries() {
        assert_eq!(
            found("JavaScript and TypeScript"),
            ["JavaScript", "TypeScript"]
        );
        assert_eq!(
            found("Java, C++, C#, Objective-C"),
            ["C#", "C++", "Java", "Objective-C"]
        );
        assert_eq!(found("Node.js and ASP.NET"), ["ASP.NET", "Node.js"]);
        assert_eq!(found("React Native apps"), ["React Native"]);
        assert_eq!(found("k8s, Postgres, psql"), ["Kubernetes", "PostgreSQL"]);
        assert_eq!(
            found("CI/CD pipelines with GitHub Actions"),
            ["CI/CD", "GitHub Actions"]
        );
        assert!(found("see https://github.com/jdoe and jdoe@python.org").is_empty());
        assert_eq!(
            found("AWS Lambda and S3"),
            ["Amazon S3", "Amazon Web Services", "AWS Lambda"]
        );
    }

    #[test]
    fn ambiguous_short_names() {
        assert!(found("I like to go to the gym and Go home").is_empty());
        assert!(found("Go-to-market strategy, R&D budget, C-suite").is_empty());
        assert_eq!(found("Languages: Go, Python, R"), ["Go", "Python", "R"]);
        assert_eq!(found("Built services in Go"), ["Go"]);
        assert_eq!(found("C/C++ embedded work"), ["C", "C++"]);
        assert_eq!(found("Golang microservices"), ["Go", "Microservices"]);
        assert!(found("John R. Smith met Julia in Spring 2019").is_empty());
        assert_eq!(found("- Spring\n- Julia"), ["Julia", "Spring"]);
        assert!(found("we must rest and excel at our work").is_empty());
        assert_eq!(found("REST APIs in Excel"), ["Excel", "REST APIs"]);
        let v = vocabulary();
        let m = v.scan_line("Go Rust", true);
        assert_eq!(m.len(), 2);
    }
}
