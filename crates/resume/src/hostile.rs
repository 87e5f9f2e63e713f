//! Hostile files for tests and fuzz seeds (feature `testing`): each one of
//! the inputs that once took the service down (issue 11), built from code so
//! that no multi-megabyte binary lives in the repository.
//!
//! Large decompressed payloads are not compressed byte by byte: a chunk is
//! compressed once as independent, byte-aligned deflate blocks and copied,
//! so a 1 GB bomb is built in milliseconds, even in a debug build.

use std::io::Write;

use flate2::{Compress, Compression, FlushCompress};

/// One hostile file: its name (also the upload's filename) and bytes, and
/// what it attacks.
#[derive(Debug, Clone)]
pub struct HostileFile {
    /// The filename to upload it as (its extension matters for text).
    pub name: &'static str,
    /// What it does to an unprotected parser.
    pub attack: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Every hostile file of issue 11.
#[must_use]
pub fn all() -> Vec<HostileFile> {
    vec![
        HostileFile {
            name: "self-drawing-xobject.pdf",
            attack: "a form XObject that draws itself (/Fx0 /Nope Do): unbounded recursion, stack overflow",
            bytes: self_drawing_xobject(),
        },
        HostileFile {
            name: "contents-2000x.pdf",
            attack: "one content stream listed 2,000 times in /Contents: 3.3 GB allocation",
            bytes: contents_listed_2000_times(),
        },
        HostileFile {
            name: "broken-zlib-header.pdf",
            attack: "a /FlateDecode stream with a broken zlib header, inflated raw to 1 GB",
            bytes: broken_zlib_header(),
        },
        HostileFile {
            name: "double-flate.pdf",
            attack: "[/FlateDecode /FlateDecode]: the inner layer inflates to 1 GB",
            bytes: double_flate(),
        },
        HostileFile {
            name: "path-operators.pdf",
            attack: "20 MiB of path operators: gigabytes of parsed operations",
            bytes: path_operators(),
        },
        HostileFile {
            name: "bfrange-bomb.pdf",
            attack: "a ToUnicode CMap `beginbfrange <000000> <FFFFFF>`: 16.7 M map entries",
            bytes: bfrange_bomb(),
        },
        HostileFile {
            name: "huge-paragraphs.docx",
            attack: "48 MiB of paragraphs in a small DOCX: a 79 MB task result",
            bytes: huge_paragraphs_docx(),
        },
        HostileFile {
            name: "near-equal-headers.docx",
            attack: "9,990 near-equal header parts: quadratic deduplication",
            bytes: near_equal_headers_docx(),
        },
        HostileFile {
            name: "curly-quotes.txt",
            attack: "a curly quote before a skill: byte-index slicing inside a character",
            bytes: curly_quotes_text().into_bytes(),
        },
    ]
}

/// A PDF from object bodies (object `i + 1` is `objects[i]`; object 1 is
/// the catalog), with a correct cross-reference table.
#[must_use]
pub fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A stream object: `dict` entries (without `/Length`) and raw data.
#[must_use]
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Catalog, page tree and one page with font `/F1` (object 4) whose
/// `/Contents` is `contents`; `resources_extra` goes into its resources.
fn one_page(contents: &str, resources_extra: &str, font_extra: &str) -> Vec<Vec<u8>> {
    vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> {resources_extra} >> /Contents {contents} >>"
        )
        .into_bytes(),
        format!("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding {font_extra} >>")
            .into_bytes(),
    ]
}

const TEXT: &[u8] = b"BT /F1 12 Tf 72 720 Td (Jane Doe) Tj ET\n";

/// A 972-byte-class PDF whose form XObject `Fx0` draws itself with
/// `/Fx0 /Nope Do` (pdf-extract invokes the *first* operand of `Do`).
#[must_use]
pub fn self_drawing_xobject() -> Vec<u8> {
    let mut objects = one_page("5 0 R", "/XObject << /Fx0 6 0 R >>", "");
    let mut content = TEXT.to_vec();
    content.extend_from_slice(b"q /Fx0 Do Q\n");
    objects.push(stream("", &content));
    objects.push(stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /Fx0 6 0 R >> >>",
        b"/Fx0 /Nope Do",
    ));
    pdf(&objects)
}

/// One 1.65 MB content stream (compressed to a few KB) listed 2,000 times.
#[must_use]
pub fn contents_listed_2000_times() -> Vec<u8> {
    let line = b"BT /F1 12 Tf 72 720 Td (Jane Doe Rust) Tj ET\n";
    let chunk = line.repeat(1_650_000 / line.len());
    let data = zlib_repeated(&chunk, 1);
    let refs = vec!["5 0 R"; 2000].join(" ");
    let mut objects = one_page(&format!("[{refs}]"), "", "");
    objects.push(stream("/Filter /FlateDecode", &data));
    pdf(&objects)
}

/// Page content `/FlateDecode` whose zlib header is broken: the rest is raw
/// deflate of 1 GB of spaces (lopdf falls back to raw inflate).
#[must_use]
pub fn broken_zlib_header() -> Vec<u8> {
    let mut data = vec![0x00, 0x00];
    data.extend_from_slice(&deflate_repeated(&[b' '; 1 << 20], 1 << 10));
    let mut objects = one_page("[5 0 R 6 0 R]", "", "");
    objects.push(stream("", TEXT));
    objects.push(stream("/Filter /FlateDecode", &data));
    pdf(&objects)
}

/// `[/FlateDecode /FlateDecode]`: the outer layer is small, the inner one
/// inflates to 1 GB of spaces.
#[must_use]
pub fn double_flate() -> Vec<u8> {
    let inner = zlib_repeated(&[b' '; 1 << 20], 1 << 10);
    let outer = zlib(&inner);
    let mut objects = one_page("[5 0 R 6 0 R]", "", "");
    objects.push(stream("", TEXT));
    objects.push(stream("/Filter [/FlateDecode /FlateDecode]", &outer));
    pdf(&objects)
}

/// 20 MiB of path construction operators, compressed to some 30 KB.
#[must_use]
pub fn path_operators() -> Vec<u8> {
    let ops = b"0 0 m 1 1 l 2 2 l h\n";
    let chunk = ops.repeat((1 << 20) / ops.len());
    let data = zlib_repeated(&chunk, 20 * 1024 * 1024 / chunk.len());
    let mut objects = one_page("[5 0 R 6 0 R]", "", "");
    objects.push(stream("", TEXT));
    objects.push(stream("/Filter /FlateDecode", &data));
    pdf(&objects)
}

/// A font whose ToUnicode CMap maps every 3-byte code: 16.7 M entries.
#[must_use]
pub fn bfrange_bomb() -> Vec<u8> {
    let cmap = b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
/CMapName /Bomb def /CMapType 2 def\n\
1 begincodespacerange <000000> <FFFFFF> endcodespacerange\n\
1 beginbfrange <000000> <FFFFFF> <0041> endbfrange\n\
endcmap CMapName currentdict /CMap defineresource pop end end\n";
    let mut objects = one_page("5 0 R", "", "/ToUnicode 6 0 R");
    objects.push(stream("", TEXT));
    objects.push(stream("", cmap));
    pdf(&objects)
}

const CONTENT_TYPES: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const DOC_HEAD: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Jane Doe</w:t></w:r></w:p>"#;
const DOC_TAIL: &[u8] = b"</w:body></w:document>";

/// A DOCX whose body is 48 one-MiB paragraphs (compressed to ~200 KB).
#[must_use]
pub fn huge_paragraphs_docx() -> Vec<u8> {
    let words = b"Rust PostgreSQL Kubernetes experience ";
    let mut para = b"<w:p><w:r><w:t>".to_vec();
    para.extend_from_slice(&words.repeat(1024 * 1024 / words.len()));
    para.extend_from_slice(b"</w:t></w:r></w:p>");
    let count = 48;
    // The document: head, `count` identical paragraphs, tail. The paragraphs
    // go through `deflate_parts`, so only three are ever compressed.
    let body = deflate_parts(DOC_HEAD, &para, count, DOC_TAIL);
    let mut crc = flate2::Crc::new();
    crc.update(DOC_HEAD);
    for _ in 0..count {
        crc.update(&para);
    }
    crc.update(DOC_TAIL);
    let size = DOC_HEAD.len() + para.len() * count + DOC_TAIL.len();
    zip(&[
        ZipEntry::deflated("[Content_Types].xml", CONTENT_TYPES),
        ZipEntry {
            name: "word/document.xml".into(),
            data: body,
            crc: crc.sum(),
            size,
            method: 8,
        },
    ])
}

/// A DOCX with 9,990 header parts that differ only in their last digits.
#[must_use]
pub fn near_equal_headers_docx() -> Vec<u8> {
    let mut doc = DOC_HEAD.to_vec();
    doc.extend_from_slice(DOC_TAIL);
    let mut entries = vec![
        ZipEntry::deflated("[Content_Types].xml", CONTENT_TYPES),
        ZipEntry::deflated("word/document.xml", &doc),
    ];
    let filler = "Jane Doe · Senior Engineer · jane@example.com · ".repeat(5);
    for i in 0..9_990 {
        let xml = format!(
            r#"<w:hdr xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:p><w:r><w:t>{filler}{i:05}</w:t></w:r></w:p></w:hdr>"#
        );
        entries.push(ZipEntry::deflated(
            &format!("word/header{i}.xml"),
            xml.as_bytes(),
        ));
    }
    zip(&entries)
}

/// Text whose curly quotes sit right before skills (a byte-index slice of
/// `"x”"` two bytes from the end lands inside the quote).
#[must_use]
pub fn curly_quotes_text() -> String {
    "Jane Doe\njane@example.com\n\nSkills\n\
     Languages: “Rust” ”Go ’R ‘C or ”Go and ”SQL\n\
     Tools: Docker”, Kubernetes’ and “Go”\n\
     Experience\nEngineer at “Acme” — 2019 – present\n"
        .to_owned()
}

/// zlib (header, deflate, Adler-32) of `data`.
#[must_use]
pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// zlib of `chunk` repeated `count` times, compressing three chunks only.
#[must_use]
pub fn zlib_repeated(chunk: &[u8], count: usize) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    out.extend_from_slice(&deflate_repeated(chunk, count));
    out.extend_from_slice(&adler32_repeated(chunk, count).to_be_bytes());
    out
}

/// Raw deflate of `chunk` repeated `count` times.
#[must_use]
pub fn deflate_repeated(chunk: &[u8], count: usize) -> Vec<u8> {
    deflate_parts(b"", chunk, count, b"")
}

/// Raw deflate of `head`, `count` × `chunk`, `tail`: each part is
/// compressed on its own by a fresh compressor and ends with a sync flush
/// (non-final blocks, byte-aligned), so one compressed `chunk` can be copied
/// `count` times; the tail carries the final block.
fn deflate_parts(head: &[u8], chunk: &[u8], count: usize, tail: &[u8]) -> Vec<u8> {
    let block = |data: &[u8], flush: FlushCompress| {
        step(&mut Compress::new(Compression::best(), false), data, flush)
    };
    let mut out = block(head, FlushCompress::Sync);
    let one = block(chunk, FlushCompress::Sync);
    out.reserve(one.len() * count);
    for _ in 0..count {
        out.extend_from_slice(&one);
    }
    out.extend_from_slice(&block(tail, FlushCompress::Finish));
    out
}

/// Compresses all of `input`, then flushes as `flush` says.
fn step(c: &mut Compress, input: &[u8], flush: FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 + 4096);
    let mut pos = 0usize;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(4096));
        }
        let before = c.total_in();
        let status = c.compress_vec(input.get(pos..).unwrap_or_default(), &mut out, flush);
        pos += usize::try_from(c.total_in() - before).unwrap_or(0);
        match status {
            Ok(flate2::Status::StreamEnd) | Err(_) => break,
            // Everything consumed and the output did not fill the buffer:
            // the flush is complete.
            _ if pos >= input.len() && out.len() < out.capacity() => break,
            _ => {}
        }
    }
    out
}

/// Adler-32 of `chunk` repeated `count` times, in O(chunk + log count).
fn adler32_repeated(chunk: &[u8], count: usize) -> u32 {
    const M: u64 = 65_521;
    // Over one chunk from (a=0, b=0): sum of bytes, and sum of prefix sums.
    let n = chunk.len() as u64;
    let (mut s, mut t) = (0u64, 0u64);
    for &byte in chunk {
        s = (s + u64::from(byte)) % M;
        t = (t + s) % M;
    }
    // Appending a chunk to state (a, b): a' = a + s, b' = b + n·a + t.
    let (mut a, mut b) = (1u64, 0u64);
    for _ in 0..count {
        b = (b + (n % M) * a + t) % M;
        a = (a + s) % M;
    }
    u32::try_from((b << 16) | a).unwrap_or(0)
}

struct ZipEntry {
    name: String,
    data: Vec<u8>,
    crc: u32,
    size: usize,
    method: u16,
}

impl ZipEntry {
    fn deflated(name: &str, plain: &[u8]) -> Self {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::fast());
        let _ = e.write_all(plain);
        let mut crc = flate2::Crc::new();
        crc.update(plain);
        Self {
            name: name.to_owned(),
            data: e.finish().unwrap_or_default(),
            crc: crc.sum(),
            size: plain.len(),
            method: 8,
        }
    }
}

/// A plain ZIP archive (no ZIP64: every size below 4 GiB, < 65,535 entries).
fn zip(entries: &[ZipEntry]) -> Vec<u8> {
    let u16le = |v: usize| u16::try_from(v).unwrap_or(u16::MAX).to_le_bytes();
    let u32le = |v: usize| u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let offset = out.len();
        let name = e.name.as_bytes();
        let common = |buf: &mut Vec<u8>| {
            buf.extend_from_slice(&20u16.to_le_bytes()); // version needed
            buf.extend_from_slice(&0u16.to_le_bytes()); // flags
            buf.extend_from_slice(&e.method.to_le_bytes());
            buf.extend_from_slice(&0u32.to_le_bytes()); // time, date
            buf.extend_from_slice(&e.crc.to_le_bytes());
            buf.extend_from_slice(&u32le(e.data.len()));
            buf.extend_from_slice(&u32le(e.size));
            buf.extend_from_slice(&u16le(name.len()));
            buf.extend_from_slice(&0u16.to_le_bytes()); // extra length
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        common(&mut out);
        out.extend_from_slice(name);
        out.extend_from_slice(&e.data);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // version made by
        common(&mut central);
        central.extend_from_slice(&0u16.to_le_bytes()); // comment length
        central.extend_from_slice(&0u16.to_le_bytes()); // disk
        central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&u32le(offset));
        central.extend_from_slice(name);
    }
    let cd_offset = out.len();
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u16le(entries.len()));
    out.extend_from_slice(&u32le(central.len()));
    out.extend_from_slice(&u32le(cd_offset));
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn repeated_streams_inflate_to_what_they_claim() {
        let chunk: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let z = zlib_repeated(&chunk, 5);
        let mut plain = Vec::new();
        flate2::read::ZlibDecoder::new(&z[..])
            .read_to_end(&mut plain)
            .expect("valid zlib with a correct checksum");
        assert_eq!(plain, chunk.repeat(5));
    }

    #[test]
    fn the_zips_open() {
        for f in [huge_paragraphs_docx(), near_equal_headers_docx()] {
            let mut a = zip::ZipArchive::new(std::io::Cursor::new(&f[..])).expect("zip");
            let mut doc = a.by_name("word/document.xml").expect("document");
            let mut head = vec![0u8; 64];
            doc.read_exact(&mut head).expect("readable");
        }
        let docx = huge_paragraphs_docx();
        assert!(docx.len() < 400 * 1024, "{} bytes", docx.len());
    }

    #[test]
    fn sizes_are_as_described() {
        assert!(self_drawing_xobject().len() < 1200);
        assert!(bfrange_bomb().len() < 1200);
        assert!(contents_listed_2000_times().len() < 200 * 1024);
        assert!(path_operators().len() < 100 * 1024);
    }
}
