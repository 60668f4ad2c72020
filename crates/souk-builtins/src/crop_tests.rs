//! Tests of [`super`]: crops find an off-centre object, every window is inside the image and of its
//! ratio, degenerate sizes, and the `ratios` field's parsing.

use image::{DynamicImage, Rgb, RgbImage};

use super::*;

/// A flat grey 600×400 canvas with a bright, textured 120×120 object at (400, 60).
const OBJECT: (u32, u32, u32, u32) = (400, 60, 520, 180);

fn scene() -> RgbImage {
    let (left, top, right, bottom) = OBJECT;
    RgbImage::from_fn(600, 400, |x, y| {
        if (left..right).contains(&x) && (top..bottom).contains(&y) {
            if (x / 8 + y / 8) % 2 == 0 {
                Rgb([250, 40, 30])
            } else {
                Rgb([250, 220, 40])
            }
        } else {
            Rgb([128, 128, 128])
        }
    })
}

/// Whether `crop` lies inside a `width`×`height` image and has `ratio` within a pixel of rounding.
fn check_window(crop: Crop, width: u32, height: u32, ratio: f64) {
    assert!(crop.left <= crop.right && crop.right < width, "{crop:?} in {width}x{height}");
    assert!(crop.top <= crop.bottom && crop.bottom < height, "{crop:?} in {width}x{height}");
    let (w, h) = (f64::from(crop.width()), f64::from(crop.height()));
    let ratio = ratio.clamp(MIN_RATIO, MAX_RATIO);
    assert!(
        (w - h * ratio).abs() <= 1.0 || (h - w / ratio).abs() <= 1.0,
        "{crop:?} is not {ratio} in {width}x{height}"
    );
    // The largest such window: it spans the whole width or the whole height.
    assert!(crop.width() == width || crop.height() == height, "{crop:?} in {width}x{height}");
}

fn contains_object(crop: Crop) -> bool {
    let (left, top, right, bottom) = OBJECT;
    crop.left <= left && crop.top <= top && crop.right >= right - 1 && crop.bottom >= bottom - 1
}

#[test]
fn crops_contain_the_off_centre_object() {
    let image = scene();
    let ratios = [1.0, 0.75, 0.5, 16.0 / 9.0, 2.35];
    let crops = smart_crop(&image, &ratios);
    assert_eq!(crops.len(), ratios.len());
    for (crop, ratio) in crops.into_iter().zip(ratios) {
        check_window(crop, 600, 400, ratio);
        assert!(contains_object(crop), "ratio {ratio}: {crop:?} misses the object");
    }
    // The square is the largest one (400×400), moved right of the centre (left 100) just far enough
    // to hold the object: the centre prior keeps it as central as the content allows.
    let square = smart_crop(&image, &[1.0])[0];
    assert_eq!((square.top, square.bottom), (0, 399));
    assert!((120..=130).contains(&square.left), "{square:?}");
}

#[test]
fn the_dynamic_image_entry_agrees() {
    let image = scene();
    let ratios = [1.0, 2.35];
    assert_eq!(
        smart_crop_image(&DynamicImage::ImageRgb8(image.clone()), &ratios),
        smart_crop(&image, &ratios)
    );
}

#[test]
fn large_images_are_scored_on_a_small_copy() {
    // 2400×1600: the object scaled by 4, the score map 256×171.
    let small = scene();
    let image = RgbImage::from_fn(2400, 1600, |x, y| *small.get_pixel(x / 4, y / 4));
    for ratio in [1.0, 0.5, 2.35] {
        let crop = smart_crop(&image, &[ratio])[0];
        check_window(crop, 2400, 1600, ratio);
        let (left, top, right, bottom) = OBJECT;
        assert!(crop.left <= left * 4 + 8 && crop.right + 8 >= right * 4 - 1, "{ratio}: {crop:?}");
        assert!(crop.top <= top * 4 + 8 && crop.bottom + 8 >= bottom * 4 - 1, "{ratio}: {crop:?}");
    }
}

#[test]
fn a_flat_image_is_cropped_in_its_centre() {
    let image = RgbImage::from_pixel(300, 100, Rgb([20, 20, 20]));
    assert_eq!(
        smart_crop(&image, &[1.0])[0],
        Crop {
            left: 100,
            top: 0,
            right: 199,
            bottom: 99
        }
    );
}

#[test]
fn the_platform_sample_geometry() {
    // wechat-wire.md §7.1: a 966×728 image, ratios 1 and 2.35 give 728×728 and 966×411 windows.
    let image = RgbImage::from_pixel(966, 728, Rgb([90, 120, 200]));
    let crops = smart_crop(&image, &[1.0, 2.35]);
    assert_eq!(
        (crops[0].width(), crops[0].height(), crops[0].top, crops[0].bottom),
        (728, 728, 0, 727)
    );
    assert_eq!((crops[1].left, crops[1].right, crops[1].height()), (0, 965, 411));
}

#[test]
fn without_ratios_the_best_two_distinct_are_answered() {
    let image = scene();
    let crops = smart_crop(&image, &[]);
    assert_eq!(crops.len(), AUTO_RESULTS);
    assert_ne!(crops[0], crops[1]);
    for crop in crops {
        assert!(contains_object(crop), "{crop:?}");
        assert!(
            AUTO_RATIOS.iter().any(|&ratio| {
                let (w, h) = window_size(600, 400, ratio);
                (w, h) == (crop.width(), crop.height())
            }),
            "{crop:?} is not one of the automatic ratios"
        );
    }
    // The object is tall enough that a narrow window holds it most tightly.
    assert!(smart_crop(&image, &[])[0].width() < 400);
    // Deterministic.
    assert_eq!(smart_crop(&image, &[]), smart_crop(&image, &[]));
}

#[test]
fn degenerate_sizes_stay_inside() {
    let sizes = [(1, 1), (2, 1), (1, 2), (5000, 1), (1, 5000), (4000, 3), (3, 4000), (257, 256)];
    let ratios = [MIN_RATIO, 0.5, 1.0, 2.35, MAX_RATIO];
    for (width, height) in sizes {
        let image = RgbImage::from_fn(width, height, |x, y| Rgb([(x % 251) as u8, (y % 241) as u8, 7]));
        for (crop, ratio) in smart_crop(&image, &ratios).into_iter().zip(ratios) {
            check_window(crop, width, height, ratio);
        }
        for crop in smart_crop(&image, &[]) {
            assert!(crop.right < width && crop.bottom < height, "{crop:?} in {width}x{height}");
        }
    }
    assert_eq!(
        smart_crop(&RgbImage::new(1, 1), &[2.35]),
        [Crop {
            left: 0,
            top: 0,
            right: 0,
            bottom: 0
        }]
    );
    // Out-of-range ratios given directly are clamped, never a panic.
    let image = RgbImage::new(40, 30);
    for ratio in [0.0, -1.0, f64::INFINITY, 1e9] {
        let crop = smart_crop(&image, &[ratio])[0];
        assert!(crop.right < 40 && crop.bottom < 30, "{ratio}: {crop:?}");
    }
}

#[test]
fn ratios_are_parsed() {
    assert_eq!(parse_ratios(""), Ok(vec![]));
    assert_eq!(parse_ratios("  "), Ok(vec![]));
    assert_eq!(parse_ratios("1,2.35"), Ok(vec![1.0, 2.35]));
    assert_eq!(parse_ratios(" 0.5 , 1 ,2,3,4 "), Ok(vec![0.5, 1.0, 2.0, 3.0, 4.0]));
    assert_eq!(parse_ratios("1,1,1,1,1,1"), Err(RatiosError::TooMany(6)));
    assert_eq!(parse_ratios("1,,2"), Err(RatiosError::NotANumber(String::new())));
    assert_eq!(parse_ratios("wide"), Err(RatiosError::NotANumber("wide".to_owned())));
    assert_eq!(parse_ratios("16:9"), Err(RatiosError::NotANumber("16:9".to_owned())));
    assert_eq!(parse_ratios("NaN"), Err(RatiosError::NotANumber("NaN".to_owned())));
    assert_eq!(parse_ratios("inf"), Err(RatiosError::NotANumber("inf".to_owned())));
    for bad in ["0", "-1", "0.01", "21", "1e9"] {
        assert_eq!(parse_ratios(bad), Err(RatiosError::OutOfRange(bad.to_owned())), "{bad}");
    }
    assert_eq!(parse_ratios("0.05,20"), Ok(vec![MIN_RATIO, MAX_RATIO]));
}
