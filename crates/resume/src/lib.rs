//! # resume-agent-resume
//!
//! Everything Resume Agent knows about résumés, as pure functions over bytes
//! and text. This crate owns:
//!
//! - **file types** ([`sniff`], [`FileType`]): what an upload really is,
//!   judged from its bytes (magic numbers, the ZIP directory of a DOCX, UTF-8
//!   validity) and never from the client's content type;
//! - **text extraction** ([`extract_text`]): PDF (with a reading-order pass
//!   for two-column layouts), DOCX (including tables, headers and text
//!   boxes), Markdown and plain text, with size caps against ZIP and
//!   compression bombs and with panics of the PDF libraries contained;
//! - **résumé structuring** ([`parse_resume`], [`ParsedResume`]): contact
//!   details, sections, experience, education, projects, certifications;
//! - **the skill vocabulary** ([`skills`]): several hundred canonical skills
//!   with aliases, matched on token boundaries;
//! - **matching** ([`match_resume`], [`MatchResult`]): a deterministic score
//!   of a résumé against a job description, with concrete suggestions.
//!
//! It must not touch HTTP, databases, queues or blob storage, spawn tasks,
//! read the environment or the file system, or log: the worker fetches the
//! bytes, calls these functions and stores what they return. Every error is
//! permanent (the same bytes always fail the same way), so a caller never
//! needs to retry one.
//!
//! No public function panics on any input: the PDF path runs the third-party
//! parsers under [`std::panic::catch_unwind`] (the worker must therefore not
//! build with `panic = "abort"`), after guards that reject the inputs those
//! parsers cannot survive (runaway recursion, decompression bombs).
//!
//! ```
//! use resume_agent_resume::{match_resume, parse_file};
//!
//! let bytes = b"Jane Doe\njane@example.com | +1 (555) 123-4567\n\nSkills\nRust, PostgreSQL, Docker\n";
//! let resume = parse_file(bytes, Some("jane.txt")).unwrap();
//! assert_eq!(resume.name.as_deref(), Some("Jane Doe"));
//! assert_eq!(resume.skills, ["Docker", "PostgreSQL", "Rust"]);
//!
//! let result = match_resume(&resume, "We need Rust and Kubernetes experience.");
//! assert_eq!(result.missing_skills, ["Kubernetes"]);
//! ```

mod extract;
mod filetype;
#[cfg(feature = "testing")]
pub mod hostile;
mod matching;
mod parse;
pub mod skills;
mod text;

pub use extract::{ExtractError, MAX_INPUT_BYTES, MAX_TEXT_BYTES, extract_text};
pub use filetype::{FileType, SniffError, sniff};
pub use matching::{MatchResult, match_resume};
pub use parse::{
    Education, Experience, Links, ParsedResume, Project, Section, SectionKind, parse_resume,
};

/// Why [`parse_file`] failed: the file type could not be accepted, or its
/// text could not be extracted. Both are permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseFileError {
    /// The bytes are not a supported résumé format.
    #[error(transparent)]
    Sniff(#[from] SniffError),
    /// The format is supported but its text could not be extracted.
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

impl ParseFileError {
    /// A stable, machine-readable code for the failure (`empty`,
    /// `unsupported`, `encrypted`, `no_text_layer`, `too_large`, `corrupt`),
    /// suitable for a task's stored error.
    pub fn code(&self) -> &'static str {
        match self {
            ParseFileError::Sniff(e) => e.code(),
            ParseFileError::Extract(e) => e.code(),
        }
    }
}

/// Convenience for the worker: [`sniff`] + [`extract_text`] +
/// [`parse_resume`] in one call.
///
/// `filename_hint` only decides between Markdown and plain text; it never
/// overrides what the bytes say.
pub fn parse_file(
    bytes: &[u8],
    filename_hint: Option<&str>,
) -> Result<ParsedResume, ParseFileError> {
    let ty = sniff(bytes, filename_hint)?;
    let text = extract_text(bytes, ty)?;
    Ok(parse_resume(&text))
}
