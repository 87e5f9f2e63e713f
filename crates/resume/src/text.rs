//! Decoding of text bytes and normalisation of extracted text.

use encoding_rs::{UTF_16BE, UTF_16LE, WINDOWS_1252};

/// Decode bytes that should be text: UTF-8 (with or without BOM), UTF-16
/// (with BOM, or recognisable by its zero bytes), else Windows-1252. `None`
/// when the bytes look binary (NUL bytes or many control characters).
pub(crate) fn decode_text(bytes: &[u8]) -> Option<String> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return plausible(String::from_utf8_lossy(rest).into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        return plausible(UTF_16LE.decode_without_bom_handling(rest).0.into_owned());
    }
    if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        return plausible(UTF_16BE.decode_without_bom_handling(rest).0.into_owned());
    }
    if let Some(le) = bom_less_utf16(bytes) {
        let enc = if le { UTF_16LE } else { UTF_16BE };
        return plausible(enc.decode_without_bom_handling(bytes).0.into_owned());
    }
    if bytes.contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => plausible(s.to_owned()),
        Err(_) => {
            // C1 bytes that Windows-1252 leaves undefined are a sign of binary.
            let undefined = bytes
                .iter()
                .filter(|b| matches!(b, 0x81 | 0x8D | 0x8F | 0x90 | 0x9D))
                .count();
            if undefined * 100 > bytes.len() {
                return None;
            }
            plausible(
                WINDOWS_1252
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned(),
            )
        }
    }
}

/// UTF-16 without a BOM shows as a zero in every other byte of ASCII text.
/// Returns `Some(true)` for little-endian, `Some(false)` for big-endian.
fn bom_less_utf16(bytes: &[u8]) -> Option<bool> {
    let sample = &bytes[..bytes.len().min(4096) & !1];
    if sample.len() < 8 {
        return None;
    }
    let pairs = sample.len() / 2;
    let even_zero = sample.iter().step_by(2).filter(|b| **b == 0).count();
    let odd_zero = sample
        .iter()
        .skip(1)
        .step_by(2)
        .filter(|b| **b == 0)
        .count();
    if odd_zero * 10 >= pairs * 7 && even_zero * 20 <= pairs {
        Some(true)
    } else if even_zero * 10 >= pairs * 7 && odd_zero * 20 <= pairs {
        Some(false)
    } else {
        None
    }
}

/// Reject decoded text with many control characters (binary in disguise).
fn plausible(s: String) -> Option<String> {
    let mut total = 0usize;
    let mut bad = 0usize;
    for c in s.chars() {
        total += 1;
        if (c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')) || c == '\u{FFFD}' {
            bad += 1;
        }
    }
    if total > 0 && bad * 50 > total {
        None
    } else {
        Some(s)
    }
}

/// Normalise extracted text: `\n` line ends, no control or zero-width
/// characters, ligatures expanded, non-breaking spaces made plain, trailing
/// spaces trimmed, runs of blank lines collapsed to one.
pub(crate) fn normalize_text(s: &str) -> String {
    let mut cleaned = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    cleaned.push('\n');
                }
            }
            '\u{c}' | '\u{2029}' => cleaned.push_str("\n\n"),
            '\u{2028}' | '\u{b}' | '\u{85}' => cleaned.push('\n'),
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => {
                cleaned.push(' ')
            }
            '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}' | '\u{fffd}' => {}
            // Unicode hyphens (Word and browser exports) read as ASCII.
            '\u{2010}' | '\u{2011}' => {
                if !cleaned.ends_with('-') {
                    cleaned.push('-');
                }
            }
            '\u{fb00}' => cleaned.push_str("ff"),
            '\u{fb01}' => cleaned.push_str("fi"),
            '\u{fb02}' => cleaned.push_str("fl"),
            '\u{fb03}' => cleaned.push_str("ffi"),
            '\u{fb04}' => cleaned.push_str("ffl"),
            '\u{fb05}' | '\u{fb06}' => cleaned.push_str("st"),
            '\t' | '\n' => cleaned.push(c),
            c if c.is_control() => {}
            c => cleaned.push(c),
        }
    }
    let mut out = String::with_capacity(cleaned.len());
    let mut blank_run = 0usize;
    for line in cleaned.split('\n') {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
            if blank_run > 0 {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Make any message a single line (error messages must be one line).
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(300));
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > 240 {
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_encodings() {
        assert_eq!(decode_text("José".as_bytes()).as_deref(), Some("José"));
        assert_eq!(decode_text(b"Jos\xe9").as_deref(), Some("José"));
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Zoë Ng".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_text(&utf16).as_deref(), Some("Zoë Ng"));
        let bomless: Vec<u8> = "Plain old text here"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(
            decode_text(&bomless).as_deref(),
            Some("Plain old text here")
        );
        assert_eq!(decode_text(b"\x00\x01\x02binary\x00"), None);
    }

    #[test]
    fn normalises() {
        assert_eq!(
            normalize_text("a\r\nb\u{a0}c\r\r\r\n\n\n  \n\u{fb01}ne  \t\n"),
            "a\nb c\n\nfine\n"
        );
        assert_eq!(normalize_text("  \n \n"), "");
        assert_eq!(one_line("a\nb\t c"), "a b c");
    }
}
