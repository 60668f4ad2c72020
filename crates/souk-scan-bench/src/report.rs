//! Scoring and the table: a code counts as detected when its data is among the texts a reader
//! found in its image (any order, the kind not checked: `zbarimg --raw` prints none). Rates are
//! per code; a kind a reader does not support is "n/a" and left out of its overall rate.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::corpus::{upc_e_as_upc_a, Entry, Expected, FORMATS};
use crate::tools::{supports, Outcome, Run};

/// Detected and expected codes.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    hit: usize,
    total: usize,
}

impl Tally {
    fn add(&mut self, hit: bool) {
        self.total += 1;
        self.hit += usize::from(hit);
    }

    fn cell(self) -> String {
        if self.total == 0 {
            return "-".to_owned();
        }
        format!("{:.1}% ({}/{})", 100.0 * self.hit as f64 / self.total as f64, self.hit, self.total)
    }

    fn rate(self) -> Value {
        if self.total == 0 {
            Value::Null
        } else {
            json!(self.hit as f64 / self.total as f64)
        }
    }
}

/// One reader's score.
struct Score {
    overall: Tally,
    by_format: BTreeMap<&'static str, Tally>,
    by_variant: BTreeMap<String, Tally>,
}

/// Whether `found` is `expected`'s data, allowing the spellings readers legitimately differ in:
/// Codabar with or without its start and stop letters, UPC-A as the EAN-13 with a leading 0, UPC-E
/// as the UPC-A (or that EAN-13) it expands to.
fn matches(expected: &Expected, found: &str) -> bool {
    let data = expected.data.as_str();
    let upc_a = |text: &str| {
        if text.len() == 13 {
            text.strip_prefix('0').map(str::to_owned)
        } else {
            Some(text.to_owned())
        }
    };
    found == data
        || (expected.format == "CODABAR" && strip_codabar(found) == strip_codabar(data))
        || (expected.format == "UPC_A" && upc_a(found).as_deref() == Some(data))
        || (expected.format == "UPC_E" && upc_a(found).is_some_and(|found| upc_e_as_upc_a(data) == Some(found)))
}

fn strip_codabar(text: &str) -> &str {
    let guard = |c: char| matches!(c.to_ascii_uppercase(), 'A' | 'B' | 'C' | 'D' | 'T' | 'N' | '*' | 'E');
    let text = text.strip_prefix(guard).unwrap_or(text);
    text.strip_suffix(guard).unwrap_or(text)
}

fn score(tool: &str, entries: &[Entry], found: &[Vec<String>]) -> Score {
    let mut score = Score {
        overall: Tally::default(),
        by_format: FORMATS.iter().map(|(name, _)| (*name, Tally::default())).collect(),
        by_variant: BTreeMap::new(),
    };
    for (entry, texts) in entries.iter().zip(found) {
        for code in &entry.codes {
            if !supports(tool, &code.format) {
                continue;
            }
            let hit = texts.iter().any(|text| matches(code, text));
            score.overall.add(hit);
            if let Some(tally) = score.by_format.get_mut(code.format.as_str()) {
                tally.add(hit);
            }
            score.by_variant.entry(entry.variant.clone()).or_default().add(hit);
        }
    }
    score
}

/// The table, readers side by side, and the same numbers as JSON.
pub fn render(entries: &[Entry], runs: &[Run]) -> (String, Value) {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut speed = Vec::new();
    let mut overall = Vec::new();
    let mut json_tools = Vec::new();
    let scores: Vec<Option<Score>> = runs
        .iter()
        .map(|run| match &run.outcome {
            Outcome::Ran { found, .. } => Some(score(run.tool, entries, found)),
            Outcome::Missing(_) => None,
        })
        .collect();
    for (run, score) in runs.iter().zip(&scores) {
        match (&run.outcome, score) {
            (Outcome::Ran { seconds, .. }, Some(score)) => {
                let per_second = entries.len() as f64 / seconds.max(f64::EPSILON);
                speed.push(format!("{per_second:.1}"));
                overall.push(score.overall.cell());
                json_tools.push(json!({
                    "tool": run.tool,
                    "installed": true,
                    "seconds": seconds,
                    "images_per_second": per_second,
                    "overall": score.overall.rate(),
                    "by_format": score.by_format.iter().map(|(k, t)| (k.to_string(), t.rate())).collect::<BTreeMap<_, _>>(),
                    "by_variant": score.by_variant.iter().map(|(k, t)| (k.clone(), t.rate())).collect::<BTreeMap<_, _>>(),
                }));
            }
            (Outcome::Missing(install), _) => {
                speed.push("not installed".to_owned());
                overall.push("-".to_owned());
                json_tools.push(json!({ "tool": run.tool, "installed": false, "install": install }));
            }
            (Outcome::Ran { .. }, None) => {}
        }
    }
    rows.push(("images/s".to_owned(), speed));
    rows.push(("overall".to_owned(), overall));
    for (name, _) in FORMATS {
        let cells = runs
            .iter()
            .zip(&scores)
            .map(|(run, score)| match score {
                _ if !supports(run.tool, name) => "n/a".to_owned(),
                Some(score) => score.by_format[name].cell(),
                None => "-".to_owned(),
            })
            .collect();
        rows.push(((*name).to_owned(), cells));
    }
    let variants: Vec<String> = entries.iter().map(|e| e.variant.clone()).fold(Vec::new(), |mut seen, v| {
        if !seen.contains(&v) {
            seen.push(v);
        }
        seen
    });
    for variant in variants {
        let cells = scores
            .iter()
            .map(|score| {
                score
                    .as_ref()
                    .map_or("-".to_owned(), |s| s.by_variant.get(&variant).copied().unwrap_or_default().cell())
            })
            .collect();
        rows.push((format!("variant {variant}"), cells));
    }
    let codes: usize = entries.iter().map(|e| e.codes.len()).sum();
    let mut table = format!("{} images, {codes} codes\n\n", entries.len());
    let header: Vec<String> = runs.iter().map(|run| run.tool.to_owned()).collect();
    let width = rows
        .iter()
        .flat_map(|(_, cells)| cells.iter().map(String::len))
        .chain(header.iter().map(String::len))
        .max()
        .unwrap_or(8)
        + 2;
    let first = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(8) + 2;
    let line = |label: &str, cells: &[String]| {
        let mut out = format!("{label:<first$}");
        for cell in cells {
            let _ = write!(out, "{cell:>width$}");
        }
        out.trim_end().to_owned() + "\n"
    };
    table += &line("", &header);
    for (label, cells) in &rows {
        table += &line(label, cells);
    }
    table += "\nA detection is the expected data among the texts a reader found in that image (any order).\n";
    table += "Rates are per code; n/a: the reader has no decoder for that kind (left out of its overall).\n";
    table += "images/s: souk in-process (PNG decode + scan); zbarimg one process per image;\n";
    table += "zxing-cpp in one Python process (Pillow decode + read_barcodes, interpreter start excluded).\n";
    for run in runs {
        if let Outcome::Missing(install) = run.outcome {
            let _ = writeln!(table, "{} is not installed: `{install}`, then run again.", run.tool);
        }
    }
    let json = json!({ "images": entries.len(), "codes": codes, "tools": json_tools });
    (table, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(format: &str, data: &str) -> Expected {
        Expected {
            format: format.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn spellings_readers_differ_in_still_match() {
        assert!(matches(&code("CODABAR", "A123456B"), "123456"));
        assert!(matches(&code("CODABAR", "A123456B"), "A123456B"));
        assert!(matches(&code("UPC_A", "036000291452"), "0036000291452"));
        assert!(matches(&code("UPC_E", "01234565"), "0012345000065"));
        assert!(matches(&code("UPC_E", "01234565"), "012345000065"));
        assert!(!matches(&code("EAN_13", "5901234123457"), "590123412345"));
    }
}
