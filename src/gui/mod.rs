//! FLTK pieces both windows share: the look, colours, avatar pictures and
//! sounds. Everything that decides *what* to show lives in plain modules
//! (`server::view`, ...); this is only *how* it is drawn.

pub mod avatars;

use fltk::app;
use fltk::dialog::{beep, BeepType};
use fltk::enums::{Color, Font, FrameType};

use crate::common::color::Rgb;

/// Base text size; FLTK's default of 14 is kept for body text.
pub const TEXT_SIZE: i32 = 14;
/// The panels' background, matching `common::color::BACKGROUND`.
pub const PANEL: Color = Color::from_rgb(0xff, 0xff, 0xff);
/// The window's background around the panels.
pub const WINDOW: Color = Color::from_rgb(0xee, 0xf0, 0xf3);
/// The frame around panels: a thin line, lighter than FLTK's black border.
pub const PANEL_FRAME: FrameType = FrameType::GtkThinDownBox;
/// Secondary text: addresses, times.
pub const MUTED: Color = Color::from_rgb(0x5f, 0x63, 0x68);
/// Errors.
pub const ERROR: Color = Color::from_rgb(0xb3, 0x26, 0x1e);

/// Sets the look shared by both programs. Call once, before building
/// windows.
pub fn init_look() {
    app::set_scheme(app::Scheme::Gtk);
    app::background(0xee, 0xf0, 0xf3);
    app::background2(0xff, 0xff, 0xff);
    app::set_font_size(TEXT_SIZE);
    app::set_visible_focus(false);
}

/// An FLTK colour from RGB.
pub fn color(rgb: Rgb) -> Color {
    Color::from_rgb(rgb.0, rgb.1, rgb.2)
}

/// The bold variant of the body font.
pub const BOLD: Font = Font::HelveticaBold;

/// The kinds of sound the programs make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    /// Something happened: a join, a leave, a message.
    Notice,
    /// Something went wrong.
    Error,
}

/// Plays the platform's alert sound, unless muted. No audio library: the
/// system bell (X11), MessageBeep (Windows) or NSBeep (macOS) is enough.
pub fn play(sound: Sound, enabled: bool) {
    if enabled {
        beep(match sound {
            Sound::Notice => BeepType::Message,
            Sound::Error => BeepType::Error,
        });
    }
}

/// Whether a graphical display is available. FLTK ends the process as soon
/// as it needs a display it cannot open, so ask first.
pub fn display_available() -> bool {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        set("DISPLAY") || set("WAYLAND_DISPLAY")
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        true
    }
}

/// Escapes text for an FLTK menu label, where `/` makes submenus and `&`
/// and `_` have meanings.
pub fn menu_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '/' | '\\' | '&' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
