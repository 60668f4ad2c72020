//! The learned 2x upscaler of img.superresolution: the x2 model of the MIT-licensed npm package
//! `@upscalerjs/esrgan-slim` 1.0.0 (an RDN, `rdn-C1-D2-G4-G064-T10-x2`), run on the CPU in plain Rust.
//!
//! The weights ship in the crate (`models/esrgan-slim-x2/`, with the upstream LICENSE and a README
//! saying where they came from) and are embedded with `include_bytes!`: nothing is downloaded at build
//! or run time. `model.json` there is the TFJS layers topology this file follows layer by layer
//! (Conv2D with `same` padding, ReLU, Concatenate, Add, nearest UpSampling2D); `WEIGHTS` is its weight
//! manifest, in the order of the `.bin` shard (little-endian f32), checked against `model.json` by a test.
//!
//! Tensors are height × width × channels f32 arrays. Convolutions are straightforward loops whose
//! innermost loop runs over the output channels, contiguous in both the kernel (`[kh, kw, cin, cout]`,
//! Keras' layout) and the output, so the compiler vectorises it; no tensor library is needed for one
//! fixed graph of 13 convolutions. The model takes and gives RGB values in 0..=255.

use std::sync::OnceLock;

use image::{Rgb, RgbImage};

/// The weight shard (`group1-shard1of1.bin`).
const SHARD: &[u8] = include_bytes!("../models/esrgan-slim-x2/group1-shard1of1.bin");

/// The weight manifest of `model.json`: name and shape, in shard order.
const WEIGHTS: [(&str, &[usize]); 24] = [
    ("F_0/kernel", &[3, 3, 64, 64]),
    ("F_0/bias", &[64]),
    ("F_1_1/kernel", &[3, 3, 64, 4]),
    ("F_1_1/bias", &[4]),
    ("F_2_1/kernel", &[3, 3, 64, 4]),
    ("F_2_1/bias", &[4]),
    ("F_m1/kernel", &[3, 3, 3, 64]),
    ("F_m1/bias", &[64]),
    ("GFF_1/kernel", &[1, 1, 128, 64]),
    ("GFF_1/bias", &[64]),
    ("GFF_2/kernel", &[3, 3, 64, 64]),
    ("GFF_2/bias", &[64]),
    ("LFF_1/kernel", &[1, 1, 68, 64]),
    ("LFF_1/bias", &[64]),
    ("LFF_2/kernel", &[1, 1, 68, 64]),
    ("LFF_2/bias", &[64]),
    ("SR/kernel", &[3, 3, 12, 3]),
    ("SR/bias", &[3]),
    ("UPN1/kernel", &[5, 5, 64, 64]),
    ("UPN1/bias", &[64]),
    ("UPN2/kernel", &[3, 3, 64, 32]),
    ("UPN2/bias", &[32]),
    ("UPN3/kernel", &[3, 3, 32, 12]),
    ("UPN3/bias", &[12]),
];

/// A height × width × channels tensor.
#[derive(Debug, Clone)]
struct Tensor {
    height: usize,
    width: usize,
    channels: usize,
    data: Vec<f32>,
}

impl Tensor {
    fn zeros(height: usize, width: usize, channels: usize) -> Self {
        Self {
            height,
            width,
            channels,
            data: vec![0.0; height * width * channels],
        }
    }

    fn relu(mut self) -> Self {
        self.data.iter_mut().for_each(|value| *value = value.max(0.0));
        self
    }

    fn add(mut self, other: &Tensor) -> Self {
        debug_assert_eq!(self.data.len(), other.data.len());
        self.data.iter_mut().zip(&other.data).for_each(|(value, more)| *value += more);
        self
    }

    /// The channels of `self` then those of `other`, pixel by pixel (Keras `Concatenate(axis=3)`).
    fn concat(&self, other: &Tensor) -> Self {
        let channels = self.channels + other.channels;
        let mut data = Vec::with_capacity(self.height * self.width * channels);
        for (a, b) in self.data.chunks_exact(self.channels).zip(other.data.chunks_exact(other.channels)) {
            data.extend_from_slice(a);
            data.extend_from_slice(b);
        }
        Self {
            height: self.height,
            width: self.width,
            channels,
            data,
        }
    }

    /// Nearest-neighbour 2x (Keras `UpSampling2D(size=2, interpolation="nearest")`).
    fn upsample_2x(&self) -> Self {
        let mut out = Tensor::zeros(self.height * 2, self.width * 2, self.channels);
        let c = self.channels;
        for y in 0..out.height {
            for x in 0..out.width {
                let from = ((y / 2) * self.width + x / 2) * c;
                let to = (y * out.width + x) * c;
                out.data[to..to + c].copy_from_slice(&self.data[from..from + c]);
            }
        }
        out
    }
}

/// One Conv2D layer: stride 1, `same` padding (zeros), odd square kernel.
#[derive(Debug)]
struct Conv {
    size: usize,
    inputs: usize,
    outputs: usize,
    kernel: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv {
    fn apply(&self, input: &Tensor) -> Tensor {
        debug_assert_eq!(input.channels, self.inputs);
        let (height, width) = (input.height, input.width);
        let (k, cin, cout) = (self.size, self.inputs, self.outputs);
        let pad = k / 2;
        let mut out = Tensor::zeros(height, width, cout);
        for y in 0..height {
            for x in 0..width {
                let at = (y * width + x) * cout;
                let acc = &mut out.data[at..at + cout];
                acc.copy_from_slice(&self.bias);
                for ky in 0..k {
                    let Some(iy) = (y + ky).checked_sub(pad).filter(|iy| *iy < height) else {
                        continue;
                    };
                    for kx in 0..k {
                        let Some(ix) = (x + kx).checked_sub(pad).filter(|ix| *ix < width) else {
                            continue;
                        };
                        let pixel = &input.data[(iy * width + ix) * cin..][..cin];
                        let taps = &self.kernel[(ky * k + kx) * cin * cout..][..cin * cout];
                        for (value, row) in pixel.iter().zip(taps.chunks_exact(cout)) {
                            for (sum, tap) in acc.iter_mut().zip(row) {
                                *sum += value * tap;
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

/// The model's layers, by their names in `model.json`.
#[derive(Debug)]
struct Model {
    f_m1: Conv,
    f_0: Conv,
    f_1_1: Conv,
    lff_1: Conv,
    f_2_1: Conv,
    lff_2: Conv,
    gff_1: Conv,
    gff_2: Conv,
    upn1: Conv,
    upn2: Conv,
    upn3: Conv,
    sr: Conv,
}

impl Model {
    /// Reads the embedded shard. Panics only if the shipped files are inconsistent, which the tests
    /// rule out.
    fn load() -> Self {
        let floats: Vec<f32> = SHARD
            .chunks_exact(4)
            .map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
            .collect();
        let mut offset = 0;
        let mut tensors = Vec::with_capacity(WEIGHTS.len());
        for (name, shape) in WEIGHTS {
            let len: usize = shape.iter().product();
            tensors.push((name, shape, floats[offset..offset + len].to_vec()));
            offset += len;
        }
        assert_eq!(offset, floats.len(), "the weight manifest does not cover the shard");
        let conv = |layer: &str| {
            let (_, shape, kernel) = tensors
                .iter()
                .find(|(name, ..)| *name == format!("{layer}/kernel"))
                .expect("kernel");
            let (_, _, bias) = tensors.iter().find(|(name, ..)| *name == format!("{layer}/bias")).expect("bias");
            Conv {
                size: shape[0],
                inputs: shape[2],
                outputs: shape[3],
                kernel: kernel.clone(),
                bias: bias.clone(),
            }
        };
        Self {
            f_m1: conv("F_m1"),
            f_0: conv("F_0"),
            f_1_1: conv("F_1_1"),
            lff_1: conv("LFF_1"),
            f_2_1: conv("F_2_1"),
            lff_2: conv("LFF_2"),
            gff_1: conv("GFF_1"),
            gff_2: conv("GFF_2"),
            upn1: conv("UPN1"),
            upn2: conv("UPN2"),
            upn3: conv("UPN3"),
            sr: conv("SR"),
        }
    }

    /// The graph of `model.json`: shallow features, two residual dense blocks, global fusion, the
    /// upscaling network.
    /// Each intermediate is dropped as soon as the graph is done with it, to keep the peak memory
    /// near five 64-channel tensors.
    fn run(&self, lr: &Tensor) -> Tensor {
        let f_m1 = self.f_m1.apply(lr);
        let fdf = {
            let lrl_1 = self.dense_block(&self.f_0.apply(&f_m1), &self.f_1_1, &self.lff_1);
            let lrl_2 = self.dense_block(&lrl_1, &self.f_2_1, &self.lff_2);
            let gff_1 = self.gff_1.apply(&lrl_1.concat(&lrl_2));
            drop((lrl_1, lrl_2));
            self.gff_2.apply(&gff_1).add(&f_m1)
        };
        drop(f_m1);
        let upn1 = self.upn1.apply(&fdf).relu();
        drop(fdf);
        let upn3 = self.upn3.apply(&self.upn2.apply(&upn1).relu());
        drop(upn1);
        self.sr.apply(&upn3.upsample_2x())
    }

    /// One residual dense block of one layer: `input + fuse([input, relu(conv(input))])`.
    fn dense_block(&self, input: &Tensor, conv: &Conv, fuse: &Conv) -> Tensor {
        let grown = conv.apply(input).relu();
        fuse.apply(&input.concat(&grown)).add(input)
    }
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(Model::load)
}

/// The input side of one tile: images up to this on both sides run whole; larger ones run tile by
/// tile, so that the model's intermediates (about 1.3 kB of f32 per input pixel) stay near 100 MB
/// whatever the image's size.
pub const TILE: usize = 256;
/// Input pixels added around a tile, more than the model's receptive field (11 input pixels, see
/// the upstream test below), so that the tile's interior is computed from exactly the same inputs,
/// in the same order, as in one whole run: the tiled result equals the whole one bit for bit.
pub const TILE_MARGIN: usize = 12;

/// The image at twice its width and height, through the model, tile by tile past [`TILE`].
pub fn upscale_2x(image: &RgbImage) -> RgbImage {
    upscale_2x_tiled(image, TILE)
}

/// [`upscale_2x`] with tiles of `tile` input pixels a side.
pub fn upscale_2x_tiled(image: &RgbImage, tile: usize) -> RgbImage {
    let tile = tile.max(1);
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut out = RgbImage::new(image.width() * 2, image.height() * 2);
    for top in (0..height).step_by(tile) {
        for left in (0..width).step_by(tile) {
            let (bottom, right) = ((top + tile).min(height), (left + tile).min(width));
            // The tile with its margin, clipped to the image (the image's own border is padded
            // with zeros by the model, exactly as in a whole run).
            let (y0, x0) = (top.saturating_sub(TILE_MARGIN), left.saturating_sub(TILE_MARGIN));
            let (y1, x1) = ((bottom + TILE_MARGIN).min(height), (right + TILE_MARGIN).min(width));
            let mut data = Vec::with_capacity((y1 - y0) * (x1 - x0) * 3);
            for y in y0..y1 {
                let row = &image.as_raw()[(y * width + x0) * 3..(y * width + x1) * 3];
                data.extend(row.iter().map(|value| f32::from(*value)));
            }
            let output = model().run(&Tensor {
                height: y1 - y0,
                width: x1 - x0,
                channels: 3,
                data,
            });
            for y in 2 * top..2 * bottom {
                for x in 2 * left..2 * right {
                    let at = ((y - 2 * y0) * output.width + (x - 2 * x0)) * 3;
                    // Clamped to 0..=255 first, so the cast cannot truncate.
                    let channel = |c: usize| output.data[at + c].round().clamp(0.0, 255.0) as u8;
                    out.put_pixel(x as u32, y as u32, Rgb([channel(0), channel(1), channel(2)]));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use image::imageops::{self, FilterType};

    use super::*;

    #[test]
    fn the_manifest_matches_model_json() {
        let topology: serde_json::Value = serde_json::from_str(include_str!("../models/esrgan-slim-x2/model.json")).unwrap();
        let weights = topology["weightsManifest"][0]["weights"].as_array().unwrap();
        assert_eq!(weights.len(), WEIGHTS.len());
        for (entry, (name, shape)) in weights.iter().zip(WEIGHTS) {
            assert_eq!(entry["name"], *name);
            assert_eq!(entry["dtype"], "float32");
            let found: Vec<usize> = entry["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(found, shape, "{name}");
        }
        let floats: usize = WEIGHTS.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
        assert_eq!(floats * 4, SHARD.len());
    }

    /// A textured image: soft gradients, a few sharp edges and a fine stripe pattern.
    fn texture(side: u32) -> RgbImage {
        RgbImage::from_fn(side, side, |x, y| {
            let (fx, fy) = (x as f32, y as f32);
            let wave = ((fx * 0.45).sin() * (fy * 0.3).cos() * 60.0) as i32;
            let edge = if (x / 11 + y / 7) % 2 == 0 { 70 } else { 0 };
            let disc = if (fx - 40.0).powi(2) + (fy - 24.0).powi(2) < 200.0 { 90 } else { 0 };
            let value = |base: i32| (base + wave + edge + disc).clamp(0, 255) as u8;
            Rgb([value(60), value(90), value(40)])
        })
    }

    fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
        let mse: f64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            / a.as_raw().len() as f64;
        10.0 * (255.0 * 255.0 / mse).log10()
    }

    /// The output is UpscalerJS's own: on a crop of the package's `assets/fixture.png` the result's
    /// interior (away from the zero padding, which a crop moves) equals the package's published
    /// `assets/samples/2x/result.png` up to rounding. (On the whole 128×128 fixture: 101 dB.)
    #[test]
    fn matches_the_published_upstream_result() {
        let testdata = |name: &str| {
            let bytes = match name {
                "fixture" => &include_bytes!("../models/esrgan-slim-x2/testdata/fixture-crop.png")[..],
                _ => &include_bytes!("../models/esrgan-slim-x2/testdata/result-2x-crop.png")[..],
            };
            image::load_from_memory(bytes).unwrap().to_rgb8()
        };
        let ours = upscale_2x(&testdata("fixture"));
        assert_eq!(ours.dimensions(), (96, 96));
        // The receptive field reaches 11 input pixels; 12 (24 output pixels) are left out per side.
        let interior = |image: &RgbImage| imageops::crop_imm(image, 24, 24, 48, 48).to_image();
        let fidelity = psnr(&interior(&ours), &interior(&testdata("result")));
        assert!(fidelity > 50.0, "{fidelity:.2} dB from upstream's result");
    }

    /// Tiles with their margins give exactly the whole run's result, including at the image's
    /// borders and with ragged last tiles.
    #[test]
    fn tiles_equal_the_whole_run() {
        let image = imageops::crop_imm(&texture(64), 3, 5, 61, 43).to_image();
        let whole = upscale_2x_tiled(&image, 1024);
        for tile in [16, 25, 40] {
            assert!(upscale_2x_tiled(&image, tile) == whole, "tile {tile}");
        }
    }

    /// A downscale → upscale round trip of a textured image. The model is a sharpening one and does
    /// not beat bicubic on PSNR (measured: 24.08 dB against 24.16 here; 26.1 against 27.7 on the
    /// upstream fixture), so this pins a sound reconstruction, not a win: well above nearest
    /// neighbour and within half a decibel of bicubic.
    #[test]
    fn doubles_the_size_and_reconstructs_a_round_trip() {
        let original = texture(64);
        let small = imageops::resize(&original, 32, 32, FilterType::CatmullRom);
        let learned = upscale_2x(&small);
        assert_eq!(learned.dimensions(), (64, 64));
        let learned = psnr(&learned, &original);
        let bicubic = psnr(&imageops::resize(&small, 64, 64, FilterType::CatmullRom), &original);
        let nearest = psnr(&imageops::resize(&small, 64, 64, FilterType::Nearest), &original);
        assert!(learned > nearest + 1.0, "model {learned:.2} dB, nearest {nearest:.2} dB");
        assert!(learned > bicubic - 0.5, "model {learned:.2} dB, bicubic {bicubic:.2} dB");
    }
}
