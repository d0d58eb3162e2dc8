//! FLTK pieces both windows share: the look, colours, avatar pictures and
//! sounds. Everything that decides *what* to show lives in plain modules
//! (`server::view`, ...); this is only *how* it is drawn.

pub mod attention;
pub mod avatars;
pub mod follow;
pub mod fonts;
pub mod icon;

use fltk::app;
use fltk::dialog::{beep, BeepType};
use fltk::draw;
use fltk::enums::{Align, Color, Event, Font, FrameType};
use fltk::frame::Frame;
use fltk::prelude::*;
use fltk::table::TableRow;

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
    fonts::use_cjk_capable_fonts();
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

/// A label left-aligned in its cell.
pub fn label(text: &str) -> Frame {
    let mut f = Frame::default().with_label(text);
    f.set_align(Align::Left | Align::Inside);
    f
}

/// A bold label over a panel.
pub fn heading(text: &str) -> Frame {
    let mut f = label(text);
    f.set_label_font(BOLD);
    f
}

/// Where a form's mistakes are written: red, wrapping, under the fields.
pub fn error_label() -> Frame {
    let mut f = Frame::default();
    f.set_align(Align::Left | Align::Inside | Align::Top | Align::Wrap);
    f.set_label_color(ERROR);
    f.set_label_size(TEXT_SIZE - 1);
    f
}

/// Enables or disables a widget.
pub fn set_active<W: WidgetExt>(w: &mut W, on: bool) {
    if on {
        w.activate();
    } else {
        w.deactivate();
    }
}

/// Makes a one-column table whose column always spans its inside, leaving
/// room for the scrollbar so rows do not jump when it appears. (Setting any
/// frame on an FLTK table stops its scrollbar from being drawn: keep the
/// default.)
pub fn one_column_table(table: &mut TableRow) {
    fn fit(table: &mut TableRow) {
        let width = table.w() - 2 * table.frame().dx() - table.scrollbar_size();
        if width > 0 && table.col_width(0) != width {
            table.set_col_width(0, width);
        }
    }
    table.set_cols(1);
    table.set_col_header(false);
    table.set_row_header(false);
    table.set_color(PANEL);
    table.set_scrollbar_size(14);
    fit(table);
    table.resize_callback(|t, _, _, _, _| fit(t));
    mark_focus(table);
}

/// Draws FLTK's dotted focus mark just inside a widget while it has the
/// keyboard focus. Buttons draw their own; tables and text displays take
/// the focus from Tab but draw nothing, so Tab seemed lost on them. Replaces
/// any earlier `handle` and `draw` callbacks of the widget; a widget that
/// needs callbacks of its own calls [`redraw_on_focus`] and
/// [`draw_focus_mark`] from them instead.
pub fn mark_focus<W: WidgetBase + WidgetExt>(widget: &mut W) {
    widget.handle(|w, event| {
        redraw_on_focus(w, event);
        false
    });
    widget.draw(|w| draw_focus_mark(w));
}

/// Redraws a widget when it gets or loses the keyboard focus, so its focus
/// mark follows.
pub fn redraw_on_focus<W: WidgetExt>(w: &mut W, event: Event) {
    if matches!(event, Event::Focus | Event::Unfocus) {
        w.redraw();
    }
}

/// Draws the dotted focus mark inside `w` if it has the keyboard focus.
pub fn draw_focus_mark<W: WidgetExt>(w: &W) {
    if app::visible_focus() && w.has_visible_focus() && w.has_focus() {
        let frame = w.frame();
        draw::set_draw_color(Color::Black);
        draw::draw_focus_rect(
            w.x() + frame.dx(),
            w.y() + frame.dy(),
            w.w() - frame.dw(),
            w.h() - frame.dh(),
        );
    }
}

/// Makes Tab go round a window: past the last control back to the first,
/// and Shift+Tab the other way; call it from the window's handle callback
/// with its controls in Tab order. FLTK moves the focus only among the
/// children of one group and wraps round only in a window with more than
/// one child; our windows have one (their page), so Tab stopped dead at
/// the end. The window sees a Tab only when no control and no group inside
/// took it, that is at either end. Returns whether it took the event.
pub fn wrap_tab(event: Event, order: &[fltk::widget::Widget]) -> bool {
    if event != Event::KeyDown || app::event_key() != fltk::enums::Key::Tab {
        return false;
    }
    let mut candidates: Box<dyn Iterator<Item = &fltk::widget::Widget>> = if app::is_event_shift() {
        Box::new(order.iter().rev())
    } else {
        Box::new(order.iter())
    };
    candidates.any(|w| w.clone().take_focus().is_ok())
}
