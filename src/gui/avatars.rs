//! Avatar pictures ready to draw, decoded once and shared by every row that
//! shows them: a list of 10,000 clients draws from the same 30 images.

use fltk::enums::ColorDepth;
use fltk::image::RgbImage;
use fltk::prelude::ImageExt;

use crate::common::avatar::{self, Picture, BUILTIN};

/// The size avatars are drawn at, in pixels.
pub const SIZE: i32 = 48;

/// The built-in pictures, decoded.
pub struct Avatars {
    builtin: Vec<RgbImage>,
    /// The same, faded: how people who are away are shown.
    faded: Vec<RgbImage>,
}

impl Avatars {
    /// Decodes the embedded pictures. They are checked at build time, so a
    /// failure here means a broken build; such a picture is simply skipped.
    pub fn load() -> Self {
        let builtin = BUILTIN.iter().filter_map(|b| png_image(b.png)).collect();
        let faded = BUILTIN
            .iter()
            .filter_map(|b| decode_rgba(b.png))
            .filter_map(|(mut rgba, w, h)| {
                fade(&mut rgba);
                RgbImage::new(&rgba, w, h, ColorDepth::Rgba8).ok()
            })
            .collect();
        Avatars { builtin, faded }
    }

    /// Draws the built-in avatar `image_name` names, faded (someone away).
    pub fn draw_faded(&mut self, image_name: &str, x: i32, y: i32) {
        let n = avatar::for_image_name(image_name).number as usize;
        if let Some(img) = self.faded.get_mut(n.saturating_sub(1)) {
            img.draw(x, y, SIZE, SIZE);
        }
    }

    /// Draws a client's avatar at `(x, y)`: its own picture if it sent one
    /// (already decoded from untrusted bytes), else the built-in its wire
    /// `image_name` names.
    pub fn draw(&mut self, picture: Option<&Picture>, image_name: &str, x: i32, y: i32) {
        if let Some(mut img) = picture.and_then(to_image) {
            img.draw(x, y, SIZE, SIZE);
            return;
        }
        let n = avatar::for_image_name(image_name).number as usize;
        self.draw_builtin(n, x, y);
    }

    /// Draws built-in number `n` (1-based) at `(x, y)`.
    fn draw_builtin(&mut self, n: usize, x: i32, y: i32) {
        if let Some(img) = self.builtin.get_mut(n.saturating_sub(1)) {
            img.draw(x, y, SIZE, SIZE);
        }
    }
}

/// A PNG built into the program (an avatar, the icon) as an FLTK image.
/// FLTK is built without its own image decoders (its `no-images` feature:
/// no second copy of libpng and zlib, no JPEG, GIF, BMP or SVG readers,
/// about 250 KB less in each binary), so the `image` crate's PNG decoder,
/// which both programs carry to check avatars, reads it.
pub fn png_image(png: &[u8]) -> Option<RgbImage> {
    let (rgba, w, h) = decode_rgba(png)?;
    RgbImage::new(&rgba, w, h, ColorDepth::Rgba8).ok()
}

fn decode_rgba(png: &[u8]) -> Option<(Vec<u8>, i32, i32)> {
    let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(png)).ok()?;
    let rgba = image::DynamicImage::from_decoder(decoder).ok()?.to_rgba8();
    let (w, h) = (rgba.width() as i32, rgba.height() as i32);
    Some((rgba.into_raw(), w, h))
}

/// Greys a picture and lets the background through: the row of someone
/// who is away looks absent at a glance, in any theme.
fn fade(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let grey =
            ((u32::from(px[0]) * 30 + u32::from(px[1]) * 59 + u32::from(px[2]) * 11) / 100) as u8;
        px[0] = grey;
        px[1] = grey;
        px[2] = grey;
        px[3] = (u32::from(px[3]) * 45 / 100) as u8;
    }
}

/// An avatar picture as an FLTK image. Cheap (48x48): made when drawn, so
/// nothing has to be forgotten when its client leaves.
pub fn to_image(picture: &Picture) -> Option<RgbImage> {
    let side = avatar::SIDE as i32;
    RgbImage::new(&picture.rgba, side, side, ColorDepth::Rgba8).ok()
}
