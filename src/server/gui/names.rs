//! The "Names and bans" window: the names that belong to computers, and the
//! bans the owner made, each with the way to undo it.
//!
//! It only draws lists it is given ([`NamesWindow::show_lists`]) and sends
//! [`Action::ReleaseName`] / [`Action::LiftBan`]; the server window does the
//! work and hands the new lists back, so what it shows is always what the
//! database holds after the action.

use fltk::app::Sender;
use fltk::browser::HoldBrowser;
use fltk::button::Button;
use fltk::enums::Color;
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::prelude::*;
use fltk::window::DoubleWindow;

use crate::gui;
use crate::server::gui::window::Action;
use crate::server::store::{Ban, Binding};
use crate::server::view::{ban_columns, binding_columns};

/// Column widths in pixels; the last column takes the rest.
const NAME_COLUMNS: [i32; 2] = [170, 260];
const BAN_COLUMNS: [i32; 2] = [300, 140];

pub struct NamesWindow {
    pub window: DoubleWindow,
    pub names: HoldBrowser,
    pub bans: HoldBrowser,
    pub release: Button,
    pub lift: Button,
    /// A failure to read or change the lists, as a sentence.
    pub problem: Frame,
    /// The lists as shown, in the browsers' order.
    bindings: Vec<Binding>,
    ban_list: Vec<Ban>,
}

impl NamesWindow {
    pub fn new(tx: Sender<Action>) -> Self {
        let mut window = DoubleWindow::default()
            .with_size(680, 480)
            .with_label("HubChat Server - names and bans");
        window.set_color(gui::WINDOW);
        gui::icon::apply(&mut window);
        window.size_range(480, 360, 0, 0);
        let mut page = Flex::default_fill().column();
        page.set_margin(14);
        page.set_pad(6);

        let title = gui::heading("Names that belong to a computer");
        page.fixed(&title, 22);
        let names = list(&NAME_COLUMNS, ["Name", "Computer", "Last used"]);
        let (row, release) = button_row(
            "Release name",
            "Let anyone take the selected name; its computer keeps it if it joins first.",
            tx,
            Action::ReleaseName,
        );
        page.fixed(&row, 30);

        let title = gui::heading("Bans");
        page.fixed(&title, 22);
        let bans = list(&BAN_COLUMNS, ["Who", "Since", "Reason"]);
        let (row, lift) = button_row(
            "Lift ban",
            "Let the selected computer or address join again.",
            tx,
            Action::LiftBan,
        );
        page.fixed(&row, 30);
        let problem = gui::error_label();
        page.fixed(&problem, 36);
        page.end();
        window.end();
        window.resizable(&page);
        NamesWindow {
            window,
            names,
            bans,
            release,
            lift,
            problem,
            bindings: Vec::new(),
            ban_list: Vec::new(),
        }
    }

    /// Shows these lists, keeping the selection on the same line where
    /// there still is one.
    pub fn show_lists(&mut self, bindings: Vec<Binding>, bans: Vec<Ban>) {
        fill(
            &mut self.names,
            bindings.iter().map(binding_columns),
            "No name belongs to a computer yet: names bind when encrypted clients join.",
        );
        fill(
            &mut self.bans,
            bans.iter().map(ban_columns),
            "Nobody is banned.",
        );
        self.bindings = bindings;
        self.ban_list = bans;
        self.problem.set_label("");
        self.show_buttons();
    }

    /// Shows what went wrong, under the lists.
    pub fn show_problem(&mut self, sentence: &str) {
        self.problem.set_label(sentence);
        self.window.redraw();
    }

    /// The selected name's binding.
    pub fn selected_binding(&self) -> Option<&Binding> {
        selected(&self.names).and_then(|i| self.bindings.get(i))
    }

    /// The selected ban.
    pub fn selected_ban(&self) -> Option<&Ban> {
        selected(&self.bans).and_then(|i| self.ban_list.get(i))
    }

    /// Offers each undo only while there is something to undo.
    pub fn show_buttons(&mut self) {
        let (names, bans) = (!self.bindings.is_empty(), !self.ban_list.is_empty());
        gui::set_active(&mut self.release, names);
        gui::set_active(&mut self.lift, bans);
        self.window.redraw();
    }

    /// Selects line `index` of a list (0 is the first entry), as a click
    /// would.
    pub fn select(browser: &mut HoldBrowser, index: usize) {
        browser.select(index as i32 + 2);
    }
}

/// A list with a bold header line and tab-separated columns.
fn list(widths: &[i32], header: [&str; 3]) -> HoldBrowser {
    let mut b = HoldBrowser::default();
    b.set_column_widths(widths);
    b.set_column_char('\t');
    b.set_color(gui::PANEL);
    b.set_frame(gui::PANEL_FRAME);
    b.set_text_size(gui::TEXT_SIZE);
    b.set_selection_color(Color::from_rgb(0xd2, 0xe3, 0xfc));
    b.add(&header.map(|h| format!("@b{h}")).join("\t"));
    b
}

/// The list's entries after its header line; `empty` when there are none.
fn fill(browser: &mut HoldBrowser, rows: impl Iterator<Item = [String; 3]>, empty: &str) {
    let keep = browser.value();
    while browser.size() > 1 {
        browser.remove(2);
    }
    let mut any = false;
    for columns in rows {
        // "@." ends format codes: a name starting with @ is shown as is.
        let line: Vec<String> = columns.iter().map(|c| format!("@.{c}")).collect();
        browser.add(&line.join("\t"));
        any = true;
    }
    if any {
        if (2..=browser.size()).contains(&keep) {
            browser.select(keep);
        }
    } else {
        // `@C` takes the colour as FLTK numbers it.
        browser.add(&format!("@i@C{}@.{empty}", gui::MUTED.bits()));
    }
}

/// The selected entry (0 for the first after the header), if any.
fn selected(browser: &HoldBrowser) -> Option<usize> {
    let line = browser.value();
    // Line 1 is the header; an "empty" note has no entry behind it.
    (line >= 2).then(|| line as usize - 2)
}

fn button_row(label: &str, tip: &str, tx: Sender<Action>, action: Action) -> (Flex, Button) {
    let mut row = Flex::default().row();
    let mut button = Button::default().with_label(label);
    button.set_tooltip(tip);
    button.emit(tx, action);
    row.fixed(&button, 130);
    Frame::default();
    row.end();
    (row, button)
}
