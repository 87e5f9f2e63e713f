//! File-type sniffing from the bytes themselves.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// The résumé formats this crate can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FileType {
    /// A PDF document with a text layer.
    #[serde(rename = "pdf")]
    Pdf,
    /// An Office Open XML word-processing document (`.docx`).
    #[serde(rename = "docx")]
    Docx,
    /// Markdown (CommonMark with tables).
    #[serde(rename = "markdown")]
    Markdown,
    /// Plain text in UTF-8, UTF-16 (with BOM) or Windows-1252.
    #[serde(rename = "text")]
    PlainText,
}

impl FileType {
    /// The canonical MIME type of the format.
    pub fn mime(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            FileType::Markdown => "text/markdown",
            FileType::PlainText => "text/plain",
        }
    }

    /// The serialised name (`pdf`, `docx`, `markdown`, `text`).
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Pdf => "pdf",
            FileType::Docx => "docx",
            FileType::Markdown => "markdown",
            FileType::PlainText => "text",
        }
    }
}

impl std::fmt::Display for FileType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`sniff`] refused the bytes. Permanent: the same bytes always fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    /// Zero bytes.
    #[error("the file is empty (0 bytes)")]
    Empty,
    /// Some other format (an image, a spreadsheet, a ZIP that is not a DOCX,
    /// binary data, ...). `detected` names what the bytes look like.
    #[error("unsupported file type: {detected}; upload a PDF, DOCX, Markdown or plain-text résumé")]
    Unsupported {
        /// What the bytes look like, for the message (e.g. `PNG image`).
        detected: String,
    },
}

impl SniffError {
    /// A stable, machine-readable code: `empty` or `unsupported`.
    pub fn code(&self) -> &'static str {
        match self {
            SniffError::Empty => "empty",
            SniffError::Unsupported { .. } => "unsupported",
        }
    }
}

fn unsupported(detected: &str) -> SniffError {
    SniffError::Unsupported {
        detected: detected.to_owned(),
    }
}

/// The most ZIP entries a DOCX may have before it is treated as hostile.
pub(crate) const MAX_ZIP_ENTRIES: usize = 10_000;

/// Decide the file type from the bytes (magic numbers, the ZIP directory for
/// DOCX, text validity). The filename hint only chooses between Markdown and
/// plain text once the bytes are known to be text; a client's content type is
/// never consulted.
pub fn sniff(bytes: &[u8], filename_hint: Option<&str>) -> Result<FileType, SniffError> {
    if bytes.is_empty() {
        return Err(SniffError::Empty);
    }
    if is_pdf(bytes) {
        return Ok(FileType::Pdf);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return sniff_zip(bytes);
    }
    if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        // An OLE2 compound file: a legacy .doc/.xls, or a password-protected
        // OOXML document (which Office wraps in OLE2 as "EncryptedPackage").
        if contains_utf16le(bytes, "EncryptedPackage") {
            return Ok(FileType::Docx);
        }
        return Err(unsupported("legacy Microsoft Office file (.doc/.xls)"));
    }
    if let Some(kind) = binary_magic(bytes) {
        return Err(unsupported(kind));
    }
    let Some(sample) = crate::text::decode_text(bytes) else {
        return Err(unsupported("binary data"));
    };
    let head: String = sample.chars().take(2048).collect();
    let lower_head = head.trim_start().to_ascii_lowercase();
    if lower_head.starts_with("{\\rtf") {
        return Err(unsupported("RTF document"));
    }
    if lower_head.starts_with("<!doctype html") || lower_head.starts_with("<html") {
        return Err(unsupported("HTML document"));
    }
    if lower_head.starts_with("<?xml") {
        return Err(unsupported("XML document"));
    }
    if lower_head.starts_with("%!ps") {
        return Err(unsupported("PostScript document"));
    }
    Ok(text_flavour(&sample, filename_hint))
}

/// `%PDF-` within the first KiB (the format allows leading junk).
fn is_pdf(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(1024)];
    head.windows(5).any(|w| w == b"%PDF-")
}

fn contains_utf16le(bytes: &[u8], needle: &str) -> bool {
    let pattern: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    bytes
        .windows(pattern.len())
        .any(|w| w == pattern.as_slice())
}

fn binary_magic(bytes: &[u8]) -> Option<&'static str> {
    let table: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "PNG image"),
        (b"\xFF\xD8\xFF", "JPEG image"),
        (b"GIF87a", "GIF image"),
        (b"GIF89a", "GIF image"),
        (b"II*\x00", "TIFF image"),
        (b"MM\x00*", "TIFF image"),
        (b"\x1F\x8B", "gzip archive"),
        (b"7z\xBC\xAF\x27\x1C", "7-Zip archive"),
        (b"Rar!\x1A\x07", "RAR archive"),
        (b"BZh", "bzip2 archive"),
        (b"\xFD7zXZ\x00", "xz archive"),
        (b"\x7FELF", "executable (ELF)"),
        (b"\x00\x00\x01\x00", "icon image"),
        (b"OggS", "Ogg media"),
        (b"fLaC", "FLAC audio"),
        (b"ID3", "MP3 audio"),
        (b"\x1A\x45\xDF\xA3", "Matroska/WebM video"),
    ];
    for (magic, kind) in table {
        if bytes.starts_with(magic) {
            return Some(kind);
        }
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" {
        return Some(match &bytes[8..12] {
            b"WEBP" => "WebP image",
            b"WAVE" => "WAV audio",
            b"AVI " => "AVI video",
            _ => "RIFF media",
        });
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"heic" | b"heix" | b"mif1" | b"msf1" => "HEIC image",
            b"avif" => "AVIF image",
            _ => "MP4/QuickTime media",
        });
    }
    if bytes.starts_with(b"MZ") && bytes.len() > 64 && bytes[..64].contains(&0) {
        return Some("executable (PE)");
    }
    if bytes.starts_with(b"BM") && bytes.len() > 14 && bytes[..14].contains(&0) {
        return Some("BMP image");
    }
    None
}

fn sniff_zip(bytes: &[u8]) -> Result<FileType, SniffError> {
    let archive = match zip::ZipArchive::new(Cursor::new(bytes)) {
        Ok(a) => a,
        Err(_) => {
            // A damaged DOCX still names its main part in a local header;
            // call it a DOCX so extraction reports it as corrupt.
            return if bytes.windows(17).any(|w| w == b"word/document.xml") {
                Ok(FileType::Docx)
            } else {
                Err(unsupported("damaged ZIP archive"))
            };
        }
    };
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(unsupported("ZIP archive with too many entries"));
    }
    let mut has_document = false;
    let mut kind = "ZIP archive";
    for name in archive.file_names_raw() {
        match name {
            b"word/document.xml" => has_document = true,
            b"xl/workbook.xml" => kind = "Excel spreadsheet (.xlsx)",
            b"ppt/presentation.xml" => kind = "PowerPoint presentation (.pptx)",
            b"content.xml" if kind == "ZIP archive" => kind = "OpenDocument file",
            b"META-INF/container.xml" => kind = "EPUB book",
            _ => {}
        }
    }
    if has_document {
        Ok(FileType::Docx)
    } else {
        Err(unsupported(kind))
    }
}

/// Markdown or plain text: the filename extension decides when it names one
/// of them; otherwise Markdown needs at least two distinct Markdown features
/// (ATX headings, links, emphasis, fenced code, tables), since bullets alone
/// are common in plain-text résumés.
fn text_flavour(text: &str, filename_hint: Option<&str>) -> FileType {
    if let Some(name) = filename_hint {
        let lower = name.trim().to_ascii_lowercase();
        let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "md" | "markdown" | "mdown" | "mkd" | "mkdn" => return FileType::Markdown,
            "txt" | "text" => return FileType::PlainText,
            _ => {}
        }
    }
    let mut heading = false;
    let mut link = false;
    let mut emphasis = false;
    let mut fence = false;
    let mut table = false;
    let mut setext = false;
    for line in text.lines().take(400) {
        let t = line.trim_start();
        if t.starts_with("# ") || t.starts_with("## ") || t.starts_with("### ") {
            heading = true;
        }
        if t.starts_with("```") || t.starts_with("~~~") {
            fence = true;
        }
        if t.starts_with('|') && t.trim_end().ends_with('|') && t.len() > 2 {
            table = true;
        }
        if t.len() >= 3 && (t.chars().all(|c| c == '=') || t.chars().all(|c| c == '-')) {
            setext = true;
        }
        if t.contains("](") && t.contains('[') {
            link = true;
        }
        if t.contains("**") || t.contains("__") {
            emphasis = true;
        }
    }
    let features = [heading, link, emphasis, fence, table, setext]
        .iter()
        .filter(|f| **f)
        .count();
    if features >= 2 || (heading && text.lines().filter(|l| l.starts_with('#')).count() >= 3) {
        FileType::Markdown
    } else {
        FileType::PlainText
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(sniff(b"", None), Err(SniffError::Empty));
        assert_eq!(sniff(b"%PDF-1.4\n...", Some("x.txt")), Ok(FileType::Pdf));
        assert!(matches!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("resume.pdf")),
            Err(SniffError::Unsupported { detected }) if detected == "PNG image"
        ));
        assert!(matches!(
            sniff(b"\x00\x01\x02\x03\xff\xfe\x00", None),
            Err(SniffError::Unsupported { .. })
        ));
    }

    #[test]
    fn text_flavours() {
        assert_eq!(
            sniff(b"Jane Doe\n- Rust\n- Go\n", None),
            Ok(FileType::PlainText)
        );
        assert_eq!(
            sniff(b"# Jane Doe\n\n## Skills\n**Rust**\n", None),
            Ok(FileType::Markdown)
        );
        assert_eq!(sniff(b"Jane Doe", Some("cv.md")), Ok(FileType::Markdown));
        assert_eq!(
            sniff(b"# Jane\n## Skills\n**x**", Some("cv.txt")),
            Ok(FileType::PlainText)
        );
        assert_eq!(
            sniff("José Álvarez".as_bytes(), None),
            Ok(FileType::PlainText)
        );
        // Windows-1252 "José"
        assert_eq!(
            sniff(b"Jos\xe9 \xc1lvarez\n", None),
            Ok(FileType::PlainText)
        );
        assert!(matches!(
            sniff(b"{\\rtf1 hello}", None),
            Err(SniffError::Unsupported { .. })
        ));
    }

    #[test]
    fn mime_and_serde() {
        assert_eq!(
            FileType::Docx.mime(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(
            serde_json::to_string(&FileType::PlainText).ok().as_deref(),
            Some("\"text\"")
        );
        assert_eq!(
            serde_json::to_string(&FileType::Markdown).ok().as_deref(),
            Some("\"markdown\"")
        );
    }
}
