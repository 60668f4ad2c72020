//! Golden tests of the drawing: every code decodes back (with rxing, an independent reader) to exactly
//! the text it was drawn from, at the exact size, in every colour and on a transparent background.

use super::*;

const URL: &str = "https://souk.example.com/souk/v1/codes/aZ3kQ9xPq2Lm";

/// Decodes a PNG: its size, its RGBA pixels, and the text of the QR code it holds once composited
/// over white (a transparent code is read as it shows on a white page).
fn decode(png: &[u8]) -> (u32, u32, image::RgbaImage, String) {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a png")
        .to_rgba8();
    let (width, height) = image.dimensions();
    let luma = image
        .pixels()
        .map(|Rgba([r, g, b, a])| {
            let over_white = |channel: u8| (u32::from(channel) * u32::from(*a) + 255 * (255 - u32::from(*a))) / 255;
            let gray = (299 * over_white(*r) + 587 * over_white(*g) + 114 * over_white(*b)) / 1000;
            u8::try_from(gray).expect("a byte")
        })
        .collect();
    let found = rxing::helpers::detect_in_luma(luma, width, height, Some(rxing::BarcodeFormat::QR_CODE)).expect("a readable code");
    (width, height, image, found.getText().to_owned())
}

fn check(width: u32, line_color: Rgb, hyaline: bool) {
    let style = CodeStyle {
        width,
        line_color,
        hyaline,
    };
    let png = render_code(URL, &style).expect("drawn");
    let (w, h, image, text) = decode(&png);
    assert_eq!((w, h), (width, width), "exact size");
    assert_eq!(
        text, URL,
        "decodes to the url at width {width}, colour {line_color:?}, hyaline {hyaline}"
    );
    // The corner is quiet zone: background.
    let corner = image.get_pixel(0, 0).0;
    if hyaline {
        assert_eq!(corner[3], 0, "transparent background");
    } else {
        assert_eq!(corner, [255, 255, 255, 255], "opaque white background");
    }
    // Every pixel is either background or a module of exactly the line colour.
    let Rgb { r, g, b } = line_color;
    for pixel in image.pixels() {
        assert!(pixel.0 == corner || pixel.0 == [r, g, b, 255], "crisp modules: {pixel:?}");
    }
}

#[test]
fn decodes_back_at_every_width() {
    for width in [MIN_WIDTH, DEFAULT_WIDTH, 500, 777, MAX_WIDTH] {
        check(width, Rgb::BLACK, false);
    }
}

#[test]
fn decodes_back_in_colour() {
    for color in [Rgb { r: 0, g: 0, b: 255 }, Rgb { r: 120, g: 20, b: 60 }, Rgb { r: 0, g: 100, b: 0 }] {
        check(DEFAULT_WIDTH, color, false);
    }
}

#[test]
fn decodes_back_on_a_transparent_background() {
    for width in [MIN_WIDTH, DEFAULT_WIDTH, MAX_WIDTH] {
        check(width, Rgb::BLACK, true);
    }
    check(DEFAULT_WIDTH, Rgb { r: 7, g: 84, b: 180 }, true);
}

#[test]
fn keeps_at_least_the_quiet_zone() {
    let png = render_code(URL, &CodeStyle::default()).expect("drawn");
    let (_, _, image, _) = decode(&png);
    let modules = QrCode::with_error_correction_level(URL, EcLevel::M).expect("fits").width() as u32;
    let scale = DEFAULT_WIDTH / (modules + 8);
    let background = *image.get_pixel(0, 0);
    for y in 0..DEFAULT_WIDTH {
        for x in 0..4 * scale {
            assert_eq!(*image.get_pixel(x, y), background, "left quiet zone at {x},{y}");
            assert_eq!(*image.get_pixel(DEFAULT_WIDTH - 1 - x, y), background, "right quiet zone");
        }
    }
}

#[test]
fn refuses_widths_out_of_range() {
    for width in [0, MIN_WIDTH - 1, MAX_WIDTH + 1] {
        let style = CodeStyle {
            width,
            ..CodeStyle::default()
        };
        assert!(matches!(render_code(URL, &style), Err(WxacodeError::Width(w)) if w == width));
    }
}
