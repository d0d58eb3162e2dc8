//! The server window's widgets, and how they show a [`ServerView`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use fltk::app::Sender;
use fltk::button::{Button, CheckButton};
use fltk::enums::{Align, Color, Event, Font, FrameType};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::Input;
use fltk::menu::Choice;
use fltk::output::Output;
use fltk::prelude::*;
use fltk::table::{TableContext, TableRow};
use fltk::text::{StyleTableEntry, TextBuffer, TextDisplay, WrapMode};
use fltk::window::DoubleWindow;
use fltk::{app, draw};

use crate::gui::{self, avatars::Avatars};
use crate::server::form::{AddressChoice, Field};
use crate::server::view::{ClientRow, Ink, LogLine, RunState, ServerView};

/// What the window's controls ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    StartStop,
    SoundToggled,
    Quit,
}

const ROW_HEIGHT: i32 = 58;
const CLIENTS_WIDTH: i32 = 330;

pub struct ServerWindow {
    pub window: DoubleWindow,
    pub address: Choice,
    pub port: Input,
    pub start: Button,
    pub sound: CheckButton,
    pub address_error: Frame,
    pub port_error: Frame,
    pub status: Output,
    pub clients_title: Frame,
    pub clients: TableRow,
    rows: Rc<RefCell<Vec<ClientRow>>>,
    pub log: TextDisplay,
    pub log_text: TextBuffer,
    log_styles: TextBuffer,
    inks: HashMap<Ink, char>,
    style_table: Vec<StyleTableEntry>,
    /// The top line the log showed when it last followed the end; if the
    /// user has scrolled above it, new lines do not pull the view down.
    followed_top: i32,
}

impl ServerWindow {
    pub fn new(
        choices: &[AddressChoice],
        selected: usize,
        port: u16,
        sound: bool,
        tx: Sender<Action>,
    ) -> Self {
        let mut window = DoubleWindow::default()
            .with_size(980, 640)
            .with_label("HubChat Server - stopped");
        window.set_color(gui::WINDOW);
        window.size_range(720, 460, 0, 0);

        let mut page = Flex::default_fill().column();
        page.set_margin(14);
        page.set_pad(6);

        // The form: address, port, start, sound.
        let mut form = Flex::default().row();
        form.set_pad(8);
        let address_label = gui::label("Address");
        form.fixed(&address_label, 62);
        let mut address = Choice::default();
        for choice in choices {
            address.add_choice(&gui::menu_label(&choice.label()));
        }
        address.set_value(selected as i32);
        address.set_tooltip("The address clients connect to. The LAN address suits most offices.");
        let port_label = gui::label("Port");
        form.fixed(&port_label, 34);
        let mut port_input = Input::default();
        port_input.set_value(&port.to_string());
        port_input.set_tooltip("The port clients connect to, from 1 to 65535.");
        form.fixed(&port_input, 80);
        let mut start = Button::default().with_label("Start");
        start.set_label_font(gui::BOLD);
        start.emit(tx, Action::StartStop);
        form.fixed(&start, 110);
        let mut sound_box = CheckButton::default().with_label("Sound");
        sound_box.set_checked(sound);
        sound_box.set_tooltip(
            "Play the system's alert sound when clients join or leave, and on errors.",
        );
        sound_box.emit(tx, Action::SoundToggled);
        form.fixed(&sound_box, 80);
        form.end();
        page.fixed(&form, 32);

        // Errors, each under the field it is about.
        let mut errors = Flex::default().row();
        errors.set_pad(8);
        let spacer = Frame::default();
        errors.fixed(&spacer, 62);
        let address_error = gui::error_label();
        let port_error = gui::error_label();
        errors.fixed(&port_error, 34 + 80 + 110 + 80 + 3 * 8 + 60);
        errors.end();
        page.fixed(&errors, 30);

        let mut status = Output::default();
        status.set_frame(FrameType::FlatBox);
        status.set_color(gui::WINDOW);
        status.set_text_font(gui::BOLD);
        status.set_text_size(gui::TEXT_SIZE + 1);
        status.set_tooltip("Select and copy this to tell people where to connect.");
        page.fixed(&status, 28);

        // The two panels.
        let mut panels = Flex::default().row();
        panels.set_pad(12);
        let mut left = Flex::default().column();
        left.set_pad(4);
        let clients_title = gui::heading("Connected clients");
        left.fixed(&clients_title, 22);
        let rows = Rc::new(RefCell::new(Vec::new()));
        let clients = clients_table(rows.clone());
        left.end();
        panels.fixed(&left, CLIENTS_WIDTH);
        let mut right = Flex::default().column();
        right.set_pad(4);
        let log_title = gui::heading("Log");
        right.fixed(&log_title, 22);
        let log_text = TextBuffer::default();
        let log_styles = TextBuffer::default();
        let mut log = TextDisplay::default();
        log.set_buffer(log_text.clone());
        log.set_frame(gui::PANEL_FRAME);
        log.set_color(gui::PANEL);
        log.set_scrollbar_size(14);
        log.wrap_mode(WrapMode::AtBounds, 0);
        right.end();
        panels.end();
        page.end();
        window.end();
        window.resizable(&page);

        window.set_callback(move |_| {
            // Escape also triggers the callback; only a real close quits.
            if app::event() == Event::Close {
                tx.send(Action::Quit);
            }
        });

        let mut win = ServerWindow {
            window,
            address,
            port: port_input,
            start,
            sound: sound_box,
            address_error,
            port_error,
            status,
            clients_title,
            clients,
            rows,
            log,
            log_text,
            log_styles,
            inks: HashMap::new(),
            style_table: Vec::new(),
            followed_top: 0,
        };
        for ink in [Ink::Time, Ink::Plain, Ink::Notice, Ink::Error] {
            win.style_for(ink);
        }
        win
    }

    /// Shows a problem next to the field it is about (or clears both).
    pub fn show_error(&mut self, error: Option<(Field, &str)>) {
        let (address, port) = match error {
            Some((Field::Address, m)) => (m, ""),
            Some((Field::Port, m)) => ("", m),
            None => ("", ""),
        };
        self.address_error.set_label(address);
        self.port_error.set_label(port);
        self.address_error.redraw();
        self.port_error.redraw();
    }

    /// Brings the form, status and title in line with the server's state.
    pub fn show_state(&mut self, view: &ServerView) {
        self.window.set_label(&view.title());
        self.status.set_value(&view.status());
        let (label, button_on, form_on) = match view.state {
            RunState::Stopped => ("Start", true, true),
            RunState::Running { .. } => ("Stop", true, false),
            RunState::Stopping => ("Stopping...", false, false),
        };
        self.start.set_label(label);
        gui::set_active(&mut self.start, button_on);
        gui::set_active(&mut self.address, form_on);
        gui::set_active(&mut self.port, form_on);
        self.window.redraw();
    }

    /// Shows the current rows.
    pub fn show_rows(&mut self, view: &ServerView) {
        *self.rows.borrow_mut() = view.rows.clone();
        self.clients.set_rows(view.rows.len() as i32);
        // New rows take FLTK's default height unless told again, and the
        // table only rechecks whether it needs a scrollbar on a resize.
        self.clients.set_row_height_all(ROW_HEIGHT);
        let (x, y, w, h) = (
            self.clients.x(),
            self.clients.y(),
            self.clients.w(),
            self.clients.h(),
        );
        self.clients.resize(x, y, w, h);
        self.clients_title
            .set_label(&format!("Connected clients ({})", view.rows.len()));
        self.status.set_value(&view.status());
        self.clients.redraw();
    }

    /// Appends lines to the log in one update, trims `cut` bytes from its
    /// front, and follows the end unless the user scrolled up.
    pub fn append_log(&mut self, lines: &[LogLine], cut: usize) {
        if lines.is_empty() {
            return;
        }
        let following = self.log.scroll_row() >= self.followed_top;
        let mut text = String::new();
        let mut styles = String::new();
        for line in lines {
            for (ink, piece) in &line.0 {
                let style = self.style_for(*ink);
                text.push_str(piece);
                styles.extend(std::iter::repeat_n(style, piece.len()));
            }
            text.push('\n');
            styles.push('B');
        }
        self.log_text.append(&text);
        self.log_styles.append(&styles);
        if cut > 0 {
            self.log_text.remove(0, cut as i32);
            self.log_styles.remove(0, cut as i32);
        }
        if following {
            self.log.scroll(self.log_text.length(), 0);
            self.followed_top = self.log.scroll_row();
        }
    }

    /// The style character for an ink, adding it to the table the first
    /// time. FLTK's style characters run from 'A'; past the last one, new
    /// colours are drawn as plain text.
    fn style_for(&mut self, ink: Ink) -> char {
        if let Some(&c) = self.inks.get(&ink) {
            return c;
        }
        const LAST: u8 = b'z';
        let next = b'A' + self.style_table.len() as u8;
        if next > LAST {
            return 'B';
        }
        let (color, font) = match ink {
            Ink::Time => (gui::MUTED, Font::Courier),
            Ink::Plain => (Color::from_rgb(0x20, 0x21, 0x24), Font::Helvetica),
            Ink::Notice => (Color::from_rgb(0x3c, 0x40, 0x43), Font::HelveticaItalic),
            Ink::Error => (gui::ERROR, Font::HelveticaBold),
            Ink::Name(rgb) => (gui::color(rgb), Font::HelveticaBold),
        };
        self.style_table.push(StyleTableEntry {
            color,
            font,
            size: gui::TEXT_SIZE,
        });
        self.log
            .set_highlight_data(self.log_styles.clone(), self.style_table.clone());
        self.inks.insert(ink, next as char);
        next as char
    }
}

/// The clients panel: a table that draws only the rows in view, so ten
/// thousand clients cost no more than ten. Each row: avatar, name in its
/// colour, address and time of joining.
fn clients_table(rows: Rc<RefCell<Vec<ClientRow>>>) -> TableRow {
    let mut table = TableRow::default();
    table.end();
    gui::one_column_table(&mut table);
    table.set_row_height_all(ROW_HEIGHT);
    let mut avatars = Avatars::load();
    table.draw_cell(move |_, ctx, row, _col, x, y, w, h| {
        if ctx == TableContext::Cell {
            if let Some(r) = rows.borrow().get(row as usize) {
                draw_client_row(r, &mut avatars, x, y, w, h, row % 2 == 1);
            }
        }
    });
    table
}

fn draw_client_row(
    r: &ClientRow,
    avatars: &mut Avatars,
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    odd: bool,
) {
    draw::push_clip(x, y, w, h);
    draw::set_draw_color(if odd {
        Color::from_rgb(0xf6, 0xf7, 0xf9)
    } else {
        gui::PANEL
    });
    draw::draw_rectf(x, y, w, h);
    avatars.draw(r.picture.as_deref(), &r.image_name, x + 6, y + (h - 48) / 2);
    let text_x = x + 64;
    draw::set_font(gui::BOLD, gui::TEXT_SIZE + 1);
    draw::set_draw_color(gui::color(r.color));
    draw::draw_text2(
        &r.name,
        text_x,
        y + 8,
        w - 70,
        20,
        Align::Left | Align::Inside,
    );
    // The id after the name, quietly: it is what the log and the wire use.
    let name_w = draw::width(&r.name) as i32;
    draw::set_font(Font::Helvetica, gui::TEXT_SIZE - 2);
    draw::set_draw_color(gui::MUTED);
    draw::draw_text2(
        &r.id,
        text_x + name_w + 8,
        y + 9,
        w - 78 - name_w,
        20,
        Align::Left | Align::Inside,
    );
    let detail = format!("{}  ·  joined {}", r.addr, r.joined);
    draw::draw_text2(
        &detail,
        text_x,
        y + 30,
        w - 70,
        18,
        Align::Left | Align::Inside,
    );
    draw::pop_clip();
}
