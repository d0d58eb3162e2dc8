//! Rules for what a client may call itself, and what original peers can take.
//!
//! Both programs use these: the server to refuse bad names and oversized
//! profiles, the client to say what is wrong before it even connects. The
//! original client breaks on an `image_name` outside its own 25 pictures and
//! on a colour Tk does not know, so everything sent to an original peer goes
//! through [`for_original`], and a HubChat client names only one of those 25
//! pictures in its INFO ([`original_image_name`]): the original *server*
//! also opens the file, and dies on one it does not have.

use std::collections::HashMap;
use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{
    GeneralCategory, GeneralCategoryGroup, UnicodeEmoji, UnicodeGeneralCategory,
};

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

/// The most nonspacing marks (accents and the like) a name may stack in a
/// row, counted after canonical decomposition. Real names need two or three
/// (Vietnamese "ệ" is e + two marks); past four they spill over the lines
/// around them (UTS #39, section 5.4).
pub const MAX_MARKS_IN_A_ROW: usize = 4;

/// Why a name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong {
        chars: usize,
    },
    ControlCharacters,
    /// A space other than U+0020, or a line or paragraph separator.
    OddSpace {
        code_point: char,
    },
    /// A bidi control (RLO, LRI, RLM...): it can show "ecila" as "alice".
    TextDirection {
        code_point: char,
    },
    /// A format character or default-ignorable code point: drawn as
    /// nothing, so "alice" + U+200B passes for "alice".
    Invisible {
        code_point: char,
    },
    /// A private-use or unassigned code point: it shows as anything, or
    /// nothing, depending on the computer.
    Undefined {
        code_point: char,
    },
    /// The first character is a mark meant to sit on a letter before it.
    StartsWithMark,
    TooManyMarks,
    NoLetterOrDigit,
}

/// "U+200B": how a character the user cannot see is named to them.
struct CodePoint(char);

impl fmt::Display for CodePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))
    }
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
            NameError::OddSpace { code_point } => write!(
                f,
                "The name holds a space or line break other than the plain space ({}). Type the name again with ordinary spaces.",
                CodePoint(*code_point)
            ),
            NameError::TextDirection { code_point } => write!(
                f,
                "The name holds a character that turns the text around ({}), so it could show as another name. Type the name again without it.",
                CodePoint(*code_point)
            ),
            NameError::Invisible { code_point } => write!(
                f,
                "The name holds an invisible character ({}), so it could pass for another name. Type the name again without it.",
                CodePoint(*code_point)
            ),
            NameError::Undefined { code_point } => write!(
                f,
                "The name holds a character with no agreed look ({}, private or not yet in Unicode). Type the name again without it.",
                CodePoint(*code_point)
            ),
            NameError::StartsWithMark => write!(
                f,
                "The name starts with an accent or other mark that belongs on a letter. Start it with a letter, digit or symbol."
            ),
            NameError::TooManyMarks => write!(
                f,
                "The name stacks more than {MAX_MARKS_IN_A_ROW} accents or marks on one letter. Use at most {MAX_MARKS_IN_A_ROW}."
            ),
            NameError::NoLetterOrDigit => write!(
                f,
                "The name has no letter or digit. Add at least one, so others can tell you apart."
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks a name and returns it trimmed of surrounding white space.
///
/// Beyond length and control characters, this refuses whatever lets one
/// name pass for another on screen: characters drawn as nothing, bidi
/// controls, spaces other than the plain one, marks with no letter to sit
/// on or stacked past [`MAX_MARKS_IN_A_ROW`], and names with no letter or
/// digit at all. Zero-width joiners, variation selectors and tags stay
/// allowed inside emoji sequences ("❤️", "👩‍💻", a Welsh flag), where they
/// are part of the picture. Look-alikes made of visible characters
/// ("аlice" in Cyrillic) are valid names; [`TakenNames`] keeps them from
/// being used beside the name they imitate.
pub fn validate_name(name: &str) -> Result<&str, NameError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    let chars: Vec<char> = name.chars().collect();
    if chars.len() > MAX_NAME_CHARS {
        return Err(NameError::TooLong { chars: chars.len() });
    }
    for i in 0..chars.len() {
        check_char(&chars, i)?;
    }
    if chars[0].general_category_group() == GeneralCategoryGroup::Mark {
        return Err(NameError::StartsWithMark);
    }
    if marks_in_a_row(name) > MAX_MARKS_IN_A_ROW {
        return Err(NameError::TooManyMarks);
    }
    let letter_or_digit = |c: &char| {
        matches!(
            c.general_category_group(),
            GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
        )
    };
    if !chars.iter().any(letter_or_digit) {
        return Err(NameError::NoLetterOrDigit);
    }
    Ok(name)
}

/// Refuses `chars[i]` if it is a control, a bidi control, an odd space, an
/// invisible character outside an emoji sequence, or has no agreed look.
fn check_char(chars: &[char], i: usize) -> Result<(), NameError> {
    let c = chars[i];
    let code_point = c;
    if c.is_control() {
        return Err(NameError::ControlCharacters);
    }
    if is_direction_control(c) {
        return Err(NameError::TextDirection { code_point });
    }
    let category = c.general_category();
    if c != ' ' && c.general_category_group() == GeneralCategoryGroup::Separator {
        return Err(NameError::OddSpace { code_point });
    }
    let invisible =
        category == GeneralCategory::Format || is_default_ignorable(c) || c == BRAILLE_BLANK;
    if invisible && !in_emoji_sequence(chars, i) {
        return Err(NameError::Invisible { code_point });
    }
    if matches!(
        category,
        GeneralCategory::PrivateUse | GeneralCategory::Unassigned | GeneralCategory::Surrogate
    ) {
        return Err(NameError::Undefined { code_point });
    }
    Ok(())
}

/// U+2800 BRAILLE PATTERN BLANK: a symbol, so not default-ignorable, but
/// drawn as an empty cell: the usual way to make a name that shows as
/// nothing once invisible characters are refused.
const BRAILLE_BLANK: char = '\u{2800}';

/// The bidi controls (UAX #9): embeddings, overrides, isolates and the
/// directional marks. All of them are format characters; they are named
/// apart because "turns the text around" tells the user more than
/// "invisible".
fn is_direction_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` is a Default_Ignorable_Code_Point (U+200B, U+00AD, U+3164
/// HANGUL FILLER, variation selectors...): a character fonts draw as
/// nothing. The UTS #39 skeleton drops exactly these, so `unicode-security`
/// answers this without a second copy of the table.
fn is_default_ignorable(c: char) -> bool {
    let mut buf = [0; 4];
    let mut skeleton = unicode_security::skeleton(c.encode_utf8(&mut buf));
    skeleton.next().is_none()
}

/// Whether the invisible `chars[i]` is part of an emoji sequence (UTS #51),
/// where it changes the picture rather than hiding: a variation selector
/// after an emoji ("❤️"), a zero-width joiner between two ("👩‍💻"), or the
/// tags of a flag such as Wales' (U+1F3F4, tags, U+E007F).
fn in_emoji_sequence(chars: &[char], i: usize) -> bool {
    let emoji = |c: Option<&char>| c.is_some_and(|c| !c.is_ascii() && c.is_emoji_char());
    let before = i.checked_sub(1).and_then(|j| chars.get(j));
    let after = chars.get(i + 1);
    match chars[i] {
        '\u{FE0E}' | '\u{FE0F}' => before.is_some_and(|c| c.is_emoji_char()),
        '\u{200D}' => (emoji(before) || before == Some(&'\u{FE0F}')) && emoji(after),
        '\u{E0020}'..='\u{E007F}' => in_tag_sequence(chars, i),
        _ => false,
    }
}

/// Whether the tag character `chars[i]` is inside an emoji tag sequence:
/// U+1F3F4 WAVING BLACK FLAG, at least one tag spec, U+E007F CANCEL TAG.
fn in_tag_sequence(chars: &[char], i: usize) -> bool {
    let spec = |c: &char| ('\u{E0020}'..='\u{E007E}').contains(c);
    let Some(flag) = chars[..i].iter().rposition(|c| !spec(c)) else {
        return false;
    };
    if chars[flag] != '\u{1F3F4}' {
        return false;
    }
    if chars[i] == '\u{E007F}' {
        return i > flag + 1;
    }
    chars[i..].iter().find(|c| !spec(c)) == Some(&'\u{E007F}')
}

/// The longest run of nonspacing marks in the canonical decomposition.
fn marks_in_a_row(name: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in name.nfd() {
        if c.general_category() == GeneralCategory::NonspacingMark {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
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

/// The form of a name used to decide whether two names are the same
/// person: its UTS #39 skeleton, taken after NFKC and case folding, with
/// runs of spaces made one. "Alice", "ＡＬＩＣＥ" (fullwidth), "аlice" (with a
/// Cyrillic а) and "a1ice" all have the key of "alice". The client keys its
/// conversations by it; the server holds names by [`name_keys`], which adds
/// a second form.
pub fn name_key(name: &str) -> String {
    let [folded_first, _] = keys_of(name);
    folded_first
}

/// Both forms a name is held under. Confusables are mapped case by case
/// ("I" looks like "l", "i" does not), so one form cannot catch a look-alike
/// of another case as well as a case variant: "ALICE" is caught by folding
/// case first, "AIice" (capital i) beside "alice" only by mapping
/// confusables first. A name is taken if either of its forms is held.
pub fn name_keys(name: &str) -> NameKeys {
    NameKeys {
        name: name.to_string(),
        keys: keys_of(name),
    }
}

fn keys_of(name: &str) -> [String; 2] {
    let nfkc: String = name.nfkc().collect();
    let folded_first = fold_case(&skeleton(&fold_case(&nfkc)));
    let confusables_first = fold_case(&skeleton(&nfkc));
    [
        squeeze_spaces(&folded_first),
        squeeze_spaces(&confusables_first),
    ]
}

/// Full case folding as far as std reaches it: "ß" and "SS", "ς" and "σ",
/// "ǅ" and "ǆ" come out the same, which lower-casing alone does not do.
fn fold_case(s: &str) -> String {
    s.to_uppercase().to_lowercase()
}

fn skeleton(s: &str) -> String {
    unicode_security::skeleton(s).collect()
}

/// "a  b" shows much as "a b" does: runs of spaces count as one.
fn squeeze_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

/// A (valid, trimmed) name with the forms it would be held under; made
/// before taking a lock, so the lock is held only for the look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameKeys {
    name: String,
    keys: [String; 2],
}

impl NameKeys {
    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Both forms the name is held under (often the same twice): what the
    /// server's store keeps a binding under.
    pub fn keys(&self) -> &[String; 2] {
        &self.keys
    }
}

/// A name is held, by this other name or one it cannot be told from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTaken {
    /// The name asked for.
    pub name: String,
    /// The name of whoever holds it.
    pub holder: String,
}

impl fmt::Display for NameTaken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if fold_case(&self.name) == fold_case(&self.holder) {
            write!(
                f,
                "The name \"{}\" is already taken. Choose another name.",
                self.name
            )
        } else {
            // Without the name asked for: the person just typed it, and
            // two names of up to 32 characters would not fit the form.
            write!(
                f,
                "This name looks like \"{}\", who is already here. Choose another name.",
                self.holder
            )
        }
    }
}

impl std::error::Error for NameTaken {}

/// The names in use, each held under both its forms ([`name_keys`]), so
/// no newcomer can appear beside a name it would pass for.
#[derive(Debug, Default)]
pub struct TakenNames {
    /// Form -> the name holding it.
    holders: HashMap<String, String>,
}

impl TakenNames {
    /// Refuses `keys` if a name that looks the same is held.
    pub fn check(&self, keys: &NameKeys) -> Result<(), NameTaken> {
        match keys.keys.iter().find_map(|k| self.holders.get(k)) {
            Some(holder) => Err(NameTaken {
                name: keys.name.clone(),
                holder: holder.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Holds a name (that passed [`Self::check`]) under both its forms.
    pub fn insert(&mut self, keys: NameKeys) {
        let NameKeys { name, keys } = keys;
        for key in keys {
            self.holders.insert(key, name.clone());
        }
    }

    /// Frees the forms `name` holds.
    pub fn remove(&mut self, name: &str) {
        for key in keys_of(name) {
            if self.holders.get(&key).is_some_and(|h| h == name) {
                self.holders.remove(&key);
            }
        }
    }

    pub fn clear(&mut self) {
        self.holders.clear();
    }
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
        files: false,
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
        assert_eq!(name_key("STRASSE"), name_key("straße"));
    }

    /// Two names someone could take for each other: some form of one is a
    /// form of the other, so the second cannot join beside the first.
    fn look_alike(a: &str, b: &str) -> bool {
        let mut taken = TakenNames::default();
        taken.insert(name_keys(a));
        taken.check(&name_keys(b)).is_err()
    }

    #[test]
    fn look_alikes_of_alice_share_her_key() {
        for other in [
            "alice",
            "ALICE",
            "Alice",
            "\u{430}lice",                              // Cyrillic а
            "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", // fullwidth
            "\u{FF21}\u{FF2C}\u{FF29}\u{FF23}\u{FF25}", // fullwidth capitals
            "a1ice",
            "al\u{456}ce", // Cyrillic і
            "\u{3B1}lice", // Greek α
        ] {
            assert_eq!(name_key(other), name_key("alice"), "{other}");
            assert!(look_alike("alice", other), "{other}");
            assert!(look_alike(other, "alice"), "{other}");
        }
    }

    #[test]
    fn a_capital_i_for_an_l_is_caught_beside_either_case() {
        assert!(look_alike("alice", "AIice"));
        assert!(look_alike("Alice", "AIice"));
        assert!(look_alike("AIice", "alice"));
        assert!(look_alike("bob", "B0B"));
    }

    #[test]
    fn runs_of_spaces_count_as_one() {
        assert!(look_alike("ann lee", "ann  lee"));
        assert!(!look_alike("ann lee", "annlee"));
    }

    #[test]
    fn different_names_stay_different() {
        for (a, b) in [
            ("alice", "alicia"),
            ("alice", "bob"),
            ("李明", "李月"),
            ("Zoë", "Zoe"),
            ("Иван", "Ivan"),
            ("🦊 fox", "🐺 fox"),
        ] {
            assert!(!look_alike(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn a_freed_name_can_be_taken_again_and_frees_only_its_own_forms() {
        let mut taken = TakenNames::default();
        taken.insert(name_keys("alice"));
        taken.remove("ALICE"); // not the holder: nothing freed
        assert!(taken.check(&name_keys("alice")).is_err());
        taken.remove("alice");
        assert_eq!(taken.check(&name_keys("\u{430}lice")), Ok(()));
    }

    #[test]
    fn a_refusal_names_the_look_alike_or_says_taken() {
        let mut taken = TakenNames::default();
        taken.insert(name_keys("alice"));
        let said = |name: &str| taken.check(&name_keys(name)).unwrap_err().to_string();
        assert_eq!(
            said("ALICE"),
            "The name \"ALICE\" is already taken. Choose another name."
        );
        assert_eq!(
            said("\u{430}lice"),
            "This name looks like \"alice\", who is already here. Choose another name."
        );
    }

    #[test]
    fn invisible_characters_are_refused_by_code_point() {
        for c in [
            '\u{2800}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{AD}',
            '\u{180E}',
            '\u{3164}',
            '\u{115F}',
            '\u{FE0F}',
            '\u{E0061}',
            '\u{34F}',
        ] {
            for name in [format!("alice{c}"), format!("al{c}ice")] {
                assert_eq!(
                    validate_name(&name),
                    Err(NameError::Invisible { code_point: c }),
                    "{name:?}"
                );
            }
        }
        let said = NameError::Invisible {
            code_point: '\u{200B}',
        }
        .to_string();
        assert!(said.contains("U+200B"), "{said}");
    }

    #[test]
    fn names_of_invisible_characters_only_are_refused() {
        assert!(matches!(
            validate_name("\u{3164}\u{3164}"),
            Err(NameError::Invisible { .. })
        ));
        assert!(matches!(
            validate_name("\u{200B}"),
            Err(NameError::Invisible { .. })
        ));
    }

    #[test]
    fn bidi_controls_are_refused_as_turning_text_around() {
        for c in [
            '\u{202E}', '\u{202D}', '\u{2067}', '\u{2069}', '\u{200F}', '\u{61C}',
        ] {
            assert_eq!(
                validate_name(&format!("{c}ecila")),
                Err(NameError::TextDirection { code_point: c })
            );
        }
    }

    #[test]
    fn spaces_other_than_the_plain_one_are_refused() {
        for c in [
            '\u{2028}', '\u{2029}', '\u{A0}', '\u{3000}', '\u{2009}', '\u{202F}',
        ] {
            assert_eq!(
                validate_name(&format!("al{c}ice")),
                Err(NameError::OddSpace { code_point: c }),
                "U+{:04X}",
                u32::from(c)
            );
        }
        assert_eq!(validate_name("ann lee"), Ok("ann lee"));
    }

    #[test]
    fn private_and_unassigned_code_points_are_refused() {
        for c in ['\u{E000}', '\u{F8FF}', '\u{10FFFD}', '\u{E0FFF}'] {
            let err = validate_name(&format!("alice{c}")).unwrap_err();
            assert!(
                matches!(
                    err,
                    NameError::Undefined { .. } | NameError::Invisible { .. }
                ),
                "{err:?}"
            );
        }
        assert_eq!(
            validate_name("alice\u{E000}"),
            Err(NameError::Undefined {
                code_point: '\u{E000}'
            })
        );
    }

    #[test]
    fn marks_need_a_letter_and_may_stack_only_so_high() {
        assert_eq!(
            validate_name("\u{301}\u{301}\u{301}"),
            Err(NameError::StartsWithMark)
        );
        assert_eq!(
            validate_name("\u{301}alice"),
            Err(NameError::StartsWithMark)
        );
        assert_eq!(
            validate_name("a\u{301}\u{302}\u{303}\u{304}"),
            Ok("a\u{301}\u{302}\u{303}\u{304}")
        );
        assert_eq!(
            validate_name("a\u{301}\u{302}\u{303}\u{304}\u{305}"),
            Err(NameError::TooManyMarks)
        );
        // Precomposed letters count their marks too: ệ is e + 2.
        assert_eq!(
            validate_name("\u{1EC7}\u{301}\u{302}\u{303}"),
            Err(NameError::TooManyMarks)
        );
    }

    #[test]
    fn a_name_needs_a_letter_or_digit() {
        for bad in ["🦊", "!!!", "- -", "❤️"] {
            assert_eq!(validate_name(bad), Err(NameError::NoLetterOrDigit), "{bad}");
        }
        assert_eq!(validate_name("007"), Ok("007"));
    }

    #[test]
    fn harmless_names_in_every_script_stay_allowed() {
        for good in [
            "Zoë",
            "Zoe\u{308}", // the same, decomposed
            "李明",
            "🦊 fox",
            "❤️ ann",
            "👩‍💻 dev",
            "👩🏽‍🚀 mae",
            "🏴\u{E0067}\u{E0062}\u{E0077}\u{E006C}\u{E0073}\u{E007F} Dafydd",
            "1️⃣ first",
            "محمد",
            "דוד",
            "Иван",
            "Nguyễn Thị Ánh",
            "山田 たろう",
            "김민준",
            "ของฉัน",
            "O'Brien-Smith",
            "R2-D2",
        ] {
            assert_eq!(validate_name(good), Ok(good), "{good}");
        }
    }

    #[test]
    fn emoji_joiners_and_tags_outside_emoji_are_refused() {
        for bad in [
            "a\u{200D}b",
            "\u{1F98A}\u{200D}",
            "1\u{200D}2",
            "fox \u{1F3F4}\u{E0067}\u{E0062}", // tags never cancelled
            "fox \u{1F3F4}\u{E007F}",          // a cancel with no tag
            "fox \u{E0067}\u{E007F}",          // tags with no flag
        ] {
            assert!(
                matches!(validate_name(bad), Err(NameError::Invisible { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_code_point_is_judged_without_panicking() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let name = format!("a{c}b");
            let _ = validate_name(&name);
            let _ = name_keys(&name);
        }
    }

    #[test]
    fn default_ignorables_are_known_and_ordinary_characters_are_not() {
        for c in [
            '\u{AD}',
            '\u{34F}',
            '\u{200B}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{E0001}',
            '\u{2065}',
        ] {
            assert!(is_default_ignorable(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', ' ', 'é', '李', '🦊', '\u{301}', '\u{600}'] {
            assert!(!is_default_ignorable(c), "U+{:04X}", u32::from(c));
        }
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
            files: false,
        };
        let safe = for_original(&p);
        assert_eq!(safe.image_name, DEFAULT_IMAGE_NAME);
        assert_eq!(safe.color, DEFAULT_COLOR);
        let fine = Profile {
            name: "bob".into(),
            color: "#A0b1C2".into(),
            image_name: "image_7.png".into(),
            files: false,
        };
        assert_eq!(for_original(&fine), fine);
    }
}
