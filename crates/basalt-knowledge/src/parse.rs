//! Plain-text extraction for the document formats a knowledge base ingests.
//!
//! The extractors are hand-written and tolerant: imperfect markup degrades to
//! imperfect text rather than an error. Only input that cannot be read at all
//! (invalid UTF-8, invalid JSON, an unreadable PDF) is rejected. Empty text is
//! not an error here; the caller decides what to do with it.

use serde_json::Value;

/// Why a document could not be turned into text.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    #[error(
        "unsupported file type {0:?} (supported: txt, md, markdown, html, htm, csv, json, pdf)"
    )]
    Unsupported(String),
    #[error("{0}")]
    Malformed(String),
}

/// Extracts plain text from a document by its file extension (case-insensitive).
pub fn parse_document(file_name: &str, bytes: &[u8]) -> Result<String, ParseError> {
    let ext = extension(file_name);
    match ext.as_str() {
        "txt" => Ok(decode_utf8(bytes)?.to_owned()),
        "md" | "markdown" => Ok(markdown_to_text(decode_utf8(bytes)?)),
        "html" | "htm" => Ok(html_to_text(decode_utf8(bytes)?)),
        "csv" => Ok(csv_to_text(decode_utf8(bytes)?)),
        "json" => json_to_text(decode_utf8(bytes)?),
        "pdf" => pdf_to_text(bytes),
        other => Err(ParseError::Unsupported(other.to_owned())),
    }
}

/// True when `parse_document` knows this file's extension.
pub fn is_supported(file_name: &str) -> bool {
    matches!(
        extension(file_name).as_str(),
        "txt" | "md" | "markdown" | "html" | "htm" | "csv" | "json" | "pdf"
    )
}

/// The lower-cased extension of the file's base name; empty when it has none.
fn extension(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    base.rsplit_once('.')
        .map_or_else(String::new, |(_, ext)| ext.to_ascii_lowercase())
}

/// Strict UTF-8 decoding with the byte-order mark removed.
fn decode_utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ParseError::Malformed(format!(
            "the file is not valid UTF-8 text (invalid byte sequence at offset {})",
            e.valid_up_to()
        ))
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Collapses runs of spaces inside lines, trims lines, drops leading and trailing
/// blank lines and keeps at most one blank line in a row.
fn normalize_text(text: &str) -> String {
    let mut result = String::with_capacity(text.len());
    let mut pending_blank = false;
    for line in text.split('\n') {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            if !result.is_empty() {
                pending_blank = true;
            }
            continue;
        };
        if !result.is_empty() {
            result.push('\n');
            if pending_blank {
                result.push('\n');
            }
        }
        pending_blank = false;
        result.push_str(first);
        for word in words {
            result.push(' ');
            result.push_str(word);
        }
    }
    result
}

// ---------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------

/// Keeps the prose of a Markdown document and drops the cheapest-to-detect markup:
/// heading markers, blockquote markers, rules, table separator rows, code fences
/// (their content stays), and link or image syntax (the label or alt text stays).
fn markdown_to_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The open fence's character and length.
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some((ch, len)) = fence_marker(trimmed) {
            match fence {
                None => {
                    fence = Some((ch, len));
                    continue;
                }
                Some((open_ch, open_len))
                    if ch == open_ch
                        && len >= open_len
                        && trimmed.trim_start_matches(ch).trim().is_empty() =>
                {
                    fence = None;
                    continue;
                }
                Some(_) => {}
            }
        }
        if fence.is_some() {
            out.push_str(line);
        } else {
            out.push_str(&clean_markdown_line(line));
        }
        out.push('\n');
    }
    let kept = out.trim_end().len();
    out.truncate(kept);
    out
}

/// The fence character and its run length when the line opens or closes a code fence.
fn fence_marker(trimmed: &str) -> Option<(char, usize)> {
    ['`', '~'].into_iter().find_map(|ch| {
        let n = trimmed.chars().take_while(|&c| c == ch).count();
        (n >= 3).then_some((ch, n))
    })
}

fn clean_markdown_line(line: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let mut body = line.trim_start();
    let mut changed = false;
    while let Some(rest) = body.strip_prefix('>') {
        body = rest.trim_start();
        changed = true;
    }
    let hashes = body.chars().take_while(|&c| c == '#').count();
    if (1..=6).contains(&hashes) {
        let rest = &body[hashes..];
        if rest.is_empty() || rest.starts_with(char::is_whitespace) {
            body = strip_closing_hashes(rest.trim());
            changed = true;
        }
    }
    if is_rule(body) || is_table_separator(body) {
        return String::new();
    }
    let text = strip_links(body, 0);
    if changed {
        text
    } else {
        format!("{indent}{text}")
    }
}

/// Removes an ATX heading's optional closing `#` sequence.
fn strip_closing_hashes(s: &str) -> &str {
    let without = s.trim_end_matches('#');
    if without.len() == s.len() {
        s
    } else if without.is_empty() {
        ""
    } else if without.ends_with(char::is_whitespace) {
        without.trim_end()
    } else {
        s
    }
}

/// `---`, `***`, `___` (spaces allowed), at least three markers.
fn is_rule(body: &str) -> bool {
    let marks: Vec<char> = body.chars().filter(|c| !c.is_whitespace()).collect();
    marks.len() >= 3 && ['-', '*', '_'].iter().any(|m| marks.iter().all(|c| c == m))
}

/// A table's `|---|:--:|` row.
fn is_table_separator(body: &str) -> bool {
    body.contains('|')
        && body.contains('-')
        && body
            .chars()
            .all(|c| matches!(c, '|' | '-' | ':') || c.is_whitespace())
}

/// The longest label or URL a link may have; keeps scanning linear on long lines.
const LINK_SCAN_LIMIT: usize = 2048;

/// Replaces `[text](url)` with `text` and `![alt](url)` with `alt`.
fn strip_links(line: &str, depth: usize) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let (before, from_open) = rest.split_at(open);
        match link_parts(from_open) {
            Some((label, after)) => {
                out.push_str(before.strip_suffix('!').unwrap_or(before));
                if depth < 8 {
                    out.push_str(&strip_links(label, depth + 1));
                } else {
                    out.push_str(label);
                }
                rest = after;
            }
            None => {
                out.push_str(before);
                out.push('[');
                rest = &from_open[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// For `s` starting with `[`: the label and the text after the link's `(url)`.
fn link_parts(s: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut close = None;
    for (i, b) in s.bytes().enumerate().take(LINK_SCAN_LIMIT) {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let close = close?;
    let label = s.get(1..close)?;
    let url_part = s.get(close + 1..)?.strip_prefix('(')?;
    let mut parens = 1usize;
    for (i, b) in url_part.bytes().enumerate().take(LINK_SCAN_LIMIT) {
        match b {
            b'(' => parens += 1,
            b')' => {
                parens -= 1;
                if parens == 0 {
                    return Some((label, url_part.get(i + 1..)?));
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------

/// Elements whose content is never text.
const SKIPPED_ELEMENTS: &[&str] = &["script", "style", "noscript", "template", "svg"];

/// Elements that separate paragraphs (a blank line).
const PARAGRAPH_ELEMENTS: &[&str] = &[
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "section",
    "article",
    "blockquote",
    "ul",
    "ol",
    "dl",
    "header",
    "footer",
    "nav",
    "main",
    "aside",
    "figure",
    "form",
    "hr",
    "address",
    "details",
    "fieldset",
];

/// Elements that start a new line.
const LINE_ELEMENTS: &[&str] = &[
    "div",
    "li",
    "tr",
    "title",
    "dt",
    "dd",
    "caption",
    "summary",
    "figcaption",
    "option",
    "html",
    "head",
    "body",
    "thead",
    "tbody",
    "tfoot",
    "legend",
];

fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut pre_depth = 0usize;
    let mut i = 0usize;
    while i < html.len() {
        let Some(rest) = html.get(i..) else { break };
        if rest.starts_with("<!--") {
            i = rest
                .get(4..)
                .and_then(|r| r.find("-->"))
                .map_or(html.len(), |p| i + 4 + p + 3);
            continue;
        }
        if opens_tag(rest) {
            // A tag left open at the end of the file is dropped.
            let Some(close) = tag_end(rest) else { break };
            let inner = rest.get(1..close).unwrap_or("");
            i += close + 1;
            let (closing, name) = tag_name(inner);
            let self_closing = inner.trim_end().ends_with('/');
            if !closing && !self_closing && SKIPPED_ELEMENTS.contains(&name.as_str()) {
                let needle = format!("</{name}");
                i = find_ascii_case_insensitive(html, i, &needle).map_or(html.len(), |p| {
                    html.get(p..)
                        .and_then(|r| r.find('>'))
                        .map_or(html.len(), |q| p + q + 1)
                });
                continue;
            }
            match name.as_str() {
                "br" => {
                    trim_trailing_spaces(&mut out);
                    out.push('\n');
                }
                "pre" => {
                    if closing {
                        pre_depth = pre_depth.saturating_sub(1);
                    } else if !self_closing {
                        pre_depth += 1;
                    }
                    push_break(&mut out, 2);
                }
                "td" | "th" if !out.ends_with(' ') => out.push(' '),
                "td" | "th" => {}
                n if PARAGRAPH_ELEMENTS.contains(&n) => push_break(&mut out, 2),
                n if LINE_ELEMENTS.contains(&n) => push_break(&mut out, 1),
                _ => {}
            }
            continue;
        }
        if rest.starts_with('&') {
            match decode_entity(rest) {
                Some((c, len)) => {
                    out.push(c);
                    i += len;
                }
                None => {
                    out.push('&');
                    i += 1;
                }
            }
            continue;
        }
        // A run of text up to the next `<` or `&` (the first character is always taken,
        // so a `<` that opens no tag is kept as text).
        let first = rest.chars().next().map_or(1, char::len_utf8);
        let run_len = rest
            .get(first..)
            .and_then(|r| r.find(['<', '&']))
            .map_or(rest.len(), |p| p + first);
        push_text(&mut out, rest.get(..run_len).unwrap_or(""), pre_depth > 0);
        i += run_len;
    }
    normalize_text(&out)
}

/// `<` followed by a letter, `/`, `!` or `?`.
fn opens_tag(s: &str) -> bool {
    let b = s.as_bytes();
    b.first() == Some(&b'<')
        && b.get(1)
            .is_some_and(|&c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!' | b'?'))
}

/// The index of the `>` that ends the tag starting at `s[0]`, skipping quoted attribute values.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    let mut prev = 0u8;
    for (i, &b) in s.as_bytes().iter().enumerate().skip(1) {
        if let Some(q) = quote {
            if b == q {
                quote = None;
                prev = b;
            }
            continue;
        }
        match b {
            b'>' => return Some(i),
            b'"' | b'\'' if prev == b'=' => quote = Some(b),
            _ if b.is_ascii_whitespace() => {}
            _ => prev = b,
        }
    }
    None
}

/// Whether the tag closes an element, and its lower-cased name.
fn tag_name(inner: &str) -> (bool, String) {
    let t = inner.trim_start();
    let (closing, t) = match t.strip_prefix('/') {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let name = t
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (closing, name)
}

fn find_ascii_case_insensitive(haystack: &str, from: usize, needle: &str) -> Option<usize> {
    let n = needle.as_bytes();
    let h = haystack.as_bytes().get(from..)?;
    if n.is_empty() {
        return Some(from);
    }
    h.windows(n.len())
        .position(|w| w.eq_ignore_ascii_case(n))
        .map(|p| from + p)
}

fn trim_trailing_spaces(out: &mut String) {
    let len = out.trim_end_matches([' ', '\t']).len();
    out.truncate(len);
}

/// Ends the output with at least `newlines` line breaks (nothing at the very start).
fn push_break(out: &mut String, newlines: usize) {
    trim_trailing_spaces(out);
    if out.is_empty() {
        return;
    }
    let have = out.bytes().rev().take_while(|&b| b == b'\n').count();
    for _ in have..newlines {
        out.push('\n');
    }
}

/// Appends source text: whitespace collapses to one space, except that line breaks
/// survive inside `<pre>`.
fn push_text(out: &mut String, run: &str, preformatted: bool) {
    for c in run.chars() {
        if c == '\r' {
            continue;
        }
        if preformatted && c == '\n' {
            out.push('\n');
        } else if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// Decodes the entity at the start of `s` (which starts with `&`): the character and
/// the entity's length in bytes.
fn decode_entity(s: &str) -> Option<(char, usize)> {
    let end = s.bytes().take(16).position(|b| b == b';')?;
    let name = s.get(1..end)?;
    let c = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse::<u32>().ok()?,
        };
        if code == 0 {
            return None;
        }
        char::from_u32(code)?
    } else {
        match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "ndash" => '\u{2013}',
            "mdash" => '\u{2014}',
            "hellip" => '\u{2026}',
            "lsquo" => '\u{2018}',
            "rsquo" => '\u{2019}',
            "ldquo" => '\u{201c}',
            "rdquo" => '\u{201d}',
            "bull" => '\u{2022}',
            "middot" => '\u{b7}',
            "copy" => '\u{a9}',
            "reg" => '\u{ae}',
            "trade" => '\u{2122}',
            "deg" => '\u{b0}',
            "times" => '\u{d7}',
            "euro" => '\u{20ac}',
            "pound" => '\u{a3}',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

// ---------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------

/// One line per data row: `header1: value1; header2: value2`. Empty values are
/// left out, and so are rows with no values at all.
fn csv_to_text(text: &str) -> String {
    let delimiter = detect_delimiter(text);
    let mut records = csv_records(text, delimiter)
        .into_iter()
        .filter(|r| r.iter().any(|f| !f.trim().is_empty()));
    let Some(header) = records.next() else {
        return String::new();
    };
    let header: Vec<String> = header.iter().map(|h| one_line(h)).collect();
    let mut lines = Vec::new();
    for row in records {
        let parts: Vec<String> = row
            .iter()
            .enumerate()
            .filter_map(|(i, value)| {
                let value = one_line(value);
                if value.is_empty() {
                    return None;
                }
                let name = header
                    .get(i)
                    .filter(|h| !h.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("column {}", i + 1));
                Some(format!("{name}: {value}"))
            })
            .collect();
        if !parts.is_empty() {
            lines.push(parts.join("; "));
        }
    }
    lines.join("\n")
}

fn one_line(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Comma unless the header line clearly uses tabs or semicolons.
fn detect_delimiter(text: &str) -> char {
    let first = text.lines().next().unwrap_or("");
    let count = |d: char| first.matches(d).count();
    let (commas, semicolons, tabs) = (count(','), count(';'), count('\t'));
    if tabs > commas && tabs >= semicolons {
        '\t'
    } else if semicolons > commas {
        ';'
    } else {
        ','
    }
}

/// RFC 4180 records, leniently: quotes may follow leading spaces, text after a
/// closing quote is kept, and an unterminated quote runs to the end of the file.
fn csv_records(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    // Only whitespace seen in this field so far, and no quote.
    let mut pristine = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                field.push(c);
            }
            continue;
        }
        if c == '"' && pristine {
            field.clear();
            in_quotes = true;
            pristine = false;
        } else if c == delimiter {
            record.push(std::mem::take(&mut field));
            pristine = true;
        } else if c == '\n' || c == '\r' {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            record.push(std::mem::take(&mut field));
            records.push(std::mem::take(&mut record));
            pristine = true;
        } else {
            if !c.is_whitespace() {
                pristine = false;
            }
            field.push(c);
        }
    }
    if !pristine || !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// One line per scalar: `a.b[0].c: value`. Strings are unquoted; nulls are skipped.
fn json_to_text(text: &str) -> Result<String, ParseError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ParseError::Malformed(format!("invalid JSON: {e}")))?;
    let mut lines = Vec::new();
    flatten_json(&value, "", &mut lines);
    Ok(lines.join("\n"))
}

fn flatten_json(value: &Value, path: &str, lines: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => push_json_line(lines, path, &b.to_string()),
        Value::Number(n) => push_json_line(lines, path, &n.to_string()),
        Value::String(s) => push_json_line(lines, path, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten_json(item, &format!("{path}[{i}]"), lines);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                flatten_json(item, &child, lines);
            }
        }
    }
}

fn push_json_line(lines: &mut Vec<String>, path: &str, value: &str) {
    if path.is_empty() {
        lines.push(value.to_owned());
    } else {
        lines.push(format!("{path}: {value}"));
    }
}

// ---------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------

fn pdf_to_text(bytes: &[u8]) -> Result<String, ParseError> {
    if !bytes.starts_with(b"%PDF-") {
        return Err(ParseError::Malformed(
            "not a PDF file (missing %PDF- header)".to_owned(),
        ));
    }
    // The extractor can panic on malformed files; a bad upload must not take the
    // ingestion job down with it.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pdf_extract::extract_text_from_mem(bytes)
    }));
    match outcome {
        Ok(Ok(text)) => Ok(normalize_text(&text)),
        Ok(Err(e)) => Err(ParseError::Malformed(format!(
            "the PDF could not be read: {e}"
        ))),
        Err(payload) => Err(ParseError::Malformed(format!(
            "the PDF could not be read: {}",
            panic_message(&*payload)
        ))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "the PDF parser failed unexpectedly".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> String {
        parse_document(name, text.as_bytes()).unwrap()
    }

    #[test]
    fn extension_detection() {
        assert!(is_supported("a.txt"));
        assert!(is_supported("dir/NOTES.MD"));
        assert!(is_supported("x.markdown"));
        assert!(is_supported("Page.HTM"));
        assert!(is_supported("report.pdf"));
        assert!(!is_supported("a.docx"));
        assert!(!is_supported("README"));
        assert!(!is_supported("dir.txt/README"));
        assert_eq!(
            parse_document("a.docx", b"x"),
            Err(ParseError::Unsupported("docx".into()))
        );
        assert_eq!(
            parse_document("README", b"x"),
            Err(ParseError::Unsupported(String::new()))
        );
        let message = ParseError::Unsupported("docx".into()).to_string();
        assert!(message.contains("\"docx\""));
        assert!(message.contains("supported: txt"));
    }

    #[test]
    fn plain_text_strips_bom_and_keeps_content() {
        let mut bytes = "\u{feff}hello\nwörld".as_bytes().to_vec();
        assert_eq!(parse_document("A.TXT", &bytes).unwrap(), "hello\nwörld");
        bytes.clear();
        assert_eq!(parse_document("empty.txt", &bytes).unwrap(), "");
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let err = parse_document("bad.txt", &[b'o', b'k', 0xff, 0xfe, 0x00]).unwrap_err();
        match err {
            ParseError::Malformed(m) => {
                assert!(m.contains("UTF-8"));
                assert!(m.contains("offset 2"));
            }
            other => unreachable!("unexpected {other:?}"),
        }
        assert!(matches!(
            parse_document("bad.md", &[0xc3, 0x28]),
            Err(ParseError::Malformed(_))
        ));
    }

    #[test]
    fn markdown_drops_markup() {
        let md = "# Title\n\nSee [the docs](https://x.y/(a)) and ![a cat](cat.png).\n\n```rust\nlet x = [1](2);\n```\n## Sub ##\n---\n> quoted\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\nnot [a link] here\n";
        let text = parse("doc.md", md);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"Title"));
        assert!(text.contains("See the docs and a cat."));
        // Code content is kept verbatim (no link rewriting inside fences).
        assert!(text.contains("let x = [1](2);"));
        assert!(!text.contains("```"));
        assert!(lines.contains(&"Sub"));
        assert!(!text.contains("---"));
        assert!(lines.contains(&"quoted"));
        assert!(text.contains("| 1 | 2 |"));
        assert!(text.contains("not [a link] here"));
        assert!(!text.contains('#'));
    }

    #[test]
    fn markdown_nested_link_and_unclosed_fence() {
        let text = parse("a.markdown", "[![logo](l.png)](https://x) text\n~~~\ncode");
        assert!(text.starts_with("logo text"));
        assert!(text.ends_with("code"));
    }

    #[test]
    fn html_strips_tags_scripts_and_decodes_entities() {
        let html = r#"<!DOCTYPE html><html><head><title>My Page</title>
            <style>p { color: red }</style>
            <script type="text/javascript">var x = "<p>";</script></head>
            <body><!-- hidden comment --><h1>Heading</h1>
            <p class="a>b">Tom &amp; Jerry &lt;3 &#65;&#x42; &quot;q&quot; it&#39;s &apos;s&apos; a&nbsp;b &eacute;</p>
            <div>a<br>b</div><p>spaced     out
            words</p><p>unclosed <b"#;
        let text = parse("page.html", html);
        assert!(text.contains("My Page"));
        assert!(text.contains("Heading"));
        assert!(text.contains("Tom & Jerry <3 AB \"q\" it's 's' a b &eacute;"));
        assert!(text.contains("a\nb"));
        assert!(text.contains("spaced out words"));
        assert!(text.contains("unclosed"));
        assert!(!text.contains("color"));
        assert!(!text.contains("var x"));
        assert!(!text.contains("hidden"));
        assert!(!text.contains('<') || text.contains("<3"));
        assert!(!text.contains("\n\n\n"));
    }

    #[test]
    fn html_blocks_and_newline_collapse() {
        let text = parse(
            "a.htm",
            "<p>x</p><br><br><br><br><p>y</p><ul><li>one</li>\n<li>two</li></ul><table><tr><td>c1</td><td>c2</td></tr></table>",
        );
        assert_eq!(text, "x\n\ny\n\none\ntwo\n\nc1 c2");
    }

    #[test]
    fn html_edge_cases_do_not_panic() {
        for html in [
            "<",
            "<a",
            "<!--",
            "<script>",
            "<script>alert(1)",
            "&",
            "&#",
            "&#x;",
            "&#1114112;",
            "a < b",
            "<p title='x",
            "<<<>>>",
            "é<ü",
            "&#0;",
        ] {
            let _ = parse("x.html", html);
        }
        assert_eq!(parse("x.html", "a < b & c"), "a < b & c");
        assert_eq!(parse("x.html", "<pre>line1\n  line2</pre>"), "line1\nline2");
    }

    #[test]
    fn csv_rows_become_lines() {
        let csv = "name,notes,age\r\nAlice,\"likes, commas\",30\r\nBob,\"said \"\"hi\"\"\nthen left\",41\n\n,,\nCarol,,\n";
        assert_eq!(
            parse("people.csv", csv),
            "name: Alice; notes: likes, commas; age: 30\nname: Bob; notes: said \"hi\" then left; age: 41\nname: Carol"
        );
    }

    #[test]
    fn csv_header_only_and_extra_columns() {
        assert_eq!(parse("h.csv", "a,b,c\n"), "");
        assert_eq!(parse("h.csv", ""), "");
        assert_eq!(parse("h.csv", "a,b\n1,2,3"), "a: 1; b: 2; column 3: 3");
        assert_eq!(parse("h.csv", "a;b\n1;2"), "a: 1; b: 2");
        assert_eq!(parse("h.csv", "a\tb\n1\t2"), "a: 1; b: 2");
        // An unterminated quote runs to the end of the file.
        assert_eq!(
            parse("h.csv", "a,b\n1,\"open\nstill"),
            "a: 1; b: open still"
        );
    }

    #[test]
    fn json_is_flattened() {
        let json = r#"{"a":{"b":[{"c":"text"},2,{"d":null}]},"flag":true,"n":null,"pi":3.5}"#;
        let text = parse("data.json", json);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"a.b[0].c: text"));
        assert!(lines.contains(&"a.b[1]: 2"));
        assert!(lines.contains(&"flag: true"));
        assert!(lines.contains(&"pi: 3.5"));
        assert_eq!(lines.len(), 4);
        assert_eq!(parse("top.json", r#"[{"x":"y"}, "z"]"#), "[0].x: y\n[1]: z");
        assert_eq!(parse("s.json", "\"just text\""), "just text");
        assert_eq!(parse("n.json", "null"), "");
    }

    #[test]
    fn invalid_json_is_malformed() {
        match parse_document("bad.json", b"{\"a\": ") {
            Err(ParseError::Malformed(m)) => assert!(m.starts_with("invalid JSON: ")),
            other => unreachable!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_pdf_is_malformed() {
        assert_eq!(
            parse_document("x.pdf", b"\x00\x01 definitely not a pdf"),
            Err(ParseError::Malformed(
                "not a PDF file (missing %PDF- header)".into()
            ))
        );
        // A header followed by garbage must not panic and must not produce text.
        for bytes in [
            &b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog"[..],
            &b"%PDF-"[..],
            &b"%PDF-1.4\n\xff\xfe\x00\x01trailer\n<< /Root 9 0 R >>\nstartxref\n99999\n%%EOF"[..],
        ] {
            match parse_document("broken.PDF", bytes) {
                Err(ParseError::Malformed(m)) => {
                    assert!(m.starts_with("the PDF could not be read"))
                }
                Ok(text) => assert!(text.trim().is_empty()),
                Err(other) => unreachable!("unexpected {other:?}"),
            }
        }
    }

    /// A one-page PDF with `text` in Helvetica, with a correct cross-reference table.
    fn minimal_pdf(text: &str) -> Vec<u8> {
        let content = format!("BT /F1 24 Tf 72 712 Td ({text}) Tj ET");
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_owned(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
        }
        let xref = out.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
        for offset in offsets {
            tail.push_str(&format!("{offset:010} 00000 n \n"));
        }
        tail.push_str(&format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        ));
        out.extend_from_slice(tail.as_bytes());
        out
    }

    #[test]
    fn valid_pdf_text_is_extracted() {
        let text = parse_document("hello.pdf", &minimal_pdf("Hello PDF World")).unwrap();
        assert!(text.contains("Hello"), "got {text:?}");
    }
}
