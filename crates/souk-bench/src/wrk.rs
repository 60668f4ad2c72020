//! Driving `wrk` (the Debian package): a generated Lua script per scenario, one run per call, and the
//! result the script's `done()` prints as one JSON line.
//!
//! The script checks every answer (a success marker in the body, HTTP 200), counts successes per
//! thread, and ends the run itself after `seconds`. For a souk target a thread then sends only
//! `GET /healthz` on each connection until every scenario request it sent has its answer, and only
//! then stops, so no charged call is cut off in flight (a call cut off would hold its units reserved
//! until housekeeping, and exact charging could not be checked). Other targets keep no state: a
//! thread stops at its first answer past the window, not counting it.
//! Throughput is the scenario's successes and failures divided by the script's own measured window
//! (monotonic clock through LuaJIT's FFI), not wrk's wall time, which includes the drain and the
//! grace period. Latency is wrk's histogram, which also holds the drain's `/healthz` answers: the
//! drain lasts only until the last call in flight is answered (a few milliseconds), so they are a
//! few hundred of tens of thousands. A drain still running when wrk stops (it never ended within
//! [`GRACE_SECS`]) is reported as unanswered requests, a failure of the run.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::procs::Pinning;

/// The prefix of the line the script prints in `done()`.
const RESULT_PREFIX: &str = "SOUK_BENCH_RESULT ";
/// Extra seconds wrk runs past the measured window, for the drain.
pub const GRACE_SECS: u64 = 2;

/// One request body: sent whole, or with a unique id between two halves (`client_msg_id`).
#[derive(Debug, Clone)]
pub enum Body {
    /// No body (a GET).
    None,
    /// The same bytes every time.
    Fixed(String),
    /// `before` + a unique id + `after`.
    WithId {
        /// Up to the id.
        before: String,
        /// After the id.
        after: String,
    },
}

/// What one scenario sends.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server.
    pub host: SocketAddr,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The requests: a path (with its query) and a body each, sent in turn.
    pub requests: Vec<(String, Body)>,
    /// A success answer contains this.
    pub marker: String,
    /// A souk target: drain with `GET /healthz` instead of cutting requests off.
    pub drain: bool,
    /// Makes the unique ids unique across runs.
    pub tag: String,
}

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario answers that were successes.
    pub ok: u64,
    /// Scenario answers that were not.
    pub bad: u64,
    /// The first bad answer, cut short.
    #[serde(default)]
    pub first_bad: String,
    /// The measured window in seconds (first request to last scenario answer).
    pub seconds: f64,
    /// Median latency in microseconds (wrk's histogram).
    pub p50_us: f64,
    /// 99th percentile latency in microseconds.
    pub p99_us: f64,
    /// wrk's socket errors: connect, read, write, timeout.
    pub socket_errors: u64,
    /// Scenario requests of a draining target still without an answer when wrk stopped: the drain
    /// did not finish within [`GRACE_SECS`] (its `/healthz` answers, which wrk's histogram also
    /// counts, then ran on for the rest of the grace period).
    #[serde(default)]
    pub unanswered: u64,
}

impl RunResult {
    /// Failed answers, socket errors and requests left unanswered.
    pub fn failures(&self) -> u64 {
        self.bad + self.socket_errors + self.unanswered
    }

    /// What to quote of the failures: the first bad answer, else the requests left unanswered.
    pub fn first_failure(&self) -> Option<String> {
        if !self.first_bad.is_empty() {
            return Some(self.first_bad.clone());
        }
        (self.unanswered > 0).then(|| {
            format!(
                "{} request(s) still unanswered {GRACE_SECS} s after the run (the drain did not finish)",
                self.unanswered
            )
        })
    }

    /// Answers per second in the measured window.
    pub fn requests_per_second(&self) -> f64 {
        (self.ok + self.bad) as f64 / self.seconds.max(f64::MIN_POSITIVE)
    }
}

/// A Lua string literal (long brackets cannot hold everything; escapes can).
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for byte in text.bytes() {
        match byte {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte}")),
        }
    }
    out.push('"');
    out
}

/// The Lua script of `plan`, measuring `seconds`.
pub fn script(plan: &Plan, seconds: u64) -> String {
    let paths: Vec<String> = plan.requests.iter().map(|(path, _)| lua_string(path)).collect();
    let bodies: Vec<String> = plan
        .requests
        .iter()
        .map(|(_, body)| match body {
            Body::None => "{}".to_owned(),
            Body::Fixed(text) => format!("{{{}}}", lua_string(text)),
            Body::WithId { before, after } => format!("{{{}, {}}}", lua_string(before), lua_string(after)),
        })
        .collect();
    let headers = if plan.method == "POST" {
        r#"{["Content-Type"] = "application/json"}"#
    } else {
        "{}"
    };
    format!(
        r#"-- Generated by souk-bench for one wrk run.
local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} souk_bench_timespec;
int clock_gettime(int clk_id, souk_bench_timespec *tp);
]]
local ts = ffi.new("souk_bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local METHOD = {method}
local HEADERS = {headers}
local PATHS = {{{paths}}}
local BODIES = {{{bodies}}}
local MARKER = {marker}
local DRAIN = {drain}
local SECONDS = {seconds}
local TAG = {tag}
local HEALTH = '"status":"ok"'

local threads = {{}}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

function init(args)
  t0 = now()
  last = t0
  k = 0
  -- wrk calls request() once more on its first thread, before any connection, to check the
  -- request's syntax (script_verify_request), and never sends that one: not counted as sent.
  sent = thread_id == 1 and -1 or 0
  answered = 0
  ok = 0
  bad = 0
  first_bad = ""
  draining = false
end

function request()
  if DRAIN and not draining and now() - t0 >= SECONDS then
    draining = true
  end
  if draining then
    return wrk.format("GET", "/healthz")
  end
  local i = k % #PATHS + 1
  k = k + 1
  sent = sent + 1
  local b = BODIES[i]
  local body = nil
  if b[2] ~= nil then
    body = b[1] .. TAG .. "-" .. thread_id .. "-" .. k .. b[2]
  elseif b[1] ~= nil then
    body = b[1]
  end
  return wrk.format(METHOD, PATHS[i], HEADERS, body)
end

function response(status, headers, body)
  if not DRAIN and now() - t0 >= SECONDS then
    -- Past the window: nothing to drain (the target keeps no state), answers are not counted.
    wrk.thread:stop()
    return
  end
  if draining and status == 200 and string.find(body, HEALTH, 1, true) then
    if answered >= sent then
      wrk.thread:stop()
    end
    return
  end
  answered = answered + 1
  last = now()
  if status == 200 and string.find(body, MARKER, 1, true) then
    ok = ok + 1
  else
    bad = bad + 1
    if first_bad == "" then
      first_bad = "HTTP " .. status .. ": " .. string.sub(body or "", 1, 200)
    end
  end
  if draining and answered >= sent then
    wrk.thread:stop()
  end
end

local function json_string(text)
  return '"' .. string.gsub(text, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end) .. '"'
end

function done(summary, latency, requests)
  local total_ok, total_bad, first, start, finish, unanswered = 0, 0, "", nil, nil, 0
  for _, thread in ipairs(threads) do
    total_ok = total_ok + thread:get("ok")
    total_bad = total_bad + thread:get("bad")
    if DRAIN then
      unanswered = unanswered + math.max(0, thread:get("sent") - thread:get("answered"))
    end
    if first == "" then first = thread:get("first_bad") end
    local t0, last = thread:get("t0"), thread:get("last")
    if start == nil or t0 < start then start = t0 end
    if finish == nil or last > finish then finish = last end
  end
  local e = summary.errors
  io.write(string.format(
    '{rp}{{"ok":%d,"bad":%d,"first_bad":%s,"seconds":%.6f,"p50_us":%.1f,"p99_us":%.1f,"socket_errors":%d,"unanswered":%d}}\n',
    total_ok, total_bad, json_string(first), finish - start,
    latency:percentile(50), latency:percentile(99), e.connect + e.read + e.write + e.timeout, unanswered))
end
"#,
        method = lua_string(plan.method),
        paths = paths.join(", "),
        bodies = bodies.join(", "),
        marker = lua_string(&plan.marker),
        drain = plan.drain,
        tag = lua_string(&plan.tag),
        rp = RESULT_PREFIX,
    )
}

/// Finds the result line in wrk's output.
pub fn parse_output(stdout: &str) -> Result<RunResult, String> {
    let line = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix(RESULT_PREFIX))
        .ok_or_else(|| format!("wrk printed no result line; its output:\n{stdout}"))?;
    serde_json::from_str(line).map_err(|err| format!("wrk's result line is not valid ({err}): {line}"))
}

/// The shape of one wrk invocation.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// wrk threads.
    pub threads: u32,
    /// Open connections (the concurrency).
    pub connections: u32,
}

/// Runs wrk once with the script at `script_path` (blocking: call it off the runtime).
pub fn run(wrk: &Path, pinning: &Pinning, script_path: &Path, host: SocketAddr, shape: Shape, seconds: u64) -> Result<RunResult, String> {
    let mut command: Command = pinning.client_command(wrk);
    command
        .arg("-t")
        .arg(shape.threads.min(shape.connections).to_string())
        .arg("-c")
        .arg(shape.connections.to_string())
        .arg("-d")
        .arg(format!("{}s", seconds + GRACE_SECS))
        .args(["--timeout", "30s", "-s"])
        .arg(script_path)
        .arg(format!("http://{host}"));
    let output = command.output().map_err(|err| format!("cannot run {}: {err}", wrk.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            stdout,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse_output(&stdout)
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_none() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.5]), 7.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_result_line_is_found_among_wrks_output() {
        let stdout = "Running 12s test @ http://127.0.0.1:1234\n  1 threads and 32 connections\n  \
            Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            SOUK_BENCH_RESULT {\"ok\":1000,\"bad\":2,\"first_bad\":\"HTTP 200: {\\u0022errcode\\u0022:45009}\",\
            \"seconds\":10.020000,\"p50_us\":812.0,\"p99_us\":2051.5,\"socket_errors\":0}\n\
            Requests/sec: 99.9\n";
        let result = parse_output(stdout).unwrap();
        assert_eq!(result.ok, 1000);
        assert_eq!(result.bad, 2);
        assert_eq!(result.first_bad, "HTTP 200: {\"errcode\":45009}");
        assert_eq!(result.p50_us, 812.0);
        assert_eq!(result.p99_us, 2051.5);
        assert_eq!(result.unanswered, 0, "an older script's line has no unanswered count");
        assert_eq!(result.failures(), 2);
        assert_eq!(result.first_failure().as_deref(), Some("HTTP 200: {\"errcode\":45009}"));
        assert!((result.requests_per_second() - 1002.0 / 10.02).abs() < 1e-9);
        assert!(parse_output("Running 1s test\n").is_err());
        assert!(parse_output("SOUK_BENCH_RESULT {\"ok\":1}\n").is_err());
    }

    #[test]
    fn lua_strings_escape_quotes_backslashes_and_bytes() {
        assert_eq!(lua_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_string("é\n"), "\"\\195\\169\\10\"");
    }

    #[test]
    fn the_script_names_every_path_and_body() {
        let plan = Plan {
            host: "127.0.0.1:1".parse().unwrap(),
            method: "POST",
            requests: vec![
                ("/a?x=1".into(), Body::Fixed("{}".into())),
                (
                    "/b".into(),
                    Body::WithId {
                        before: r#"{"id":""#.into(),
                        after: r#""}"#.into(),
                    },
                ),
            ],
            marker: r#""errcode":0,"#.into(),
            drain: true,
            tag: "t1".into(),
        };
        let text = script(&plan, 7);
        assert!(text.contains(r#"local PATHS = {"/a?x=1", "/b"}"#), "{text}");
        assert!(text.contains(r#"local BODIES = {{"{}"}, {"{\"id\":\"", "\"}"}}"#), "{text}");
        assert!(text.contains("local SECONDS = 7\n"));
        assert!(text.contains("local DRAIN = true\n"));
        assert!(text.contains(r#"local MARKER = "\"errcode\":0,""#));
    }
}

/// The generated script run by the real wrk against a server that holds each scenario request a
/// while: the drain ends when the last one is answered, not when wrk's grace period runs out.
#[cfg(test)]
mod drain_tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// How long the server holds a scenario request, so that some are in flight when the window ends.
    const HOLD: Duration = Duration::from_millis(30);

    #[derive(Default)]
    struct Counts {
        scenario: AtomicU64,
        health: AtomicU64,
    }

    /// Answers one keep-alive connection: `/healthz` at once, anything else after [`HOLD`].
    fn serve(stream: TcpStream, counts: &Counts) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut writer = stream;
        loop {
            let mut request_line = String::new();
            if reader.read_line(&mut request_line)? == 0 {
                return Ok(());
            }
            let mut length = 0usize;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header)?;
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            let answer = if request_line.starts_with("GET /healthz ") {
                counts.health.fetch_add(1, Ordering::Relaxed);
                r#"{"status":"ok"}"#
            } else {
                std::thread::sleep(HOLD);
                counts.scenario.fetch_add(1, Ordering::Relaxed);
                r#"{"errcode":0,"errmsg":"ok"}"#
            };
            write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            )?;
        }
    }

    #[test]
    fn a_draining_run_stops_at_its_last_answer_and_counts_every_request() {
        let Some(wrk) = crate::procs::which("wrk") else {
            assert!(
                std::env::var_os("SOUK_TEST_REQUIRE_WRK").is_none(),
                "SOUK_TEST_REQUIRE_WRK is set but wrk is not installed (apt-get install wrk)"
            );
            eprintln!("skipped: wrk is not installed (apt-get install wrk)");
            return;
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap();
        let counts = Arc::new(Counts::default());
        {
            let counts = counts.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let counts = counts.clone();
                    std::thread::spawn(move || serve(stream, &counts));
                }
            });
        }
        let plan = Plan {
            host,
            method: "POST",
            requests: vec![(
                "/wxa/servicemarket".to_owned(),
                Body::WithId {
                    before: r#"{"client_msg_id":""#.to_owned(),
                    after: r#""}"#.to_owned(),
                },
            )],
            marker: r#""errcode":0,"#.to_owned(),
            drain: true,
            tag: "t".to_owned(),
        };
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("scenario.lua");
        std::fs::write(&script_path, script(&plan, 1)).unwrap();
        let shape = Shape {
            threads: 1,
            connections: 8,
        };
        let result = run(&wrk, &Pinning::none(), &script_path, host, shape, 1).unwrap();

        assert_eq!(result.unanswered, 0, "{result:?}");
        assert_eq!(result.bad, 0, "{result:?}");
        assert!(result.ok > 0, "{result:?}");
        assert_eq!(
            result.ok,
            counts.scenario.load(Ordering::Relaxed),
            "every scenario request the server answered was counted, no more"
        );
        // The drain spans one hold (30 ms) of /healthz on the other connections, not the rest of
        // the 2 s grace period (which, on loopback, is hundreds of thousands of answers).
        let health = counts.health.load(Ordering::Relaxed);
        assert!(health < 20_000, "the drain ran on: {health} /healthz answers");
        // The latency histogram is the scenario's (each held 30 ms), not the drain's.
        assert!(result.p50_us >= HOLD.as_micros() as f64, "{result:?}");
    }
}
