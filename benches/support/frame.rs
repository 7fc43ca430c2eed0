//! Camera-like frames without a face, for the camera and face benchmarks.
//!
//! [`Detail::Plain`] is the frame `benches/camera.rs` has always made (smooth
//! shading, hard edges and per-pixel noise): its copy at 1264 px takes about 160 KB,
//! because the per-pixel noise of a 12-megapixel frame averages out when it is scaled
//! down by three. [`Detail::Phone`] adds what a real photo has at every scale (fine
//! texture a few pixels across: fabric, foliage, hair, grain that survives the
//! scaling), so its copy takes what real photos take: about 1.7 bits per pixel at
//! quality 85, the median of the real photos `benches/faces.rs` measures, about
//! 250,000 bytes at 1264×948.

#![allow(dead_code)]

use image::RgbImage;

/// How much fine detail a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Shading, edges and per-pixel noise only (the camera benchmark's corpus).
    Plain,
    /// As a real photo: texture at a few pixels' scale on top of the plain frame.
    Phone,
}

impl Detail {
    pub fn parse(word: &str) -> Option<Detail> {
        match word {
            "plain" => Some(Detail::Plain),
            "phone" => Some(Detail::Phone),
            _ => None,
        }
    }
}

/// The texture's octaves: cell size in pixels of the 4032-pixel frame, and amplitude
/// in levels. Cells of 3 to 12 pixels are what a copy scaled down to 1264 px keeps
/// (one to four of its pixels); the amplitudes are set so the copy's bits per pixel
/// match the real photos' (see `benches/faces.rs`, "real photos at quality 85").
const OCTAVES: [(u32, f32); 3] = [(3, 12.0), (6, 13.0), (12, 13.0)];

/// A `width` × `height` camera-like frame (made for 4032 × 3024), the same for the
/// same `seed`.
pub fn camera_frame(width: u32, height: u32, seed: u64, detail: Detail) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (w, h) = (width, height);
    let (cx, cy) = (rng.u32(1000..3000) as i64, rng.u32(800..2200) as i64);
    let texture_seed = seed ^ 0x7e47_u64;
    RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as i64 - cx).pow(2) + (y as i64 - cy).pow(2)) as f64;
        let ring = ((d.sqrt() / 40.0).sin() * 60.0) as i32;
        let block = if (x / 97 + y / 61) % 4 == 0 { 40 } else { 0 };
        let texture = match detail {
            Detail::Plain => 0,
            Detail::Phone => OCTAVES
                .iter()
                .map(|&(cell, amplitude)| value_noise(x, y, cell, texture_seed) * amplitude)
                .sum::<f32>() as i32,
        };
        let mut px = |base: u32| {
            (base as i32 + ring + block + texture + rng.i32(-14..14)).clamp(0, 255) as u8
        };
        image::Rgb([
            px(x * 200 / w + 30),
            px(y * 200 / h + 20),
            px((x + y) * 100 / (w + h) + 60),
        ])
    })
}

/// Smooth noise in -1..1 on a lattice of `cell` pixels, interpolated between its
/// corners.
fn value_noise(x: u32, y: u32, cell: u32, seed: u64) -> f32 {
    let (i, j) = (x / cell, y / cell);
    let fx = (x % cell) as f32 / cell as f32;
    let fy = (y % cell) as f32 / cell as f32;
    let corner = |i: u32, j: u32| lattice(i, j, cell, seed);
    let top = corner(i, j) * (1.0 - fx) + corner(i + 1, j) * fx;
    let bottom = corner(i, j + 1) * (1.0 - fx) + corner(i + 1, j + 1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A lattice point's value in -1..1, from a hash of its place.
fn lattice(i: u32, j: u32, cell: u32, seed: u64) -> f32 {
    let mut v = seed
        ^ (u64::from(i)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (u64::from(j)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
        ^ u64::from(cell).wrapping_mul(0x1656_67b1_9e37_79f9);
    v ^= v >> 33;
    v = v.wrapping_mul(0xff51_afd7_ed55_8ccd);
    v ^= v >> 33;
    (v >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}
