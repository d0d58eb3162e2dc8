//! The window's side of reconnecting by itself (the logic is in
//! [`crate::client::reconnect`], driven by the controller): the banner with
//! its countdown and "Reconnect now" button, the timer behind the
//! countdown, and the "Connect when HubChat starts" box.
//!
//! The timer runs only while the banner counts down, and wakes the loop
//! when the number shown changes or the next try is due; connected, or
//! offline as the user chose, no timer is set and the client sleeps.

use std::time::{Duration, Instant};

use fltk::app::{self, TimeoutHandle};
use fltk::button::{Button, CheckButton};
use fltk::draw;
use fltk::enums::{Align, FrameType};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::prelude::*;

use super::{on_click, ClientApp, Msg, Tx, BANNER};
use crate::client::controller::Status;
use crate::client::form::{ClientSettings, SETTINGS_FILE};
use crate::common::settings;
use crate::gui;

/// The banner's smallest height: two lines.
const BANNER_HEIGHT: i32 = 44;
/// The width of the column holding "Reconnect now".
const BUTTON_WIDTH: i32 = 124;

/// The countdown's timer: one FLTK timeout, set again for each wake-up,
/// that sends [`Msg::Tick`]. Its callback is made once per window and
/// reused, so counting down for hours allocates nothing.
pub struct Countdown {
    tx: Tx,
    handle: Option<TimeoutHandle>,
}

impl Countdown {
    fn new(tx: Tx) -> Self {
        Countdown { tx, handle: None }
    }

    /// Wakes the loop with [`Msg::Tick`] after `after`, in place of any
    /// wake-up set before.
    fn set(&mut self, after: Duration) {
        let secs = after.as_secs_f64().max(0.001);
        match self.handle {
            Some(handle) => {
                if app::has_timeout3(handle) {
                    app::remove_timeout3(handle);
                }
                app::repeat_timeout3(secs, handle);
            }
            None => {
                let tx = self.tx.clone();
                self.handle = Some(app::add_timeout3(secs, move |_| tx.send(Msg::Tick)));
            }
        }
    }

    /// Removes the wake-up, if one is set.
    pub(super) fn stop(&mut self) {
        if let Some(handle) = self.handle.filter(|&h| app::has_timeout3(h)) {
            app::remove_timeout3(handle);
        }
    }

    /// Whether a wake-up is set: only while counting down.
    pub fn running(&self) -> bool {
        self.handle.is_some_and(app::has_timeout3)
    }
}

impl Drop for Countdown {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The banner's widgets, but for its sentence (the window's `banner`).
pub(super) struct Banner {
    pub row: Flex,
    /// Holds the button, centred.
    pub side: Flex,
    pub now: Button,
    pub countdown: Countdown,
}

/// The banner, hidden: its sentence on the left, "Reconnect now" on the
/// right. The caller puts the row in the page.
pub(super) fn banner(tx: &Tx) -> (Frame, Banner) {
    let mut row = Flex::default().row();
    row.set_frame(FrameType::FlatBox);
    row.set_color(BANNER);
    row.set_margins(0, 0, 8, 0);
    row.set_pad(6);
    let mut text = Frame::default();
    text.set_frame(FrameType::FlatBox);
    text.set_color(BANNER);
    text.set_align(Align::Left | Align::Inside | Align::Wrap);
    text.set_label_font(gui::BOLD);
    let mut side = Flex::default().column();
    Frame::default();
    let mut now = Button::default().with_label("Reconnect now");
    now.set_tooltip("Try to connect again at once");
    on_click(&mut now, tx, || Msg::ReconnectNow);
    side.fixed(&now, 30);
    Frame::default();
    side.end();
    row.fixed(&side, BUTTON_WIDTH);
    row.end();
    row.hide();
    text.hide();
    let parts = Banner {
        row,
        side,
        now,
        countdown: Countdown::new(tx.clone()),
    };
    (text, parts)
}

/// The "Connect when HubChat starts" box, ticked as remembered.
pub(super) fn at_start_box(saved: &ClientSettings, tx: &Tx) -> CheckButton {
    let mut at_start = CheckButton::default().with_label("Connect when HubChat starts");
    at_start.set_tooltip(
        "Connect to this server as soon as HubChat starts. On by itself once a connection \
         succeeded, unless you cleared it.",
    );
    at_start.set_checked(saved.connect_at_start == Some(true));
    let tx = tx.clone();
    at_start.set_callback(move |_| tx.send(Msg::ConnectAtStart));
    at_start
}

impl ClientApp {
    /// Follows the reconnect loop: the banner's sentence and countdown,
    /// its button, and the timer, set only while counting down. A loss
    /// that is not retried (a kick, a ban) keeps the plain banner.
    pub(super) fn show_reconnect(&mut self) {
        let now = Instant::now();
        let r = self.controller.reconnect();
        let text = r.banner(now).or_else(|| match self.controller.status() {
            Status::Lost { reason } => Some(format!(
                "Connection lost: {reason}\nPress Connect to join again."
            )),
            _ => None,
        });
        let (looping, waiting) = (r.active(), r.retry_at().is_some());
        match r.next_tick(now) {
            Some(after) => self.banner_parts.countdown.set(after),
            None => self.banner_parts.countdown.stop(),
        }
        let Some(text) = text else {
            if self.banner.visible() {
                self.banner.hide();
                self.banner_parts.row.hide();
                self.page.layout();
            }
            return;
        };
        let parts = &mut self.banner_parts;
        gui::set_active(&mut parts.now, waiting);
        let mut relayout = !self.banner.visible() || parts.side.visible() != looping;
        if looping {
            parts.side.show();
        } else {
            parts.side.hide();
        }
        if self.banner.label() != text {
            self.banner.set_label(&text);
            let side = if looping { BUTTON_WIDTH + 6 } else { 0 };
            let width = self.page.w() - 24 - 8 - side - 6;
            draw::set_font(self.banner.label_font(), self.banner.label_size());
            let (_, h) = draw::wrap_measure(&text, width, false);
            let height = (h + 4).max(BANNER_HEIGHT);
            if parts.row.h() != height {
                self.page.fixed(&parts.row, height);
                relayout = true;
            }
        }
        self.banner.show();
        parts.row.show();
        if relayout {
            self.page.layout();
        }
        parts.row.redraw();
    }

    /// The countdown's timer fired: tries again if it is time, else shows
    /// the next number.
    pub(super) fn reconnect_tick(&mut self) {
        let change = self.controller.tick(Instant::now());
        self.apply(change);
        self.show_reconnect();
    }

    /// "Reconnect now".
    pub(super) fn reconnect_now(&mut self) {
        let change = self.controller.reconnect_now();
        self.apply(change);
    }

    /// Connects to the remembered server, as HubChat starts, when the user
    /// asked for that (or it turned on with the first connection). If the
    /// server is not up yet, it keeps trying as after a loss.
    pub fn connect_at_start(&mut self) {
        let remembered = !self.host.value().trim().is_empty();
        if self.connect_at_start != Some(true) || !remembered || !self.controller.status().idle() {
            return;
        }
        self.start_connect();
        self.controller.started_unasked();
    }

    /// The user ticked or cleared "Connect when HubChat starts": their
    /// choice stays.
    pub(super) fn at_start_toggled(&mut self) {
        self.connect_at_start = Some(self.at_start.is_checked());
        self.save_at_start();
    }

    /// The first successful connection turns "Connect when HubChat
    /// starts" on, unless the user already chose.
    pub(super) fn remember_first_join(&mut self) {
        if !matches!(self.controller.status(), Status::Connected { .. }) {
            return;
        }
        let mut saved = ClientSettings {
            connect_at_start: self.connect_at_start,
            ..ClientSettings::default()
        };
        if saved.joined() {
            self.connect_at_start = saved.connect_at_start;
            self.at_start.set_checked(true);
            self.save_at_start();
        }
    }

    /// Writes the setting into the settings file, leaving the rest as it
    /// is there.
    fn save_at_start(&mut self) {
        let mut saved: ClientSettings = settings::load(SETTINGS_FILE);
        saved.connect_at_start = self.connect_at_start;
        if let Err(e) = settings::save(SETTINGS_FILE, &saved) {
            self.log(&format!(
                "Could not save \"Connect when HubChat starts\" in the settings folder: {e}."
            ));
        }
    }

    /// Whether the countdown's timer is set (for tests: never while
    /// connected or idle).
    pub fn countdown_running(&self) -> bool {
        self.banner_parts.countdown.running()
    }

    /// The "Reconnect now" button.
    pub fn reconnect_now_button(&mut self) -> &mut Button {
        &mut self.banner_parts.now
    }
}
