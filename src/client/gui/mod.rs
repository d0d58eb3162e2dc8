//! The client window: what a double-click on `hubchat-client` opens.
//!
//! Connecting runs on a worker thread; the session's reader thread sends
//! its events through a channel and wakes the FLTK loop, which applies them
//! to the [`ClientModel`] and redraws. No timers: an idle client sleeps.

pub mod chat;
pub mod picker;
pub mod swatches;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{unbounded, Receiver};
use fltk::app::{self, Sender};
use fltk::button::Button;
use fltk::draw;
use fltk::enums::{Align, CallbackTrigger, Color, Event, Font};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::Input;
use fltk::prelude::*;
use fltk::table::{TableContext, TableRow};
use fltk::text::{TextBuffer, TextDisplay, WrapMode};
use fltk::window::DoubleWindow;

use crate::client::form::{self, ClientSettings, Field, SETTINGS_FILE};
use crate::client::model::{ClientModel, Contact};
use crate::client::session::{ConnectError, Session, SessionConfig, SessionEvent};
use crate::common::avatar;
use crate::common::color;
use crate::common::settings;
use crate::gui::{self, attention, avatars::Avatars, Sound};
use chat::{ChatWindow, Face};
use picker::{AvatarChoice, AvatarPicker};
use swatches::ColorSwatches;

/// What the controls ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    ConnectDisconnect,
    ColorPicked,
    ColorChosen,
    PickAvatar,
    Open(usize),
    Send(String),
    Quit,
}

/// How a conversation window is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// The user clicked its row: show, raise and focus it.
    Asked,
    /// A message arrived: show, restore and raise it, but leave the
    /// keyboard focus where the user is typing.
    Unasked,
    /// Only update it if it is open.
    IfOpen,
}

/// What the worker threads report.
enum Incoming {
    Joined(Result<Session, ConnectError>),
    Event(SessionEvent),
}

const ROW_HEIGHT: i32 = 58;
/// The background of a field with a mistake in it.
const FIELD_ERROR: Color = Color::from_rgb(0xfd, 0xe8, 0xe6);

/// A list row: the contact and its unread count.
type Rows = Rc<RefCell<Vec<(Contact, usize)>>>;

pub struct ClientApp {
    pub window: DoubleWindow,
    pub host: Input,
    pub port: Input,
    pub name: Input,
    /// The colour of the name: the original's ten as swatches, and one of
    /// the user's own.
    pub colors: ColorSwatches,
    /// Shows the current avatar; opens the picker.
    pub avatar: Button,
    /// The built-in avatar and the custom picture, if any, in use.
    pub avatar_choice: AvatarChoice,
    builtin: u32,
    avatars: Rc<RefCell<Avatars>>,
    pub connect: Button,
    pub error: Frame,
    pub status: TextBuffer,
    status_view: TextDisplay,
    pub list: TableRow,
    rows: Rows,
    pub model: Option<ClientModel>,
    session: Option<Session>,
    connecting: bool,
    /// Events that arrived before the join finished (the first roster).
    early: Vec<SessionEvent>,
    incoming: Receiver<Incoming>,
    incoming_tx: crossbeam_channel::Sender<Incoming>,
    pub chats: HashMap<String, ChatWindow>,
    actions: app::Receiver<Msg>,
    tx: Sender<Msg>,
    quitting: bool,
}

impl ClientApp {
    pub fn new() -> Self {
        let saved: ClientSettings = settings::load(SETTINGS_FILE);
        let (tx, actions) = app::channel::<Msg>();
        let mut window = DoubleWindow::default()
            .with_size(460, 676)
            .with_label("HubChat");
        window.set_color(gui::WINDOW);
        window.size_range(380, 480, 0, 0);
        let mut page = Flex::default_fill().column();
        page.set_margin(12);
        page.set_pad(6);

        let mut row1 = form_row("Server");
        let mut host = Input::default();
        host.set_value(&saved.host);
        host.set_tooltip("The server's address: what its window says clients connect to.");
        let l = gui::label("Port");
        row1.fixed(&l, 34);
        let mut port = Input::default();
        port.set_value(&saved.port.to_string());
        row1.fixed(&port, 70);
        row1.end();
        page.fixed(&row1, 30);

        let row2 = form_row("Name");
        let mut name = Input::default();
        name.set_value(&saved.name);
        name.set_text_font(gui::BOLD);
        row2.end();
        page.fixed(&row2, 30);

        let row_color = form_row("Colour");
        let colors = ColorSwatches::new(&saved.color, tx);
        row_color.end();
        page.fixed(&row_color, 28);

        let mut row3 = form_row("Avatar");
        let builtin = avatar::for_image_name(&saved.image_name).number;
        let avatar_choice = match saved.picture() {
            Some((png, picture)) => AvatarChoice::Custom {
                png,
                picture: Arc::new(picture),
            },
            None => AvatarChoice::Builtin(builtin),
        };
        let mut avatar = Button::default();
        avatar.set_tooltip("Your avatar: click to choose another, or a picture of your own");
        avatar.set_color(gui::PANEL);
        picker::show_on(&mut avatar, &avatar_choice);
        avatar.emit(tx, Msg::PickAvatar);
        row3.fixed(&avatar, 58);
        let mut hint = gui::label("Click to change");
        hint.set_label_color(gui::MUTED);
        let mut side = Flex::default().column();
        Frame::default();
        let mut connect = Button::default().with_label("Connect");
        connect.set_label_font(gui::BOLD);
        connect.emit(tx, Msg::ConnectDisconnect);
        side.fixed(&connect, 30);
        side.end();
        row3.fixed(&side, 110);
        row3.end();
        page.fixed(&row3, 58);

        let error = gui::error_label();
        page.fixed(&error, 34);

        let status = TextBuffer::default();
        let mut status_view = TextDisplay::default();
        status_view.set_buffer(status.clone());
        status_view.wrap_mode(WrapMode::AtBounds, 0);
        status_view.set_frame(gui::PANEL_FRAME);
        status_view.set_text_size(gui::TEXT_SIZE - 1);
        page.fixed(&status_view, 110);

        let heading = gui::heading("Connected clients (click one to chat)");
        page.fixed(&heading, 22);
        let rows: Rows = Rc::new(RefCell::new(Vec::new()));
        let avatars = Rc::new(RefCell::new(Avatars::load()));
        let list = client_list(rows.clone(), avatars.clone(), tx);
        page.end();
        window.end();
        window.resizable(&page);
        window.set_callback(move |_| {
            if app::event() == Event::Close {
                tx.send(Msg::Quit);
            }
        });
        let (incoming_tx, incoming) = unbounded();
        let mut app = ClientApp {
            window,
            host,
            port,
            name,
            colors,
            avatar,
            avatar_choice,
            builtin,
            avatars,
            connect,
            error,
            status,
            status_view,
            list,
            rows,
            model: None,
            session: None,
            connecting: false,
            early: Vec::new(),
            incoming,
            incoming_tx,
            chats: HashMap::new(),
            actions,
            tx,
            quitting: false,
        };
        app.show_name_color();
        app
    }

    /// Handles everything pending. Returns false once the window closed.
    pub fn pump(&mut self) -> bool {
        for chat in self.chats.values_mut() {
            chat.new_batch();
        }
        while let Some(msg) = self.actions.recv() {
            self.act(msg);
        }
        while let Ok(incoming) = self.incoming.try_recv() {
            match incoming {
                Incoming::Joined(result) => self.joined(result),
                Incoming::Event(e) => self.event(e),
            }
        }
        !self.quitting
    }

    pub fn act(&mut self, msg: Msg) {
        match msg {
            Msg::ConnectDisconnect if self.session.is_some() => {
                if let Some(s) = self.session.take() {
                    s.disconnect();
                }
            }
            Msg::ConnectDisconnect => self.start_connect(),
            Msg::ColorPicked => self.pick_other_color(),
            Msg::ColorChosen => self.show_name_color(),
            Msg::PickAvatar => {
                let current = self.builtin;
                if let Some(choice) = AvatarPicker::new(current).run(&self.window) {
                    self.set_avatar(choice);
                }
            }
            Msg::Open(row) => {
                let id = self.rows.borrow().get(row).map(|(c, _)| c.id.clone());
                if let Some(key) = id.and_then(|id| self.model.as_mut()?.open(&id)) {
                    self.show_chat(&key, Show::Asked);
                }
            }
            Msg::Send(key) => self.send(&key),
            Msg::Quit => {
                for chat in self.chats.values_mut() {
                    chat.window.hide();
                }
                self.window.hide();
                if let Some(s) = self.session.take() {
                    s.disconnect();
                }
                self.quitting = true;
            }
        }
    }

    fn start_connect(&mut self) {
        if self.connecting {
            return;
        }
        self.clear_complaint();
        let (host, port, name) =
            match form::check(&self.host.value(), &self.port.value(), &self.name.value()) {
                Ok(ok) => ok,
                Err((field, message)) => return self.complain(field, &message),
            };
        let png = match &self.avatar_choice {
            AvatarChoice::Custom { png, .. } => Some(png.clone()),
            AvatarChoice::Builtin(_) => None,
        };
        let mut settings = ClientSettings {
            host: host.clone(),
            port,
            name: name.clone(),
            color: self.colors.chosen(),
            image_name: avatar::builtin(self.builtin)
                .unwrap_or(&avatar::BUILTIN[0])
                .image_name(),
            picture: String::new(),
        };
        settings.set_picture(png.as_deref());
        let _ = settings::save(SETTINGS_FILE, &settings);
        let config = SessionConfig {
            host,
            port,
            name,
            color: settings.color,
            image_name: settings.image_name,
            picture: png,
            timeout: Duration::from_secs(8),
        };
        self.connecting = true;
        self.set_form(false);
        self.connect.set_label("Connecting...");
        self.connect.deactivate();
        self.log(&format!(
            "Connecting to {}, port {}...",
            config.host, config.port
        ));
        let tx = self.incoming_tx.clone();
        thread::spawn(move || {
            let events = tx.clone();
            let result = Session::connect(&config, move |e| {
                let _ = events.send(Incoming::Event(e));
                app::awake();
            });
            let _ = tx.send(Incoming::Joined(result));
            app::awake();
        });
    }

    /// Uses a new avatar: a built-in replaces any custom picture; a custom
    /// picture keeps the last built-in for original peers.
    pub fn set_avatar(&mut self, choice: AvatarChoice) {
        if let AvatarChoice::Builtin(n) = choice {
            self.builtin = n;
        }
        picker::show_on(&mut self.avatar, &choice);
        self.avatar_choice = choice;
    }

    /// "Other..." opens the system's colour chooser; the colour picked
    /// becomes the extra swatch, sent as `#rrggbb`, which original clients
    /// understand too.
    fn pick_other_color(&mut self) {
        let picked = fltk::dialog::color_chooser("Your colour", fltk::dialog::ColorMode::Byte);
        if let Some((r, g, b)) = picked {
            self.colors.select(&color::Rgb(r, g, b).to_string());
            self.show_name_color();
        }
    }

    /// Writes the name in the colour chosen, as others will see it.
    fn show_name_color(&mut self) {
        let shown = color::for_display(&self.colors.chosen());
        self.name.set_text_color(gui::color(shown));
        self.name.redraw();
    }

    fn joined(&mut self, result: Result<Session, ConnectError>) {
        self.connecting = false;
        self.connect.activate();
        match result {
            Ok(session) => {
                let kind = match session.kind {
                    crate::client::ServerKind::HubChat { .. } => "a HubChat server",
                    crate::client::ServerKind::Original => "an original messenger server",
                };
                self.log(&format!("Connected to {kind} as {}.", session.id));
                let hubchat = matches!(session.kind, crate::client::ServerKind::HubChat { .. });
                let me = session.id.clone();
                self.model = Some(ClientModel::new(&session.id));
                self.session = Some(session);
                self.connect.set_label("Disconnect");
                for e in std::mem::take(&mut self.early) {
                    self.event(e);
                }
                // The server does not send us our own picture back; only
                // HubChat peers see it, so only then is it shown as ours.
                if let (true, AvatarChoice::Custom { picture, .. }) = (hubchat, &self.avatar_choice)
                {
                    let picture = (**picture).clone();
                    self.event(SessionEvent::Picture { id: me, picture });
                }
            }
            Err(e) => {
                self.early.clear();
                self.set_form(true);
                self.connect.set_label("Connect");
                let field = match e {
                    ConnectError::Rejected { .. } => Field::Name,
                    ConnectError::Refused { .. } | ConnectError::TimedOut { .. } => Field::Port,
                    _ => Field::Host,
                };
                self.log(&format!("Could not connect: {e}"));
                self.complain(field, &e.to_string());
            }
        }
    }

    fn event(&mut self, e: SessionEvent) {
        let Some(model) = self.model.as_mut() else {
            self.early.push(e);
            return;
        };
        let first_roster = model.contacts.is_empty();
        match &e {
            // The first roster lists who was already here, not newcomers.
            SessionEvent::Listed(_) if first_roster => {}
            SessionEvent::Listed(entries) => {
                for (id, p) in entries {
                    if model.contact(id).is_none() && *id != model.me {
                        self.status.append(&stamped(&format!("{} joined.", p.name)));
                    }
                }
            }
            SessionEvent::Left { id } => {
                if let Some(c) = model.contact(id) {
                    self.status
                        .append(&stamped(&format!("{} left.", c.profile.name)));
                }
            }
            SessionEvent::Refused { message, .. } => self.status.append(&stamped(message)),
            _ => {}
        }
        let update = model.apply(e);
        if update.list {
            self.show_list();
        }
        for key in &update.conversations {
            self.show_chat(key, Show::IfOpen);
        }
        if let Some(key) = update.incoming {
            let looking = self.chats.get(&key).is_some_and(|c| c.has_focus());
            self.show_chat(&key, Show::Unasked);
            if !looking {
                if let Some(chat) = self.chats.get(&key) {
                    attention::request(&chat.window, true);
                }
            }
            gui::play(Sound::Notice, true);
        }
        if let Some(reason) = update.lost {
            self.log(&format!("Disconnected: {reason}"));
            self.session = None;
            self.model = None;
            self.set_form(true);
            self.connect.set_label("Connect");
            self.rows.borrow_mut().clear();
            self.list.set_rows(0);
            self.list.redraw();
        }
        self.status_view.scroll(self.status.length(), 0);
    }

    /// Updates (creating if needed) a conversation window, and shows it as
    /// `how` says.
    fn show_chat(&mut self, key: &str, how: Show) {
        let Some(model) = self.model.as_ref() else {
            return;
        };
        let Some(c) = model.conversations.get(key) else {
            return;
        };
        let me = model
            .contact(&model.me)
            .map_or_else(|| face_of_nobody("me"), face);
        let partner = c
            .partner_id
            .as_ref()
            .and_then(|id| model.contact(id))
            .map_or_else(|| face_of_nobody(&c.partner), face);
        let me_name = me.name.clone();
        let (avatars, tx) = (self.avatars.clone(), self.tx);
        let faces = (me, partner);
        let chat = self
            .chats
            .entry(key.to_string())
            .or_insert_with(|| ChatWindow::new(key, c, faces.clone(), avatars, tx));
        chat.set_faces(faces);
        chat.show_lines(c, &me_name);
        match how {
            Show::Asked => chat.window.show(),
            Show::Unasked => attention::show_unasked(&mut chat.window),
            Show::IfOpen => {}
        }
        let raised = how != Show::IfOpen;
        if chat.window.shown() && chat.window.visible() {
            if let Some(m) = self.model.as_mut() {
                if raised {
                    m.look_at(Some(key));
                }
            }
            self.show_list();
        }
    }

    fn send(&mut self, key: &str) {
        let (Some(model), Some(session)) = (self.model.as_mut(), self.session.as_ref()) else {
            return;
        };
        let Some(chat) = self.chats.get_mut(key) else {
            return;
        };
        let typed = chat.input.value();
        let text = typed.trim_end_matches(['\n', '\r']);
        if let Some(to) = model.say(key, text) {
            session.send(&to, text);
            chat.input.set_value("");
            chat.follow();
            if let Some(c) = model.conversations.get(key) {
                let me = model
                    .contact(&model.me)
                    .map(|m| m.profile.name.clone())
                    .unwrap_or_default();
                chat.show_lines(c, &me);
            }
        }
    }

    fn show_list(&mut self) {
        let Some(model) = self.model.as_ref() else {
            return;
        };
        *self.rows.borrow_mut() = model
            .contacts
            .iter()
            .map(|c| (c.clone(), model.unread(&c.id)))
            .collect();
        self.list.set_rows(model.contacts.len() as i32);
        self.list.set_row_height_all(ROW_HEIGHT);
        let (x, y, w, h) = (self.list.x(), self.list.y(), self.list.w(), self.list.h());
        self.list.resize(x, y, w, h);
        self.list.redraw();
    }

    /// Shows a mistake under the form and marks the field it is about: a
    /// tinted background and the keyboard focus, so it can be fixed at once.
    fn complain(&mut self, field: Field, message: &str) {
        self.error.set_label(message);
        self.error.redraw();
        let input = match field {
            Field::Host => &mut self.host,
            Field::Port => &mut self.port,
            Field::Name => &mut self.name,
        };
        input.set_color(FIELD_ERROR);
        let _ = input.take_focus();
        input.redraw();
        gui::play(Sound::Error, true);
    }

    /// Clears the mistake shown, if any.
    fn clear_complaint(&mut self) {
        self.error.set_label("");
        for input in [&mut self.host, &mut self.port, &mut self.name] {
            input.set_color(Color::BackGround2);
            input.redraw();
        }
    }

    fn log(&mut self, line: &str) {
        self.status.append(&stamped(line));
        self.status_view.scroll(self.status.length(), 0);
    }

    fn set_form(&mut self, on: bool) {
        for w in [
            &mut self.host as &mut dyn WidgetExt,
            &mut self.port,
            &mut self.name,
            &mut self.avatar,
        ] {
            if on {
                w.activate();
            } else {
                w.deactivate();
            }
        }
        self.colors.set_active(on);
    }
}

impl Default for ClientApp {
    fn default() -> Self {
        Self::new()
    }
}

/// A status line with the local time in front.
fn stamped(line: &str) -> String {
    format!("{}  {line}\n", chrono::Local::now().format("%H:%M:%S"))
}

/// Starts a row of the form with its label; the caller adds the fields,
/// ends the row and fixes its height.
fn form_row(label: &str) -> Flex {
    let mut row = Flex::default().row();
    row.set_pad(6);
    let l = gui::label(label);
    row.fixed(&l, 52);
    row
}

/// How a contact appears in a conversation's header.
fn face(c: &Contact) -> Face {
    Face {
        name: c.profile.name.clone(),
        color: c.color,
        image_name: c.profile.image_name.clone(),
        picture: c.picture.clone(),
    }
}

/// The header of a conversation whose partner is not connected.
fn face_of_nobody(name: &str) -> Face {
    Face {
        name: name.to_string(),
        color: color::FALLBACK,
        image_name: String::new(),
        picture: None,
    }
}

/// The list of clients: avatar, name in colour, "(you)" or unread count.
fn client_list(rows: Rows, avatars: Rc<RefCell<Avatars>>, tx: Sender<Msg>) -> TableRow {
    let mut table = TableRow::default();
    table.end();
    gui::one_column_table(&mut table);
    table.set_row_height_all(ROW_HEIGHT);
    table.set_trigger(CallbackTrigger::Release);
    {
        let rows = rows.clone();
        table.set_callback(move |t| {
            let row = t.callback_row();
            if t.callback_context() == TableContext::Cell && row >= 0 {
                let mine = rows
                    .borrow()
                    .get(row as usize)
                    .is_some_and(|(c, _)| c.is_me);
                if !mine {
                    tx.send(Msg::Open(row as usize));
                }
            }
        });
    }
    table.draw_cell(move |_, ctx, row, _, x, y, w, h| {
        if ctx != TableContext::Cell {
            return;
        }
        let rows = rows.borrow();
        let Some((c, unread)) = rows.get(row as usize) else {
            return;
        };
        draw::push_clip(x, y, w, h);
        draw::set_draw_color(if row % 2 == 1 {
            Color::from_rgb(0xf6, 0xf7, 0xf9)
        } else {
            gui::PANEL
        });
        draw::draw_rectf(x, y, w, h);
        avatars.borrow_mut().draw(
            c.picture.as_deref(),
            &c.profile.image_name,
            x + 6,
            y + (h - 48) / 2,
        );
        draw::set_font(gui::BOLD, gui::TEXT_SIZE + 1);
        draw::set_draw_color(gui::color(c.color));
        draw::draw_text2(
            &c.profile.name,
            x + 64,
            y,
            w - 140,
            h,
            Align::Left | Align::Inside,
        );
        draw::set_font(Font::Helvetica, gui::TEXT_SIZE - 1);
        let note = if c.is_me {
            draw::set_draw_color(gui::MUTED);
            "(you)".to_string()
        } else if *unread > 0 {
            draw::set_draw_color(gui::ERROR);
            format!("{unread} new")
        } else {
            String::new()
        };
        draw::draw_text2(&note, x + w - 76, y, 70, h, Align::Right | Align::Inside);
        draw::pop_clip();
    });
    table
}

/// Opens the client window and runs until it is closed.
pub fn run() -> i32 {
    let app = app::App::default();
    gui::init_look();
    let mut client = ClientApp::new();
    client.window.show();
    let tx = app::Sender::<Msg>::get();
    let _ = ctrlc::set_handler(move || tx.send(Msg::Quit));
    while app.wait() {
        if !client.pump() {
            break;
        }
    }
    0
}
