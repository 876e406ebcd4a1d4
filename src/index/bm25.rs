//! The lexical index: BM25 over passages in tantivy, with English stemming and stop words.
//!
//! Every passage is one tantivy document holding its text (stored, so that results need no
//! other lookup), its heading path and file name (separate fields, boosted at query time), and
//! its position (path, page, span, ordinal). Queries are built term by term from the same
//! analyzer as the index, never parsed as query syntax, so that user text with quotes, colons or
//! parentheses is just text. Deletion is by path.

use std::collections::HashSet;
use std::path::Path;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery, TermSetQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TantivyDocument,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    StopWordFilter, TextAnalyzer,
};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Term, doc};

use crate::doc::Chunk;

const ANALYZER: &str = "folio_en";
const WRITER_HEAP: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Bm25Error {
    #[error("BM25 index")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("BM25 index at {path}")]
    Open {
        path: String,
        #[source]
        source: crate::Cause,
    },
    #[error("BM25 store")]
    Io(#[from] std::io::Error),
    #[error("BM25 index was opened read-only")]
    ReadOnly,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    path: Field,
    ext: Field,
    name: Field,
    heading: Field,
    body: Field,
    page: Field,
    start: Field,
    end: Field,
    ordinal: Field,
    heading_json: Field,
}

/// A passage as stored in the BM25 index.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: u64,
    pub path: String,
    pub page: Option<u32>,
    pub heading: Vec<String>,
    pub start: usize,
    pub end: usize,
    pub ordinal: u32,
    pub text: String,
}

/// Query-time weights of the fields.
#[derive(Debug, Clone, Copy)]
pub struct Boosts {
    pub heading: f32,
    pub name: f32,
}

/// Restricts a search to some files.
#[derive(Debug, Clone, Default)]
pub struct Restrict {
    /// Only these paths, if set.
    pub paths: Option<Vec<String>>,
}

pub struct Bm25 {
    index: Index,
    reader: IndexReader,
    writer: Option<IndexWriter>,
    f: Fields,
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::new(Language::English).expect("tantivy ships English stop words"))
        .filter(Stemmer::new(Language::English))
        .build()
}

fn schema() -> Schema {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    b.add_u64_field("id", INDEXED | STORED | FAST);
    b.add_text_field("path", STRING | STORED);
    b.add_text_field("ext", STRING);
    b.add_text_field("name", text.clone());
    b.add_text_field("heading", text.clone());
    b.add_text_field("body", text | STORED);
    b.add_u64_field("page", STORED);
    b.add_u64_field("start", STORED);
    b.add_u64_field("end", STORED);
    b.add_u64_field("ordinal", STORED);
    b.add_text_field("heading_json", STORED);
    b.build()
}

fn fields(schema: &Schema) -> Result<Fields, tantivy::TantivyError> {
    let f = |n: &str| schema.get_field(n);
    Ok(Fields {
        id: f("id")?,
        path: f("path")?,
        ext: f("ext")?,
        name: f("name")?,
        heading: f("heading")?,
        body: f("body")?,
        page: f("page")?,
        start: f("start")?,
        end: f("end")?,
        ordinal: f("ordinal")?,
        heading_json: f("heading_json")?,
    })
}

/// The words of a file name, for the name field: `acme-msa_2024.pdf` → `acme msa 2024`.
fn name_words(path: &str) -> String {
    let stem = Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.replace(['-', '_', '.'], " ")
}

impl Bm25 {
    /// Opens the index in `dir`, creating it if absent. With `write`, also takes a writer.
    pub fn open(dir: &Path, write: bool) -> Result<Bm25, Bm25Error> {
        let open_err = |e: crate::Cause| Bm25Error::Open {
            path: dir.display().to_string(),
            source: e,
        };
        let index = if dir.join("meta.json").exists() {
            Index::open_in_dir(dir)?
        } else if write {
            crate::fsutil::create_private_dir(dir).map_err(|e| open_err(e.into()))?;
            Index::create_in_dir(dir, schema())?
        } else {
            return Err(open_err(
                "no index here yet (run `folio index DIR` first)".into(),
            ));
        };
        index.tokenizers().register(ANALYZER, analyzer());
        let f = fields(&index.schema())?;
        // A reader follows other processes' commits (tantivy polls meta.json for them); the
        // writer reloads after its own commits and need not wake up for anything else.
        let policy = if write {
            ReloadPolicy::Manual
        } else {
            ReloadPolicy::OnCommitWithDelay
        };
        let reader = index.reader_builder().reload_policy(policy).try_into()?;
        let writer = if write {
            Some(index.writer(WRITER_HEAP)?)
        } else {
            None
        };
        Ok(Bm25 {
            index,
            reader,
            writer,
            f,
        })
    }

    fn writer(&mut self) -> Result<&mut IndexWriter, Bm25Error> {
        self.writer.as_mut().ok_or(Bm25Error::ReadOnly)
    }

    /// Queues the removal of every passage of `path`.
    pub fn delete_path(&mut self, path: &str) -> Result<(), Bm25Error> {
        let term = Term::from_field_text(self.f.path, path);
        self.writer()?.delete_term(term);
        Ok(())
    }

    /// Queues the removal of one passage.
    pub fn delete_id(&mut self, id: u64) -> Result<(), Bm25Error> {
        let term = Term::from_field_u64(self.f.id, id);
        self.writer()?.delete_term(term);
        Ok(())
    }

    /// Queues a passage of the file at `path`.
    pub fn add(&mut self, id: u64, path: &str, chunk: &Chunk) -> Result<(), Bm25Error> {
        let f = self.f;
        let ext = Path::new(path)
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let heading_json = serde_json::to_string(&chunk.heading).unwrap_or_else(|_| "[]".into());
        let document = doc!(
            f.id => id,
            f.path => path,
            f.ext => ext,
            f.name => name_words(path),
            f.heading => chunk.heading.join(" \n "),
            f.body => chunk.text.as_str(),
            f.page => chunk.page.map(u64::from).unwrap_or(0),
            f.start => chunk.start as u64,
            f.end => chunk.end as u64,
            f.ordinal => chunk.ordinal as u64,
            f.heading_json => heading_json,
        );
        self.writer()?.add_document(document)?;
        Ok(())
    }

    /// Makes queued changes durable and visible.
    pub fn commit(&mut self) -> Result<(), Bm25Error> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Drops queued, uncommitted changes.
    pub fn rollback(&mut self) -> Result<(), Bm25Error> {
        self.writer()?.rollback()?;
        Ok(())
    }

    /// Picks up commits made by another process.
    pub fn reload(&self) -> Result<(), Bm25Error> {
        self.reader.reload()?;
        Ok(())
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The analyzed terms of `text`: lower-cased, folded, stemmed, stop words removed.
    pub fn terms(&self, text: &str) -> Vec<String> {
        let mut a = analyzer();
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// BM25's inverse document frequency of an analyzed term among passage texts: how much
    /// finding it says about a passage.
    pub fn idf(&self, term: &str) -> f32 {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        let df = searcher
            .doc_freq(&Term::from_field_text(self.f.body, term))
            .unwrap_or(0) as f32;
        ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
    }

    /// Byte ranges of `text` whose analyzed form is one of `terms`: for highlighting.
    pub fn matches(&self, text: &str, terms: &HashSet<String>) -> Vec<(usize, usize)> {
        let mut a = analyzer();
        let mut stream = a.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            let t = stream.token();
            if terms.contains(&t.text) {
                out.push((t.offset_from, t.offset_to));
            }
        }
        out
    }

    /// The best `limit` passages for `query`, as `(id, score)`, best first.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        boosts: Boosts,
        restrict: &Restrict,
    ) -> Result<Vec<(u64, f32)>, Bm25Error> {
        let terms: Vec<String> = {
            let mut seen = HashSet::new();
            self.terms(query)
                .into_iter()
                .filter(|t| seen.insert(t.clone()))
                .collect()
        };
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in &terms {
            for (field, boost) in [
                (self.f.body, 1.0),
                (self.f.heading, boosts.heading),
                (self.f.name, boosts.name),
            ] {
                if boost <= 0.0 {
                    continue;
                }
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(field, t),
                    IndexRecordOption::WithFreqs,
                ));
                let q: Box<dyn Query> = if boost == 1.0 {
                    q
                } else {
                    Box::new(BoostQuery::new(q, boost))
                };
                should.push((Occur::Should, q));
            }
        }
        let mut query: Box<dyn Query> = Box::new(BooleanQuery::new(should));
        if let Some(paths) = &restrict.paths {
            let terms = paths.iter().map(|p| Term::from_field_text(self.f.path, p));
            query = Box::new(BooleanQuery::new(vec![
                (Occur::Must, query),
                (Occur::Must, Box::new(TermSetQuery::new(terms))),
            ]));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            if let Some(id) = self.id_of(&searcher, addr)? {
                out.push((id, score));
            }
        }
        Ok(out)
    }

    fn id_of(
        &self,
        searcher: &tantivy::Searcher,
        addr: DocAddress,
    ) -> Result<Option<u64>, Bm25Error> {
        let col = searcher
            .segment_reader(addr.segment_ord)
            .fast_fields()
            .u64("id")?;
        Ok(col.first(addr.doc_id))
    }

    /// The stored passage with `id`, if the index holds it.
    pub fn get(&self, id: u64) -> Result<Option<StoredChunk>, Bm25Error> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_u64(self.f.id, id),
            IndexRecordOption::Basic,
        );
        let top = searcher.search(&q, &TopDocs::with_limit(1).order_by_score())?;
        let Some((_, addr)) = top.first() else {
            return Ok(None);
        };
        let d: TantivyDocument = searcher.doc(*addr)?;
        let f = self.f;
        let u = |field: Field| d.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let s = |field: Field| {
            d.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let page = u(f.page);
        Ok(Some(StoredChunk {
            id,
            path: s(f.path),
            page: (page > 0).then_some(page as u32),
            heading: serde_json::from_str(&s(f.heading_json)).unwrap_or_default(),
            start: u(f.start) as usize,
            end: u(f.end) as usize,
            ordinal: u(f.ordinal) as u32,
            text: s(f.body),
        }))
    }

    /// Every passage id in the index with its path: for consistency checks.
    pub fn all_ids(&self) -> Result<Vec<(u64, String)>, Bm25Error> {
        let searcher = self.reader.searcher();
        let mut out = Vec::new();
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let col = seg.fast_fields().u64("id")?;
            let store = seg.get_store_reader(64)?;
            for doc in seg.doc_ids_alive() {
                let Some(id) = col.first(doc) else { continue };
                let d: TantivyDocument = store.get(doc)?;
                let path = d
                    .get_first(self.f.path)
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let _ = ord;
                out.push((id, path));
            }
        }
        Ok(out)
    }

    /// The index directory's tantivy handle, for size reports.
    pub fn index(&self) -> &Index {
        &self.index
    }
}
