//! Reading order for PDF pages, from positioned glyphs.
//!
//! 1. Glyphs, in the order the content stream draws them, are joined into
//!    *fragments*: runs on one baseline without a gap wider than one em.
//! 2. A page is two-column when a vertical gutter in the middle 60 % of the
//!    page is crossed by few fragments and has a left-aligned column of real
//!    text on each side (right-aligned dates next to job titles do not make a
//!    column: their left edges are ragged and they hold little text).
//! 3. Fragments that cross the gutter (a full-width header, a full-width
//!    section) cut the page into bands; each band is read left column first,
//!    then right column. Within a region, fragments on one baseline make a
//!    line (far-apart pieces are joined with a tab), lines run top to bottom,
//!    and a wide vertical gap becomes a blank line.
//! 4. On the first page the largest text near the top (the name, usually)
//!    is read first, wherever its column is.

/// One glyph as drawn: position of its origin (top-down y), advance width,
/// font size in page units, and its text.
#[derive(Debug, Clone)]
pub(crate) struct Glyph {
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) width: f64,
    pub(crate) size: f64,
    pub(crate) text: String,
}

/// The glyphs of one page and the page's size.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageGlyphs {
    pub(crate) width: f64,
    pub(crate) height: f64,
    pub(crate) glyphs: Vec<Glyph>,
    /// The page's web link annotations.
    pub(crate) links: Vec<super::pdf_links::Link>,
}

#[derive(Debug, Clone)]
struct Frag {
    x0: f64,
    x1: f64,
    y: f64,
    size: f64,
    text: String,
}

#[derive(Debug, Clone)]
struct Line {
    y: f64,
    size: f64,
    text: String,
}

/// The text of all pages, pages separated by a blank line.
pub(crate) fn pages_to_text(pages: &[PageGlyphs]) -> String {
    let mut out = String::new();
    for (index, page) in pages.iter().enumerate() {
        let lines = page_lines(page, index == 0);
        if lines.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        for line in lines {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// The page's lines in reading order; an empty string is a paragraph break.
fn page_lines(page: &PageGlyphs, first_page: bool) -> Vec<String> {
    let frags = fragments(&page.glyphs, &page.links);
    if frags.is_empty() {
        return Vec::new();
    }
    let width = if page.width > 1.0 {
        page.width
    } else {
        frags.iter().map(|f| f.x1).fold(1.0, f64::max)
    };
    let mut regions: Vec<Vec<Line>> = match gutter(&frags, width) {
        Some(g) => two_column_regions(&frags, g, page.height),
        None => vec![assemble(frags.iter().collect())],
    };
    if first_page {
        title_first(&mut regions, page.height, &frags);
    }
    let mut out = Vec::new();
    for region in regions {
        if region.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(String::new());
        }
        let mut prev: Option<&Line> = None;
        for line in &region {
            // A wide gap, or a change of type size (a name above its
            // tagline), is a paragraph break.
            if let Some(p) = prev
                && (line.y - p.y > 2.0 * p.size.max(line.size)
                    || p.size.max(line.size) > 1.6 * p.size.min(line.size))
            {
                out.push(String::new());
            }
            out.push(line.text.clone());
            prev = Some(line);
        }
    }
    out
}

/// Join glyphs into fragments ([`super::pdf_words`]), with the addresses of
/// link annotations attached ([`super::pdf_links`]).
fn fragments(glyphs: &[Glyph], links: &[super::pdf_links::Link]) -> Vec<Frag> {
    let mut runs = super::pdf_words::runs(glyphs);
    super::pdf_links::attach(&mut runs, links);
    runs.into_iter()
        .map(|r| Frag {
            x0: r.x0,
            x1: r.x1,
            y: r.y,
            size: r.size,
            text: r.text,
        })
        .collect()
}

fn text_len(f: &Frag) -> usize {
    f.text.chars().filter(|c| !c.is_whitespace()).count()
}

/// The x of a column gutter, if the page has two columns.
fn gutter(frags: &[Frag], width: f64) -> Option<f64> {
    if frags.len() < 6 || !(width.is_finite() && width > 50.0) {
        return None;
    }
    let lo = (width * 0.2).floor() as i64;
    let hi = (width * 0.8).ceil() as i64;
    // Maximal runs of x with the same number of crossing fragments.
    let mut runs: Vec<(usize, i64, i64)> = Vec::new(); // (crossings, start, len)
    for x in lo..=hi {
        let xf = x as f64;
        let crossings = frags
            .iter()
            .filter(|f| f.x0 < xf - 0.5 && f.x1 > xf + 0.5)
            .count();
        match runs.last_mut() {
            Some(r) if r.0 == crossings => r.2 += 1,
            _ => runs.push((crossings, x, 1)),
        }
    }
    runs.retain(|r| r.2 >= 6 && r.0 * 4 <= frags.len());
    runs.sort_by(|a, b| a.0.cmp(&b.0).then(b.2.cmp(&a.2)).then(a.1.cmp(&b.1)));
    runs.into_iter()
        .map(|(_, start, len)| start as f64 + len as f64 / 2.0)
        .find(|&g| is_column_gutter(frags, g))
}

/// Whether `g` separates two columns of real, left-aligned text that run
/// alongside each other.
fn is_column_gutter(frags: &[Frag], g: f64) -> bool {
    let left: Vec<&Frag> = frags.iter().filter(|f| f.x1 <= g).collect();
    let right: Vec<&Frag> = frags.iter().filter(|f| f.x0 >= g).collect();
    if left.len() < 3 || right.len() < 3 {
        return false;
    }
    let total: usize = frags.iter().map(text_len).sum();
    let left_chars: usize = left.iter().map(|f| text_len(f)).sum();
    let right_chars: usize = right.iter().map(|f| text_len(f)).sum();
    if left_chars * 100 < total * 12 || right_chars * 100 < total * 12 {
        return false;
    }
    let span = |v: &[&Frag]| {
        let top = v.iter().map(|f| f.y).fold(f64::INFINITY, f64::min);
        let bottom = v.iter().map(|f| f.y).fold(f64::NEG_INFINITY, f64::max);
        (top, bottom)
    };
    let (lt, lb) = span(&left);
    let (rt, rb) = span(&right);
    let overlap = lb.min(rb) - lt.max(rt);
    let shorter = (lb - lt).min(rb - rt);
    if overlap <= 0.0 || overlap < 0.3 * shorter {
        return false;
    }
    // A column is left-aligned: most of its fragments start at one x.
    let aligned = |v: &[&Frag]| {
        let mut starts: Vec<f64> = v.iter().map(|f| f.x0).collect();
        starts.sort_by(f64::total_cmp);
        let mut best = 0usize;
        let mut i = 0usize;
        for j in 0..starts.len() {
            while starts[j] - starts[i] > 4.0 {
                i += 1;
            }
            best = best.max(j - i + 1);
        }
        best * 2 >= v.len()
    };
    if aligned(&left) && aligned(&right) {
        return true;
    }
    // Centred or right-aligned sidebars (LaTeX and HTML templates): a real
    // column has its own lines. Right-aligned dates and places beside job
    // titles share the titles' baselines; a sidebar's lines mostly do not.
    let paired = |side: &[&Frag], other: &[&Frag]| {
        side.iter()
            .filter(|f| {
                other
                    .iter()
                    .any(|o| (o.y - f.y).abs() <= 0.12 * o.size.min(f.size).max(1.0))
            })
            .count()
    };
    let (small, large) = if left_chars <= right_chars {
        (&left, &right)
    } else {
        (&right, &left)
    };
    small.len() >= 4 && paired(small, large) * 10 <= small.len() * 4
}

/// The top of the columns when a full-width header sits above them: the
/// first vertical gap in the top quarter of the page wider than 2.2 times
/// the usual line spacing with text on both sides of the gutter above it
/// (a contact line running across).
fn header_cut(frags: &[Frag], g: f64, height: f64) -> Option<f64> {
    let mut ys: Vec<f64> = frags.iter().map(|f| f.y).collect();
    ys.sort_by(f64::total_cmp);
    ys.dedup_by(|a, b| (*a - *b).abs() < 1.5);
    if ys.len() < 6 {
        return None;
    }
    let mut gaps: Vec<f64> = ys.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sorted = gaps.clone();
    sorted.sort_by(f64::total_cmp);
    let usual = sorted[sorted.len() / 2];
    let limit = if height > 1.0 { height * 0.25 } else { 200.0 };
    for (i, gap) in gaps.drain(..).enumerate() {
        let (above, below) = (ys[i], ys[i + 1]);
        if above > limit {
            break;
        }
        if gap > 2.2 * usual.max(1.0) {
            let top: Vec<&Frag> = frags.iter().filter(|f| f.y <= above + 0.01).collect();
            let both = top.iter().any(|f| f.x1 <= g) && top.iter().any(|f| f.x0 >= g);
            if both {
                return Some((above + below) / 2.0);
            }
        }
    }
    None
}

/// Regions in reading order for a two-column page: bands cut by fragments
/// crossing the gutter, each band read left column then right column.
fn two_column_regions(all: &[Frag], g: f64, height: f64) -> Vec<Vec<Line>> {
    let mut regions = Vec::new();
    let header = header_cut(all, g, height);
    let body: Vec<Frag>;
    let frags = match header {
        Some(cut) => {
            let top = assemble(all.iter().filter(|f| f.y < cut).collect());
            if !top.is_empty() {
                regions.push(top);
            }
            body = all.iter().filter(|f| f.y >= cut).cloned().collect();
            &body[..]
        }
        None => all,
    };
    let spanning: Vec<&Frag> = frags.iter().filter(|f| f.x0 < g && f.x1 > g).collect();
    let mut cuts: Vec<f64> = spanning.iter().map(|f| f.y).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.dedup_by(|a, b| (*a - *b).abs() < 1.0);
    let mut lower = f64::NEG_INFINITY;
    let mut bounds: Vec<f64> = cuts.clone();
    bounds.push(f64::INFINITY);
    for (i, upper) in bounds.iter().enumerate() {
        let in_band = |f: &&Frag| f.y > lower + 0.01 && f.y < *upper - 0.01;
        let left: Vec<&Frag> = frags.iter().filter(|f| f.x1 <= g).filter(in_band).collect();
        let right: Vec<&Frag> = frags
            .iter()
            .filter(|f| f.x0 >= g && f.x1 > g)
            .filter(in_band)
            .collect();
        let left = assemble(left);
        if !left.is_empty() {
            regions.push(left);
        }
        let right = assemble(right);
        if !right.is_empty() {
            regions.push(right);
        }
        if i < cuts.len() {
            let cut = cuts[i];
            // The crossing fragments of this cut, with anything on their line.
            let line: Vec<&Frag> = frags
                .iter()
                .filter(|f| {
                    (f.y - cut).abs() < 0.01 || (f.x0 < g && f.x1 > g && (f.y - cut).abs() < 1.0)
                })
                .collect();
            let line = assemble(line);
            if !line.is_empty() {
                regions.push(line);
            }
            lower = cut;
        }
    }
    regions
}

/// Group fragments into lines (top to bottom, left to right within a line).
fn assemble(mut frags: Vec<&Frag>) -> Vec<Line> {
    frags.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x0.total_cmp(&b.x0)));
    let mut lines: Vec<Vec<&Frag>> = Vec::new();
    for f in frags {
        match lines.last_mut() {
            Some(line)
                if line.first().is_some_and(|first| {
                    (f.y - first.y).abs() <= 0.5 * first.size.min(f.size).max(1.0)
                }) =>
            {
                line.push(f)
            }
            _ => lines.push(vec![f]),
        }
    }
    lines
        .into_iter()
        .map(|mut parts| {
            parts.sort_by(|a, b| a.x0.total_cmp(&b.x0));
            let size = parts.iter().map(|p| p.size).fold(0.0, f64::max);
            let y = parts.first().map_or(0.0, |p| p.y);
            let mut text = String::new();
            let mut prev: Option<&Frag> = None;
            for p in parts {
                if let Some(q) = prev {
                    // The same text drawn twice (fake bold) is read once.
                    if q.text == p.text && (q.x0 - p.x0).abs() < 0.5 * p.size {
                        continue;
                    }
                    let gap = p.x0 - q.x1;
                    if gap > 1.0 * p.size {
                        text.push('\t');
                    } else if gap > 0.1 * p.size {
                        text.push(' ');
                    }
                }
                text.push_str(&p.text);
                prev = Some(p);
            }
            Line { y, size, text }
        })
        .collect()
}

/// Move the largest line near the top of the first page to the front.
fn title_first(regions: &mut Vec<Vec<Line>>, height: f64, frags: &[Frag]) {
    let mut sizes: Vec<(f64, usize)> = frags.iter().map(|f| (f.size, text_len(f))).collect();
    sizes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: usize = sizes.iter().map(|s| s.1).sum();
    let mut acc = 0usize;
    let mut median = 0.0;
    for (size, n) in &sizes {
        acc += n;
        if acc * 2 >= total {
            median = *size;
            break;
        }
    }
    let limit = if height > 1.0 {
        height * 0.35
    } else {
        f64::INFINITY
    };
    let mut best: Option<(usize, usize, f64)> = None;
    for (ri, region) in regions.iter().enumerate() {
        for (li, line) in region.iter().enumerate() {
            if line.y <= limit && best.is_none_or(|b| line.size > b.2 + 0.01) {
                best = Some((ri, li, line.size));
            }
        }
    }
    let Some((ri, li, size)) = best else { return };
    if size < median * 1.25 || (ri == 0 && li == 0) {
        return;
    }
    let line = regions[ri].remove(li);
    if regions[ri].is_empty() {
        regions.remove(ri);
    }
    regions.insert(0, vec![line]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(x: f64, y: f64, size: f64, text: &str) -> Vec<Glyph> {
        let w = 0.5 * size;
        text.chars()
            .enumerate()
            .map(|(i, c)| Glyph {
                x: x + i as f64 * w,
                y,
                width: w,
                size,
                text: c.to_string(),
            })
            .collect()
    }

    #[test]
    fn one_column_with_right_aligned_dates() {
        let mut glyphs = Vec::new();
        glyphs.extend(word(50.0, 50.0, 20.0, "Jane Doe"));
        for i in 0..8 {
            let y = 100.0 + 40.0 * i as f64;
            glyphs.extend(word(50.0, y, 10.0, "Engineer, Acme"));
            glyphs.extend(word(480.0, y, 10.0, "2019 - 2021"));
            glyphs.extend(word(
                50.0,
                y + 12.0,
                10.0,
                "Built many things across the whole stack for customers far away",
            ));
        }
        let page = PageGlyphs {
            width: 612.0,
            height: 792.0,
            glyphs,
            links: Vec::new(),
        };
        let text = pages_to_text(&[page]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "Jane Doe");
        assert_eq!(lines[1], "Engineer, Acme\t2019 - 2021");
    }

    #[test]
    fn centred_sidebar_and_header_across() {
        let mut glyphs = Vec::new();
        // A contact line across the page, then a gap, then the columns.
        glyphs.extend(word(40.0, 40.0, 20.0, "Jane Doe"));
        glyphs.extend(word(40.0, 70.0, 8.0, "jane@example.com"));
        glyphs.extend(word(420.0, 70.0, 8.0, "Austin, TX"));
        for i in 0..12 {
            // main column, left-aligned, 14 pt leading
            let y = 130.0 + 14.0 * i as f64;
            glyphs.extend(word(
                40.0,
                y,
                10.0,
                &format!("main line {i} with a fair amount of text"),
            ));
            // centred sidebar on its own baselines (18 pt leading, offset)
            let y2 = 137.0 + 18.0 * i as f64;
            let text = format!("side {i}");
            let x = 480.0 - 2.5 * text.len() as f64 + (i % 3) as f64 * 7.0;
            glyphs.extend(word(x, y2, 10.0, &text));
        }
        let page = PageGlyphs {
            width: 612.0,
            height: 792.0,
            glyphs,
            links: Vec::new(),
        };
        let text = pages_to_text(&[page]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "Jane Doe");
        assert_eq!(lines[1], "jane@example.com\tAustin, TX");
        assert_eq!(lines[2], "main line 0 with a fair amount of text");
        assert_eq!(lines[13], "main line 11 with a fair amount of text");
        assert_eq!(lines[14], "side 0");
    }

    #[test]
    fn two_columns_read_left_then_right() {
        let mut glyphs = Vec::new();
        glyphs.extend(word(200.0, 40.0, 22.0, "Jane Doe"));
        for i in 0..10 {
            let y = 100.0 + 14.0 * i as f64;
            // drawn row by row across both columns
            glyphs.extend(word(40.0, y, 10.0, &format!("left {i} text")));
            glyphs.extend(word(240.0, y, 10.0, &format!("right {i} some longer text")));
        }
        let page = PageGlyphs {
            width: 612.0,
            height: 792.0,
            glyphs,
            links: Vec::new(),
        };
        let text = pages_to_text(&[page]);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines[0], "Jane Doe");
        assert_eq!(lines[1], "left 0 text");
        assert_eq!(lines[10], "left 9 text");
        assert_eq!(lines[11], "right 0 some longer text");
    }
}
