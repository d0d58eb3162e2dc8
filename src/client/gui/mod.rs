//! The client window: what a double-click on `hubchat-client` opens.
//!
//! The window is a thin view over a [`Controller`], which owns the
//! session's life (connecting, losing, reconnecting) and the model. One
//! channel carries everything into the FLTK loop: what the user does and
//! what the network threads report, as one [`Msg`] enum. A sender wakes the
//! loop only when no wake-up is pending, and the loop drains everything
//! queued at once. No timers while idle: only the countdown to the next
//! reconnect try runs one (see `reconnect`), and an idle client sleeps.

pub mod ask;
pub mod chat;
pub mod file_strip;
pub mod history_view;
pub mod picker;
pub mod reconnect;
pub mod swatches;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{unbounded, Receiver};
use fltk::app;
use fltk::button::{Button, CheckButton};
use fltk::draw;
use fltk::enums::{Align, CallbackTrigger, Color, Event, Font, Key};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::Input;
use fltk::misc::InputChoice;
use fltk::prelude::*;
use fltk::table::{TableContext, TableRow};
use fltk::text::{TextBuffer, TextDisplay, WrapMode};
use fltk::window::DoubleWindow;

use crate::client::controller::{self, Change, Controller, Identity, Said, Status};
use crate::client::file_input::{self, Pasted};
use crate::client::file_rows::FileState;
use crate::client::files::TransferKey;
use crate::client::form::{self, ClientSettings, Field, FoundServers, SETTINGS_FILE};
use crate::client::model::{ClientModel, Contact, Face, Presence};
use crate::client::session::{ConnectError, Encryption, SessionConfig};
use crate::client::trust::{self, KnownServers};
use crate::common::avatar;
use crate::common::color;
use crate::common::discovery::{self, Found, Search};
use crate::common::packet::ErrorCode;
use crate::common::packet::Profile;
use crate::common::settings;
use crate::common::tls::Credentials;
use crate::gui::{self, attention, avatars::Avatars, Sound};
use ask::{Answer, Ask, Dialogs, Question};
use chat::ChatWindow;
use file_strip::FileAction;
use picker::{AvatarChoice, AvatarPicker};
use swatches::ColorSwatches;

/// Everything the loop handles: the user's actions and the network's news.
pub enum Msg {
    /// The Connect button: connect, cancel or disconnect, as it says.
    ConnectDisconnect,
    /// Enter in a form field: connect, if not connected already.
    Connect,
    ColorPicked,
    ColorChosen,
    PickAvatar,
    /// A click on list row `n`.
    Open(usize),
    /// Send what is typed in the conversation with this key.
    Send(String),
    /// A conversation window got (`true`) or lost the keyboard focus.
    Focus(String, bool),
    /// The user typed in the conversation with this key.
    Typed(String),
    /// Draw this conversation again ("is typing" ran out).
    Refresh(String),
    /// Search the history for these words (Enter in a search box; empty
    /// from Ctrl+F in a conversation: just open the search).
    FindInHistory(String),
    /// Open search result `n` in its conversation.
    OpenHit(usize),
    /// "Keep history" was ticked or cleared.
    KeepHistory,
    /// "Clear history" in the conversation with this key.
    ClearHistory(String),
    /// Close (hide) a conversation window: Escape, Ctrl+W, its close box.
    Close(String),
    /// "Send file..." in the conversation with this key.
    ChooseFile(String),
    /// Something was dropped on the conversation window with this key:
    /// the text the desktop handed over (file URIs, one per line).
    Dropped(String, String),
    /// A picture was pasted in the conversation with this key.
    PastedPicture(String, Pasted),
    /// A button on a file's row in the conversation with this key.
    File(String, TransferKey, FileAction),
    /// A worker thread reports.
    Net(controller::Input),
    /// The refresh button beside the Server field: search the network.
    Search,
    /// The search found a server.
    Found(Found),
    /// The search ended, or could not run.
    SearchDone(Result<(), String>),
    /// The Server field changed: an entry was picked, or a key typed.
    ServerPicked,
    /// The last attempt failed for a reason only the user can settle (a
    /// changed server key, a password): ask, and try again if told to.
    AskAboutFailure,
    // Reconnecting by itself (reconnect.rs).
    /// The countdown's timer: the next number to show, or the next try.
    Tick,
    /// The banner's "Reconnect now".
    ReconnectNow,
    /// "Connect when HubChat starts" ticked or cleared.
    ConnectAtStart,
    Quit,
}

/// The sending end of the window's one channel. Cheap to clone; any
/// thread may send.
#[derive(Clone)]
pub struct Tx {
    chan: crossbeam_channel::Sender<Msg>,
    /// A wake-up is pending: the loop has not drained since.
    waking: Arc<AtomicBool>,
}

impl Tx {
    pub fn send(&self, msg: Msg) {
        if self.chan.send(msg).is_ok() && !self.waking.swap(true, Ordering::AcqRel) {
            app::awake();
        }
    }
}

const ROW_HEIGHT: i32 = 58;
/// The background of a field with a mistake in it.
const FIELD_ERROR: Color = Color::from_rgb(0xfd, 0xe8, 0xe6);
/// The banner saying the connection was lost.
const BANNER: Color = Color::from_rgb(0xfc, 0xe8, 0xb2);
/// The status box's height: roomy in a tall window, small in a short one,
/// where the list needs the space.
const STATUS_MAX: i32 = 110;
const STATUS_MIN: i32 = 52;
/// The window's smallest height: the form (with the search's line), the
/// status box at its smallest, and about three rows of the list.
pub const MIN_HEIGHT: i32 = 558;

/// A list row: the contact and its unread count.
type Rows = Rc<RefCell<Vec<(Contact, usize)>>>;

pub struct ClientApp {
    pub window: DoubleWindow,
    /// The Server combo: servers found on the network, and a field to type
    /// an address in.
    pub servers: InputChoice,
    /// The combo's text field.
    pub host: Input,
    /// Searches the network again.
    pub refresh: Button,
    /// What the search found, in plain words.
    pub search_status: Frame,
    /// The servers found, as the combo offers them.
    pub found: FoundServers,
    /// Where searches broadcast; see [`discovery::broadcast_targets`].
    pub search_targets: Vec<std::net::Ipv4Addr>,
    /// The address remembered from last time, if any: then nothing is
    /// preselected.
    remembered_host: String,
    pub port: Input,
    pub name: Input,
    /// The colour of the name: the original's ten as swatches, and one of
    /// the user's own.
    pub colors: ColorSwatches,
    /// Shows the current avatar; opens the picker.
    pub avatar: Button,
    /// "Click to change", beside the avatar while it can be changed.
    pub avatar_hint: Frame,
    /// The built-in avatar and the custom picture, if any, in use.
    pub avatar_choice: AvatarChoice,
    builtin: u32,
    avatars: Rc<RefCell<Avatars>>,
    pub connect: Button,
    /// Whether the connection is encrypted and with which server key; when
    /// offline, this computer's own key.
    pub security: Frame,
    /// This installation's certificate (its identity to servers), or why
    /// it cannot be used.
    identity: Result<Credentials, String>,
    /// Answers the questions connecting raises: dialogs, or a test.
    pub ask: Box<dyn Ask>,
    pub error: Frame,
    /// Shown while the connection is lost: its sentence.
    pub banner: Frame,
    /// The rest of the banner: "Reconnect now" and the countdown's timer.
    banner_parts: reconnect::Banner,
    /// "Connect when HubChat starts".
    pub at_start: CheckButton,
    /// Its remembered value: unset until the first connection or the
    /// user's choice (see `ClientSettings::connect_at_start`).
    connect_at_start: Option<bool>,
    pub status: TextBuffer,
    status_view: TextDisplay,
    page: Flex,
    pub list: TableRow,
    rows: Rows,
    pub controller: Controller,
    pub chats: HashMap<String, ChatWindow>,
    incoming: Receiver<Msg>,
    tx: Tx,
    /// The list needs redrawing once this batch is applied: a burst of
    /// roster changes rebuilds it once, not once per change.
    list_stale: bool,
    quitting: bool,
    /// The search box and "Keep history" above the list.
    pub history_row: history_view::SearchRow,
    /// The search results window, once opened.
    pub finder: Option<history_view::SearchWindow>,
}

impl ClientApp {
    pub fn new() -> Self {
        let saved: ClientSettings = settings::load(SETTINGS_FILE);
        let (chan, incoming) = unbounded();
        let tx = Tx {
            chan,
            waking: Arc::new(AtomicBool::new(false)),
        };
        let mut window = DoubleWindow::default()
            .with_size(460, 700)
            .with_label("HubChat");
        window.set_color(gui::WINDOW);
        gui::icon::apply(&mut window);
        window.size_range(380, MIN_HEIGHT, 0, 0);
        let mut page = Flex::default_fill().column();
        page.set_margin(12);
        page.set_pad(6);

        let mut row1 = form_row("Server");
        let (servers, host) = server_combo(&saved.host, &tx);
        let mut refresh = Button::default().with_label("@-2reload");
        refresh.set_tooltip("Search the network for servers again");
        on_click(&mut refresh, &tx, || Msg::Search);
        row1.fixed(&refresh, 30);
        let l = gui::label("Port");
        row1.fixed(&l, 34);
        let mut port = Input::default();
        port.set_value(&saved.port.to_string());
        row1.fixed(&port, 70);
        row1.end();
        page.fixed(&row1, 30);
        let search_row = form_row("");
        let mut search_status = gui::label("");
        search_status.set_label_color(gui::MUTED);
        search_status.set_label_size(gui::TEXT_SIZE - 2);
        search_row.end();
        page.fixed(&search_row, 16);

        let row2 = form_row("Name");
        let mut name = Input::default();
        name.set_value(&saved.name);
        name.set_text_font(gui::BOLD);
        row2.end();
        page.fixed(&row2, 30);
        for input in [&mut port, &mut name] {
            enter_connects(input, tx.clone());
        }

        let row_color = form_row("Colour");
        let colors = ColorSwatches::new(&saved.color, tx.clone());
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
        on_click(&mut avatar, &tx, || Msg::PickAvatar);
        row3.fixed(&avatar, 58);
        // Beside the avatar: "Connect when HubChat starts" above, the
        // hint and the Connect button below.
        let mut beside = Flex::default().column();
        let at_start = reconnect::at_start_box(&saved, &tx);
        beside.fixed(&at_start, 22);
        let mut below = Flex::default().row();
        let mut avatar_hint = gui::label("Click to change");
        avatar_hint.set_label_color(gui::MUTED);
        let mut connect = Button::default().with_label("Connect");
        connect.set_label_font(gui::BOLD);
        on_click(&mut connect, &tx, || Msg::ConnectDisconnect);
        below.fixed(&connect, 110);
        below.end();
        beside.end();
        row3.end();
        page.fixed(&row3, 58);

        let mut security = gui::label("");
        security.set_label_size(gui::TEXT_SIZE - 1);
        page.fixed(&security, 18);

        let mut error = gui::error_label();
        page.fixed(&error, 34);
        error.hide();
        let (banner, banner_parts) = reconnect::banner(&tx);
        page.fixed(&banner_parts.row, 44);

        let heading = gui::heading("Status");
        page.fixed(&heading, 20);
        let status = TextBuffer::default();
        let mut status_view = TextDisplay::default();
        status_view.set_buffer(status.clone());
        status_view.wrap_mode(WrapMode::AtBounds, 0);
        status_view.set_frame(gui::PANEL_FRAME);
        status_view.set_text_size(gui::TEXT_SIZE - 1);
        gui::follow::follow_end(&mut status_view);
        page.fixed(&status_view, STATUS_MAX);

        let heading = gui::heading("People (click one to chat)");
        page.fixed(&heading, 22);
        let history_row = history_view::search_row(&saved, &tx);
        page.fixed(&history_row.row, 26);
        let rows: Rows = Rc::new(RefCell::new(Vec::new()));
        let avatars = Rc::new(RefCell::new(Avatars::load()));
        let list = client_list(rows.clone(), avatars.clone(), tx.clone());
        page.end();
        window.end();
        window.resizable(&page);
        {
            let tx = tx.clone();
            window.set_callback(move |_| {
                if app::event() == Event::Close {
                    tx.send(Msg::Quit);
                }
            });
        }
        {
            let order = [
                host.as_base_widget(),
                refresh.as_base_widget(),
                port.as_base_widget(),
                name.as_base_widget(),
                avatar.as_base_widget(),
                at_start.as_base_widget(),
                connect.as_base_widget(),
                status_view.as_base_widget(),
                history_row.input.as_base_widget(),
                history_row.keep.as_base_widget(),
                list.as_base_widget(),
            ];
            // Enter in the Server field connects; the combo's own field
            // leaves Enter to its window.
            let (host, tx) = (host.clone(), tx.clone());
            window.handle(move |_, ev| {
                let enter = ev == Event::KeyDown
                    && matches!(app::event_key(), Key::Enter | Key::KPEnter)
                    && host.has_focus();
                if enter {
                    tx.send(Msg::Connect);
                }
                enter || gui::wrap_tab(ev, &order)
            });
        }
        let notify_tx = tx.clone();
        let mut controller =
            Controller::new(Arc::new(move |input| notify_tx.send(Msg::Net(input))));
        controller.known = KnownServers::load();
        let (history, history_problem) = history_view::open_history(&saved);
        if let Some(history) = history {
            controller.set_history(history);
        }
        let mut app = ClientApp {
            window,
            servers,
            host,
            refresh,
            search_status,
            found: FoundServers::default(),
            search_targets: discovery::broadcast_targets(),
            remembered_host: saved.host.clone(),
            port,
            name,
            colors,
            avatar,
            avatar_hint,
            avatar_choice,
            builtin,
            avatars,
            connect,
            security,
            identity: trust::load_identity(),
            ask: Box::new(Dialogs),
            error,
            banner,
            banner_parts,
            at_start,
            connect_at_start: saved.connect_at_start,
            status,
            status_view,
            page,
            list,
            rows,
            controller,
            chats: HashMap::new(),
            incoming,
            tx,
            list_stale: false,
            quitting: false,
            history_row,
            finder: None,
        };
        app.fit_status_box();
        app.show_name_color();
        app.show_security();
        if let Some(problem) = history_problem {
            app.log(&problem);
        }
        app.restore_history(&saved.host, saved.port);
        // A key that cannot be used is said at once, in full, under the
        // form: the security line has room for one short line only.
        if let Err(why) = &app.identity {
            let why = why.clone();
            app.show_error(&why);
        }
        app
    }

    /// The model the window shows.
    pub fn model(&self) -> &ClientModel {
        &self.controller.model
    }

    /// The channel into this window, for anything that wants to talk to it.
    pub fn sender(&self) -> Tx {
        self.tx.clone()
    }

    /// Handles everything pending. Returns false once the window closed.
    pub fn pump(&mut self) -> bool {
        self.tx.waking.store(false, Ordering::Release);
        for chat in self.chats.values_mut() {
            chat.new_batch();
        }
        while let Ok(msg) = self.incoming.try_recv() {
            self.act(msg);
        }
        if self.list_stale {
            self.show_list();
        }
        self.fit_status_box();
        !self.quitting
    }

    pub fn act(&mut self, msg: Msg) {
        match msg {
            Msg::ConnectDisconnect => match self.controller.status() {
                Status::Connecting { .. } => {
                    let change = self.controller.cancel();
                    self.apply(change);
                }
                Status::Connected { .. } => {
                    let change = self.controller.disconnect();
                    self.apply(change);
                }
                // Reconnecting by itself: the button says Disconnect.
                Status::Lost { .. } if self.controller.reconnect().active() => {
                    let change = self.controller.disconnect();
                    self.apply(change);
                }
                Status::Offline | Status::Lost { .. } => self.start_connect(),
            },
            Msg::Connect => {
                if self.controller.status().idle() {
                    self.start_connect();
                }
            }
            Msg::ColorPicked => self.pick_other_color(),
            Msg::ColorChosen => self.show_name_color(),
            Msg::PickAvatar => {
                let current = self.builtin;
                if let Some(choice) = AvatarPicker::new(current).run(&self.window) {
                    self.set_avatar(choice);
                }
            }
            Msg::Open(row) => {
                let contact = self.rows.borrow().get(row).map(|(c, _)| c.clone());
                let model = &mut self.controller.model;
                let key = contact.and_then(|c| match c.presence {
                    Presence::Room => Some(model.open_room()),
                    Presence::Away => model.open_away(&c.profile.name),
                    Presence::Here => model.open(&c.id),
                });
                if let Some(key) = key {
                    self.show_chat(&key, Show::Asked);
                    self.controller.send_receipts();
                }
            }
            Msg::Typed(key) => self.controller.typing(&key),
            Msg::FindInHistory(typed) => self.search_history(&typed),
            Msg::OpenHit(n) => self.open_hit(n),
            Msg::KeepHistory => self.keep_history_toggled(),
            Msg::ClearHistory(key) => self.clear_history(&key),
            Msg::Refresh(key) => self.show_chat(&key, Show::IfOpen),
            Msg::Send(key) => self.send(&key),
            Msg::Focus(key, on) => self.focus(&key, on),
            Msg::Close(key) => {
                if let Some(chat) = self.chats.get_mut(&key) {
                    chat.window.hide();
                }
                self.controller.model.look_away(&key);
            }
            Msg::ChooseFile(key) => {
                for path in choose_files() {
                    self.send_file(&key, &path);
                }
            }
            Msg::Dropped(key, text) => {
                let paths = file_input::dropped_paths(&text);
                if paths.is_empty() {
                    self.controller.model.note(
                        &key,
                        "Only files can be dropped here (not folders or text).".into(),
                    );
                    self.show_chat(&key, Show::IfOpen);
                }
                for path in paths {
                    self.send_file(&key, &path);
                }
            }
            Msg::PastedPicture(key, pasted) => {
                match file_input::save_pasted(&file_input::pasted_dir(), &pasted) {
                    Ok(path) => self.send_file(&key, &path),
                    Err(e) => {
                        let note = format!("The pasted picture could not be sent: {e}.");
                        self.controller.model.note(&key, note);
                        self.show_chat(&key, Show::IfOpen);
                    }
                }
            }
            Msg::File(key, transfer, action) => self.file_action(&key, &transfer, action),
            Msg::Net(input) => {
                let change = self.controller.handle(input);
                self.apply(change);
            }
            Msg::Search => self.search(),
            Msg::Found(server) => {
                let label = gui::menu_label(&server.label());
                if self.found.add(server) {
                    self.servers.add(&label);
                    self.show_search();
                }
            }
            Msg::SearchDone(result) => {
                self.found.finish(result);
                let mine = format!("{}{}", self.remembered_host, self.host.value());
                if let Some((host, port)) = self.found.preselect(&mine) {
                    self.fill_server(&host, port);
                }
                self.show_search();
            }
            Msg::ServerPicked => {
                if let Some((host, port)) = self.found.pick(&self.host.value()) {
                    self.fill_server(&host, port);
                }
            }
            Msg::AskAboutFailure => self.ask_about_failure(),
            Msg::Tick => self.reconnect_tick(),
            Msg::ReconnectNow => self.reconnect_now(),
            Msg::ConnectAtStart => self.at_start_toggled(),
            Msg::Quit => {
                for chat in self.chats.values_mut() {
                    chat.window.hide();
                }
                self.window.hide();
                self.controller.disconnect();
                self.banner_parts.countdown.stop();
                self.quitting = true;
            }
        }
    }

    /// Searches the network for servers on a worker thread, on the port in
    /// the port field and the default one; what it finds arrives as
    /// [`Msg::Found`], live, and the end as [`Msg::SearchDone`]. A search
    /// already running is left to finish.
    pub fn search(&mut self) {
        if self.found.searching() {
            return;
        }
        self.found.start();
        self.servers.clear();
        self.show_search();
        let mut search = Search::on_ports(&form::search_ports(&self.port.value()));
        search.targets = self.search_targets.clone();
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("search".into())
            .spawn(move || {
                let result = discovery::search(&search, |server| tx.send(Msg::Found(server)));
                tx.send(Msg::SearchDone(result.map(drop).map_err(|e| e.to_string())));
            });
        if let Err(e) = spawned {
            self.found.finish(Err(e.to_string()));
            self.show_search();
        }
    }

    /// Puts a server's address and port in the form.
    fn fill_server(&mut self, host: &str, port: u16) {
        self.host.set_value(host);
        self.port.set_value(&port.to_string());
        self.host.redraw();
        self.port.redraw();
    }

    /// Shows how the search goes, and lets it be run again once it ended.
    fn show_search(&mut self) {
        self.search_status.set_label(&self.found.summary());
        self.search_status.redraw();
        let idle = self.controller.status().idle();
        gui::set_active(&mut self.refresh, idle && !self.found.searching());
    }

    /// Asks the user what only they can decide after a failed attempt,
    /// and acts on the answer.
    fn ask_about_failure(&mut self) {
        let Some(failure) = self.controller.failure().cloned() else {
            return;
        };
        if !self.controller.status().idle() {
            return;
        }
        let question = match &failure {
            ConnectError::KeyChanged { .. } | ConnectError::NotEncrypted { .. } => {
                Question::ServerChanged {
                    warning: failure.to_string(),
                    new_key: matches!(failure, ConnectError::KeyChanged { .. }),
                }
            }
            ConnectError::Rejected { message, .. } => Question::Password {
                server: controller::server_name(&self.host.value(), self.port_number()),
                message: message.clone(),
            },
            _ => return,
        };
        let change = match self.ask.ask(&self.window, &question) {
            Answer::Declined => return,
            Answer::Trusted => {
                self.log("You accepted the server's change.");
                self.controller.accept_server_change()
            }
            Answer::Password { password, remember } => {
                self.controller.retry_with_password(password, remember)
            }
        };
        self.clear_complaint();
        self.apply(change);
    }

    /// The port in the form, or the default if it does not read.
    fn port_number(&self) -> u16 {
        self.port
            .value()
            .trim()
            .parse()
            .unwrap_or(crate::server::DEFAULT_PORT)
    }

    /// Shows whether the connection is encrypted and with which server
    /// key; offline, this computer's own key.
    fn show_security(&mut self) {
        let (text, color) = match (self.controller.status(), &self.identity) {
            (
                Status::Connected {
                    encryption: Encryption::Encrypted { server },
                    ..
                },
                _,
            ) => (format!("Encrypted. Server key: {server}"), SECURE),
            (
                Status::Connected {
                    encryption: Encryption::NotEncrypted,
                    ..
                },
                _,
            ) => (
                "Not encrypted: anyone on the network can read what is sent.".to_string(),
                gui::ERROR,
            ),
            (_, Ok(me)) => (format!("Your key: {}", me.fingerprint()), gui::MUTED),
            (_, Err(_)) => (
                "Your key cannot be used: see below.".to_string(),
                gui::ERROR,
            ),
        };
        self.security.set_label(&text);
        self.security.set_label_color(color);
        self.security.redraw();
    }

    fn start_connect(&mut self) {
        self.clear_complaint();
        let me = match &self.identity {
            Ok(me) => me.clone(),
            // Without its certificate a HubChat client cannot encrypt, and
            // it never joins a HubChat server in plain text. No field is
            // at fault: the sentence alone.
            Err(why) => {
                self.show_error(&why.clone());
                gui::play(Sound::Error, true);
                return;
            }
        };
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
            connect_at_start: self.connect_at_start,
            no_history: !self.history_row.keep.is_checked(),
        };
        settings.set_picture(png.as_deref());
        let _ = settings::save(SETTINGS_FILE, &settings);
        let identity = Identity {
            profile: Profile {
                name: name.clone(),
                color: settings.color.clone(),
                image_name: settings.image_name.clone(),
                files: true,
            },
            picture: match &self.avatar_choice {
                AvatarChoice::Custom { picture, .. } => Some(picture.clone()),
                AvatarChoice::Builtin(_) => None,
            },
        };
        let config = SessionConfig {
            host,
            port,
            name,
            color: settings.color,
            image_name: settings.image_name,
            picture: png,
            timeout: controller::HANDSHAKE_TIMEOUT,
            identity: Some(me),
            pin: None,
            password: None,
        };
        let change = self.controller.connect(config, identity);
        self.apply(change);
    }

    /// Draws what a controller call changed.
    fn apply(&mut self, change: Change) {
        for line in &change.log {
            self.log(line);
        }
        if change.status {
            self.show_status();
        }
        if change.known {
            if let Err(e) = self.controller.known.save() {
                self.log(&format!(
                    "Could not save the servers' keys in the settings folder: {e}."
                ));
            }
        }
        if let Some(e) = &change.failed {
            if asks_the_user(e) {
                self.tx.send(Msg::AskAboutFailure);
            }
            let field = match e {
                ConnectError::Rejected {
                    code: Some(ErrorCode::PasswordRequired | ErrorCode::PasswordWrong),
                    ..
                } => Field::Host,
                ConnectError::Rejected { .. } => Field::Name,
                // Something listens but is not a chat server, or nothing
                // listens on that port: the port is the likelier mistake.
                ConnectError::Refused { .. } | ConnectError::NoAnswer { .. } => Field::Port,
                // Nothing answered at all, or the name is unknown.
                _ => Field::Host,
            };
            self.complain(field, &e.to_string());
        }
        let update = change.update;
        for key in &update.conversations {
            self.show_chat(key, Show::IfOpen);
        }
        if let Some(key) = update.incoming {
            self.show_chat(&key, Show::Unasked);
            let looking = self.chats.get(&key).is_some_and(ChatWindow::has_focus);
            if !looking {
                if let Some(chat) = self.chats.get(&key) {
                    attention::request(&chat.window, true);
                }
            }
            gui::play(Sound::Notice, true);
        }
        if update.list || !update.conversations.is_empty() {
            self.list_stale = true;
        }
    }

    /// Follows the controller's status: the button, the form, the banner,
    /// the title.
    fn show_status(&mut self) {
        let status = self.controller.status().clone();
        let reconnecting = self.controller.reconnect().active();
        let (label, form_on) = match &status {
            _ if reconnecting => ("Disconnect", false),
            Status::Offline | Status::Lost { .. } => ("Connect", true),
            Status::Connecting { .. } => ("Cancel", false),
            Status::Connected { .. } => ("Disconnect", false),
        };
        self.connect.set_label(label);
        self.connect.set_tooltip(match &status {
            _ if reconnecting => "Stop reconnecting",
            Status::Connecting { .. } => "Stop trying to connect",
            Status::Connected { .. } => "Leave the server",
            _ => "Join the server",
        });
        self.set_form(form_on);
        self.show_security();
        self.show_reconnect();
        self.remember_first_join();
        self.page.layout();
        self.show_title();
        self.window.redraw();
    }

    /// "(3) HubChat" with three messages unread; the title also says when
    /// the connection is lost, so it shows in the taskbar.
    fn show_title(&mut self) {
        let unread = self.controller.model.unread_total();
        let mut title = String::new();
        if unread > 0 {
            title.push_str(&format!("({unread}) "));
        }
        title.push_str("HubChat");
        let lost = matches!(self.controller.status(), Status::Lost { .. });
        if lost || self.controller.reconnect().active() {
            title.push_str(" - connection lost");
        }
        if self.window.label() != title {
            self.window.set_label(&title);
        }
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

    /// "Other..." opens the system's colour chooser at the current colour;
    /// the colour picked becomes the extra swatch, sent as `#rrggbb`, which
    /// original clients understand too.
    fn pick_other_color(&mut self) {
        let color::Rgb(r, g, b) = color::for_display(&self.colors.chosen());
        // The chooser gives back the colour it opened with when cancelled.
        let picked = fltk::dialog::color_chooser_with_default(
            "Your colour",
            fltk::dialog::ColorMode::Byte,
            (r, g, b),
        );
        if picked != (r, g, b) {
            let (r, g, b) = picked;
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

    /// A conversation window got or lost the keyboard focus: the user
    /// looks at it, so its messages are read.
    fn focus(&mut self, key: &str, on: bool) {
        let model = &mut self.controller.model;
        if on {
            if model.look_at(Some(key)) {
                self.show_list();
            }
            self.controller.send_receipts();
        } else {
            model.look_away(key);
        }
    }

    /// Updates (creating if needed) a conversation window, and shows it as
    /// `how` says.
    fn show_chat(&mut self, key: &str, how: Show) {
        let model = &self.controller.model;
        let Some(c) = model.conversations.get(key) else {
            return;
        };
        let me = model.own.clone().unwrap_or_else(|| Face {
            name: self.name.value().trim().to_string(),
            color: color::for_display(&self.colors.chosen()),
            image_name: String::new(),
            picture: None,
        });
        let faces = (me, c.face.clone());
        let (avatars, tx) = (self.avatars.clone(), self.tx.clone());
        let chat = self
            .chats
            .entry(key.to_string())
            .or_insert_with(|| ChatWindow::new(key, c, faces.clone(), avatars, tx));
        chat.set_faces(faces);
        chat.show_lines(c);
        chat.allow_files(
            &self.controller.can_send_file(key),
            self.controller.max_file(),
        );
        // "is typing" needs one wake-up when it runs out, and only then.
        if let Some(left) = c
            .typing_until
            .and_then(|t| t.checked_duration_since(std::time::Instant::now()))
        {
            let (tx, key) = (self.tx.clone(), key.to_string());
            app::add_timeout3(left.as_secs_f64() + 0.05, move |_| {
                tx.send(Msg::Refresh(key.clone()))
            });
        }
        match how {
            Show::Asked => {
                chat.window.show();
                chat.focus_input();
                if self.controller.model.mark_read(key) {
                    self.show_list();
                }
                self.controller.send_receipts();
            }
            Show::Unasked => attention::show_unasked(&mut chat.window),
            Show::IfOpen => {}
        }
    }

    /// Offers one file in conversation `key`; what goes wrong shows in
    /// the conversation.
    pub fn send_file(&mut self, key: &str, path: &std::path::Path) {
        let sent = self.controller.send_file(key, path);
        if sent.is_err() {
            gui::play(Sound::Error, true);
        }
        if let Some(chat) = self.chats.get_mut(key) {
            chat.follow();
        }
        self.show_chat(key, Show::IfOpen);
    }

    /// A button on a file's row.
    fn file_action(&mut self, key: &str, transfer: &TransferKey, action: FileAction) {
        match action {
            FileAction::Accept => self.controller.accept_file(key, transfer),
            FileAction::Decline => self.controller.decline_file(key, transfer),
            FileAction::Cancel => self.controller.cancel_file(transfer),
            FileAction::Dismiss => {
                self.controller.model.dismiss_file(key, transfer);
            }
            FileAction::Open | FileAction::ShowInFolder => {
                let path = self
                    .controller
                    .model
                    .conversations
                    .get(key)
                    .and_then(|c| c.files.iter().find(|r| &r.key == transfer))
                    .and_then(|r| match &r.state {
                        FileState::Saved { path } => path.clone(),
                        _ => None,
                    });
                if let Some(path) = path {
                    let done = if action == FileAction::Open {
                        crate::common::desktop::open(&path)
                    } else {
                        crate::common::desktop::show_in_folder(&path)
                    };
                    if let Err(e) = done {
                        let note = format!("{} could not be opened: {e}.", path.display());
                        self.controller.model.note(key, note);
                    }
                }
            }
        }
        self.show_chat(key, Show::IfOpen);
    }

    fn send(&mut self, key: &str) {
        let Some(chat) = self.chats.get_mut(key) else {
            return;
        };
        let typed = chat.input.value();
        let text = typed.trim_end_matches(['\n', '\r']);
        let said = self.controller.say(key, text);
        if said == Said::Nothing {
            return;
        }
        // A message too long to send stays in the input, to be shortened;
        // the transcript says why.
        if said == Said::Sent {
            chat.input.set_value("");
        }
        chat.follow();
        if let Some(c) = self.controller.model.conversations.get(key) {
            chat.show_lines(c);
        }
    }

    fn show_list(&mut self) {
        self.list_stale = false;
        let rows = self.controller.model.rows();
        let count = rows.len() as i32;
        *self.rows.borrow_mut() = rows;
        self.list.set_rows(count);
        self.list.set_row_height_all(ROW_HEIGHT);
        let (x, y, w, h) = (self.list.x(), self.list.y(), self.list.w(), self.list.h());
        self.list.resize(x, y, w, h);
        self.list.redraw();
        self.show_title();
    }

    /// Gives the list the room in a short window: the status box shrinks
    /// first, down to three lines.
    fn fit_status_box(&mut self) {
        let spare = self.window.h() - MIN_HEIGHT;
        let want = (STATUS_MIN + spare / 2).clamp(STATUS_MIN, STATUS_MAX);
        if self.status_view.h() != want {
            self.page.fixed(&self.status_view, want);
            self.page.layout();
        }
    }

    /// Shows a mistake under the form and marks the field it is about: a
    /// tinted background and the keyboard focus, so it can be fixed at once.
    fn complain(&mut self, field: Field, message: &str) {
        self.show_error(message);
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

    /// Shows `message` in red under the form, as tall as the sentence
    /// needs at this width, so a long one never runs into what follows.
    fn show_error(&mut self, message: &str) {
        self.error.set_label(message);
        self.error.show();
        draw::set_font(self.error.label_font(), self.error.label_size());
        let (_, h) = draw::wrap_measure(message, self.page.w() - 24, false);
        self.page.fixed(&self.error, h.max(20) + 4);
        self.page.layout();
        self.window.redraw();
    }

    /// Clears the mistake shown, if any.
    fn clear_complaint(&mut self) {
        self.error.set_label("");
        self.error.hide();
        self.page.layout();
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
        gui::set_active(&mut self.refresh, on && !self.found.searching());
        for w in [
            &mut self.servers as &mut dyn WidgetExt,
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
        // Emptied, not hidden: the row keeps its layout.
        self.avatar_hint
            .set_label(if on { "Click to change" } else { "" });
        self.colors.set_active(on);
    }
}

impl Default for ClientApp {
    fn default() -> Self {
        Self::new()
    }
}

/// How a conversation window is brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Show {
    /// The user clicked its row: show, raise and focus it, with the
    /// keyboard in its input.
    Asked,
    /// A message arrived: show, restore and raise it, but leave the
    /// keyboard focus where the user is typing.
    Unasked,
    /// Only update it if it is open.
    IfOpen,
}

/// A status line with the local time in front.
/// The encrypted mark's colour: a calm green.
const SECURE: Color = Color::from_rgb(0x1e, 0x7b, 0x34);

/// Whether a failed attempt needs the user's decision before another try.
fn asks_the_user(e: &ConnectError) -> bool {
    matches!(
        e,
        ConnectError::KeyChanged { .. }
            | ConnectError::NotEncrypted { .. }
            | ConnectError::Rejected {
                code: Some(ErrorCode::PasswordRequired | ErrorCode::PasswordWrong),
                ..
            }
    )
}

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

/// The Server combo: a field to type an address in, and a menu of the
/// servers found. Picking an entry, like typing, reports
/// [`Msg::ServerPicked`]; the window tells the two apart by the text.
fn server_combo(remembered: &str, tx: &Tx) -> (InputChoice, Input) {
    let mut combo = InputChoice::default();
    combo.set_value(remembered);
    combo.set_tooltip(
        "The server's address: pick a server found on the network, or type what its window \
         says clients connect to.",
    );
    let host = combo.input();
    let tx = tx.clone();
    combo.set_callback(move |_| tx.send(Msg::ServerPicked));
    (combo, host)
}

/// A button that sends `msg()` when pressed (by mouse, or Space/Enter
/// while it has the keyboard focus).
fn on_click(button: &mut Button, tx: &Tx, msg: impl Fn() -> Msg + 'static) {
    let tx = tx.clone();
    button.set_callback(move |_| tx.send(msg()));
}

/// Enter in a form field connects, as the Connect button does.
fn enter_connects(input: &mut Input, tx: Tx) {
    input.handle(move |_, ev| {
        let enter = matches!(app::event_key(), Key::Enter | Key::KPEnter);
        if ev == Event::KeyDown && enter {
            tx.send(Msg::Connect);
            true
        } else {
            false
        }
    });
}

/// The list of clients: avatar, name in colour, "(you)" or unread count.
/// Enter opens the selected row's conversation, as a click does.
fn client_list(rows: Rows, avatars: Rc<RefCell<Avatars>>, tx: Tx) -> TableRow {
    let mut table = TableRow::default();
    table.end();
    gui::one_column_table(&mut table);
    table.set_row_height_all(ROW_HEIGHT);
    table.set_trigger(CallbackTrigger::Release);
    table.set_type(fltk::table::TableRowSelectMode::Single);
    {
        let rows = rows.clone();
        let tx = tx.clone();
        table.set_callback(move |t| {
            let row = t.callback_row();
            if t.callback_context() == TableContext::Cell && row >= 0 {
                open_row(&rows, &tx, row);
            }
        });
    }
    {
        let rows = rows.clone();
        table.handle(move |t, ev| {
            gui::redraw_on_focus(t, ev);
            let enter = matches!(app::event_key(), Key::Enter | Key::KPEnter);
            if ev != Event::KeyDown || !enter {
                return false;
            }
            let selected = (0..t.rows()).find(|&r| t.row_selected(r));
            if let Some(row) = selected {
                open_row(&rows, &tx, row);
            }
            true
        });
    }
    table.draw_cell(move |t, ctx, row, _, x, y, w, h| {
        if ctx != TableContext::Cell {
            return;
        }
        let rows = rows.borrow();
        let Some((c, unread)) = rows.get(row as usize) else {
            return;
        };
        draw::push_clip(x, y, w, h);
        draw::set_draw_color(if t.row_selected(row) {
            Color::from_rgb(0xe3, 0xec, 0xfa)
        } else if row % 2 == 1 {
            Color::from_rgb(0xf6, 0xf7, 0xf9)
        } else {
            gui::PANEL
        });
        draw::draw_rectf(x, y, w, h);
        let top = y + (h - 48) / 2;
        match c.presence {
            Presence::Here => {
                avatars
                    .borrow_mut()
                    .draw(c.picture.as_deref(), &c.profile.image_name, x + 6, top)
            }
            Presence::Away => avatars
                .borrow_mut()
                .draw_faded(&c.profile.image_name, x + 6, top),
            Presence::Room => draw_room_icon(x + 6, top),
        }
        draw::set_font(gui::BOLD, gui::TEXT_SIZE + 1);
        draw::set_draw_color(match c.presence {
            Presence::Here => gui::color(c.color),
            Presence::Away => Color::from_rgb(0x9a, 0xa0, 0xa6),
            Presence::Room => Color::from_rgb(0x20, 0x21, 0x24),
        });
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
        } else if c.presence == Presence::Away {
            draw::set_draw_color(gui::MUTED);
            "away".to_string()
        } else {
            String::new()
        };
        draw::draw_text2(&note, x + w - 76, y, 70, h, Align::Right | Align::Inside);
        draw::pop_clip();
    });
    table
}

/// The Everyone row's picture: three heads, drawn (no picture file).
pub(super) fn draw_room_icon(x: i32, y: i32) {
    let size = crate::gui::avatars::SIZE;
    draw::set_draw_color(Color::from_rgb(0xe8, 0xf0, 0xfe));
    draw::draw_rounded_rectf(x, y, size, size, 8);
    let heads = [
        (x + 6, y + 14, Color::from_rgb(0x8a, 0xb4, 0xf8)),
        (x + 26, y + 14, Color::from_rgb(0x8a, 0xb4, 0xf8)),
        (x + 16, y + 10, Color::from_rgb(0x1a, 0x73, 0xe8)),
    ];
    for (hx, hy, color) in heads {
        draw::set_draw_color(color);
        draw::draw_pie(hx, hy, 16, 16, 0.0, 360.0);
        draw::draw_pie(hx - 3, hy + 17, 22, 22, 0.0, 180.0);
    }
}

/// Asks for files to send with the system's file chooser; none if the
/// user cancelled.
fn choose_files() -> Vec<std::path::PathBuf> {
    use fltk::dialog::{FileDialogType, NativeFileChooser};
    let mut chooser = NativeFileChooser::new(FileDialogType::BrowseMultiFile);
    chooser.set_title("Send files");
    if let Some(home) = std::env::home_dir() {
        let _ = chooser.set_directory(&home);
    }
    chooser.show();
    chooser
        .filenames()
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Opens the conversation of list row `row`, unless it is ourselves.
fn open_row(rows: &Rows, tx: &Tx, row: i32) {
    let mine = rows.borrow().get(row as usize).is_none_or(|(c, _)| c.is_me);
    if !mine {
        tx.send(Msg::Open(row as usize));
    }
}

/// Opens the client window and runs until it is closed.
pub fn run() -> i32 {
    let app = app::App::default();
    gui::init_look();
    let mut client = ClientApp::new();
    client.window.show();
    client.search();
    client.connect_at_start();
    let tx = client.sender();
    let _ = ctrlc::set_handler(move || tx.send(Msg::Quit));
    while app.wait() {
        if !client.pump() {
            break;
        }
    }
    0
}
