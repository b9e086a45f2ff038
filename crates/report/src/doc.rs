//! A small document model ([`Block`]) rendered both as Markdown (`report.md`) and as a
//! self-contained HTML page (`report.html`, with every PNG embedded as a base64 data URI).
//!
//! Inline text may use `**bold**` and `` `code` ``; everything else is escaped in HTML.

use std::path::Path;

use crate::error::{io_err, Result};

/// A block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading of level 1–3.
    Heading(u8, String),
    /// A paragraph.
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table; `numeric[i]` right-aligns column `i`.
    Table {
        /// Column titles.
        header: Vec<String>,
        /// Rows of cells.
        rows: Vec<Vec<String>>,
        /// Right-aligned columns.
        numeric: Vec<bool>,
    },
    /// An image: `png` and `svg` relative to the report's directory.
    Image {
        /// Alternative text / caption.
        alt: String,
        /// The PNG (embedded in the HTML page).
        png: String,
        /// The SVG (linked).
        svg: String,
    },
    /// Preformatted text.
    Code(String),
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Renders blocks as Markdown.
pub fn to_markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(l, t) => {
                out.push_str(&"#".repeat((*l).clamp(1, 6) as usize));
                out.push(' ');
                out.push_str(t);
                out.push_str("\n\n");
            }
            Block::Paragraph(t) => {
                out.push_str(t);
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for i in items {
                    out.push_str("- ");
                    out.push_str(i);
                    out.push('\n');
                }
                out.push('\n');
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                let cells: Vec<String> = header.iter().map(|h| md_cell(h)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
                let seps: Vec<&str> = (0..header.len())
                    .map(|i| {
                        if numeric.get(i).copied().unwrap_or(false) {
                            "---:"
                        } else {
                            "---"
                        }
                    })
                    .collect();
                out.push_str(&format!("|{}|\n", seps.join("|")));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
            Block::Image { alt, png, svg } => {
                out.push_str(&format!("![{alt}]({png})\n\n*{alt}* ([SVG]({svg}))\n\n"));
            }
            Block::Code(t) => {
                out.push_str("```\n");
                out.push_str(t);
                if !t.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str("```\n\n");
            }
        }
    }
    out
}

/// Escapes `&`, `<`, `>` and `"`.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            _ => o.push(c),
        }
    }
    o
}

/// Inline markup to HTML: escapes, then `**x**` → `<strong>`, `` `x` `` → `<code>`.
pub fn inline_html(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        let bold = rest.find("**");
        let code = rest.find('`');
        let next = match (bold, code) {
            (Some(b), Some(c)) => Some(b.min(c)),
            (a, b) => a.or(b),
        };
        let Some(i) = next else {
            out.push_str(&escape(rest));
            break;
        };
        out.push_str(&escape(&rest[..i]));
        let (marker, tag) = if rest[i..].starts_with("**") {
            ("**", "strong")
        } else {
            ("`", "code")
        };
        let after = &rest[i + marker.len()..];
        match after.find(marker) {
            Some(j) => {
                out.push_str(&format!("<{tag}>{}</{tag}>", escape(&after[..j])));
                rest = &after[j + marker.len()..];
            }
            None => {
                out.push_str(&escape(&rest[i..]));
                break;
            }
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

const CSS: &str = "body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;\
max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.5}\
h1{border-bottom:2px solid #ddd;padding-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #eee}\
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em}\
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}\
tr:nth-child(even) td{background:#fafafa}figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}code{background:#f4f4f4;padding:0 .2em}\
pre{background:#f6f8fa;padding:.8em;overflow-x:auto}";

/// Renders blocks as a self-contained HTML page; images are read from `base` (the report's
/// directory) and embedded.
///
/// # Errors
/// [`crate::ReportError::Io`] when an image cannot be read.
pub fn to_html(title: &str, blocks: &[Block], base: &Path) -> Result<String> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head><body>\n",
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(l, t) => {
                let l = (*l).clamp(1, 6);
                out.push_str(&format!("<h{l}>{}</h{l}>\n", inline_html(t)));
            }
            Block::Paragraph(t) => out.push_str(&format!("<p>{}</p>\n", inline_html(t))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", inline_html(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                header,
                rows,
                numeric,
            } => {
                out.push_str("<table><thead><tr>");
                for h in header {
                    out.push_str(&format!("<th>{}</th>", inline_html(h)));
                }
                out.push_str("</tr></thead><tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        let class = if numeric.get(i).copied().unwrap_or(false) {
                            " class=\"n\""
                        } else {
                            ""
                        };
                        out.push_str(&format!("<td{class}>{}</td>", inline_html(c)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody></table>\n");
            }
            Block::Image { alt, png, .. } => {
                let p = base.join(png);
                let bytes = std::fs::read(&p).map_err(io_err(&p, "cannot read image"))?;
                out.push_str(&format!(
                    "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\"><figcaption>{}</figcaption></figure>\n",
                    escape(alt),
                    base64(&bytes),
                    inline_html(alt)
                ));
            }
            Block::Code(t) => out.push_str(&format!("<pre>{}</pre>\n", escape(t))),
        }
    }
    out.push_str("</body></html>\n");
    Ok(out)
}
