//! Text extraction for text, Markdown and HTML files, and the errors every extractor reports.
//! Word, OpenDocument and EPUB files go through [`super::office`], which renders them as HTML.
//!
//! Bytes are decoded as UTF-8, UTF-16 (with a byte-order mark) or, failing those, Latin-1
//! (Windows-1252); content that looks binary is refused. Markdown keeps its source text (so that
//! spans point into the file) with sections at its headings; HTML is rendered to plain text with
//! sections at `h1`..`h6`, a table row as one line of cells.

use ego_tree::iter::Edge;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use scraper::{Html, Node};

use super::{Kind, Section, Unit};
use crate::doc::{MAX_HEADING_CHARS, heading_title};

/// Why a file yields no text. The `Display` text is what users see next to the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("empty file")]
    Empty,
    #[error("binary content")]
    Binary,
    #[error("no text layer (needs OCR)")]
    NoTextLayer,
    #[error("encrypted PDF (needs a password)")]
    Encrypted,
    #[error("unreadable PDF: {0}")]
    Pdf(String),
    #[error("extractor crashed: {0}")]
    Crashed(String),
    #[error("extraction timed out after {0} s")]
    Timeout(u64),
    #[error("cannot read: {0}")]
    Io(String),
    #[error("unreadable document: {0}")]
    Package(String),
    #[error("password-protected document")]
    Protected,
    #[error("scanned, but no text was recognised")]
    NothingRecognised,
    #[error("markup nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("too large: {0}")]
    TooLarge(String),
}

impl ExtractError {
    /// Skips are files folio chose not to index; failures are files it could not.
    pub fn is_skip(&self) -> bool {
        matches!(
            self,
            ExtractError::Empty
                | ExtractError::Binary
                | ExtractError::NoTextLayer
                | ExtractError::Protected
                | ExtractError::NothingRecognised
        )
    }
}

/// Extracts the units of a non-PDF file from its bytes.
pub fn extract_bytes(kind: Kind, bytes: &[u8]) -> Result<Vec<Unit>, ExtractError> {
    if kind.is_package() {
        // The zip and XML readers are not ours to trust: a panic costs only this file.
        return match std::panic::catch_unwind(|| super::office::extract(kind, bytes)) {
            Ok(unit) => unit.map(|u| vec![u]),
            Err(payload) => Err(ExtractError::Crashed(format!(
                "parser panicked: {}",
                crate::panic_message(&*payload)
            ))),
        };
    }
    let text = decode_text(bytes)?;
    if text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(vec![match kind {
        Kind::Markdown => markdown_unit(text),
        Kind::Html => {
            check_nesting(&text, Markup::Html)?;
            html_unit(&text)
        }
        _ => text_unit(text),
    }])
}

/// Decodes text bytes: UTF-16 with a BOM, UTF-8 (BOM optional), else Latin-1/Windows-1252.
pub fn decode_text(bytes: &[u8]) -> Result<String, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _, _) = enc.decode(bytes);
        let _ = bom;
        return check_textual(text.into_owned());
    }
    // NUL bytes do not occur in text outside UTF-16/32; checking a prefix is enough to tell.
    let head = &bytes[..bytes.len().min(8192)];
    if head.contains(&0) {
        return Err(ExtractError::Binary);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => check_textual(s.to_string()),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            check_textual(text.into_owned())
        }
    }
}

/// Refuses text that is mostly control characters: a binary file that happens to decode.
fn check_textual(text: String) -> Result<String, ExtractError> {
    let sample: Vec<char> = text.chars().take(8192).collect();
    let control = sample
        .iter()
        .filter(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}'))
        .count();
    if !sample.is_empty() && control * 10 > sample.len() {
        return Err(ExtractError::Binary);
    }
    Ok(text)
}

/// A plain-text unit. A short first line followed by more text is taken as the title: it
/// becomes the heading of the whole text (BEIR documents have this shape, as do many notes).
pub fn text_unit(text: String) -> Unit {
    let first_end = text.find('\n');
    let title = first_end
        .map(|e| text[..e].trim())
        .filter(|t| !t.is_empty() && t.chars().count() <= 200 && !t.ends_with([',', ';', ':']));
    let rest_nonblank = first_end.is_some_and(|e| !text[e..].trim().is_empty());
    match title {
        Some(t) if rest_nonblank => {
            let heading = vec![t.to_string()];
            Unit {
                page: None,
                sections: vec![Section { start: 0, heading }],
                text,
            }
        }
        _ => Unit::plain(None, text),
    }
}

/// A unit of a title and a body, laid out as a text file whose first line is the title.
pub fn titled_unit(title: &str, body: &str) -> Unit {
    let title = title.trim().replace('\n', " ");
    if title.is_empty() {
        return Unit::plain(None, body.to_string());
    }
    Unit {
        page: None,
        text: format!("{title}\n{body}"),
        sections: vec![Section {
            start: 0,
            heading: vec![if title.chars().count() <= MAX_HEADING_CHARS {
                title.clone()
            } else {
                heading_title(&title)
            }],
        }],
    }
}

/// A Markdown unit: the source text, with a section at each ATX or setext heading.
pub fn markdown_unit(text: String) -> Unit {
    let mut sections = Vec::new();
    let mut stack: Vec<(u8, String)> = Vec::new();
    let mut current: Option<(usize, u8, String)> = None;
    let parser = Parser::new_ext(&text, pulldown_cmark::Options::empty()).into_offset_iter();
    for (event, range) in parser {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some((range.start, level_num(level), String::new()));
            }
            Event::Text(t) | Event::Code(t) => {
                // Past the cut the rest of a heading's text is not needed.
                if let Some((_, _, s)) = current.as_mut()
                    && s.len() < 4 * MAX_HEADING_CHARS
                {
                    s.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some((start, level, title)) = current.take() {
                    stack.retain(|(l, _)| *l < level);
                    stack.push((level, heading_title(&title)));
                    sections.push(Section {
                        start,
                        heading: stack.iter().map(|(_, t)| t.clone()).collect(),
                    });
                }
            }
            _ => {}
        }
    }
    Unit {
        page: None,
        text,
        sections,
    }
}

fn level_num(l: HeadingLevel) -> u8 {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

/// How deep elements may nest in a document folio parses. Real documents stay far below it
/// (this README's HTML: 12); the HTML parser's scope checks cost time in proportion to the
/// depth for every element, so a file nested a million deep would hold the index for hours.
pub const MAX_NESTING: usize = 1000;

/// Which rules [`check_nesting`] counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Void elements and those whose end tag may be left out (`p`, `li`, ...) do not nest.
    Html,
    /// Every element that is not self-closing nests.
    Xml,
}

/// Refuses markup nested deeper than [`MAX_NESTING`], judged by a linear scan of its tags
/// before any parser builds a tree: opening tags minus closing ones, comments, declarations
/// and the raw text of scripts and styles skipped.
pub fn check_nesting(source: &str, markup: Markup) -> Result<(), ExtractError> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(off) = memchr(b'<', &bytes[i..]) {
        i += off + 1;
        let rest = &bytes[i..];
        if rest.starts_with(b"!--") {
            i += find(rest, b"-->").map_or(rest.len(), |e| e + 3);
            continue;
        }
        if rest.first().is_some_and(|b| matches!(b, b'!' | b'?')) {
            i += memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b':' | b'_' | b'.'))
            .count();
        if name_len == 0 || !rest[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = rest[name_start..name_start + name_len].to_ascii_lowercase();
        let end = memchr(b'>', rest).unwrap_or(rest.len());
        i += end;
        if markup == Markup::Html && HTML_FLAT.contains(&name.as_slice()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if end > 0 && rest[end - 1] == b'/' {
            continue;
        }
        if markup == Markup::Html && matches!(name.as_slice(), b"script" | b"style" | b"textarea") {
            // Raw text up to the matching end tag; it may hold '<' freely.
            let mut close = b"</".to_vec();
            close.extend_from_slice(&name);
            let after = &bytes[i..];
            i += after
                .windows(close.len())
                .position(|w| w.eq_ignore_ascii_case(&close))
                .unwrap_or(after.len());
            continue;
        }
        depth += 1;
        if depth > MAX_NESTING {
            return Err(ExtractError::TooDeep(MAX_NESTING));
        }
    }
    Ok(())
}

/// HTML elements that never hold others open: void elements, and those a following sibling
/// closes by itself.
const HTML_FLAT: &[&[u8]] = &[
    b"area",
    b"base",
    b"br",
    b"col",
    b"embed",
    b"hr",
    b"img",
    b"input",
    b"link",
    b"meta",
    b"param",
    b"source",
    b"track",
    b"wbr",
    b"p",
    b"li",
    b"dt",
    b"dd",
    b"tr",
    b"td",
    b"th",
    b"option",
    b"optgroup",
    b"rb",
    b"rt",
    b"rp",
    b"thead",
    b"tbody",
    b"tfoot",
    b"colgroup",
    b"caption",
];

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// An HTML unit: the document rendered as plain text (blocks separated by blank lines), with a
/// section at each heading. Scripts, styles and other non-content elements are dropped; the
/// `<title>` heads text that comes before the first heading.
pub fn html_unit(source: &str) -> Unit {
    let doc = Html::parse_document(source);
    let mut r = HtmlRender::default();
    let title = doc
        .root_element()
        .descendants()
        .find_map(|n| match n.value() {
            Node::Element(e) if e.name() == "title" => Some(
                n.descendants()
                    .filter_map(|d| d.value().as_text().map(|t| t.to_string()))
                    .collect::<String>(),
            ),
            _ => None,
        })
        .map(|t| heading_title(&t))
        .filter(|t| !t.is_empty());
    if let Some(t) = &title {
        r.sections.push(Section {
            start: 0,
            heading: vec![t.clone()],
        });
    }
    r.walk(doc.tree.root());
    let mut text = r.out.trim_end().to_string();
    text.push('\n');
    r.sections.retain(|s| s.start < text.len());
    // Several headings at one offset (empty sections): keep the last.
    let mut sections: Vec<Section> = Vec::new();
    for s in r.sections {
        if sections.last().is_some_and(|l| l.start == s.start) {
            sections.pop();
        }
        sections.push(s);
    }
    Unit {
        page: None,
        text,
        sections,
    }
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct HtmlRender {
    out: String,
    sections: Vec<Section>,
    stack: Vec<(u8, String)>,
    /// How many table cells the walk is inside.
    in_cell: usize,
}

const SKIP: &[&str] = &[
    "script", "style", "noscript", "template", "head", "svg", "iframe", "object", "canvas",
];
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "ul",
    "ol",
    "li",
    "table",
    "tr",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "dl",
    "dt",
    "dd",
    "form",
    "fieldset",
    "details",
    "summary",
    "address",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];

impl HtmlRender {
    fn block_break(&mut self) {
        let trimmed = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(trimmed);
        if self.out.is_empty() || self.out.ends_with("\n\n") {
            return;
        }
        if self.out.ends_with('\n') {
            self.out.push('\n');
        } else {
            self.out.push_str("\n\n");
        }
    }

    fn push_text(&mut self, t: &str, pre: bool) {
        if pre {
            self.out.push_str(t);
            return;
        }
        let collapsed = collapse_ws(t);
        if collapsed.is_empty() {
            if t.chars().any(char::is_whitespace) && !self.out.ends_with([' ', '\n']) {
                self.out.push(' ');
            }
            return;
        }
        if t.starts_with(char::is_whitespace)
            && !self.out.is_empty()
            && !self.out.ends_with([' ', '\n'])
        {
            self.out.push(' ');
        }
        self.out.push_str(&collapsed);
        if t.ends_with(char::is_whitespace) {
            self.out.push(' ');
        }
    }

    /// Renders the tree under `root`. Iterative: a document nested a million elements deep
    /// must not overflow the stack (`html_unit` refuses such depths before parsing, but office
    /// documents reach here through their own XML).
    fn walk(&mut self, root: ego_tree::NodeRef<'_, Node>) {
        let mut skipping: Option<ego_tree::NodeId> = None;
        let mut pre = 0usize;
        for edge in root.traverse() {
            match edge {
                Edge::Open(node) if skipping.is_none() => self.open(node, &mut skipping, &mut pre),
                Edge::Close(node) => {
                    if skipping == Some(node.id()) {
                        skipping = None;
                    } else if skipping.is_none() {
                        self.close(node, &mut pre);
                    }
                }
                Edge::Open(_) => {}
            }
        }
    }

    fn open(
        &mut self,
        node: ego_tree::NodeRef<'_, Node>,
        skipping: &mut Option<ego_tree::NodeId>,
        pre: &mut usize,
    ) {
        match node.value() {
            Node::Text(t) => self.push_text(t, *pre > 0),
            Node::Element(e) => {
                let name = e.name();
                if SKIP.contains(&name) || name == "br" {
                    if name == "br" {
                        self.out.push('\n');
                    }
                    *skipping = Some(node.id());
                    return;
                }
                // A table row is one line, its cells separated by " | ": blocks inside a cell
                // (Word's and OpenDocument's cells hold paragraphs) are only spaced.
                let cell = matches!(name, "td" | "th");
                if self.is_block(name) {
                    self.block_break();
                } else if BLOCK.contains(&name) && !self.out.ends_with([' ', '\n']) {
                    self.out.push(' ');
                }
                if cell {
                    let trimmed = self.out.trim_end_matches([' ', '\t']).len();
                    self.out.truncate(trimmed);
                    if !self.out.is_empty() && !self.out.ends_with('\n') {
                        self.out.push_str(" | ");
                    }
                    self.in_cell += 1;
                }
                if let Some(level) = heading_level(name) {
                    let title = heading_title(
                        &node
                            .descendants()
                            .filter_map(|d| d.value().as_text().map(|t| t.to_string()))
                            .collect::<String>(),
                    );
                    self.stack.retain(|(l, _)| *l < level);
                    self.stack.push((level, title));
                    self.sections.push(Section {
                        start: self.out.len(),
                        heading: self.stack.iter().map(|(_, t)| t.clone()).collect(),
                    });
                }
                if name == "pre" {
                    *pre += 1;
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, node: ego_tree::NodeRef<'_, Node>, pre: &mut usize) {
        let Node::Element(e) = node.value() else {
            return;
        };
        let name = e.name();
        if name == "pre" {
            *pre = pre.saturating_sub(1);
        }
        if matches!(name, "td" | "th") {
            self.in_cell = self.in_cell.saturating_sub(1);
        }
        // Inside a cell only a table breaks blocks; `in_cell` is back to its value at the
        // element's start, so this is the decision `open` made.
        if self.is_block(name) {
            self.block_break();
        }
    }

    fn is_block(&self, name: &str) -> bool {
        BLOCK.contains(&name) && (self.in_cell == 0 || name == "table")
    }
}

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_utf16_and_latin1() {
        assert_eq!(decode_text("héllo".as_bytes()).unwrap(), "héllo");
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "héllo".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_text(&utf16).unwrap(), "héllo");
        let mut utf16be = vec![0xFE, 0xFF];
        for u in "naïve".encode_utf16() {
            utf16be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode_text(&utf16be).unwrap(), "naïve");
        // "café" in Latin-1: é is the single byte 0xE9, invalid as UTF-8.
        assert_eq!(decode_text(b"caf\xe9 cr\xe8me").unwrap(), "café crème");
    }

    #[test]
    fn table_rows_are_lines_of_cells() {
        let u = html_unit(
            "<table><tr><th>Term</th><th>Days</th></tr>\n<tr><td><p>Notice</p><p>period</p></td>\
             <td>30</td></tr></table><p>After</p>",
        );
        assert_eq!(u.text, "Term | Days\n\nNotice period | 30\n\nAfter\n");
    }

    #[test]
    fn refuses_binary_and_empty() {
        assert_eq!(decode_text(b""), Err(ExtractError::Empty));
        assert_eq!(
            decode_text(b"\x7fELF\x02\x01\x01\x00\x00"),
            Err(ExtractError::Binary)
        );
        let noise: Vec<u8> = (0..200u8).map(|i| (i % 8) + 1).collect();
        assert_eq!(decode_text(&noise), Err(ExtractError::Binary));
        assert_eq!(
            extract_bytes(Kind::Text, b"  \n\n "),
            Err(ExtractError::Empty)
        );
    }

    #[test]
    fn title_line_heads_a_text() {
        let u = text_unit("Termination\nEither party may end this agreement.".into());
        assert_eq!(u.sections[0].heading, vec!["Termination"]);
        let u = text_unit("Dear John,\nthanks.".into());
        assert!(u.sections.is_empty());
        let u = text_unit("one line only".into());
        assert!(u.sections.is_empty());
    }

    #[test]
    fn markdown_heading_paths() {
        let src = "intro\n\n# A\n\ntext a\n\n## B\n\ntext b\n\n# C\ntext c\n";
        let u = markdown_unit(src.into());
        let paths: Vec<_> = u.sections.iter().map(|s| s.heading.join("/")).collect();
        assert_eq!(paths, vec!["A", "A/B", "C"]);
        assert_eq!(
            &u.text[u.sections[1].start..u.sections[1].start + 4],
            "## B"
        );
        assert_eq!(u.text, src);
    }

    #[test]
    fn html_renders_blocks_and_headings() {
        let src = "<html><head><title>Doc</title><style>p{}</style></head><body>\
                   <p>Lead   text</p><h1>Alpha</h1><p>one <b>two</b></p><h2>Beta</h2>\
                   <ul><li>x</li><li>y</li></ul><script>var a;</script></body></html>";
        let u = html_unit(src);
        assert!(!u.text.contains("var a"));
        assert!(!u.text.contains("p{}"));
        assert!(
            u.text.contains("Lead text\n\nAlpha\n\none two\n\nBeta"),
            "{:?}",
            u.text
        );
        let paths: Vec<_> = u.sections.iter().map(|s| s.heading.join("/")).collect();
        assert_eq!(paths, vec!["Doc", "Alpha", "Alpha/Beta"]);
        let beta = &u.sections[2];
        assert!(u.text[beta.start..].starts_with("Beta"));
    }
}

/// Arbitrary and mutated input for every extractor and the chunker: no panic, no hang, and
/// every span inside its text.
#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::ingest::chunk::{ChunkOptions, chunk_units};
    use proptest::prelude::*;

    const KINDS: [Kind; 7] = [
        Kind::Text,
        Kind::Markdown,
        Kind::Html,
        Kind::Docx,
        Kind::Doc,
        Kind::Odt,
        Kind::Epub,
    ];

    /// The same contract saved by LibreOffice as Word (bundled sample), Word 97, OpenDocument
    /// and EPUB.
    const PACKAGES: [(&str, Kind); 4] = [
        ("globex-supply-agreement.docx", Kind::Docx),
        ("../tests/fixtures/globex-supply-agreement.doc", Kind::Doc),
        ("../tests/fixtures/globex-supply-agreement.odt", Kind::Odt),
        ("../tests/fixtures/globex-supply-agreement.epub", Kind::Epub),
    ];

    #[test]
    fn documents_saved_by_libreoffice_keep_headings_and_table_rows() {
        for (name, kind) in PACKAGES {
            let units = extract_bytes(kind, &sample(name)).unwrap();
            let [unit] = &units[..] else {
                panic!("{name}: one unit expected, got {units:?}")
            };
            let t = &unit.text;
            assert!(
                t.contains("Titanium housing TH-40 | USD 118.00 | 500 units"),
                "{name}: {t}"
            );
            let at = t.find("at least ninety days").expect(name);
            if kind == Kind::Epub {
                // LibreOffice's EPUB export writes headings as styled paragraphs, so this book
                // has none to keep; EPUB headings are tested on a built book in tests/it.
                continue;
            }
            let section = unit.sections.iter().rev().find(|s| s.start <= at);
            assert_eq!(
                section.map(|s| &s.heading[..]),
                Some(
                    &[
                        "Supply Agreement between Globex Ltd. and Acme Corp".to_string(),
                        "4. Term and termination".to_string()
                    ][..]
                ),
                "{name}: {:?}",
                unit.sections
            );
        }
    }

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("sample")
                .join(name),
        )
        .unwrap_or_default()
    }

    /// Flips, inserts and deletes bytes of `base` as `edits` say, and maybe truncates it.
    fn mutate(mut base: Vec<u8>, edits: &[(usize, u8, u8)], cut: Option<usize>) -> Vec<u8> {
        for &(at, byte, op) in edits {
            if base.is_empty() {
                base.push(byte);
                continue;
            }
            let at = at % base.len();
            match op % 3 {
                0 => base[at] = byte,
                1 => base.insert(at, byte),
                _ => {
                    base.remove(at);
                }
            }
        }
        if let Some(c) = cut {
            base.truncate(c % (base.len() + 1));
        }
        base
    }

    /// Units are well formed and chunk into spans that lie inside, and equal, their text.
    fn check_units(units: &[Unit]) -> Result<(), TestCaseError> {
        for u in units {
            let mut last = 0;
            for s in &u.sections {
                prop_assert!(s.start >= last && s.start <= u.text.len());
                prop_assert!(u.text.is_char_boundary(s.start));
                last = s.start;
            }
        }
        let words = |s: &str| s.split_whitespace().count();
        let opts = ChunkOptions {
            target: 20,
            max: 30,
            overlap: 4,
        };
        for c in chunk_units(units, &opts, &words) {
            let text = &units
                .iter()
                .find(|u| u.page == c.page)
                .map(|u| u.text.as_str())
                .unwrap_or("");
            let chars: Vec<char> = text.chars().collect();
            prop_assert!(
                c.start <= c.end && c.end <= chars.len(),
                "{:?}",
                (c.start, c.end)
            );
            let span: String = chars[c.start..c.end].iter().collect();
            prop_assert_eq!(span, c.text.clone());
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            for kind in KINDS {
                if let Ok(units) = extract_bytes(kind, &bytes) {
                    check_units(&units)?;
                }
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "(<[a-z/!]{0,4}>|&#?[a-z0-9]{0,6};?|[#*`>\\-\\[\\]()]|\\PC|\\s){0,300}") {
            for kind in KINDS {
                if let Ok(units) = extract_bytes(kind, text.as_bytes()) {
                    check_units(&units)?;
                }
            }
        }

        #[test]
        fn mutated_real_files_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..40),
            cut in proptest::option::of(any::<usize>()),
        ) {
            for (name, kind) in [
                ("meeting-notes.md", Kind::Markdown),
                ("vendor-faq.html", Kind::Html),
                ("reading-list.txt", Kind::Text),
                PACKAGES[0],
                PACKAGES[1],
                PACKAGES[2],
                PACKAGES[3],
            ] {
                let bytes = mutate(sample(name), &edits, cut);
                if let Ok(units) = extract_bytes(kind, &bytes) {
                    check_units(&units)?;
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// In-process PDF extraction contains the parser's panics; the worker process guards
        /// against what cannot be contained (aborts, stack overflows, endless loops).
        #[test]
        fn mutated_pdfs_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..12),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let bytes = mutate(sample("acme-msa.pdf"), &edits, cut);
            if let Ok(text) = crate::ingest::pdf::extract_pages(&bytes) {
                let units = crate::ingest::pdf::pages_to_units(text.pages);
                check_units(&units)?;
            }
        }

        #[test]
        fn worker_answers_are_parsed_without_panic(line in "\\PC{0,200}") {
            let _ = crate::ingest::pdf::parse_answer(&line);
        }
    }
}
