//! Text colours: what a client's colour string means on screen.
//!
//! Clients name their colour as the original did, with a Tk colour name
//! (the original offers ten) or `#rrggbb`. Anything else, from a newer or a
//! buggy peer, falls back to a readable grey. Whatever the colour, names are
//! drawn on a light background, so pale colours (tan, plum, gray) are
//! darkened just enough to meet the WCAG contrast ratio for normal text.

use std::fmt;

/// A colour as red, green and blue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

/// The background names and messages are drawn on.
pub const BACKGROUND: Rgb = Rgb(0xff, 0xff, 0xff);

/// What an unknown colour becomes: a neutral grey that passes the contrast
/// check on [`BACKGROUND`].
pub const FALLBACK: Rgb = Rgb(0x5f, 0x63, 0x68);

/// WCAG's minimum contrast for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// The original's ten colours with Tk's (X11's) values, in its order.
pub const ORIGINAL_PALETTE: [(&str, Rgb); 10] = [
    ("gray", Rgb(0xbe, 0xbe, 0xbe)),
    ("rosybrown", Rgb(0xbc, 0x8f, 0x8f)),
    ("red", Rgb(0xff, 0x00, 0x00)),
    ("sienna", Rgb(0xa0, 0x52, 0x2d)),
    ("tan", Rgb(0xd2, 0xb4, 0x8c)),
    ("darkcyan", Rgb(0x00, 0x8b, 0x8b)),
    ("blue", Rgb(0x00, 0x00, 0xff)),
    ("plum", Rgb(0xdd, 0xa0, 0xdd)),
    ("purple", Rgb(0xa0, 0x20, 0xf0)),
    ("slateblue", Rgb(0x6a, 0x5a, 0xcd)),
];

/// Reads a colour string as the original's Tk would: one of the palette's
/// names (any case, as Tk allows) or `#rrggbb`. `None` for anything else.
pub fn parse(color: &str) -> Option<Rgb> {
    if let Some(hex) = color.strip_prefix('#') {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
        return Some(Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    ORIGINAL_PALETTE
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(color))
        .map(|&(_, rgb)| rgb)
}

/// The colour to draw a client's name in: its own colour, darkened until it
/// reads well on [`BACKGROUND`], or [`FALLBACK`] if it is not a colour.
pub fn for_display(color: &str) -> Rgb {
    parse(color).map_or(FALLBACK, |rgb| legible_on(rgb, BACKGROUND))
}

/// `fg` if it contrasts enough with `bg`, else the nearest darker shade of
/// it that does (keeping its hue, so blue stays blue).
pub fn legible_on(fg: Rgb, bg: Rgb) -> Rgb {
    let mut shade = fg;
    let mut factor = 1.0;
    while contrast(shade, bg) < MIN_CONTRAST && factor > 0.0 {
        factor -= 0.02;
        shade = scale(fg, factor);
    }
    shade
}

/// The WCAG contrast ratio between two colours, from 1 to 21.
pub fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

fn luminance(c: Rgb) -> f64 {
    let channel = |v: u8| {
        let v = f64::from(v) / 255.0;
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(c.0) + 0.7152 * channel(c.1) + 0.0722 * channel(c.2)
}

fn scale(c: Rgb, factor: f64) -> Rgb {
    let f = |v: u8| (f64::from(v) * factor.max(0.0)).round() as u8;
    Rgb(f(c.0), f(c.1), f(c.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tk_names_and_hex_colours_are_understood() {
        assert_eq!(parse("blue"), Some(Rgb(0, 0, 255)));
        assert_eq!(parse("SlateBlue"), Some(Rgb(0x6a, 0x5a, 0xcd)));
        assert_eq!(parse("#1A2b3C"), Some(Rgb(0x1a, 0x2b, 0x3c)));
        for junk in [
            "",
            " blue",
            "#12345",
            "#1234567",
            "#ggg000",
            "chartreuse; drop",
            "rgb(1,2,3)",
        ] {
            assert_eq!(parse(junk), None, "{junk}");
        }
    }

    #[test]
    fn every_colour_shown_is_legible_on_the_background() {
        for (name, _) in ORIGINAL_PALETTE {
            let shown = for_display(name);
            assert!(
                contrast(shown, BACKGROUND) >= MIN_CONTRAST,
                "{name} -> {shown}"
            );
        }
        for hex in ["#ffffff", "#ffff00", "#00ff00", "#f0f0f0"] {
            assert!(
                contrast(for_display(hex), BACKGROUND) >= MIN_CONTRAST,
                "{hex}"
            );
        }
        assert!(contrast(FALLBACK, BACKGROUND) >= MIN_CONTRAST);
    }

    #[test]
    fn dark_colours_are_kept_and_pale_ones_keep_their_hue() {
        assert_eq!(for_display("blue"), Rgb(0, 0, 255));
        assert_eq!(for_display("#123456"), Rgb(0x12, 0x34, 0x56));
        let tan = for_display("tan");
        assert!(tan.0 > tan.1 && tan.1 > tan.2, "still a warm brown: {tan}");
    }

    #[test]
    fn unknown_colours_fall_back_to_grey() {
        assert_eq!(for_display("no such colour"), FALLBACK);
    }
}
