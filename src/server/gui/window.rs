//! The server window's widgets, and how they show a [`ServerView`].
//!
//! Controls are created in reading order, which is also the Tab order:
//! address, port, Start, Sound, name, "Let clients find this server", max
//! per address, password, "Clear password", "Allow original clients", the
//! status line, the server key, Copy, "Names and bans...", Kick..., Ban...,
//! the clients, "Show message text", the log.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use fltk::app::Sender;
use fltk::button::{Button, CheckButton};
use fltk::enums::{Align, CallbackTrigger, Color, Event, Font, FrameType};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::{Input, SecretInput};
use fltk::menu::{Choice, MenuItem};
use fltk::output::Output;
use fltk::prelude::*;
use fltk::table::{TableContext, TableRow};
use fltk::text::{StyleTableEntry, TextBuffer, TextDisplay, WrapMode};
use fltk::widget::Widget;
use fltk::window::DoubleWindow;
use fltk::{app, draw};

use crate::gui::{self, avatars::Avatars, follow};
use crate::server::form::{self, AddressChoice, Field, ServerSettings};
use crate::server::view::{ClientRow, Ink, LogLine, OwnerAction, RunState, ServerView};

/// What the window's controls ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The Start / Stop button.
    StartStop,
    /// Enter in the port field: start, if stopped.
    Start,
    SoundToggled,
    /// "Let clients find this server" was ticked or unticked.
    DiscoveryToggled,
    /// "Show message text" was ticked or unticked.
    TextToggled,
    /// "Clear password": no password from the next start.
    ClearPassword,
    /// "Allow original (unencrypted) clients" was ticked or unticked.
    AllowOriginalToggled,
    /// Copy the server key to the clipboard.
    CopyKey,
    /// Open the list of names and bans.
    NamesAndBans,
    /// A click (or arrow key) on the clients table: `row` is the row under
    /// it, -1 for none; `menu_at` is where a right-click asks for the row's
    /// menu, in window coordinates.
    ClientClicked {
        row: i32,
        menu_at: Option<(i32, i32)>,
    },
    /// "Kick..." under the clients: kick the selected one.
    Kick,
    /// "Ban...": choose how to ban the selected client.
    Ban,
    /// In the names and bans window.
    ReleaseName,
    LiftBan,
    Quit,
}

const ROW_HEIGHT: i32 = 58;
const CLIENTS_WIDTH: i32 = 330;

/// The form row's fixed parts: the two labels, the port field, Start,
/// Sound, and the gaps between its seven cells.
const FORM_REST: i32 = 62 + 34 + 80 + 110 + 80 + 6 * FORM_PAD;
const FORM_PAD: i32 = 8;
/// The widest the address menu grows: room for an IPv6 address and its
/// interface name. Wider would only push the port away from the address on
/// a wide window; the space is left empty at the row's end instead.
pub const ADDRESS_MAX_WIDTH: i32 = 380;

/// How wide the address menu is in a form row `row_width` wide.
pub fn address_width(row_width: i32) -> i32 {
    (row_width - FORM_REST).clamp(0, ADDRESS_MAX_WIDTH)
}

pub struct ServerWindow {
    pub window: DoubleWindow,
    pub address: Choice,
    pub port: Input,
    pub start: Button,
    pub sound: CheckButton,
    /// The name clients find the server by.
    pub name: Input,
    /// "Let clients find this server".
    pub discovery: CheckButton,
    pub max_per_address: Input,
    /// The password to set at the next start; empty keeps the one set.
    pub password: SecretInput,
    /// What the empty password field says: "(password set)" or not.
    password_placeholder: Rc<Cell<&'static str>>,
    pub clear_password: Button,
    pub allow_original: CheckButton,
    /// The server's key, short form, for the owner to read out or copy.
    pub key: Output,
    pub copy_key: Button,
    pub names_and_bans: Button,
    pub kick: Button,
    pub ban: Button,
    pub show_text: CheckButton,
    pub address_error: Frame,
    pub port_error: Frame,
    pub name_error: Frame,
    pub max_error: Frame,
    pub status: Output,
    pub clients_title: Frame,
    pub clients: TableRow,
    rows: Rc<RefCell<Vec<ClientRow>>>,
    /// The row drawn as selected.
    selected_row: Rc<Cell<Option<usize>>>,
    pub log: TextDisplay,
    pub log_text: TextBuffer,
    log_styles: TextBuffer,
    inks: HashMap<Ink, char>,
    style_table: Vec<StyleTableEntry>,
    /// Whether the log showed its end when it was last drawn. New lines and
    /// resizes keep such a log at its end; one the user scrolled up in is
    /// left where it is.
    log_at_end: Rc<Cell<bool>>,
}

impl ServerWindow {
    pub fn new(
        choices: &[AddressChoice],
        selected: usize,
        settings: &ServerSettings,
        tx: Sender<Action>,
    ) -> Self {
        let mut window = DoubleWindow::default()
            .with_size(980, 640)
            .with_label("HubChat Server - stopped");
        window.set_color(gui::WINDOW);
        gui::icon::apply(&mut window);
        window.size_range(720, 460, 0, 0);

        let mut page = Flex::default_fill().column();
        page.set_margin(14);
        page.set_pad(6);
        let (form, address, port, start, sound) = form_row(choices, selected, settings, tx);
        page.fixed(&form, 32);
        let (errors, address_error, port_error) = errors_row();
        page.fixed(&errors, 30);
        let (second, name, discovery, max_per_address) = second_row(settings, tx);
        page.fixed(&second, 32);
        let (second_errors, name_error, max_error) = second_errors_row();
        page.fixed(&second_errors, 30);
        let (third, password, password_placeholder, clear_password, allow_original) =
            third_row(settings, tx);
        page.fixed(&third, 32);
        let status = status_line();
        page.fixed(&status, 28);
        let (key_row, key, copy_key, names_and_bans) = key_row(tx);
        page.fixed(&key_row, 30);

        // The two panels.
        let mut panels = Flex::default().row();
        panels.set_pad(12);
        let mut left = Flex::default().column();
        left.set_pad(4);
        let (clients_header, clients_title, kick, ban) = clients_header(tx);
        left.fixed(&clients_header, 26);
        let rows = Rc::new(RefCell::new(Vec::new()));
        let selected_row = Rc::new(Cell::new(None));
        let clients = clients_table(rows.clone(), selected_row.clone(), tx);
        left.end();
        panels.fixed(&left, CLIENTS_WIDTH);
        let mut right = Flex::default().column();
        right.set_pad(4);
        let (log_header, show_text) = log_header(settings.show_text, tx);
        right.fixed(&log_header, 26);
        let log_text = TextBuffer::default();
        let (log, log_at_end) = log_display(log_text.clone());
        right.end();
        panels.end();
        page.end();
        window.end();
        window.resizable(&page);
        fit_form(&form, &errors, &address, &address_error);
        window.resize_callback({
            let (form, errors, address, address_error) = (
                form.clone(),
                errors.clone(),
                address.clone(),
                address_error.clone(),
            );
            move |_, _, _, _, _| fit_form(&form, &errors, &address, &address_error)
        });

        window.set_callback(move |_| {
            // Escape also triggers the callback; only a real close quits.
            if app::event() == Event::Close {
                tx.send(Action::Quit);
            }
        });

        let mut win = ServerWindow {
            window,
            address,
            port,
            start,
            sound,
            name,
            discovery,
            max_per_address,
            password,
            password_placeholder,
            clear_password,
            allow_original,
            key,
            copy_key,
            names_and_bans,
            kick,
            ban,
            show_text,
            address_error,
            port_error,
            name_error,
            max_error,
            status,
            clients_title,
            clients,
            rows,
            selected_row,
            log,
            log_text,
            log_styles: TextBuffer::default(),
            inks: HashMap::new(),
            style_table: Vec::new(),
            log_at_end,
        };
        for ink in [Ink::Time, Ink::Plain, Ink::Notice, Ink::Error] {
            win.style_for(ink);
        }
        win.wrap_tab();
        win
    }

    /// Makes Tab go round the window's controls (see `gui::wrap_tab`).
    fn wrap_tab(&mut self) {
        let order: Vec<Widget> = vec![
            self.address.as_base_widget(),
            self.port.as_base_widget(),
            self.start.as_base_widget(),
            self.sound.as_base_widget(),
            self.name.as_base_widget(),
            self.discovery.as_base_widget(),
            self.max_per_address.as_base_widget(),
            self.password.as_base_widget(),
            self.clear_password.as_base_widget(),
            self.allow_original.as_base_widget(),
            self.status.as_base_widget(),
            self.key.as_base_widget(),
            self.copy_key.as_base_widget(),
            self.names_and_bans.as_base_widget(),
            self.kick.as_base_widget(),
            self.ban.as_base_widget(),
            self.clients.as_base_widget(),
            self.show_text.as_base_widget(),
            self.log.as_base_widget(),
        ];
        self.window
            .handle(move |_, event| gui::wrap_tab(event, &order));
    }

    /// Shows a problem next to the field it is about (or clears them all).
    pub fn show_error(&mut self, error: Option<(Field, &str)>) {
        for (field, frame) in [
            (Field::Address, &mut self.address_error),
            (Field::Port, &mut self.port_error),
            (Field::Name, &mut self.name_error),
            (Field::MaxPerAddress, &mut self.max_error),
        ] {
            let message = match error {
                Some((f, m)) if f == field => m,
                _ => "",
            };
            frame.set_label(message);
            frame.redraw();
        }
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
        // Locking the form must not drop the keyboard focus where no one
        // can see it (FLTK would hand it to the status line): the button
        // that was, or will be, pressed keeps it.
        let form_focused = self.address.has_focus()
            || self.port.has_focus()
            || self.name.has_focus()
            || self.discovery.has_focus()
            || self.max_per_address.has_focus()
            || self.password.has_focus()
            || self.clear_password.has_focus()
            || self.allow_original.has_focus();
        gui::set_active(&mut self.start, button_on);
        gui::set_active(&mut self.address, form_on);
        gui::set_active(&mut self.port, form_on);
        gui::set_active(&mut self.name, form_on);
        gui::set_active(&mut self.discovery, form_on);
        gui::set_active(&mut self.max_per_address, form_on);
        gui::set_active(&mut self.password, form_on);
        gui::set_active(&mut self.allow_original, form_on);
        self.key.set_value(&view.key_text());
        self.show_selection(view);
        if button_on && (form_focused || app::focus().is_none()) {
            let _ = self.start.take_focus();
        }
        self.window.redraw();
    }

    /// Shows whether a password is set, in the empty password field, and
    /// offers to clear it only when there is one (and the server is
    /// stopped: the password in force is the one it started with).
    pub fn show_password(&mut self, kept: Option<&str>, stopped: bool) {
        self.password_placeholder
            .set(form::password_placeholder(kept));
        gui::set_active(&mut self.clear_password, stopped && kept.is_some());
        self.password.redraw();
    }

    /// Draws the selected client's row as selected, and offers Kick and
    /// Ban only while one is.
    fn show_selection(&mut self, view: &ServerView) {
        let running = matches!(view.state, RunState::Running { .. });
        let index = view.selected_index().filter(|_| running);
        self.selected_row.set(index);
        gui::set_active(&mut self.kick, index.is_some());
        gui::set_active(&mut self.ban, index.is_some());
        self.clients.redraw();
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
        self.show_selection(view);
    }

    /// Appends lines to the log in one update, trims `cut` bytes from its
    /// front, and follows the end unless the user scrolled up.
    pub fn append_log(&mut self, lines: &[LogLine], cut: usize) {
        if lines.is_empty() {
            return;
        }
        let following = self.log_at_end.get();
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
            follow::scroll_to_end(&mut self.log);
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

/// The form: address, port, Start, Sound, and room to spare at its end
/// (see [`fit_form`]).
fn form_row(
    choices: &[AddressChoice],
    selected: usize,
    settings: &ServerSettings,
    tx: Sender<Action>,
) -> (Flex, Choice, Input, Button, CheckButton) {
    let mut form = Flex::default().row();
    form.set_pad(FORM_PAD);
    let address_label = gui::label("Address");
    form.fixed(&address_label, 62);
    let mut address = Choice::default();
    for choice in choices {
        address.add_choice(&gui::menu_label(&choice.label()));
    }
    address.set_value(selected as i32);
    address.set_tooltip(
        "The address clients connect to. All interfaces serves the LAN and this machine.",
    );
    let port_label = gui::label("Port");
    form.fixed(&port_label, 34);
    let mut port = Input::default();
    port.set_value(&settings.port.to_string());
    port.set_tooltip("The port clients connect to, from 1 to 65535. Enter starts the server.");
    // Enter starts the server, as Start does; typing alone does nothing.
    port.set_trigger(CallbackTrigger::EnterKeyAlways);
    port.emit(tx, Action::Start);
    form.fixed(&port, 80);
    let mut start = Button::default().with_label("Start");
    start.set_label_font(gui::BOLD);
    start.emit(tx, Action::StartStop);
    form.fixed(&start, 110);
    let mut sound = CheckButton::default().with_label("Sound");
    sound.set_checked(settings.sound);
    sound.set_tooltip("Play the system's alert sound when clients join or leave, and on errors.");
    sound.emit(tx, Action::SoundToggled);
    form.fixed(&sound, 80);
    Frame::default();
    form.end();
    (form, address, port, start, sound)
}

/// The name width in the second row; with its other cells it fits the
/// narrowest window.
const NAME_WIDTH: i32 = 190;
const DISCOVERY_WIDTH: i32 = 220;
const MAX_LABEL_WIDTH: i32 = 110;
const MAX_WIDTH: i32 = 60;

/// The form's second row: the name clients find the server by, whether
/// they may, and how many connections one address may have.
fn second_row(settings: &ServerSettings, tx: Sender<Action>) -> (Flex, Input, CheckButton, Input) {
    let mut row = Flex::default().row();
    row.set_pad(FORM_PAD);
    let label = gui::label("Name");
    row.fixed(&label, 62);
    let mut name = Input::default();
    name.set_value(&crate::server::form::initial_name(&settings.name));
    name.set_tooltip("The name clients see when they look for a server on the network.");
    name.set_trigger(CallbackTrigger::EnterKeyAlways);
    name.emit(tx, Action::Start);
    row.fixed(&name, NAME_WIDTH);
    let mut discovery = CheckButton::default().with_label("Let clients find this server");
    discovery.set_checked(settings.discovery);
    discovery.set_tooltip(
        "Answer clients that search the network, so nobody has to type this server's address.",
    );
    discovery.emit(tx, Action::DiscoveryToggled);
    row.fixed(&discovery, DISCOVERY_WIDTH);
    let label = gui::label("Max per address");
    row.fixed(&label, MAX_LABEL_WIDTH);
    let mut max = Input::default();
    max.set_value(&settings.max_per_address.to_string());
    max.set_tooltip(
        "How many connections one address may have open at once; 0 for no limit. \
         Enter starts the server.",
    );
    max.set_trigger(CallbackTrigger::EnterKeyAlways);
    max.emit(tx, Action::Start);
    row.fixed(&max, MAX_WIDTH);
    Frame::default();
    row.end();
    (row, name, discovery, max)
}

/// The form's third row: the password to join with and whether original
/// clients, which cannot encrypt, may join. The password field never shows
/// the password in force: empty, it says whether one is set.
fn third_row(
    settings: &ServerSettings,
    tx: Sender<Action>,
) -> (
    Flex,
    SecretInput,
    Rc<Cell<&'static str>>,
    Button,
    CheckButton,
) {
    let mut row = Flex::default().row();
    row.set_pad(FORM_PAD);
    let label = gui::label("Password");
    row.fixed(&label, 62);
    let mut password = SecretInput::default();
    password.set_tooltip(
        "The password clients must give to join; type a new one to change it. Kept only as a \
         salted hash. Enter starts the server.",
    );
    password.set_trigger(CallbackTrigger::EnterKeyAlways);
    password.emit(tx, Action::Start);
    let placeholder = Rc::new(Cell::new(form::password_placeholder(
        settings.password.as_deref(),
    )));
    password.draw({
        let placeholder = placeholder.clone();
        move |input| draw_placeholder(input, placeholder.get())
    });
    row.fixed(&password, NAME_WIDTH);
    let mut clear = Button::default().with_label("Clear password");
    clear.set_tooltip("Let clients join without a password from the next start.");
    clear.emit(tx, Action::ClearPassword);
    gui::set_active(&mut clear, settings.password.is_some());
    row.fixed(&clear, CLEAR_WIDTH);
    let mut allow = CheckButton::default().with_label("Allow original (unencrypted) clients");
    allow.set_checked(settings.allow_original);
    allow.set_tooltip(
        "Let the original client join. It cannot encrypt, so anyone on the network can read \
         what it sends, and it cannot give a password. Applies from the next start.",
    );
    allow.emit(tx, Action::AllowOriginalToggled);
    row.fixed(&allow, ALLOW_WIDTH);
    Frame::default();
    row.end();
    (row, password, placeholder, clear, allow)
}

const CLEAR_WIDTH: i32 = 130;
const ALLOW_WIDTH: i32 = 280;

/// Writes `text` greyed inside an empty, unfocused input, where typing
/// would go.
fn draw_placeholder(input: &mut SecretInput, text: &str) {
    if !input.value().is_empty() || input.has_focus() {
        return;
    }
    let frame = input.frame();
    let (x, y, w, h) = (
        input.x() + frame.dx() + 4,
        input.y(),
        input.w() - frame.dw() - 8,
        input.h(),
    );
    draw::push_clip(x, y, w, h);
    draw::set_font(Font::HelveticaItalic, gui::TEXT_SIZE);
    draw::set_draw_color(if input.active() {
        gui::MUTED
    } else {
        Color::from_rgb(0xa0, 0xa4, 0xa8)
    });
    draw::draw_text2(text, x, y, w, h, Align::Left | Align::Inside);
    draw::pop_clip();
}

/// The server key: what clients pin when they first connect, for people
/// to check by eye that they reached this server. Selectable, with a Copy button; and
/// the way to the names and bans the server keeps.
fn key_row(tx: Sender<Action>) -> (Flex, Output, Button, Button) {
    let mut row = Flex::default().row();
    row.set_pad(FORM_PAD);
    let label = gui::label("Server key");
    row.fixed(&label, 80);
    let mut key = Output::default();
    key.set_text_font(Font::Courier);
    key.set_text_size(gui::TEXT_SIZE + 1);
    key.set_tooltip(
        "This server's key, which HubChat clients pin when they first connect. Read it out \
         or send it, so people can check by eye that they reached this server.",
    );
    row.fixed(&key, KEY_WIDTH);
    let mut copy = Button::default().with_label("Copy");
    copy.set_tooltip("Copy the server key to the clipboard.");
    copy.emit(tx, Action::CopyKey);
    row.fixed(&copy, 70);
    Frame::default();
    let mut names = Button::default().with_label("Names and bans...");
    names.set_tooltip("The names that belong to computers, and the bans, with ways to undo them.");
    names.emit(tx, Action::NamesAndBans);
    row.fixed(&names, 150);
    row.end();
    (row, key, copy, names)
}

/// Wide enough for the key's five groups in Courier.
const KEY_WIDTH: i32 = 250;

/// The clients' heading, with what the owner can do to the selected one.
fn clients_header(tx: Sender<Action>) -> (Flex, Frame, Button, Button) {
    let mut header = Flex::default().row();
    header.set_pad(6);
    let title = gui::heading("Connected clients");
    let mut kick = Button::default().with_label("Kick...");
    kick.set_tooltip("Remove the selected client, with a reason it is shown.");
    kick.emit(tx, Action::Kick);
    header.fixed(&kick, 64);
    let mut ban = Button::default().with_label("Ban...");
    ban.set_tooltip("Keep the selected client's computer or address out until you lift the ban.");
    ban.emit(tx, Action::Ban);
    header.fixed(&ban, 64);
    header.end();
    gui::set_active(&mut kick, false);
    gui::set_active(&mut ban, false);
    (header, title, kick, ban)
}

/// The second row's mistakes: the name's under the name, the limit's under
/// "Max per address" and beyond, where there is room for a sentence.
fn second_errors_row() -> (Flex, Frame, Frame) {
    let mut errors = Flex::default().row();
    errors.set_pad(FORM_PAD);
    let spacer = Frame::default();
    errors.fixed(&spacer, 62);
    let name_error = gui::error_label();
    errors.fixed(&name_error, NAME_WIDTH + FORM_PAD + DISCOVERY_WIDTH);
    let max_error = gui::error_label();
    errors.end();
    (errors, name_error, max_error)
}

/// Where the form's mistakes are written, each under the field it is
/// about; [`fit_form`] keeps them aligned.
fn errors_row() -> (Flex, Frame, Frame) {
    let mut errors = Flex::default().row();
    errors.set_pad(FORM_PAD);
    let spacer = Frame::default();
    errors.fixed(&spacer, 62);
    let address_error = gui::error_label();
    let port_error = gui::error_label();
    errors.end();
    (errors, address_error, port_error)
}

/// Gives the address menu its width for the form's current size, and the
/// address error the same width so the port error starts under "Port".
/// Called after every resize of the window (FLTK has laid out the rows by
/// then; this lays them out again).
fn fit_form(form: &Flex, errors: &Flex, address: &Choice, address_error: &Frame) {
    let width = address_width(form.w() - 2 * form.margin());
    if address.w() != width || address_error.w() != width {
        form.clone().fixed(address, width);
        errors.clone().fixed(address_error, width);
        form.layout();
        errors.layout();
    }
}

/// The status line: what clients should type. An output so it can be
/// selected and copied; it draws no caret (a read-only line has nowhere to
/// type, and a caret before it looked like a stray mark). Tab still reaches
/// it and selects the whole line, which shows where the focus is.
fn status_line() -> Output {
    let mut status = Output::default();
    status.set_frame(FrameType::FlatBox);
    status.set_color(gui::WINDOW);
    status.set_cursor_color(gui::WINDOW);
    status.set_text_font(gui::BOLD);
    status.set_text_size(gui::TEXT_SIZE + 1);
    status.set_tooltip("Select and copy this to tell people where to connect.");
    status
}

/// The log's heading, with the switch that hides what people write.
fn log_header(show_text: bool, tx: Sender<Action>) -> (Flex, CheckButton) {
    let mut header = Flex::default().row();
    gui::heading("Log");
    let mut switch = CheckButton::default().with_label("Show message text");
    switch.set_checked(show_text);
    switch.set_tooltip(
        "Log what people write. Unticked, the log says only who wrote to whom and how many \
         characters, from then on.",
    );
    switch.emit(tx, Action::TextToggled);
    header.fixed(&switch, 160);
    header.end();
    (header, switch)
}

/// The log: styled text that follows its end while the user sees the end.
/// FLTK calls the draw callback after drawing, so it records what the user
/// now sees; the resize callback comes after FLTK's own resize, which can
/// leave a grown-and-shrunk log above its end: it scrolls back down if the
/// end was in view.
fn log_display(text: TextBuffer) -> (TextDisplay, Rc<Cell<bool>>) {
    let mut log = TextDisplay::default();
    log.set_buffer(text);
    log.set_frame(gui::PANEL_FRAME);
    log.set_color(gui::PANEL);
    log.set_scrollbar_size(14);
    log.wrap_mode(WrapMode::AtBounds, 0);
    let at_end = follow::follow_end(&mut log);
    (log, at_end)
}

/// The clients panel: a table that draws only the rows in view, so ten
/// thousand clients cost no more than ten. Each row: avatar, name in its
/// colour, address and time of joining.
/// A click selects the row under it (a click below the rows selects
/// none); a right-click also asks for the row's menu. The arrow keys move
/// the table's own cursor, which selects too.
fn clients_table(
    rows: Rc<RefCell<Vec<ClientRow>>>,
    selected: Rc<Cell<Option<usize>>>,
    tx: Sender<Action>,
) -> TableRow {
    let mut table = TableRow::default();
    table.end();
    gui::one_column_table(&mut table);
    table.set_row_height_all(ROW_HEIGHT);
    table.set_tooltip("Select a client to kick or ban it; right-click for its menu.");
    let mut avatars = Avatars::load();
    table.draw_cell(move |_, ctx, row, _col, x, y, w, h| {
        if ctx == TableContext::Cell {
            if let Some(r) = rows.borrow().get(row as usize) {
                let look = if selected.get() == Some(row as usize) {
                    RowLook::Selected
                } else if row % 2 == 1 {
                    RowLook::Odd
                } else {
                    RowLook::Even
                };
                draw_client_row(r, &mut avatars, x, y, w, h, look);
            }
        }
    });
    table.set_callback(move |t| {
        let row = match t.callback_context() {
            TableContext::Cell => t.callback_row(),
            TableContext::Table => -1,
            _ => return,
        };
        let menu_at = match app::event() {
            Event::Push if app::event_mouse_button() == app::MouseButton::Right => {
                Some((app::event_x(), app::event_y()))
            }
            Event::Push | Event::KeyDown => None,
            _ => return,
        };
        tx.send(Action::ClientClicked { row, menu_at });
    });
    table
}

/// Asks which of `actions` to do to `row`, in a menu popped up at `(x, y)`
/// (window coordinates); the ones that cannot be done to it are shown
/// greyed. Blocks until the owner chooses or dismisses it.
pub fn choose_action(
    row: &ClientRow,
    actions: &[OwnerAction],
    x: i32,
    y: i32,
) -> Option<OwnerAction> {
    let labels: Vec<&'static str> = actions.iter().map(|a| a.label()).collect();
    let menu = MenuItem::new(&labels);
    for (i, action) in actions.iter().enumerate() {
        if !action.possible(row) {
            if let Some(mut item) = menu.at(i as i32) {
                item.deactivate();
            }
        }
    }
    let chosen = menu.popup(x, y)?.label()?;
    actions.iter().copied().find(|a| a.label() == chosen)
}

/// How a client's row is shaded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowLook {
    Even,
    Odd,
    Selected,
}

fn draw_client_row(
    r: &ClientRow,
    avatars: &mut Avatars,
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    look: RowLook,
) {
    draw::push_clip(x, y, w, h);
    draw::set_draw_color(match look {
        RowLook::Even => gui::PANEL,
        RowLook::Odd => Color::from_rgb(0xf6, 0xf7, 0xf9),
        RowLook::Selected => Color::from_rgb(0xd2, 0xe3, 0xfc),
    });
    draw::draw_rectf(x, y, w, h);
    if look == RowLook::Selected {
        draw::set_draw_color(Color::from_rgb(0x1a, 0x73, 0xe8));
        draw::draw_rectf(x, y, 4, h);
    }
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
