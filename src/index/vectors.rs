//! The dense index: passage embeddings in a LanceDB table, searched by cosine distance.
//!
//! Rows are keyed by the same passage ids as the BM25 index and carry the file path (for
//! deletion and filters) and a hash of the embedded text, so that a passage whose text was
//! embedded before (a renamed file, an unchanged paragraph of an edited one) reuses its vector.
//! Search is exact while the table is small; past a threshold an IVF-PQ index is built and
//! queried with refinement. LanceDB is async: a small runtime owned here runs its futures, so the
//! rest of folio stays synchronous.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::types::Float32Type;
use arrow_array::{Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use futures::TryStreamExt;
use lancedb::DistanceType;
use lancedb::index::Index as LanceIndex;
use lancedb::index::vector::IvfPqIndexBuilder;
use lancedb::query::{ExecutableQuery, QueryBase, Select};
use lancedb::table::{CompactionOptions, OptimizeAction};

const TABLE: &str = "chunks";

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("vector index")]
    Lance(#[from] lancedb::Error),
    #[error("vector index")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// The system refused what the vector index needs while `what`.
    #[error("vector index: {what}")]
    Io {
        what: &'static str,
        #[source]
        cause: std::io::Error,
    },
    /// folio's own reason.
    #[error("vector index: {0}")]
    Other(String),
}

/// A passage's row.
#[derive(Debug, Clone)]
pub struct VectorRow {
    pub id: u64,
    pub path: String,
    /// Hash of the embedded text.
    pub hash: String,
    pub vector: Vec<f32>,
}

pub struct Vectors {
    rt: tokio::runtime::Runtime,
    table: lancedb::Table,
    schema: SchemaRef,
    dim: usize,
    has_ann: bool,
    /// The table version `has_ann` was read at.
    seen: u64,
    /// The whole table in memory, for exact search without an ANN index; loaded on first use.
    flat: Mutex<Option<Arc<Flat>>>,
}

/// Every vector of the table, row-major, with its id and path: an exact scan over this costs
/// about a millisecond per 10k rows, where asking Lance for an exact search re-reads the table.
struct Flat {
    /// The table version this copy was read at.
    version: u64,
    ids: Vec<u64>,
    paths: Vec<Arc<str>>,
    data: Vec<f32>,
}

impl Flat {
    fn search(
        &self,
        query: &[f32],
        limit: usize,
        allowed: Option<&HashSet<&str>>,
    ) -> Vec<(u64, f32)> {
        let dim = query.len();
        let mut scored: Vec<(u64, f32)> = self
            .data
            .chunks_exact(dim)
            .enumerate()
            .filter(|(i, _)| allowed.is_none_or(|a| a.contains(&*self.paths[*i])))
            // Vectors are unit length: the dot product is the cosine.
            .map(|(i, v)| (self.ids[i], v.iter().zip(query).map(|(a, b)| a * b).sum()))
            .collect();
        let limit = limit.min(scored.len());
        if limit == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(limit - 1, |a, b| b.1.total_cmp(&a.1));
        scored.truncate(limit);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored
    }
}

/// Quotes a string for a Lance SQL filter.
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `column IN ('a', 'b')`, or a filter matching nothing for an empty list.
pub fn sql_in(column: &str, values: &[&str]) -> String {
    if values.is_empty() {
        return "false".into();
    }
    let list: Vec<String> = values.iter().map(|v| sql_str(v)).collect();
    format!("{column} IN ({})", list.join(", "))
}

impl Vectors {
    /// Opens the table in `dir`, creating it (with vectors of `dim` floats) if absent and
    /// `write` is set. Readers see other processes' commits within `consistency`.
    pub fn open(dir: &Path, dim: usize, write: bool) -> Result<Vectors, VectorError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("folio-lance")
            .enable_all()
            .build()
            .map_err(|cause| VectorError::Io {
                what: "starting its runtime",
                cause,
            })?;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("path", DataType::Utf8, false),
            Field::new("hash", DataType::Utf8, false),
            Field::new(
                "vector",
                DataType::FixedSizeList(
                    Arc::new(Field::new("item", DataType::Float32, true)),
                    dim as i32,
                ),
                false,
            ),
        ]));
        if write {
            crate::fsutil::create_private_dir(dir).map_err(|cause| VectorError::Io {
                what: "creating its folder",
                cause,
            })?;
        }
        let uri = dir.to_string_lossy().into_owned();
        let table = rt.block_on(async {
            let db = lancedb::connect(&uri)
                .read_consistency_interval(Duration::from_millis(500))
                .execute()
                .await?;
            let names = db.table_names().execute().await?;
            if names.iter().any(|n| n == TABLE) {
                db.open_table(TABLE).execute().await
            } else if write {
                db.create_empty_table(TABLE, schema.clone()).execute().await
            } else {
                Err(lancedb::Error::TableNotFound {
                    name: TABLE.into(),
                    source: "no vector table yet (run `folio index DIR` first)".into(),
                })
            }
        })?;
        let (has_ann, seen) = rt.block_on(async {
            let has = table
                .list_indices()
                .await
                .map(|ix| ix.iter().any(|i| i.columns.iter().any(|c| c == "vector")))?;
            Ok::<_, lancedb::Error>((has, table.version().await?))
        })?;
        Ok(Vectors {
            rt,
            table,
            schema,
            dim,
            has_ann,
            seen,
            flat: Mutex::new(None),
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn count(&self) -> Result<usize, VectorError> {
        Ok(self.rt.block_on(self.table.count_rows(None))?)
    }

    /// Appends rows (one commit).
    pub fn add(&self, rows: &[VectorRow]) -> Result<(), VectorError> {
        self.invalidate();
        if rows.is_empty() {
            return Ok(());
        }
        let ids = UInt64Array::from_iter_values(rows.iter().map(|r| r.id));
        let paths = StringArray::from_iter_values(rows.iter().map(|r| r.path.as_str()));
        let hashes = StringArray::from_iter_values(rows.iter().map(|r| r.hash.as_str()));
        for r in rows {
            if r.vector.len() != self.dim {
                return Err(VectorError::Other(format!(
                    "vector of {} floats for a table of {}",
                    r.vector.len(),
                    self.dim
                )));
            }
        }
        let vectors = FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
            rows.iter()
                .map(|r| Some(r.vector.iter().copied().map(Some).collect::<Vec<_>>())),
            self.dim as i32,
        );
        let batch = RecordBatch::try_new(
            self.schema.clone(),
            vec![
                Arc::new(ids),
                Arc::new(paths),
                Arc::new(hashes),
                Arc::new(vectors),
            ],
        )?;
        self.rt.block_on(self.table.add(batch).execute())?;
        Ok(())
    }

    /// Deletes the rows matching a SQL predicate (one commit).
    pub fn delete_where(&self, predicate: &str) -> Result<(), VectorError> {
        self.invalidate();
        self.rt.block_on(self.table.delete(predicate))?;
        Ok(())
    }

    /// Deletes every row of these paths.
    pub fn delete_paths(&self, paths: &[&str]) -> Result<(), VectorError> {
        // Long IN lists are slow to plan; a few hundred per statement keeps each one quick.
        for group in paths.chunks(500) {
            self.delete_where(&sql_in("path", group))?;
        }
        Ok(())
    }

    /// Deletes rows by id.
    pub fn delete_ids(&self, ids: &[u64]) -> Result<(), VectorError> {
        for group in ids.chunks(500) {
            let list: Vec<String> = group.iter().map(|i| i.to_string()).collect();
            self.delete_where(&format!("id IN ({})", list.join(", ")))?;
        }
        Ok(())
    }

    /// Vectors already stored for these text hashes.
    pub fn lookup_hashes(&self, hashes: &[&str]) -> Result<HashMap<String, Vec<f32>>, VectorError> {
        let mut out = HashMap::new();
        for group in hashes.chunks(500) {
            let batches: Vec<RecordBatch> = self.rt.block_on(async {
                self.table
                    .query()
                    .only_if(sql_in("hash", group))
                    .select(Select::columns(&["hash", "vector"]))
                    .execute()
                    .await?
                    .try_collect()
                    .await
            })?;
            for b in &batches {
                let hashes = column::<StringArray>(b, "hash")?;
                let vectors = column::<FixedSizeListArray>(b, "vector")?;
                for i in 0..b.num_rows() {
                    let v = vectors.value(i);
                    let floats = v
                        .as_any()
                        .downcast_ref::<Float32Array>()
                        .ok_or_else(|| VectorError::Other("vector column is not f32".into()))?;
                    out.insert(hashes.value(i).to_string(), floats.values().to_vec());
                }
            }
        }
        Ok(out)
    }

    /// Every `(id, path)` in the table: for consistency checks.
    pub fn all_ids(&self) -> Result<Vec<(u64, String)>, VectorError> {
        let batches: Vec<RecordBatch> = self.rt.block_on(async {
            self.table
                .query()
                .select(Select::columns(&["id", "path"]))
                .execute()
                .await?
                .try_collect()
                .await
        })?;
        let mut out = Vec::new();
        for b in &batches {
            let ids = column::<UInt64Array>(b, "id")?;
            let paths = column::<StringArray>(b, "path")?;
            for i in 0..b.num_rows() {
                out.push((ids.value(i), paths.value(i).to_string()));
            }
        }
        Ok(out)
    }

    /// Every `(id, vector)` in the table (benchmarks and checks; reads the whole table).
    pub fn all_vectors(&self) -> Result<Vec<(u64, Vec<f32>)>, VectorError> {
        let batches: Vec<RecordBatch> = self.rt.block_on(async {
            self.table
                .query()
                .select(Select::columns(&["id", "vector"]))
                .execute()
                .await?
                .try_collect()
                .await
        })?;
        let mut out = Vec::new();
        for b in &batches {
            let ids = column::<UInt64Array>(b, "id")?;
            let vectors = column::<FixedSizeListArray>(b, "vector")?;
            for i in 0..b.num_rows() {
                let v = vectors.value(i);
                let floats = v
                    .as_any()
                    .downcast_ref::<Float32Array>()
                    .ok_or_else(|| VectorError::Other("vector column is not f32".into()))?;
                out.push((ids.value(i), floats.values().to_vec()));
            }
        }
        Ok(out)
    }

    /// The `limit` nearest passages to `query` by cosine similarity, as `(id, similarity)`, best
    /// first, among passages of `allowed` paths (all when `None`). Without an ANN index (or with
    /// `exact`) the search is an exact scan of the vectors held in memory.
    pub fn search(
        &self,
        query: &[f32],
        limit: usize,
        allowed: Option<&[String]>,
        exact: bool,
    ) -> Result<Vec<(u64, f32)>, VectorError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A query from another model would be cut into the wrong rows (or panic the scan).
        if query.len() != self.dim {
            return Err(VectorError::Other(format!(
                "the query has {} dimensions, the index {}: it was built with another embedding model",
                query.len(),
                self.dim
            )));
        }
        if exact || !self.has_ann {
            let flat = self.flat()?;
            let set: Option<HashSet<&str>> =
                allowed.map(|a| a.iter().map(String::as_str).collect());
            return Ok(flat.search(query, limit, set.as_ref()));
        }
        let filter = allowed.map(|a| {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            sql_in("path", &refs)
        });
        let batches: Vec<RecordBatch> = self.rt.block_on(async {
            let mut q = self
                .table
                .query()
                .nearest_to(query)?
                .distance_type(DistanceType::Cosine)
                .limit(limit)
                .select(Select::columns(&["id", "_distance"]));
            if let Some(f) = &filter {
                q = q.only_if(f.as_str());
            }
            q = q.nprobes(32)?.refine_factor(10);
            q.execute().await?.try_collect().await
        })?;
        let mut out = Vec::new();
        for b in &batches {
            let ids = column::<UInt64Array>(b, "id")?;
            let dist = column::<Float32Array>(b, "_distance")?;
            for i in 0..b.num_rows() {
                out.push((ids.value(i), 1.0 - dist.value(i)));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    fn flat(&self) -> Result<Arc<Flat>, VectorError> {
        let mut guard = self
            .flat
            .lock()
            .map_err(|_| VectorError::Other("vector cache poisoned".into()))?;
        if let Some(f) = guard.as_ref() {
            return Ok(f.clone());
        }
        // The version is read first: a commit between the two makes the copy look older than
        // it is, which costs one extra reload, never a stale copy.
        let (version, batches) = self.rt.block_on(async {
            let version = self.table.version().await?;
            let batches: Vec<RecordBatch> = self
                .table
                .query()
                .select(Select::columns(&["id", "path", "vector"]))
                .execute()
                .await?
                .try_collect()
                .await?;
            Ok::<_, lancedb::Error>((version, batches))
        })?;
        let mut flat = Flat {
            version,
            ids: Vec::new(),
            paths: Vec::new(),
            data: Vec::new(),
        };
        let mut interned: HashMap<String, Arc<str>> = HashMap::new();
        for b in &batches {
            let ids = column::<UInt64Array>(b, "id")?;
            let paths = column::<StringArray>(b, "path")?;
            let vectors = column::<FixedSizeListArray>(b, "vector")?;
            let values = vectors
                .values()
                .as_any()
                .downcast_ref::<Float32Array>()
                .ok_or_else(|| VectorError::Other("vector column is not f32".into()))?;
            for i in 0..b.num_rows() {
                flat.ids.push(ids.value(i));
                let p = paths.value(i);
                let arc = interned
                    .entry(p.to_string())
                    .or_insert_with(|| Arc::from(p))
                    .clone();
                flat.paths.push(arc);
                let start = vectors.value_offset(i) as usize;
                flat.data
                    .extend_from_slice(&values.values()[start..start + self.dim]);
            }
        }
        let flat = Arc::new(flat);
        *guard = Some(flat.clone());
        Ok(flat)
    }

    /// Forgets the in-memory copy (after a write, or when another process wrote).
    fn invalidate(&self) {
        if let Ok(mut g) = self.flat.lock() {
            *g = None;
        }
    }

    pub fn has_ann_index(&self) -> bool {
        self.has_ann
    }

    /// Builds (or rebuilds) the IVF-PQ index over the vectors.
    pub fn build_ann_index(&mut self) -> Result<(), VectorError> {
        let rows = self.count()?;
        // About sqrt(n) partitions; 8 dimensions per PQ sub-vector.
        let partitions = ((rows as f64).sqrt() as u32).clamp(1, 4096);
        let sub_vectors = (self.dim / 8).max(1) as u32;
        let builder = IvfPqIndexBuilder::default()
            .distance_type(DistanceType::Cosine)
            .num_partitions(partitions)
            .num_sub_vectors(sub_vectors);
        self.rt.block_on(
            self.table
                .create_index(&["vector"], LanceIndex::IvfPq(builder))
                .replace(true)
                .execute(),
        )?;
        self.has_ann = true;
        Ok(())
    }

    /// Compacts small files, folds new rows into the ANN index, and removes old versions.
    pub fn optimize(&self) -> Result<(), VectorError> {
        self.rt.block_on(async {
            self.table
                .optimize(OptimizeAction::Compact {
                    options: CompactionOptions::default(),
                    remap_options: None,
                })
                .await?;
            if self.has_ann {
                self.table
                    .optimize(OptimizeAction::Index(Default::default()))
                    .await?;
            }
            // Versions younger than a minute stay: a reader in another process may be
            // searching one of them right now.
            self.table
                .optimize(OptimizeAction::Prune {
                    older_than: Some(lancedb::table::Duration::seconds(60)),
                    delete_unverified: Some(false),
                    error_if_tagged_old_versions: Some(false),
                })
                .await
        })?;
        Ok(())
    }

    /// Moves to the newest version another process committed; the in-memory copy of the
    /// vectors is dropped (and re-read on the next search) when it was read at another one.
    /// LanceDB moves the handle by itself every consistency interval, so comparing the
    /// handle's version before and after this call would miss most commits: the copy's own
    /// version is what counts.
    pub fn refresh(&mut self) -> Result<(), VectorError> {
        let latest = self.rt.block_on(async {
            self.table.checkout_latest().await?;
            self.table.version().await
        })?;
        let stale = self
            .flat
            .lock()
            .map_err(|_| VectorError::Other("vector cache poisoned".into()))?
            .as_ref()
            .is_some_and(|f| f.version != latest);
        if stale {
            self.invalidate();
        }
        if latest != self.seen {
            self.seen = latest;
            self.has_ann = self.rt.block_on(async {
                self.table
                    .list_indices()
                    .await
                    .map(|ix| ix.iter().any(|i| i.columns.iter().any(|c| c == "vector")))
            })?;
        }
        Ok(())
    }
}

fn column<'a, T: 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T, VectorError> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| VectorError::Other(format!("missing column {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_quoting() {
        assert_eq!(sql_str("it's"), "'it''s'");
        assert_eq!(sql_in("path", &["a", "b'c"]), "path IN ('a', 'b''c')");
        assert_eq!(sql_in("path", &[]), "false");
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn add_search_delete_reuse() {
        let t = tempfile::tempdir().unwrap();
        let v = Vectors::open(t.path(), 3, true).unwrap();
        v.add(&[
            VectorRow {
                id: 1,
                path: "/a".into(),
                hash: "h1".into(),
                vector: unit(&[1.0, 0.0, 0.0]),
            },
            VectorRow {
                id: 2,
                path: "/a".into(),
                hash: "h2".into(),
                vector: unit(&[0.0, 1.0, 0.0]),
            },
            VectorRow {
                id: 3,
                path: "/b'x".into(),
                hash: "h3".into(),
                vector: unit(&[1.0, 1.0, 0.0]),
            },
        ])
        .unwrap();
        let hits = v.search(&unit(&[1.0, 0.1, 0.0]), 2, None, false).unwrap();
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!(hits[0].1 > 0.99);
        let only_b = v
            .search(&[1.0, 0.0, 0.0], 5, Some(&["/b'x".to_string()]), false)
            .unwrap();
        assert_eq!(only_b.len(), 1);
        let found = v.lookup_hashes(&["h2", "nope"]).unwrap();
        assert_eq!(found.len(), 1);
        assert!((found["h2"][1] - 1.0).abs() < 1e-6);
        v.delete_paths(&["/a"]).unwrap();
        assert_eq!(v.count().unwrap(), 1);
        v.optimize().unwrap();
        let again = Vectors::open(t.path(), 3, false).unwrap();
        assert_eq!(again.all_ids().unwrap(), vec![(3, "/b'x".to_string())]);
    }
}
