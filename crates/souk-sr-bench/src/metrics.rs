//! Image quality metrics on luma: PSNR and SSIM (Wang et al. 2004: an 11×11 Gaussian window with
//! σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, averaged over the positions where the window fits).

use image::RgbImage;

/// A single-channel image of f64 samples in 0..=255.
pub struct Luma {
    width: usize,
    height: usize,
    data: Vec<f64>,
}

impl Luma {
    /// BT.601 full-range luma (`0.299 R + 0.587 G + 0.114 B`), without a `border`-pixel frame on
    /// every side (the usual shave of `scale` pixels in super-resolution papers).
    pub fn of(image: &RgbImage, border: u32) -> Luma {
        let (width, height) = (image.width() - 2 * border, image.height() - 2 * border);
        let mut data = Vec::with_capacity((width * height) as usize);
        for y in 0..height {
            for x in 0..width {
                let [r, g, b] = image.get_pixel(x + border, y + border).0;
                data.push(0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b));
            }
        }
        Luma {
            width: width as usize,
            height: height as usize,
            data,
        }
    }
}

/// Peak signal-to-noise ratio in dB (capped at 100 for identical images).
pub fn psnr(reference: &Luma, test: &Luma) -> f64 {
    let sum: f64 = reference.data.iter().zip(&test.data).map(|(a, b)| (a - b) * (a - b)).sum();
    let mse = sum / reference.data.len() as f64;
    if mse == 0.0 {
        return 100.0;
    }
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// The 11-tap Gaussian window (σ = 1.5), normalised to sum 1.
fn window() -> [f64; 11] {
    let mut taps = [0.0; 11];
    for (i, tap) in taps.iter_mut().enumerate() {
        let d = i as f64 - 5.0;
        *tap = (-d * d / (2.0 * 1.5 * 1.5)).exp();
    }
    let sum: f64 = taps.iter().sum();
    taps.map(|tap| tap / sum)
}

/// `values` filtered with the separable window, keeping only the positions where it fits ("valid").
fn filter(values: &[f64], width: usize, height: usize) -> Vec<f64> {
    let taps = window();
    let (out_w, out_h) = (width - 10, height - 10);
    let mut rows = vec![0.0; out_w * height];
    for y in 0..height {
        for x in 0..out_w {
            rows[y * out_w + x] = taps.iter().enumerate().map(|(k, t)| t * values[y * width + x + k]).sum();
        }
    }
    let mut out = vec![0.0; out_w * out_h];
    for y in 0..out_h {
        for x in 0..out_w {
            out[y * out_w + x] = taps.iter().enumerate().map(|(k, t)| t * rows[(y + k) * out_w + x]).sum();
        }
    }
    out
}

/// Mean structural similarity (1 for identical images).
pub fn ssim(reference: &Luma, test: &Luma) -> f64 {
    let (w, h) = (reference.width, reference.height);
    let (c1, c2) = ((0.01 * 255.0_f64).powi(2), (0.03 * 255.0_f64).powi(2));
    let (a, b) = (&reference.data, &test.data);
    let product = |f: &dyn Fn(usize) -> f64| filter(&(0..a.len()).map(f).collect::<Vec<_>>(), w, h);
    let mu_a = filter(a, w, h);
    let mu_b = filter(b, w, h);
    let aa = product(&|i| a[i] * a[i]);
    let bb = product(&|i| b[i] * b[i]);
    let ab = product(&|i| a[i] * b[i]);
    let total: f64 = (0..mu_a.len())
        .map(|i| {
            let (ma, mb) = (mu_a[i], mu_b[i]);
            let (va, vb, cov) = (aa[i] - ma * ma, bb[i] - mb * mb, ab[i] - ma * mb);
            ((2.0 * ma * mb + c1) * (2.0 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        })
        .sum();
    total / mu_a.len() as f64
}

#[cfg(test)]
mod tests {
    use image::Rgb;

    use super::*;

    #[test]
    fn identical_images_score_perfectly_and_noise_scores_less() {
        let a = RgbImage::from_fn(40, 30, |x, y| Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8]));
        let b = RgbImage::from_fn(40, 30, |x, y| {
            let n = if (x * 7 + y * 13) % 5 == 0 { 20 } else { 0 };
            Rgb([(x * 6 + n) as u8, (y * 8) as u8, ((x + y) * 3) as u8])
        });
        let (la, lb) = (Luma::of(&a, 2), Luma::of(&b, 2));
        assert_eq!(psnr(&la, &la), 100.0);
        assert!((ssim(&la, &la) - 1.0).abs() < 1e-9);
        assert!(psnr(&la, &lb) < 40.0);
        assert!(ssim(&la, &lb) < 0.999);
    }
}
