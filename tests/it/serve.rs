//! `folio serve`: the OpenAI-compatible HTTP API and MCP over stdio, driven as their clients
//! drive them (raw HTTP/1.1 over TCP; rmcp's own client over the real binary's stdio), over a
//! fixture folder indexed by the real binary.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{folio, folio_command, pdf_doc, save};

/// A folder with a contract (PDF) and notes (Markdown), indexed into `idx`.
fn indexed_fixture(tmp: &Path) -> (PathBuf, PathBuf) {
    let root = tmp.join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(
        root.join("falcon.md"),
        "# Project Falcon\n\n## Budget\n\nThe budget for Project Falcon is 1.2 million euros, approved in March.\n",
    )
    .unwrap();
    save(
        pdf_doc(&[
            &[
                "MASTER SERVICES AGREEMENT",
                "between Acme Corp and Globex Ltd.",
            ],
            &[
                "Termination.",
                "Either party may terminate this agreement",
                "with ninety days written notice.",
            ],
        ]),
        &root.join("contract.pdf"),
    );
    let idx = tmp.join("idx");
    let out = folio(
        tmp,
        &[
            "index",
            root.to_str().unwrap(),
            "--index",
            idx.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    (root, idx)
}

/// A running `folio serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(tmp: &Path, idx: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut args = vec!["serve", "--index", idx.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut cmd = folio_command(tmp, &args);
    cmd.stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut server = Server {
        child: cmd.spawn().unwrap(),
        addr: String::new(),
    };
    let mut err = BufReader::new(server.child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "serve ended before listening"
        );
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            server.addr = addr;
            return server;
        }
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn request(addr: &str, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading all of a large body and close.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).unwrap_or("0").parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply {
        status,
        headers: head.to_string(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn post(addr: &str, path: &str, body: &Value) -> Reply {
    request(
        addr,
        "POST",
        path,
        &["Content-Type: application/json"],
        body.to_string().as_bytes(),
    )
}

/// Opens a streamed chat completion and returns the reader positioned after the headers.
fn open_stream(addr: &str, body: &Value) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let body = body.to_string();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

/// The next `data:` payload of a server-sent event stream (chunked framing skipped).
fn next_event(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            return Some(data.to_string());
        }
    }
}

const QUESTION: &str = "How many days of notice does termination need?";

#[test]
fn the_http_api_speaks_openai_and_survives_bad_clients() {
    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let (root, idx) = indexed_fixture(&tmp);
    let server = serve(
        &tmp,
        &idx,
        &["--listen", "127.0.0.1:0"],
        &[("FOLIO_SERVE_QUEUE", "1")],
    );
    let addr = server.addr.as_str();

    let models = request(addr, "GET", "/v1/models", &[], b"");
    assert_eq!(models.status, 200, "{}", models.body);
    let ids: Vec<Value> = models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert!(ids.contains(&json!("folio")), "{ids:?}");

    // /search: the same passages as `folio search --json`, by GET and by POST.
    let s = request(addr, "GET", "/search?q=termination%20notice&k=3", &[], b"");
    assert_eq!(s.status, 200, "{}", s.body);
    let top = &s.json()["results"][0];
    assert!(
        top["path"].as_str().unwrap().ends_with("contract.pdf"),
        "{top}"
    );
    assert_eq!(top["page"], 2);
    let s = post(
        addr,
        "/search",
        &json!({"query": "budget", "ext": ["md"], "k": 2}),
    );
    assert_eq!(s.status, 200, "{}", s.body);
    let results = s.json()["results"].as_array().unwrap().clone();
    assert!(!results.is_empty());
    assert!(
        results
            .iter()
            .all(|p| p["path"].as_str().unwrap().ends_with(".md"))
    );

    // /v1/embeddings: the index's encoder, unit vectors.
    let e = post(
        addr,
        "/v1/embeddings",
        &json!({"input": ["notice period", "budget"]}),
    );
    assert_eq!(e.status, 200, "{}", e.body);
    let data = e.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 2);
    let v: Vec<f64> = data[1]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(v.len(), 384);
    assert!((v.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-3);

    // A chat completion: the answer text ends with its sources; citations ride along.
    let c = post(
        addr,
        "/v1/chat/completions",
        &json!({
            "model": "folio",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        }),
    );
    assert_eq!(c.status, 200, "{}", c.body);
    let c = c.json();
    let content = c["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content.contains("contract.pdf, page 2"), "{content}");
    assert!(c["citations"].is_array(), "{c}");
    assert_eq!(c["folio"]["question"], QUESTION);
    assert!(c["usage"]["total_tokens"].as_u64().is_some());

    // A follow-up carries the earlier turns; the answer is to the last user message.
    let f = post(
        addr,
        "/v1/chat/completions",
        &json!({"messages": [
            {"role": "user", "content": "What is the budget for Project Falcon?"},
            {"role": "assistant", "content": "1.2 million euros [1]."},
            {"role": "user", "content": "Who approved it, and when?"},
        ]}),
    );
    assert_eq!(f.status, 200, "{}", f.body);
    assert_eq!(f.json()["folio"]["question"], "Who approved it, and when?");

    // Streamed: a role chunk, content chunks, a last chunk with the citations, then [DONE].
    let mut r = open_stream(
        addr,
        &json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true}),
    );
    let mut events = Vec::new();
    while let Some(e) = next_event(&mut r) {
        let done = e == "[DONE]";
        events.push(e);
        if done {
            break;
        }
    }
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "{events:?}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(text.contains("contract.pdf, page 2"), "{text}");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop", "{last}");
    assert!(last["citations"].is_array(), "{last}");

    // Bad requests get OpenAI-shaped errors and leave the server serving.
    let bad = request(
        addr,
        "POST",
        "/v1/chat/completions",
        &["Content-Type: application/json"],
        b"{\"messages\": [",
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{}",
        bad.body
    );
    let unknown = post(
        addr,
        "/v1/chat/completions",
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["error"]["code"], "model_not_found");
    let empty = post(
        addr,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "assistant", "content": "hi"}]}),
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let big = vec![b'x'; 2 << 20];
    let too_big = request(
        addr,
        "POST",
        "/v1/embeddings",
        &["Content-Type: application/json"],
        &big,
    );
    assert_eq!(too_big.status, 413, "{}", too_big.body);
    assert_eq!(request(addr, "GET", "/nowhere", &[], b"").status, 404);
    let k = request(addr, "GET", "/search?q=x&k=0", &[], b"");
    assert_eq!(k.status, 400, "{}", k.body);

    // A client that goes away mid-stream stops its generation; the server keeps serving and
    // its one-question queue is free again.
    let mut r = open_stream(
        addr,
        &json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true, "max_tokens": 400}),
    );
    assert!(next_event(&mut r).is_some());
    drop(r);
    // The server notices the closed connection at its next token: on a loaded machine that
    // may come after the next request, which then finds the queue still full for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let again = loop {
        let again = post(
            addr,
            "/v1/chat/completions",
            &json!({"messages": [{"role": "user", "content": QUESTION}]}),
        );
        if again.status != 503 || std::time::Instant::now() > deadline {
            break again;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(again.status, 200, "{}", again.body);

    // While the model answers one question and one waits, a third is refused with 503.
    let mut first = open_stream(
        addr,
        &json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true, "max_tokens": 400}),
    );
    // The role chunk comes at once; a content chunk only once the model is on it.
    next_event(&mut first);
    let _token = next_event(&mut first);
    let _second = open_stream(
        addr,
        &json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true}),
    );
    let third = post(
        addr,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": QUESTION}]}),
    );
    assert_eq!(third.status, 503, "{}", third.body);
    assert!(
        third.headers.to_ascii_lowercase().contains("retry-after"),
        "{}",
        third.headers
    );
    drop(first);

    // It serves what another process indexes while it runs.
    fs::write(
        root.join("boiler.txt"),
        "Boiler\nThe boiler is serviced every October by Heatwise.\n",
    )
    .unwrap();
    let out = folio(&tmp, &["index", "--index", idx.to_str().unwrap()], None);
    assert!(out.status.success());
    let s = request(addr, "GET", "/search?q=Heatwise%20boiler&k=1", &[], b"");
    assert!(
        s.json()["results"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with("boiler.txt"),
        "{}",
        s.body
    );
}

#[test]
fn the_http_api_beyond_this_machine_needs_a_token() {
    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let (_, idx) = indexed_fixture(&tmp);
    let idx_s = idx.to_str().unwrap();
    let out = folio(
        &tmp,
        &["serve", "--index", idx_s, "--listen", "0.0.0.0:0"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("without a token"),
        "{out:?}"
    );

    let server = serve(
        &tmp,
        &idx,
        &["--listen", "127.0.0.1:0"],
        &[("FOLIO_SERVE_TOKEN", "s3cret")],
    );
    let addr = server.addr.as_str();
    assert_eq!(request(addr, "GET", "/status", &[], b"").status, 401);
    assert_eq!(
        request(
            addr,
            "GET",
            "/status",
            &["Authorization: Bearer wrong"],
            b""
        )
        .status,
        401
    );
    let ok = request(
        addr,
        "GET",
        "/status",
        &["Authorization: Bearer s3cret"],
        b"",
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["files"], 2);
}

/// A real MCP session: rmcp's client launches `folio serve --mcp` as an MCP client does and
/// lists and calls its tools and reads its resources.
#[test]
fn mcp_clients_search_ask_and_read_files() {
    use rmcp::ServiceExt;
    use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams, ResourceContents};

    let t = tempfile::tempdir().unwrap();
    let tmp = fs::canonicalize(t.path()).unwrap();
    let (root, idx) = indexed_fixture(&tmp);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let std_cmd = folio_command(&tmp, &["serve", "--mcp", "--index", idx.to_str().unwrap()]);
        let mut cmd = tokio::process::Command::from(std_cmd);
        cmd.stderr(Stdio::null()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let (out, inp) = (child.stdout.take().unwrap(), child.stdin.take().unwrap());
        let client = ().serve((out, inp)).await.unwrap();
        let info = client.peer_info().unwrap();
        assert_eq!(info.server_info.as_ref().unwrap().name, "folio");

        let tools = client.list_all_tools().await.unwrap();
        let names: Vec<&str> = tools.iter().map(|t| &*t.name).collect();
        assert_eq!(names, ["search", "ask", "read", "status"]);

        let call = |name: &'static str, args: Value| {
            let mut p = CallToolRequestParams::new(name);
            if let Value::Object(m) = args {
                p = p.with_arguments(m);
            }
            client.call_tool(p)
        };
        let r = call("search", json!({"query": "termination notice", "k": 2}))
            .await
            .unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let found = r.structured_content.clone().unwrap();
        let top = &found["results"][0];
        assert!(
            top["path"].as_str().unwrap().ends_with("contract.pdf"),
            "{found}"
        );
        assert_eq!(top["page"], 2);
        // `read` quotes the passage in its context: the span `search` gave, on its page.
        let r = call(
            "read",
            json!({"path": top["path"], "page": top["page"], "span": top["span"], "context": 20}),
        )
        .await
        .unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let read = r.structured_content.clone().unwrap();
        assert!(
            read["text"]
                .as_str()
                .unwrap()
                .contains("ninety days written notice"),
            "{read}"
        );
        assert_eq!(read["page"], 2, "{read}");
        let span = top["span"].as_array().unwrap();
        assert_eq!(
            read["start"].as_u64().unwrap(),
            span[0].as_u64().unwrap().saturating_sub(20)
        );
        for bad in [
            json!({"path": "/etc/passwd"}),
            json!({"path": top["path"], "page": 9}),
            json!({"path": top["path"], "page": 2, "span": [5, 100000]}),
            json!({"path": root.join("falcon.md"), "page": 1}),
        ] {
            let r = call("read", bad.clone()).await.unwrap();
            assert_eq!(r.is_error, Some(true), "{bad}: {r:?}");
        }

        let r = call("search", json!({"query": ""})).await.unwrap();
        assert_eq!(
            r.is_error,
            Some(true),
            "an empty query is the tool's error: {r:?}"
        );
        let r = call("search", json!({"query": "x", "limit": 3}))
            .await
            .unwrap();
        assert_eq!(r.is_error, Some(true), "unknown arguments are named: {r:?}");

        let r = call("ask", json!({"question": QUESTION})).await.unwrap();
        assert_ne!(r.is_error, Some(true), "{r:?}");
        let a = r.structured_content.clone().unwrap();
        assert!(
            a["citations"].is_array() && a["abstained"].is_boolean(),
            "{a}"
        );
        let text = r.content[0].as_text().unwrap().text.clone();
        assert!(text.contains("contract.pdf, page 2"), "{text}");
        // The same evidence, citations and abstention as `folio ask --json`.
        let out = folio(
            &tmp,
            &["ask", QUESTION, "--json", "--index", idx.to_str().unwrap()],
            None,
        );
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        for field in ["evidence", "abstained", "answer", "citations"] {
            assert_eq!(
                as_f32(&a[field]),
                as_f32(&cli[field]),
                "{field}: MCP {a} CLI {cli}"
            );
        }
        let r = call("ask", json!({"question": "Who won the 1998 World Cup?"}))
            .await
            .unwrap();
        assert_eq!(r.structured_content.unwrap()["abstained"], true);

        let st = call("status", json!({})).await.unwrap();
        assert_eq!(st.structured_content.unwrap()["files"], 2);
        assert!(
            client
                .call_tool(CallToolRequestParams::new("delete_everything"))
                .await
                .is_err()
        );

        let resources = client.list_all_resources().await.unwrap();
        assert_eq!(resources.len(), 2, "{resources:?}");
        let pdf = resources
            .iter()
            .find(|r| r.uri.ends_with("contract.pdf"))
            .unwrap();
        let page = client
            .read_resource(ReadResourceRequestParams::new(format!(
                "{}#page=2",
                pdf.uri
            )))
            .await
            .unwrap();
        match &page.contents[0] {
            ResourceContents::TextResourceContents { text, .. } => {
                assert!(text.contains("ninety days written notice"), "{text}");
                assert!(!text.contains("MASTER SERVICES"), "one page only: {text}");
            }
            other => panic!("{other:?}"),
        }
        let outside = format!("file://{}/falcon.md.bak", root.display());
        assert!(
            client
                .read_resource(ReadResourceRequestParams::new(outside))
                .await
                .is_err()
        );
        assert!(
            client
                .read_resource(ReadResourceRequestParams::new("file:///etc/passwd"))
                .await
                .is_err()
        );
        client.cancel().await.unwrap();
        child.wait().await.unwrap();
    });
}

/// `v` with every number as the f32 it was: the CLI prints scores as f32, a JSON value built
/// in the server carries them as f64.
fn as_f32(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().map(|f| f as f32)),
        Value::Array(a) => Value::Array(a.iter().map(as_f32).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), as_f32(v))).collect()),
        other => other.clone(),
    }
}
