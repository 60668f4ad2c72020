//! `souk migrate` and `souk serve --no-migrate` on the real binary: without migrations `serve` refuses
//! an unmigrated database and says to run `souk migrate`; after it, `serve --no-migrate` starts.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SOUK: &str = env!("CARGO_BIN_EXE_souk");

#[test]
fn serve_no_migrate_needs_souk_migrate_first() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let refused = Command::new(SOUK)
        .args(["serve", "--no-migrate", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("SOUK_ADMIN_TOKEN", "migrate-test-admin-token-0123456")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("run `souk migrate` first"), "{stderr}");

    let misused = Command::new(SOUK)
        .args(["migrate", "--no-migrate", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!misused.status.success());
    assert!(String::from_utf8_lossy(&misused.stderr).contains("--no-migrate is for `souk serve`"));

    let migrated = Command::new(SOUK).args(["migrate", "--data-dir"]).arg(&data_dir).output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("database migrated (sqlite)"));

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(SOUK)
        .args(["serve", "--no-migrate", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data_dir)
        .env("SOUK_ADMIN_TOKEN", "migrate-test-admin-token-0123456")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let healthy = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(healthy, "serve --no-migrate did not start on a migrated database");
}
