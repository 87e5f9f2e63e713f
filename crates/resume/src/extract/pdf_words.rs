//! Runs of text (words joined by spaces) from positioned PDF glyphs,
//! independent of the order the content stream draws them in and of the
//! advance widths the fonts report.
//!
//! Real-world PDFs break both assumptions a simple extractor makes:
//! browsers draw justified lines piece by piece out of order, some fonts
//! report zero or doubled advance widths, LaTeX fonts draw no space glyph at
//! all (the space is only a gap), and letter-spaced headings (`J A R E D`)
//! have a gap after every letter. So:
//!
//! 1. glyphs are grouped into baselines (sorted by y, a baseline takes the
//!    glyphs within 0.3 em of its first one) and sorted by x; a glyph drawn
//!    twice at the same place (fake bold) is kept once;
//! 2. per baseline, the reported widths are corrected with whichever model
//!    fits the gaps between neighbouring glyphs best: widths as reported plus
//!    a constant letter spacing, widths scaled by a constant, or (widths
//!    unusable) a constant advance. The residual gap after the model is the
//!    real white space;
//! 3. a residual gap wider than about a fifth of an em (or a space glyph) is
//!    a space between words; wider than one em ends the run (a tab stop, a
//!    column gap). A baseline that has a space glyph after nearly every
//!    letter (`J A R E D  R I C H A R D S`) ignores them and breaks words
//!    where the step between letters is a third of an em wider than usual;
//! 4. glyph text is normalised for PDFs: a drawn U+00AD (soft hyphen) and
//!    U+2010/U+2011 are a plain hyphen (a U+00AD directly followed by a
//!    hyphen is dropped: some Word exports draw both).
//!
//! Everything is O(n log n) in the number of glyphs (sorts and medians).

use super::layout::Glyph;

/// A run of text on one baseline.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub(crate) x0: f64,
    pub(crate) x1: f64,
    pub(crate) y: f64,
    pub(crate) size: f64,
    pub(crate) text: String,
}

#[derive(Debug, Clone)]
struct G<'a> {
    x: f64,
    y: f64,
    w: f64,
    size: f64,
    text: &'a str,
    space: bool,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn is_hyphen(text: &str) -> bool {
    matches!(text, "-" | "\u{2010}" | "\u{2011}")
}

/// The glyphs of a page as runs, in drawing order (the reading order of a
/// line is rebuilt from the runs' positions by the caller).
pub(crate) fn runs(glyphs: &[Glyph]) -> Vec<Run> {
    let items: Vec<G<'_>> = glyphs
        .iter()
        .filter(|g| g.x.is_finite() && g.y.is_finite() && g.size.is_finite() && g.size > 0.0)
        .filter(|g| !g.text.is_empty())
        .map(|g| G {
            x: g.x,
            y: g.y,
            w: if g.width.is_finite() {
                g.width.max(0.0)
            } else {
                0.0
            },
            size: g.size,
            text: g.text.as_str(),
            space: g.text.chars().all(char::is_whitespace),
        })
        .collect();
    // Baselines: glyphs sorted by y, each baseline takes the glyphs within
    // 0.3 em of its first one.
    let mut by_y: Vec<usize> = (0..items.len()).collect();
    by_y.sort_by(|&a, &b| items[a].y.total_cmp(&items[b].y));
    let mut baseline = vec![0usize; items.len()];
    let mut count = 0usize;
    let mut first: Option<usize> = None;
    for &i in &by_y {
        let same = first.is_some_and(|f| {
            (items[i].y - items[f].y).abs() <= 0.3 * items[f].size.min(items[i].size).max(1.0)
        });
        if !same {
            count += 1;
            first = Some(i);
        }
        baseline[i] = count - 1;
    }
    // One width model per baseline, from neighbours in drawing order.
    let mut pairs: Vec<Vec<(usize, f64)>> = vec![Vec::new(); count];
    for i in 1..items.len() {
        let (a, b) = (&items[i - 1], &items[i]);
        if baseline[i - 1] == baseline[i] && !a.space && !b.space {
            let d = b.x - a.x;
            if d > 0.0 && d < 1.5 * a.size {
                pairs[baseline[i]].push((i - 1, d));
            }
        }
    }
    let models: Vec<Model> = pairs.iter().map(|p| fit_model(&items, p)).collect();
    let spaced = letter_spaced_baselines(&items, &baseline, count);

    let mut out = Vec::new();
    let mut current: Option<Building> = None;
    let mut pending_space = false;
    for (i, g) in items.iter().enumerate() {
        if g.space {
            pending_space = true;
            continue;
        }
        let next = items.get(i + 1);
        let model = models.get(baseline[i]).copied().unwrap_or(Model::PLAIN);
        let mut advance = model.advance(g);
        if model.constant.is_none() && g.w <= 0.05 * g.size {
            // No usable width: the next glyph's position tells, if it moved.
            advance = next
                .filter(|_| baseline.get(i + 1) == baseline.get(i))
                .map(|n| n.x - g.x)
                .filter(|d| *d > 0.05 * g.size && *d < 1.2 * g.size)
                .unwrap_or(0.0);
        }
        let advance = advance.clamp(0.0, 4.0 * g.size);
        let text = match g.text {
            "\u{ad}" if next.is_some_and(|n| is_hyphen(n.text)) => {
                if let Some(run) = current.as_mut() {
                    run.last = run.last.max(g.x + advance);
                    run.last_x = g.x;
                }
                continue;
            }
            t if t
                .chars()
                .all(|c| matches!(c, '-' | '\u{ad}' | '\u{2010}' | '\u{2011}')) =>
            {
                "-"
            }
            t => t,
        };
        let joined = match current.as_mut() {
            Some(run) => {
                let size = run.size.max(g.size);
                let stacked = (g.x - run.last_x).abs() < 0.05 * size;
                let gap = if stacked { 0.0 } else { g.x - run.end() };
                let same_line = (g.y - run.y).abs() <= 0.35 * size;
                if same_line && gap >= -0.6 * size && gap <= 1.0 * size {
                    let word_break = match spaced.get(baseline[i]).copied().flatten() {
                        // A space glyph after every letter: only wide gaps count.
                        Some(limit) => g.x - run.last_x > limit,
                        None => pending_space || gap > model.space * size,
                    };
                    run.last_x = g.x;
                    if word_break && !run.text.ends_with(' ') {
                        run.text.push(' ');
                    }
                    run.text.push_str(text);
                    run.last = run.last.max(g.x + advance);
                    run.chars += text.chars().count();
                    run.size = size;
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if !joined {
            if let Some(run) = current.take() {
                out.push(run.finish());
            }
            current = Some(Building {
                x0: g.x,
                last_x: g.x,
                last: g.x + advance,
                y: g.y,
                size: g.size,
                chars: text.chars().count(),
                text: text.to_owned(),
            });
        }
        pending_space = false;
    }
    if let Some(run) = current {
        out.push(run.finish());
    }
    out.retain(|r| !r.text.trim().is_empty());
    for r in out.iter_mut() {
        let trimmed = r.text.trim();
        if trimmed.len() != r.text.len() {
            r.text = trimmed.to_owned();
        }
    }
    out
}

/// Baselines drawn letter by letter with a space glyph after every letter
/// (`J A R E D  R I C H A R D S`): for each, the distance between letter
/// origins above which a word ends (the usual step plus a third of an em).
fn letter_spaced_baselines(items: &[G<'_>], baseline: &[usize], count: usize) -> Vec<Option<f64>> {
    let mut letters: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut spaces = vec![0usize; count];
    for (i, g) in items.iter().enumerate() {
        let Some(&b) = baseline.get(i) else { continue };
        if g.space {
            if let Some(s) = spaces.get_mut(b) {
                *s += 1;
            }
        } else if let Some(l) = letters.get_mut(b) {
            l.push(i);
        }
    }
    letters
        .iter()
        .zip(&spaces)
        .map(|(idx, &n_spaces)| {
            let single = idx
                .iter()
                .all(|&i| items.get(i).is_some_and(|g| g.text.chars().count() == 1));
            if idx.len() < 4 || !single || n_spaces * 10 < (idx.len() - 1) * 7 {
                return None;
            }
            let mut steps: Vec<f64> = idx
                .windows(2)
                .filter_map(|w| Some(items.get(w[1])?.x - items.get(w[0])?.x))
                .filter(|d| *d > 0.0)
                .collect();
            let size = idx
                .first()
                .and_then(|&i| items.get(i))
                .map_or(10.0, |g| g.size);
            median(&mut steps).map(|m| m + 0.33 * size)
        })
        .collect()
}

/// A run being built.
struct Building {
    x0: f64,
    /// The right edge of the glyphs so far, by the width model.
    last: f64,
    /// The origin of the last glyph.
    last_x: f64,
    y: f64,
    size: f64,
    chars: usize,
    text: String,
}

impl Building {
    /// The right edge; when the glyphs did not advance (fonts reporting zero
    /// widths, positions never moving), half an em per character.
    fn end(&self) -> f64 {
        if self.last - self.x0 < 0.25 * self.size * self.chars as f64 {
            self.x0 + 0.5 * self.size * self.chars as f64
        } else {
            self.last
        }
    }

    fn finish(self) -> Run {
        Run {
            x0: self.x0,
            x1: self.end(),
            y: self.y,
            size: self.size,
            text: self.text,
        }
    }
}

/// The width model of one baseline: `advance(g) = g.w * scale + extra`, or a
/// constant advance when the reported widths are unusable.
#[derive(Debug, Clone, Copy)]
struct Model {
    scale: f64,
    extra: f64,
    constant: Option<f64>,
    /// The residual gap (in em) above which two glyphs are separate words:
    /// 0.12 em when the model fits the glyphs exactly (LaTeX's tightest
    /// justified spaces are under 0.2 em), more when it fits loosely.
    space: f64,
}

impl Model {
    fn advance(&self, g: &G<'_>) -> f64 {
        match self.constant {
            Some(c) => c,
            None => g.w * self.scale + self.extra,
        }
    }
}

impl Model {
    const PLAIN: Model = Model {
        scale: 1.0,
        extra: 0.0,
        constant: None,
        space: 0.15,
    };
}

fn fit_model(items: &[G<'_>], pairs: &[(usize, f64)]) -> Model {
    let plain = Model::PLAIN;
    let pairs: Vec<(&G<'_>, f64)> = pairs
        .iter()
        .filter_map(|&(i, d)| items.get(i).map(|g| (g, d)))
        .collect();
    if pairs.len() < 3 {
        return plain;
    }
    let usable = pairs
        .iter()
        .filter(|(g, _)| g.w > 0.05 * g.size && g.w < 1.6 * g.size)
        .count();
    let residual_spread = |m: &Model| {
        let mut r: Vec<f64> = pairs
            .iter()
            .map(|(g, d)| ((d - m.advance(g)) / g.size).abs())
            .collect();
        median(&mut r).unwrap_or(f64::INFINITY)
    };
    let mut candidates = Vec::new();
    if usable * 2 >= pairs.len() {
        let mut extra: Vec<f64> = pairs.iter().map(|(g, d)| d - g.w).collect();
        let mut ratio: Vec<f64> = pairs
            .iter()
            .filter(|(g, _)| g.w > 0.05 * g.size)
            .map(|(g, d)| d / g.w)
            .collect();
        candidates.push(plain);
        if let Some(e) = median(&mut extra) {
            candidates.push(Model {
                scale: 1.0,
                extra: e.max(0.0),
                constant: None,
                space: 0.15,
            });
        }
        if let Some(r) = median(&mut ratio) {
            candidates.push(Model {
                scale: r.clamp(0.3, 3.0),
                extra: 0.0,
                constant: None,
                space: 0.15,
            });
        }
    } else {
        let mut deltas: Vec<f64> = pairs.iter().map(|(_, d)| *d).collect();
        if let Some(c) = median(&mut deltas) {
            candidates.push(Model {
                scale: 1.0,
                extra: 0.0,
                constant: Some(c),
                space: 0.15,
            });
        }
    }
    let mut best = plain;
    let mut best_spread = f64::INFINITY;
    for m in candidates {
        let spread = residual_spread(&m);
        if spread + 1e-9 < best_spread {
            best = m;
            best_spread = spread;
        }
    }
    best.space = (0.1 + 3.0 * best_spread).clamp(0.12, 0.3);
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glyph(x: f64, w: f64, text: &str) -> Glyph {
        Glyph {
            x,
            y: 100.0,
            width: w,
            size: 10.0,
            text: text.to_owned(),
        }
    }

    fn text_of(glyphs: &[Glyph]) -> Vec<String> {
        runs(glyphs).into_iter().map(|r| r.text).collect()
    }

    #[test]
    fn gaps_without_space_glyphs_are_spaces() {
        // "ab cd" with a 3.3 pt gap and no space glyph (LaTeX).
        let g = [
            glyph(0.0, 5.0, "a"),
            glyph(5.0, 5.0, "b"),
            glyph(13.3, 5.0, "c"),
            glyph(18.3, 5.0, "d"),
            glyph(23.3, 5.0, "e"),
        ];
        assert_eq!(text_of(&g), ["ab cde"]);
    }

    #[test]
    fn stacked_zero_width_glyphs_keep_drawing_order() {
        // Typst via pdf-extract: a string's glyphs all at its start.
        let mut g: Vec<Glyph> = "Edu"
            .chars()
            .map(|c| glyph(0.0, 0.0, &c.to_string()))
            .collect();
        g.extend("cation".chars().map(|c| glyph(15.5, 0.0, &c.to_string())));
        assert_eq!(text_of(&g), ["Education"]);
    }

    #[test]
    fn zero_and_doubled_widths() {
        let zero: Vec<Glyph> = "john"
            .chars()
            .enumerate()
            .map(|(i, c)| glyph(i as f64 * 5.0, 0.0, &c.to_string()))
            .chain(
                "doe"
                    .chars()
                    .enumerate()
                    .map(|(i, c)| glyph(23.0 + i as f64 * 5.0, 0.0, &c.to_string())),
            )
            .collect();
        assert_eq!(text_of(&zero), ["john doe"]);
        let doubled: Vec<Glyph> = "systems"
            .chars()
            .enumerate()
            .map(|(i, c)| glyph(i as f64 * 5.0, 10.0, &c.to_string()))
            .chain(
                "work"
                    .chars()
                    .enumerate()
                    .map(|(i, c)| glyph(38.0 + i as f64 * 5.0, 10.0, &c.to_string())),
            )
            .collect();
        assert_eq!(text_of(&doubled), ["systems work"]);
    }

    #[test]
    fn letter_spaced_words() {
        // letters 5 wide with 4 of letter spacing; words 12 apart.
        let mut g = Vec::new();
        let mut x = 0.0;
        for word in ["JARED", "RICHARDS"] {
            for c in word.chars() {
                g.push(glyph(x, 5.0, &c.to_string()));
                x += 9.0;
            }
            x += 4.0;
        }
        assert_eq!(text_of(&g), ["JARED RICHARDS"]);
    }

    #[test]
    fn letter_spaced_with_space_glyphs() {
        // "J A R E D  R I C H A R D S": a space glyph after every letter.
        let mut g = Vec::new();
        let mut x = 0.0;
        for word in ["JARED", "RICHARDS"] {
            for c in word.chars() {
                g.push(glyph(x, 6.0, &c.to_string()));
                g.push(glyph(x + 6.0, 2.5, " "));
                x += 10.0;
            }
            x += 6.0;
        }
        assert_eq!(text_of(&g), ["JARED RICHARDS"]);
        // Ordinary words with spaces are untouched.
        let mut g = Vec::new();
        for (i, c) in "ab cd ef".chars().enumerate() {
            g.push(glyph(i as f64 * 5.0, 5.0, &c.to_string()));
        }
        assert_eq!(text_of(&g), ["ab cd ef"]);
    }

    #[test]
    fn soft_hyphen_pairs() {
        let g = [
            glyph(0.0, 5.0, "5"),
            glyph(5.0, 3.0, "\u{ad}"),
            glyph(8.0, 3.0, "\u{2010}"),
            glyph(11.0, 5.0, "5"),
            glyph(16.0, 5.0, "5"),
            glyph(21.0, 3.0, "-\u{ad}\u{2010}"),
            glyph(24.0, 5.0, "6"),
        ];
        assert_eq!(text_of(&g), ["5-55-6"]);
    }

    #[test]
    fn far_apart_is_two_runs_and_junk_is_ignored() {
        let g = [
            glyph(0.0, 5.0, "a"),
            glyph(5.0, 5.0, "b"),
            glyph(100.0, 5.0, "c"),
            Glyph {
                x: f64::NAN,
                y: 1.0,
                width: 1.0,
                size: 1.0,
                text: "x".to_owned(),
            },
        ];
        assert_eq!(text_of(&g), ["ab", "c"]);
        assert!(runs(&[]).is_empty());
    }
}
