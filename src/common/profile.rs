//! Rules for what a client may call itself, and what original peers can take.
//!
//! Both programs use these: the server to refuse bad names, the client to say
//! what is wrong before it even connects. The original client breaks on an
//! `image_name` outside its own 25 pictures and on a colour Tk does not know,
//! so everything sent to an original peer goes through [`for_original`].

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

/// The profile as an original client may see it: a picture it has and a
/// colour Tk knows, falling back to the defaults.
pub fn for_original(profile: &Profile) -> Profile {
    let image_name = match original_image_number(&profile.image_name) {
        Some(_) => profile.image_name.clone(),
        None => DEFAULT_IMAGE_NAME.to_string(),
    };
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
