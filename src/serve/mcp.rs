//! MCP over stdio for `folio serve --mcp`: what an editor or desktop assistant launches to
//! search and question the user's folders. Tools: `search` (the passages `folio search
//! --json` gives), `ask` (an answer with its checked citations, or an abstention), `read` (the
//! text around a passage, to quote it in context), `status`.
//! Resources: every indexed file, and each page of an indexed PDF, as its extracted text
//! (`file://` URIs, `#page=N` for a page).
//!
//! A tool's own failures (an empty query, a full queue) come back as tool errors the model
//! can read; only an unknown tool or resource is a protocol error. Stdout is the protocol:
//! nothing else may print there.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Value, json};

use super::{AskEvent, SearchRequest, ServeError, Service, file_uri, parse_file_uri, sources_text};

/// Serves MCP on this process's stdin and stdout until the client closes them.
pub async fn serve_stdio(service: Arc<Service>) -> Result<(), ServeError> {
    let running = Mcp { service }
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| ServeError::BadRequest(format!("MCP handshake: {e}")))?;
    running
        .waiting()
        .await
        .map_err(|e| ServeError::BadRequest(format!("MCP session: {e}")))?;
    Ok(())
}

#[derive(Clone)]
struct Mcp {
    service: Arc<Service>,
}

fn schema(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tools() -> Vec<Tool> {
    let filters = json!({
        "path": {"type": "string", "description": "Glob over the absolute path, e.g. **/contracts/*.pdf"},
        "ext": {"type": "array", "items": {"type": "string"}, "description": "File extensions, e.g. [\"pdf\", \"md\"]"},
    });
    let mut search_props = json!({
        "query": {"type": "string", "description": "What to look for: words, a phrase or a question"},
        "k": {"type": "integer", "minimum": 1, "maximum": super::MAX_K, "description": "Passages wanted (default 10)"},
        "mode": {"type": "string", "enum": ["hybrid", "bm25", "dense"], "description": "Retrievers (default hybrid)"},
    });
    let mut ask_props = json!({
        "question": {"type": "string", "description": "A question the user's documents may answer"},
    });
    for props in [&mut search_props, &mut ask_props] {
        if let (Some(p), Some(f)) = (props.as_object_mut(), filters.as_object()) {
            p.extend(f.clone());
        }
    }
    let read_only = ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .open_world(false);
    vec![
        Tool::new(
            "search",
            "Search the user's indexed documents (hybrid BM25 + embeddings). Returns passages \
             with file path, page, heading path, character span and text.",
            schema(json!({"type": "object", "properties": search_props, "required": ["query"], "additionalProperties": false})),
        )
        .with_annotations(read_only.clone()),
        Tool::new(
            "ask",
            "Answer a question from the user's documents with a local language model. Every \
             citation is checked against the passage it names; when the documents do not say, \
             the answer says so (abstained = true).",
            schema(json!({"type": "object", "properties": ask_props, "required": ["question"], "additionalProperties": false})),
        )
        .with_annotations(read_only.clone()),
        Tool::new(
            "read",
            "Read an indexed file's extracted text: a PDF page, or the text around a passage \
             (give the passage's path, page and span from `search`). Without a span, the \
             beginning of the page or file.",
            schema(json!({"type": "object", "properties": {
                "path": {"type": "string", "description": "Absolute path of an indexed file, as `search` returns it"},
                "page": {"type": "integer", "minimum": 1, "description": "1-based page of a PDF"},
                "span": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2,
                         "description": "[start, end] character offsets of a passage in its page or file, as `search` returns them"},
                "context": {"type": "integer", "minimum": 0, "maximum": super::MAX_READ_CHARS,
                            "description": "Characters of context on each side of the span (default 1000)"},
            }, "required": ["path"], "additionalProperties": false})),
        )
        .with_annotations(read_only.clone()),
        Tool::new(
            "status",
            "What the index holds: folders, files, passages, models, whether indexing runs.",
            schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
        )
        .with_annotations(read_only),
    ]
}

fn tool_error(e: impl std::fmt::Display) -> CallToolResponse {
    CallToolResult::error(vec![ContentBlock::text(e.to_string())]).into()
}

/// A JSON object as both text (for clients that read only text) and structured content.
fn structured(v: Value) -> CallToolResponse {
    let mut r = CallToolResult::success(vec![ContentBlock::text(v.to_string())]);
    r.structured_content = Some(v);
    r.into()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
) -> Result<Result<T, ServeError>, McpError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| McpError::internal_error(format!("the request's worker failed: {e}"), None))
}

impl Mcp {
    async fn search(&self, args: JsonObject) -> Result<CallToolResponse, McpError> {
        let req: SearchRequest = match serde_json::from_value(Value::Object(args)) {
            Ok(r) => r,
            Err(e) => return Ok(tool_error(format!("bad arguments: {e}"))),
        };
        let svc = self.service.clone();
        let query = req.query.clone();
        Ok(match blocking(move || svc.search(&req)).await? {
            Ok(results) => structured(json!({"query": query, "results": results})),
            Err(e) => tool_error(crate::error_chain(&e)),
        })
    }

    async fn ask(&self, args: JsonObject) -> Result<CallToolResponse, McpError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct AskArgs {
            question: String,
            #[serde(default)]
            path: Option<String>,
            #[serde(default)]
            ext: Vec<String>,
        }
        let a: AskArgs = match serde_json::from_value(Value::Object(args)) {
            Ok(a) => a,
            Err(e) => return Ok(tool_error(format!("bad arguments: {e}"))),
        };
        let mut ticket =
            match self
                .service
                .ask(&a.question, Vec::new(), super::filter(a.path, a.ext), None)
            {
                Ok(t) => t,
                Err(e) => return Ok(tool_error(crate::error_chain(&e))),
            };
        while let Some(e) = ticket.events.recv().await {
            match e {
                AskEvent::Token(_) => {}
                AskEvent::Done(Ok(a)) => {
                    let text = format!("{}{}", a.answer, sources_text(&a));
                    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
                    r.structured_content = Some(json!({
                        "answer": a.answer,
                        "abstained": a.abstained,
                        "citations": a.citations,
                        "evidence": a.evidence,
                        "passages": a.passages,
                        "model_answer": a.model_answer,
                    }));
                    return Ok(r.into());
                }
                AskEvent::Done(Err(m)) => return Ok(tool_error(m)),
            }
        }
        Ok(tool_error(ServeError::Stopped))
    }
}

impl Mcp {
    async fn read(&self, args: JsonObject) -> Result<CallToolResponse, McpError> {
        let req: super::ReadRequest = match serde_json::from_value(Value::Object(args)) {
            Ok(r) => r,
            Err(e) => return Ok(tool_error(format!("bad arguments: {e}"))),
        };
        let svc = self.service.clone();
        Ok(match blocking(move || svc.read(&req)).await? {
            Ok(r) => structured(json!(r)),
            Err(e) => tool_error(crate::error_chain(&e)),
        })
    }
}

impl ServerHandler for Mcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("folio", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "folio searches and answers from the user's own indexed folders, offline. Use \
             `search` to find passages (cite their path and page), `ask` for an answer with \
             checked citations, and read a file or a PDF page through its resource.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let CallToolRequestParams {
            name, arguments, ..
        } = request;
        let args = arguments.unwrap_or_default();
        match &*name {
            "search" => self.search(args).await,
            "ask" => self.ask(args).await,
            "read" => self.read(args).await,
            "status" => {
                let svc = self.service.clone();
                let st = blocking(move || Ok(svc.status())).await?;
                Ok(match st {
                    Ok(st) => structured(json!(st)),
                    Err(e) => tool_error(e),
                })
            }
            other => Err(McpError::invalid_params(
                format!("no tool called {other:?}; folio has search, ask, read and status"),
                None,
            )),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let svc = self.service.clone();
        let files = blocking(move || Ok(svc.files())).await?.unwrap_or_default();
        let resources = files
            .into_iter()
            .map(|(path, kind, _)| {
                let name = path.rsplit('/').next().unwrap_or(&path).to_string();
                Resource::new(file_uri(&path, None), name)
                    .with_description(format!(
                        "{path} ({kind:?}), its extracted text; add #page=N for one page of a PDF"
                    ))
                    .with_mime_type("text/plain")
            })
            .collect();
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri;
        let Some((path, page)) = parse_file_uri(&uri) else {
            return Err(McpError::resource_not_found(
                format!("{uri} is not a file:// URI of an indexed file"),
                None,
            ));
        };
        let svc = self.service.clone();
        match blocking(move || svc.file_text(&path, page)).await? {
            Ok(text) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, uri).with_mime_type("text/plain"),
            ])
            .into()),
            Err(e @ ServeError::NotIndexed(_)) => {
                Err(McpError::resource_not_found(e.to_string(), None))
            }
            Err(e @ ServeError::BadRequest(_)) => {
                Err(McpError::invalid_params(e.to_string(), None))
            }
            Err(e) => Err(McpError::internal_error(crate::error_chain(&e), None)),
        }
    }
}
