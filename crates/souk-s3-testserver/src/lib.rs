//! An S3-compatible server on a local folder, for souk's tests: `s3s` speaks the S3 protocol
//! (SigV4 signatures checked against one access key), `s3s-fs` keeps buckets as folders and objects
//! as files (a put is written to a temporary file and renamed, multipart uploads included).
//!
//! Tests start it in-process on a loopback port with [`TestS3Server::start`]; cluster tests start the
//! `souk-s3-testserver` binary (`src/main.rs`) as a process and point several souk nodes at it.
//! It is a test fixture, not a storage backend: nothing in souk depends on it outside tests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// What to start.
#[derive(Debug, Clone)]
pub struct TestS3Options {
    /// The folder holding the buckets (created if missing).
    pub root: PathBuf,
    /// The address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The one access key requests must be signed with.
    pub access_key: String,
    /// Its secret key.
    pub secret_key: String,
    /// Buckets created at start (kept if they exist).
    pub buckets: Vec<String>,
}

impl TestS3Options {
    /// A loopback server on a free port under `root` with one bucket.
    pub fn loopback(root: impl Into<PathBuf>, access_key: &str, secret_key: &str, bucket: &str) -> Self {
        TestS3Options {
            root: root.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            buckets: vec![bucket.to_owned()],
        }
    }
}

/// A running server; dropping it stops it (its connections included).
#[derive(Debug)]
pub struct TestS3Server {
    addr: SocketAddr,
    root: PathBuf,
    task: JoinHandle<()>,
}

impl TestS3Server {
    /// Creates the root and the buckets, binds, and serves in a spawned task.
    pub async fn start(options: TestS3Options) -> Result<TestS3Server, String> {
        if options.access_key.is_empty() || options.secret_key.is_empty() {
            return Err("the access key and the secret key must not be empty".to_owned());
        }
        std::fs::create_dir_all(&options.root).map_err(|err| format!("cannot create {}: {err}", options.root.display()))?;
        for bucket in &options.buckets {
            create_bucket(&options.root, bucket)?;
        }
        let fs = s3s_fs::FileSystem::new(&options.root).map_err(|err| format!("cannot open {}: {err:?}", options.root.display()))?;
        let service = {
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(options.access_key.clone(), options.secret_key.clone()));
            builder.build()
        };
        let listener = TcpListener::bind(options.listen)
            .await
            .map_err(|err| format!("cannot listen on {}: {err}", options.listen))?;
        let addr = listener.local_addr().map_err(|err| format!("no local address: {err}"))?;
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            // Connections live in this set, so stopping the accept loop stops them too.
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let connection = http.serve_connection(TokioIo::new(socket), service.clone()).into_owned();
                        connections.spawn(async move {
                            let _ = connection.await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(TestS3Server {
            addr,
            root: options.root,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its endpoint URL, as `http://127.0.0.1:<port>` (path-style requests, plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The folder holding the buckets.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for TestS3Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates `bucket` under `root` (an existing one is kept): in s3s-fs a bucket is a folder.
pub fn create_bucket(root: &Path, bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'))
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !valid {
        return Err(format!(
            "invalid bucket name {bucket:?}: 3 to 63 lowercase letters, digits, '-' or '.', starting and ending with a letter or digit"
        ));
    }
    let path = root.join(bucket);
    std::fs::create_dir_all(&path).map_err(|err| format!("cannot create bucket folder {}: {err}", path.display()))
}
