//! `folio serve`: the index and the model for other programs, over HTTP (OpenAI-compatible,
//! on this machine unless told otherwise) or MCP on stdin/stdout.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;

use folio::answer::prompt::Prompts;
use folio::config::{Dirs, Settings};
use folio::serve::{Service, http, mcp};

use super::{note, prompts_dir};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Speak MCP on stdin/stdout, as an MCP client that launches folio expects, instead of HTTP.
    #[arg(long)]
    pub mcp: bool,
    /// The address for HTTP (default: serve.listen, 127.0.0.1:8484; port 0 picks a free
    /// one). An address beyond this machine must be given here, and needs serve.token
    /// (FOLIO_SERVE_TOKEN), which clients then send as `Authorization: Bearer TOKEN`.
    #[arg(long, value_name = "ADDR", conflicts_with = "mcp")]
    pub listen: Option<String>,
}

pub(super) fn run(dirs: &Dirs, s: &Settings, a: ServeArgs) -> Result<ExitCode> {
    let token = (!s.serve_token.is_empty()).then(|| s.serve_token.clone());
    let listen = a.listen.clone().unwrap_or_else(|| s.serve_listen.clone());
    let addr: SocketAddr = listen
        .to_socket_addrs()
        .with_context(|| format!("listen address {listen:?}"))?
        .next()
        .with_context(|| format!("listen address {listen:?} names no address"))?;
    if !a.mcp && !http::is_loopback(&addr) {
        if a.listen.is_none() {
            bail!(
                "serve.listen = {listen:?} reaches beyond this machine; give it with --listen to mean it"
            );
        }
        if token.is_none() {
            bail!(
                "refusing to listen on {addr} without a token: anyone who reaches it could read your documents; set serve.token (or FOLIO_SERVE_TOKEN)"
            );
        }
    }
    let prompts = Prompts::load(prompts_dir(dirs, s).as_deref())?;
    let service = Arc::new(Service::open(s.clone(), prompts)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    if a.mcp {
        rt.block_on(mcp::serve_stdio(service))?;
        return Ok(ExitCode::SUCCESS);
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    note(&format!(
        "listening on http://{local}: /v1/chat/completions, /v1/models, /v1/embeddings, /search, /status{}",
        if token.is_some() {
            " (bearer token required)"
        } else {
            ""
        }
    ));
    rt.block_on(http::serve(listener, http::router(service, token)))?;
    Ok(ExitCode::SUCCESS)
}
