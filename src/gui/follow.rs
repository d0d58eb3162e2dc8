//! Text displays that read like a log or a transcript: they follow new
//! lines while the user sees the end, stay where the user scrolled to
//! otherwise, keep the end in view across resizes, and show the keyboard
//! focus.
//!
//! FLTK calls a widget's draw callback after its own drawing, so that is
//! where "the end is in view" is recorded, from the vertical scrollbar the
//! user moves; the resize callback comes after FLTK's own resize, which
//! keeps the top line and so would leave a shrunk display above its end.

use std::cell::Cell;
use std::rc::Rc;

use fltk::prelude::*;
use fltk::text::TextDisplay;
use fltk::valuator::{Scrollbar, ScrollbarType};

/// Makes `display` keep its end in view across resizes while the user saw
/// it, and mark the keyboard focus. Returns the flag the draw callback
/// keeps: whether the end was in view when last drawn. Replaces the
/// display's draw, handle and resize callbacks.
pub fn follow_end(display: &mut TextDisplay) -> Rc<Cell<bool>> {
    let at_end = Rc::new(Cell::new(true));
    display.draw({
        let at_end = at_end.clone();
        move |d| {
            at_end.set(sees_end(d));
            super::draw_focus_mark(d);
        }
    });
    display.handle(|d, event| {
        super::redraw_on_focus(d, event);
        false
    });
    display.resize_callback({
        let at_end = at_end.clone();
        move |d, _, _, _, _| {
            if at_end.get() {
                scroll_to_end(d);
            }
        }
    });
    at_end
}

/// Asks the display to show its last line when next drawn.
pub fn scroll_to_end(display: &mut TextDisplay) {
    let length = display.buffer().map_or(0, |b| b.length());
    // A line number past the end is clamped to the last screenful.
    display.scroll(length, 0);
}

/// Whether the user sees the end of a display, as its vertical scrollbar
/// says. Asking the text layout instead is unsafe: before FLTK first draws
/// the display it divides by zero.
pub fn sees_end(display: &TextDisplay) -> bool {
    // FLTK's text display holds two scrollbars; the vertical one is the
    // one whose type says so.
    let bar = display.as_group().and_then(|g| {
        (0..g.children())
            .filter_map(|i| g.child(i))
            .filter_map(|w| Scrollbar::from_dyn_widget(&w))
            .find(|b| b.get_type::<ScrollbarType>() == ScrollbarType::Vertical)
    });
    match bar {
        // Until the text is first laid out the bar keeps its default range
        // (from 0): a new display shows its end.
        Some(bar) if bar.minimum() >= 1.0 => bar.value() >= bar.maximum() - 0.5,
        _ => true,
    }
}
