//! Which font families the body text is drawn with.
//!
//! FLTK on X11 draws through pango, but measures a line with the main font
//! alone: the height of one line in a text display, and where the baseline
//! sits, come from that font's ascent and descent. Pango draws characters
//! the main font lacks with a fallback font, and lays the whole line out
//! with the tallest ascent among them. With a Latin main font (DejaVu Sans
//! on most Linux systems) a line holding CJK is laid out for the taller CJK
//! font: it lands a few pixels low and FLTK clips its bottom ("Zoë 陈
//! joined" reads "ioined").
//!
//! So the font slots the programs use are pointed at a family that covers
//! CJK itself (Noto Sans CJK, also sold as Source Han Sans): its metrics are
//! the tallest among the scripts a chat shows (Latin, Cyrillic, Greek, CJK;
//! Arabic, Hebrew and emoji fall back to shorter fonts), so every line fits
//! its box. Its Latin letters are a clean sans (Source Sans). The variant
//! (SC, TC, HK, JP, KR: how Han characters are shaped) follows the locale.
//! Each slot names a list of families ending in FLTK's own choice, so a
//! machine without these fonts keeps today's look.
//!
//! The price: a piece of text drawn wholly in a shorter fallback font (a
//! message that is only Hebrew, Arabic or emoji) is laid out for that
//! font's smaller ascent and sits up to 4 px high in its line. Nothing is
//! clipped, and one font cannot be both the tallest and the shortest: a
//! clipped word was the worse of the two.
//!
//! Windows (GDI) and macOS (Core Text) builds keep FLTK's own fonts: they
//! do not draw through pango, and they have not been measured here.

// Only pango builds use the names below.
#![cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]

use fltk::enums::Font;

/// The font slots the programs draw body text with, the style each carries,
/// and whether it is the fixed-width family.
const SLOTS: [(Font, &str, Pitch); 8] = [
    (Font::Helvetica, "", Pitch::Proportional),
    (Font::HelveticaBold, " Bold", Pitch::Proportional),
    (Font::HelveticaItalic, " Italic", Pitch::Proportional),
    (
        Font::HelveticaBoldItalic,
        " Bold Italic",
        Pitch::Proportional,
    ),
    (Font::Courier, "", Pitch::Fixed),
    (Font::CourierBold, " Bold", Pitch::Fixed),
    (Font::CourierItalic, " Italic", Pitch::Fixed),
    (Font::CourierBoldItalic, " Bold Italic", Pitch::Fixed),
];

/// Proportional (Helvetica slots) or fixed-width (Courier slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pitch {
    Proportional,
    Fixed,
}

/// The CJK variants, each named as the Noto and Source Han families spell
/// it.
const VARIANTS: [&str; 5] = ["SC", "TC", "HK", "JP", "KR"];

/// Points the body font slots at CJK-capable families (see the module
/// comment). Call before any text is drawn.
pub fn use_cjk_capable_fonts() {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let variant = variant_for_locale(&locale());
        for (slot, style, pitch) in SLOTS {
            Font::set_font(slot, &pango_name(variant, pitch, style));
        }
    }
}

/// The user's locale for text, as the C library reads it.
#[cfg(all(unix, not(target_os = "macos")))]
fn locale() -> String {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.is_empty())
        .unwrap_or_default()
}

/// The CJK variant whose Han shapes a reader of `locale` expects. Other
/// locales get JP, the variant Debian's fontconfig already picks for CJK
/// fallback there, so their Han text looks as before.
fn variant_for_locale(locale: &str) -> &'static str {
    let locale = locale.to_ascii_lowercase().replace('-', "_");
    let region_is = |regions: &[&str]| regions.iter().any(|r| locale.starts_with(r));
    if region_is(&["zh_tw", "zh_hant"]) {
        "TC"
    } else if region_is(&["zh_hk", "zh_mo"]) {
        "HK"
    } else if locale.starts_with("zh") {
        "SC"
    } else if locale.starts_with("ko") {
        "KR"
    } else {
        "JP"
    }
}

/// A pango font description: the CJK-capable families, preferred variant
/// first, then the generic family FLTK uses by default, then the style.
fn pango_name(variant: &str, pitch: Pitch, style: &str) -> String {
    let (noto, source_han, generic) = match pitch {
        Pitch::Proportional => ("Noto Sans CJK", "Source Han Sans", "Sans"),
        Pitch::Fixed => ("Noto Sans Mono CJK", "Source Han Mono", "Mono"),
    };
    let ordered = std::iter::once(variant).chain(VARIANTS.into_iter().filter(|v| *v != variant));
    let mut families: Vec<String> = Vec::new();
    for v in ordered {
        families.push(format!("{noto} {v}"));
        families.push(format!("{source_han} {v}"));
    }
    families.push(generic.to_string());
    format!("{}{style}", families.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_shapes_follow_the_locale() {
        assert_eq!(variant_for_locale("zh_CN.UTF-8"), "SC");
        assert_eq!(variant_for_locale("zh_SG"), "SC");
        assert_eq!(variant_for_locale("zh_TW.UTF-8"), "TC");
        assert_eq!(variant_for_locale("zh-Hant"), "TC");
        assert_eq!(variant_for_locale("zh_HK.UTF-8"), "HK");
        assert_eq!(variant_for_locale("ja_JP.UTF-8"), "JP");
        assert_eq!(variant_for_locale("ko_KR.UTF-8"), "KR");
        assert_eq!(variant_for_locale("en_GB.UTF-8"), "JP");
        assert_eq!(variant_for_locale("C.UTF-8"), "JP");
        assert_eq!(variant_for_locale(""), "JP");
    }

    #[test]
    fn a_slot_names_its_variant_first_every_other_next_and_the_default_last() {
        let name = pango_name("KR", Pitch::Proportional, " Bold");
        assert!(name.starts_with("Noto Sans CJK KR,Source Han Sans KR,Noto Sans CJK SC,"));
        assert!(name.ends_with(",Sans Bold"), "{name}");
        for v in VARIANTS {
            assert_eq!(name.matches(&format!("Noto Sans CJK {v},")).count(), 1);
        }
        let mono = pango_name("SC", Pitch::Fixed, "");
        assert!(mono.starts_with("Noto Sans Mono CJK SC,Source Han Mono SC,"));
        assert!(mono.ends_with(",Mono"), "{mono}");
    }
}
