//! Camera photos with real faces, for the face-crop tests and benchmark: the
//! astronaut portrait shipped in `tests/faces/` (public domain, see its README) placed
//! in a larger frame of smooth, noisy background, and photos without a face.

#![allow(dead_code)]

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

/// The astronaut portrait, 512 × 512.
pub const ASTRONAUT: &[u8] = include_bytes!("../../tests/faces/astronaut.jpg");

/// The face in the 512-pixel portrait (x, y, width, height), as the detector finds it.
pub const PORTRAIT_FACE: [u32; 4] = [172, 66, 101, 101];

/// A picture and the faces in it (x, y, width, height), upright.
pub struct Scene {
    pub image: RgbImage,
    pub faces: Vec<[u32; 4]>,
}

/// A `width` × `height` frame of background with the portrait pasted at each
/// `(x, y, size)`, scaled to `size` pixels square.
pub fn scene(width: u32, height: u32, portraits: &[(u32, u32, u32)], seed: u64) -> Scene {
    let mut image = background(width, height, seed);
    let portrait = image::load_from_memory(ASTRONAUT)
        .expect("the shipped portrait decodes")
        .to_rgb8();
    for &(x, y, size) in portraits {
        let scaled = imageops::resize(&portrait, size, size, FilterType::Triangle);
        imageops::replace(&mut image, &scaled, i64::from(x), i64::from(y));
    }
    Scene {
        image,
        faces: face_boxes(portraits),
    }
}

/// A frame without a face: smooth gradients, a few soft blobs and sensor-like noise.
/// The shading is computed at a quarter of the size and scaled up (it is smooth), so
/// making a camera-sized frame stays quick in a debug build.
pub fn background(width: u32, height: u32, seed: u64) -> RgbImage {
    let smooth = shading(width.div_ceil(4), height.div_ceil(4), seed);
    let mut image = imageops::resize(&smooth, width, height, FilterType::Triangle);
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    for p in image.pixels_mut() {
        let n = rng.u8(..12);
        p.0 = p.0.map(|v| v.saturating_add(n));
    }
    image
}

fn shading(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
        .map(|_| {
            (
                rng.f32() * width as f32,
                rng.f32() * height as f32,
                (0.05 + rng.f32() * 0.2) * width as f32,
                [rng.f32() * 80.0, rng.f32() * 80.0, rng.f32() * 80.0],
            )
        })
        .collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut c = [
            40.0 + 120.0 * fx / width as f32,
            60.0 + 100.0 * fy / height as f32,
            90.0 + 60.0 * (fx + fy) / (width + height) as f32,
        ];
        for (bx, by, r, add) in &blobs {
            let d2 = ((fx - bx).powi(2) + (fy - by).powi(2)) / (r * r);
            let k = (-d2).exp();
            for i in 0..3 {
                c[i] += add[i] * k;
            }
        }
        Rgb(c.map(|v| v.min(255.0) as u8))
    })
}

/// The faces (x, y, width, height) [`scene`] puts in a frame for these portraits.
pub fn face_boxes(portraits: &[(u32, u32, u32)]) -> Vec<[u32; 4]> {
    portraits
        .iter()
        .map(|&(x, y, size)| {
            let at = |v: u32| v * size / 512;
            let [fx, fy, fw, fh] = PORTRAIT_FACE;
            [x + at(fx), y + at(fy), at(fw), at(fh)]
        })
        .collect()
}

/// The pixels a camera stores for an upright picture under EXIF `orientation` (1–8):
/// turned so that a viewer applying the orientation sees `upright`.
pub fn stored_for(upright: &RgbImage, orientation: u16) -> RgbImage {
    match orientation {
        2 => imageops::flip_horizontal(upright),
        3 => imageops::rotate180(upright),
        4 => imageops::flip_vertical(upright),
        // Transpose and transverse are their own inverses.
        5 => imageops::flip_horizontal(&imageops::rotate90(upright)),
        6 => imageops::rotate270(upright),
        7 => imageops::flip_horizontal(&imageops::rotate270(upright)),
        8 => imageops::rotate90(upright),
        _ => upright.clone(),
    }
}
