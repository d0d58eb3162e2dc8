//! The pictures the attacks send: a valid avatar padded to the wire limit,
//! one whose compressed data inflates to megabytes behind a 48x48 header,
//! and the palette PNG that fuzzing found panicking the `png` decoder.

use std::sync::OnceLock;

use crate::common::avatar::{MAX_WIRE_BYTES, SIDE};

/// 171 bytes found by fuzzing the server's picture check: a palette PNG that
/// panics `png` 0.18.1 inside the decoder.
pub const PALETTE_PANIC: &[u8] = include_bytes!("../../tests/fuzz-cases/png-palette-panic.png");

/// A 48x48 PNG of noise padded with a text chunk to just under the wire
/// limit: the largest picture a server accepts, to amplify a flood.
pub fn full_size_avatar() -> &'static [u8] {
    static PNG: OnceLock<Vec<u8>> = OnceLock::new();
    PNG.get_or_init(|| {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..SIDE * SIDE * 4)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 24) as u8
            })
            .collect();
        let mut png = encode_rgba(
            &noise,
            SIDE,
            SIDE,
            image::codecs::png::CompressionType::Fast,
        );
        // Chunk overhead: length, type, keyword and its NUL, CRC.
        let room = MAX_WIRE_BYTES.saturating_sub(png.len() + 4 + 4 + 8 + 4 + 64);
        let mut text = b"Comment\0".to_vec();
        text.resize(text.len() + room, b'x');
        insert_before_iend(&mut png, b"tEXt", &text);
        png
    })
}

/// A PNG whose header says 48x48 but whose image data inflates to about
/// 16 MiB, within the wire limit; and how many bytes it inflates to.
pub fn inflating() -> &'static (Vec<u8>, usize) {
    static PNG: OnceLock<(Vec<u8>, usize)> = OnceLock::new();
    PNG.get_or_init(|| {
        let row = 1 + SIDE as usize * 4;
        let mut rows = (16usize << 20) / row;
        loop {
            let zeros = vec![0u8; rows * SIDE as usize * 4];
            let mut png = encode_rgba(
                &zeros,
                SIDE,
                rows as u32,
                image::codecs::png::CompressionType::Best,
            );
            if png.len() <= MAX_WIRE_BYTES || rows < 1000 {
                set_height(&mut png, SIDE);
                return (png, rows * row);
            }
            rows = rows * MAX_WIRE_BYTES / png.len() * 95 / 100;
        }
    })
}

fn encode_rgba(
    rgba: &[u8],
    width: u32,
    height: u32,
    compression: image::codecs::png::CompressionType,
) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        compression,
        image::codecs::png::FilterType::NoFilter,
    );
    // Encoding a buffer of exactly width * height * 4 into memory cannot
    // fail; an empty result would only make the attack send a bad picture.
    let _ = image::ImageEncoder::write_image(
        encoder,
        rgba,
        width,
        height,
        image::ExtendedColorType::Rgba8,
    );
    out
}

/// PNG's chunk checksum (CRC-32, ISO 3309), over type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the IHDR height (bytes 20..24: after the 8-byte signature,
/// length, type and width) and its checksum.
fn set_height(png: &mut [u8], height: u32) {
    if png.len() < 33 {
        return;
    }
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
}

/// Inserts a chunk before the final IEND chunk (its last 12 bytes).
fn insert_before_iend(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let at = png.len().saturating_sub(12);
    let mut chunk = Vec::with_capacity(data.len() + 12);
    chunk.extend_from_slice(&(data.len() as u32).to_be_bytes());
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    png.splice(at..at, chunk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::avatar::check_wire_picture;

    #[test]
    fn the_full_size_avatar_is_valid_and_just_under_the_limit() {
        let png = full_size_avatar();
        assert!(png.len() <= MAX_WIRE_BYTES, "{}", png.len());
        assert!(png.len() > MAX_WIRE_BYTES - 200, "{}", png.len());
        assert!(check_wire_picture(png).is_ok());
    }

    #[test]
    fn the_inflating_png_is_small_says_48x48_and_holds_megabytes() {
        let (png, inflated) = inflating();
        assert!(png.len() <= MAX_WIRE_BYTES, "{}", png.len());
        assert_eq!(&png[16..24], &[0, 0, 0, 48, 0, 0, 0, 48]);
        assert!(*inflated >= 8 << 20, "{inflated}");
    }

    #[test]
    fn the_checksum_is_pngs() {
        // The IEND chunk's well-known CRC.
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
    }
}
