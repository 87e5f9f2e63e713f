//! Dates and date ranges as résumés write them.
//!
//! A date is `Jan 2020`, `January, 2020`, `Sept. 2019`, `Spring 2019`,
//! `03/2019`, `3.2019`, `2019-03`, `2019/03`, `Jun '19` or a bare year
//! 1950–2099; an open end is `Present`, `Current`, `Now`, `Today`,
//! `Ongoing`, `to date` (or `heute`, `aktuell`, `presente`, `actualidad`,
//! `atual`, `hoy`, `oggi`).
//! A range is two of them joined by `-`, `–`, `—`, `to`, `until`, `till`,
//! `through` or `~`; `Since 2019` is a range to the present. Dates are
//! normalised to `YYYY` or `YYYY-MM`, the open end to `present`.

/// A date or an open end, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateAtom {
    pub(crate) value: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) present: bool,
}

/// What the dates of a line say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LineDates {
    pub(crate) start: Option<String>,
    pub(crate) end: Option<String>,
    /// Byte spans of the date text (to remove it from the line).
    pub(crate) spans: Vec<(usize, usize)>,
    pub(crate) is_range: bool,
}

impl LineDates {
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn month_number(word: &str) -> Option<u32> {
    let w = word.to_ascii_lowercase();
    let months = [
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ];
    let full = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    for (i, (abbr, n)) in months.iter().enumerate() {
        if w == *abbr || w == full[i] || (*abbr == "sep" && w == "sept") {
            return Some(*n);
        }
    }
    None
}

fn is_year(digits: &str) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    let y: u32 = digits.parse().ok()?;
    (1950..=2099).contains(&y).then_some(y)
}

/// Read a run of ASCII digits at `i`.
fn digits_at(s: &str, i: usize) -> &str {
    let len = s[i..].bytes().take_while(u8::is_ascii_digit).count();
    &s[i..i + len]
}

fn letters_at(s: &str, i: usize) -> &str {
    let len = s[i..].bytes().take_while(u8::is_ascii_alphabetic).count();
    &s[i..i + len]
}

fn skip_spaces(s: &str, mut i: usize) -> usize {
    while s[i..].starts_with(' ') {
        i += 1;
    }
    i
}

/// A date or open end starting at byte `i` (at a word start).
fn atom_at(s: &str, i: usize) -> Option<DateAtom> {
    let bytes = s.as_bytes();
    let c = *bytes.get(i)?;
    if c.is_ascii_alphabetic() {
        let word = letters_at(s, i);
        let lower = word.to_ascii_lowercase();
        let after_word = i + word.len();
        if matches!(
            lower.as_str(),
            "present"
                | "current"
                | "now"
                | "today"
                | "ongoing"
                | "date"
                | "heute"
                | "aktuell"
                | "presente"
                | "actualidad"
                | "atual"
                | "hoy"
                | "oggi"
        ) {
            if s[after_word..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric)
            {
                return None;
            }
            return Some(DateAtom {
                value: "present".into(),
                start: i,
                end: after_word,
                present: true,
            });
        }
        let month = month_number(word);
        let season = matches!(
            lower.as_str(),
            "spring" | "summer" | "fall" | "autumn" | "winter"
        );
        if month.is_none() && !season {
            return None;
        }
        let mut j = after_word;
        if s[j..].starts_with('.') {
            j += 1;
        }
        if s[j..].starts_with(',') {
            j += 1;
        }
        j = skip_spaces(s, j);
        // "Jun '19", "Jun ’19": a two-digit year after an apostrophe.
        if let Some(rest) = s.get(j..)
            && let Some(stripped) = rest.strip_prefix('\'').or_else(|| rest.strip_prefix('’'))
            && let Some(m) = month
        {
            let two = digits_at(stripped, 0);
            let quote = rest.len() - stripped.len();
            if two.len() == 2
                && !stripped[2..]
                    .chars()
                    .next()
                    .is_some_and(char::is_alphanumeric)
            {
                let yy: u32 = two.parse().ok()?;
                let year = if yy <= 40 { 2000 + yy } else { 1900 + yy };
                return Some(DateAtom {
                    value: format!("{year}-{m:02}"),
                    start: i,
                    end: j + quote + 2,
                    present: false,
                });
            }
        }
        let digits = digits_at(s, j);
        let year = is_year(digits)?;
        let end = j + digits.len();
        if s[end..].chars().next().is_some_and(char::is_alphanumeric) {
            return None;
        }
        let value = match month {
            Some(m) => format!("{year}-{m:02}"),
            None => year.to_string(),
        };
        return Some(DateAtom {
            value,
            start: i,
            end,
            present: false,
        });
    }
    if c.is_ascii_digit() {
        let first = digits_at(s, i);
        let after = i + first.len();
        let sep = s[after..].chars().next();
        // MM/YYYY, MM.YYYY, MM-YYYY
        if (1..=2).contains(&first.len()) && matches!(sep, Some('/' | '.' | '-')) {
            let second = digits_at(s, after + 1);
            let m: u32 = first.parse().ok()?;
            let year = is_year(second)?;
            let end = after + 1 + second.len();
            if (1..=12).contains(&m) && !s[end..].chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                return Some(DateAtom {
                    value: format!("{year}-{m:02}"),
                    start: i,
                    end,
                    present: false,
                });
            }
            return None;
        }
        let year = is_year(first)?;
        // YYYY-MM, YYYY/MM (not YYYY-YYYY, which is a range)
        if matches!(sep, Some('/' | '-' | '.')) {
            let second = digits_at(s, after + 1);
            if (1..=2).contains(&second.len()) {
                let end = after + 1 + second.len();
                let m: u32 = second.parse().ok()?;
                let glued = s[end..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '/' || c == '.');
                if (1..=12).contains(&m) && !glued {
                    return Some(DateAtom {
                        value: format!("{year}-{m:02}"),
                        start: i,
                        end,
                        present: false,
                    });
                }
            }
        }
        if s[after..].chars().next().is_some_and(char::is_alphanumeric) {
            return None;
        }
        return Some(DateAtom {
            value: year.to_string(),
            start: i,
            end: after,
            present: false,
        });
    }
    None
}

/// All date atoms of a line, left to right.
pub(crate) fn atoms(line: &str) -> Vec<DateAtom> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut prev: Option<char> = None;
    while i < line.len() {
        let Some(c) = line[i..].chars().next() else {
            break;
        };
        let word_start =
            prev.is_none_or(|p| !p.is_alphanumeric() && p != '+' && p != '.' && p != '/');
        if word_start
            && c.is_ascii_alphanumeric()
            && let Some(atom) = atom_at(line, i)
        {
            i = atom.end;
            prev = line[..i].chars().next_back();
            out.push(atom);
            continue;
        }
        prev = Some(c);
        i += c.len_utf8();
    }
    out
}

fn is_range_separator(between: &str) -> bool {
    let t = between.trim().to_ascii_lowercase();
    matches!(
        t.as_str(),
        "-" | "–"
            | "—"
            | "−"
            | "~"
            | "to"
            | "until"
            | "till"
            | "through"
            | "thru"
            | "→"
            | "->"
            | "--"
            | "- to"
    ) || (t.is_empty() && between.contains('\t'))
}

/// The dates of a line: the first range if there is one, else the last
/// single date (an end or graduation date).
pub(crate) fn line_dates(line: &str) -> LineDates {
    let found = atoms(line);
    if found.is_empty() {
        return LineDates::default();
    }
    for pair in found.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if !a.present && is_range_separator(&line[a.end..b.start]) {
            // "to date" is an open end.
            return LineDates {
                start: Some(a.value.clone()),
                end: Some(b.value.clone()),
                spans: vec![(a.start, b.end)],
                is_range: true,
            };
        }
    }
    let lower = line.to_ascii_lowercase();
    if let Some(first) = found.iter().find(|a| !a.present) {
        let before = lower[..first.start].trim_end();
        if !first.present && (before.ends_with("since") || before.ends_with("from")) {
            return LineDates {
                start: Some(first.value.clone()),
                end: Some("present".into()),
                spans: vec![(first.start, first.end)],
                is_range: true,
            };
        }
    }
    match found.iter().rev().find(|a| !a.present) {
        Some(last) => LineDates {
            start: None,
            end: Some(last.value.clone()),
            spans: vec![(last.start, last.end)],
            is_range: false,
        },
        None => LineDates::default(),
    }
}

/// The line with its date text (and the separators around it) removed.
pub(crate) fn without_dates(line: &str, dates: &LineDates) -> String {
    let mut out = String::with_capacity(line.len());
    let mut last = 0usize;
    for &(s, e) in &dates.spans {
        out.push_str(&line[last..s]);
        out.push('\t');
        last = e;
    }
    out.push_str(&line[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(line: &str) -> (Option<String>, Option<String>, bool) {
        let d = line_dates(line);
        (d.start, d.end, d.is_range)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_owned())
    }

    #[test]
    fn ranges() {
        assert_eq!(
            range("Jan 2020 – Present"),
            (s("2020-01"), s("present"), true)
        );
        assert_eq!(
            range("Engineer (2016 - 2019)"),
            (s("2016"), s("2019"), true)
        );
        assert_eq!(
            range("03/2019 - 06/2021"),
            (s("2019-03"), s("2021-06"), true)
        );
        assert_eq!(
            range("2018-05 to 2020-11"),
            (s("2018-05"), s("2020-11"), true)
        );
        assert_eq!(
            range("September 2015 — June 2018"),
            (s("2015-09"), s("2018-06"), true)
        );
        assert_eq!(
            range("Sept. 2015 to current"),
            (s("2015-09"), s("present"), true)
        );
        assert_eq!(range("2019–2021"), (s("2019"), s("2021"), true));
        assert_eq!(range("Since 2019"), (s("2019"), s("present"), true));
        assert_eq!(
            range("Jun '19 – Present"),
            (s("2019-06"), s("present"), true)
        );
        assert_eq!(range("2021 – heute"), (s("2021"), s("present"), true));
        assert_eq!(range("Graduated May 2018"), (None, s("2018-05"), false));
        assert_eq!(range("BSc, 2012"), (None, s("2012"), false));
        assert_eq!(range("+1 (555) 123-4567"), (None, None, false));
        assert_eq!(range("Managed 2000 servers"), (None, s("2000"), false));
        assert_eq!(range("Go to market now"), (None, None, false));
    }

    #[test]
    fn removal() {
        let line = "Engineer, Acme\tJan 2020 – Present";
        let d = line_dates(line);
        assert_eq!(without_dates(line, &d).trim(), "Engineer, Acme");
    }
}
