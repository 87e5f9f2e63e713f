//! Markdown to plain text with `pulldown-cmark`.
//!
//! Headings, paragraphs and list items become lines (list items keep a `- `
//! marker), table rows become tab-separated lines, emphasis and HTML tags are
//! dropped, and a link whose text is not its URL keeps the URL in
//! parentheses (`LinkedIn (https://linkedin.com/in/x)`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

pub(super) fn to_text(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut out = String::with_capacity(markdown.len());
    let mut links: Vec<(String, usize)> = Vec::new();
    let mut in_cell_row = false;
    let mut first_cell = true;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(tag) => match tag {
                Tag::Heading { .. } => blank_line(&mut out),
                Tag::Paragraph | Tag::CodeBlock(_) | Tag::BlockQuote(_) => new_line(&mut out),
                Tag::Item => {
                    new_line(&mut out);
                    out.push_str("- ");
                }
                Tag::TableRow | Tag::TableHead => {
                    new_line(&mut out);
                    in_cell_row = true;
                    first_cell = true;
                }
                Tag::TableCell => {
                    if in_cell_row && !first_cell {
                        out.push('\t');
                    }
                    first_cell = false;
                }
                Tag::Link { dest_url, .. } => links.push((dest_url.to_string(), out.len())),
                _ => {}
            },
            Event::End(tag) => match tag {
                TagEnd::Heading(_) => out.push('\n'),
                TagEnd::Paragraph
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead => {
                    in_cell_row = false;
                    new_line(&mut out);
                }
                TagEnd::Link => {
                    if let Some((url, start)) = links.pop() {
                        let shown = out.get(start..).unwrap_or("").to_owned();
                        let plain = url.strip_prefix("mailto:").unwrap_or(&url).to_owned();
                        if !plain.is_empty() && !plain.starts_with('#') && !shown.contains(&plain) {
                            out.push_str(" (");
                            out.push_str(&plain);
                            out.push(')');
                        }
                    }
                }
                _ => {}
            },
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => blank_line(&mut out),
            Event::TaskListMarker(done) => out.push_str(if done { "[x] " } else { "[ ] " }),
            _ => {}
        }
    }
    out
}

fn new_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn blank_line(out: &mut String) {
    new_line(out);
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts() {
        let md = "# José Álvarez\n[LinkedIn](https://linkedin.com/in/jose) · <jose@example.com>\n\n## Skills\n- **Rust**, Go\n- SQL\n\n| A | B |\n|---|---|\n| x | y |\n";
        let text = to_text(md);
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines,
            [
                "José Álvarez",
                "LinkedIn (https://linkedin.com/in/jose) · jose@example.com",
                "Skills",
                "- Rust, Go",
                "- SQL",
                "A\tB",
                "x\ty"
            ]
        );
    }
}
