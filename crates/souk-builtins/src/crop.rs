//! Smart crop for `img.aiCrop` (`wire.md` §2, `wechat-wire.md` §7.1): for each requested width/height
//! ratio, the largest window of that ratio that fits the image, placed where the content is.
//!
//! How:
//! 1. The image is shrunk so its longest side is at most [`SCORE_SIDE`] pixels (a fast area average).
//! 2. Every pixel of the small copy gets a score: edge energy (Sobel magnitude of the luminance),
//!    plus colour saturation, plus a skin-tone bonus (the YCbCr rule of Chai and Ngan, 1999:
//!    77 ≤ Cb ≤ 127, 133 ≤ Cr ≤ 173), plus a small floor; the sum is multiplied by a mild centre prior
//!    (1 at the centre, 0.75 in the corners), so equal content is broken towards the middle and a flat
//!    image is cropped in its centre.
//! 3. For each ratio the window is slid over the score map; a summed-area table makes each window's
//!    sum O(1). The best position is mapped back to the original pixels and clamped inside the image.
//!
//! Without ratios, souk tries [`AUTO_RATIOS`] and answers the best [`AUTO_RESULTS`] by **mean score**
//! (the window's sum over its area): every candidate window already spans the whole width or height,
//! so the mean rewards the ratio whose window holds the content most tightly, and a plain sum would
//! always prefer the biggest window.
//!
//! Coordinates are pixel indices and inclusive, as the platform's sample shows (a 966×728 image's
//! square crop is `crop_top: 0, crop_bottom: 727`): the window is `crop_right - crop_left + 1` pixels
//! wide, and that pixel count has the requested ratio, rounded. Everything here is pure and
//! deterministic; it is CPU work, so call it through [`crate::pool`].

use image::{imageops, DynamicImage, GenericImageView, RgbImage};

/// The longest side of the copy the score map is computed on.
pub const SCORE_SIDE: u32 = 256;
/// The most ratios one request may ask for (`wechat-wire.md` §7.1: "up to 5").
pub const MAX_RATIOS: usize = 5;
/// The narrowest ratio accepted (1:20).
pub const MIN_RATIO: f64 = 0.05;
/// The widest ratio accepted (20:1).
pub const MAX_RATIO: f64 = 20.0;
/// The ratios tried when none is asked for: square, 4:3 and 3:4, 16:9 and 9:16, and cinema 2.35:1.
pub const AUTO_RATIOS: [f64; 6] = [1.0, 4.0 / 3.0, 3.0 / 4.0, 16.0 / 9.0, 9.0 / 16.0, 2.35];
/// How many crops are answered when no ratio is asked for (the platform's sample answers two).
pub const AUTO_RESULTS: usize = 2;

/// Weight of saturation in a pixel's score (edge energy has weight 1).
const SATURATION_WEIGHT: f32 = 0.3;
/// Weight of a skin-tone pixel.
const SKIN_WEIGHT: f32 = 0.5;
/// The score every pixel has, so that the centre prior decides between flat regions.
const SCORE_FLOOR: f32 = 0.05;
/// How much the centre prior takes away in the corners.
const CENTRE_PRIOR: f32 = 0.25;

/// A crop window in the original image's pixels; all four edges are inclusive pixel indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    /// Left column.
    pub left: u32,
    /// Top row.
    pub top: u32,
    /// Right column (inclusive).
    pub right: u32,
    /// Bottom row (inclusive).
    pub bottom: u32,
}

impl Crop {
    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.right - self.left + 1
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.bottom - self.top + 1
    }
}

/// Why a `ratios` field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatiosError {
    /// More than [`MAX_RATIOS`] ratios.
    #[error("ratios has {0} items, at most 5 are allowed")]
    TooMany(usize),
    /// An item is not a number (or is empty, as in `1,,2`).
    #[error("ratio {0:?} is not a number")]
    NotANumber(String),
    /// An item is a number outside [`MIN_RATIO`]..=[`MAX_RATIO`] (zero, negative, or absurd).
    #[error("ratio {0:?} is outside 0.05..=20")]
    OutOfRange(String),
}

/// Parses the `ratios` form field: up to five width/height ratios separated by commas (`1,2.35`),
/// spaces around items allowed. An empty or blank field is no ratio (choose automatically).
pub fn parse_ratios(text: &str) -> Result<Vec<f64>, RatiosError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.len() > MAX_RATIOS {
        return Err(RatiosError::TooMany(items.len()));
    }
    items
        .into_iter()
        .map(|item| {
            let ratio: f64 = item.parse().map_err(|_| RatiosError::NotANumber(item.to_owned()))?;
            if !ratio.is_finite() {
                return Err(RatiosError::NotANumber(item.to_owned()));
            }
            if !(MIN_RATIO..=MAX_RATIO).contains(&ratio) {
                return Err(RatiosError::OutOfRange(item.to_owned()));
            }
            Ok(ratio)
        })
        .collect()
}

/// The crops of `image`: one per ratio in `ratios`, in order, or the best [`AUTO_RESULTS`] of
/// [`AUTO_RATIOS`] when `ratios` is empty. Ratios outside [`MIN_RATIO`]..=[`MAX_RATIO`] are clamped
/// into it ([`parse_ratios`] refuses them first).
pub fn smart_crop(image: &RgbImage, ratios: &[f64]) -> Vec<Crop> {
    let (width, height) = image.dimensions();
    let (small_width, small_height) = score_size(width, height);
    let small = if (small_width, small_height) == (width, height) {
        image.clone()
    } else {
        imageops::thumbnail(image, small_width, small_height)
    };
    crops(&ScoreMap::new(&small), width, height, ratios)
}

/// [`smart_crop`] of any decoded image; shrinks it before converting, so a large image is never
/// copied whole.
pub fn smart_crop_image(image: &DynamicImage, ratios: &[f64]) -> Vec<Crop> {
    let (width, height) = image.dimensions();
    let (small_width, small_height) = score_size(width, height);
    let small = if (small_width, small_height) == (width, height) {
        image.to_rgb8()
    } else {
        image.thumbnail_exact(small_width, small_height).to_rgb8()
    };
    crops(&ScoreMap::new(&small), width, height, ratios)
}

/// The score map's size: longest side at most [`SCORE_SIDE`], aspect kept, at least 1×1.
fn score_size(width: u32, height: u32) -> (u32, u32) {
    let longest = width.max(height);
    if longest <= SCORE_SIDE {
        return (width.max(1), height.max(1));
    }
    let scale = f64::from(SCORE_SIDE) / f64::from(longest);
    let side = |length: u32| ((f64::from(length) * scale).round() as u32).clamp(1, SCORE_SIDE);
    (side(width), side(height))
}

fn crops(map: &ScoreMap, width: u32, height: u32, ratios: &[f64]) -> Vec<Crop> {
    if !ratios.is_empty() {
        return ratios.iter().map(|&ratio| map.best_window(width, height, ratio).0).collect();
    }
    let mut ranked: Vec<(Crop, f64)> = AUTO_RATIOS.iter().map(|&ratio| map.best_window(width, height, ratio)).collect();
    // A stable sort keeps AUTO_RATIOS' order between equal means.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut chosen: Vec<Crop> = Vec::with_capacity(AUTO_RESULTS);
    for (crop, _) in ranked {
        if !chosen.contains(&crop) {
            chosen.push(crop);
        }
        if chosen.len() == AUTO_RESULTS {
            break;
        }
    }
    chosen
}

/// The largest window of `ratio` (width/height, in pixel counts) inside `width`×`height`, at least 1×1.
fn window_size(width: u32, height: u32, ratio: f64) -> (u32, u32) {
    let ratio = ratio.clamp(MIN_RATIO, MAX_RATIO);
    if f64::from(width) >= f64::from(height) * ratio {
        let window_width = (f64::from(height) * ratio).round() as u32;
        (window_width.clamp(1, width), height)
    } else {
        let window_height = (f64::from(width) / ratio).round() as u32;
        (width, window_height.clamp(1, height))
    }
}

/// Per-pixel scores of the small copy, as a summed-area table.
struct ScoreMap {
    width: u32,
    height: u32,
    /// `(width + 1) × (height + 1)`; entry `(x, y)` is the sum of scores above and left of it.
    table: Vec<f64>,
}

impl ScoreMap {
    fn new(image: &RgbImage) -> ScoreMap {
        let (width, height) = image.dimensions();
        let luma: Vec<f32> = image.pixels().map(|pixel| luminance(pixel.0)).collect();
        let stride = width as usize + 1;
        let mut table = vec![0.0_f64; stride * (height as usize + 1)];
        for y in 0..height {
            let mut row = 0.0_f64;
            for x in 0..width {
                let rgb = image.get_pixel(x, y).0;
                let skin = if is_skin(rgb) { SKIN_WEIGHT } else { 0.0 };
                let content = sobel(&luma, width, height, x, y) + SATURATION_WEIGHT * saturation(rgb) + skin;
                row += f64::from((content + SCORE_FLOOR) * centre_prior(width, height, x, y));
                let (x, y) = (x as usize, y as usize);
                table[(y + 1) * stride + x + 1] = table[y * stride + x + 1] + row;
            }
        }
        ScoreMap { width, height, table }
    }

    /// The sum of scores in the `w`×`h` window at (`x`, `y`), all in map pixels.
    fn sum(&self, x: u32, y: u32, w: u32, h: u32) -> f64 {
        let stride = self.width as usize + 1;
        let at = |x: u32, y: u32| self.table[y as usize * stride + x as usize];
        at(x + w, y + h) - at(x, y + h) - at(x + w, y) + at(x, y)
    }

    /// The best window of `ratio` in an original image of `width`×`height`, with its mean score.
    fn best_window(&self, width: u32, height: u32, ratio: f64) -> (Crop, f64) {
        let (window_width, window_height) = window_size(width, height, ratio);
        let scale_x = f64::from(width) / f64::from(self.width);
        let scale_y = f64::from(height) / f64::from(self.height);
        let map_w = ((f64::from(window_width) / scale_x).round() as u32).clamp(1, self.width);
        let map_h = ((f64::from(window_height) / scale_y).round() as u32).clamp(1, self.height);
        let (mut best, mut best_at) = (f64::NEG_INFINITY, (0, 0));
        for y in 0..=self.height - map_h {
            for x in 0..=self.width - map_w {
                let sum = self.sum(x, y, map_w, map_h);
                if sum > best {
                    (best, best_at) = (sum, (x, y));
                }
            }
        }
        let place = |at: u32, scale: f64, window: u32, side: u32| ((f64::from(at) * scale).round() as u32).min(side - window);
        let left = place(best_at.0, scale_x, window_width, width);
        let top = place(best_at.1, scale_y, window_height, height);
        let crop = Crop {
            left,
            top,
            right: left + window_width - 1,
            bottom: top + window_height - 1,
        };
        (crop, best / f64::from(map_w * map_h))
    }
}

/// Rec. 601 luma, 0..=255.
fn luminance([r, g, b]: [u8; 3]) -> f32 {
    0.299 * f32::from(r) + 0.587 * f32::from(g) + 0.114 * f32::from(b)
}

/// The Sobel gradient magnitude at (`x`, `y`), edges replicated, scaled to 0..=1.
fn sobel(luma: &[f32], width: u32, height: u32, x: u32, y: u32) -> f32 {
    let at = |dx: i64, dy: i64| {
        let cx = (i64::from(x) + dx).clamp(0, i64::from(width) - 1) as usize;
        let cy = (i64::from(y) + dy).clamp(0, i64::from(height) - 1) as usize;
        luma[cy * width as usize + cx]
    };
    let gx = at(1, -1) + 2.0 * at(1, 0) + at(1, 1) - at(-1, -1) - 2.0 * at(-1, 0) - at(-1, 1);
    let gy = at(-1, 1) + 2.0 * at(0, 1) + at(1, 1) - at(-1, -1) - 2.0 * at(0, -1) - at(1, -1);
    // The largest magnitude along one axis is 4 × 255.
    ((gx * gx + gy * gy).sqrt() / (4.0 * 255.0)).min(1.0)
}

/// HSV saturation, 0..=1.
fn saturation(rgb: [u8; 3]) -> f32 {
    let max = rgb.into_iter().max().unwrap_or(0);
    let min = rgb.into_iter().min().unwrap_or(0);
    if max == 0 {
        0.0
    } else {
        f32::from(max - min) / f32::from(max)
    }
}

/// The YCbCr skin rule of Chai and Ngan (1999), ignoring very dark pixels.
fn is_skin([r, g, b]: [u8; 3]) -> bool {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
    let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
    y > 40.0 && (77.0..=127.0).contains(&cb) && (133.0..=173.0).contains(&cr)
}

/// 1 at the centre, falling to `1 - CENTRE_PRIOR` in the corners.
fn centre_prior(width: u32, height: u32, x: u32, y: u32) -> f32 {
    let offset = |at: u32, side: u32| {
        if side <= 1 {
            0.0
        } else {
            (at as f32 + 0.5) / side as f32 * 2.0 - 1.0
        }
    };
    let (dx, dy) = (offset(x, width), offset(y, height));
    1.0 - CENTRE_PRIOR * (dx * dx + dy * dy) / 2.0
}

#[cfg(test)]
#[path = "crop_tests.rs"]
mod tests;
