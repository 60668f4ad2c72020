//! Image inputs with limits: what every built-in that reads an image (scan, crop, temp media) calls
//! before it trusts the bytes.
//!
//! - The format is sniffed from the content (magic bytes), never from a file name or a declared
//!   content type; only PNG, JPEG, GIF, BMP and WebP are images here.
//! - The byte size is capped ([`MAX_INPUT_BYTES`], 2 MB, the `/cv/img/*` limit of `wechat-wire.md` §7).
//! - The pixel count is capped against decompression bombs: the dimensions are read from the header
//!   ([`probe`]) and checked before a single pixel is decoded, and the decoder runs with
//!   [`image::Limits`] as a second guard.
//!
//! All of it is CPU work: call [`decode`] through [`crate::pool::CpuPool::run`], never on the async
//! runtime. [`probe`] only reads the header and is cheap, but still synchronous.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The largest input of the `/cv/img/*` APIs: 2 MB (`wechat-wire.md` §7, "under 2 MB").
pub const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;
/// The most pixels decoded: 25 megapixels (about 100 MB as RGBA8), far above any 2 MB photo.
pub const MAX_PIXELS: u64 = 25_000_000;
/// The longest side decoded, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// How much input is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest input, in bytes.
    pub max_bytes: usize,
    /// Most pixels (width × height).
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_side: u32,
}

impl Default for InputLimits {
    /// The `/cv/img/*` limits: [`MAX_INPUT_BYTES`], [`MAX_PIXELS`], [`MAX_SIDE`].
    fn default() -> Self {
        InputLimits {
            max_bytes: MAX_INPUT_BYTES,
            max_pixels: MAX_PIXELS,
            max_side: MAX_SIDE,
        }
    }
}

impl InputLimits {
    /// The default limits with another byte cap (temp media takes larger files).
    pub fn with_max_bytes(max_bytes: usize) -> Self {
        InputLimits {
            max_bytes,
            ..InputLimits::default()
        }
    }
}

/// An image format souk accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF (the first frame is decoded).
    Gif,
    /// BMP.
    Bmp,
    /// WebP.
    Webp,
}

impl ImageKind {
    /// The content type, `image/<kind>`.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Gif => "image/gif",
            ImageKind::Bmp => "image/bmp",
            ImageKind::Webp => "image/webp",
        }
    }

    /// The usual file extension, without a dot (`jpg` for JPEG, as WeChat's media downloads name it).
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Gif => "gif",
            ImageKind::Bmp => "bmp",
            ImageKind::Webp => "webp",
        }
    }

    fn from_format(format: ImageFormat) -> Option<ImageKind> {
        match format {
            ImageFormat::Png => Some(ImageKind::Png),
            ImageFormat::Jpeg => Some(ImageKind::Jpeg),
            ImageFormat::Gif => Some(ImageKind::Gif),
            ImageFormat::Bmp => Some(ImageKind::Bmp),
            ImageFormat::WebP => Some(ImageKind::Webp),
            _ => None,
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// The sniffed format.
    pub kind: ImageKind,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// No bytes at all.
    #[error("the image is empty")]
    Empty,
    /// More bytes than the limit.
    #[error("the image is larger than {limit} bytes")]
    TooLarge {
        /// The byte limit.
        limit: usize,
    },
    /// The content is not one of the accepted image formats.
    #[error("the content is not a png, jpeg, gif, bmp or webp image")]
    NotAnImage,
    /// The header announces more pixels (or a longer side) than the limit.
    #[error("the image is {width}x{height}, more pixels than souk decodes")]
    TooManyPixels {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The content looks like an image but does not decode.
    #[error("the image does not decode: {0}")]
    Corrupt(String),
}

/// The accepted format of `bytes`, from their first bytes only.
pub fn sniff(bytes: &[u8]) -> Option<ImageKind> {
    image::guess_format(bytes).ok().and_then(ImageKind::from_format)
}

/// Checks size, format and dimensions without decoding pixels.
pub fn probe(bytes: &[u8], limits: &InputLimits) -> Result<ImageInfo, InputError> {
    let kind = check_bytes(bytes, limits)?;
    // The header is read without the decoder's limits, so an oversized image is reported with its
    // dimensions; pixels are decoded only by [`decode`], with them.
    let mut header = reader(bytes, kind, limits);
    header.no_limits();
    let (width, height) = header.into_dimensions().map_err(|err| InputError::Corrupt(err.to_string()))?;
    check_dimensions(width, height, limits)?;
    Ok(ImageInfo { kind, width, height })
}

/// Checks like [`probe`], then decodes the pixels (the first frame of an animation).
pub fn decode(bytes: &[u8], limits: &InputLimits) -> Result<(ImageInfo, DynamicImage), InputError> {
    let info = probe(bytes, limits)?;
    let image = reader(bytes, info.kind, limits)
        .decode()
        .map_err(|err| InputError::Corrupt(err.to_string()))?;
    Ok((info, image))
}

fn check_bytes(bytes: &[u8], limits: &InputLimits) -> Result<ImageKind, InputError> {
    if bytes.is_empty() {
        return Err(InputError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(InputError::TooLarge { limit: limits.max_bytes });
    }
    sniff(bytes).ok_or(InputError::NotAnImage)
}

fn check_dimensions(width: u32, height: u32, limits: &InputLimits) -> Result<(), InputError> {
    let pixels = u64::from(width) * u64::from(height);
    if width == 0 || height == 0 {
        return Err(InputError::Corrupt("the image has no pixels".to_owned()));
    }
    if pixels > limits.max_pixels || width > limits.max_side || height > limits.max_side {
        return Err(InputError::TooManyPixels { width, height });
    }
    Ok(())
}

/// A reader of `bytes` as `kind` (already sniffed), with the decoder's own limits set.
fn reader<'a>(bytes: &'a [u8], kind: ImageKind, limits: &InputLimits) -> ImageReader<Cursor<&'a [u8]>> {
    let format = match kind {
        ImageKind::Png => ImageFormat::Png,
        ImageKind::Jpeg => ImageFormat::Jpeg,
        ImageKind::Gif => ImageFormat::Gif,
        ImageKind::Bmp => ImageFormat::Bmp,
        ImageKind::Webp => ImageFormat::WebP,
    };
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_side);
    decoder_limits.max_image_height = Some(limits.max_side);
    // Room for 16-bit RGBA of the largest accepted image, plus the decoder's own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits);
    reader
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Rgb};

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = ImageBuffer::from_pixel(width, height, Rgb([200u8, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// A PNG whose header claims `width`×`height` (the pixel data is never read by a probe).
    fn png_header_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut png = encoded(1, 1, ImageFormat::Png);
        // IHDR data starts at byte 16: width, height (big endian); fix its CRC after.
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFF_u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    #[test]
    fn formats_are_sniffed_by_content() {
        for (format, kind) in [
            (ImageFormat::Png, ImageKind::Png),
            (ImageFormat::Jpeg, ImageKind::Jpeg),
            (ImageFormat::Gif, ImageKind::Gif),
            (ImageFormat::Bmp, ImageKind::Bmp),
        ] {
            let bytes = encoded(7, 5, format);
            assert_eq!(sniff(&bytes), Some(kind), "{format:?}");
            let (info, image) = decode(&bytes, &InputLimits::default()).unwrap();
            assert_eq!((info.kind, info.width, info.height), (kind, 7, 5));
            assert_eq!((image.width(), image.height()), (7, 5));
        }
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(ImageKind::Jpeg.extension(), "jpg");
        assert_eq!(ImageKind::Webp.mime(), "image/webp");
    }

    #[test]
    fn non_images_are_refused() {
        let limits = InputLimits::default();
        assert_eq!(probe(b"", &limits), Err(InputError::Empty));
        assert_eq!(probe(b"hello, world", &limits), Err(InputError::NotAnImage));
        assert_eq!(probe(b"%PDF-1.4\n", &limits), Err(InputError::NotAnImage));
        // A TIFF is an image, but not one souk accepts.
        assert_eq!(probe(b"II*\0\x08\0\0\0", &limits), Err(InputError::NotAnImage));
        // The right magic with nothing behind it.
        let png = encoded(3, 3, ImageFormat::Png);
        assert!(matches!(probe(&png[..12], &limits), Err(InputError::Corrupt(_))));
        assert!(matches!(decode(&png[..png.len() - 20], &limits), Err(InputError::Corrupt(_))));
    }

    #[test]
    fn byte_size_is_capped() {
        let png = encoded(3, 3, ImageFormat::Png);
        let limits = InputLimits::with_max_bytes(png.len() - 1);
        assert_eq!(probe(&png, &limits), Err(InputError::TooLarge { limit: png.len() - 1 }));
        assert!(probe(&png, &InputLimits::with_max_bytes(png.len())).is_ok());
        let mut big = png.clone();
        big.resize(MAX_INPUT_BYTES + 1, 0);
        assert_eq!(
            probe(&big, &InputLimits::default()),
            Err(InputError::TooLarge { limit: MAX_INPUT_BYTES })
        );
    }

    #[test]
    fn decompression_bombs_are_refused_from_the_header() {
        let limits = InputLimits::default();
        let bomb = png_header_claiming(16_000, 16_000);
        assert_eq!(
            decode(&bomb, &limits).err(),
            Some(InputError::TooManyPixels {
                width: 16_000,
                height: 16_000
            })
        );
        let long = png_header_claiming(100_000, 1);
        assert_eq!(probe(&long, &limits), Err(InputError::TooManyPixels { width: 100_000, height: 1 }));
        let fine = png_header_claiming(4000, 3000);
        assert_eq!(probe(&fine, &limits).map(|info| (info.width, info.height)), Ok((4000, 3000)));
    }
}
