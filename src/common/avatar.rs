//! The built-in avatars, embedded at build time from `avatars/`.
//!
//! On the wire a built-in avatar is `image_N.png`, as in the original, whose
//! clients ship pictures 1 to 25 under those names. HubChat has more; any
//! name that is not a built-in shows built-in 1.
//!
//! Pictures also arrive from people: a file the user picks, and other
//! clients' avatars over the network. Every decode of such bytes goes
//! through [`decode_safely`], and avatars on the wire are checked by
//! [`check_wire_picture`] before anything decodes them.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

/// One embedded picture.
#[derive(Debug)]
pub struct Builtin {
    /// Its number: sent as `image_<number>.png`.
    pub number: u32,
    /// A short English name ("fox"), for tooltips and accessibility.
    pub name: &'static str,
    /// The PNG file's bytes (48x48 RGBA).
    pub png: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/avatars.rs"));

/// The side of an avatar, in pixels.
pub const SIDE: u32 = 48;

/// The largest picture file accepted, from a user's disk or the network.
pub const MAX_FILE_BYTES: usize = 4 << 20;

/// The largest width or height decoded: a small file must not unpack into
/// gigabytes of pixels.
pub const MAX_DIMENSION: u32 = 4096;

/// A custom avatar ready to draw: `SIDE` x `SIDE` RGBA pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub rgba: Vec<u8>,
}

/// Why a picture cannot be used as an avatar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PictureError {
    TooLarge { bytes: usize },
    Unreadable { detail: String },
}

impl std::fmt::Display for PictureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PictureError::TooLarge { bytes } => write!(
                f,
                "The picture is {} KB; choose one under {} KB.",
                bytes / 1024,
                MAX_FILE_BYTES / 1024
            ),
            PictureError::Unreadable { detail } => {
                write!(
                    f,
                    "This is not a picture HubChat can read (PNG, JPEG, GIF or BMP): {detail}."
                )
            }
        }
    }
}

impl std::error::Error for PictureError {}

/// Turns untrusted picture bytes (PNG, JPEG, GIF or BMP, from a file or the
/// network) into an avatar: decoded by the memory-safe `image` crate under
/// size limits, cropped to a centred square and scaled to `SIDE` pixels.
/// A panic inside a decoder (see [`decode_safely`]) is one more way for the
/// bytes to be unreadable.
pub fn decode_picture(bytes: &[u8]) -> Result<Picture, PictureError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(PictureError::TooLarge { bytes: bytes.len() });
    }
    decode_safely(|| decode_any(bytes))
}

/// Decodes a picture of any format HubChat reads (PNG, JPEG, GIF, BMP)
/// from untrusted bytes, at most `max_side` pixels wide and high and
/// allocating at most `max_alloc` bytes (checked before anything is
/// allocated). Call it inside [`decode_safely`].
pub(crate) fn read_any(
    bytes: &[u8],
    max_side: u32,
    max_alloc: u64,
) -> Result<image::DynamicImage, PictureError> {
    let unreadable = |e: &dyn std::fmt::Display| PictureError::Unreadable {
        detail: e.to_string(),
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(max_alloc);
    reader.limits(limits);
    reader.decode().map_err(|e| unreadable(&e))
}

fn decode_any(bytes: &[u8]) -> Result<Picture, PictureError> {
    let unreadable = |e: &dyn std::fmt::Display| PictureError::Unreadable {
        detail: e.to_string(),
    };
    let img = read_any(bytes, MAX_DIMENSION, 128 << 20)?;
    let side = img.width().min(img.height());
    if side == 0 {
        return Err(unreadable(&"the picture is empty"));
    }
    let square = img.crop_imm(
        (img.width() - side) / 2,
        (img.height() - side) / 2,
        side,
        side,
    );
    let small = square.resize_exact(SIDE, SIDE, image::imageops::FilterType::Lanczos3);
    Ok(Picture {
        rgba: small.to_rgba8().into_raw(),
    })
}

thread_local! {
    /// Set while this thread runs a decoder under [`decode_safely`], so the
    /// panic hook stays quiet about a panic that is caught and reported.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once per process, a panic hook that says nothing about panics
/// inside [`decode_safely`] and hands every other panic to the hook that was
/// there before (by default, the message and backtrace on stderr).
fn quiet_hook_for_decoders() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !DECODING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs a decoder on untrusted bytes so that a panic inside it (a bug in a
/// dependency: `png` 0.18.1 panics on a 171-byte palette PNG) becomes
/// "not a picture HubChat can read" instead of killing the thread: a
/// server's reader for that client, or a client's window.
///
/// Unwinding out of the decoder is safe here: it owns nothing but its own
/// copy of the state it builds from the bytes, which is dropped.
pub(crate) fn decode_safely<T>(
    decode: impl FnOnce() -> Result<T, PictureError>,
) -> Result<T, PictureError> {
    quiet_hook_for_decoders();
    let was = DECODING.with(|d| d.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(was));
    result.unwrap_or_else(|_| {
        Err(PictureError::Unreadable {
            detail: "its decoder broke down on it".into(),
        })
    })
}

/// The largest avatar PNG accepted on the wire. A 48x48 RGBA PNG of pure
/// noise is about 9.3 KB, so every honest avatar fits.
pub const MAX_WIRE_BYTES: usize = 16 << 10;

/// The most a 48x48 PNG's pixel data can inflate to: 48 rows of a filter
/// byte and 48 pixels of 16-bit RGBA (18,480 bytes), plus the extra filter
/// bytes of interlacing (42), rounded up. Anything more is padding whose
/// only use is to make every receiver inflate it.
pub const MAX_INFLATED_BYTES: usize = 20 << 10;

/// PNG chunks an avatar on the wire may not carry: compressed text and
/// colour profiles (more bytes to inflate, none of them pixels) and
/// animation (an avatar is one still picture). HubChat clients re-encode
/// every avatar they send, so theirs never hold any of these.
const REFUSED_CHUNKS: [&[u8; 4]; 6] = [b"zTXt", b"iTXt", b"iCCP", b"acTL", b"fcTL", b"fdAT"];

/// Checks an avatar received in a PICTURE packet before a server keeps and
/// forwards it, or a client shows it: at most [`MAX_WIRE_BYTES`], a PNG
/// whose pixel data inflates to at most [`MAX_INFLATED_BYTES`], exactly
/// `SIDE` pixels square. Only then is it decoded, by the memory-safe
/// `image` crate under tight limits, and safe from a panicking decoder.
pub fn check_wire_picture(png: &[u8]) -> Result<Picture, PictureError> {
    if png.len() > MAX_WIRE_BYTES {
        return Err(PictureError::TooLarge { bytes: png.len() });
    }
    check_inflated_size(png, MAX_INFLATED_BYTES, "an avatar")?;
    decode_safely(|| decode_wire(png))
}

fn decode_wire(png: &[u8]) -> Result<Picture, PictureError> {
    let unreadable = |detail: String| PictureError::Unreadable { detail };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(SIDE);
    limits.max_image_height = Some(SIDE);
    limits.max_alloc = Some(1 << 20);
    // The PNG decoder by name, not `ImageReader`, whose format switch
    // reaches every decoder: the server then carries no JPEG, GIF or BMP
    // code at all (about 200 KB of its binary).
    let decoder = image::codecs::png::PngDecoder::with_limits(std::io::Cursor::new(png), limits)
        .map_err(|e| unreadable(e.to_string()))?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| unreadable(e.to_string()))?;
    if (img.width(), img.height()) != (SIDE, SIDE) {
        return Err(unreadable(format!(
            "an avatar is {SIDE}x{SIDE} pixels, not {}x{}",
            img.width(),
            img.height()
        )));
    }
    Ok(Picture {
        rgba: img.to_rgba8().into_raw(),
    })
}

/// Walks the PNG's chunks and inflates its pixel data (all `IDAT` chunks,
/// one zlib stream) into at most [`MAX_INFLATED_BYTES`]: a small file must
/// not unpack into megabytes, whatever its header says about its size.
pub(crate) fn check_inflated_size(png: &[u8], max: usize, what: &str) -> Result<(), PictureError> {
    let unreadable = |detail: &str| PictureError::Unreadable {
        detail: detail.to_string(),
    };
    let mut rest = png
        .strip_prefix(b"\x89PNG\r\n\x1a\n")
        .ok_or_else(|| unreadable("it is not a PNG file"))?;
    let mut pixels = Vec::new();
    while let Some((length, tail)) = rest.split_first_chunk::<4>() {
        let length = u32::from_be_bytes(*length) as usize;
        let (kind, tail) = tail
            .split_first_chunk::<4>()
            .ok_or_else(|| unreadable("the PNG file is cut short"))?;
        if tail.len() < length.saturating_add(4) {
            return Err(unreadable("the PNG file is cut short"));
        }
        if REFUSED_CHUNKS.contains(&kind) {
            return Err(PictureError::Unreadable {
                detail: format!(
                    "{what} may not carry compressed text, a colour profile or animation"
                ),
            });
        }
        if kind == b"IDAT" {
            pixels.extend_from_slice(&tail[..length]);
        }
        rest = &tail[length + 4..];
    }
    // The zlib stream is a 2-byte header, then deflate data.
    let deflate = pixels.get(2..).unwrap_or_default();
    match miniz_oxide::inflate::decompress_to_vec_with_limit(deflate, max) {
        Ok(_) => Ok(()),
        Err(e) if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
            Err(PictureError::Unreadable {
                detail: format!(
                    "its pixel data unpacks to more than the {max} bytes {what} can need"
                ),
            })
        }
        // Damaged data is the decoder's to judge (it may need only the
        // start of the stream); here only the size is at stake.
        Err(_) => Ok(()),
    }
}

/// Encodes an avatar as PNG, the form it travels in.
pub fn encode_picture(picture: &Picture) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut out);
    // Encoding 48x48 RGBA into memory cannot fail.
    let _ = image::ImageEncoder::write_image(
        encoder,
        &picture.rgba,
        SIDE,
        SIDE,
        image::ExtendedColorType::Rgba8,
    );
    out
}

impl Builtin {
    /// The name this avatar has on the wire.
    pub fn image_name(&self) -> String {
        format!("image_{}.png", self.number)
    }
}

/// Built-in number `n`, if there is one.
pub fn builtin(n: u32) -> Option<&'static Builtin> {
    BUILTIN.get(usize::try_from(n).ok()?.checked_sub(1)?)
}

/// The built-in picture to show for an `image_name` from the wire.
pub fn for_image_name(image_name: &str) -> &'static Builtin {
    image_number(image_name)
        .and_then(builtin)
        .unwrap_or(&BUILTIN[0])
}

/// The `N` of `image_N.png` (no sign, no leading zero).
pub fn image_number(image_name: &str) -> Option<u32> {
    let n = image_name.strip_prefix("image_")?.strip_suffix(".png")?;
    u32::try_from(super::canonical_number(n)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_at_least_the_originals_twenty_five_numbered_from_one() {
        assert!(BUILTIN.len() >= 25);
        for (i, b) in BUILTIN.iter().enumerate() {
            assert_eq!(b.number as usize, i + 1);
            assert!(b.png.starts_with(b"\x89PNG"), "{} is a PNG", b.name);
        }
    }

    fn sample(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, _| {
            if x < w / 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, format)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn pictures_in_every_supported_format_become_48_pixel_squares() {
        use image::ImageFormat::*;
        for format in [Png, Jpeg, Gif, Bmp] {
            let pic = decode_picture(&sample(format, 120, 60))
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!(pic.rgba.len(), (SIDE * SIDE * 4) as usize, "{format:?}");
            // Centre-cropped: the left edge is red, the right edge blue.
            assert!(pic.rgba[0] > 200 && pic.rgba[2] < 60, "{format:?}");
            let last = pic.rgba.len() - 4;
            assert!(
                pic.rgba[last + 2] > 200 && pic.rgba[last] < 60,
                "{format:?}"
            );
        }
    }

    #[test]
    fn an_avatar_survives_png_encoding() {
        let pic = decode_picture(&sample(image::ImageFormat::Png, 48, 48)).unwrap();
        assert_eq!(decode_picture(&encode_picture(&pic)).unwrap(), pic);
    }

    #[test]
    fn garbage_huge_files_and_pixel_bombs_are_refused_with_reasons() {
        assert!(matches!(
            decode_picture(b"GIF89a not really"),
            Err(PictureError::Unreadable { .. })
        ));
        assert!(matches!(
            decode_picture(&[0u8; 100]),
            Err(PictureError::Unreadable { .. })
        ));
        assert!(matches!(
            decode_picture(&vec![0u8; MAX_FILE_BYTES + 1]),
            Err(PictureError::TooLarge { .. })
        ));
        // A picture wider than anyone needs is not decoded at all.
        let bomb = sample(image::ImageFormat::Png, 5000, 1);
        assert!(
            matches!(decode_picture(&bomb), Err(PictureError::Unreadable { .. })),
            "over the width limit"
        );
    }

    #[test]
    fn the_wire_refuses_compressed_metadata_and_animation_before_decoding() {
        let png = encode_picture(&Picture {
            rgba: [9, 9, 9, 255].repeat((SIDE * SIDE) as usize),
        });
        assert!(check_wire_picture(&png).is_ok());
        // Right after IHDR (8-byte signature, 25-byte chunk).
        for kind in REFUSED_CHUNKS {
            let mut with = png[..33].to_vec();
            with.extend_from_slice(&1u32.to_be_bytes());
            with.extend_from_slice(kind);
            with.extend_from_slice(&[0, 0, 0, 0, 0]);
            with.extend_from_slice(&png[33..]);
            let why = check_wire_picture(&with).unwrap_err().to_string();
            assert!(why.contains("compressed text"), "{why}");
        }
    }

    #[test]
    fn wire_names_map_to_built_ins_and_anything_else_to_the_first() {
        assert_eq!(for_image_name("image_7.png").number, 7);
        assert_eq!(
            for_image_name(&BUILTIN.last().unwrap().image_name()).number as usize,
            BUILTIN.len()
        );
        for other in [
            "image_0.png",
            "image_999.png",
            "cat.png",
            "",
            "image_07.png",
        ] {
            assert_eq!(for_image_name(other).number, 1, "{other}");
        }
    }

    #[test]
    fn the_wire_takes_exactly_what_the_client_makes_and_nothing_else() {
        // The worst case for PNG: noise. It still fits the wire limit.
        let mut seed = 12345u32;
        let rgba = (0..SIDE * SIDE * 4)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                (seed >> 16) as u8
            })
            .collect();
        let noise = Picture { rgba };
        let png = encode_picture(&noise);
        assert!(png.len() <= MAX_WIRE_BYTES, "{} bytes", png.len());
        assert_eq!(check_wire_picture(&png).unwrap(), noise);

        let jpeg = sample(image::ImageFormat::Jpeg, 48, 48);
        assert!(check_wire_picture(&jpeg).is_err(), "only PNG on the wire");
        let big = sample(image::ImageFormat::Png, 64, 64);
        assert!(check_wire_picture(&big).is_err(), "only 48x48");
        assert!(matches!(
            check_wire_picture(&vec![0u8; MAX_WIRE_BYTES + 1]),
            Err(PictureError::TooLarge { .. })
        ));
    }
}
