//! One conversation window: a transcript and a box to write in.

use fltk::app::{self, Sender};
use fltk::button::Button;
use fltk::enums::{Color, Event, Font, Key};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::MultilineInput;
use fltk::prelude::*;
use fltk::text::{StyleTableEntry, TextBuffer, TextDisplay, WrapMode};
use fltk::window::DoubleWindow;

use super::Msg;
use crate::client::model::{Author, Conversation};
use crate::common::color::Rgb;
use crate::gui;

pub struct ChatWindow {
    pub window: DoubleWindow,
    pub input: MultilineInput,
    pub send: Button,
    header: Frame,
    text: TextBuffer,
    styles: TextBuffer,
    transcript: TextDisplay,
    /// How many transcript lines are already shown.
    shown: usize,
}

impl ChatWindow {
    pub fn new(
        key: &str,
        conversation: &Conversation,
        me: (&str, Rgb),
        partner: Rgb,
        tx: Sender<Msg>,
    ) -> Self {
        let mut window = DoubleWindow::default()
            .with_size(520, 460)
            .with_label(&format!("{} - HubChat", conversation.partner));
        window.size_range(360, 300, 0, 0);
        window.set_color(gui::WINDOW);
        let mut col = Flex::default_fill().column();
        col.set_margin(10);
        col.set_pad(6);
        let mut header = Frame::default();
        header.set_label_font(gui::BOLD);
        col.fixed(&header, 24);
        let text = TextBuffer::default();
        let styles = TextBuffer::default();
        let mut transcript = TextDisplay::default();
        transcript.set_buffer(text.clone());
        transcript.wrap_mode(WrapMode::AtBounds, 0);
        transcript.set_frame(gui::PANEL_FRAME);
        transcript.set_highlight_data(
            styles.clone(),
            vec![
                StyleTableEntry {
                    color: Color::from_rgb(0x20, 0x21, 0x24),
                    font: Font::Helvetica,
                    size: gui::TEXT_SIZE,
                },
                StyleTableEntry {
                    color: gui::color(me.1),
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE,
                },
                StyleTableEntry {
                    color: gui::color(partner),
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE,
                },
                StyleTableEntry {
                    color: gui::MUTED,
                    font: Font::HelveticaItalic,
                    size: gui::TEXT_SIZE,
                },
            ],
        );
        let mut row = Flex::default().row();
        row.set_pad(6);
        let mut input = MultilineInput::default();
        input.set_tooltip("Enter sends; Shift+Enter starts a new line.");
        input.set_wrap(true);
        let mut send = Button::default().with_label("Send");
        row.fixed(&send, 80);
        row.end();
        col.fixed(&row, 64);
        col.end();
        window.end();
        window.resizable(&col);

        let key_send = key.to_string();
        send.set_callback(move |_| tx.send(Msg::Send(key_send.clone())));
        let key_enter = key.to_string();
        input.handle(move |_, ev| {
            if ev == Event::KeyDown && app::event_key() == Key::Enter && !app::is_event_shift() {
                tx.send(Msg::Send(key_enter.clone()));
                true
            } else {
                false
            }
        });
        // Closing only hides: the transcript stays for the session.
        window.set_callback(|w| {
            if app::event() == Event::Close {
                w.hide();
            }
        });
        let mut chat = ChatWindow {
            window,
            input,
            send,
            header,
            text,
            styles,
            transcript,
            shown: 0,
        };
        chat.header
            .set_label(&format!("{}  ↔  {}", me.0, conversation.partner));
        chat.show_lines(conversation, me.0);
        chat
    }

    /// Appends the lines not yet shown and enables input only while the
    /// partner is connected.
    pub fn show_lines(&mut self, c: &Conversation, me: &str) {
        for line in &c.lines[self.shown.min(c.lines.len())..] {
            let (who, style) = match line.author {
                Author::Me => (format!("{me}: "), 'B'),
                Author::Partner => (format!("{}: ", c.partner), 'C'),
                Author::Notice => (String::new(), 'D'),
            };
            let body_style = if line.author == Author::Notice {
                'D'
            } else {
                'A'
            };
            let time = chrono::Local::now().format("%H:%M  ").to_string();
            let body = format!("{}\n", line.text);
            self.text.append(&time);
            self.styles.append(&"D".repeat(time.len()));
            self.text.append(&who);
            self.styles.append(&style.to_string().repeat(who.len()));
            self.text.append(&body);
            self.styles
                .append(&body_style.to_string().repeat(body.len()));
        }
        self.shown = c.lines.len();
        self.transcript.scroll(self.text.length(), 0);
        if c.can_send() {
            self.input.activate();
            self.send.activate();
        } else {
            self.input.deactivate();
            self.send.deactivate();
        }
        self.window.redraw();
    }
}
