//! The colour picker on the form: the original's ten colours as swatches,
//! one more for a colour of the user's own, and "Other..." for the system's
//! colour chooser.

use std::cell::RefCell;
use std::rc::Rc;

use fltk::app::Sender;
use fltk::button::Button;
use fltk::draw;
use fltk::enums::{Color, FrameType};
use fltk::group::Flex;
use fltk::prelude::*;

use super::Msg;
use crate::common::color::{self, ORIGINAL_PALETTE};
use crate::gui;

/// The side of a swatch, in pixels.
const SIDE: i32 = 24;

struct State {
    /// Wire names: the ten Tk names, then at most one `#rrggbb`.
    colors: Vec<String>,
    selected: usize,
}

pub struct ColorSwatches {
    pub row: Flex,
    /// One button per colour, in order; the last is hidden until the user
    /// picks a colour of their own.
    pub swatches: Vec<Button>,
    pub other: Button,
    state: Rc<RefCell<State>>,
}

impl ColorSwatches {
    /// Builds the row with `chosen` selected (a Tk name or `#rrggbb`; an
    /// unknown colour selects blue). `tx` is told when a colour is clicked
    /// and when "Other..." is.
    pub fn new(chosen: &str, tx: Sender<Msg>) -> Self {
        let mut colors: Vec<String> = ORIGINAL_PALETTE
            .iter()
            .map(|(name, _)| name.to_string())
            .collect();
        colors.push(String::new()); // the custom slot
        let state = Rc::new(RefCell::new(State {
            colors,
            selected: 6,
        }));
        let mut row = Flex::default().row();
        row.set_pad(4);
        let mut swatches = Vec::new();
        for i in 0..=ORIGINAL_PALETTE.len() {
            let mut b = Button::default();
            b.set_frame(FrameType::FlatBox);
            b.clear_visible_focus();
            let st = state.clone();
            b.draw(move |b| draw_swatch(b, &st.borrow(), i));
            let st = state.clone();
            b.set_callback(move |b| {
                st.borrow_mut().selected = i;
                if let Some(mut p) = b.parent() {
                    p.redraw();
                }
                tx.send(Msg::ColorChosen);
            });
            row.fixed(&b, SIDE);
            swatches.push(b);
        }
        let mut other = Button::default().with_label("Other...");
        other.set_tooltip("Any colour, from the colour chooser");
        other.emit(tx, Msg::ColorPicked);
        row.fixed(&other, 70);
        fltk::frame::Frame::default();
        row.end();
        let mut this = ColorSwatches {
            row,
            swatches,
            other,
            state,
        };
        this.select(chosen);
        this
    }

    /// The chosen colour, as sent on the wire.
    pub fn chosen(&self) -> String {
        let st = self.state.borrow();
        st.colors
            .get(st.selected)
            .filter(|c| !c.is_empty())
            .cloned()
            .unwrap_or_else(|| "blue".into())
    }

    /// The colours offered, in order (the custom one last, if any).
    pub fn offered(&self) -> Vec<String> {
        let st = self.state.borrow();
        st.colors
            .iter()
            .filter(|c| !c.is_empty())
            .cloned()
            .collect()
    }

    /// Selects a colour: a Tk name from the palette, or any `#rrggbb`,
    /// which takes the custom slot. Anything else selects blue.
    pub fn select(&mut self, chosen: &str) {
        {
            let mut st = self.state.borrow_mut();
            let custom = ORIGINAL_PALETTE.len();
            st.selected = match st.colors.iter().position(|c| c == chosen) {
                Some(i) if !chosen.is_empty() => i,
                _ if chosen.starts_with('#') && color::parse(chosen).is_some() => {
                    st.colors[custom] = chosen.to_string();
                    custom
                }
                _ => 6,
            };
            let has_custom = !st.colors[custom].is_empty();
            if let Some(b) = self.swatches.get_mut(custom) {
                b.set_tooltip(&st.colors[custom]);
                if has_custom {
                    b.show();
                } else {
                    b.hide();
                }
            }
        }
        for (b, name) in self
            .swatches
            .iter_mut()
            .zip(self.state.borrow().colors.iter())
        {
            if !name.is_empty() {
                b.set_tooltip(name);
            }
        }
        self.row.layout();
        self.row.redraw();
    }

    /// Enables or disables the whole row.
    pub fn set_active(&mut self, on: bool) {
        for b in self.swatches.iter_mut() {
            gui::set_active(b, on);
        }
        gui::set_active(&mut self.other, on);
        self.row.redraw();
    }
}

/// A square of the colour, ringed when selected, faded when disabled.
fn draw_swatch(b: &Button, st: &State, i: usize) {
    let Some(rgb) = st.colors.get(i).and_then(|c| color::parse(c)) else {
        return;
    };
    let (x, y, w, h) = (b.x(), b.y(), b.w(), b.h());
    let side = w.min(h);
    let top = y + (h - side) / 2;
    let fill = gui::color(rgb);
    let fill = if b.active_r() { fill } else { fill.inactive() };
    if st.selected == i {
        draw::draw_rect_fill(x, top, side, side, Color::from_rgb(0x20, 0x21, 0x24));
        draw::draw_rect_fill(x + 2, top + 2, side - 4, side - 4, Color::White);
        draw::draw_rect_fill(x + 4, top + 4, side - 8, side - 8, fill);
    } else {
        draw::draw_rect_fill(x + 3, top + 3, side - 6, side - 6, fill);
        draw::draw_rect_with_color(
            x + 3,
            top + 3,
            side - 6,
            side - 6,
            Color::from_rgb(0x9a, 0xa0, 0xa6),
        );
    }
}
