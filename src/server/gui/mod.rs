//! The server window: what a double-click on `hubchat-server` opens.
//!
//! The loop sleeps in FLTK until the owner does something or the server has
//! news. Server events arrive through [`Events`], whose waker calls
//! `app::awake` once per batch; each wake-up applies every pending event to
//! the [`ServerView`] in one update and redraws what changed. There are no
//! timers: an idle window costs no CPU.
//!
//! The owner's trust controls end here too: a kick or ban chosen in the
//! window (a row's menu, or Kick... / Ban... for the selected client) is
//! asked a reason and done by the [`Server`], which logs it; the names and
//! bans window ([`names`]) lists what the server keeps, through the running
//! server or, stopped, straight from its database.

pub mod names;
pub mod window;

use std::cell::Cell;
use std::rc::Rc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use fltk::app::{self, Receiver, Sender};
use fltk::dialog;
use fltk::prelude::*;

use crate::common::tls::{Credentials, Fingerprint};
use crate::common::{netaddr, settings};
use crate::gui::{self, Sound};
use crate::server::cli::{self, ServerConfigArgs};
use crate::server::form::{self, AddressChoice, ServerSettings, SETTINGS_FILE};
use crate::server::log::{printable, MessageText};
use crate::server::store::{Ban, BanTarget, Binding, StoreError};
use crate::server::trust::Trust;
use crate::server::view::{Cue, OwnerAction, RunState, ServerView};
use crate::server::{Events, MessageRate, Server, ServerConfig, ServerEvent};
use names::NamesWindow;
use window::{Action, ServerWindow};

/// The window, its model and the server it drives.
pub struct ServerApp {
    pub ui: ServerWindow,
    pub view: ServerView,
    choices: Vec<AddressChoice>,
    settings: ServerSettings,
    max_clients: Option<usize>,
    /// `--message-rate`, if given; else the server's default.
    message_rate: Option<u32>,
    /// `--max-file-mb`, if given; else the server's default (2 GiB).
    max_file_mb: Option<u64>,
    events: Events,
    actions: Receiver<Action>,
    /// For windows opened later (the names and bans).
    tx: Sender<Action>,
    server: Option<Server>,
    /// The names and bans window, once opened.
    pub names: Option<NamesWindow>,
    /// A server being stopped off the GUI thread (stopping waits for
    /// clients to close, which must not freeze the window).
    stopping: Option<JoinHandle<()>>,
    quitting: bool,
    /// When the window last applied server events, to update at most
    /// [`FRAME`] apart under a flood.
    last_update: Instant,
    /// Whether a one-shot timer to come back for pending events is set.
    timer_set: Rc<Cell<bool>>,
}

/// The shortest time between two updates from server events. A flood is
/// shown 30 times a second; in between, the window answers the owner.
const FRAME: Duration = Duration::from_millis(33);

impl ServerApp {
    /// Builds the window (not yet shown) from the remembered settings and
    /// the command line, which wins where given.
    pub fn new(args: &ServerConfigArgs) -> Self {
        let mut settings: ServerSettings = settings::load(SETTINGS_FILE);
        if let Some(ip) = args.bind {
            settings.address = Some(ip);
        }
        if let Some(port) = args.port {
            settings.port = port;
        }
        if args.hide_text {
            settings.show_text = false;
        }
        if let Some(name) = &args.name {
            settings.name.clone_from(name);
        }
        if args.no_discovery {
            settings.discovery = false;
        }
        if let Some(n) = args.max_per_address {
            settings.max_per_address = n;
        }
        if args.encrypted_only {
            settings.allow_original = false;
        }
        // `--password-file` sets the password as it does headless; a file
        // that cannot be read is said next to the form, once it is built.
        let password_problem = match args.password_file {
            Some(_) => match args.to_config_with_files() {
                Ok(config) => {
                    settings.password = config.password;
                    None
                }
                Err(sentence) => Some(sentence),
            },
            None => None,
        };
        let detected = netaddr::detect();
        let mut choices = form::address_choices(&detected);
        // An address given on the command line is offered even if it was
        // not detected: starting will say whether this machine has it.
        if let Some(ip) = args.bind.filter(|ip| !ip.is_unspecified()) {
            if !choices.iter().any(|c| c.ip() == ip) {
                choices.insert(
                    0,
                    AddressChoice::Local(netaddr::LocalAddress {
                        ip,
                        interface: String::new(),
                    }),
                );
            }
        }
        let selected = form::preselect(&choices, settings.address);
        let (tx, actions) = app::channel::<Action>();
        let ui = ServerWindow::new(&choices, selected, &settings, tx);
        let mut view = ServerView::new(form::advertised(&choices));
        view.message_text = MessageText::shown_if(settings.show_text);
        view.key = kept_key();
        let mut app = ServerApp {
            ui,
            view,
            choices,
            settings,
            max_clients: args.max_clients,
            message_rate: args.message_rate,
            max_file_mb: args.max_file_mb,
            events: Events::with_waker(app::awake),
            actions,
            tx,
            server: None,
            names: None,
            stopping: None,
            quitting: false,
            last_update: Instant::now() - FRAME,
            timer_set: Rc::new(Cell::new(false)),
        };
        app.show_state();
        if let Some(sentence) = password_problem {
            app.ui.show_error(Some((form::Field::Port, &sentence)));
        }
        app
    }

    /// The running server, if any.
    pub fn server(&self) -> Option<&Server> {
        self.server.as_ref()
    }

    /// Handles everything pending: the owner's actions and the server's
    /// events. Returns false once the window has been closed.
    pub fn pump(&mut self) -> bool {
        while let Some(action) = self.actions.recv() {
            self.act(action);
        }
        let since = self.last_update.elapsed();
        if since >= FRAME {
            let batch = self.events.drain();
            if !batch.is_empty() {
                self.apply(&batch);
                self.last_update = Instant::now();
            }
        } else if !self.timer_set.get() {
            // Events that arrive meanwhile wait in the queue (which counts
            // rather than stores a flood); a one-shot timer brings the loop
            // back for them. The timer exists only while events arrive, so
            // an idle window still sleeps.
            self.timer_set.set(true);
            let timer_set = self.timer_set.clone();
            app::add_timeout3((FRAME - since).as_secs_f64(), move |_| timer_set.set(false));
        }
        !self.quitting
    }

    /// Does what a control asked for.
    pub fn act(&mut self, action: Action) {
        match action {
            Action::StartStop if self.server.is_some() => self.stop(),
            Action::StartStop => self.start(),
            Action::Start if self.server.is_none() => self.start(),
            Action::Start => {}
            Action::SoundToggled => {
                self.settings.sound = self.ui.sound.is_checked();
                self.save_settings();
            }
            Action::DiscoveryToggled => {
                self.settings.discovery = self.ui.discovery.is_checked();
                self.save_settings();
            }
            Action::TextToggled => {
                self.settings.show_text = self.ui.show_text.is_checked();
                self.view.message_text = MessageText::shown_if(self.settings.show_text);
                self.save_settings();
            }
            Action::ClearPassword => self.clear_password(),
            Action::AllowOriginalToggled => {
                self.settings.allow_original = self.ui.allow_original.is_checked();
                self.save_settings();
            }
            Action::CopyKey => {
                if let Some(key) = self.view.key {
                    app::copy(&key.short());
                }
            }
            Action::NamesAndBans => self.open_names(),
            Action::ClientClicked { row, menu_at } => self.client_clicked(row, menu_at),
            Action::Kick => self.ask_and_act(OwnerAction::Kick),
            Action::Ban => self.choose_ban(),
            Action::ReleaseName => self.release_selected_name(),
            Action::LiftBan => self.lift_selected_ban(),
            Action::Quit => self.quit(),
        }
    }

    /// Selects the client in `row` (-1: none) and, for a right-click,
    /// offers what can be done to it.
    fn client_clicked(&mut self, row: i32, menu_at: Option<(i32, i32)>) {
        self.view.select(usize::try_from(row).unwrap_or(usize::MAX));
        self.ui.show_rows(&self.view);
        let (Some((x, y)), Some(client)) = (menu_at, self.view.selected().cloned()) else {
            return;
        };
        if let Some(action) = window::choose_action(&client, &OwnerAction::ALL, x, y) {
            self.ask_and_act(action);
        }
    }

    /// "Ban...": by computer or by address, from a menu under the button.
    fn choose_ban(&mut self) {
        let Some(client) = self.view.selected().cloned() else {
            return;
        };
        let b = &self.ui.ban;
        let bans = [OwnerAction::BanComputer, OwnerAction::BanAddress];
        if let Some(action) = window::choose_action(&client, &bans, b.x(), b.y() + b.h()) {
            self.ask_and_act(action);
        }
    }

    /// Asks for the reason (which the client is shown), then does it;
    /// Cancel does nothing.
    fn ask_and_act(&mut self, action: OwnerAction) {
        let Some(client) = self.view.selected().cloned() else {
            return;
        };
        if let Some(reason) = dialog::input_default(&action.prompt(&client), "") {
            self.owner_act(action, &reason);
        }
    }

    /// Kicks or bans the selected client, with the owner's reason (may be
    /// empty). The server logs what was done; what could not be done is
    /// logged here, as a sentence.
    pub fn owner_act(&mut self, action: OwnerAction, reason: &str) {
        let (Some(server), Some(client)) = (&self.server, self.view.selected()) else {
            return;
        };
        let result = match action.ban_by() {
            None if server.kick(&client.id, reason) => Ok(()),
            None => Err(format!("{} has already left.", printable(&client.name))),
            Some(by) => server
                .ban(&client.id, by, reason)
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        if let Err(message) = result {
            self.events.emit(ServerEvent::Error { message });
        }
        self.refresh_names();
    }

    /// Forgets the password: clients join without one from the next start.
    fn clear_password(&mut self) {
        if self.settings.password.take().is_some() {
            self.events.emit(ServerEvent::Owner {
                what: "cleared the server password: clients join without one from the next \
                       start"
                    .into(),
            });
        }
        self.ui.password.set_value("");
        self.save_settings();
        self.show_state();
    }

    /// Opens (or raises) the names and bans window, with fresh lists.
    fn open_names(&mut self) {
        let tx = self.tx;
        let names = self.names.get_or_insert_with(|| NamesWindow::new(tx));
        names.window.show();
        self.refresh_names();
    }

    /// Brings the names and bans window up to date, if it is open.
    fn refresh_names(&mut self) {
        if !self.names.as_ref().is_some_and(|n| n.window.shown()) {
            return;
        }
        let lists = self.with_keeper(|k| Ok((k.bindings()?, k.bans()?)));
        if let Some(names) = &mut self.names {
            match lists {
                Ok((bindings, bans)) => names.show_lists(bindings, bans),
                Err(sentence) => names.show_problem(&sentence),
            }
        }
    }

    /// "Release name" in the names and bans window.
    pub fn release_selected_name(&mut self) {
        let Some(binding) = self
            .names
            .as_ref()
            .and_then(|n| n.selected_binding().cloned())
        else {
            return;
        };
        let released = self.with_keeper(|k| k.release(&binding.name));
        self.after_names_action(released);
    }

    /// "Lift ban" in the names and bans window.
    pub fn lift_selected_ban(&mut self) {
        let Some(ban) = self.names.as_ref().and_then(|n| n.selected_ban().cloned()) else {
            return;
        };
        let lifted = self.with_keeper(|k| k.lift(&ban.target));
        self.after_names_action(lifted);
    }

    fn after_names_action(&mut self, result: Result<bool, String>) {
        self.refresh_names();
        if let (Err(sentence), Some(names)) = (result, &mut self.names) {
            names.show_problem(&sentence);
        }
    }

    /// Runs `f` on what keeps the names and bans: the running server (so a
    /// ban also removes who it covers, and everything is logged), else the
    /// database in the settings folder.
    fn with_keeper<T>(
        &self,
        f: impl FnOnce(&dyn Keeper) -> Result<T, StoreError>,
    ) -> Result<T, String> {
        if let Some(server) = &self.server {
            return f(server).map_err(|e| e.to_string());
        }
        let path = crate::server::database_file().ok_or_else(|| NO_SETTINGS_FOLDER.to_string())?;
        let trust =
            Trust::open(Some(&path), None, self.events.clone()).map_err(|e| e.to_string())?;
        f(&trust).map_err(|e| e.to_string())
    }

    fn start(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.ui.show_error(None);
        let index = usize::try_from(self.ui.address.value()).unwrap_or(0);
        let Some(choice) = self.choices.get(index).cloned() else {
            return;
        };
        let form = self.read_form(&choice);
        let (bind, max_per_address, discovery) = match form {
            Ok(form) => form,
            Err((field, message)) => return self.complain(field, &message),
        };
        let mut config = ServerConfig::new(bind);
        config.max_per_address = max_per_address;
        config.discovery = discovery.clone();
        if let Some(n) = self.max_clients {
            config.max_clients = n;
        }
        if let Some(n) = self.message_rate {
            config.message_rate = MessageRate::messages_per_second(n);
        }
        if let Some(mb) = self.max_file_mb {
            config.max_file = mb.saturating_mul(1 << 20);
        }
        // The certificate clients pin and the names and bans outlive the
        // window, as they do for the headless server.
        if let Err(sentence) = cli::keep_on_disk(&mut config) {
            return self.complain(form::Field::Port, &sentence);
        }
        let password = match form::password_setting(
            &self.ui.password.value(),
            self.settings.password.as_deref(),
        ) {
            Ok(password) => password,
            Err(e) => return self.complain(form::Field::Port, &e.to_string()),
        };
        config.password.clone_from(&password);
        config.allow_original = self.ui.allow_original.is_checked();
        match Server::start(config, self.events.clone()) {
            Ok(server) => {
                self.server = Some(server);
                self.settings.password = password;
                self.settings.allow_original = self.ui.allow_original.is_checked();
                self.ui.password.set_value("");
                self.settings.address = Some(bind.ip());
                self.settings.port = bind.port();
                self.settings.max_per_address = max_per_address;
                if let Some(name) = discovery {
                    // This machine's name is the default, not a choice:
                    // remembered as such, it follows a renamed machine.
                    let own = name == crate::common::discovery::host_name();
                    self.settings.name = if own { String::new() } else { name };
                }
                self.save_settings();
            }
            Err(e) => self.complain(form::start_error_field(&e), &e.to_string()),
        }
    }

    /// The form as the server's settings: where to listen, the limit per
    /// address, and the name to answer discovery with (`None` when clients
    /// may not find it). The first mistake, with its field, otherwise.
    fn read_form(
        &self,
        choice: &AddressChoice,
    ) -> Result<(std::net::SocketAddr, usize, Option<String>), (form::Field, String)> {
        let bind = form::bind_address(choice, &self.ui.port.value())?;
        let discovery = if self.ui.discovery.is_checked() {
            let name =
                form::parse_name(&self.ui.name.value()).map_err(|m| (form::Field::Name, m))?;
            Some(name)
        } else {
            None
        };
        let max = form::parse_max_per_address(&self.ui.max_per_address.value())
            .map_err(|m| (form::Field::MaxPerAddress, m))?;
        Ok((bind, max, discovery))
    }

    fn complain(&mut self, field: form::Field, message: &str) {
        self.ui.show_error(Some((field, message)));
        gui::play(Sound::Error, self.settings.sound);
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.view.stopping();
            self.show_state();
            self.stopping = Some(thread::spawn(move || server.stop()));
        }
    }

    /// Closing the window stops the server (every client is sent SERVER
    /// CLOSE) and ends the program.
    fn quit(&mut self) {
        self.ui.window.hide();
        if let Some(names) = &mut self.names {
            names.window.hide();
        }
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if let Some(stopping) = self.stopping.take() {
            let _ = stopping.join();
        }
        self.save_settings();
        self.quitting = true;
    }

    fn apply(&mut self, batch: &[crate::server::Event]) {
        let changes = self.view.apply(batch);
        if changes.state {
            if self.view.state == crate::server::view::RunState::Stopped {
                if let Some(stopping) = self.stopping.take() {
                    let _ = stopping.join();
                }
            }
            self.show_state();
            self.refresh_names();
        }
        if changes.rows {
            self.ui.show_rows(&self.view);
        }
        let cut = self.view.log_appended(&changes.new_lines);
        self.ui.append_log(&changes.new_lines, cut);
        if changes.cues.contains(&Cue::Error) {
            gui::play(Sound::Error, self.settings.sound);
        } else if !changes.cues.is_empty() {
            gui::play(Sound::Notice, self.settings.sound);
        }
    }

    /// Brings the window in line with the server's state and the
    /// password setting.
    fn show_state(&mut self) {
        self.ui.show_state(&self.view);
        let stopped = self.view.state == RunState::Stopped;
        self.ui
            .show_password(self.settings.password.as_deref(), stopped);
    }

    fn save_settings(&self) {
        // Not being able to remember settings must not disturb the owner.
        let _ = settings::save(SETTINGS_FILE, &self.settings);
    }
}

const NO_SETTINGS_FOLDER: &str = "No settings folder was found, so there are no names or bans \
     kept. Set HUBCHAT_CONFIG_DIR to a folder.";

/// The key the server will use, read from its certificate in the settings
/// folder; `None` before the first start has made one.
fn kept_key() -> Option<Fingerprint> {
    let pem = std::fs::read(crate::server::identity_file()?).ok()?;
    Credentials::from_pem(&pem).ok().map(|c| c.fingerprint())
}

/// What keeps names and bans: the running server, or (stopped) the
/// database itself.
trait Keeper {
    fn bindings(&self) -> Result<Vec<Binding>, StoreError>;
    fn bans(&self) -> Result<Vec<Ban>, StoreError>;
    fn release(&self, name: &str) -> Result<bool, StoreError>;
    fn lift(&self, target: &BanTarget) -> Result<bool, StoreError>;
}

impl Keeper for Server {
    fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        Server::bindings(self)
    }
    fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        Server::bans(self)
    }
    fn release(&self, name: &str) -> Result<bool, StoreError> {
        self.release_name(name)
    }
    fn lift(&self, target: &BanTarget) -> Result<bool, StoreError> {
        self.lift_ban(target)
    }
}

impl Keeper for Trust {
    fn bindings(&self) -> Result<Vec<Binding>, StoreError> {
        Trust::bindings(self)
    }
    fn bans(&self) -> Result<Vec<Ban>, StoreError> {
        Trust::bans(self)
    }
    fn release(&self, name: &str) -> Result<bool, StoreError> {
        Trust::release(self, name)
    }
    fn lift(&self, target: &BanTarget) -> Result<bool, StoreError> {
        Trust::lift(self, target)
    }
}

/// Opens the server window and runs until it is closed. Returns the exit
/// status.
pub fn run(args: &ServerConfigArgs) -> i32 {
    let app = app::App::default();
    gui::init_look();
    let mut server_app = ServerApp::new(args);
    server_app.ui.window.show();
    if args.start {
        server_app.act(Action::StartStop);
    }
    // Ctrl+C in a terminal, or SIGTERM at logout, close the window properly.
    let tx = app::Sender::<Action>::get();
    let _ = ctrlc::set_handler(move || tx.send(Action::Quit));
    while app.wait() {
        if !server_app.pump() {
            break;
        }
    }
    0
}
