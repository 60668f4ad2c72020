//! What the corpus does to a clean code: turns by any angle (bilinear, on white), a mild box blur,
//! and seeded noise, so every run of the benchmark sees the same pixels.

use image::{GrayImage, Luma};

/// A small seeded PRNG (xorshift64*): the same seed gives the same corpus on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (zero is moved off zero, which xorshift cannot leave).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `-amplitude..=amplitude`.
    pub fn symmetric(&mut self, amplitude: i32) -> i32 {
        let span = u64::from(amplitude.unsigned_abs()) * 2 + 1;
        i32::try_from(self.next_u64() % span).unwrap_or(0) - amplitude
    }
}

/// `image` turned clockwise by `degrees`, on a canvas grown to hold it, the corners white.
/// Quarter turns are exact; other angles are sampled bilinearly (as a camera's optics would blur).
pub fn rotate(image: &GrayImage, degrees: f32) -> GrayImage {
    match degrees as i32 {
        90 if degrees.fract() == 0.0 => return image::imageops::rotate90(image),
        180 if degrees.fract() == 0.0 => return image::imageops::rotate180(image),
        270 if degrees.fract() == 0.0 => return image::imageops::rotate270(image),
        0 if degrees == 0.0 => return image.clone(),
        _ => {}
    }
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (w, h) = (image.width() as f32, image.height() as f32);
    let out_w = (w * cos.abs() + h * sin.abs()).ceil() as u32;
    let out_h = (w * sin.abs() + h * cos.abs()).ceil() as u32;
    let (cx, cy) = (w / 2.0, h / 2.0);
    let (ox, oy) = (out_w as f32 / 2.0, out_h as f32 / 2.0);
    GrayImage::from_fn(out_w, out_h, |x, y| {
        // Inverse map: turn the output pixel back by -degrees into the source.
        let (dx, dy) = (x as f32 + 0.5 - ox, y as f32 + 0.5 - oy);
        let sx = cos * dx + sin * dy + cx - 0.5;
        let sy = -sin * dx + cos * dy + cy - 0.5;
        Luma([bilinear(image, sx, sy)])
    })
}

/// The source sampled at a fractional position; outside is white.
fn bilinear(image: &GrayImage, x: f32, y: f32) -> u8 {
    let at = |px: f32, py: f32| -> f32 {
        if px < 0.0 || py < 0.0 || px >= image.width() as f32 || py >= image.height() as f32 {
            255.0
        } else {
            f32::from(image.get_pixel(px as u32, py as u32)[0])
        }
    };
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let top = at(x0, y0) * (1.0 - fx) + at(x0 + 1.0, y0) * fx;
    let bottom = at(x0, y0 + 1.0) * (1.0 - fx) + at(x0 + 1.0, y0 + 1.0) * fx;
    (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8
}

/// A box blur of the given radius (1 is a 3x3 box), edges clamped.
pub fn box_blur(image: &GrayImage, radius: u32) -> GrayImage {
    let (w, h) = image.dimensions();
    let r = i64::from(radius);
    let clamp = |v: i64, size: u32| v.clamp(0, i64::from(size) - 1) as u32;
    GrayImage::from_fn(w, h, |x, y| {
        let mut sum = 0_u32;
        let mut count = 0_u32;
        for dy in -r..=r {
            for dx in -r..=r {
                sum += u32::from(image.get_pixel(clamp(i64::from(x) + dx, w), clamp(i64::from(y) + dy, h))[0]);
                count += 1;
            }
        }
        Luma([u8::try_from(sum / count).unwrap_or(u8::MAX)])
    })
}

/// Uniform noise of up to `amplitude` grey levels added to every pixel.
pub fn noise(image: &GrayImage, amplitude: i32, rng: &mut Rng) -> GrayImage {
    let mut out = image.clone();
    for pixel in out.pixels_mut() {
        let value = i32::from(pixel[0]) + rng.symmetric(amplitude);
        pixel[0] = u8::try_from(value.clamp(0, 255)).unwrap_or(u8::MAX);
    }
    out
}
