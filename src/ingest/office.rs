//! Word, OpenDocument and EPUB files: packages of XML, turned into HTML and read by the HTML
//! extractor, so that headings, sections, spans and previews work as for any HTML file.
//!
//! `.docx` and `.doc` are read by office_oxide, which leaves tracked deletions out, keeps
//! footnotes and tables, and bounds what a hostile package can make it inflate or allocate. Its
//! document tree is rendered as HTML after two edits: comments are left out (office_oxide
//! carries them as endnotes), and a header or footer that every section repeats is kept once. `.odt` (its `content.xml`) and
//! `.epub` (the chapters of its spine, in reading order) are read here with roxmltree. Every
//! member of a zip is read with a size cap, so that a zip bomb fails alone; the caller catches
//! any panic inside a parser.

use std::io::{Cursor, Read};

use roxmltree::{Document, Node};

use super::extract::{ExtractError, Markup, check_nesting, decode_text, html_unit};
use super::{Kind, Section, Unit};

/// The most bytes one member of a package may inflate to.
const MEMBER_LIMIT: u64 = 64 << 20;

const TEXT_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:text:1.0";
const TABLE_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:table:1.0";
const OFFICE_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:office:1.0";
const STYLE_NS: &str = "urn:oasis:names:tc:opendocument:xmlns:style:1.0";

/// The text of a Word, OpenDocument or EPUB file as one unit (a whole file).
pub fn extract(kind: Kind, bytes: &[u8]) -> Result<Unit, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Empty);
    }
    let unit = match kind {
        Kind::Docx => html_unit(&word_html(bytes, office_oxide::DocumentFormat::Docx)?),
        Kind::Doc => html_unit(&word_html(bytes, office_oxide::DocumentFormat::Doc)?),
        Kind::Odt => html_unit(&odt_html(bytes)?),
        Kind::Epub => epub_unit(bytes)?,
        Kind::Pdf | Kind::Markdown | Kind::Text | Kind::Html => {
            return Err(ExtractError::Package(format!(
                "{kind:?} is not a packaged document"
            )));
        }
    };
    if unit.text.trim().is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(unit)
}

fn word_html(bytes: &[u8], format: office_oxide::DocumentFormat) -> Result<String, ExtractError> {
    // office_oxide recurses over the document's XML (tables in tables): its depth is bounded
    // first, as for every other tree folio has parsed.
    if format == office_oxide::DocumentFormat::Docx
        && let Ok(mut zip) = open_zip(bytes)
        && let Ok(body) = member(&mut zip, "word/document.xml")
    {
        check_nesting(&body, Markup::Xml)?;
    }
    let doc =
        office_oxide::Document::from_reader(Cursor::new(bytes.to_vec()), format).map_err(|e| {
            let reason = e.to_string();
            // A password-protected Word file is a compound file around an encrypted package.
            if reason.contains("password-protected") {
                ExtractError::Protected
            } else {
                ExtractError::Package(reason)
            }
        })?;
    let mut ir = doc.to_ir();
    tidy_word(&mut ir);
    Ok(ir.to_html())
}

/// Leaves comments out and keeps each distinct header and footer once per document: a
/// running title or "Confidential" on every section is one line of text, not one per section.
fn tidy_word(ir: &mut office_oxide::ir::DocumentIR) {
    use office_oxide::ir::Element;
    let mut seen: Vec<Vec<Element>> = Vec::new();
    for section in &mut ir.sections {
        section.elements.retain(|e| match e {
            Element::Endnote(note) => {
                note.author.is_none()
                    && !note
                        .marker
                        .as_deref()
                        .is_some_and(|m| m.to_ascii_lowercase().starts_with("comment"))
            }
            _ => true,
        });
        for slot in [
            &mut section.first_page_header,
            &mut section.header,
            &mut section.even_page_header,
            &mut section.first_page_footer,
            &mut section.footer,
            &mut section.even_page_footer,
        ] {
            if let Some(hf) = slot {
                if seen.contains(&hf.content) {
                    *slot = None;
                } else {
                    seen.push(hf.content.clone());
                }
            }
        }
    }
}

fn open_zip(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, ExtractError> {
    zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Package(format!("not a readable zip archive: {e}")))
}

/// One member of a zip, as text, refusing members larger than [`MEMBER_LIMIT`].
fn member(zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str) -> Result<String, ExtractError> {
    let file = zip
        .by_name(name)
        .map_err(|e| ExtractError::Package(format!("{name}: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MEMBER_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ExtractError::Package(format!("{name}: {e}")))?;
    if bytes.len() as u64 > MEMBER_LIMIT {
        return Err(ExtractError::Package(format!(
            "{name} inflates to more than {} MiB",
            MEMBER_LIMIT >> 20
        )));
    }
    match decode_text(&bytes) {
        Ok(t) => Ok(t),
        Err(ExtractError::Empty) => Ok(String::new()),
        Err(e) => Err(ExtractError::Package(format!("{name}: {e}"))),
    }
}

fn parse_xml<'a>(name: &str, text: &'a str) -> Result<Document<'a>, ExtractError> {
    // DTDs are refused by default: no entity expansion from inside a document. The render
    // below recurses over the tree, so its depth is bounded before it is built.
    check_nesting(text, Markup::Xml)?;
    Document::parse(text).map_err(|e| ExtractError::Package(format!("{name}: malformed XML: {e}")))
}

fn is(node: Node, ns: &str, name: &str) -> bool {
    node.is_element() && node.tag_name().name() == name && node.tag_name().namespace() == Some(ns)
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// An OpenDocument text as HTML: headings with their outline levels, paragraphs, lists,
/// tables as rows of cells, and footnotes after the body. Tracked deletions, comments and
/// generated indexes (a table of contents repeats the headings) are left out.
pub fn odt_html(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut zip = open_zip(bytes)?;
    let content = member(&mut zip, "content.xml")?;
    // Named styles are optional: a package without them still has its `text:h` headings.
    let styles = member(&mut zip, "styles.xml").ok();
    odt_content_html(&content, styles.as_deref())
}

/// [`odt_html`] of the package's `content.xml` (and `styles.xml`, where there is one).
fn odt_content_html(content: &str, styles: Option<&str>) -> Result<String, ExtractError> {
    let doc = parse_xml("content.xml", content)?;
    let body = doc
        .descendants()
        .find(|n| is(*n, OFFICE_NS, "text"))
        .ok_or_else(|| ExtractError::Package("content.xml has no text body".into()))?;
    let mut r = OdtRender::default();
    r.styles.read(&doc);
    if let Some(doc) = styles.and_then(|s| Document::parse(s).ok()) {
        r.styles.read(&doc);
    }
    r.blocks(body);
    for (i, note) in r.notes.clone().iter().enumerate() {
        r.html.push_str(&format!("<p>[{}] ", i + 1));
        escape(note, &mut r.html);
        r.html.push_str("</p>\n");
    }
    Ok(r.html)
}

/// Paragraph styles by name: their parent and their own outline level. Documents converted
/// from Word keep headings as `text:p` in a heading style (sometimes without an outline level
/// of its own), so a paragraph's level is looked up through its style chain.
#[derive(Default, Clone)]
struct ParaStyles(std::collections::HashMap<String, (Option<String>, Option<u8>)>);

impl ParaStyles {
    fn read(&mut self, doc: &Document) {
        for n in doc.descendants().filter(|n| is(*n, STYLE_NS, "style")) {
            let Some(name) = n.attribute((STYLE_NS, "name")) else {
                continue;
            };
            let parent = n
                .attribute((STYLE_NS, "parent-style-name"))
                .map(String::from);
            let level = n
                .attribute((STYLE_NS, "default-outline-level"))
                .and_then(|l| l.parse::<u8>().ok())
                .or_else(|| heading_level_by_name(name))
                .or_else(|| {
                    n.attribute((STYLE_NS, "display-name"))
                        .and_then(heading_level_by_name)
                });
            self.0.entry(name.to_string()).or_insert((parent, level));
        }
    }

    /// The outline level a paragraph in `style` has, if its style or an ancestor is a heading.
    fn level(&self, style: &str) -> Option<u8> {
        let mut name = style;
        // A bound on the chain guards against a style that names itself as an ancestor.
        for _ in 0..16 {
            let (parent, level) = self.0.get(name)?;
            if level.is_some() {
                return *level;
            }
            name = parent.as_deref()?;
        }
        None
    }
}

/// Heading levels from the names office suites give their styles: `Heading_20_2`,
/// `Heading 2`, and `Title` as the top level.
fn heading_level_by_name(name: &str) -> Option<u8> {
    let name = name.replace("_20_", " ");
    if name == "Title" {
        return Some(1);
    }
    name.strip_prefix("Heading ")?.trim().parse::<u8>().ok()
}

#[derive(Default)]
struct OdtRender {
    styles: ParaStyles,
    html: String,
    /// Footnote and endnote bodies, in the order their marks appear.
    notes: Vec<String>,
}

impl OdtRender {
    fn blocks(&mut self, node: Node) {
        for child in node.children().filter(Node::is_element) {
            self.block(child);
        }
    }

    fn block(&mut self, n: Node) {
        let ns = n.tag_name().namespace();
        let name = n.tag_name().name();
        match (ns, name) {
            (Some(TEXT_NS), "h") => {
                let level = n
                    .attributes()
                    .find(|a| a.name() == "outline-level")
                    .and_then(|a| a.value().parse::<u8>().ok())
                    .unwrap_or(1)
                    .clamp(1, 6);
                self.html.push_str(&format!("<h{level}>"));
                self.inline(n);
                self.html.push_str(&format!("</h{level}>\n"));
            }
            (Some(TEXT_NS), "p") => {
                let level = n
                    .attribute((TEXT_NS, "style-name"))
                    .and_then(|style| self.styles.level(style));
                let tag = match level {
                    Some(l) => format!("h{}", l.clamp(1, 6)),
                    None => "p".to_string(),
                };
                self.html.push_str(&format!("<{tag}>"));
                self.inline(n);
                self.html.push_str(&format!("</{tag}>\n"));
            }
            (Some(TEXT_NS), "list") => self.wrapped("ul", n),
            (Some(TEXT_NS), "list-item" | "list-header") => self.wrapped("li", n),
            (Some(TABLE_NS), "table") => self.wrapped("table", n),
            (Some(TABLE_NS), "table-row") => self.wrapped("tr", n),
            (Some(TABLE_NS), "table-cell") => self.wrapped("td", n),
            (Some(TABLE_NS), "table-columns" | "table-column" | "covered-table-cell") => {}
            (
                Some(TEXT_NS),
                "tracked-changes" | "table-of-content" | "alphabetical-index"
                | "illustration-index" | "table-index" | "object-index" | "user-index"
                | "bibliography" | "sequence-decls" | "variable-decls" | "user-field-decls",
            ) => {}
            (Some(OFFICE_NS), "annotation" | "forms") => {}
            // Sections, table header rows, frames and text boxes hold blocks of their own.
            _ => self.blocks(n),
        }
    }

    fn wrapped(&mut self, tag: &str, n: Node) {
        self.html.push_str(&format!("<{tag}>"));
        self.blocks(n);
        self.html.push_str(&format!("</{tag}>\n"));
    }

    fn inline(&mut self, n: Node) {
        for child in n.children() {
            if let Some(t) = child.text().filter(|_| child.is_text()) {
                escape(t, &mut self.html);
                continue;
            }
            if !child.is_element() {
                continue;
            }
            let ns = child.tag_name().namespace();
            match (ns, child.tag_name().name()) {
                (Some(TEXT_NS), "s") => {
                    let count = child
                        .attributes()
                        .find(|a| a.name() == "c")
                        .and_then(|a| a.value().parse::<usize>().ok())
                        .unwrap_or(1)
                        .min(64);
                    self.html.push_str(&" ".repeat(count));
                }
                (Some(TEXT_NS), "tab") => self.html.push('\t'),
                (Some(TEXT_NS), "line-break") => self.html.push_str("<br>"),
                (Some(TEXT_NS), "note") => self.note(child),
                (Some(OFFICE_NS), "annotation" | "annotation-end") => {}
                (Some(TEXT_NS), "change" | "change-start" | "change-end" | "bookmark-ref") => {}
                // Frames inside a paragraph hold their own paragraphs (text boxes).
                (_, "frame" | "text-box") => {
                    self.html.push(' ');
                    let mut inner = OdtRender::default();
                    inner.blocks(child);
                    let text = inner.plain_text();
                    escape(&text, &mut self.html);
                    self.notes.extend(inner.notes);
                }
                _ => self.inline(child),
            }
        }
    }

    /// A footnote or endnote: its mark stays in the text, its body goes after the body.
    fn note(&mut self, n: Node) {
        self.notes.push(String::new());
        let number = self.notes.len();
        self.html.push_str(&format!("[{number}]"));
        if let Some(body) = n.children().find(|c| is(*c, TEXT_NS, "note-body")) {
            let mut inner = OdtRender::default();
            inner.blocks(body);
            self.notes[number - 1] = inner.plain_text();
        }
    }

    /// The text of what was rendered so far, tags dropped (for notes and text boxes).
    fn plain_text(&self) -> String {
        let unit = html_unit(&self.html);
        unit.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// An EPUB as one unit: the chapters of its spine, in reading order, each read as HTML, their
/// headings kept. A chapter that cannot be read is left out; a book none of whose chapters can
/// be read is an error naming the first failure.
pub fn epub_unit(bytes: &[u8]) -> Result<Unit, ExtractError> {
    let mut zip = open_zip(bytes)?;
    let container = member(&mut zip, "META-INF/container.xml")?;
    let container = parse_xml("META-INF/container.xml", &container)?;
    let opf_path = container
        .descendants()
        .find(|n| n.has_tag_name("rootfile"))
        .and_then(|n| n.attribute("full-path"))
        .ok_or_else(|| ExtractError::Package("container.xml names no package file".into()))?
        .to_string();
    let opf = member(&mut zip, &opf_path)?;
    let opf = parse_xml(&opf_path, &opf)?;
    let base = opf_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let manifest: Vec<(&str, &str, &str)> = opf
        .descendants()
        .filter(|n| n.has_tag_name("item"))
        .filter_map(|n| {
            Some((
                n.attribute("id")?,
                n.attribute("href")?,
                n.attribute("media-type").unwrap_or(""),
            ))
        })
        .collect();
    let chapters: Vec<String> = opf
        .descendants()
        .filter(|n| n.has_tag_name("itemref"))
        .filter_map(|n| n.attribute("idref"))
        .filter_map(|id| manifest.iter().find(|(i, _, _)| *i == id))
        .filter(|(_, _, media)| media.contains("html"))
        .map(|(_, href, _)| resolve_href(base, href))
        .collect();
    if chapters.is_empty() {
        return Err(ExtractError::Package(
            "the EPUB's spine lists no chapters".into(),
        ));
    }
    let mut book = Unit::plain(None, String::new());
    let mut first_error = None;
    for path in &chapters {
        match member(&mut zip, path) {
            Ok(html) => match check_nesting(&html, Markup::Html) {
                Ok(()) => append_unit(&mut book, html_unit(&html)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            },
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if book.text.trim().is_empty() => Err(e),
        _ => Ok(book),
    }
}

/// Appends `next` to `unit`, a blank line between them, moving `next`'s sections along.
fn append_unit(unit: &mut Unit, next: Unit) {
    if next.text.trim().is_empty() {
        return;
    }
    if !unit.text.is_empty() {
        unit.text.push('\n');
    }
    let offset = unit.text.len();
    unit.text.push_str(&next.text);
    unit.sections
        .extend(next.sections.into_iter().map(|s| Section {
            start: s.start + offset,
            heading: s.heading,
        }));
}

/// A path inside the zip from a manifest `href`, relative to the package file's folder:
/// percent-escapes decoded, `.` and `..` resolved, any `#fragment` dropped.
fn resolve_href(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or("");
    let mut parts: Vec<String> = base
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for part in percent_decode(href).split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p.to_string()),
        }
    }
    parts.join("/")
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn odt(body: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="{OFFICE_NS}" xmlns:text="{TEXT_NS}" xmlns:table="{TABLE_NS}"
  xmlns:dc="http://purl.org/dc/elements/1.1/"><office:body><office:text>{body}</office:text></office:body></office:document-content>"#
        )
    }

    #[test]
    fn opendocument_keeps_heading_levels_tables_and_notes_and_drops_deletions() {
        let xml = odt(r#"
<text:tracked-changes><text:changed-region text:id="c1"><text:deletion>
  <office:change-info><dc:creator>Ann</dc:creator></office:change-info>
  <text:p>Payment is due in 90 days.</text:p></text:deletion></text:changed-region></text:tracked-changes>
<text:table-of-content><text:index-body><text:p>Payment terms ... 1</text:p></text:index-body></text:table-of-content>
<text:h text:outline-level="1">Master Services Agreement</text:h>
<text:h text:outline-level="2">Payment terms</text:h>
<text:p><text:change text:change-id="c1"/>Invoices are payable within<text:s text:c="3"/>30 days.<text:note text:note-class="footnote"><text:note-citation>1</text:note-citation><text:note-body><text:p>Counted from receipt.</text:p></text:note-body></text:note></text:p>
<office:annotation><text:p>Check with legal</text:p></office:annotation>
<table:table><table:table-column/><table:table-row><table:table-cell><text:p>Fee</text:p></table:table-cell><table:table-cell><text:p>EUR 500</text:p></table:table-cell></table:table-row></table:table>
<text:list><text:list-item><text:p>First item</text:p></text:list-item></text:list>
"#);
        let unit = html_unit(&odt_content_html(&xml, None).unwrap());
        let t = &unit.text;
        assert!(
            !t.contains("90 days"),
            "a tracked deletion is left out: {t}"
        );
        assert!(
            !t.contains("... 1"),
            "the table of contents is left out: {t}"
        );
        assert!(
            !t.contains("Check with legal"),
            "comments are left out: {t}"
        );
        assert!(t.contains("Invoices are payable within 30 days.[1]"), "{t}");
        assert!(t.contains("Fee | EUR 500"), "a table row is one line: {t}");
        assert!(t.contains("First item"), "{t}");
        assert!(t.trim_end().ends_with("[1] Counted from receipt."), "{t}");
        let payment = t.find("Payment terms").unwrap();
        let section = unit
            .sections
            .iter()
            .rev()
            .find(|s| s.start <= payment)
            .unwrap();
        assert_eq!(
            section.heading,
            ["Master Services Agreement", "Payment terms"],
            "{:?}",
            unit.sections
        );
    }

    #[test]
    fn paragraphs_in_heading_styles_are_headings() {
        // As LibreOffice saves a document imported from Word: headings are `text:p` whose
        // automatic style derives from a named heading style, one without an outline level.
        let content = odt(r#"<text:p text:style-name="P1">Supply Agreement</text:p>
<text:p text:style-name="P2">Term</text:p><text:p text:style-name="Body">Ninety days.</text:p>"#)
        .replace(
            "<office:body>",
            &format!(
                r#"<office:automatic-styles xmlns:style="{STYLE_NS}">
<style:style style:name="P1" style:family="paragraph" style:parent-style-name="Heading_20_1"/>
<style:style style:name="P2" style:family="paragraph" style:parent-style-name="Numbered"/>
</office:automatic-styles><office:body>"#
            ),
        );
        let styles = format!(
            r#"<office:document-styles xmlns:office="{OFFICE_NS}" xmlns:style="{STYLE_NS}"><office:styles>
<style:style style:name="Heading_20_1" style:display-name="Heading 1" style:parent-style-name="Heading"/>
<style:style style:name="Numbered" style:parent-style-name="Numbered" style:default-outline-level="2"/>
<style:style style:name="Body"/>
</office:styles></office:document-styles>"#
        );
        let html = odt_content_html(&content, Some(&styles)).unwrap();
        assert!(html.contains("<h1>Supply Agreement</h1>"), "{html}");
        assert!(html.contains("<h2>Term</h2>"), "{html}");
        assert!(html.contains("<p>Ninety days.</p>"), "{html}");
        let plain = odt_content_html(&content, None).unwrap();
        assert!(plain.contains("<p>Supply Agreement</p>"), "{plain}");
    }

    #[test]
    fn malformed_opendocument_xml_is_reported() {
        let err = odt_content_html("<office:document-content><text:p>", None).unwrap_err();
        assert!(
            err.to_string().contains("content.xml: malformed XML"),
            "{err}"
        );
        let err = odt_content_html("<a/>", None).unwrap_err();
        assert!(err.to_string().contains("no text body"), "{err}");
    }

    #[test]
    fn manifest_paths_resolve_against_the_package_folder() {
        assert_eq!(
            resolve_href("OEBPS", "text/ch%201.xhtml#top"),
            "OEBPS/text/ch 1.xhtml"
        );
        assert_eq!(
            resolve_href("OEBPS/opf", "../text/./c.xhtml"),
            "OEBPS/text/c.xhtml"
        );
        assert_eq!(resolve_href("", "c.xhtml"), "c.xhtml");
        assert_eq!(resolve_href("", "../../c.xhtml"), "c.xhtml");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%e2%82%ac%zz"), "€%zz");
    }

    #[test]
    fn appended_chapters_keep_their_headings_in_place() {
        let mut book = Unit::plain(None, String::new());
        append_unit(&mut book, html_unit("<h1>One</h1><p>alpha</p>"));
        append_unit(&mut book, html_unit("<p> </p>"));
        append_unit(&mut book, html_unit("<h1>Two</h1><p>beta</p>"));
        let two = book.text.find("Two").unwrap();
        assert_eq!(book.sections.len(), 2);
        assert_eq!(book.sections[1].start, two);
        assert_eq!(book.sections[1].heading, ["Two"]);
        assert!(
            book.text.starts_with("One\n\nalpha\n\nTwo"),
            "{:?}",
            book.text
        );
    }

    #[test]
    fn word_comments_are_left_out_and_repeated_headers_kept_once() {
        use office_oxide::ir::{
            DocumentIR, Element, HeaderFooter, InlineContent, Note, Paragraph, Section, TextSpan,
        };
        let para = |t: &str| {
            Element::Paragraph(Paragraph {
                content: vec![InlineContent::Text(TextSpan::plain(t))],
                ..Default::default()
            })
        };
        let header = |t: &str| {
            Some(HeaderFooter {
                content: vec![para(t)],
            })
        };
        let note = |marker: Option<&str>, author: Option<&str>, t: &str| {
            Element::Endnote(Note {
                id: 1,
                content: vec![para(t)],
                marker: marker.map(String::from),
                author: author.map(String::from),
            })
        };
        let section = |body: &str| Section {
            elements: vec![para(body)],
            header: header("ACME CONFIDENTIAL"),
            footer: header("Page footer"),
            ..Default::default()
        };
        let mut ir = DocumentIR {
            metadata: Default::default(),
            sections: vec![section("First part."), section("Second part.")],
        };
        ir.sections[1].elements.extend([
            note(Some("Comment (Ann)"), Some("Ann"), "Check this clause"),
            note(Some("comment"), None, "Legacy comment"),
            note(None, None, "A real endnote."),
        ]);
        tidy_word(&mut ir);
        let text = html_unit(&ir.to_html()).text;
        assert_eq!(text.matches("ACME CONFIDENTIAL").count(), 1, "{text}");
        assert_eq!(text.matches("Page footer").count(), 1, "{text}");
        assert!(text.contains("First part.") && text.contains("Second part."));
        assert!(text.contains("A real endnote."), "{text}");
        assert!(
            !text.contains("Check this") && !text.contains("Legacy"),
            "{text}"
        );
    }

    #[test]
    fn not_a_package_is_reported_not_panicked() {
        for kind in [Kind::Docx, Kind::Doc, Kind::Odt, Kind::Epub] {
            assert_eq!(extract(kind, b""), Err(ExtractError::Empty));
            let err = extract(kind, b"PK\x03\x04 this is not a zip").unwrap_err();
            assert!(matches!(err, ExtractError::Package(_)), "{kind:?}: {err}");
        }
    }
}
