//! The processes under test: finding the release binaries, starting the example provider and
//! `souk serve`, waiting until they answer, and killing them whatever happens (a guard with `Drop`).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;

use crate::load::HttpClient;

/// How long a child may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The binaries the bench runs, found next to its own executable.
#[derive(Debug)]
pub struct Binaries {
    /// `souk`.
    pub souk: PathBuf,
    /// `souk-example-provider`.
    pub provider: PathBuf,
}

/// Finds the binaries next to the bench, or says how to build them.
pub fn locate_binaries() -> Result<Binaries, String> {
    let exe = std::env::current_exe().map_err(|err| format!("cannot find my own executable: {err}"))?;
    let dir = exe.parent().ok_or("my executable has no directory")?;
    let binaries = Binaries {
        souk: dir.join(format!("souk{}", std::env::consts::EXE_SUFFIX)),
        provider: dir.join(format!("souk-example-provider{}", std::env::consts::EXE_SUFFIX)),
    };
    let missing: Vec<String> = [&binaries.souk, &binaries.provider]
        .into_iter()
        .filter(|path| !path.is_file())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok(binaries);
    }
    let release = if cfg!(debug_assertions) { "" } else { " --release" };
    Err(format!(
        "missing {}; build them first with:\n    cargo build{release} -p souk -p souk-example-provider",
        missing.join(" and ")
    ))
}

/// The children started so far; dropping it kills them (on success, error, panic or Ctrl-C).
#[derive(Debug, Default)]
pub struct Children {
    running: Vec<(&'static str, Child)>,
}

impl Children {
    fn push(&mut self, name: &'static str, child: Child) -> &mut Child {
        self.running.push((name, child));
        &mut self.running.last_mut().expect("just pushed").1
    }

    /// Fails if a child has already exited (it crashed or could not start).
    pub fn check_alive(&mut self) -> Result<(), String> {
        for (name, child) in &mut self.running {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{name} exited early ({status})"));
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the example provider on a free port with `secret`; returns the address it printed.
pub async fn start_provider(children: &mut Children, binary: &Path, secret: &str, log: &Path) -> Result<SocketAddr, String> {
    let log = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let child = Command::new(binary)
        .args(["--listen", "127.0.0.1:0"])
        .env("SOUK_PROVIDER_SECRET", secret)
        .env_remove("SOUK_PROVIDER_LISTEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
    let child = children.push("souk-example-provider", child);
    let stdout = child.stdout.take().ok_or("the provider's stdout is not piped")?;
    // The first line names the bound port; reading it blocks, so it happens off the runtime.
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    });
    let line = tokio::time::timeout(START_TIMEOUT, first_line)
        .await
        .map_err(|_| "the provider printed nothing in 30 s".to_owned())?
        .map_err(|err| format!("reading the provider's output failed: {err}"))?
        .map_err(|err| format!("cannot read the provider's output: {err}"))?;
    line.trim()
        .strip_prefix("souk-example-provider listening on http://")
        .and_then(|address| address.parse().ok())
        .ok_or_else(|| format!("unexpected first line from the provider: {line:?}"))
}

/// Starts `souk serve` on a free port with a fresh data dir and `admin_token` (and the given database
/// instead of the embedded SQLite); waits for `/healthz`.
pub async fn start_souk(
    children: &mut Children,
    client: &HttpClient,
    binary: &Path,
    data_dir: &Path,
    admin_token: &str,
    database_url: Option<&str>,
    log: &Path,
) -> Result<SocketAddr, String> {
    let address = free_port()?;
    let log_file = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let log_copy = log_file
        .try_clone()
        .map_err(|err| format!("cannot share {}: {err}", log.display()))?;
    let mut command = Command::new(binary);
    command.env_remove("SOUK_DATABASE_URL");
    if let Some(url) = database_url {
        command.env("SOUK_DATABASE_URL", url);
    }
    let child = command
        .arg("serve")
        .args(["--listen", &address.to_string()])
        .arg("--data-dir")
        .arg(data_dir)
        .env("SOUK_ADMIN_TOKEN", admin_token)
        .env_remove("SOUK_CONFIG")
        .env_remove("SOUK_REDIS_URL")
        .env_remove("SOUK_BLOB_URL")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_copy)
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
    children.push("souk", child);
    wait_healthy(children, client, address)
        .await
        .map_err(|err| format!("{err}\n{}", log_tail(log)))?;
    Ok(address)
}

/// An address on loopback that nothing listens on right now.
fn free_port() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| format!("cannot find a free port: {err}"))?;
    listener.local_addr().map_err(|err| format!("cannot find a free port: {err}"))
}

async fn wait_healthy(children: &mut Children, client: &HttpClient, address: SocketAddr) -> Result<(), String> {
    let uri: hyper::Uri = format!("http://{address}/healthz").parse().map_err(|err| format!("{err}"))?;
    let started = Instant::now();
    loop {
        children.check_alive()?;
        let request = hyper::Request::get(uri.clone())
            .body(Full::new(Bytes::new()))
            .map_err(|err| err.to_string())?;
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), client.request(request)).await {
            if response.status() == hyper::StatusCode::OK {
                return Ok(());
            }
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "souk did not answer GET /healthz with 200 within {} s",
                START_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The last lines of a child's log, to show with an error.
pub fn log_tail(path: &Path) -> String {
    const LINES: usize = 20;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LINES)..].join("\n");
    format!("--- last lines of {} ---\n{tail}", path.display())
}
