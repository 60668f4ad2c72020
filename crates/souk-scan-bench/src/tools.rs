//! The three readers run over the corpus: souk's scanner in-process, `zbarimg` once a file (as a
//! user would call it), and zxing-cpp from a Python script written into the corpus folder. Each
//! answers the texts it found per image and the time spent; a missing peer answers how to install it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::corpus::Entry;

/// What one reader did over the corpus.
pub enum Outcome {
    /// Not on this machine; the command that installs it.
    Missing(&'static str),
    /// Ran: the texts found in each image (in manifest order) and the seconds it took.
    Ran {
        /// Texts found, per image.
        found: Vec<Vec<String>>,
        /// Wall time over the whole corpus.
        seconds: f64,
    },
}

/// A reader's name and outcome.
pub struct Run {
    /// `souk`, `zbarimg` or `zxing-cpp`.
    pub tool: &'static str,
    /// What happened.
    pub outcome: Outcome,
}

/// Whether `tool` reads `format` at all (zbar has no DataMatrix, Aztec or PDF417 reader).
pub fn supports(tool: &str, format: &str) -> bool {
    tool != "zbarimg" || !matches!(format, "DATA_MATRIX" | "AZTEC" | "PDF_417")
}

fn progress(tool: &str, done: usize, total: usize) {
    if done % 50 == 0 || done == total {
        eprintln!("{tool}: {done}/{total}");
    }
}

/// souk's scanner, in this process: each image decoded from its PNG and scanned, timed together.
pub fn run_souk(dir: &Path, entries: &[Entry]) -> Result<Run, String> {
    let start = Instant::now();
    let mut found = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let image = image::open(dir.join(&entry.file)).map_err(|e| format!("{}: {e}", entry.file))?;
        let scan = souk_builtins::scan::scan(&image);
        found.push(scan.codes.into_iter().map(|code| code.data).collect());
        progress("souk", i + 1, entries.len());
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        tool: "souk",
        outcome: Outcome::Ran { found, seconds },
    })
}

/// `zbarimg --raw -q <file>` once per image (its process start is part of its cost, as for a user).
pub fn run_zbar(dir: &Path, entries: &[Entry]) -> Result<Run, String> {
    let missing = Run {
        tool: "zbarimg",
        outcome: Outcome::Missing("apt-get install zbar-tools"),
    };
    let probe = Command::new("zbarimg")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if probe.is_err() {
        return Ok(missing);
    }
    let start = Instant::now();
    let mut found = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let output = Command::new("zbarimg")
            .args(["--raw", "-q"])
            .arg(dir.join(&entry.file))
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("zbarimg: {e}"))?;
        // Exit status 4 is "no symbol found", not a failure; --raw prints one symbol a line.
        let text = String::from_utf8_lossy(&output.stdout);
        found.push(text.lines().filter(|line| !line.is_empty()).map(str::to_owned).collect());
        progress("zbarimg", i + 1, entries.len());
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Run {
        tool: "zbarimg",
        outcome: Outcome::Ran { found, seconds },
    })
}

/// The Python side: reads the file list, decodes every image (Pillow, then
/// `zxingcpp.read_barcodes`), prints one JSON line per image and the decode loop's seconds last,
/// so interpreter start and import are not counted.
const ZXING_SCRIPT: &str = r#"import json, sys, time
import zxingcpp
from PIL import Image

paths = [line.rstrip("\n") for line in open(sys.argv[1], encoding="utf-8")]
results = []
start = time.perf_counter()
for i, path in enumerate(paths, 1):
    with Image.open(path) as image:
        image.load()
        results.append([barcode.text for barcode in zxingcpp.read_barcodes(image)])
    if i % 50 == 0 or i == len(paths):
        print(f"zxing-cpp: {i}/{len(paths)}", file=sys.stderr, flush=True)
seconds = time.perf_counter() - start
for texts in results:
    print(json.dumps(texts))
print(json.dumps({"seconds": seconds}))
"#;

/// zxing-cpp through `python3` and the script above, if `zxingcpp` and Pillow import.
pub fn run_zxing(dir: &Path, entries: &[Entry]) -> Result<Run, String> {
    let missing = Run {
        tool: "zxing-cpp",
        outcome: Outcome::Missing("pip install zxing-cpp pillow"),
    };
    let probe = Command::new("python3")
        .args(["-c", "import zxingcpp, PIL"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|status| status.success()) {
        return Ok(missing);
    }
    let script = dir.join("zxing_read.py");
    std::fs::write(&script, ZXING_SCRIPT).map_err(|e| format!("writing {}: {e}", script.display()))?;
    let list = dir.join("zxing_files.txt");
    let paths: Vec<String> = entries.iter().map(|e| dir.join(&e.file).display().to_string()).collect();
    std::fs::write(&list, paths.join("\n") + "\n").map_err(|e| format!("writing {}: {e}", list.display()))?;
    let output = Command::new("python3")
        .arg(&script)
        .arg(&list)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !output.status.success() {
        return Err(format!("zxing-cpp script failed: {}", output.status));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.pop().ok_or("zxing-cpp script printed nothing")?;
    let seconds = serde_json::from_str::<serde_json::Value>(last)
        .ok()
        .and_then(|v| v["seconds"].as_f64())
        .ok_or("zxing-cpp script: no timing line")?;
    let found = lines
        .iter()
        .map(|line| serde_json::from_str::<Vec<String>>(line).map_err(|e| format!("zxing-cpp line {line}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    if found.len() != entries.len() {
        return Err(format!("zxing-cpp answered {} images of {}", found.len(), entries.len()));
    }
    Ok(Run {
        tool: "zxing-cpp",
        outcome: Outcome::Ran { found, seconds },
    })
}
