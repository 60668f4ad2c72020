//! Mini-program codes (`wxacode.*`), the drawing: a square PNG of exactly the requested width holding a
//! QR code of a URL.
//!
//! WeChat's "interface A/B" codes (`getwxacode`, `getwxacodeunlimit`) are round "sun codes" only the
//! WeChat app can read; souk draws standard QR codes for all three APIs instead, which any scanner
//! reads (`createwxaqrcode`, "interface C", is a square QR code on the platform too). The code holds
//! a souk URL naming the page, not the page itself.
//!
//! The layout: the QR matrix is scaled by the largest whole factor that leaves at least the standard
//! 4-module quiet zone, with nearest-neighbour scaling so modules stay crisp; the pixels left over
//! widen the quiet zone (half on each side, the odd pixel right and bottom), so the image is exactly
//! `width` pixels square whatever the matrix size.

use image::{ImageBuffer, ImageEncoder, Rgba};
use qrcode::{Color, EcLevel, QrCode};

/// The smallest width the platform accepts, in pixels.
pub const MIN_WIDTH: u32 = 280;
/// The largest width the platform accepts, in pixels.
pub const MAX_WIDTH: u32 = 1280;
/// The width when none is given, in pixels.
pub const DEFAULT_WIDTH: u32 = 430;
/// The quiet zone around the matrix, in modules (ISO/IEC 18004 asks for 4).
const QUIET_MODULES: u32 = 4;

/// An opaque colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb {
    /// Red, 0–255.
    pub r: u8,
    /// Green, 0–255.
    pub g: u8,
    /// Blue, 0–255.
    pub b: u8,
}

impl Rgb {
    /// Black, the platform's default line colour.
    pub const BLACK: Rgb = Rgb { r: 0, g: 0, b: 0 };
}

/// How a code is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeStyle {
    /// The side of the square image in pixels, [`MIN_WIDTH`]–[`MAX_WIDTH`].
    pub width: u32,
    /// The colour of the dark modules.
    pub line_color: Rgb,
    /// A transparent background (alpha 0 outside the dark modules) instead of opaque white.
    pub hyaline: bool,
}

impl Default for CodeStyle {
    fn default() -> Self {
        CodeStyle {
            width: DEFAULT_WIDTH,
            line_color: Rgb::BLACK,
            hyaline: false,
        }
    }
}

/// Why a code could not be drawn. The callers validate first, so these are souk's own failures.
#[derive(Debug, thiserror::Error)]
pub enum WxacodeError {
    /// The width is outside [`MIN_WIDTH`]–[`MAX_WIDTH`].
    #[error("width {0} is outside {MIN_WIDTH}-{MAX_WIDTH}")]
    Width(u32),
    /// The text does not fit in a QR code, or not at this width.
    #[error("text does not fit in a code: {0}")]
    TooLong(String),
    /// PNG encoding failed.
    #[error("png encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

/// Draws `text` as a QR code in a PNG of exactly `style.width` × `style.width` pixels.
///
/// CPU work: call it through the blocking pool, never on the async runtime.
pub fn render_code(text: &str, style: &CodeStyle) -> Result<Vec<u8>, WxacodeError> {
    if !(MIN_WIDTH..=MAX_WIDTH).contains(&style.width) {
        return Err(WxacodeError::Width(style.width));
    }
    // Level M, as most generators use: 15 % of the code may be damaged and it still reads.
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|err| WxacodeError::TooLong(err.to_string()))?;
    let modules = u32::try_from(code.width()).map_err(|_| WxacodeError::TooLong("matrix too large".into()))?;
    let scale = style.width / (modules + 2 * QUIET_MODULES);
    if scale == 0 {
        return Err(WxacodeError::TooLong(format!(
            "{modules} modules do not fit in {} pixels",
            style.width
        )));
    }
    let image = draw(&code.to_colors(), modules, scale, style);
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png).write_image(image.as_raw(), style.width, style.width, image::ExtendedColorType::Rgba8)?;
    Ok(png)
}

/// Paints the matrix (`modules` × `modules`, row-major) at `scale` pixels a module, centred.
fn draw(colors: &[Color], modules: u32, scale: u32, style: &CodeStyle) -> ImageBuffer<Rgba<u8>, Vec<u8>> {
    let width = style.width;
    let offset = (width - modules * scale) / 2;
    let Rgb { r, g, b } = style.line_color;
    let dark = Rgba([r, g, b, 255]);
    // Transparent white rather than transparent black, so a viewer ignoring alpha still shows white.
    let light = if style.hyaline {
        Rgba([255, 255, 255, 0])
    } else {
        Rgba([255, 255, 255, 255])
    };
    ImageBuffer::from_fn(width, width, |x, y| {
        let module = |pixel: u32| pixel.checked_sub(offset).map(|inside| inside / scale).filter(|&at| at < modules);
        match (module(x), module(y)) {
            (Some(column), Some(row)) if colors[(row * modules + column) as usize] == Color::Dark => dark,
            _ => light,
        }
    })
}

#[cfg(test)]
#[path = "wxacode_tests.rs"]
mod tests;
