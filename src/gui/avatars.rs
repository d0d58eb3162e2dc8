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
}

impl Avatars {
    /// Decodes the embedded pictures. They are checked at build time, so a
    /// failure here means a broken build; such a picture is simply skipped.
    pub fn load() -> Self {
        let builtin = BUILTIN.iter().filter_map(|b| png_image(b.png)).collect();
        Avatars { builtin }
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
    let decoder = image::codecs::png::PngDecoder::new(std::io::Cursor::new(png)).ok()?;
    let rgba = image::DynamicImage::from_decoder(decoder).ok()?.to_rgba8();
    let (w, h) = (rgba.width() as i32, rgba.height() as i32);
    RgbImage::new(rgba.as_raw(), w, h, ColorDepth::Rgba8).ok()
}

/// An avatar picture as an FLTK image. Cheap (48x48): made when drawn, so
/// nothing has to be forgotten when its client leaves.
pub fn to_image(picture: &Picture) -> Option<RgbImage> {
    let side = avatar::SIDE as i32;
    RgbImage::new(&picture.rgba, side, side, ColorDepth::Rgba8).ok()
}
