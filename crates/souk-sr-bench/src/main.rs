//! Benchmark: souk's super-resolution (`souk-builtins::superres::upscale_2x`, the esrgan-slim x2
//! model within its pixel budget) against bicubic (Catmull-Rom) and Lanczos3 upscaling. Every image
//! is cut into crops of at most 256 × 256, each crop is downscaled by 2 with Catmull-Rom and upscaled
//! back by each method; PSNR and SSIM are measured on luma against the crop, and the time per output
//! megapixel is reported. Images come from `--images DIR` or, by default, from scikit-image's bundled
//! samples exported through `python3` (nothing is installed for you). Progress goes to stderr.

mod metrics;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use image::imageops::{self, FilterType};
use image::{DynamicImage, RgbImage};

use metrics::Luma;

/// Compare souk's super-resolution with bicubic and Lanczos3 upscaling.
#[derive(Parser)]
#[command(name = "souk-sr-bench")]
struct Args {
    /// A folder of PNG/JPEG images; default scikit-image's bundled samples, exported to a temporary folder.
    #[arg(long)]
    images: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The largest crop side (the model gets half of it; at most 512, its 256 × 256 input budget).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(16..=512))]
    crop: u32,
    /// Crops per image (a grid of up to 2 × 2 at the quarter points, so at most 4).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=4))]
    crops: u32,
}

/// The pixels shaved from every side before measuring (the scale, as usual in super-resolution papers).
const BORDER: u32 = 2;

/// scikit-image samples bundled with the package (no download needed).
const SKIMAGE_SAMPLES: &[&str] = &[
    "astronaut",
    "camera",
    "coffee",
    "chelsea",
    "rocket",
    "coins",
    "immunohistochemistry",
];

/// The methods compared, in table order.
const METHODS: [&str; 3] = ["souk model", "bicubic", "lanczos3"];

/// One method's scores and time over a set of crops.
#[derive(Default, Clone)]
struct Score {
    psnr: Vec<f64>,
    ssim: Vec<f64>,
    time: Duration,
    output_pixels: u64,
}

impl Score {
    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len().max(1) as f64
    }
    fn ms_per_megapixel(&self) -> f64 {
        self.time.as_secs_f64() * 1e3 / (self.output_pixels as f64 / 1e6)
    }
    fn merge(&mut self, other: &Score) {
        self.psnr.extend(&other.psnr);
        self.ssim.extend(&other.ssim);
        self.time += other.time;
        self.output_pixels += other.output_pixels;
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("souk-sr-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    // The temporary folder lives until the end of this function.
    let temp = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let (dir, source) = match &args.images {
        Some(dir) => (dir.clone(), dir.display().to_string()),
        None => {
            if !export_skimage(temp.path())? {
                eprintln!(
                    "souk-sr-bench: scikit-image is not importable by python3; install it with \
                     `pip install scikit-image`, or pass --images DIR (PNG/JPEG files)"
                );
                return Ok(ExitCode::from(2));
            }
            (temp.path().to_owned(), "scikit-image bundled samples".to_owned())
        }
    };
    let images = list_images(&dir)?;
    if images.is_empty() {
        return Err(format!("no PNG/JPEG images in {}", dir.display()));
    }
    eprintln!("warming up the model (weights are loaded on first use)");
    souk_builtins::superres::upscale_2x(&DynamicImage::new_rgb8(8, 8), u64::MAX);

    let mut rows: Vec<(String, usize, [Score; 3])> = Vec::new();
    for path in &images {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let image = image::open(path).map_err(|e| format!("{}: {e}", path.display()))?.to_rgb8();
        let crops = crops(&image, args.crop, args.crops);
        if crops.is_empty() {
            eprintln!("{name}: smaller than 16 × 16, skipped");
            continue;
        }
        let mut scores: [Score; 3] = Default::default();
        for (i, crop) in crops.iter().enumerate() {
            eprintln!("{name}: crop {}/{} ({}×{})", i + 1, crops.len(), crop.width(), crop.height());
            measure(crop, &mut scores);
        }
        rows.push((name, crops.len(), scores));
    }
    let mut total: [Score; 3] = Default::default();
    for (_, _, scores) in &rows {
        for (sum, score) in total.iter_mut().zip(scores) {
            sum.merge(score);
        }
    }
    let crop_count: usize = rows.iter().map(|row| row.1).sum();
    print_report(&source, &rows, &total, crop_count);
    if let Some(path) = &args.json {
        let json = to_json(&source, &rows, &total);
        std::fs::write(path, serde_json::to_string_pretty(&json).expect("JSON values serialise"))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Exports scikit-image's bundled samples as PNG into `dir`; false when scikit-image is not importable.
fn export_skimage(dir: &Path) -> Result<bool, String> {
    let script = format!(
        r#"
import sys
try:
    import numpy as np
    from skimage import data, io
except ImportError:
    sys.exit(3)
for name in {SKIMAGE_SAMPLES:?}:
    try:
        img = getattr(data, name)()
    except Exception as e:
        print(f"skipped {{name}}: {{e}}", file=sys.stderr)
        continue
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    io.imsave(sys.argv[1] + "/" + name + ".png", img, check_contrast=False)
"#
    );
    eprintln!("exporting scikit-image samples into {}", dir.display());
    let status = Command::new("python3").arg("-c").arg(script).arg(dir).status();
    match status {
        Ok(status) if status.success() => Ok(true),
        Ok(status) if status.code() == Some(3) => Ok(false),
        Ok(status) => Err(format!("exporting scikit-image samples failed ({status})")),
        // No python3 at all: scikit-image is not importable either.
        Err(_) => Ok(false),
    }
}

/// The PNG and JPEG files of `dir`, sorted by name.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut images: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
            matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg"))
        })
        .collect();
    images.sort();
    Ok(images)
}

/// Up to `count` square crops of an even side at most `max_side`, centred on the quarter points of
/// the image (clamped inside it), without repeats.
fn crops(image: &RgbImage, max_side: u32, count: u32) -> Vec<RgbImage> {
    let side = max_side.min(image.width()).min(image.height()) & !1;
    if side < 16 {
        return Vec::new();
    }
    let at = |length: u32, quarter: u32| (length * quarter / 4).saturating_sub(side / 2).min(length - side);
    let grid = [(1, 1), (3, 3), (3, 1), (1, 3)];
    let mut origins: Vec<(u32, u32)> = Vec::new();
    for (qx, qy) in grid {
        let origin = (at(image.width(), qx), at(image.height(), qy));
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    origins
        .into_iter()
        .take(count as usize)
        .map(|(x, y)| imageops::crop_imm(image, x, y, side, side).to_image())
        .collect()
}

/// Downscales `crop` by 2 (Catmull-Rom), upscales it back with each method and scores the results.
fn measure(crop: &RgbImage, scores: &mut [Score; 3]) {
    let (width, height) = crop.dimensions();
    let low = imageops::resize(crop, width / 2, height / 2, FilterType::CatmullRom);
    let reference = Luma::of(crop, BORDER);
    for (method, score) in scores.iter_mut().enumerate() {
        let started = Instant::now();
        let upscaled = match method {
            0 => souk_builtins::superres::upscale_2x(&DynamicImage::ImageRgb8(low.clone()), u64::MAX).to_rgb8(),
            1 => imageops::resize(&low, width, height, FilterType::CatmullRom),
            _ => imageops::resize(&low, width, height, FilterType::Lanczos3),
        };
        score.time += started.elapsed();
        score.output_pixels += u64::from(width) * u64::from(height);
        let test = Luma::of(&upscaled, BORDER);
        score.psnr.push(metrics::psnr(&reference, &test));
        score.ssim.push(metrics::ssim(&reference, &test));
    }
}

fn print_report(source: &str, rows: &[(String, usize, [Score; 3])], total: &[Score; 3], crops: usize) {
    println!(
        "souk-sr-bench: 2x super-resolution on {source}, {} images, {crops} crops",
        rows.len()
    );
    println!("(crop ↓2 with Catmull-Rom, ↑2 by each method; PSNR and SSIM on BT.601 luma, {BORDER}-px border shaved;");
    println!(" SSIM with an 11×11 Gaussian window, σ 1.5; time is the upscale alone, per output megapixel)");
    println!();
    println!("{:<12} {:>10} {:>8} {:>12}", "method", "PSNR (dB)", "SSIM", "ms/MP out");
    for (name, score) in METHODS.iter().zip(total) {
        println!(
            "{name:<12} {:>10.2} {:>8.4} {:>12.1}",
            Score::mean(&score.psnr),
            Score::mean(&score.ssim),
            score.ms_per_megapixel()
        );
    }
    println!();
    println!(
        "{:<22} {:>5}   {:>20} {:>20} {:>20}",
        "image", "crops", METHODS[0], METHODS[1], METHODS[2]
    );
    println!(
        "{:<22} {:>5}   {:>20} {:>20} {:>20}",
        "", "", "PSNR / SSIM", "PSNR / SSIM", "PSNR / SSIM"
    );
    for (name, count, scores) in rows {
        let cell = |s: &Score| format!("{:.2} / {:.4}", Score::mean(&s.psnr), Score::mean(&s.ssim));
        println!(
            "{name:<22} {count:>5}   {:>20} {:>20} {:>20}",
            cell(&scores[0]),
            cell(&scores[1]),
            cell(&scores[2])
        );
    }
}

fn to_json(source: &str, rows: &[(String, usize, [Score; 3])], total: &[Score; 3]) -> serde_json::Value {
    let methods = |scores: &[Score; 3]| {
        METHODS
            .iter()
            .zip(scores)
            .map(|(name, s)| {
                serde_json::json!({
                    "method": name,
                    "psnr_db": Score::mean(&s.psnr),
                    "ssim": Score::mean(&s.ssim),
                    "ms_per_output_megapixel": s.ms_per_megapixel(),
                })
            })
            .collect::<Vec<_>>()
    };
    serde_json::json!({
        "source": source,
        "metric_notes": "PSNR and SSIM on BT.601 luma, 2-px border shaved; SSIM 11x11 Gaussian sigma 1.5",
        "overall": methods(total),
        "images": rows
            .iter()
            .map(|(name, crops, scores)| serde_json::json!({ "image": name, "crops": crops, "methods": methods(scores) }))
            .collect::<Vec<_>>(),
    })
}
