//! The colour picker on the form: the original's ten colours as swatches,
//! one more for a colour of the user's own, and "Other..." for the system's
//! colour chooser.

use std::cell::RefCell;
use std::rc::Rc;

use fltk::button::Button;
use fltk::draw;
use fltk::enums::{Color, FrameType};
use fltk::group::Flex;
use fltk::prelude::*;

use super::{Msg, Tx};
use crate::common::color::{self, ORIGINAL_PALETTE};
use crate::gui;

/// The side of a swatch, in pixels, where there is room; a narrow window
/// shrinks them down to `MIN_SIDE` rather than push "Other..." out.
const SIDE: i32 = 24;
const MIN_SIDE: i32 = 14;
/// The width of "Other..." and the gap between buttons.
const OTHER: i32 = 70;
const PAD: i32 = 4;

/// The swatch of the user's own colour comes after the palette's.
const CUSTOM: usize = ORIGINAL_PALETTE.len();
/// Selected when the remembered colour is not one HubChat knows: blue.
const DEFAULT: usize = 6;

struct State {
    /// The user's own colour as `#rrggbb`; empty until they pick one.
    custom: String,
    /// The selected swatch: a palette index, or `CUSTOM`.
    selected: usize,
}

impl State {
    /// The wire name of swatch `i`, if it has a colour.
    fn name(&self, i: usize) -> Option<&str> {
        match ORIGINAL_PALETTE.get(i) {
            Some((name, _)) => Some(name),
            None if i == CUSTOM && !self.custom.is_empty() => Some(&self.custom),
            None => None,
        }
    }
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
    pub fn new(chosen: &str, tx: Tx) -> Self {
        let state = Rc::new(RefCell::new(State {
            custom: String::new(),
            selected: DEFAULT,
        }));
        let mut row = Flex::default().row();
        row.set_pad(PAD);
        let mut swatches = Vec::new();
        for i in 0..=CUSTOM {
            let mut b = Button::default();
            if let Some((name, _)) = ORIGINAL_PALETTE.get(i) {
                b.set_tooltip(name);
            }
            b.set_frame(FrameType::FlatBox);
            let st = state.clone();
            b.draw(move |b| draw_swatch(b, &st.borrow(), i));
            let st = state.clone();
            let tx = tx.clone();
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
        other.set_callback(move |_| tx.send(Msg::ColorPicked));
        row.fixed(&other, OTHER);
        fltk::frame::Frame::default();
        row.end();
        {
            let swatches = swatches.clone();
            row.resize_callback(move |row, _, _, w, _| fit(row, &swatches, w));
        }
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
        st.name(st.selected).unwrap_or("blue").to_string()
    }

    /// The colours offered, in order (the user's own last, if any).
    pub fn offered(&self) -> Vec<String> {
        let st = self.state.borrow();
        (0..=CUSTOM)
            .filter_map(|i| st.name(i).map(str::to_string))
            .collect()
    }

    /// Selects a colour: a Tk name from the palette, or any `#rrggbb`,
    /// which takes the custom swatch. Anything else selects blue.
    pub fn select(&mut self, chosen: &str) {
        let mut st = self.state.borrow_mut();
        st.selected = match ORIGINAL_PALETTE
            .iter()
            .position(|(name, _)| *name == chosen)
        {
            Some(i) => i,
            None if chosen.starts_with('#') && color::parse(chosen).is_some() => {
                st.custom = chosen.to_string();
                CUSTOM
            }
            None => DEFAULT,
        };
        let b = &mut self.swatches[CUSTOM];
        if st.custom.is_empty() {
            b.hide();
        } else {
            b.set_tooltip(&st.custom);
            b.show();
        }
        drop(st);
        let w = self.row.w();
        fit(&mut self.row, &self.swatches, w);
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

/// Sizes the swatches so that they and "Other..." fit in a row `w` wide.
fn fit(row: &mut Flex, swatches: &[Button], w: i32) {
    let shown: Vec<&Button> = swatches.iter().filter(|b| b.visible()).collect();
    let n = shown.len() as i32;
    if n == 0 {
        return;
    }
    let room = w - OTHER - n * PAD;
    let side = (room / n).clamp(MIN_SIDE, SIDE);
    if shown.iter().any(|b| b.w() != side) {
        for b in shown {
            row.fixed(b, side);
        }
        row.layout();
    }
}

/// The ring around a swatch that has the keyboard focus.
const FOCUS: Color = Color::from_rgb(0x1a, 0x73, 0xe8);

/// A square of the colour, ringed when selected, faded when disabled.
fn draw_swatch(b: &Button, st: &State, i: usize) {
    let Some(rgb) = st.name(i).and_then(color::parse) else {
        return;
    };
    let (x, y, w, h) = (b.x(), b.y(), b.w(), b.h());
    let side = w.min(h);
    let top = y + (h - side) / 2;
    let fill = gui::color(rgb);
    let fill = if b.active_r() { fill } else { fill.inactive() };
    // The square covers the button's own focus box: mark the focus with a
    // bar in the button's spare rows under the square, so Tab shows where
    // it is.
    if b.has_focus() && fltk::app::visible_focus() {
        draw::draw_rect_fill(x, y + h - 2, side, 2, FOCUS);
    }
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
