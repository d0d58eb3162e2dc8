//! The small picture that rides in the offer of a picture file, so the
//! receiver sees what it is before accepting.
//!
//! The sender makes it from the file ([`make`]); the receiver treats it
//! as untrusted bytes ([`check`]): a PNG of at most [`MAX_THUMBNAIL`]
//! bytes and [`THUMBNAIL_SIDE`] pixels a side, its pixel data inflated
//! under a limit before any decoder runs, decoded under `image::Limits`
//! and safe from a panicking decoder, as avatars are.

use std::io::Read;
use std::path::Path;

use crate::common::avatar::{check_inflated_size, decode_safely, read_any, PictureError};
use crate::common::file_packet::{MAX_THUMBNAIL, THUMBNAIL_SIDE};

/// The largest picture file a thumbnail is made from: decoding costs
/// memory and time on the sender's machine, and a huge picture gets an
/// offer without one.
pub const MAX_SOURCE_BYTES: u64 = 32 << 20;

/// The most a thumbnail's pixel data may inflate to: 96 rows of a filter
/// byte and 96 pixels of 16-bit RGBA (73,824 bytes), plus interlacing's
/// extra filter bytes, rounded up.
const MAX_INFLATED: usize = 80 << 10;

/// A checked thumbnail, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub width: u32,
    pub height: u32,
    /// RGBA, row by row.
    pub rgba: Vec<u8>,
}

/// A thumbnail for the picture file at `path`, if it is one HubChat can
/// read (PNG, JPEG, GIF or BMP) and not too large; `None` otherwise (the
/// offer then goes without).
pub fn make(path: &Path) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let mut bytes = Vec::new();
    file.take(MAX_SOURCE_BYTES).read_to_end(&mut bytes).ok()?;
    from_bytes(&bytes)
}

/// A thumbnail for a picture in memory (see [`make`]).
pub fn from_bytes(bytes: &[u8]) -> Option<Vec<u8>> {
    decode_safely(|| {
        let unreadable = |e: &dyn std::fmt::Display| PictureError::Unreadable {
            detail: e.to_string(),
        };
        let img = read_any(bytes, 8192, 256 << 20)?;
        // Smaller sides until the PNG fits (a noisy photo at 96 pixels
        // may not).
        for side in [THUMBNAIL_SIDE, 72, 48] {
            let small = img.thumbnail(side, side).to_rgba8();
            let mut png = Vec::new();
            let encoder = image::codecs::png::PngEncoder::new(&mut png);
            image::ImageEncoder::write_image(
                encoder,
                small.as_raw(),
                small.width(),
                small.height(),
                image::ExtendedColorType::Rgba8,
            )
            .map_err(|e| unreadable(&e))?;
            if png.len() <= MAX_THUMBNAIL {
                return Ok(png);
            }
        }
        Err(unreadable(&"no thumbnail small enough"))
    })
    .ok()
}

/// Checks a thumbnail from the network and decodes it.
pub fn check(png: &[u8]) -> Result<Thumbnail, PictureError> {
    if png.len() > MAX_THUMBNAIL {
        return Err(PictureError::TooLarge { bytes: png.len() });
    }
    check_inflated_size(png, MAX_INFLATED, "a thumbnail")?;
    decode_safely(|| {
        let unreadable = |detail: String| PictureError::Unreadable { detail };
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(THUMBNAIL_SIDE);
        limits.max_image_height = Some(THUMBNAIL_SIDE);
        limits.max_alloc = Some(1 << 20);
        let decoder =
            image::codecs::png::PngDecoder::with_limits(std::io::Cursor::new(png), limits)
                .map_err(|e| unreadable(e.to_string()))?;
        let img =
            image::DynamicImage::from_decoder(decoder).map_err(|e| unreadable(e.to_string()))?;
        Ok(Thumbnail {
            width: img.width(),
            height: img.height(),
            rgba: img.to_rgba8().into_raw(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, noise: bool) -> Vec<u8> {
        let mut seed = 7u32;
        let img = image::RgbaImage::from_fn(width, height, |x, y| {
            if noise {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                image::Rgba(seed.to_le_bytes())
            } else {
                image::Rgba([x as u8, y as u8, 90, 255])
            }
        });
        let mut out = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_large_picture_becomes_a_thumbnail_that_passes_the_check() {
        for noise in [false, true] {
            let thumb = from_bytes(&png(1200, 800, noise)).expect("a thumbnail");
            assert!(thumb.len() <= MAX_THUMBNAIL);
            let checked = check(&thumb).unwrap();
            assert!(checked.width <= THUMBNAIL_SIDE && checked.height <= THUMBNAIL_SIDE);
            assert!(checked.width > checked.height, "the shape is kept");
        }
    }

    #[test]
    fn what_is_not_a_picture_has_no_thumbnail() {
        assert_eq!(from_bytes(b"just some text"), None);
        assert_eq!(from_bytes(&[]), None);
    }

    #[test]
    fn thumbnails_from_the_network_are_held_to_their_limits() {
        assert!(check(&png(97, 10, false)).is_err(), "too wide");
        assert!(check(&png(96, 96, false)).is_ok());
        assert!(check(&vec![0; MAX_THUMBNAIL + 1]).is_err());
        assert!(check(b"\x89PNG\r\n\x1a\nbroken").is_err());
    }
}
