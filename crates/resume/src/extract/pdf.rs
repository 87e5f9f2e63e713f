//! PDF text extraction: `lopdf` parses, `pdf-extract` interprets the content
//! streams and reports every glyph with its position to [`Collector`]; the
//! [`super::layout`] pass then rebuilds lines and reading order (columns).
//!
//! Both libraries can panic (and `pdf-extract` can recurse without bound) on
//! hostile input, so: streams are checked against a decompression budget
//! before parsing, the page tree and form XObjects are checked for cycles
//! before interpretation, and every call into the libraries runs under
//! `catch_unwind`.

use std::collections::BTreeSet;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};

use pdf_extract::{
    Dictionary, Document, MediaBox, Object, ObjectId, OutputDev, OutputError, Transform,
};

use super::ExtractError;
use super::layout::{Glyph, PageGlyphs, pages_to_text};

/// Pages read at most; a résumé longer than this is read in part.
pub(crate) const MAX_PAGES: usize = 30;
/// Total decompressed size of the non-image streams of a PDF (256 MiB).
const MAX_DECOMPRESSED: u64 = 256 * 1024 * 1024;
/// Glyphs collected at most over the whole document.
const MAX_GLYPHS: usize = 2_000_000;
/// Form XObjects invoked at most per page, and their nesting depth.
const MAX_XOBJECT_CALLS: usize = 10_000;
const MAX_XOBJECT_DEPTH: usize = 12;
/// Longest `Parent` chain from a page to the root of the page tree.
const MAX_PARENT_CHAIN: usize = 64;

pub(super) fn extract(bytes: &[u8]) -> Result<String, ExtractError> {
    check_decompression_budget(bytes)?;
    let doc = match catch_unwind(AssertUnwindSafe(|| Document::load_mem(bytes))) {
        Ok(Ok(doc)) => doc,
        Ok(Err(e)) => return Err(load_error(&e, bytes)),
        Err(_) => {
            return Err(if mentions_encrypt(bytes) {
                ExtractError::Encrypted
            } else {
                ExtractError::corrupt("the PDF structure could not be parsed")
            });
        }
    };
    // lopdf decrypts documents whose user password is empty while loading
    // (permission-only protection); what is still encrypted needs a password.
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(ExtractError::corrupt("the PDF has no pages"));
    }
    let mut collector = Collector::default();
    let mut attempted = 0usize;
    let mut failed = 0usize;
    let mut first_error: Option<String> = None;
    for (&number, &page_id) in pages.iter().take(MAX_PAGES) {
        attempted += 1;
        if let Err(reason) = check_page(&doc, page_id) {
            failed += 1;
            first_error.get_or_insert(reason);
            continue;
        }
        collector.pages.push(PageGlyphs::default());
        let result = catch_unwind(AssertUnwindSafe(|| {
            pdf_extract::output_doc_page(&doc, &mut collector, number)
        }));
        match result {
            Ok(Ok(())) => {
                let origin = collector.origin;
                let links = catch_unwind(AssertUnwindSafe(|| {
                    super::pdf_links::page_links(&doc, page_id, origin)
                }))
                .unwrap_or_default();
                if let Some(page) = collector.pages.last_mut() {
                    page.links = links;
                }
            }
            Ok(Err(e)) => {
                failed += 1;
                collector.pages.pop();
                first_error.get_or_insert(e.to_string());
            }
            Err(_) => {
                failed += 1;
                collector.pages.pop();
                first_error
                    .get_or_insert_with(|| "the PDF content could not be interpreted".to_owned());
            }
        }
    }
    if failed == attempted {
        return Err(ExtractError::corrupt(
            first_error.unwrap_or_else(|| "no page could be read".to_owned()),
        ));
    }
    let text = pages_to_text(&collector.pages);
    if text.trim().is_empty() {
        return Err(ExtractError::NoTextLayer);
    }
    if undecodable(&text) {
        return Err(ExtractError::corrupt(
            "the PDF's fonts do not map to readable characters (no Unicode mapping)",
        ));
    }
    Ok(text)
}

fn load_error(e: &pdf_extract::Error, bytes: &[u8]) -> ExtractError {
    use pdf_extract::Error as E;
    match e {
        E::Decryption(_) | E::InvalidPassword | E::UnsupportedSecurityHandler(_) => {
            ExtractError::Encrypted
        }
        _ if mentions_encrypt(bytes) => ExtractError::Encrypted,
        other => ExtractError::corrupt(format!("{other}")),
    }
}

/// A trailer naming an `/Encrypt` dictionary.
fn mentions_encrypt(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

/// Mostly private-use or replacement characters: fonts without a Unicode map.
fn undecodable(text: &str) -> bool {
    let mut visible = 0usize;
    let mut junk = 0usize;
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        visible += 1;
        if ('\u{e000}'..='\u{f8ff}').contains(&c) || c == '\u{fffd}' || c.is_control() {
            junk += 1;
        }
    }
    visible > 0 && junk * 2 > visible
}

/// Inflate every Flate-looking, non-image stream with a running budget, so
/// a small file cannot expand to gigabytes inside the PDF libraries.
fn check_decompression_budget(bytes: &[u8]) -> Result<(), ExtractError> {
    let mut remaining = MAX_DECOMPRESSED;
    let mut pos = 0usize;
    while let Some(found) = find(&bytes[pos..], b"stream") {
        let keyword = pos + found;
        let mut start = keyword + 6;
        pos = start;
        // `endstream` also contains `stream`; the keyword must start a stream.
        if keyword >= 3 && &bytes[keyword - 3..keyword] == b"end" {
            continue;
        }
        match bytes.get(start) {
            Some(b'\r') if bytes.get(start + 1) == Some(&b'\n') => start += 2,
            Some(b'\n') | Some(b'\r') => start += 1,
            _ => continue,
        }
        let dict_from = keyword.saturating_sub(1024);
        let dict = &bytes[dict_from..keyword];
        let dict = match rfind(dict, b"obj") {
            Some(i) => &dict[i..],
            None => dict,
        };
        let end = find(&bytes[start..], b"endstream").map_or(bytes.len(), |e| start + e);
        pos = end;
        if find(dict, b"/Image").is_some() || find(dict, b"/FlateDecode").is_none() {
            continue;
        }
        let data = &bytes[start..end];
        let mut decoder = flate2::read::ZlibDecoder::new(data).take(remaining.saturating_add(1));
        let produced = std::io::copy(&mut decoder, &mut std::io::sink()).unwrap_or(0);
        if produced > remaining {
            return Err(ExtractError::TooLarge(format!(
                "the PDF's streams expand to more than {MAX_DECOMPRESSED} bytes"
            )));
        }
        remaining -= produced;
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Reject the structures `pdf-extract` would recurse on forever: a cycle in
/// the page's `Parent` chain, or form XObjects that invoke themselves.
fn check_page(doc: &Document, page_id: ObjectId) -> Result<(), String> {
    let page = doc
        .get_dictionary(page_id)
        .map_err(|_| "a page object is missing".to_owned())?;
    let mut node = page;
    let mut resources = node.get(b"Resources").ok();
    for _ in 0..MAX_PARENT_CHAIN {
        match node.get(b"Parent").and_then(Object::as_reference) {
            Ok(parent) => match doc.get_dictionary(parent) {
                Ok(dict) => {
                    node = dict;
                    if resources.is_none() {
                        resources = node.get(b"Resources").ok();
                    }
                }
                Err(_) => break,
            },
            Err(_) => return check_xobjects(doc, page_id, resources),
        }
    }
    if node.get(b"Parent").is_ok() {
        return Err("the PDF page tree has a cycle".to_owned());
    }
    check_xobjects(doc, page_id, resources)
}

fn check_xobjects(
    doc: &Document,
    page_id: ObjectId,
    resources: Option<&Object>,
) -> Result<(), String> {
    let Some(resources) = resources.and_then(|r| deref_dict(doc, r)) else {
        return Ok(());
    };
    let content = doc.get_page_content(page_id).unwrap_or_default();
    let mut calls = 0usize;
    let mut path = BTreeSet::new();
    walk_forms(doc, &content, resources, 0, &mut path, &mut calls)
}

fn walk_forms(
    doc: &Document,
    content: &[u8],
    resources: &Dictionary,
    depth: usize,
    path: &mut BTreeSet<ObjectId>,
    calls: &mut usize,
) -> Result<(), String> {
    let names = do_operands(content);
    if names.is_empty() {
        return Ok(());
    }
    let Some(xobjects) = resources
        .get(b"XObject")
        .ok()
        .and_then(|x| deref_dict(doc, x))
    else {
        return Ok(());
    };
    for name in names {
        *calls += 1;
        if *calls > MAX_XOBJECT_CALLS {
            return Err("the PDF invokes too many form XObjects".to_owned());
        }
        let Ok(Object::Reference(id)) = xobjects.get(&name) else {
            continue;
        };
        let Ok(Object::Stream(stream)) = doc.get_object(*id) else {
            continue;
        };
        let is_form = matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(n)) if n == b"Form");
        if !is_form {
            continue;
        }
        if depth >= MAX_XOBJECT_DEPTH || path.contains(id) {
            return Err("the PDF has self-referencing form XObjects".to_owned());
        }
        let inner_resources = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| deref_dict(doc, r))
            .unwrap_or(resources);
        let inner = stream
            .decompressed_content()
            .unwrap_or_else(|_| stream.content.clone());
        path.insert(*id);
        walk_forms(doc, &inner, inner_resources, depth + 1, path, calls)?;
        path.remove(id);
    }
    Ok(())
}

fn deref_dict<'a>(doc: &'a Document, obj: &'a Object) -> Option<&'a Dictionary> {
    match obj {
        Object::Dictionary(d) => Some(d),
        Object::Reference(id) => doc.get_dictionary(*id).ok(),
        _ => None,
    }
}

/// The names used with the `Do` operator (`/Name Do`) in a content stream.
fn do_operands(content: &[u8]) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    let mut prev: Option<&[u8]> = None;
    for token in content
        .split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        if token == b"Do"
            && let Some(name) = prev.and_then(|p| p.strip_prefix(b"/"))
        {
            names.push(name.to_vec());
        }
        prev = Some(token);
    }
    names
}

/// Receives every glyph `pdf-extract` draws.
#[derive(Default)]
struct Collector {
    pages: Vec<PageGlyphs>,
    glyphs: usize,
    origin: (f64, f64),
}

impl OutputDev for Collector {
    fn begin_page(
        &mut self,
        _page_num: u32,
        media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        let width = (media_box.urx - media_box.llx).abs();
        let height = (media_box.ury - media_box.lly).abs();
        self.origin = (
            media_box.llx.min(media_box.urx),
            media_box.ury.max(media_box.lly),
        );
        if let Some(page) = self.pages.last_mut() {
            page.width = if width.is_finite() && width > 1.0 {
                width
            } else {
                612.0
            };
            page.height = if height.is_finite() && height > 1.0 {
                height
            } else {
                792.0
            };
        }
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        text: &str,
    ) -> Result<(), OutputError> {
        if self.glyphs >= MAX_GLYPHS || text.is_empty() {
            return Ok(());
        }
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let mut size = (font_size * scale).abs();
        if !size.is_finite() || size < 0.5 {
            size = if scale.is_finite() && scale > 0.0 {
                scale.max(1.0)
            } else {
                10.0
            };
        }
        let size = size.min(500.0);
        let x = trm.m31 - self.origin.0;
        let y = self.origin.1 - trm.m32;
        if !x.is_finite() || !y.is_finite() {
            return Ok(());
        }
        let advance = if width.is_finite() {
            (width * size).clamp(0.0, size * 4.0)
        } else {
            size * 0.5
        };
        if let Some(page) = self.pages.last_mut() {
            self.glyphs += 1;
            page.glyphs.push(Glyph {
                x,
                y,
                width: advance,
                size,
                text: text.to_owned(),
            });
        }
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn do_operands_are_found() {
        assert_eq!(
            do_operands(b"q /Im1 Do Q\n/Fx0 Do"),
            vec![b"Im1".to_vec(), b"Fx0".to_vec()]
        );
    }

    #[test]
    fn garbage_is_corrupt_not_panic() {
        for bytes in [
            &b"%PDF-1.4\n"[..],
            b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF",
            b"%PDF-",
        ] {
            assert!(matches!(extract(bytes), Err(ExtractError::Corrupt(_))));
        }
    }
}
