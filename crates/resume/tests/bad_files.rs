//! Files that must be refused, each with the right error and a one-line
//! message, and files that lie about their type.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests may fail loudly

use std::path::Path;

use resume_agent_resume::{
    ExtractError, FileType, ParseFileError, SniffError, extract_text, parse_file, sniff,
};

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn assert_one_line(e: &ParseFileError) {
    let msg = e.to_string();
    assert!(
        !msg.is_empty() && !msg.contains('\n') && !msg.contains('\r'),
        "not one line: {msg:?}"
    );
    assert!(msg.len() < 300, "message too long: {msg:?}");
}

fn fails_with(rel: &str, hint: &str) -> ParseFileError {
    let bytes = fixture(rel);
    let err = parse_file(&bytes, Some(hint)).expect_err(rel);
    assert_one_line(&err);
    println!("{rel:<34} [{}] {err}", err.code());
    err
}

#[test]
fn zero_bytes_is_empty() {
    let err = fails_with("bad/empty.pdf", "resume.pdf");
    assert_eq!(err, ParseFileError::Sniff(SniffError::Empty));
    assert_eq!(extract_text(b"", FileType::Pdf), Err(ExtractError::Empty));
}

#[test]
fn png_named_pdf_is_unsupported() {
    let err = fails_with("bad/png-named-resume.pdf", "resume.pdf");
    assert_eq!(
        err,
        ParseFileError::Sniff(SniffError::Unsupported {
            detected: "PNG image".into()
        })
    );
}

#[test]
fn pdf_named_txt_is_read_as_pdf() {
    let bytes = fixture("bad/pdf-named-resume.txt");
    assert_eq!(sniff(&bytes, Some("resume.txt")), Ok(FileType::Pdf));
    let r = parse_file(&bytes, Some("resume.txt")).expect("a PDF whatever its name");
    assert_eq!(r.name.as_deref(), Some("Jane Doe"));
    assert_eq!(r.email.as_deref(), Some("jane.doe@example.com"));
}

#[test]
fn scanned_pdf_has_no_text_layer() {
    let err = fails_with("bad/scanned-no-text.pdf", "scan.pdf");
    assert_eq!(err, ParseFileError::Extract(ExtractError::NoTextLayer));
}

#[test]
fn password_protected_pdf_is_encrypted() {
    let bytes = fixture("bad/encrypted-user-password.pdf");
    let err = fails_with("bad/encrypted-user-password.pdf", "resume.pdf");
    assert_eq!(err, ParseFileError::Extract(ExtractError::Encrypted));
    assert_eq!(err.code(), "encrypted");
    // The encryption is real: with the password the text is there.
    let locked = pdf_extract::Document::load_mem(&bytes).expect("loads");
    assert!(locked.is_encrypted());
    assert!(
        pdf_extract::Document::load_mem_with_options(
            &bytes,
            pdf_extract::LoadOptions::with_password("wrong")
        )
        .is_err()
    );
    let doc = pdf_extract::Document::load_mem_with_options(
        &bytes,
        pdf_extract::LoadOptions::with_password("secret"),
    )
    .expect("the user password opens it");
    let mut text = Vec::new();
    for (number, _) in doc.get_pages() {
        text.extend(doc.extract_text(&[number]).unwrap_or_default().into_bytes());
    }
    assert!(String::from_utf8_lossy(&text).contains("Jane Doe"));
}

#[test]
fn owner_password_only_pdf_opens() {
    // Permission-only protection (empty user password) is not a reason to
    // refuse a résumé.
    let bytes = fixture("labelled/08-hiroshi-tanaka-owner-password.pdf");
    assert!(bytes.windows(8).any(|w| w == b"/Encrypt"));
    let r = parse_file(&bytes, None).expect("opens without a password");
    assert_eq!(r.name.as_deref(), Some("Hiroshi Tanaka"));
}

#[test]
fn other_formats_are_unsupported() {
    for (rel, hint, detected) in [
        ("bad/zip-not-docx.zip", "resume.docx", "ZIP archive"),
        (
            "bad/xlsx-named-resume.docx",
            "resume.docx",
            "Excel spreadsheet (.xlsx)",
        ),
        (
            "bad/legacy-word.doc",
            "resume.doc",
            "legacy Microsoft Office file (.doc/.xls)",
        ),
        ("bad/binary.bin", "resume.txt", "binary data"),
    ] {
        let err = fails_with(rel, hint);
        assert_eq!(
            err,
            ParseFileError::Sniff(SniffError::Unsupported {
                detected: detected.into()
            }),
            "{rel}"
        );
        assert_eq!(err.code(), "unsupported");
    }
}

#[test]
fn damaged_files_are_corrupt() {
    let err = fails_with("bad/truncated.docx", "resume.docx");
    assert!(
        matches!(err, ParseFileError::Extract(ExtractError::Corrupt(_))),
        "{err:?}"
    );
    // Told it is a PDF, a text file is corrupt, not a panic.
    let err = extract_text(b"Jane Doe, engineer", FileType::Pdf).expect_err("not a PDF");
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err:?}");
    // Told it is a DOCX, a PDF is corrupt.
    let err =
        extract_text(&fixture("labelled/01-jane-doe.pdf"), FileType::Docx).expect_err("not a DOCX");
    assert!(matches!(err, ExtractError::Corrupt(_)), "{err:?}");
}

#[test]
fn docx_zip_bomb_is_refused() {
    use std::io::Write;
    // 64 MiB of text in word/document.xml, a few hundred KiB compressed.
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(true);
        zip.start_file("word/document.xml", options).expect("start");
        zip.write_all(b"<w:document xmlns:w=\"w\"><w:body><w:p><w:r><w:t>")
            .expect("write");
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            zip.write_all(&chunk).expect("write");
        }
        zip.write_all(b"</w:t></w:r></w:p></w:body></w:document>")
            .expect("write");
        zip.finish().expect("finish");
    }
    let bytes = buf.into_inner();
    assert!(bytes.len() < 2 << 20, "bomb is {} bytes", bytes.len());
    assert_eq!(sniff(&bytes, None), Ok(FileType::Docx));
    let err = parse_file(&bytes, None).expect_err("bomb");
    assert!(
        matches!(err, ParseFileError::Extract(ExtractError::TooLarge(_))),
        "{err:?}"
    );
    assert_one_line(&err);
}

#[test]
fn pdf_flate_bomb_is_refused() {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..300 {
        enc.write_all(&chunk).expect("write");
    }
    let stream = enc.finish().expect("finish");
    let mut pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n".to_vec();
    pdf.extend(
        format!(
            "4 0 obj << /Length {} /Filter /FlateDecode >>\nstream\n",
            stream.len()
        )
        .into_bytes(),
    );
    pdf.extend(&stream);
    pdf.extend(b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n");
    let err = parse_file(&pdf, None).expect_err("bomb");
    assert!(
        matches!(err, ParseFileError::Extract(ExtractError::TooLarge(_))),
        "{err:?}"
    );
}

#[test]
fn self_referencing_form_xobject_does_not_overflow() {
    // A form XObject that draws itself: naive interpretation recurses forever.
    let content = b"q /X0 Do Q";
    let pdf = format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X0 5 0 R >> >> /Contents 4 0 R >> endobj\n4 0 obj << /Length {len} >>\nstream\n{c}\nendstream\nendobj\n5 0 obj << /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Length {len} >>\nstream\n{c}\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        len = content.len(),
        c = String::from_utf8_lossy(content)
    );
    let err = parse_file(pdf.as_bytes(), None).expect_err("cyclic");
    assert!(
        matches!(err, ParseFileError::Extract(ExtractError::Corrupt(_))),
        "{err:?}"
    );
}
