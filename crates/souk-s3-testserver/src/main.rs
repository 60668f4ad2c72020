//! `souk-s3-testserver`: the S3 test server as a process, for tests that start several souk nodes.
//!
//! ```text
//! souk-s3-testserver --root DIR --listen 127.0.0.1:0 --access-key K --secret-key S --bucket souk
//! ```
//!
//! Its first line on stdout is its endpoint (`http://127.0.0.1:<port>`), printed once it accepts
//! connections; it serves until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use souk_s3_testserver::{TestS3Options, TestS3Server};

/// An S3-compatible server on a local folder (s3s-fs), for souk's tests.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The folder holding the buckets (created if missing).
    #[arg(long)]
    root: PathBuf,
    /// The address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The access key requests must be signed with.
    #[arg(long)]
    access_key: String,
    /// Its secret key.
    #[arg(long)]
    secret_key: String,
    /// A bucket to create at start (repeatable).
    #[arg(long = "bucket")]
    buckets: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let options = TestS3Options {
        root: args.root,
        listen: args.listen,
        access_key: args.access_key,
        secret_key: args.secret_key,
        buckets: args.buckets,
    };
    let server = match TestS3Server::start(options).await {
        Ok(server) => server,
        Err(message) => {
            eprintln!("souk-s3-testserver: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", server.endpoint()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    stopped().await;
    drop(server);
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stopped() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
