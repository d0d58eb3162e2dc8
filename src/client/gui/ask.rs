//! The questions only the user can answer while connecting: whether to
//! trust a server that shows a new key (or stopped encrypting), and the
//! server's password.
//!
//! The window asks through the [`Ask`] trait, so tests answer in place of
//! a person; [`Dialogs`] asks with small modal windows. Trusting a changed
//! server takes two deliberate steps: neither is the default button, and
//! Enter or Escape on either refuses.

use fltk::button::{Button, CheckButton};
use fltk::enums::{Align, Event, Key};
use fltk::frame::Frame;
use fltk::input::SecretInput;
use fltk::prelude::*;
use fltk::window::DoubleWindow;
use fltk::{app, draw};
use std::cell::Cell;
use std::rc::Rc;

use crate::gui;

/// What the window needs decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// The server shows another key than the one pinned, or offers no
    /// encryption where it did before. `warning` says so in full.
    ServerChanged { warning: String, new_key: bool },
    /// The server wants a password; `message` is what it said (needed,
    /// wrong, or too many tries).
    Password { server: String, message: String },
}

/// The user's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Not now: stay disconnected.
    Declined,
    /// Trust the changed server (confirmed).
    Trusted,
    /// Try this password, and remember it on this computer if asked.
    Password { password: String, remember: bool },
}

/// Something that answers the window's questions.
pub trait Ask {
    fn ask(&mut self, parent: &DoubleWindow, question: &Question) -> Answer;
}

/// Asks the person at the screen.
pub struct Dialogs;

impl Ask for Dialogs {
    fn ask(&mut self, parent: &DoubleWindow, question: &Question) -> Answer {
        match question {
            Question::ServerChanged { warning, new_key } => {
                let (verb, confirm) = if *new_key {
                    (
                        "Trust the new key...",
                        "Trust the new key only if the server's owner told you it \
                         changed (for example, the server was moved to another \
                         computer). From now on HubChat accepts only the new key.",
                    )
                } else {
                    (
                        "Connect unencrypted...",
                        "Connect without encryption only if the server's owner told \
                         you the server was replaced by one that cannot encrypt. \
                         Everything you send can then be read on the network.",
                    )
                };
                let first = Dialog::new("Warning: the server changed", warning)
                    .buttons(&[verb, "Don't connect"], 1)
                    .run(parent);
                if first.button != Some(0) {
                    return Answer::Declined;
                }
                let verb = verb.trim_end_matches("...");
                let second = Dialog::new("Are you sure?", confirm)
                    .buttons(&[verb, "Cancel"], 1)
                    .run(parent);
                if second.button == Some(0) {
                    Answer::Trusted
                } else {
                    Answer::Declined
                }
            }
            Question::Password { server, message } => {
                let text = format!("{message}\n\nThe password for {server}:");
                let got = Dialog::new("Password", &text)
                    .password()
                    .buttons(&["Connect", "Cancel"], 0)
                    .run(parent);
                match got.button {
                    Some(0) if !got.password.is_empty() => Answer::Password {
                        password: got.password,
                        remember: got.remember,
                    },
                    _ => Answer::Declined,
                }
            }
        }
    }
}

/// A small modal window: a message, perhaps a password field, and buttons.
struct Dialog {
    title: String,
    message: String,
    buttons: Vec<String>,
    /// The button Enter presses, if any; Escape always closes with none.
    default: Option<usize>,
    password: bool,
}

/// What the dialog ended with.
struct Ended {
    /// The button pressed; `None` for Escape or the close box.
    button: Option<usize>,
    password: String,
    remember: bool,
}

const WIDTH: i32 = 440;
const MARGIN: i32 = 14;

impl Dialog {
    fn new(title: &str, message: &str) -> Self {
        Dialog {
            title: title.into(),
            message: message.into(),
            buttons: Vec::new(),
            default: None,
            password: false,
        }
    }

    /// The buttons, left to right; `default` is the one Enter presses.
    fn buttons(mut self, labels: &[&str], default: usize) -> Self {
        self.buttons = labels.iter().map(|l| l.to_string()).collect();
        self.default = Some(default);
        self
    }

    fn password(mut self) -> Self {
        self.password = true;
        self
    }

    fn run(self, parent: &DoubleWindow) -> Ended {
        draw::set_font(fltk::enums::Font::Helvetica, gui::TEXT_SIZE);
        let (_, text_h) = draw::wrap_measure(&self.message, WIDTH - 2 * MARGIN, false);
        let field_h = if self.password { 60 } else { 0 };
        let height = MARGIN + text_h + 10 + field_h + 30 + MARGIN;
        let mut window = DoubleWindow::default()
            .with_size(WIDTH, height)
            .with_label(&self.title);
        window.set_color(gui::WINDOW);
        window.make_modal(true);
        let mut text = Frame::new(MARGIN, MARGIN, WIDTH - 2 * MARGIN, text_h, None);
        text.set_label(&self.message);
        text.set_align(Align::Left | Align::Top | Align::Inside | Align::Wrap);
        text.set_label_size(gui::TEXT_SIZE);
        let mut y = MARGIN + text_h + 10;
        let mut field = None;
        let mut remember = None;
        if self.password {
            let input = SecretInput::new(MARGIN, y, WIDTH - 2 * MARGIN, 28, None);
            let check = CheckButton::new(MARGIN, y + 32, WIDTH - 2 * MARGIN, 24, None)
                .with_label("Remember the password on this computer");
            y += field_h;
            field = Some(input);
            remember = Some(check);
        }
        let pressed = Rc::new(Cell::new(None));
        let mut x = WIDTH - MARGIN;
        let mut made = Vec::new();
        for (i, label) in self.buttons.iter().enumerate().rev() {
            draw::set_font(gui::BOLD, gui::TEXT_SIZE);
            let w = (draw::width(label) as i32 + 28).max(90);
            x -= w;
            let mut button = Button::new(x, y, w, 30, None).with_label(label);
            if Some(i) == self.default {
                button.set_label_font(gui::BOLD);
            }
            let (pressed, mut window) = (pressed.clone(), window.clone());
            button.set_callback(move |_| {
                pressed.set(Some(i));
                window.hide();
            });
            made.push(button);
            x -= 8;
        }
        window.end();
        {
            let (pressed, default) = (pressed.clone(), self.default);
            window.handle(move |w, ev| {
                let enter =
                    ev == Event::KeyDown && matches!(app::event_key(), Key::Enter | Key::KPEnter);
                if enter {
                    pressed.set(default);
                    w.hide();
                }
                enter
            });
        }
        window.set_pos(
            parent.x() + (parent.w() - WIDTH).max(0) / 2,
            parent.y() + 60,
        );
        window.show();
        if let Some(input) = field.as_mut() {
            let _ = input.take_focus();
        } else if let Some(b) = self.default.and_then(|d| made.iter_mut().rev().nth(d)) {
            let _ = b.take_focus();
        }
        while window.shown() {
            app::wait();
        }
        Ended {
            button: pressed.get(),
            password: field.map(|f| f.value()).unwrap_or_default(),
            remember: remember.is_some_and(|c| c.is_checked()),
        }
    }
}
