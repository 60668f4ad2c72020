//! img.superresolution (`wire.md` §2, `wechat-wire.md` §7.3): a 2x upscale of an image, encoded for
//! the temp-media store.
//!
//! Images up to the model's budget (config `builtins.superres_model_max_pixels`, by default
//! [`DEFAULT_MODEL_MAX_PIXELS`]) go through the learned model ([`crate::esrgan`], esrgan-slim x2, tile
//! by tile past 256 × 256, for the colour channels; an alpha channel is upscaled with Lanczos3); larger
//! ones, up to [`MAX_INPUT_PIXELS`], with Lanczos3 alone (`image::imageops`), since the model costs
//! about 222,000 multiply-adds per input pixel. Still larger inputs are refused: their 2x result would pass the
//! output cap and the pool's time cap. The result is PNG when the image has an alpha channel (kept)
//! and JPEG otherwise.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageFormat};

use crate::esrgan;

/// The largest 2x result: 4096 × 4096 pixels (souk's choice, so that the Lanczos pass and the
/// encode stay well inside the CPU pool's time cap and the result inside the 10 MB media limit).
pub const MAX_OUTPUT_PIXELS: u64 = 4096 * 4096;
/// The largest input, a quarter of [`MAX_OUTPUT_PIXELS`].
pub const MAX_INPUT_PIXELS: u64 = MAX_OUTPUT_PIXELS / 4;
/// The default largest input the model runs on: 384 × 384 (souk's choice from its cost, measured in
/// a release build at about 30 µs per input pixel on one core, so about 5 s with the tiles' margins:
/// inside the CPU pool's default 10 s cap on a shared machine). Tiling keeps the memory near 100 MB
/// whatever the budget; an operator who raises the budget raises `builtins.cpu_run_ms` with it.
pub const DEFAULT_MODEL_MAX_PIXELS: u64 = 384 * 384;
/// JPEG quality of opaque results.
const JPEG_QUALITY: u8 = 92;

/// Why an image cannot be upscaled.
#[derive(Debug, thiserror::Error)]
pub enum SuperresError {
    /// The image has more than [`MAX_INPUT_PIXELS`] pixels.
    #[error("the image has {0} pixels; at most {MAX_INPUT_PIXELS} can be upscaled")]
    TooLarge(u64),
    /// The result could not be encoded.
    #[error("the result could not be encoded: {0}")]
    Encode(#[from] image::ImageError),
}

/// An upscaled image, encoded.
#[derive(Debug, Clone)]
pub struct Upscaled {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// Their content type (`image/png` or `image/jpeg`).
    pub content_type: &'static str,
    /// The result's width.
    pub width: u32,
    /// The result's height.
    pub height: u32,
}

/// Checks that an image of `width` × `height` may be upscaled.
pub fn check_size(width: u32, height: u32) -> Result<(), SuperresError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_INPUT_PIXELS {
        return Err(SuperresError::TooLarge(pixels));
    }
    Ok(())
}

/// The image at exactly twice its width and height: through the model up to `model_max_pixels`
/// input pixels, with Lanczos3 past them.
pub fn upscale_2x(image: &DynamicImage, model_max_pixels: u64) -> DynamicImage {
    let (width, height) = (image.width() * 2, image.height() * 2);
    if u64::from(image.width()) * u64::from(image.height()) > model_max_pixels {
        return lanczos_2x(image, width, height);
    }
    let colour = esrgan::upscale_2x(&image.to_rgb8());
    if !image.color().has_alpha() {
        return DynamicImage::ImageRgb8(colour);
    }
    let mut upscaled = imageops::resize(&image.to_rgba8(), width, height, FilterType::Lanczos3);
    for (pixel, rgb) in upscaled.pixels_mut().zip(colour.pixels()) {
        pixel.0[..3].copy_from_slice(&rgb.0);
    }
    DynamicImage::ImageRgba8(upscaled)
}

/// Upscales and encodes an image: the whole of img.superresolution's CPU work.
pub fn superresolve(image: &DynamicImage, model_max_pixels: u64) -> Result<Upscaled, SuperresError> {
    check_size(image.width(), image.height())?;
    let upscaled = upscale_2x(image, model_max_pixels);
    let (bytes, content_type) = encode(&upscaled)?;
    Ok(Upscaled {
        bytes,
        content_type,
        width: upscaled.width(),
        height: upscaled.height(),
    })
}

fn lanczos_2x(image: &DynamicImage, width: u32, height: u32) -> DynamicImage {
    if image.color().has_alpha() {
        DynamicImage::ImageRgba8(imageops::resize(&image.to_rgba8(), width, height, FilterType::Lanczos3))
    } else {
        DynamicImage::ImageRgb8(imageops::resize(&image.to_rgb8(), width, height, FilterType::Lanczos3))
    }
}

/// PNG with alpha, JPEG without.
fn encode(image: &DynamicImage) -> Result<(Vec<u8>, &'static str), image::ImageError> {
    let mut out = Cursor::new(Vec::new());
    if image.color().has_alpha() {
        image.write_to(&mut out, ImageFormat::Png)?;
        Ok((out.into_inner(), "image/png"))
    } else {
        image
            .to_rgb8()
            .write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))?;
        Ok((out.into_inner(), "image/jpeg"))
    }
}

#[cfg(test)]
mod tests {
    use image::{Rgba, RgbaImage};

    use super::*;

    #[test]
    fn doubles_both_sides_and_keeps_alpha() {
        let image = DynamicImage::ImageRgba8(RgbaImage::from_pixel(7, 5, Rgba([10, 20, 30, 0])));
        let upscaled = superresolve(&image, DEFAULT_MODEL_MAX_PIXELS).unwrap();
        assert_eq!((upscaled.width, upscaled.height, upscaled.content_type), (14, 10, "image/png"));
        let decoded = image::load_from_memory(&upscaled.bytes).unwrap();
        assert_eq!(decoded.to_rgba8().get_pixel(3, 3)[3], 0);
    }

    #[test]
    fn opaque_images_are_jpeg_and_huge_ones_are_refused() {
        let image = DynamicImage::new_rgb8(9, 4);
        let upscaled = superresolve(&image, DEFAULT_MODEL_MAX_PIXELS).unwrap();
        assert_eq!((upscaled.width, upscaled.height, upscaled.content_type), (18, 8, "image/jpeg"));
        assert!(matches!(check_size(2049, 2048), Err(SuperresError::TooLarge(_))));
        assert!(check_size(2048, 2048).is_ok());
    }

    #[test]
    fn past_the_model_budget_lanczos3_takes_over() {
        let image = DynamicImage::ImageRgba8(RgbaImage::from_pixel(257, 256, Rgba([200, 100, 50, 255])));
        let upscaled = upscale_2x(&image, 256 * 256);
        assert_eq!((upscaled.width(), upscaled.height()), (514, 512));
        assert_eq!(upscaled.to_rgba8().get_pixel(100, 100).0, [200, 100, 50, 255]);
    }
}
