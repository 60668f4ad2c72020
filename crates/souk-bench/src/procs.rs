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

/// The children started so far; dropping it stops them (on success, error, panic or Ctrl-C).
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

impl Children {
    /// Freezes the child `pid` (SIGSTOP) until [`Children::thaw`]; it takes no CPU meanwhile.
    pub fn freeze(&self, pid: u32) -> Result<(), String> {
        self.signal(pid, "-STOP")
    }

    /// Lets a frozen child `pid` run again (SIGCONT; nothing for one that runs).
    pub fn thaw(&self, pid: u32) -> Result<(), String> {
        self.signal(pid, "-CONT")
    }

    fn signal(&self, pid: u32, signal: &str) -> Result<(), String> {
        let (name, _) = self
            .running
            .iter()
            .find(|(_, child)| child.id() == pid)
            .ok_or_else(|| format!("no child with pid {pid}"))?;
        let sent = Command::new("kill").args([signal, &pid.to_string()]).status();
        match sent {
            Ok(status) if status.success() => Ok(()),
            Ok(status) => Err(format!("kill {signal} {name} (pid {pid}) failed: {status}")),
            Err(err) => Err(format!("cannot run kill {signal} for {name}: {err}")),
        }
    }

    /// Asks the child `pid` to stop with SIGTERM (souk writes out its call log, callgrind its
    /// counts) and waits up to `timeout` for it, killing it then.
    pub async fn terminate(&mut self, pid: u32, timeout: Duration) -> Result<(), String> {
        let index = self
            .running
            .iter()
            .position(|(_, child)| child.id() == pid)
            .ok_or_else(|| format!("no child with pid {pid}"))?;
        let (name, mut child) = self.running.remove(index);
        let sent = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        if !matches!(sent, Ok(status) if status.success()) {
            let _ = child.kill();
        }
        // A frozen child acts on SIGTERM only once it runs again.
        let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).status();
        let started = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if started.elapsed() < timeout => tokio::time::sleep(Duration::from_millis(50)).await,
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{name} did not stop within {} s of SIGTERM", timeout.as_secs()));
                }
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // SIGTERM first: nginx's master then stops its worker (a SIGKILL would leave the worker
        // running), souk writes out its call log. Whatever is still running after 5 s is killed.
        for (_, child) in &mut self.running {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            // A frozen child (the alternating runs) acts on SIGTERM only once it runs again.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (_, child) in &mut self.running {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the example provider on a free port with `secret` (on the client core); returns the
/// address it printed.
pub async fn start_provider(
    children: &mut Children,
    pinning: &Pinning,
    binary: &Path,
    secret: &str,
    log: &Path,
) -> Result<SocketAddr, String> {
    let log = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let child = pinning
        .client_command(binary)
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

/// How to start one `souk serve`.
#[derive(Debug)]
pub struct SoukLaunch<'a> {
    /// The `souk` binary.
    pub binary: &'a Path,
    /// A fresh data dir.
    pub data_dir: &'a Path,
    /// The admin token to set.
    pub admin_token: &'a str,
    /// PostgreSQL instead of the embedded SQLite.
    pub database_url: Option<&'a str>,
    /// Redis for rate limits, the response cache and signals (a cluster node).
    pub redis_url: Option<&'a str>,
    /// Where stdout and stderr go.
    pub log: &'a Path,
    /// Run it under `valgrind --tool=callgrind`, writing this file (not pinned then).
    pub callgrind_out: Option<&'a Path>,
}

/// Starts `souk serve` on a free port (on the server core) and waits for `/healthz`; returns its
/// address and process id.
pub async fn start_souk(
    children: &mut Children,
    client: &HttpClient,
    pinning: &Pinning,
    launch: &SoukLaunch<'_>,
) -> Result<(SocketAddr, u32), String> {
    let address = free_port()?;
    let log = launch.log;
    let log_file = File::create(log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let log_copy = log_file
        .try_clone()
        .map_err(|err| format!("cannot share {}: {err}", log.display()))?;
    let mut command = match launch.callgrind_out {
        Some(out) => {
            let mut command = Command::new("valgrind");
            command
                .args(["--tool=callgrind", "--quiet"])
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(launch.binary);
            command
        }
        None => pinning.server_command(launch.binary),
    };
    command.env_remove("SOUK_DATABASE_URL");
    if let Some(url) = launch.database_url {
        command.env("SOUK_DATABASE_URL", url);
    }
    command.env_remove("SOUK_REDIS_URL");
    if let Some(url) = launch.redis_url {
        command.env("SOUK_REDIS_URL", url);
    }
    let child = command
        .arg("serve")
        .args(["--listen", &address.to_string()])
        .arg("--data-dir")
        .arg(launch.data_dir)
        .env("SOUK_ADMIN_TOKEN", launch.admin_token)
        // The cloud gateway scenario's upstream is on loopback.
        .env("SOUK_FETCH_ALLOW_PRIVATE", "true")
        .env("RUST_LOG", "warn")
        .env_remove("SOUK_CONFIG")
        .env_remove("SOUK_BLOB_URL")
        .env_remove("SOUK_BLOBS_URL")
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_copy)
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", launch.binary.display()))?;
    let pid = child.id();
    children.push("souk", child);
    let timeout = if launch.callgrind_out.is_some() {
        START_TIMEOUT * 10
    } else {
        START_TIMEOUT
    };
    wait_healthy(children, client, address, timeout)
        .await
        .map_err(|err| format!("{err}\n{}", log_tail(log)))?;
    Ok((address, pid))
}

/// Starts nginx (one worker, no access log, everything in `dir`) as a plain reverse proxy to
/// `upstream`, on the server core; waits until it answers.
pub async fn start_nginx(
    children: &mut Children,
    client: &HttpClient,
    pinning: &Pinning,
    binary: &Path,
    dir: &Path,
    upstream: SocketAddr,
) -> Result<SocketAddr, String> {
    let address = free_port()?;
    std::fs::create_dir_all(dir.join("logs")).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
    let config = dir.join("nginx.conf");
    std::fs::write(&config, nginx_config(dir, address, upstream, running_as_root()))
        .map_err(|err| format!("cannot write {}: {err}", config.display()))?;
    let log = dir.join("logs").join("stderr.log");
    let log_file = File::create(&log).map_err(|err| format!("cannot create {}: {err}", log.display()))?;
    let child = pinning
        .server_command(binary)
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&config)
        .arg("-e")
        .arg(dir.join("logs").join("error.log"))
        .args(["-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
    children.push("nginx", child);
    let started = Instant::now();
    loop {
        children
            .check_alive()
            .map_err(|err| format!("{err}\n{}\n{}", log_tail(&log), log_tail(&dir.join("logs").join("error.log"))))?;
        // The provider answers a GET with 405: enough to show nginx reaches it.
        let uri: hyper::Uri = format!("http://{address}/ready").parse().map_err(|err| format!("{err}"))?;
        let request = hyper::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .map_err(|err| err.to_string())?;
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), client.request(request)).await {
            if response.status() == hyper::StatusCode::METHOD_NOT_ALLOWED {
                return Ok(address);
            }
        }
        if started.elapsed() > START_TIMEOUT {
            return Err(format!(
                "nginx did not proxy to the provider within {} s\n{}",
                START_TIMEOUT.as_secs(),
                log_tail(&dir.join("logs").join("error.log"))
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// nginx's configuration: a plain `proxy_pass` to an `upstream` block with `keepalive 32` (souk
/// also keeps its connections to providers, so both sides are compared with pooled upstream
/// connections; HTTP/1.1 and an empty `Connection` header are what nginx needs to keep them).
pub fn nginx_config(dir: &Path, listen: SocketAddr, upstream: SocketAddr, as_root: bool) -> String {
    let dir = dir.display();
    let user = if as_root { "user root;\n" } else { "" };
    format!(
        "# Generated by souk-bench.
{user}worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/logs/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream provider {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// An address on loopback that nothing listens on right now.
fn free_port() -> Result<SocketAddr, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|err| format!("cannot find a free port: {err}"))?;
    listener.local_addr().map_err(|err| format!("cannot find a free port: {err}"))
}

async fn wait_healthy(children: &mut Children, client: &HttpClient, address: SocketAddr, timeout: Duration) -> Result<(), String> {
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
        if started.elapsed() > timeout {
            return Err(format!("souk did not answer GET /healthz with 200 within {} s", timeout.as_secs()));
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

/// Where the processes run: with `taskset` on two cores, the server under test (souk or nginx) on
/// one, the load generator, the provider and the bench itself on the other.
#[derive(Debug, Clone)]
pub struct Pinning {
    /// `taskset`, when pinning.
    taskset: Option<PathBuf>,
    /// The server's core.
    pub server_cpu: usize,
    /// The clients' core.
    pub client_cpu: usize,
}

impl Pinning {
    /// No pinning.
    pub fn none() -> Self {
        Pinning {
            taskset: None,
            server_cpu: 0,
            client_cpu: 0,
        }
    }

    /// Pinning with `taskset` on the first two cores this process may use; the bench's own threads
    /// move to the client core now (threads started later inherit it).
    pub fn with_taskset(taskset: PathBuf) -> Result<Self, String> {
        let cpus = allowed_cpus().ok_or("cannot read the allowed cores from /proc/self/status")?;
        if cpus.len() < 2 {
            return Err(format!("only {} core(s) allowed", cpus.len()));
        }
        let pinning = Pinning {
            taskset: Some(taskset),
            server_cpu: cpus[1],
            client_cpu: cpus[0],
        };
        let status = Command::new(pinning.taskset.as_ref().expect("just set"))
            .args(["-a", "-p", "-c", &pinning.client_cpu.to_string(), &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status()
            .map_err(|err| format!("cannot run taskset: {err}"))?;
        if !status.success() {
            return Err(format!("taskset could not pin the bench ({status})"));
        }
        Ok(pinning)
    }

    /// Whether processes are pinned.
    pub fn pinned(&self) -> bool {
        self.taskset.is_some()
    }

    /// A sentence for people.
    pub fn describe(&self) -> String {
        if self.pinned() {
            format!(
                "pinned with taskset: souk / nginx on core {}; wrk, the provider and the bench on core {}",
                self.server_cpu, self.client_cpu
            )
        } else {
            "not pinned: every process shares every core".to_owned()
        }
    }

    fn command(&self, cpu: usize, program: &Path) -> Command {
        match &self.taskset {
            Some(taskset) => {
                let mut command = Command::new(taskset);
                command.arg("-c").arg(cpu.to_string()).arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// `program` on the server core.
    pub fn server_command(&self, program: &Path) -> Command {
        self.command(self.server_cpu, program)
    }

    /// `program` on the client core.
    pub fn client_command(&self, program: &Path) -> Command {
        self.command(self.client_cpu, program)
    }
}

/// The cores this process may run on (`Cpus_allowed_list`).
fn allowed_cpus() -> Option<Vec<usize>> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status.lines().find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list.trim())
}

/// Parses a list such as `0-2,5`.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.trim().parse::<usize>().ok()?..=last.trim().parse::<usize>().ok()?),
            None => cpus.push(part.trim().parse().ok()?),
        }
    }
    Some(cpus)
}

/// Finds `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Memory {
    /// `VmRSS`, KiB.
    pub rss_kib: u64,
    /// `VmHWM` (the peak), KiB.
    pub hwm_kib: u64,
}

/// Reads the memory of `pid`.
pub fn memory(pid: u32) -> Option<Memory> {
    parse_memory(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Parses `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_memory(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    let rss_kib = field("VmRSS:")?;
    // The kernel updates the peak lazily: it can lag the current size.
    Some(Memory {
        rss_kib,
        hwm_kib: field("VmHWM:")?.max(rss_kib),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state letter of `/proc/<pid>/stat` (after the command's closing parenthesis).
    fn process_state(pid: u32) -> char {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        after.trim_start().chars().next().unwrap()
    }

    /// Waits up to 5 s for the child to be in `state`.
    async fn wait_for_state(pid: u32, state: char) -> char {
        for _ in 0..100 {
            if process_state(pid) == state {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process_state(pid)
    }

    #[tokio::test]
    async fn a_frozen_child_stops_until_thawed_and_still_terminates() {
        let mut children = Children::default();
        let pid = children.push("sleep", Command::new("sleep").arg("30").spawn().unwrap()).id();
        children.freeze(pid).unwrap();
        assert_eq!(wait_for_state(pid, 'T').await, 'T', "SIGSTOP freezes it");
        children.thaw(pid).unwrap();
        assert_eq!(wait_for_state(pid, 'S').await, 'S', "SIGCONT lets it run (sleeping in sleep(1))");
        children.freeze(pid).unwrap();
        assert_eq!(wait_for_state(pid, 'T').await, 'T');
        // A frozen child still stops at SIGTERM, well before `sleep 30` would end.
        let started = Instant::now();
        children.terminate(pid, Duration::from_secs(10)).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        assert!(children.freeze(pid).unwrap_err().contains("no child"), "it is no longer a child");
    }

    #[test]
    fn memory_comes_from_proc_status() {
        let status = "Name:\tsouk\nVmPeak:\t  900000 kB\nVmHWM:\t   41236 kB\nVmRSS:\t   40100 kB\nThreads:\t4\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss_kib: 40100,
                hwm_kib: 41236
            })
        );
        assert_eq!(parse_memory("Name:\tx\n"), None);
        let lagging = parse_memory("VmHWM:\t 100 kB\nVmRSS:\t 120 kB\n").unwrap();
        assert_eq!(lagging.hwm_kib, 120);
        assert!(memory(std::process::id()).is_some());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn nginx_keeps_everything_in_its_dir() {
        let config = nginx_config(
            Path::new("/tmp/b"),
            "127.0.0.1:81".parse().unwrap(),
            "127.0.0.1:82".parse().unwrap(),
            false,
        );
        assert!(config.contains("pid /tmp/b/nginx.pid;"));
        assert!(config.contains("server 127.0.0.1:82;\n        keepalive 32;"));
        assert!(config.contains("listen 127.0.0.1:81;"));
        assert!(config.contains("access_log off;"));
        assert!(config.contains("proxy_set_header Connection \"\";"));
        assert!(!config.contains("user "));
    }
}
