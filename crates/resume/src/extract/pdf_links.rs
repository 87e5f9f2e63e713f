//! Link annotations: the web addresses behind PDF text.
//!
//! Many templates print a profile link only as an icon and a handle
//! (`posquit0`, `LinkedIn`); the address exists only in the page's link
//! annotation (`/Annots` → `/Subtype /Link` with `/A << /S /URI /URI (…) >>`).
//! [`page_links`] reads them (bounded: at most [`MAX_LINKS_PER_PAGE`]
//! annotations per page, URIs up to 2,048 bytes, references followed at most
//! four deep, no recursion); [`attach`] appends each `http(s)` address to the
//! run of text its rectangle covers, as `LinkedIn (https://linkedin.com/in/…)`
//! — the form the DOCX extractor already uses for hyperlinks — unless that
//! text already shows the address. A link over no text (an icon drawn as a
//! picture) becomes a run of its own where the rectangle is, so it is read
//! in place. `mailto:` and `tel:` targets are skipped: the page shows those.

use pdf_extract::{Document, Object, ObjectId};

use super::pdf_words::Run;

/// Link annotations read per page at most.
pub(crate) const MAX_LINKS_PER_PAGE: usize = 200;
/// Longest URI kept, in bytes.
const MAX_URI_BYTES: usize = 2048;
/// Reference chains followed at most (`1 0 R` pointing to `2 0 R` …).
const MAX_DEREF: usize = 4;

/// A link annotation's rectangle (page coordinates, y downwards, like the
/// glyphs) and its address.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub(crate) x0: f64,
    pub(crate) x1: f64,
    pub(crate) top: f64,
    pub(crate) bottom: f64,
    pub(crate) uri: String,
}

fn resolve<'a>(doc: &'a Document, mut obj: &'a Object) -> Option<&'a Object> {
    for _ in 0..MAX_DEREF {
        match obj {
            Object::Reference(id) => obj = doc.get_object(*id).ok()?,
            other => return Some(other),
        }
    }
    None
}

fn number(obj: &Object) -> Option<f64> {
    match obj {
        Object::Integer(i) => Some(*i as f64),
        Object::Real(r) => Some(f64::from(*r)),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

/// A PDF text string as Rust text: UTF-16BE with a BOM, else UTF-8, else
/// Latin-1.
fn pdf_string(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// A web address fit to report: `http(s)://` with a host, no spaces.
fn web_uri(raw: &str) -> Option<String> {
    let uri: String = raw.trim().chars().filter(|c| !c.is_control()).collect();
    if uri.len() > MAX_URI_BYTES || uri.contains(char::is_whitespace) {
        return None;
    }
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    (host.contains('.') && host.len() >= 4).then_some(uri)
}

/// The web links of one page. `origin` is the page's top-left corner in PDF
/// units (the same origin the glyph collector uses).
pub(crate) fn page_links(doc: &Document, page_id: ObjectId, origin: (f64, f64)) -> Vec<Link> {
    let mut out = Vec::new();
    let Ok(page) = doc.get_dictionary(page_id) else {
        return out;
    };
    let Some(Object::Array(annots)) = page.get(b"Annots").ok().and_then(|a| resolve(doc, a)) else {
        return out;
    };
    for annot in annots.iter().take(MAX_LINKS_PER_PAGE) {
        let Some(Object::Dictionary(dict)) = resolve(doc, annot) else {
            continue;
        };
        let is_link = matches!(dict.get(b"Subtype"), Ok(Object::Name(n)) if n == b"Link");
        if !is_link {
            continue;
        }
        let Some(Object::Dictionary(action)) = dict.get(b"A").ok().and_then(|a| resolve(doc, a))
        else {
            continue;
        };
        let Some(uri) = action
            .get(b"URI")
            .ok()
            .and_then(|u| resolve(doc, u))
            .and_then(|u| u.as_str().ok())
            .map(pdf_string)
            .and_then(|u| web_uri(&u))
        else {
            continue;
        };
        let Some(Object::Array(rect)) = dict.get(b"Rect").ok().and_then(|r| resolve(doc, r)) else {
            continue;
        };
        let v: Vec<f64> = rect.iter().filter_map(number).collect();
        if v.len() != 4 {
            continue;
        }
        let (llx, urx) = (v[0].min(v[2]), v[0].max(v[2]));
        let (lly, ury) = (v[1].min(v[3]), v[1].max(v[3]));
        out.push(Link {
            x0: llx - origin.0,
            x1: urx - origin.0,
            top: origin.1 - ury,
            bottom: origin.1 - lly,
            uri,
        });
    }
    out
}

/// The address without scheme, `www.`, query or trailing slash, lower-cased:
/// what a page would print for it.
fn printed_form(uri: &str) -> String {
    let lower = uri.to_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    rest.trim_end_matches('/').to_owned()
}

/// Append each link's address to the run it covers (or add it as a run).
pub(crate) fn attach(runs: &mut Vec<Run>, links: &[Link]) {
    if links.is_empty() {
        return;
    }
    let mut lowered: Vec<String> = runs.iter().map(|r| r.text.to_lowercase()).collect();
    let mut seen: Vec<String> = Vec::new();
    for link in links {
        let printed = printed_form(&link.uri);
        if printed.is_empty() || seen.contains(&printed) {
            continue;
        }
        seen.push(printed.clone());
        // The covered run with the largest horizontal overlap.
        let mut best: Option<(usize, f64)> = None;
        for (i, r) in runs.iter().enumerate() {
            let inside = r.y >= link.top - 0.3 * r.size && r.y <= link.bottom + 0.4 * r.size;
            let overlap = r.x1.min(link.x1) - r.x0.max(link.x0);
            if inside && overlap > 0.0 && best.is_none_or(|(_, o)| overlap > o) {
                best = Some((i, overlap));
            }
        }
        match best {
            Some((i, _)) => {
                if let Some(run) = runs.get_mut(i)
                    && !lowered.get(i).is_some_and(|l| l.contains(&printed))
                {
                    run.text.push_str(" (");
                    run.text.push_str(&link.uri);
                    run.text.push(')');
                }
            }
            None => {
                // Already printed somewhere on the page: nothing to add.
                if lowered.iter().any(|l| l.contains(&printed)) {
                    continue;
                }
                let size = (link.bottom - link.top).clamp(4.0, 24.0);
                lowered.push(link.uri.to_lowercase());
                runs.push(Run {
                    x0: link.x0,
                    x1: link.x0 + 0.5 * size * link.uri.chars().count() as f64,
                    y: link.bottom - 0.2 * size,
                    size,
                    text: link.uri.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(x0: f64, x1: f64, y: f64, text: &str) -> Run {
        Run {
            x0,
            x1,
            y,
            size: 10.0,
            text: text.to_owned(),
        }
    }

    fn link(x0: f64, x1: f64, top: f64, bottom: f64, uri: &str) -> Link {
        Link {
            x0,
            x1,
            top,
            bottom,
            uri: uri.to_owned(),
        }
    }

    #[test]
    fn uris() {
        assert_eq!(
            web_uri(" https://github.com/posquit0 ").as_deref(),
            Some("https://github.com/posquit0")
        );
        assert_eq!(web_uri("mailto:a@b.co"), None);
        assert_eq!(web_uri("tel:+1-555"), None);
        assert_eq!(web_uri("https://a b.com"), None);
        assert_eq!(web_uri("http://x"), None);
        assert_eq!(pdf_string(b"\xfe\xff\x00h\x00i"), "hi");
        assert_eq!(pdf_string(b"caf\xe9"), "café");
    }

    #[test]
    fn attached_to_the_covered_text() {
        let mut runs = vec![
            run(10.0, 60.0, 100.0, "posquit0"),
            run(100.0, 200.0, 100.0, "github.com/jane"),
        ];
        let links = [
            link(0.0, 62.0, 92.0, 102.0, "https://github.com/posquit0"),
            link(100.0, 200.0, 92.0, 102.0, "https://github.com/jane/"),
            link(
                300.0,
                310.0,
                92.0,
                102.0,
                "https://www.linkedin.com/in/jane",
            ),
            link(0.0, 62.0, 92.0, 102.0, "https://github.com/posquit0"),
        ];
        attach(&mut runs, &links);
        assert_eq!(runs[0].text, "posquit0 (https://github.com/posquit0)");
        assert_eq!(runs[1].text, "github.com/jane");
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[2].text, "https://www.linkedin.com/in/jane");
    }
}
