//! The binary as cluster tests use it: started as a process, it prints its endpoint first, creates
//! its buckets, answers S3 requests, and refuses bad arguments with a message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_souk-s3-testserver");

#[test]
fn prints_its_endpoint_and_serves_the_buckets_it_was_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(["--root", dir.path().join("s3").to_str().unwrap()])
        .args(["--access-key", "k", "--secret-key", "s", "--bucket", "souk-a", "--bucket", "souk-b"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let endpoint = line.trim().to_owned();
    let addr = endpoint.strip_prefix("http://127.0.0.1:").map(|port| format!("127.0.0.1:{port}"));
    let result = std::panic::catch_unwind(|| {
        let addr = addr.expect("the first line is the endpoint");
        assert!(dir.path().join("s3/souk-a").is_dir() && dir.path().join("s3/souk-b").is_dir());
        // An unsigned request is refused in S3's way: the server speaks S3 and checks signatures.
        let mut socket = TcpStream::connect(&addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(socket, "GET /souk-a/x HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
        assert!(answer.contains("AccessDenied") || answer.contains("<Code>"), "{answer}");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
}

#[test]
fn a_bad_bucket_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--root", dir.path().to_str().unwrap()])
        .args(["--access-key", "k", "--secret-key", "s", "--bucket", "Bad_Name"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid bucket name \"Bad_Name\""), "{stderr}");
}
