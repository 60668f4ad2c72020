//! Scanning a generated corpus: QR codes from the `qrcode` crate, every other kind from rxing's
//! writers, turned 0/90/180/270 degrees, several codes in one image, corners within a tolerance.

use image::{DynamicImage, GrayImage, Luma};
use rxing::{BarcodeFormat, MultiFormatWriter, Writer};

use super::*;

const WHITE: Luma<u8> = Luma([255]);
const BLACK: Luma<u8> = Luma([0]);

/// A QR code of `data` drawn at `scale` pixels a module, with its outer square (no quiet zone).
fn qr_image(data: &str, scale: u32) -> GrayImage {
    let code = qrcode::QrCode::new(data).unwrap();
    let width = u32::try_from(code.width()).unwrap();
    let colors = code.to_colors();
    GrayImage::from_fn(width * scale, width * scale, |x, y| {
        let index = usize::try_from((y / scale) * width + x / scale).unwrap();
        if colors[index] == qrcode::Color::Dark {
            BLACK
        } else {
            WHITE
        }
    })
}

/// Any kind from rxing's writer, `scale` pixels a module (1D: `height` pixels tall).
fn rxing_image(data: &str, format: BarcodeFormat, scale: u32, height: u32) -> GrayImage {
    let matrix = MultiFormatWriter.encode(data, &format, 0, 0).unwrap();
    let (width, rows) = (matrix.getWidth(), matrix.getHeight());
    let tall = if rows == 1 { height } else { rows * scale };
    GrayImage::from_fn(width * scale, tall, |x, y| {
        let row = if rows == 1 { 0 } else { y / scale };
        if matrix.get(x / scale, row) {
            BLACK
        } else {
            WHITE
        }
    })
}

/// `parts` pasted on a white canvas at their offsets.
fn canvas(width: u32, height: u32, parts: &[(&GrayImage, u32, u32)]) -> GrayImage {
    let mut canvas = GrayImage::from_pixel(width, height, WHITE);
    for (part, x, y) in parts {
        image::imageops::replace(&mut canvas, *part, i64::from(*x), i64::from(*y));
    }
    canvas
}

fn rotated(image: &GrayImage, degrees: u32) -> GrayImage {
    match degrees {
        90 => image::imageops::rotate90(image),
        180 => image::imageops::rotate180(image),
        270 => image::imageops::rotate270(image),
        _ => image.clone(),
    }
}

fn scan_gray(image: GrayImage) -> Scan {
    scan(&DynamicImage::ImageLuma8(image))
}

fn near(found: Pixel, expected: (u32, u32), tolerance: u32) -> bool {
    found.x.abs_diff(expected.0) <= tolerance && found.y.abs_diff(expected.1) <= tolerance
}

#[test]
fn qr_outer_corners_in_every_rotation() {
    let scale = 6;
    let code = qr_image("https://www.qq.com", scale);
    let side = code.width();
    let (x0, y0) = (100, 60);
    let image = canvas(side + 200, side + 150, &[(&code, x0, y0)]);
    for degrees in [0, 90, 180, 270] {
        let image = rotated(&image, degrees);
        let (w, h) = image.dimensions();
        // The code's square in the turned image.
        let (left, top) = match degrees {
            // Clockwise: (x, y) goes to (height - 1 - y, x) of the unturned image.
            90 => (w - y0 - side, x0),
            180 => (w - x0 - side, h - y0 - side),
            270 => (y0, h - x0 - side),
            _ => (x0, y0),
        };
        let (right, bottom) = (left + side - 1, top + side - 1);
        let found = scan_gray(image);
        assert_eq!((found.width, found.height), (w, h));
        assert_eq!(found.codes.len(), 1, "{degrees}: {:?}", found.codes);
        let code = &found.codes[0];
        assert_eq!((code.type_name, code.data.as_str()), ("QR_CODE", "https://www.qq.com"));
        let pos = code.pos.expect("a QR code has corners");
        let tolerance = scale + 2;
        assert!(near(pos.left_top, (left, top), tolerance), "{degrees}: {pos:?} vs {left},{top}");
        assert!(near(pos.right_top, (right, top), tolerance), "{degrees}: {pos:?}");
        assert!(near(pos.right_bottom, (right, bottom), tolerance), "{degrees}: {pos:?}");
        assert!(near(pos.left_bottom, (left, bottom), tolerance), "{degrees}: {pos:?}");
    }
}

#[test]
fn every_kind_is_read_with_the_platform_name() {
    let cases = [
        (BarcodeFormat::EAN_13, "5901234123457", "EAN_13"),
        (BarcodeFormat::EAN_8, "96385074", "EAN_8"),
        (BarcodeFormat::UPC_A, "036000291452", "UPC_A"),
        (BarcodeFormat::UPC_E, "01234565", "UPC_E"),
        (BarcodeFormat::CODE_128, "souk-128", "CODE_128"),
        (BarcodeFormat::CODE_39, "SOUK39", "CODE_39"),
        (BarcodeFormat::CODE_93, "SOUK93", "CODE_93"),
        (BarcodeFormat::CODABAR, "A12345B", "CODABAR"),
        (BarcodeFormat::ITF, "12345678", "ITF"),
        (BarcodeFormat::DATA_MATRIX, "hello datamatrix", "DATA_MATRIX"),
        (BarcodeFormat::PDF_417, "hello pdf417", "PDF_417"),
        (BarcodeFormat::AZTEC, "hello aztec", "AZTEC"),
    ];
    for (format, data, name) in cases {
        let code = rxing_image(data, format, 3, 90);
        let (w, h) = code.dimensions();
        let found = scan_gray(canvas(w + 80, h + 80, &[(&code, 40, 40)]));
        let names: Vec<_> = found.codes.iter().map(|code| (code.type_name, code.data.clone())).collect();
        let hit = found
            .codes
            .iter()
            .find(|code| code.type_name == name)
            .unwrap_or_else(|| panic!("{name}: {names:?}"));
        // Codabar's start and stop characters are not part of the data.
        assert!(data.contains(&hit.data) && !hit.data.is_empty(), "{name}: {names:?}");
        assert_eq!(hit.pos.is_some(), name == "DATA_MATRIX", "{name}: pos only for QR and DataMatrix");
    }
}

#[test]
fn data_matrix_corners_are_outer() {
    let scale = 5;
    let code = rxing_image("souk matrix", BarcodeFormat::DATA_MATRIX, scale, 0);
    let (side_w, side_h) = code.dimensions();
    let found = scan_gray(canvas(side_w + 100, side_h + 100, &[(&code, 50, 50)]));
    let pos = found.codes.first().and_then(|code| code.pos).expect("found with corners");
    // The writer adds no quiet zone: the matrix is the symbol.
    let (left, top, right, bottom) = (50, 50, 50 + side_w - 1, 50 + side_h - 1);
    let tolerance = scale + 2;
    assert!(near(pos.left_top, (left, top), tolerance), "{pos:?}");
    assert!(near(pos.right_top, (right, top), tolerance), "{pos:?}");
    assert!(near(pos.right_bottom, (right, bottom), tolerance), "{pos:?}");
    assert!(near(pos.left_bottom, (left, bottom), tolerance), "{pos:?}");
}

#[test]
fn several_codes_in_one_image_each_once() {
    let qr = qr_image("first", 5);
    let other_qr = qr_image("second", 5);
    let ean = rxing_image("5901234123457", BarcodeFormat::EAN_13, 3, 90);
    let image = canvas(700, 420, &[(&qr, 40, 40), (&other_qr, 400, 40), (&ean, 150, 300)]);
    let found = scan_gray(image);
    let mut names: Vec<_> = found.codes.iter().map(|code| (code.type_name, code.data.as_str())).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [("EAN_13", "5901234123457"), ("QR_CODE", "first"), ("QR_CODE", "second")],
        "{:?}",
        found.codes
    );
}

#[test]
fn nothing_to_read_is_an_empty_list_and_transparency_is_white() {
    let blank = scan_gray(GrayImage::from_pixel(50, 40, WHITE));
    assert_eq!((blank.codes.len(), blank.width, blank.height), (0, 50, 40));
    // A dark code on transparent pixels (the transparent part is black in RGB).
    let code = qr_image("hyaline", 4);
    let side = code.width() + 40;
    let rgba = image::RgbaImage::from_fn(side, side, |x, y| {
        let dark = x >= 20 && y >= 20 && x < side - 20 && y < side - 20 && code.get_pixel(x - 20, y - 20)[0] == 0;
        if dark {
            image::Rgba([0, 0, 0, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let found = scan(&DynamicImage::ImageRgba8(rgba));
    assert_eq!(found.codes.first().map(|code| code.data.as_str()), Some("hyaline"));
}
