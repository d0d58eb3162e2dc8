//! The built-in avatars, embedded at build time from `avatars/`.
//!
//! On the wire a built-in avatar is `image_N.png`, as in the original, whose
//! clients ship pictures 1 to 25 under those names. HubChat has more; any
//! name that is not a built-in shows built-in 1.

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
}
