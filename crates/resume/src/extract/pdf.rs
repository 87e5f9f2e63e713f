//! PDF text extraction: `lopdf` parses, `pdf-extract` interprets the content
//! streams and reports every glyph with its position to [`Collector`]; the
//! [`super::layout`] pass then rebuilds lines and reading order (columns).
//!
//! Both libraries can panic, recurse without bound or allocate without
//! bound on hostile input, so before they interpret anything:
//!
//! - the raw bytes are scanned and every Flate stream is inflated within a
//!   budget (what `lopdf` inflates while loading: object and xref streams);
//!   a broken zlib header is inflated raw (as `lopdf` does) and every layer
//!   of `[/FlateDecode /FlateDecode]` is counted;
//! - after loading, every non-image Flate stream is inflated *by us*,
//!   within [`MAX_DECOMPRESSED`], and replaced by its plain bytes, so the
//!   libraries never inflate those themselves;
//! - what gets interpreted is counted per reference: a content stream listed
//!   2,000 times in `/Contents` or a form XObject drawn 2,000 times counts
//!   2,000 times against [`MAX_CONTENT_BYTES`] and [`MAX_OPERATIONS`], and a
//!   page may list at most [`MAX_CONTENT_STREAMS`] content streams;
//! - form XObjects are followed exactly as `pdf-extract` follows them (the
//!   *first* operand of `Do`), so a cycle is found before it overflows the
//!   stack, and their nesting is capped;
//! - a CMap may map at most [`MAX_CMAP_CODES`] codes through `bfrange`s
//!   (`pdf-extract` stores one map entry per code);
//! - glyphs are collected up to [`MAX_GLYPHS`];
//!
//! and every call into the libraries runs under `catch_unwind`. The worker
//! also runs all of this in a resource-limited child process: these limits
//! are the first line of defence, not the only one.

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
/// Total decompressed size of the non-image streams of a PDF, every layer of
/// every stream counted (128 MiB).
const MAX_DECOMPRESSED: u64 = 128 * 1024 * 1024;
/// Content-stream bytes interpreted over the pages read, counted once per
/// reference (page `/Contents` entries and form XObject invocations).
const MAX_CONTENT_BYTES: u64 = 32 * 1024 * 1024;
/// Content operations interpreted over the pages read, counted per
/// reference (`pdf-extract` holds a page's operations in memory at once).
const MAX_OPERATIONS: usize = 200_000;
/// Entries of one page's `/Contents` array.
const MAX_CONTENT_STREAMS: usize = 1_000;
/// Character codes one CMap may map through `beginbfrange` ranges.
const MAX_CMAP_CODES: u64 = 1 << 17;
/// Glyphs collected at most over the whole document.
const MAX_GLYPHS: usize = 500_000;
/// Nesting depth of form XObjects (their invocations count against
/// [`MAX_CONTENT_BYTES`] and [`MAX_OPERATIONS`]).
const MAX_XOBJECT_DEPTH: usize = 12;
/// Longest `Parent` chain from a page to the root of the page tree.
const MAX_PARENT_CHAIN: usize = 64;

pub(super) fn extract(bytes: &[u8]) -> Result<String, ExtractError> {
    check_decompression_budget(bytes)?;
    let mut doc = match catch_unwind(AssertUnwindSafe(|| Document::load_mem(bytes))) {
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
    inflate_streams(&mut doc)?;
    let mut budget = Budget::default();
    let mut collector = Collector::default();
    let mut attempted = 0usize;
    let mut failed = 0usize;
    let mut first_error: Option<String> = None;
    for (&number, &page_id) in pages.iter().take(MAX_PAGES) {
        attempted += 1;
        match check_page(&doc, page_id, &mut budget) {
            Ok(()) => {}
            Err(PageError::Fatal(e)) => return Err(e),
            Err(PageError::Skip(reason)) => {
                failed += 1;
                first_error.get_or_insert(reason);
                continue;
            }
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

fn too_large(what: impl std::fmt::Display) -> ExtractError {
    ExtractError::TooLarge(format!("the PDF {what}"))
}

fn decompression_too_large() -> ExtractError {
    too_large(format_args!(
        "streams expand to more than {MAX_DECOMPRESSED} bytes"
    ))
}

/// Inflates one zlib layer within `budget` (decremented by the output), the
/// way `lopdf` does: zlib first, and when that fails without output, raw
/// deflate after the two header bytes.
fn inflate(data: &[u8], budget: &mut u64) -> Result<Vec<u8>, ExtractError> {
    let mut out = Vec::new();
    let limit = budget.saturating_add(1);
    let zlib = flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out);
    if zlib.is_err() && out.is_empty() && data.len() > 2 {
        out.clear();
        let _ = flate2::read::DeflateDecoder::new(&data[2..])
            .take(limit)
            .read_to_end(&mut out);
    }
    let produced = out.len() as u64;
    if produced > *budget {
        return Err(decompression_too_large());
    }
    *budget -= produced;
    Ok(out)
}

/// Counts what one zlib layer inflates to (like [`inflate`], without keeping
/// the output).
fn inflate_count(data: &[u8], budget: &mut u64) -> Result<(), ExtractError> {
    let limit = budget.saturating_add(1);
    let mut zlib = CountingSink(0);
    let complete = std::io::copy(
        &mut flate2::read::ZlibDecoder::new(data).take(limit),
        &mut zlib,
    )
    .is_ok();
    let mut produced = zlib.0;
    if !complete && produced == 0 && data.len() > 2 {
        let mut raw = CountingSink(0);
        let _ = std::io::copy(
            &mut flate2::read::DeflateDecoder::new(&data[2..]).take(limit),
            &mut raw,
        );
        produced = raw.0;
    }
    if produced > *budget {
        return Err(decompression_too_large());
    }
    *budget -= produced;
    Ok(())
}

/// Counts the bytes written to it.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Inflates `layers` zlib layers of `data` within `budget`.
fn inflate_layers(data: &[u8], layers: usize, budget: &mut u64) -> Result<Vec<u8>, ExtractError> {
    let mut current = inflate(data, budget)?;
    for _ in 1..layers {
        current = inflate(&current, budget)?;
    }
    Ok(current)
}

/// Inflate every Flate-looking, non-image stream of the raw file within a
/// running budget (each layer counted), so that what `lopdf` inflates while
/// loading (object and xref streams) cannot expand to gigabytes.
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
            Some(b'\n' | b'\r') => start += 1,
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
        let layers = count(dict, b"/FlateDecode");
        if find(dict, b"/Image").is_some() || layers == 0 {
            continue;
        }
        let data = &bytes[start..end];
        if layers == 1 {
            inflate_count(data, &mut remaining)?;
        } else {
            let inner = inflate_layers(data, layers - 1, &mut remaining)?;
            inflate_count(&inner, &mut remaining)?;
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

fn is_image(stream: &pdf_extract::Stream) -> bool {
    matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(n)) if n == b"Image")
}

/// Inflate every non-image stream whose filters are all `FlateDecode`
/// (any number of layers) within [`MAX_DECOMPRESSED`] and store it plain,
/// so `lopdf`/`pdf-extract` never inflate it themselves; check every
/// stream's CMap ranges. Streams with a predictor or other filters are
/// inflated to be counted and left to `lopdf`.
fn inflate_streams(doc: &mut Document) -> Result<(), ExtractError> {
    let mut budget = MAX_DECOMPRESSED;
    for object in doc.objects.values_mut() {
        let Object::Stream(stream) = object else {
            continue;
        };
        if is_image(stream) {
            continue;
        }
        let filters: Vec<Vec<u8>> = match stream.filters() {
            Ok(f) => f.into_iter().map(<[u8]>::to_vec).collect(),
            Err(_) => Vec::new(),
        };
        let layers = filters
            .iter()
            .take_while(|f| f.as_slice() == b"FlateDecode")
            .count();
        if layers > 0 {
            let plain = inflate_layers(&stream.content, layers, &mut budget)?;
            let predictor = stream.dict.get(b"DecodeParms").is_ok();
            if layers == filters.len() && !predictor {
                stream.set_plain_content(plain);
            }
        }
        if filters.is_empty() || layers == filters.len() {
            let content: &[u8] = &stream.content;
            if find(content, b"beginbfrange").is_some() && bfrange_codes(content) > MAX_CMAP_CODES {
                return Err(too_large(format_args!(
                    "font maps more than {MAX_CMAP_CODES} character codes"
                )));
            }
        }
    }
    Ok(())
}

/// Codes mapped by the `beginbfrange … endbfrange` sections of a CMap:
/// the sum of `hi - lo + 1` over its ranges, computed without expanding.
fn bfrange_codes(cmap: &[u8]) -> u64 {
    let mut total = 0u64;
    let mut rest = cmap;
    while let Some(at) = find(rest, b"beginbfrange") {
        rest = &rest[at + 12..];
        let end = find(rest, b"endbfrange").unwrap_or(rest.len());
        let section = &rest[..end];
        rest = &rest[end..];
        // Tokens: hex strings, and arrays as one token; groups of three.
        let mut tokens: Vec<Option<u64>> = Vec::new();
        let mut i = 0usize;
        while i < section.len() {
            match section[i] {
                b'<' => {
                    let close = find(&section[i..], b">").map_or(section.len(), |c| i + c);
                    let hex: Vec<u8> = section[i + 1..close]
                        .iter()
                        .copied()
                        .filter(u8::is_ascii_hexdigit)
                        .collect();
                    let value = std::str::from_utf8(&hex)
                        .ok()
                        .and_then(|h| u64::from_str_radix(h.get(..h.len().min(16))?, 16).ok());
                    tokens.push(value);
                    i = close + 1;
                }
                b'[' => {
                    let close = find(&section[i..], b"]").map_or(section.len(), |c| i + c);
                    tokens.push(None);
                    i = close + 1;
                }
                _ => i += 1,
            }
        }
        for group in tokens.chunks(3) {
            if let [Some(lo), Some(hi), _] = group
                && hi >= lo
            {
                total = total.saturating_add(hi - lo + 1);
            }
        }
    }
    total
}

/// What is interpreted, counted per reference over the pages read.
#[derive(Default)]
struct Budget {
    content_bytes: u64,
    operations: usize,
    scans: std::collections::HashMap<ObjectId, std::rc::Rc<Scan>>,
}

impl Budget {
    /// Charges one interpretation of `len` bytes holding `operations`.
    fn charge(&mut self, len: usize, operations: usize) -> Result<(), PageError> {
        self.content_bytes = self.content_bytes.saturating_add(len as u64 + 1);
        if self.content_bytes > MAX_CONTENT_BYTES {
            return Err(PageError::Fatal(too_large(format_args!(
                "content streams to interpret exceed {MAX_CONTENT_BYTES} bytes (each reference counted)"
            ))));
        }
        self.operations = self.operations.saturating_add(operations);
        if self.operations > MAX_OPERATIONS {
            return Err(PageError::Fatal(too_large(format_args!(
                "has more than {MAX_OPERATIONS} content operations"
            ))));
        }
        Ok(())
    }

    /// The scan of stream `id`, made once however often it is referenced.
    fn scan(&mut self, id: ObjectId, content: &[u8]) -> std::rc::Rc<Scan> {
        self.scans
            .entry(id)
            .or_insert_with(|| std::rc::Rc::new(scan_content(content)))
            .clone()
    }
}

/// Why a page is not interpreted: skip it, or give up on the document.
enum PageError {
    Skip(String),
    Fatal(ExtractError),
}

impl From<String> for PageError {
    fn from(s: String) -> Self {
        PageError::Skip(s)
    }
}

/// Reject the structures `pdf-extract` would recurse on forever (a cycle in
/// the page's `Parent` chain, form XObjects that invoke themselves) and
/// charge what the page makes it interpret.
fn check_page(doc: &Document, page_id: ObjectId, budget: &mut Budget) -> Result<(), PageError> {
    let page = doc
        .get_dictionary(page_id)
        .map_err(|_| "a page object is missing".to_owned())?;
    let mut node = page;
    let mut resources = node.get(b"Resources").ok();
    let mut cycle = true;
    for _ in 0..MAX_PARENT_CHAIN {
        match node.get(b"Parent").and_then(Object::as_reference) {
            Ok(parent) => match doc.get_dictionary(parent) {
                Ok(dict) => {
                    node = dict;
                    if resources.is_none() {
                        resources = node.get(b"Resources").ok();
                    }
                }
                Err(_) => {
                    cycle = false;
                    break;
                }
            },
            Err(_) => {
                cycle = false;
                break;
            }
        }
    }
    if cycle && node.get(b"Parent").is_ok() {
        return Err("the PDF page tree has a cycle".to_owned().into());
    }
    let contents = doc.get_page_contents(page_id);
    if contents.len() > MAX_CONTENT_STREAMS {
        return Err(PageError::Fatal(too_large(format_args!(
            "page lists {} content streams, the limit is {MAX_CONTENT_STREAMS}",
            contents.len()
        ))));
    }
    let mut names = Vec::new();
    for id in contents {
        let Ok(stream) = doc.get_object(id).and_then(Object::as_stream) else {
            continue;
        };
        budget.charge(stream.content.len(), 0)?;
        let scan = budget.scan(id, &stream.content);
        budget.charge(0, scan.operations)?;
        names.extend(scan.do_names.iter().cloned());
    }
    let Some(resources) = resources.and_then(|r| deref_dict(doc, r)) else {
        return Ok(());
    };
    let mut path = BTreeSet::new();
    walk_forms(doc, &names, resources, 0, &mut path, budget)
}

fn walk_forms(
    doc: &Document,
    names: &[Vec<u8>],
    resources: &Dictionary,
    depth: usize,
    path: &mut BTreeSet<ObjectId>,
    budget: &mut Budget,
) -> Result<(), PageError> {
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
        let Ok(Object::Reference(id)) = xobjects.get(name) else {
            continue;
        };
        let Ok(Object::Stream(stream)) = doc.get_object(*id) else {
            continue;
        };
        let is_form = matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(n)) if n == b"Form");
        if !is_form {
            continue;
        }
        if path.contains(id) {
            return Err("the PDF has self-referencing form XObjects"
                .to_owned()
                .into());
        }
        if depth >= MAX_XOBJECT_DEPTH {
            return Err("the PDF nests form XObjects too deeply".to_owned().into());
        }
        // Each invocation is interpreted again: charge it every time.
        budget.charge(stream.content.len(), 0)?;
        let scan = budget.scan(*id, &stream.content);
        budget.charge(0, scan.operations)?;
        let inner_resources = stream
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| deref_dict(doc, r))
            .unwrap_or(resources);
        path.insert(*id);
        walk_forms(
            doc,
            &scan.do_names,
            inner_resources,
            depth + 1,
            path,
            budget,
        )?;
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

/// What a content stream does, found without building its operations.
#[derive(Debug, Default)]
struct Scan {
    /// Operators in the stream.
    operations: usize,
    /// The *first* operand of every `Do` that is a name — the one
    /// `pdf-extract` invokes (`operation.operands[0]`).
    do_names: Vec<Vec<u8>>,
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

/// A tokenizer for content streams: strings (nested, escaped), hex strings,
/// dictionaries, arrays, names, comments and inline images are skipped as
/// operands; bare keywords other than `true`/`false`/`null` are operators.
fn scan_content(content: &[u8]) -> Scan {
    let mut scan = Scan::default();
    // The first operand since the last operator: Some(Some(name)) when a
    // name, Some(None) when another operand.
    let mut first: Option<Option<Vec<u8>>> = None;
    let mut depth = 0usize; // inside [ ] or << >>: operands only
    let mut i = 0usize;
    let n = content.len();
    let operand = |first: &mut Option<Option<Vec<u8>>>, name: Option<Vec<u8>>, depth: usize| {
        if first.is_none() {
            *first = Some(if depth == 0 { name } else { None });
        }
    };
    while i < n {
        let b = content[i];
        match b {
            b if b.is_ascii_whitespace() || b == 0 => i += 1,
            b'%' => {
                while i < n && content[i] != b'\n' && content[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                let mut level = 0usize;
                while i < n {
                    match content[i] {
                        b'\\' => i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
                operand(&mut first, None, depth);
            }
            b'<' if content.get(i + 1) == Some(&b'<') => {
                operand(&mut first, None, depth);
                depth += 1;
                i += 2;
            }
            b'>' if content.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 2;
            }
            b'<' => {
                while i < n && content[i] != b'>' {
                    i += 1;
                }
                i += 1;
                operand(&mut first, None, depth);
            }
            b'[' => {
                operand(&mut first, None, depth);
                depth += 1;
                i += 1;
            }
            b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'/' => {
                let start = i + 1;
                i += 1;
                while i < n && !content[i].is_ascii_whitespace() && !is_delimiter(content[i]) {
                    i += 1;
                }
                operand(&mut first, Some(content[start..i].to_vec()), depth);
            }
            _ => {
                let start = i;
                while i < n && !content[i].is_ascii_whitespace() && !is_delimiter(content[i]) {
                    i += 1;
                }
                if i == start {
                    // A stray delimiter (`)`, `>`, `{`, `}`).
                    i += 1;
                    continue;
                }
                let token = &content[start..i];
                let is_operand = token[0].is_ascii_digit()
                    || matches!(token[0], b'+' | b'-' | b'.')
                    || matches!(token, b"true" | b"false" | b"null");
                if is_operand || depth > 0 {
                    operand(&mut first, None, depth);
                    continue;
                }
                scan.operations += 1;
                if token == b"Do"
                    && let Some(Some(name)) = first.take()
                {
                    scan.do_names.push(name);
                }
                first = None;
                if token == b"ID" {
                    // Inline image data: binary up to whitespace + `EI`.
                    i += 1;
                    while i + 2 <= n {
                        if content[i - 1].is_ascii_whitespace()
                            && &content[i..i + 2] == b"EI"
                            && content.get(i + 2).is_none_or(|c| c.is_ascii_whitespace())
                        {
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
    scan
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
    fn do_operands_are_the_first_operand() {
        let scan =
            scan_content(b"q /Im1 Do Q\n/Fx0 /Nope Do (a) Tj [(x) 1] TJ BI /W 1 ID \x00EI x EI Q");
        assert_eq!(scan.do_names, vec![b"Im1".to_vec(), b"Fx0".to_vec()]);
        assert_eq!(scan.operations, 10);
        let scan = scan_content(b"/Fx0/Nope Do % /Other Do\n(/Str (x) Do) Tj <</A 1>> BDC");
        assert_eq!(scan.do_names, vec![b"Fx0".to_vec()]);
        assert_eq!(scan.operations, 3);
    }

    #[test]
    fn cmap_ranges_are_counted_without_expanding_them() {
        let cmap = b"2 beginbfrange <0000> <00FF> <0041>\n<0100> <0101> [<0042> <0043>] endbfrange";
        assert_eq!(bfrange_codes(cmap), 258);
        assert_eq!(
            bfrange_codes(b"1 beginbfrange <000000> <FFFFFF> <0041> endbfrange"),
            1 << 24
        );
    }

    #[test]
    fn inflation_is_bounded_and_counts_every_layer() {
        use std::io::Write;
        let zeros = vec![0u8; 1 << 20];
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&zeros).unwrap_or_default();
        let once = e.finish().unwrap_or_default();
        let mut budget = 4 << 20;
        assert_eq!(inflate(&once, &mut budget).map(|v| v.len()), Ok(1 << 20));
        assert_eq!(budget, 3 << 20);
        // A broken header: inflated raw after it, like lopdf.
        let mut broken = once.clone();
        broken[0] = 0;
        let mut budget = 4 << 20;
        assert_eq!(inflate(&broken, &mut budget).map(|v| v.len()), Ok(1 << 20));
        let mut budget = 4 << 20;
        assert_eq!(inflate_count(&broken, &mut budget), Ok(()));
        assert_eq!(budget, 3 << 20);
        let mut budget = (1 << 20) - 1;
        assert!(inflate(&once, &mut budget).is_err());
        let mut budget = (1 << 20) - 1;
        assert!(inflate_count(&broken, &mut budget).is_err());
        // Two layers: both counted.
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&once).unwrap_or_default();
        let twice = e.finish().unwrap_or_default();
        let mut budget = 4 << 20;
        assert_eq!(
            inflate_layers(&twice, 2, &mut budget).map(|v| v.len()),
            Ok(1 << 20)
        );
        assert_eq!(budget, (3 << 20) - once.len() as u64);
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
