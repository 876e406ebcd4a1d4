//! Fixtures: the shared embedder, temp folders, generated PDFs, and running the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use folio::config::Dirs;
use folio::embed::Embedder;
use folio::index::Index;
use folio::ingest::chunk::ChunkOptions;
use folio::ingest::pdf::PdfExtractor;
use folio::pipeline::{IndexOptions, Quiet, RunReport, index_folders};
use lopdf::content::{Content, Operation};
use lopdf::{Document, Object, Stream, dictionary};

pub fn models_dir() -> PathBuf {
    match std::env::var_os("FOLIO_MODELS") {
        Some(p) => PathBuf::from(p),
        None => Dirs::from_system()
            .expect("home directory")
            .cache
            .join("models"),
    }
}

/// The default embedder, fetched if needed and loaded once per test process.
pub fn embedder() -> &'static Embedder {
    shared_embedder()
}

/// The same embedder, for components that keep a handle to it (the watcher).
pub fn shared_embedder() -> &'static Arc<Embedder> {
    static E: OnceLock<Arc<Embedder>> = OnceLock::new();
    E.get_or_init(|| {
        let dir = embed_model_dir();
        Arc::new(Embedder::load(&dir, 32).expect("loading all-MiniLM-L6-v2"))
    })
}

/// The default embedding model's folder, fetched if needed.
pub fn embed_model_dir() -> PathBuf {
    folio::models::ensure(&folio::models::MINILM, &models_dir(), &mut |m| {
        eprintln!("{m}")
    })
    .expect("fetching all-MiniLM-L6-v2")
}

pub fn options() -> IndexOptions {
    IndexOptions {
        max_bytes: 1 << 20,
        follow_links: false,
        retry_failed: false,
        batch_files: 64,
        batch_chunks: 256,
        chunk: ChunkOptions {
            target: 200,
            max: embedder().content_budget(),
            overlap: 32,
        },
        whole: false,
        ann_threshold: 50_000,
    }
}

/// The PDF worker is the real `folio` binary, as in production.
pub fn pdf() -> PdfExtractor {
    PdfExtractor::new(
        Some(PathBuf::from(env!("CARGO_BIN_EXE_folio"))),
        Duration::from_secs(30),
    )
}

pub fn open(index_dir: &Path) -> Index {
    Index::open_writer(index_dir, embedder().info(), &options().chunking(), false)
        .expect("open index")
}

/// Indexes `root` into `index_dir` through the library, as `folio index` does.
pub fn index(index_dir: &Path, root: &Path) -> RunReport {
    let mut idx = open(index_dir);
    index_folders(
        &mut idx,
        embedder(),
        &pdf(),
        &[root.to_path_buf()],
        &options(),
        &mut Quiet,
    )
    .expect("indexing")
}

/// A PDF whose pages hold the given lines of text (Helvetica, one text object per line).
pub fn pdf_doc(pages: &[&[&str]]) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut ops = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 11.into()]),
            Operation::new("Td", vec![72.into(), 720.into()]),
        ];
        for line in lines.iter() {
            ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            ops.push(Operation::new("Td", vec![0.into(), (-16).into()]));
        }
        ops.push(Operation::new("ET", vec![]));
        kids.push(add_page(&mut doc, pages_id, Content { operations: ops }));
    }
    finish(&mut doc, pages_id, resources_id, kids);
    doc
}

/// `n` PDFs of `pages` pages of contract-like text in `docs` (created): a folder whose
/// extraction keeps the workers busy for a while.
pub fn contracts(docs: &Path, n: usize, pages: usize) {
    std::fs::create_dir_all(docs).unwrap();
    let filler = "Clause text that goes on about obligations and remedies. ".repeat(30);
    for i in 0..n {
        let text: Vec<Vec<String>> = (0..pages)
            .map(|p| vec![format!("Contract {i} page {p}."), filler.clone()])
            .collect();
        let refs: Vec<Vec<&str>> = text
            .iter()
            .map(|p| p.iter().map(String::as_str).collect())
            .collect();
        let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        save(pdf_doc(&refs), &docs.join(format!("c{i}.pdf")));
    }
}

/// A one-page PDF whose font (Type 3) has a ToUnicode map without `!` and no encoding to fall
/// back on, as some real producers write them: pdf-extract panics on the `!`.
pub fn pdf_type3_without_encoding(line: &str) -> Document {
    pdf_type3(line, "")
}

/// The same font, its ToUnicode map also sending `#` to UTF-16 that does not decode (a lone
/// low surrogate), as Acrobat Distiller 4 wrote some: pdf-extract panics reading the map.
pub fn pdf_bad_utf16_map(line: &str) -> Document {
    pdf_type3(line, "1 beginbfchar\n<23> <DC000041>\nendbfchar\n")
}

fn pdf_type3(line: &str, extra_map: &str) -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let cmap = format!(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<00> <FF>\n\
endcodespacerange\n2 beginbfrange\n<41> <5A> <0041>\n<61> <7A> <0061>\nendbfrange\n\
1 beginbfchar\n<20> <0020>\nendbfchar\n{extra_map}endcmap\n\
CMapName currentdict /CMap defineresource pop\nend\nend\n"
    );
    let to_unicode = doc.add_object(Stream::new(dictionary! {}, cmap.into_bytes()));
    // Every glyph draws nothing; text extraction only needs the codes and their widths.
    let glyph = doc.add_object(Stream::new(dictionary! {}, b"500 0 d0".to_vec()));
    let procs = lopdf::Dictionary::from_iter([("g".to_string(), Object::Reference(glyph))]);
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type3",
        "FontBBox" => vec![0.into(), 0.into(), 500.into(), 700.into()],
        "FontMatrix" => vec![0.001.into(), 0.into(), 0.into(), 0.001.into(), 0.into(), 0.into()],
        "CharProcs" => procs,
        "FirstChar" => 32, "LastChar" => 122,
        "Widths" => vec![Object::Integer(500); 91],
        "ToUnicode" => to_unicode,
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let ops = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 11.into()]),
        Operation::new("Td", vec![72.into(), 720.into()]),
        Operation::new("Tj", vec![Object::string_literal(line)]),
        Operation::new("ET", vec![]),
    ];
    let page = add_page(&mut doc, pages_id, Content { operations: ops });
    finish(&mut doc, pages_id, resources_id, vec![page]);
    doc
}

/// The bytes of `doc` as written to a file.
pub fn pdf_bytes(mut doc: Document) -> Vec<u8> {
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("writing PDF fixture");
    out
}

/// A one-page PDF that only draws a rectangle: what a scan without OCR looks like to a parser.
pub fn pdf_without_text() -> Document {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let resources_id = doc.add_object(dictionary! {});
    let ops = vec![
        Operation::new("re", vec![72.into(), 72.into(), 400.into(), 600.into()]),
        Operation::new("f", vec![]),
    ];
    let page = add_page(&mut doc, pages_id, Content { operations: ops });
    finish(&mut doc, pages_id, resources_id, vec![page]);
    doc
}

fn add_page(doc: &mut Document, pages_id: lopdf::ObjectId, content: Content) -> Object {
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
    doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
    })
    .into()
}

fn finish(
    doc: &mut Document,
    pages_id: lopdf::ObjectId,
    resources_id: lopdf::ObjectId,
    kids: Vec<Object>,
) {
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
            "Resources" => resources_id, "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
}

/// A scan of `doc`: each page rendered to a grey image (poppler's `pdftoppm`, 150 dpi) and
/// placed alone on a page of a new PDF, which has no text layer, as a scanner writes it.
pub fn scanned(doc: Document, work: &Path) -> Document {
    let text_pdf = work.join("before-scanning.pdf");
    save(doc, &text_pdf);
    let pages = Document::load(&text_pdf).unwrap().get_pages().len();
    let mut scan = Document::with_version("1.5");
    let pages_id = scan.new_object_id();
    let resources_id = scan.add_object(dictionary! {});
    let mut kids = Vec::new();
    for n in 1..=pages {
        let prefix = work.join(format!("scan-{n}"));
        let status = Command::new("pdftoppm")
            .args([
                "-r",
                "150",
                "-gray",
                "-singlefile",
                "-f",
                &n.to_string(),
                "-l",
                &n.to_string(),
            ])
            .arg(&text_pdf)
            .arg(&prefix)
            .status()
            .expect("pdftoppm (poppler-utils)");
        assert!(status.success());
        let (width, height, pixels) =
            read_pgm(&std::fs::read(prefix.with_extension("pgm")).unwrap());
        let mut image = Stream::new(
            dictionary! {
                "Type" => "XObject", "Subtype" => "Image", "Width" => width as i64,
                "Height" => height as i64, "ColorSpace" => "DeviceGray", "BitsPerComponent" => 8,
            },
            pixels,
        );
        image.compress().unwrap();
        let image_id = scan.add_object(image);
        let content = Content {
            operations: vec![
                Operation::new("q", vec![]),
                Operation::new(
                    "cm",
                    vec![
                        612.into(),
                        0.into(),
                        0.into(),
                        792.into(),
                        0.into(),
                        0.into(),
                    ],
                ),
                Operation::new("Do", vec!["Im1".into()]),
                Operation::new("Q", vec![]),
            ],
        };
        let content_id = scan.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
        kids.push(
            scan.add_object(dictionary! {
                "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
                "Resources" => dictionary! { "XObject" => dictionary! { "Im1" => image_id } },
            })
            .into(),
        );
    }
    finish(&mut scan, pages_id, resources_id, kids);
    scan
}

/// Width, height and pixels of a binary PGM (P5, 8 bits).
fn read_pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).into_owned());
    }
    assert_eq!(fields[0], "P5");
    let (w, h) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    (w, h, bytes[at + 1..at + 1 + w * h].to_vec())
}

pub fn save(mut doc: Document, path: &Path) {
    doc.save(path).expect("writing PDF fixture");
}

/// Encrypts `doc` with a user password (opening it needs the password).
pub fn encrypt(mut doc: Document, user_password: &str) -> Document {
    // The standard security handler keys on the file identifier.
    let id = lopdf::Object::string_literal(b"folio-fixture-id-".to_vec());
    doc.trailer.set("ID", vec![id.clone(), id]);
    let version = lopdf::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password,
        key_length: 128,
        permissions: lopdf::Permissions::all(),
    };
    let state = lopdf::EncryptionState::try_from(version).expect("encryption state");
    doc.encrypt(&state).expect("encrypting");
    doc
}

/// The `folio` binary with a private config, log and model cache, all three streams piped.
pub fn folio_command(tmp: &Path, args: &[&str]) -> Command {
    let config = tmp.join("config.toml");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_folio"));
    cmd.args(args)
        .env("FOLIO_CONFIG", &config)
        .env("FOLIO_MODELS", models_dir())
        .env("FOLIO_LOG", tmp.join("folio.log"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// Runs the `folio` binary with a private config, log and model cache.
pub fn folio(tmp: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = folio_command(tmp, args).spawn().expect("running folio");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        eprintln!(
            "folio {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// A zip package of the given members, in order, stored uncompressed (as EPUB wants its
/// `mimetype` first).
pub fn zip_of(members: &[(&str, &str)]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, text) in members {
        zip.start_file(*name, opts).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

const W: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const RELS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";
const OFFICE_RELS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";

/// A Word document whose body is the given WordprocessingML, with the styles `Heading1` and
/// `Heading2` and the footnotes given as `(id, text)`.
pub fn docx(body: &str, footnotes: &[(u32, &str)]) -> Vec<u8> {
    let types = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
<Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/word/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/>\
<Override PartName=\"/word/footnotes.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml\"/>\
</Types>";
    let rels = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{RELS}\">\
<Relationship Id=\"rId1\" Type=\"{OFFICE_RELS}/officeDocument\" Target=\"word/document.xml\"/></Relationships>"
    );
    let doc_rels = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Relationships xmlns=\"{RELS}\">\
<Relationship Id=\"rId1\" Type=\"{OFFICE_RELS}/styles\" Target=\"styles.xml\"/>\
<Relationship Id=\"rId2\" Type=\"{OFFICE_RELS}/footnotes\" Target=\"footnotes.xml\"/></Relationships>"
    );
    let heading = |n: u32| {
        format!(
            "<w:style w:type=\"paragraph\" w:styleId=\"Heading{n}\"><w:name w:val=\"heading {n}\"/>\
<w:pPr><w:outlineLvl w:val=\"{}\"/></w:pPr></w:style>",
            n - 1
        )
    };
    let styles = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:styles xmlns:w=\"{W}\">{}{}</w:styles>",
        heading(1),
        heading(2)
    );
    let notes: String = footnotes
        .iter()
        .map(|(id, text)| {
            format!(
                "<w:footnote w:id=\"{id}\"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:footnote>"
            )
        })
        .collect();
    let notes = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:footnotes xmlns:w=\"{W}\">{notes}</w:footnotes>"
    );
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><w:document xmlns:w=\"{W}\"><w:body>{body}</w:body></w:document>"
    );
    zip_of(&[
        ("[Content_Types].xml", types),
        ("_rels/.rels", &rels),
        ("word/_rels/document.xml.rels", &doc_rels),
        ("word/styles.xml", &styles),
        ("word/footnotes.xml", &notes),
        ("word/document.xml", &document),
    ])
}

/// A WordprocessingML paragraph of one run, in the given style (or none).
pub fn w_p(style: Option<&str>, text: &str) -> String {
    let props = style
        .map(|s| format!("<w:pPr><w:pStyle w:val=\"{s}\"/></w:pPr>"))
        .unwrap_or_default();
    format!("<w:p>{props}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
}

/// An OpenDocument text whose `office:text` holds the given XML (with the `text:` and
/// `table:` prefixes declared); `content` replaces the whole `content.xml` when given.
pub fn odt(body: &str) -> Vec<u8> {
    odt_content(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><office:document-content \
xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" \
xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" \
xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" office:version=\"1.3\">\
<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    ))
}

/// An OpenDocument text package around the given `content.xml`.
pub fn odt_content(content: &str) -> Vec<u8> {
    zip_of(&[
        ("mimetype", "application/vnd.oasis.opendocument.text"),
        ("content.xml", content),
        (
            "META-INF/manifest.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><manifest:manifest \
xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"/>",
        ),
    ])
}

/// An EPUB of the given chapters, `(file name, XHTML body)`, in spine order; the package
/// file lives in `OEBPS/` and names the chapters with percent-escaped hrefs.
pub fn epub(chapters: &[(&str, &str)]) -> Vec<u8> {
    let container = "<?xml version=\"1.0\"?><container version=\"1.0\" \
xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\"><rootfiles>\
<rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/>\
</rootfiles></container>";
    let escape = |name: &str| name.replace(' ', "%20");
    let manifest: String = chapters
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            format!(
                "<item id=\"c{i}\" href=\"text/{}\" media-type=\"application/xhtml+xml\"/>",
                escape(name)
            )
        })
        .collect();
    let spine: String = (0..chapters.len())
        .map(|i| format!("<itemref idref=\"c{i}\"/>"))
        .collect();
    let opf = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><package xmlns=\"http://www.idpf.org/2007/opf\" \
version=\"3.0\"><metadata/><manifest>{manifest}</manifest><spine>{spine}</spine></package>"
    );
    let pages: Vec<(String, String)> = chapters
        .iter()
        .map(|(name, body)| {
            (
                format!("OEBPS/text/{name}"),
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><html xmlns=\"http://www.w3.org/1999/xhtml\">\
<head><title>{name}</title></head><body>{body}</body></html>"
                ),
            )
        })
        .collect();
    let mut members = vec![
        ("mimetype", "application/epub+zip"),
        ("META-INF/container.xml", container),
        ("OEBPS/content.opf", opf.as_str()),
    ];
    members.extend(pages.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    zip_of(&members)
}
