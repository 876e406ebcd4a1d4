//! The HTTP side of `folio serve`: an OpenAI-compatible API (`/v1/chat/completions`, streamed
//! or not, `/v1/models`, `/v1/embeddings`) and folio's own `/search` and `/status`, over one
//! [`Service`]. Chat answers carry their checked citations in an extra `citations` field and
//! the whole answer in `folio`; the text a chat client shows ends with the sources.
//!
//! Errors are OpenAI-shaped JSON (`{"error": {"message", "type", "code"}}`) with the fitting
//! status: 400 malformed request, 401 missing token, 404 unknown model or route, 413 body over
//! [`MAX_BODY`], 503 queue full (with `Retry-After`). Blocking work (search, embedding) runs
//! on tokio's blocking threads; generation on the service's own thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AskEvent, SearchRequest, ServeError, Service, Ticket, sources_text};
use crate::answer::{Answer, Turn};

/// The largest request body accepted.
pub const MAX_BODY: usize = 1 << 20;

/// Texts one `/v1/embeddings` request may carry.
const MAX_EMBED_INPUTS: usize = 2048;

struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<&'static str>,
}

impl ApiError {
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            code: None,
        }
    }

    fn unknown_model(model: &str, known: &[String]) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "the model {model:?} does not exist here; use {}",
                known.join(" or ")
            ),
            kind: "invalid_request_error",
            code: Some("model_not_found"),
        }
    }
}

impl From<ServeError> for ApiError {
    fn from(e: ServeError) -> ApiError {
        let (status, kind, code) = match &e {
            ServeError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", None),
            ServeError::NotIndexed(_) => (StatusCode::NOT_FOUND, "invalid_request_error", None),
            ServeError::Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                Some("queue_full"),
            ),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error", None),
        };
        ApiError {
            status,
            message: crate::error_chain(&e),
            kind,
            code,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"message": self.message, "type": self.kind, "code": self.code}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        r
    }
}

/// A request body as JSON, with the body's own failures (too large, cut off) and malformed
/// JSON told apart.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| ApiError {
        status: r.status(),
        message: r.body_text(),
        kind: "invalid_request_error",
        code: None,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServeError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the request's worker failed: {e}"),
            kind: "server_error",
            code: None,
        })?
        .map_err(ApiError::from)
}

/// The API's routes over `service`; with a `token`, every request must carry it as a bearer
/// token.
pub fn router(service: Arc<Service>, token: Option<String>) -> Router {
    let app = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/search", get(search_get).post(search_post))
        .route("/v1/search", get(search_get).post(search_post))
        .route("/status", get(status))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: "no such route; folio serves /v1/chat/completions, /v1/models, \
                          /v1/embeddings, /v1/search (or /search) and /status"
                    .into(),
                kind: "invalid_request_error",
                code: None,
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(service);
    match token {
        Some(t) => app.layer(middleware::from_fn(move |req: Request, next: Next| {
            let expected = format!("Bearer {t}");
            async move {
                let given = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok());
                if given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes())) {
                    next.run(req).await
                } else {
                    ApiError {
                        status: StatusCode::UNAUTHORIZED,
                        message: "missing or wrong bearer token (Authorization: Bearer ...)".into(),
                        kind: "invalid_request_error",
                        code: Some("invalid_api_key"),
                    }
                    .into_response()
                }
            }
        })),
        None => app,
    }
}

/// Compares without stopping at the first difference, so timing does not tell a guesser how
/// much of the token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Serves `router` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(listener, router).await
}

/// Whether `addr` reaches only this machine.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

async fn models(State(svc): State<Arc<Service>>) -> axum::Json<Value> {
    let model =
        |id: String| json!({"id": id, "object": "model", "created": 0, "owned_by": "folio"});
    axum::Json(json!({
        "object": "list",
        "data": [model(svc.model_name().to_string()), model(svc.embed_model_name())],
    }))
}

async fn status(State(svc): State<Arc<Service>>) -> Result<axum::Json<Value>, ApiError> {
    let st = blocking(move || Ok(svc.status())).await?;
    Ok(axum::Json(json!(st)))
}

async fn search_post(
    State(svc): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let req: SearchRequest = json_body(body)?;
    search(svc, req).await
}

async fn search_get(
    State(svc): State<Arc<Service>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<axum::Json<Value>, ApiError> {
    let known = ["q", "query", "k", "ext", "path", "mode"];
    if let Some(k) = q.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::bad(format!(
            "unknown parameter {k:?}; /search takes {}",
            known.join(", ")
        )));
    }
    let req = SearchRequest {
        query: q.get("q").or(q.get("query")).cloned().unwrap_or_default(),
        k: q.get("k")
            .map(|k| k.parse().map_err(|_| ApiError::bad("k must be a number")))
            .transpose()?,
        path: q.get("path").cloned(),
        ext: q
            .get("ext")
            .map(|e| e.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        mode: q
            .get("mode")
            .map(|m| {
                serde_json::from_value(Value::String(m.clone()))
                    .map_err(|_| ApiError::bad("mode must be hybrid, bm25 or dense"))
            })
            .transpose()?,
    };
    search(svc, req).await
}

async fn search(svc: Arc<Service>, req: SearchRequest) -> Result<axum::Json<Value>, ApiError> {
    let query = req.query.clone();
    let results = blocking(move || svc.search(&req)).await?;
    Ok(axum::Json(json!({"query": query, "results": results})))
}

#[derive(Deserialize)]
struct EmbeddingsRequest {
    input: EmbedInput,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    user: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EmbedInput {
    One(String),
    Many(Vec<String>),
}

async fn embeddings(
    State(svc): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, ApiError> {
    let req: EmbeddingsRequest = json_body(body)?;
    let name = svc.embed_model_name();
    if let Some(m) = req.model.as_deref().filter(|m| !m.is_empty() && *m != name) {
        return Err(ApiError::unknown_model(m, &[name]));
    }
    if req.encoding_format.as_deref().is_some_and(|f| f != "float") {
        return Err(ApiError::bad("only encoding_format \"float\" is supported"));
    }
    let texts = match req.input {
        EmbedInput::One(t) => vec![t],
        EmbedInput::Many(t) => t,
    };
    if texts.is_empty() || texts.len() > MAX_EMBED_INPUTS {
        return Err(ApiError::bad(format!(
            "input must hold 1 to {MAX_EMBED_INPUTS} texts"
        )));
    }
    let (vectors, tokens) = blocking(move || svc.embed(&texts)).await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    max_completion_tokens: Option<usize>,
    /// folio's own options: restrict retrieval to files.
    #[serde(default)]
    folio: Option<ChatFilter>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ChatFilter {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    ext: Vec<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    role: String,
    #[serde(default)]
    content: Option<MessageContent>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl MessageContent {
    fn text(&self) -> String {
        match self {
            MessageContent::Text(t) => t.clone(),
            MessageContent::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// The last user message (the question) and the turns before it: each user message with
/// the assistant's reply that follows it. System messages are folio's own business.
fn conversation(messages: &[ChatMessage]) -> (Vec<Turn>, String) {
    let text = |m: &ChatMessage| {
        m.content
            .as_ref()
            .map(MessageContent::text)
            .unwrap_or_default()
    };
    let Some(last) = messages.iter().rposition(|m| m.role == "user") else {
        return (Vec::new(), String::new());
    };
    let mut turns: Vec<Turn> = Vec::new();
    for m in &messages[..last] {
        match m.role.as_str() {
            "user" => turns.push(Turn {
                question: text(m),
                answer: String::new(),
            }),
            "assistant" => {
                if let Some(t) = turns.last_mut().filter(|t| t.answer.is_empty()) {
                    t.answer = text(m);
                }
            }
            _ => {}
        }
    }
    turns.retain(|t| !t.question.trim().is_empty() && !t.answer.trim().is_empty());
    (turns, text(&messages[last]))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn chat(
    State(svc): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let req: ChatRequest = json_body(body)?;
    let name = svc.model_name();
    if let Some(m) = req.model.as_deref().filter(|m| !m.is_empty() && *m != name) {
        return Err(ApiError::unknown_model(m, &[name.to_string()]));
    }
    let (conversation, question) = conversation(&req.messages);
    if question.trim().is_empty() {
        return Err(ApiError::bad("no user message with text to answer"));
    }
    let f = req.folio.unwrap_or_default();
    let max_tokens = req.max_completion_tokens.or(req.max_tokens);
    let ticket = svc.ask(
        &question,
        conversation,
        super::filter(f.path, f.ext),
        max_tokens,
    )?;
    let id = format!("chatcmpl-folio-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    if req.stream {
        let stream = chat_stream(ticket, id, name);
        return Ok(Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let answer = wait(ticket).await?;
    let content = format!("{}{}", answer.answer, sources_text(&answer));
    Ok(axum::Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason(&answer),
        }],
        "usage": usage(&answer),
        "citations": answer.citations,
        "folio": answer,
    }))
    .into_response())
}

/// The answer at the end of a ticket's events.
async fn wait(mut ticket: Ticket) -> Result<Box<Answer>, ApiError> {
    while let Some(e) = ticket.events.recv().await {
        if let AskEvent::Done(r) = e {
            return r.map_err(|m| ApiError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: m,
                kind: "server_error",
                code: None,
            });
        }
    }
    Err(ServeError::Stopped.into())
}

fn finish_reason(a: &Answer) -> &'static str {
    match a.stop {
        Some(crate::llm::StopReason::MaxTokens) => "length",
        _ => "stop",
    }
}

fn usage(a: &Answer) -> Value {
    let (p, c) = (a.timings.prompt_tokens, a.timings.generated_tokens);
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// What a chat client is shown after the streamed tokens: the checked answer when it is not
/// what was streamed (folio abstained, or the evidence leads), then the sources.
fn stream_footer(streamed: &str, a: &Answer) -> String {
    let sources = sources_text(a);
    if streamed.trim().is_empty() {
        format!("{}{sources}", a.answer)
    } else if streamed.trim() != a.answer.trim() {
        format!("\n\nChecked against the passages: {}{sources}", a.answer)
    } else {
        sources
    }
}

/// Server-sent events in OpenAI's `chat.completion.chunk` shape: the role, each generated
/// piece, the footer, a last chunk with the finish reason and the citations, then `[DONE]`.
/// Dropping the stream (the client went away) drops the ticket, which stops the generation.
fn chat_stream(
    ticket: Ticket,
    id: String,
    model: &'static str,
) -> impl Stream<Item = Result<SseEvent, std::convert::Infallible>> {
    enum Phase {
        Start,
        Tokens,
        Finished,
    }
    let created = unix_now();
    let chunk = move |id: &str, delta: Value, finish: Option<&str>| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let state = (ticket, Phase::Start, String::new(), id);
    futures::stream::unfold(state, move |(mut ticket, phase, mut streamed, id)| async move {
        let data = |v: Value| -> Result<SseEvent, std::convert::Infallible> {
            Ok(SseEvent::default().data(v.to_string()))
        };
        match phase {
            Phase::Start => {
                let first = chunk(&id, json!({"role": "assistant", "content": ""}), None);
                Some((vec![data(first)], (ticket, Phase::Tokens, streamed, id)))
            }
            Phase::Finished => None,
            Phase::Tokens => match ticket.events.recv().await {
                Some(AskEvent::Token(t)) => {
                    streamed.push_str(&t);
                    let c = chunk(&id, json!({"content": t}), None);
                    Some((vec![data(c)], (ticket, Phase::Tokens, streamed, id)))
                }
                Some(AskEvent::Done(Ok(a))) => {
                    let mut events = Vec::new();
                    let footer = stream_footer(&streamed, &a);
                    if !footer.is_empty() {
                        events.push(data(chunk(&id, json!({"content": footer}), None)));
                    }
                    let mut last = chunk(&id, json!({}), Some(finish_reason(&a)));
                    last["citations"] = json!(a.citations);
                    last["usage"] = usage(&a);
                    last["folio"] = json!(a);
                    events.push(data(last));
                    events.push(Ok(SseEvent::default().data("[DONE]")));
                    Some((events, (ticket, Phase::Finished, streamed, id)))
                }
                Some(AskEvent::Done(Err(m))) => {
                    let err = json!({"error": {"message": m, "type": "server_error", "code": null}});
                    let events = vec![data(err), Ok(SseEvent::default().data("[DONE]"))];
                    Some((events, (ticket, Phase::Finished, streamed, id)))
                }
                None => {
                    let m = ServeError::Stopped.to_string();
                    let err = json!({"error": {"message": m, "type": "server_error", "code": null}});
                    let events = vec![data(err), Ok(SseEvent::default().data("[DONE]"))];
                    Some((events, (ticket, Phase::Finished, streamed, id)))
                }
            },
        }
    })
    .flat_map(futures::stream::iter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: Value) -> ChatMessage {
        serde_json::from_value(json!({"role": role, "content": content})).unwrap()
    }

    #[test]
    fn the_last_user_message_is_the_question_and_earlier_pairs_the_conversation() {
        let messages = [
            msg("system", json!("Be brief.")),
            msg("user", json!("Who services the boiler?")),
            msg("assistant", json!("Heatwise [1].")),
            msg("user", json!("Unanswered question")),
            msg(
                "user",
                json!([{"type": "text", "text": "When do"}, {"type": "image_url"}, {"type": "text", "text": "they come?"}]),
            ),
            msg(
                "assistant",
                json!("(a reply after the question is not part of it)"),
            ),
        ];
        let (turns, q) = conversation(&messages);
        assert_eq!(q, "When do\nthey come?");
        assert_eq!(
            turns,
            [Turn {
                question: "Who services the boiler?".into(),
                answer: "Heatwise [1].".into()
            }]
        );
        let (turns, q) = conversation(&[msg("assistant", json!("hello"))]);
        assert!(turns.is_empty() && q.is_empty());
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"Bearer ab", b"Bearer ab"));
        assert!(!constant_time_eq(b"Bearer ab", b"Bearer ac"));
        assert!(!constant_time_eq(b"Bearer a", b"Bearer ab"));
    }
}
