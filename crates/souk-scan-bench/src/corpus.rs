//! The corpus: every kind souk's scanner reads (QR from the `qrcode` crate, the rest from rxing's
//! writers), turned by quarter turns and small angles, drawn small and large, blurred, noisy, and
//! several codes to an image; written as PNGs with a `manifest.json` of what each image holds.

use std::path::Path;

use image::{GrayImage, Luma};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};
use serde::{Deserialize, Serialize};

use crate::distort::{self, Rng};

/// The kinds, by the platform's names (as `scan.rs` reports them), with rxing's writer format.
pub const FORMATS: &[(&str, BarcodeFormat)] = &[
    ("QR_CODE", BarcodeFormat::QR_CODE),
    ("DATA_MATRIX", BarcodeFormat::DATA_MATRIX),
    ("PDF_417", BarcodeFormat::PDF_417),
    ("AZTEC", BarcodeFormat::AZTEC),
    ("EAN_13", BarcodeFormat::EAN_13),
    ("EAN_8", BarcodeFormat::EAN_8),
    ("UPC_A", BarcodeFormat::UPC_A),
    ("UPC_E", BarcodeFormat::UPC_E),
    ("CODE_128", BarcodeFormat::CODE_128),
    ("CODE_39", BarcodeFormat::CODE_39),
    ("CODE_93", BarcodeFormat::CODE_93),
    ("CODABAR", BarcodeFormat::CODABAR),
    ("ITF", BarcodeFormat::ITF),
];

/// One code an image holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Expected {
    /// The platform's name of the kind.
    pub format: String,
    /// The data encoded.
    pub data: String,
}

/// One image of the corpus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The PNG's file name inside the corpus folder.
    pub file: String,
    /// What was done to it (`plain`, `rot90`, `blur`, ...).
    pub variant: String,
    /// The codes it holds.
    pub codes: Vec<Expected>,
}

/// How one image is drawn: module size, turn, blur radius, noise amplitude.
struct Variant {
    name: &'static str,
    scale: u32,
    degrees: f32,
    blur: u32,
    noise: i32,
}

const fn variant(name: &'static str, scale: u32, degrees: f32, blur: u32, noise: i32) -> Variant {
    Variant {
        name,
        scale,
        degrees,
        blur,
        noise,
    }
}

const VARIANTS: &[Variant] = &[
    variant("plain", 3, 0.0, 0, 0),
    variant("rot90", 3, 90.0, 0, 0),
    variant("rot180", 3, 180.0, 0, 0),
    variant("rot270", 3, 270.0, 0, 0),
    variant("rot7", 3, 7.0, 0, 0),
    variant("rot15", 3, 15.0, 0, 0),
    variant("small", 2, 0.0, 0, 0),
    variant("large", 6, 0.0, 0, 0),
    variant("blur", 3, 0.0, 1, 0),
    variant("noise", 3, 0.0, 0, 48),
    variant("rot7-blur-noise", 3, 7.0, 1, 32),
];

/// Writes `count` images and `manifest.json` into `dir`, answering the manifest. The order
/// interleaves kinds, variants and several-code images, so a smaller `count` keeps the mix.
pub fn generate(dir: &Path, count: usize) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::with_capacity(count);
    let mut round = 0_u32;
    'rounds: loop {
        for (v, variant) in VARIANTS.iter().enumerate() {
            // A row of every kind alone, then one image holding three kinds.
            let groups = FORMATS.iter().map(|kind| vec![*kind]).chain(std::iter::once(trio(round, v)));
            for group in groups {
                if entries.len() == count {
                    break 'rounds;
                }
                let index = entries.len();
                let codes: Vec<Expected> = group
                    .iter()
                    .map(|(name, _)| Expected {
                        format: (*name).to_owned(),
                        data: data_for(name, round * 100 + index as u32),
                    })
                    .collect();
                let image = draw(&group, &codes, variant, index as u64)?;
                let kind = if codes.len() == 1 {
                    codes[0].format.to_lowercase()
                } else {
                    "multi".to_owned()
                };
                let file = format!("{index:04}-{kind}-{}.png", variant.name);
                image.save(dir.join(&file)).map_err(|e| format!("writing {file}: {e}"))?;
                entries.push(Entry {
                    file,
                    variant: variant.name.to_owned(),
                    codes,
                });
            }
        }
        round += 1;
    }
    let manifest = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("manifest.json"), manifest).map_err(|e| format!("writing manifest.json: {e}"))?;
    Ok(entries)
}

/// Three different kinds for a several-code image, varying with the round and the variant.
fn trio(round: u32, v: usize) -> Vec<(&'static str, BarcodeFormat)> {
    let k = v + round as usize * VARIANTS.len();
    [k, k + 5, k + 9].iter().map(|i| FORMATS[i % FORMATS.len()]).collect()
}

/// Valid data for a kind: text for the 2D and alphanumeric kinds, digits with their check digit
/// for EAN/UPC, an even digit count for ITF, start and stop letters for Codabar.
fn data_for(format: &str, n: u32) -> String {
    match format {
        "QR_CODE" => format!("https://souk.example/q/{n}"),
        "DATA_MATRIX" => format!("souk datamatrix {n}"),
        "PDF_417" => format!("souk pdf417 {n}"),
        "AZTEC" => format!("souk aztec {n}"),
        "EAN_13" => with_check(&format!("590123{:06}", n * 7919 % 1_000_000)),
        "EAN_8" => with_check(&format!("9638{:03}", n % 1000)),
        "UPC_A" => with_check(&format!("03600{:06}", n * 104_729 % 1_000_000)),
        "UPC_E" => upc_e(&format!("{:06}", n * 7907 % 1_000_000)),
        "CODE_128" => format!("Souk-128-{n}"),
        "CODE_39" => format!("SOUK39-{n}"),
        "CODE_93" => format!("SOUK93-{n}"),
        "CODABAR" => format!("A{:06}B", n * 31 % 1_000_000),
        _ => format!("{:010}", u64::from(n) * 9_999_991 % 10_000_000_000),
    }
}

/// GTIN check digit appended (weights 3, 1, 3, ... from the right).
fn with_check(digits: &str) -> String {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    format!("{digits}{}", (10 - sum % 10) % 10)
}

/// A UPC-E code (number system 0) for six digits: the check digit is the one of the UPC-A it
/// expands to.
fn upc_e(six: &str) -> String {
    let check = with_check(&expand_upc_e(six)).pop().unwrap_or('0');
    format!("0{six}{check}")
}

/// The UPC-A (number system 0, no check digit) that six UPC-E digits stand for, by the last
/// digit's rule.
fn expand_upc_e(six: &str) -> String {
    let d: Vec<char> = six.chars().collect();
    let s = |range: std::ops::Range<usize>| d[range].iter().collect::<String>();
    match d[5] {
        '0'..='2' => format!("0{}{}0000{}", s(0..2), d[5], s(2..5)),
        '3' => format!("0{}00000{}", s(0..3), s(3..5)),
        '4' => format!("0{}00000{}", s(0..4), d[4]),
        _ => format!("0{}0000{}", s(0..5), d[5]),
    }
}

/// The 12-digit UPC-A an 8-digit UPC-E code (number system 0) expands to, as some readers report it.
pub fn upc_e_as_upc_a(code: &str) -> Option<String> {
    let six = code
        .get(1..7)
        .filter(|six| six.len() == 6 && six.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("{}{}", expand_upc_e(six), code.get(7..8)?))
}

/// The codes drawn on one white canvas (stacked, each in its quiet zone), then distorted.
fn draw(group: &[(&str, BarcodeFormat)], codes: &[Expected], variant: &Variant, seed: u64) -> Result<GrayImage, String> {
    let parts = group
        .iter()
        .zip(codes)
        .map(|((_, format), code)| symbol(*format, &code.data, variant.scale))
        .collect::<Result<Vec<_>, _>>()?;
    let margin = (12 * variant.scale).max(30);
    let width = parts.iter().map(GrayImage::width).max().unwrap_or(0) + 2 * margin;
    let height = parts.iter().map(|p| p.height() + margin).sum::<u32>() + margin;
    let mut canvas = GrayImage::from_pixel(width, height, Luma([255]));
    let mut y = margin;
    for part in &parts {
        let x = (width - part.width()) / 2;
        image::imageops::replace(&mut canvas, part, i64::from(x), i64::from(y));
        y += part.height() + margin;
    }
    let mut image = distort::rotate(&canvas, variant.degrees);
    if variant.blur > 0 {
        image = distort::box_blur(&image, variant.blur);
    }
    if variant.noise > 0 {
        image = distort::noise(&image, variant.noise, &mut Rng::new(seed));
    }
    Ok(image)
}

/// One symbol, `scale` pixels a module; a 1D code is 24 modules tall.
fn symbol(format: BarcodeFormat, data: &str, scale: u32) -> Result<GrayImage, String> {
    let pixel = |dark: bool| Luma([if dark { 0 } else { 255 }]);
    if format == BarcodeFormat::QR_CODE {
        let code = qrcode::QrCode::new(data).map_err(|e| format!("qrcode {data}: {e}"))?;
        let width = u32::try_from(code.width()).map_err(|e| e.to_string())?;
        let colors = code.to_colors();
        return Ok(GrayImage::from_fn(width * scale, width * scale, |x, y| {
            let index = ((y / scale) * width + x / scale) as usize;
            pixel(colors[index] == qrcode::Color::Dark)
        }));
    }
    let matrix = MultiFormatWriter
        .encode(data, &format, 0, 0)
        .map_err(|e| format!("rxing {format:?} {data}: {e}"))?;
    let (width, rows) = (matrix.getWidth(), matrix.getHeight());
    let height = if rows == 1 { 24 * scale } else { rows * scale };
    Ok(GrayImage::from_fn(width * scale, height, |x, y| {
        let row = if rows == 1 { 0 } else { y / scale };
        pixel(matrix.get(x / scale, row))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_known_codes() {
        assert_eq!(with_check("590123412345"), "5901234123457");
        assert_eq!(with_check("9638507"), "96385074");
        assert_eq!(with_check("03600029145"), "036000291452");
        assert_eq!(upc_e("123456"), "01234565");
        assert_eq!(upc_e_as_upc_a("01234565").as_deref(), Some("012345000065"));
    }
}
