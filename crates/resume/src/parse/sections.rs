//! Section headings.
//!
//! A line is a heading when, stripped of decoration (`#`, `*`, `:`, rules,
//! letter-spacing such as `E X P E R I E N C E`), it is one of the known
//! heading phrases below ("Work Experience", "Technical Skills",
//! "Licenses & Certifications", ...), in any case. A line `Label: content`
//! (or `Label<TAB>content`, from a table row) whose label is a heading phrase
//! starts that section with the content as its first line, except inside
//! experience, education and project sections, where such labels
//! ("Technologies: Go, Kafka") belong to the entry. Lines before the first
//! heading are the *preamble* (name, title, contact line).

use serde::{Deserialize, Serialize};

/// What a section is about, from its heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    /// Summary, profile, objective, about.
    Summary,
    /// Work experience, employment history.
    Experience,
    /// Education, academic background.
    Education,
    /// Skills, technologies, competencies.
    Skills,
    /// Projects, portfolio, open source.
    Projects,
    /// Certifications, licences, courses.
    Certifications,
    /// Spoken languages.
    Languages,
    /// Awards, honours, achievements.
    Awards,
    /// Publications, talks.
    Publications,
    /// Volunteering, activities.
    Volunteering,
    /// Interests, hobbies.
    Interests,
    /// References.
    References,
    /// Contact details.
    Contact,
    /// A recognised heading with no specific kind (memberships, personal
    /// sections such as "Life Philosophy", "Other Information"): it ends the
    /// section before it.
    Other,
}

const HEADINGS: &[(&str, SectionKind)] = {
    use SectionKind::*;
    &[
        ("summary", Summary),
        ("professional summary", Summary),
        ("career summary", Summary),
        ("executive summary", Summary),
        ("summary of qualifications", Summary),
        ("profile", Summary),
        ("professional profile", Summary),
        ("personal profile", Summary),
        ("career profile", Summary),
        ("about", Summary),
        ("about me", Summary),
        ("objective", Summary),
        ("career objective", Summary),
        ("professional objective", Summary),
        ("overview", Summary),
        ("personal statement", Summary),
        ("introduction", Summary),
        ("bio", Summary),
        ("experience", Experience),
        ("work experience", Experience),
        ("professional experience", Experience),
        ("relevant experience", Experience),
        ("employment", Experience),
        ("employment history", Experience),
        ("work history", Experience),
        ("career history", Experience),
        ("professional background", Experience),
        ("career", Experience),
        ("positions held", Experience),
        ("industry experience", Experience),
        ("technical experience", Experience),
        ("working experience", Experience),
        ("experience highlights", Experience),
        ("professional history", Experience),
        ("education", Education),
        ("academic background", Education),
        ("education and training", Education),
        ("academic qualifications", Education),
        ("qualifications", Education),
        ("academics", Education),
        ("education history", Education),
        ("educational background", Education),
        ("academic history", Education),
        ("skills", Skills),
        ("technical skills", Skills),
        ("core skills", Skills),
        ("key skills", Skills),
        ("top skills", Skills),
        ("hard skills", Skills),
        ("soft skills", Skills),
        ("skills and tools", Skills),
        ("skills and technologies", Skills),
        ("skills and expertise", Skills),
        ("skills and abilities", Skills),
        ("skills summary", Skills),
        ("skill set", Skills),
        ("skillset", Skills),
        ("core competencies", Skills),
        ("key competencies", Skills),
        ("competencies", Skills),
        ("technologies", Skills),
        ("tech stack", Skills),
        ("technology stack", Skills),
        ("tools", Skills),
        ("tools and technologies", Skills),
        ("technical proficiencies", Skills),
        ("proficiencies", Skills),
        ("expertise", Skills),
        ("areas of expertise", Skills),
        ("technical expertise", Skills),
        ("technical summary", Skills),
        ("programming languages", Skills),
        ("it skills", Skills),
        ("computer skills", Skills),
        ("toolbox", Skills),
        ("projects", Projects),
        ("personal projects", Projects),
        ("selected projects", Projects),
        ("side projects", Projects),
        ("key projects", Projects),
        ("notable projects", Projects),
        ("academic projects", Projects),
        ("open source", Projects),
        ("open source contributions", Projects),
        ("portfolio", Projects),
        ("certifications", Certifications),
        ("certification", Certifications),
        ("certificates", Certifications),
        ("licenses", Certifications),
        ("licences", Certifications),
        ("licenses and certifications", Certifications),
        ("licences and certifications", Certifications),
        ("certifications and licenses", Certifications),
        ("certifications and licences", Certifications),
        ("professional certifications", Certifications),
        ("courses", Certifications),
        ("courses and certifications", Certifications),
        ("certifications and courses", Certifications),
        ("training and certifications", Certifications),
        ("accreditations", Certifications),
        ("training", Certifications),
        ("languages", Languages),
        ("spoken languages", Languages),
        ("language skills", Languages),
        ("awards", Awards),
        ("honors", Awards),
        ("honours", Awards),
        ("awards and honors", Awards),
        ("awards and honours", Awards),
        ("honors and awards", Awards),
        ("achievements", Awards),
        ("accomplishments", Awards),
        ("awards and achievements", Awards),
        ("key achievements", Awards),
        ("publications", Publications),
        ("papers", Publications),
        ("talks", Publications),
        ("publications and talks", Publications),
        ("speaking", Publications),
        ("volunteering", Volunteering),
        ("volunteer experience", Volunteering),
        ("volunteer work", Volunteering),
        ("community involvement", Volunteering),
        ("leadership and activities", Volunteering),
        ("activities", Volunteering),
        ("extracurricular activities", Volunteering),
        ("interests", Interests),
        ("hobbies", Interests),
        ("hobbies and interests", Interests),
        ("interests and hobbies", Interests),
        ("personal interests", Interests),
        ("references", References),
        ("referees", References),
        ("contact", Contact),
        ("contact information", Contact),
        ("contact info", Contact),
        ("contact details", Contact),
        ("personal details", Contact),
        ("personal information", Contact),
        ("get in touch", Contact),
        // Grown on real-world résumés (template sections, US career-centre
        // samples, résumé-site exports).
        ("status", Summary),
        ("about myself", Summary),
        ("professional overview", Summary),
        ("career overview", Summary),
        ("experiences", Experience),
        ("internships", Experience),
        ("internship experience", Experience),
        ("research experience", Experience),
        ("teaching experience", Experience),
        ("employment experience", Experience),
        ("professional employment", Experience),
        ("relevant work experience", Experience),
        ("work and leadership experience", Experience),
        ("leadership experience", Experience),
        ("campus involvement", Experience),
        ("on campus involvement", Experience),
        ("involvement", Experience),
        ("academic experience", Experience),
        ("experience and projects", Experience),
        ("degrees", Education),
        ("education and certifications", Education),
        ("education and qualifications", Education),
        ("skill", Skills),
        ("strengths", Skills),
        ("key strengths", Skills),
        ("core strengths", Skills),
        ("fields", Skills),
        ("areas of interest and expertise", Skills),
        ("technical skills and tools", Skills),
        ("technologies and tools", Skills),
        ("tools and software", Skills),
        ("frameworks", Skills),
        ("operating systems", Skills),
        ("technical competencies", Skills),
        ("core qualifications", Skills),
        ("qualifications summary", Skills),
        ("abilities", Skills),
        ("projects and associations", Projects),
        ("projects and publications", Projects),
        ("research projects", Projects),
        ("licenses and certificates", Certifications),
        ("certificates and courses", Certifications),
        ("honors awards", Awards),
        ("honours awards", Awards),
        ("recognition", Awards),
        ("recognitions", Awards),
        ("scholarships", Awards),
        ("volunteer activities", Volunteering),
        ("community service", Volunteering),
        ("extracurriculars", Volunteering),
        ("life philosophy", Other),
        ("most proud of", Other),
        ("a day of my life", Other),
        ("governance", Other),
        ("affiliation", Other),
        ("affiliations", Other),
        ("professional affiliations", Other),
        ("memberships", Other),
        ("professional memberships", Other),
        ("samples", Other),
        ("other information", Other),
        ("additional information", Other),
        ("miscellaneous", Other),
        ("links", Contact),
        // Common headings of German, French, Spanish and Portuguese résumés.
        ("berufserfahrung", Experience),
        ("berufliche erfahrung", Experience),
        ("ausbildung", Education),
        ("bildung", Education),
        ("kenntnisse", Skills),
        ("fähigkeiten", Skills),
        ("sprachen", Languages),
        ("expérience professionnelle", Experience),
        ("expérience", Experience),
        ("expériences professionnelles", Experience),
        ("formation", Education),
        ("compétences", Skills),
        ("langues", Languages),
        ("experiencia", Experience),
        ("experiencia profesional", Experience),
        ("experiencia laboral", Experience),
        ("educación", Education),
        ("formación", Education),
        ("habilidades", Skills),
        ("idiomas", Languages),
        ("experiência profissional", Experience),
        ("formação", Education),
        ("profiles", Contact),
    ]
};

/// The normalised key of a heading candidate: lower case, `&` as "and",
/// letters and single spaces only; letter-spaced words joined.
fn heading_key(text: &str) -> String {
    let lowered = text.to_lowercase().replace(['&', '+'], " and ");
    let words: Vec<String> = lowered
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    if words.len() >= 4 && words.iter().all(|w| w.chars().count() == 1) {
        return words.concat();
    }
    words.join(" ")
}

fn lookup(key: &str) -> Option<SectionKind> {
    let exact = |k: &str| {
        HEADINGS
            .iter()
            .find(|(phrase, _)| *phrase == k)
            .map(|(_, kind)| *kind)
    };
    exact(key).or_else(|| {
        // Templates that colour a heading's first letters draw them apart:
        // "Edu cation", "Pro fessional Experience", "int erests".
        let (first, rest) = key.split_once(' ')?;
        (first.chars().count() <= 3).then(|| exact(&format!("{first}{rest}")))?
    })
}

fn starts_with_bullet(line: &str) -> bool {
    let mut chars = line.chars();
    matches!(
        (chars.next(), chars.next()),
        (
            Some('-' | '*' | '•' | '▪' | '◦' | '●' | '‣' | '–' | '+'),
            Some(' ')
        )
    )
}

/// A heading without the rule drawn after or before it in plain text
/// (`SKILLS ------`, `==== EDUCATION ====`): runs of three or more `-`, `=`,
/// `_`, `*`, `~`, `#` or box-drawing characters at either end.
fn strip_rules(line: &str) -> &str {
    let rule = |c: char| matches!(c, '-' | '=' | '_' | '*' | '~' | '#' | '─' | '━' | '═');
    let mut s = line;
    for _ in 0..2 {
        let end_run = s.chars().rev().take_while(|&c| rule(c) || c == ' ').count();
        if s.chars().rev().take_while(|&c| rule(c)).count() >= 3 {
            let keep = s.chars().count() - end_run;
            s = s
                .char_indices()
                .nth(keep)
                .map_or(s, |(i, _)| &s[..i])
                .trim_end();
        }
        let start_run: usize = s
            .chars()
            .take_while(|&c| rule(c) || c == ' ')
            .map(char::len_utf8)
            .sum();
        if s.chars().take_while(|&c| rule(c)).count() >= 3 {
            s = s.get(start_run..).unwrap_or(s).trim_start();
        }
    }
    s
}

/// Which `Label: content` lines may start a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inline {
    /// Any heading phrase as a label.
    Any,
    /// Only the main headings (`Skills:`, `Education:`, `Languages:`, ...).
    Major,
    /// None.
    No,
}

const MAJOR_INLINE: &[&str] = &[
    "skills",
    "technical skills",
    "core skills",
    "key skills",
    "education",
    "experience",
    "work experience",
    "certifications",
    "languages",
    "summary",
    "profile",
    "interests",
    "hobbies",
    "references",
    "awards",
];

/// `(kind, heading as written, inline content)` when the line is a heading.
pub(crate) fn heading_of(
    line: &str,
    inline: Inline,
) -> Option<(SectionKind, String, Option<String>)> {
    let trimmed = strip_rules(line.trim());
    if trimmed.is_empty() || trimmed.chars().count() > 60 || starts_with_bullet(trimmed) {
        return None;
    }
    let core = trimmed.trim_matches(|c: char| !c.is_alphanumeric());
    if !core.is_empty()
        && core.chars().count() <= 45
        && let Some(kind) = lookup(&heading_key(core))
    {
        return Some((kind, core.to_owned(), None));
    }
    // Bilingual headings: "Berufserfahrung / Experience", "Skills | Skills".
    if core.split_whitespace().count() <= 8 && (core.contains(" / ") || core.contains(" | ")) {
        let kind = core
            .split(" / ")
            .flat_map(|p| p.split(" | "))
            .find_map(|p| lookup(&heading_key(p.trim())));
        if let Some(kind) = kind {
            return Some((kind, core.to_owned(), None));
        }
    }
    if inline == Inline::No {
        return None;
    }
    let split = trimmed.find([':', '\t'])?;
    let (label, rest) = (&trimmed[..split], trimmed[split + 1..].trim());
    let label = label.trim_matches(|c: char| !c.is_alphanumeric());
    if label.is_empty() || rest.is_empty() || label.chars().count() > 40 {
        return None;
    }
    let key = heading_key(label);
    if inline == Inline::Major && !MAJOR_INLINE.contains(&key.as_str()) {
        return None;
    }
    let kind = lookup(&key)?;
    Some((kind, label.to_owned(), Some(rest.to_owned())))
}

/// A section as found in the text.
#[derive(Debug, Clone)]
pub(crate) struct SectionSpan {
    pub(crate) heading: String,
    pub(crate) kind: SectionKind,
    /// Index of the heading line.
    pub(crate) heading_line: usize,
    /// Body lines: `heading_line + 1 .. end`.
    pub(crate) end: usize,
    /// Content that followed the label on the heading line.
    pub(crate) inline: Option<String>,
}

/// The text as lines, with its sections.
#[derive(Debug)]
pub(crate) struct Doc<'a> {
    /// Trimmed lines; blank lines are kept as `""`.
    pub(crate) lines: Vec<&'a str>,
    pub(crate) sections: Vec<SectionSpan>,
    line_section: Vec<Option<usize>>,
}

impl<'a> Doc<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let mut sections: Vec<SectionSpan> = Vec::new();
        let mut line_section = vec![None; lines.len()];
        for (i, line) in lines.iter().enumerate() {
            let current = sections.last().map(|s| s.kind);
            let in_entries = matches!(
                current,
                Some(SectionKind::Experience | SectionKind::Education | SectionKind::Projects)
            );
            let previous_blank = i == 0 || lines[i - 1].is_empty();
            let mode = match (in_entries, previous_blank) {
                (false, _) => Inline::Any,
                (true, true) => Inline::Major,
                (true, false) => Inline::No,
            };
            if let Some((kind, heading, inline)) = heading_of(line, mode) {
                if let Some(last) = sections.last_mut() {
                    last.end = i;
                }
                sections.push(SectionSpan {
                    heading,
                    kind,
                    heading_line: i,
                    end: lines.len(),
                    inline,
                });
            }
            line_section[i] = sections.len().checked_sub(1);
        }
        Doc {
            lines,
            sections,
            line_section,
        }
    }

    /// The kind of the section a line belongs to (a heading belongs to its
    /// own section); `None` in the preamble.
    pub(crate) fn kind_of_line(&self, i: usize) -> Option<SectionKind> {
        self.line_section
            .get(i)
            .copied()
            .flatten()
            .and_then(|s| self.sections.get(s))
            .map(|s| s.kind)
    }

    /// The section's lines: the inline content first, then the body (blank
    /// lines kept as `""`, leading and trailing blanks dropped).
    pub(crate) fn section_lines<'s>(&'s self, s: &'s SectionSpan) -> Vec<&'s str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(inline) = &s.inline {
            out.push(inline.as_str());
        }
        let body = self.lines.get(s.heading_line + 1..s.end).unwrap_or(&[]);
        out.extend(body.iter().copied());
        while out.last().is_some_and(|l| l.is_empty()) {
            out.pop();
        }
        let lead = out.iter().take_while(|l| l.is_empty()).count();
        out.drain(..lead);
        out
    }

    pub(crate) fn section_text(&self, s: &SectionSpan) -> String {
        self.section_lines(s).join("\n")
    }

    /// Lines before the first heading.
    pub(crate) fn preamble_lines(&self) -> Vec<&'a str> {
        let end = self
            .sections
            .first()
            .map_or(self.lines.len(), |s| s.heading_line);
        self.lines[..end].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_from_real_templates() {
        let kind = |l: &str| heading_of(l, Inline::No).map(|h| h.0);
        assert_eq!(
            kind(
                "SKILLS -------------------------------------------------------------------------"
            ),
            Some(SectionKind::Skills)
        );
        assert_eq!(kind("==== EDUCATION ===="), Some(SectionKind::Education));
        assert_eq!(kind("Edu cation"), Some(SectionKind::Education));
        assert_eq!(
            kind("Pro fessional Experience"),
            Some(SectionKind::Experience)
        );
        assert_eq!(kind("ON CAMPUS INVOLVEMENT"), Some(SectionKind::Experience));
        assert_eq!(kind("STRENGTHS"), Some(SectionKind::Skills));
        assert_eq!(kind("LIFE PHILOSOPHY"), Some(SectionKind::Other));
        assert_eq!(
            kind("Berufserfahrung / Experience"),
            Some(SectionKind::Experience)
        );
        assert_eq!(kind("Compétences"), Some(SectionKind::Skills));
        assert_eq!(kind("Go / Rust / Python"), None);
        // Role words alone are not headings.
        assert_eq!(kind("Volunteer"), None);
        assert_eq!(kind("Leadership"), None);
        assert_eq!(strip_rules("-- a --"), "-- a --");
    }

    #[test]
    fn headings() {
        let h = |l: &str| heading_of(l, Inline::Any);
        assert_eq!(
            h("## Work Experience"),
            Some((SectionKind::Experience, "Work Experience".into(), None))
        );
        assert_eq!(
            h("E X P E R I E N C E").map(|x| x.0),
            Some(SectionKind::Experience)
        );
        assert_eq!(
            h("LICENSES & CERTIFICATIONS:").map(|x| x.0),
            Some(SectionKind::Certifications)
        );
        assert_eq!(
            h("Skills: Rust, Go"),
            Some((
                SectionKind::Skills,
                "Skills".into(),
                Some("Rust, Go".into())
            ))
        );
        assert_eq!(h("- Skills"), None);
        assert_eq!(h("Experienced engineer"), None);
        assert_eq!(heading_of("Technologies: Go", Inline::No), None);
        assert_eq!(heading_of("Technologies: Go", Inline::Major), None);
        assert!(heading_of("Skills: Go", Inline::Major).is_some());
    }

    #[test]
    fn doc_sections() {
        let text = "Jane Doe\njane@x.io\n\nEXPERIENCE\nEngineer, Acme\n- did\n\nSkills: Go\nRust\n";
        let doc = Doc::new(text);
        assert_eq!(doc.preamble_lines(), ["Jane Doe", "jane@x.io", ""]);
        assert_eq!(doc.sections.len(), 2);
        assert_eq!(doc.section_text(&doc.sections[0]), "Engineer, Acme\n- did");
        assert_eq!(doc.section_text(&doc.sections[1]), "Go\nRust");
        assert_eq!(doc.kind_of_line(4), Some(SectionKind::Experience));
    }
}
