//! Text extraction: PDF, DOCX, Markdown and plain text to normalised text.

mod docx;
mod layout;
mod markdown;
mod pdf;
mod pdf_links;
mod pdf_words;

use crate::FileType;
use crate::text::{decode_text, normalize_text};

/// The largest input accepted, in bytes (50 MiB).
pub const MAX_INPUT_BYTES: usize = 50 * 1024 * 1024;
/// The most text a document may hold (1 MiB, some 150,000 words, far
/// beyond any résumé): more is refused as too large, which bounds the
/// structuring work and every result built on the text.
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Why text could not be extracted. Every variant is permanent: retrying the
/// same bytes fails the same way. `Display` is one line, fit to show a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// No bytes, or no text at all in the document.
    #[error("the file is empty: it contains no text")]
    Empty,
    /// A password-protected PDF (or Office file) that cannot be opened
    /// without its password.
    #[error("the document is password-protected; remove the password and upload it again")]
    Encrypted,
    /// A PDF whose pages carry no text (a scan or a photo); OCR is not done.
    #[error(
        "the PDF has no text layer (it looks like a scanned image); upload a text-based PDF or a DOCX"
    )]
    NoTextLayer,
    /// Larger than the limits (input size, decompressed size, entry count).
    #[error("the file is too large to process: {0}")]
    TooLarge(String),
    /// The bytes are damaged or not what the file type says.
    #[error("the file is corrupt or unreadable: {0}")]
    Corrupt(String),
}

impl ExtractError {
    /// A stable, machine-readable code (`empty`, `encrypted`,
    /// `no_text_layer`, `too_large`, `corrupt`).
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Empty => "empty",
            ExtractError::Encrypted => "encrypted",
            ExtractError::NoTextLayer => "no_text_layer",
            ExtractError::TooLarge(_) => "too_large",
            ExtractError::Corrupt(_) => "corrupt",
        }
    }

    pub(crate) fn corrupt(detail: impl AsRef<str>) -> Self {
        ExtractError::Corrupt(crate::text::one_line(detail.as_ref()))
    }
}

/// Extract the plain text of a document of the given type.
///
/// The text is normalised (`\n` line ends, no control characters, ligatures
/// expanded, at most one blank line in a row). Table cells of a row are
/// separated by a tab, as are far-apart runs of text on one PDF line.
pub fn extract_text(bytes: &[u8], ty: FileType) -> Result<String, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ExtractError::TooLarge(format!(
            "{} bytes, the limit is {MAX_INPUT_BYTES}",
            bytes.len()
        )));
    }
    let raw = match ty {
        FileType::Pdf => pdf::extract(bytes)?,
        FileType::Docx => docx::extract(bytes)?,
        FileType::Markdown => markdown::to_text(&decode(bytes)?),
        FileType::PlainText => decode(bytes)?,
    };
    // Extractors stop collecting a little past twice the cap; normalising
    // only shrinks text, so what is still above the cap was too long.
    let raw = truncate_at_char(raw, MAX_TEXT_BYTES * 2 + 1);
    let text = normalize_text(&raw);
    if text.len() > MAX_TEXT_BYTES {
        return Err(ExtractError::TooLarge(format!(
            "the document holds more than {MAX_TEXT_BYTES} bytes of text"
        )));
    }
    if text.trim().is_empty() {
        return Err(match ty {
            FileType::Pdf => ExtractError::NoTextLayer,
            _ => ExtractError::Empty,
        });
    }
    Ok(text)
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate_at_char(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

fn decode(bytes: &[u8]) -> Result<String, ExtractError> {
    decode_text(bytes)
        .ok_or_else(|| ExtractError::corrupt("not a text file: it contains binary data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_markdown() {
        assert_eq!(
            extract_text(b"", FileType::PlainText),
            Err(ExtractError::Empty)
        );
        assert_eq!(
            extract_text(b" \n\t\n", FileType::PlainText),
            Err(ExtractError::Empty)
        );
        assert_eq!(
            extract_text(b"Jane\r\nDoe", FileType::PlainText).as_deref(),
            Ok("Jane\nDoe\n")
        );
        assert!(matches!(
            extract_text(b"\x00\x01\x02\x03", FileType::PlainText),
            Err(ExtractError::Corrupt(_))
        ));
    }

    #[test]
    fn too_much_text_is_refused() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        assert!(matches!(
            extract_text(long.as_bytes(), FileType::PlainText),
            Err(ExtractError::TooLarge(_))
        ));
        let fits = "é ".repeat(MAX_TEXT_BYTES / 4);
        assert!(extract_text(fits.as_bytes(), FileType::PlainText).is_ok());
    }

    #[test]
    fn messages_are_one_line() {
        let e = ExtractError::corrupt("bad\nthing\r\nhere");
        assert_eq!(
            e.to_string(),
            "the file is corrupt or unreadable: bad thing here"
        );
    }
}
