//! Code scanning for `img.scanQRCode` (`wire.md` §2, `wechat-wire.md` §7.2): every code in an image,
//! with rxing's multi-barcode reader over all the formats the platform names (QR, DataMatrix,
//! PDF417, Aztec, EAN-13/8, UPC-A/E, Code 128/39/93, Codabar, ITF).
//!
//! `type_name` is spelled as the platform spells it (`QR_CODE`, `EAN_13`, ...). `pos` is given for QR
//! and DataMatrix only, as `wire.md` says, and is the symbol's four **outer** corners, because that is
//! what the platform's sample shows (a square around the whole code):
//! - rxing's zxing-cpp QR reader (tried first) gives the outer corners themselves. Its classic QR
//!   reader (the fallback) gives the three finder-pattern **centres**, which lie 3.5 modules inside the
//!   outer corners: souk measures the module on the image itself (walking outward from the top-left centre
//!   across the finder's rings to the quiet zone) and moves each centre outward along the symbol's
//!   diagonal; the fourth corner completes the parallelogram.
//! - rxing gives a DataMatrix's four corner-module **centres**: each is moved outward by half a
//!   module (measured the same way, from a dark corner module) along the diagonal.
//!
//! Corners are named by image position (`left_top` is the one nearest the image's top-left, and so
//! on), rounded, and clamped to the image. A code the reader reports twice (same kind, same data,
//! overlapping place) is kept once. This is CPU work: call [`scan`] through [`crate::pool`].

use std::collections::HashSet;

use image::DynamicImage;
use rxing::common::HybridBinarizer;
use rxing::multi::{GenericMultipleBarcodeReader, MultipleBarcodeReader};
use rxing::{BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, MultiUseMultiFormatReader, Point, RXingResult};

/// A point in image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pixel {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
}

/// The four outer corners of a 2D code, named by image position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corners {
    /// Nearest the image's top-left.
    pub left_top: Pixel,
    /// Nearest the image's top-right.
    pub right_top: Pixel,
    /// Nearest the image's bottom-right.
    pub right_bottom: Pixel,
    /// Nearest the image's bottom-left.
    pub left_bottom: Pixel,
}

/// One code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The platform's name of the kind (`QR_CODE`, `EAN_13`, ...).
    pub type_name: &'static str,
    /// The decoded text.
    pub data: String,
    /// The outer corners (QR and DataMatrix only).
    pub pos: Option<Corners>,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// The codes, in the reader's order, duplicates removed.
    pub codes: Vec<Code>,
    /// The image's width.
    pub width: u32,
    /// The image's height.
    pub height: u32,
}

/// The formats scanned, and their platform names.
const FORMATS: &[(BarcodeFormat, &str)] = &[
    (BarcodeFormat::QR_CODE, "QR_CODE"),
    (BarcodeFormat::DATA_MATRIX, "DATA_MATRIX"),
    (BarcodeFormat::PDF_417, "PDF_417"),
    (BarcodeFormat::AZTEC, "AZTEC"),
    (BarcodeFormat::EAN_13, "EAN_13"),
    (BarcodeFormat::EAN_8, "EAN_8"),
    (BarcodeFormat::UPC_A, "UPC_A"),
    (BarcodeFormat::UPC_E, "UPC_E"),
    (BarcodeFormat::CODE_128, "CODE_128"),
    (BarcodeFormat::CODE_39, "CODE_39"),
    (BarcodeFormat::CODE_93, "CODE_93"),
    (BarcodeFormat::CODABAR, "CODABAR"),
    (BarcodeFormat::ITF, "ITF"),
];

/// Every code in `image`. No code at all is an empty list, not an error.
pub fn scan(image: &DynamicImage) -> Scan {
    let luma = luma_on_white(image);
    let (width, height) = (image.width(), image.height());
    let hints = DecodeHints {
        TryHarder: Some(true),
        PossibleFormats: Some(FORMATS.iter().map(|(format, _)| *format).collect::<HashSet<_>>()),
        ..DecodeHints::default()
    };
    let mut reader = GenericMultipleBarcodeReader::new(MultiUseMultiFormatReader::default());
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(Luma8LuminanceSource::new(luma.clone(), width, height)));
    let results = reader.decode_multiple_with_hints(&mut bitmap, &hints).unwrap_or_default();
    let gray = Gray {
        luma: &luma,
        width,
        height,
        threshold: threshold(&luma),
    };
    let mut codes: Vec<(Code, Option<Place>)> = Vec::new();
    for result in &results {
        let Some(type_name) = type_name(*result.getBarcodeFormat()) else {
            continue;
        };
        let place = place(result.getPoints());
        let duplicate = codes
            .iter()
            .any(|(code, other)| code.type_name == type_name && code.data == result.getText() && overlaps(place, *other));
        if duplicate {
            continue;
        }
        let pos = match result.getBarcodeFormat() {
            BarcodeFormat::QR_CODE => qr_corners(result, &gray),
            BarcodeFormat::DATA_MATRIX => data_matrix_corners(result, &gray),
            _ => None,
        };
        codes.push((
            Code {
                type_name,
                data: result.getText().to_owned(),
                pos,
            },
            place,
        ));
    }
    Scan {
        codes: codes.into_iter().map(|(code, _)| code).collect(),
        width,
        height,
    }
}

/// The platform's name of a format souk reports.
fn type_name(format: BarcodeFormat) -> Option<&'static str> {
    FORMATS.iter().find(|(known, _)| *known == format).map(|(_, name)| *name)
}

/// The image as 8-bit luma, transparency composited on white (a transparent code, as
/// `is_hyaline` mini-program codes are, is dark on nothing).
fn luma_on_white(image: &DynamicImage) -> Vec<u8> {
    let rgba = image.to_rgba8();
    rgba.pixels()
        .map(|pixel| {
            let [r, g, b, a] = pixel.0.map(u32::from);
            let luma = (299 * r + 587 * g + 114 * b) / 1000;
            let on_white = (luma * a + 255 * (255 - a)) / 255;
            u8::try_from(on_white).unwrap_or(u8::MAX)
        })
        .collect()
}

/// Half way between the darkest and the lightest pixel.
fn threshold(luma: &[u8]) -> u8 {
    let min = luma.iter().copied().min().unwrap_or(0);
    let max = luma.iter().copied().max().unwrap_or(255);
    min / 2 + max / 2
}

/// The image, binarised by one threshold, for measuring modules.
struct Gray<'a> {
    luma: &'a [u8],
    width: u32,
    height: u32,
    threshold: u8,
}

impl Gray<'_> {
    /// Whether the pixel at (x, y) is dark; outside the image is light (a quiet zone).
    fn dark(&self, x: f32, y: f32) -> bool {
        if x < 0.0 || y < 0.0 || x >= self.width as f32 || y >= self.height as f32 {
            return false;
        }
        let index = (y as usize) * (self.width as usize) + (x as usize);
        self.luma.get(index).is_some_and(|&value| value < self.threshold)
    }

    /// Walks from `from` along the unit vector `(dx, dy)` and answers the distance at which the
    /// colour has changed `changes` times, if it does within `max` pixels.
    fn distance_to_change(&self, from: (f32, f32), (dx, dy): (f32, f32), changes: usize, max: f32) -> Option<f32> {
        let mut colour = self.dark(from.0, from.1);
        let mut seen = 0;
        let mut step = 0.0_f32;
        while step <= max {
            step += 0.5;
            let now = self.dark(from.0 + dx * step, from.1 + dy * step);
            if now != colour {
                colour = now;
                seen += 1;
                if seen == changes {
                    return Some(step);
                }
            }
        }
        None
    }
}

/// Where a code is: centre x, centre y, radius (for telling duplicates apart).
type Place = (f32, f32, f32);

/// Centre and radius of a result's points.
fn place(points: &[Point]) -> Option<Place> {
    if points.is_empty() {
        return None;
    }
    let n = points.len() as f32;
    let (cx, cy) = points.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x / n, y + p.y / n));
    let radius = points.iter().map(|p| (p.x - cx).hypot(p.y - cy)).fold(0.0_f32, f32::max);
    Some((cx, cy, radius.max(8.0)))
}

fn overlaps(a: Option<Place>, b: Option<Place>) -> bool {
    match (a, b) {
        (Some((ax, ay, ar)), Some((bx, by, br))) => (ax - bx).hypot(ay - by) < ar.max(br),
        _ => true,
    }
}

/// A QR code's outer corners. rxing reads QR codes with its zxing-cpp port first, which answers the
/// four outer corners in cyclic order; its classic reader, the fallback, answers three finder centres
/// (then maybe an alignment pattern, 3.5 modules inside the fourth corner's virtual finder).
fn qr_corners(result: &RXingResult, gray: &Gray<'_>) -> Option<Corners> {
    let distance = |p: Point, q: Point| (p.x - q.x).hypot(p.y - q.y);
    let [a, b, c] = match result.getPoints() {
        [p0, p1, p2, p3, ..] => {
            let completed = Point::new(p0.x + p2.x - p1.x, p0.y + p2.y - p1.y);
            if distance(*p3, completed) < 0.05 * distance(*p0, *p1) {
                return Some(outer(&[*p0, *p1, *p2, *p3], 0.0, gray));
            }
            [*p0, *p1, *p2]
        }
        [a, b, c] => [*a, *b, *c],
        _ => return None,
    };
    // The finder at the right angle (opposite the longest side) is the top-left one, whatever order
    // the reader lists them in; the virtual fourth centre completes the parallelogram.
    let (top_left, top_right, bottom_left) = if distance(b, c) >= distance(a, c) && distance(b, c) >= distance(a, b) {
        (a, b, c)
    } else if distance(a, c) >= distance(a, b) {
        (b, a, c)
    } else {
        (c, a, b)
    };
    let bottom_right = Point::new(top_right.x + bottom_left.x - top_left.x, top_right.y + bottom_left.y - top_left.y);
    let centres = [top_left, top_right, bottom_right, bottom_left];
    let span = distance(top_left, top_right);
    // From the top-left centre outward: the centre's dark square, the light ring, the dark ring,
    // then the quiet zone; the third change is the outer corner (3.5 modules along each axis).
    let direction = outward(top_left, &centres);
    let extension = gray
        .distance_to_change((top_left.x, top_left.y), direction, 3, span)
        // Fallback without a clean quiet zone: version 1's 14 modules between finder centres.
        .unwrap_or(span / 14.0 * 3.5 * std::f32::consts::SQRT_2);
    Some(outer(&centres, extension, gray))
}

/// A DataMatrix's outer corners from its four corner-module centres.
fn data_matrix_corners(result: &RXingResult, gray: &Gray<'_>) -> Option<Corners> {
    let points: [Point; 4] = match result.getPoints() {
        [a, b, c, d, ..] => [*a, *b, *c, *d],
        _ => return None,
    };
    let span = (points[0].x - points[2].x).hypot(points[0].y - points[2].y);
    // Half a module along the diagonal, measured from a dark corner module (three of four are).
    let extension = points
        .iter()
        .filter(|point| gray.dark(point.x, point.y))
        .filter_map(|point| gray.distance_to_change((point.x, point.y), outward(*point, &points), 1, span / 4.0))
        .fold(None, |shortest: Option<f32>, d| Some(shortest.map_or(d, |s| s.min(d))))
        .unwrap_or(0.0);
    Some(outer(&points, extension, gray))
}

/// The unit vector from the points' centroid towards `point`.
fn outward(point: Point, all: &[Point]) -> (f32, f32) {
    let n = all.len() as f32;
    let (cx, cy) = all.iter().fold((0.0, 0.0), |(x, y), p| (x + p.x / n, y + p.y / n));
    let (dx, dy) = (point.x - cx, point.y - cy);
    let length = dx.hypot(dy).max(f32::EPSILON);
    (dx / length, dy / length)
}

/// Moves every point `extension` pixels outward, clamps to the image, names the corners.
fn outer(points: &[Point; 4], extension: f32, gray: &Gray<'_>) -> Corners {
    let clamp = |value: f32, size: u32| value.round().clamp(0.0, size.saturating_sub(1) as f32) as u32;
    let moved: Vec<Pixel> = points
        .iter()
        .map(|point| {
            let (dx, dy) = outward(*point, points);
            Pixel {
                x: clamp(point.x + dx * extension, gray.width),
                y: clamp(point.y + dy * extension, gray.height),
            }
        })
        .collect();
    let by = |key: fn(&Pixel) -> i64, max: bool| {
        let pick = if max {
            moved.iter().max_by_key(|p| key(p))
        } else {
            moved.iter().min_by_key(|p| key(p))
        };
        pick.copied().unwrap_or(Pixel { x: 0, y: 0 })
    };
    Corners {
        left_top: by(|p| i64::from(p.x) + i64::from(p.y), false),
        right_bottom: by(|p| i64::from(p.x) + i64::from(p.y), true),
        right_top: by(|p| i64::from(p.x) - i64::from(p.y), true),
        left_bottom: by(|p| i64::from(p.x) - i64::from(p.y), false),
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
