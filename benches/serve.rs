//! `folio serve` as its clients meet it: search round trips over HTTP and over MCP, and the
//! time to the first streamed token of a chat completion against `folio ask` on the same
//! questions, over the SciFact index.
//!
//! Run with `./dev bench serve` (= `cargo bench --profile dev --bench serve`). Options:
//! `--data DIR` (default `../shared/data/scifact`), `--index DIR` (default
//! `$CARGO_TARGET_DIR/serve-bench-index`, built with `folio eval` when missing), `--queries N`
//! (search round trips per protocol, default 300: the test split's queries), `--questions N`
//! (chat questions, default 9, train queries).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use folio::eval::Beir;
use folio::fsutil::percentile;
use serde_json::{Value, json};

struct Args {
    data: PathBuf,
    index: PathBuf,
    queries: usize,
    questions: usize,
}

fn folio_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_folio"))
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!("serve: run with `./dev bench serve`");
        return None;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let mut a = Args {
        data: PathBuf::from("../shared/data/scifact"),
        index: target.join("serve-bench-index"),
        queries: 300,
        questions: 9,
    };
    let mut it = argv.iter().skip(1);
    while let Some(x) = it.next() {
        let mut num = |d: usize| it.next().and_then(|v| v.parse().ok()).unwrap_or(d);
        match x.as_str() {
            "--data" => a.data = PathBuf::from(it.next().cloned().unwrap_or_default()),
            "--index" => a.index = PathBuf::from(it.next().cloned().unwrap_or_default()),
            "--queries" => a.queries = num(a.queries),
            "--questions" => a.questions = num(a.questions),
            _ => {}
        }
    }
    Some(a)
}

/// The queries of a split that have judgements, in id order.
fn queries(data: &Path, split: &str) -> Vec<String> {
    let beir = Beir::load(data, split).expect("SciFact");
    let mut ids: Vec<&String> = beir.qrels.keys().collect();
    ids.sort();
    ids.iter()
        .filter_map(|id| beir.queries.get(*id).cloned())
        .collect()
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_http(index: &Path) -> Server {
    let mut server = Server(
        Command::new(folio_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--index"])
            .arg(index)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("folio serve"),
        String::new(),
    );
    let mut err = BufReader::new(server.0.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(err.read_line(&mut line).expect("stderr") > 0, "serve ended");
        if let Some(rest) = line.split("listening on http://").nth(1) {
            let addr = rest.split(':').take(2).collect::<Vec<_>>().join(":");
            std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
            server.1 = addr;
            return server;
        }
    }
}

fn url_escape(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn summary(name: &str, v: &[f64]) -> Value {
    let r = json!({"n": v.len(), "p50_ms": percentile(v, 50.0), "p95_ms": percentile(v, 95.0),
                   "max_ms": v.iter().cloned().fold(0.0, f64::max)});
    println!(
        "{name}: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms ({} requests)",
        r["p50_ms"].as_f64().unwrap_or(0.0),
        r["p95_ms"].as_f64().unwrap_or(0.0),
        r["max_ms"].as_f64().unwrap_or(0.0),
        v.len()
    );
    r
}

/// Time to the first content delta of a streamed chat completion, and the server's own
/// figure for it (from the answer in the last chunk).
fn stream_ttft(addr: &str, question: &str) -> (f64, f64) {
    let body = json!({"model": "folio", "stream": true,
                      "messages": [{"role": "user", "content": question}]})
    .to_string();
    let t0 = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(300))).ok();
    write!(
        s,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut r = BufReader::new(s);
    let mut first = None;
    let mut server_ms = f64::NAN;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let Some(data) = line.trim_end().strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        let content = v["choices"][0]["delta"]["content"].as_str().unwrap_or("");
        if first.is_none() && !content.is_empty() {
            first = Some(ms(t0));
        }
        if let Some(t) = v["folio"]["timings"]["first_token_ms"].as_f64() {
            server_ms = t;
        }
    }
    (first.unwrap_or(f64::NAN), server_ms)
}

fn main() {
    let Some(a) = parse_args() else { return };
    if !a.index.join("folio-index.json").exists() {
        eprintln!(
            "building the SciFact index in {} (folio eval)...",
            a.index.display()
        );
        let st = Command::new(folio_bin())
            .arg("eval")
            .arg(&a.data)
            .args(["--split", "test", "--modes", "bm25", "--index"])
            .arg(&a.index)
            .status()
            .expect("folio eval");
        assert!(st.success(), "folio eval failed");
    }
    let test_queries: Vec<String> = queries(&a.data, "test")
        .into_iter()
        .take(a.queries)
        .collect();
    let questions: Vec<String> = queries(&a.data, "train")
        .into_iter()
        .take(a.questions)
        .collect();
    let mut report = serde_json::Map::new();

    // HTTP: one connection per request, as a script's curl makes them.
    let server = start_http(&a.index);
    let addr = server.1.clone();
    get(&addr, "/search?q=warm%20up&k=10");
    let mut http = Vec::new();
    for q in &test_queries {
        let t = Instant::now();
        let r = get(&addr, &format!("/search?q={}&k=10", url_escape(q)));
        http.push(ms(t));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    report.insert("http_search".into(), summary("HTTP /search (k=10)", &http));

    // Time to first token: streamed over HTTP (the server's model warm after the first
    // question) against `folio ask --json` on the same questions.
    stream_ttft(&addr, "warm up the model");
    let mut http_ttft = Vec::new();
    let mut server_ttft = Vec::new();
    for q in &questions {
        let (client, server) = stream_ttft(&addr, q);
        if client.is_finite() {
            http_ttft.push(client);
        }
        if server.is_finite() {
            server_ttft.push(server);
        }
    }
    drop(server);
    report.insert(
        "http_first_token".into(),
        summary("HTTP stream, first content (client)", &http_ttft),
    );
    report.insert(
        "http_first_token_server".into(),
        summary("HTTP stream, first token (server's timings)", &server_ttft),
    );
    let mut cli_ttft = Vec::new();
    let mut cli_wall = Vec::new();
    for q in &questions {
        let t = Instant::now();
        let out = Command::new(folio_bin())
            .args(["ask", "--json", "--index"])
            .arg(&a.index)
            .arg(q)
            .output()
            .expect("folio ask");
        cli_wall.push(ms(t));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(t) = v["timings"]["first_token_ms"].as_f64()
            && v["timings"]["generated_tokens"].as_u64().unwrap_or(0) > 0
        {
            cli_ttft.push(t);
        }
    }
    report.insert(
        "ask_first_token".into(),
        summary("folio ask, first token (its timings)", &cli_ttft),
    );
    report.insert(
        "ask_wall".into(),
        summary("folio ask, whole process", &cli_wall),
    );

    // MCP: one session, rmcp's client, the `search` tool.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mcp = rt.block_on(async {
        use rmcp::ServiceExt;
        use rmcp::model::CallToolRequestParams;
        let mut child = tokio::process::Command::new(folio_bin())
            .args(["serve", "--mcp", "--index"])
            .arg(&a.index)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("folio serve --mcp");
        let (out, inp) = (
            child.stdout.take().expect("stdout"),
            child.stdin.take().expect("stdin"),
        );
        let client = ().serve((out, inp)).await.expect("MCP handshake");
        let call = |q: &str| {
            let args = json!({"query": q, "k": 10});
            let args = args.as_object().cloned().unwrap_or_default();
            client.call_tool(CallToolRequestParams::new("search").with_arguments(args))
        };
        call("warm up").await.expect("search");
        let mut times = Vec::new();
        for q in &test_queries {
            let t = Instant::now();
            let r = call(q).await.expect("search");
            times.push(ms(t));
            assert_ne!(r.is_error, Some(true));
        }
        let _ = client.cancel().await;
        times
    });
    report.insert("mcp_search".into(), summary("MCP search tool (k=10)", &mcp));
    println!("{}", Value::Object(report));
}
