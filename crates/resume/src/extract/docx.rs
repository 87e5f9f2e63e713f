//! DOCX text extraction with `zip` + `quick-xml`.
//!
//! Reads `word/document.xml` plus the page headers (where many templates put
//! the name and contact line) and footers. Paragraphs become lines; a table
//! row whose cells are single paragraphs becomes one line with the cells
//! separated by tabs, and a row with multi-paragraph cells (a layout table,
//! e.g. a two-column template) is read cell by cell. Text boxes are read once
//! (the `mc:Fallback` copy is skipped), deleted revisions and field codes are
//! skipped, and the targets of external hyperlinks are kept next to their
//! text so that links such as "LinkedIn" keep their URL.

use std::collections::{BTreeMap, HashSet};
use std::io::{Cursor, Read};

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::Event;

use super::ExtractError;
use crate::filetype::MAX_ZIP_ENTRIES;

/// Decompressed bytes read at most, over all parts (50 MiB).
const MAX_DECOMPRESSED: u64 = 50 * 1024 * 1024;
/// XML nesting deeper than this is rejected.
const MAX_XML_DEPTH: usize = 512;
/// Header parts and footer parts accepted (each); a real document has a
/// handful (first page, even, odd per section).
const MAX_HEADER_PARTS: usize = 64;
/// Text collected from one part at most; the rest is dropped (the whole
/// text is cut to [`super::MAX_TEXT_BYTES`] anyway).
const MAX_PART_TEXT: usize = 2 * super::MAX_TEXT_BYTES;

pub(super) fn extract(bytes: &[u8]) -> Result<String, ExtractError> {
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        // OLE2 wrapper around an encrypted OOXML package.
        return Err(ExtractError::Encrypted);
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::corrupt(format!("not a readable DOCX (ZIP) file: {e}")))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(ExtractError::TooLarge(format!(
            "the DOCX has {} entries, the limit is {MAX_ZIP_ENTRIES}",
            archive.len()
        )));
    }
    let names: Vec<String> = archive
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.into_owned())
        .collect();
    let mut budget = MAX_DECOMPRESSED;
    let document = read_part(&mut archive, "word/document.xml", &mut budget)?
        .ok_or_else(|| ExtractError::corrupt("the DOCX has no word/document.xml"))?;
    let rels = match read_part(&mut archive, "word/_rels/document.xml.rels", &mut budget)? {
        Some(xml) => hyperlink_targets(&xml),
        None => BTreeMap::new(),
    };
    let mut parts = |prefix: &str| -> Result<Vec<String>, ExtractError> {
        let mut selected: Vec<&String> = names
            .iter()
            .filter(|n| {
                n.starts_with(prefix) && n.ends_with(".xml") && !n[prefix.len()..].contains('/')
            })
            .collect();
        if selected.len() > MAX_HEADER_PARTS {
            return Err(ExtractError::TooLarge(format!(
                "the DOCX has {} {} parts, the limit is {MAX_HEADER_PARTS}",
                selected.len(),
                prefix.trim_start_matches("word/")
            )));
        }
        selected.sort();
        // Deduplicated through a set: linear in the parts, not quadratic.
        let mut seen: HashSet<String> = HashSet::new();
        let mut texts: Vec<String> = Vec::new();
        for name in selected {
            if let Some(xml) = read_part(&mut archive, name, &mut budget)? {
                let text = document_text(&xml, &BTreeMap::new())?;
                if !text.trim().is_empty() && seen.insert(text.clone()) {
                    texts.push(text);
                }
            }
        }
        Ok(texts)
    };
    let headers = parts("word/header")?;
    let footers = parts("word/footer")?;
    let body = document_text(&document, &rels)?;
    let mut out = String::new();
    for h in &headers {
        out.push_str(h);
        out.push('\n');
    }
    out.push_str(&body);
    for f in &footers {
        out.push('\n');
        out.push_str(f);
    }
    Ok(out)
}

/// Read one part within the remaining decompression budget.
fn read_part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
) -> Result<Option<String>, ExtractError> {
    let file = match archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(zip::result::ZipError::UnsupportedArchive(msg))
            if msg.to_ascii_lowercase().contains("password") =>
        {
            return Err(ExtractError::Encrypted);
        }
        Err(e) => return Err(ExtractError::corrupt(format!("{name}: {e}"))),
    };
    if file.encrypted() {
        return Err(ExtractError::Encrypted);
    }
    if file.size() > *budget {
        return Err(too_large());
    }
    let mut data = Vec::new();
    let mut limited = file.take(*budget + 1);
    limited
        .read_to_end(&mut data)
        .map_err(|e| ExtractError::corrupt(format!("{name}: {e}")))?;
    if data.len() as u64 > *budget {
        return Err(too_large());
    }
    *budget -= data.len() as u64;
    Ok(Some(String::from_utf8_lossy(&data).into_owned()))
}

fn too_large() -> ExtractError {
    ExtractError::TooLarge(format!(
        "the DOCX expands to more than {MAX_DECOMPRESSED} bytes"
    ))
}

/// `r:id` → URL of the external hyperlinks in a relationships part.
fn hyperlink_targets(xml: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e))
                if e.local_name().as_ref() == "Relationship" =>
            {
                let attr = |key: &str| {
                    e.try_get_attribute(key).ok().flatten().and_then(|a| {
                        a.normalized_value(XmlVersion::Implicit1_0)
                            .ok()
                            .map(|v| v.into_owned())
                    })
                };
                let is_link = attr("Type").is_some_and(|t| t.ends_with("/hyperlink"));
                if let (true, Some(id), Some(target)) = (is_link, attr("Id"), attr("Target")) {
                    map.insert(id, target);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    map
}

/// A table being read: its rows, each a list of cell texts.
#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
}

struct Builder {
    /// Output targets: the body, then one buffer per open table cell.
    targets: Vec<String>,
    tables: Vec<Table>,
    in_text: bool,
    skip_depth: usize,
    links: Vec<Option<String>>,
    link_text_start: Vec<usize>,
}

impl Builder {
    fn out(&mut self) -> &mut String {
        if self.targets.is_empty() {
            self.targets.push(String::new());
        }
        let last = self.targets.len() - 1;
        &mut self.targets[last]
    }
}

/// The text of a WordprocessingML part.
fn document_text(xml: &str, rels: &BTreeMap<String, String>) -> Result<String, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut b = Builder {
        targets: vec![String::new()],
        tables: Vec::new(),
        in_text: false,
        skip_depth: 0,
        links: Vec::new(),
        link_text_start: Vec::new(),
    };
    let mut depth = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ExtractError::corrupt(format!("invalid XML in the DOCX: {e}")))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(ExtractError::corrupt("the DOCX XML is nested too deeply"));
                }
                let name = e.local_name();
                let name = name.as_ref();
                if b.skip_depth > 0 {
                    b.skip_depth += 1;
                    continue;
                }
                match name {
                    "Fallback" | "delText" | "instrText" | "del" => b.skip_depth = 1,
                    "t" => b.in_text = true,
                    "tbl" => b.tables.push(Table::default()),
                    "tr" => {
                        if let Some(t) = b.tables.last_mut() {
                            t.rows.push(Vec::new());
                        }
                    }
                    "tc" => b.targets.push(String::new()),
                    "hyperlink" => {
                        let target = e
                            .try_get_attribute("r:id")
                            .ok()
                            .flatten()
                            .and_then(|a| {
                                a.normalized_value(XmlVersion::Implicit1_0)
                                    .ok()
                                    .map(|v| v.into_owned())
                            })
                            .and_then(|id| rels.get(&id).cloned());
                        let start = b.out().len();
                        b.links.push(target);
                        b.link_text_start.push(start);
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if b.skip_depth > 0 {
                    continue;
                }
                match e.local_name().as_ref() {
                    "tab" | "ptab" => b.out().push('\t'),
                    "br" | "cr" => b.out().push('\n'),
                    "noBreakHyphen" => b.out().push('-'),
                    "p" => b.out().push('\n'),
                    _ => {}
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                if b.skip_depth > 0 {
                    b.skip_depth -= 1;
                    continue;
                }
                match e.local_name().as_ref() {
                    "t" => b.in_text = false,
                    "p" => b.out().push('\n'),
                    "tc" if b.targets.len() > 1 => {
                        let cell = b.targets.pop().unwrap_or_default();
                        match b.tables.last_mut().and_then(|t| t.rows.last_mut()) {
                            Some(row) => row.push(cell),
                            None => b.out().push_str(&cell),
                        }
                    }
                    "tbl" => {
                        if let Some(table) = b.tables.pop() {
                            let rendered = render_table(&table);
                            b.out().push_str(&rendered);
                        }
                    }
                    "hyperlink" => {
                        let start = b.link_text_start.pop().unwrap_or(0);
                        if let Some(Some(target)) = b.links.pop() {
                            let shown = b.out().get(start..).unwrap_or("").to_owned();
                            let plain =
                                target.strip_prefix("mailto:").unwrap_or(&target).to_owned();
                            if !shown.contains(&plain) && !plain.starts_with('#') {
                                let out = b.out();
                                out.push_str(" (");
                                out.push_str(&plain);
                                out.push(')');
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) if b.in_text && b.skip_depth == 0 && b.out().len() < MAX_PART_TEXT => {
                let text = t.xml10_content();
                b.out().push_str(&text);
            }
            Event::GeneralRef(r) if b.in_text && b.skip_depth == 0 => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match r.as_ref() {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                };
                if let Some(c) = resolved {
                    b.out().push(c);
                }
            }
            Event::CData(t) if b.in_text && b.skip_depth == 0 && b.out().len() < MAX_PART_TEXT => {
                let text: String = t.as_ref().to_owned();
                b.out().push_str(&text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    // Unclosed cells or tables (a truncated part): keep what was read.
    while b.targets.len() > 1 {
        let cell = b.targets.pop().unwrap_or_default();
        b.out().push_str(&cell);
        b.out().push('\n');
    }
    Ok(b.targets.pop().unwrap_or_default())
}

/// A row of one-paragraph cells is one line (cells joined by tabs); a row
/// with multi-paragraph cells is read cell by cell.
fn render_table(table: &Table) -> String {
    let mut out = String::new();
    for row in &table.rows {
        let cells: Vec<&str> = row
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect();
        if cells.is_empty() {
            continue;
        }
        if cells.iter().all(|c| !c.contains('\n')) {
            out.push_str(&cells.join("\t"));
            out.push('\n');
        } else {
            for cell in cells {
                out.push_str(cell);
                out.push_str("\n\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_tables_links() {
        let xml = r#"<w:document xmlns:w="w" xmlns:r="r" xmlns:mc="mc"><w:body>
            <w:p><w:r><w:t>Jos&#233; &amp; Co</w:t></w:r></w:p>
            <w:tbl><w:tr><w:tc><w:p><w:r><w:t>Skills</w:t></w:r></w:p></w:tc>
                          <w:tc><w:p><w:r><w:t>Rust, Go</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
            <w:p><w:hyperlink r:id="rId9"><w:r><w:t>LinkedIn</w:t></w:r></w:hyperlink></w:p>
            <mc:AlternateContent><mc:Choice><w:p><w:r><w:t>Box</w:t></w:r></w:p></mc:Choice>
              <mc:Fallback><w:p><w:r><w:t>Box</w:t></w:r></w:p></mc:Fallback></mc:AlternateContent>
            <w:p><w:r><w:delText>gone</w:delText><w:t xml:space="preserve">a</w:t><w:tab/><w:t>b</w:t></w:r></w:p>
        </w:body></w:document>"#;
        let mut rels = BTreeMap::new();
        rels.insert("rId9".to_owned(), "https://linkedin.com/in/jose".to_owned());
        let text = document_text(xml, &rels).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            [
                "José & Co",
                "Skills\tRust, Go",
                "LinkedIn (https://linkedin.com/in/jose)",
                "Box",
                "a\tb"
            ]
        );
    }
}
