//! Rules for what a client may call itself, and what original peers can take.
//!
//! Both programs use these: the server to refuse bad names and oversized
//! profiles, the client to say what is wrong before it even connects. The
//! original client breaks on an `image_name` outside its own 25 pictures and
//! on a colour Tk does not know, so everything sent to an original peer goes
//! through [`for_original`], and a HubChat client names only one of those 25
//! pictures in its INFO ([`original_image_name`]): the original *server*
//! also opens the file, and dies on one it does not have.

use std::fmt;

use crate::common::packet::Profile;
use crate::common::{avatar, color};

/// The longest name a client may take, in characters.
pub const MAX_NAME_CHARS: usize = 32;

/// How many pictures the original client ships (`image_1.png` ...).
pub const ORIGINAL_IMAGE_COUNT: u32 = 25;

/// The picture an original peer is shown for anything it cannot display.
pub const DEFAULT_IMAGE_NAME: &str = "image_1.png";

/// The colour an original peer is shown for anything Tk might not know.
pub const DEFAULT_COLOR: &str = "gray";

/// The longest colour a client may send, in characters. Tk's longest colour
/// name ("light goldenrod yellow") has 22.
pub const MAX_COLOR_CHARS: usize = 32;

/// The longest `image_name` a client may send, in characters. Built-ins are
/// `image_<n>.png`; the rest is room for later kinds of names.
pub const MAX_IMAGE_NAME_CHARS: usize = 64;

/// The original picture that stands in for each HubChat-only built-in
/// (26-30) wherever only the original 25 may go: the nearest in kind.
/// grin -> smile, party -> cool, hedgehog -> hamster, chick -> owl (a
/// bird), dinosaur -> turtle (a reptile).
pub const ORIGINAL_STAND_INS: [(u32, u32); 5] = [(26, 22), (27, 23), (28, 17), (29, 5), (30, 16)];

/// Why a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong { chars: usize },
    ControlCharacters,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => {
                write!(f, "The name is empty. Type a name others will know you by.")
            }
            NameError::TooLong { chars } => write!(
                f,
                "The name is {chars} characters long. Use at most {MAX_NAME_CHARS}."
            ),
            NameError::ControlCharacters => {
                write!(f, "The name holds line breaks or other invisible characters. Use letters, digits and spaces.")
            }
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a name and returns it trimmed of surrounding white space.
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars = name.chars().count();
    if chars > MAX_NAME_CHARS {
        return Err(NameError::TooLong { chars });
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacters);
    }
    Ok(name)
}

/// Why a colour or picture name in a client's INFO cannot be used. The
/// server refuses such a client rather than copy its values to everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileError {
    ColorTooLong { chars: usize },
    NotAColor { color: String },
    ImageNameTooLong { chars: usize },
    ImageNameControlCharacters,
}

impl fmt::Display for ProfileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProfileError::ColorTooLong { chars } => write!(
                f,
                "The colour is {chars} characters long. Use a colour name such as \"blue\" or #rrggbb, at most {MAX_COLOR_CHARS} characters."
            ),
            ProfileError::NotAColor { color } => write!(
                f,
                "\"{}\" is not a colour. Use a colour name such as \"blue\" or #rrggbb.",
                color.escape_debug()
            ),
            ProfileError::ImageNameTooLong { chars } => write!(
                f,
                "The picture name is {chars} characters long. Use at most {MAX_IMAGE_NAME_CHARS}, such as \"image_3.png\"."
            ),
            ProfileError::ImageNameControlCharacters => write!(
                f,
                "The picture name holds line breaks or other invisible characters. Use a name such as \"image_3.png\"."
            ),
        }
    }
}

impl std::error::Error for ProfileError {}

/// Checks a colour: a Tk colour name (ASCII letters, digits and spaces, as
/// in "blue" or "light goldenrod yellow") or `#rrggbb`, at most
/// [`MAX_COLOR_CHARS`] characters. Names Tk does not know pass (they only
/// show grey), but nothing longer or of another shape is kept or relayed.
pub fn validate_color(color: &str) -> Result<(), ProfileError> {
    let chars = color.chars().count();
    if chars > MAX_COLOR_CHARS {
        return Err(ProfileError::ColorTooLong { chars });
    }
    let tk_name = color.starts_with(|c: char| c.is_ascii_alphabetic())
        && color.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ');
    let hex = color
        .strip_prefix('#')
        .is_some_and(|h| h.len() == 6 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if tk_name || hex {
        Ok(())
    } else {
        Err(ProfileError::NotAColor {
            color: color.to_string(),
        })
    }
}

/// Checks a picture name: at most [`MAX_IMAGE_NAME_CHARS`] characters and
/// no control characters. Any such name is harmless: original peers are
/// only ever sent one of their own 25 ([`for_original`]).
pub fn validate_image_name(image_name: &str) -> Result<(), ProfileError> {
    let chars = image_name.chars().count();
    if chars > MAX_IMAGE_NAME_CHARS {
        return Err(ProfileError::ImageNameTooLong { chars });
    }
    if image_name.chars().any(char::is_control) {
        return Err(ProfileError::ImageNameControlCharacters);
    }
    Ok(())
}

/// The form of a name used to decide whether two names are the same person:
/// "Alice" and "alice" cannot both be connected.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// The number `n` of a built-in picture named `image_<n>.png`, if the name is
/// one of the original's.
pub fn original_image_number(image_name: &str) -> Option<u32> {
    avatar::image_number(image_name).filter(|n| (1..=ORIGINAL_IMAGE_COUNT).contains(n))
}

/// Whether an original (Tk) client can display this colour.
pub fn is_original_color(color: &str) -> bool {
    color::parse(color).is_some()
}

/// The picture name an original program can take for `image_name`: itself
/// if it is one of the original 25, the stand-in for a HubChat-only built-in
/// (see [`ORIGINAL_STAND_INS`]), else [`DEFAULT_IMAGE_NAME`].
pub fn original_image_name(image_name: &str) -> String {
    if original_image_number(image_name).is_some() {
        return image_name.to_string();
    }
    avatar::image_number(image_name)
        .and_then(|n| ORIGINAL_STAND_INS.iter().find(|(new, _)| *new == n))
        .map_or_else(
            || DEFAULT_IMAGE_NAME.to_string(),
            |(_, old)| format!("image_{old}.png"),
        )
}

/// The profile as an original client may see it: a picture it has and a
/// colour Tk knows, falling back to the defaults.
pub fn for_original(profile: &Profile) -> Profile {
    let image_name = original_image_name(&profile.image_name);
    let color = if is_original_color(&profile.color) {
        profile.color.clone()
    } else {
        DEFAULT_COLOR.to_string()
    };
    Profile {
        name: profile.name.clone(),
        color,
        image_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_must_not_be_empty() {
        assert_eq!(validate_name("  alice \t"), Ok("alice"));
        assert_eq!(validate_name("   "), Err(NameError::Empty));
    }

    #[test]
    fn names_are_counted_in_characters_not_bytes() {
        let cjk = "名".repeat(MAX_NAME_CHARS);
        assert_eq!(validate_name(&cjk), Ok(cjk.as_str()));
        assert_eq!(
            validate_name(&"x".repeat(MAX_NAME_CHARS + 1)),
            Err(NameError::TooLong { chars: 33 })
        );
    }

    #[test]
    fn names_with_line_breaks_are_refused() {
        assert_eq!(validate_name("al\nice"), Err(NameError::ControlCharacters));
    }

    #[test]
    fn names_differing_only_in_case_are_the_same_person() {
        assert_eq!(name_key("Ålice"), name_key("åLICE"));
    }

    #[test]
    fn only_the_originals_twenty_five_pictures_count_as_original() {
        assert_eq!(original_image_number("image_1.png"), Some(1));
        assert_eq!(original_image_number("image_25.png"), Some(25));
        for bad in [
            "image_0.png",
            "image_26.png",
            "image_01.png",
            "image_.png",
            "../x.png",
            "image_3.jpg",
        ] {
            assert_eq!(original_image_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn hubchat_only_built_ins_stand_in_as_an_original_picture() {
        assert_eq!(original_image_name("image_28.png"), "image_17.png");
        for n in 1..=30 {
            let name = format!("image_{n}.png");
            let old = original_image_name(&name);
            assert!(original_image_number(&old).is_some(), "{name} -> {old}");
            if n <= ORIGINAL_IMAGE_COUNT {
                assert_eq!(old, name);
            }
        }
        assert_eq!(original_image_name("image_31.png"), DEFAULT_IMAGE_NAME);
        assert_eq!(original_image_name("custom:abc"), DEFAULT_IMAGE_NAME);
    }

    #[test]
    fn colours_are_tk_names_or_hex_and_short() {
        for good in [
            "blue",
            "slateblue",
            "light goldenrod yellow",
            "gray50",
            "#A0b1C2",
        ] {
            assert_eq!(validate_color(good), Ok(()), "{good}");
        }
        assert_eq!(validate_color(&"a".repeat(MAX_COLOR_CHARS)), Ok(()));
        assert_eq!(
            validate_color(&"a".repeat(MAX_COLOR_CHARS + 1)),
            Err(ProfileError::ColorTooLong { chars: 33 })
        );
        for bad in [
            "",
            " blue",
            "red; rm -rf",
            "#12345",
            "#1234567",
            "#gggggg",
            "bl\nue",
            "rouge vif é",
        ] {
            assert!(
                matches!(validate_color(bad), Err(ProfileError::NotAColor { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn picture_names_are_short_and_printable() {
        assert_eq!(validate_image_name("image_3.png"), Ok(()));
        assert_eq!(
            validate_image_name(&"é".repeat(MAX_IMAGE_NAME_CHARS)),
            Ok(())
        );
        assert_eq!(
            validate_image_name(&"x".repeat(MAX_IMAGE_NAME_CHARS + 1)),
            Err(ProfileError::ImageNameTooLong { chars: 65 })
        );
        assert_eq!(
            validate_image_name("image_3.png\n"),
            Err(ProfileError::ImageNameControlCharacters)
        );
    }

    #[test]
    fn original_peers_only_see_pictures_and_colours_they_have() {
        let p = Profile {
            name: "bob".into(),
            color: "chartreuse; rm -rf".into(),
            image_name: "custom:abc".into(),
        };
        let safe = for_original(&p);
        assert_eq!(safe.image_name, DEFAULT_IMAGE_NAME);
        assert_eq!(safe.color, DEFAULT_COLOR);
        let fine = Profile {
            name: "bob".into(),
            color: "#A0b1C2".into(),
            image_name: "image_7.png".into(),
        };
        assert_eq!(for_original(&fine), fine);
    }
}
