//! One conversation window: a header with both avatars, a transcript and a
//! box to write in.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::rc::Rc;
use std::time::Instant;

use fltk::app;
use fltk::button::Button;
use fltk::draw;
use fltk::enums::{Align, Color, Event, EventState, Font, Key};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::MultilineInput;
use fltk::misc::Tooltip;
use fltk::prelude::*;
use fltk::text::{PositionType, StyleTableEntryExt, TextAttr, TextBuffer, TextDisplay, WrapMode};
use fltk::window::DoubleWindow;

use super::file_strip::FileStrip;
use super::{Msg, Tx};
use crate::client::file_input::Pasted;
use crate::client::model::{Author, Conversation, Face, Mark};
use crate::gui::{self, attention, avatars::Avatars, follow};

/// Us on the left, the partner on the right.
type Faces = Rc<RefCell<(Face, Face)>>;

/// Where each shown line starts in the transcript, and what its mark means.
type Tips = Rc<RefCell<Vec<(i32, Option<String>)>>>;

pub struct ChatWindow {
    pub window: DoubleWindow,
    pub input: MultilineInput,
    pub send: Button,
    /// "Send file...": greyed, with a tooltip saying why, where files
    /// cannot go.
    pub send_file: Button,
    /// The files of this conversation, under the transcript.
    pub files: FileStrip,
    /// The window's column, which gives the files their height.
    col: Flex,
    header: Frame,
    faces: Faces,
    /// Whether the window has the keyboard focus: the user is looking.
    focused: Rc<Cell<bool>>,
    text: TextBuffer,
    styles: TextBuffer,
    transcript: TextDisplay,
    /// How many transcript lines are already shown.
    shown: usize,
    /// Whether the user saw the end of the transcript when it was last
    /// drawn: a resize keeps showing the end if so.
    at_end: Rc<Cell<bool>>,
    /// Whether this batch of new lines pulls the view down: decided once
    /// per batch, from what the user saw, since FLTK scrolls only when it
    /// next draws.
    following: Option<bool>,
    /// The mark each shown line had when drawn: a line whose mark moved
    /// on is drawn again.
    marks: Vec<Option<Mark>>,
    /// Where each shown line starts in the transcript, and its mark's
    /// meaning, for the tooltip under the mouse.
    tips: Tips,
    /// Under the transcript: "bob is typing...", or where messages go
    /// while bob is away.
    status: Frame,
    /// Where each shown line's text starts and ends in the transcript.
    bodies: Vec<(i32, i32)>,
}

impl ChatWindow {
    pub fn new(
        key: &str,
        conversation: &Conversation,
        faces: (Face, Face),
        avatars: Rc<RefCell<Avatars>>,
        tx: Tx,
    ) -> Self {
        let (me_color, partner_color) = (faces.0.color, faces.1.color);
        let faces: Faces = Rc::new(RefCell::new(faces));
        let mut window = DoubleWindow::default()
            .with_size(520, 460)
            .with_label(&format!("{} - HubChat", conversation.partner));
        gui::icon::apply(&mut window);
        window.size_range(360, 300, 0, 0);
        window.set_color(gui::WINDOW);
        let mut col = Flex::default_fill().column();
        col.set_margin(10);
        col.set_pad(6);
        let mut header = Frame::default();
        {
            let faces = faces.clone();
            header.draw(move |f| draw_header(f, &faces.borrow(), &mut avatars.borrow_mut()));
        }
        col.fixed(&header, 52);
        let text = TextBuffer::default();
        let styles = TextBuffer::default();
        let mut transcript = TextDisplay::default();
        transcript.set_buffer(text.clone());
        transcript.wrap_mode(WrapMode::AtBounds, 0);
        transcript.set_frame(gui::PANEL_FRAME);
        transcript.set_highlight_data_ext(
            styles.clone(),
            vec![
                StyleTableEntryExt {
                    color: Color::from_rgb(0x20, 0x21, 0x24),
                    font: Font::Helvetica,
                    size: gui::TEXT_SIZE,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                StyleTableEntryExt {
                    color: gui::color(me_color),
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                StyleTableEntryExt {
                    color: gui::color(partner_color),
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                StyleTableEntryExt {
                    color: gui::MUTED,
                    font: Font::HelveticaItalic,
                    size: gui::TEXT_SIZE,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                // E: a mark on the way; F: read; G: failed.
                StyleTableEntryExt {
                    color: gui::MUTED,
                    font: Font::Helvetica,
                    size: gui::TEXT_SIZE - 1,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                StyleTableEntryExt {
                    color: Color::from_rgb(0x1a, 0x73, 0xe8),
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE - 1,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                StyleTableEntryExt {
                    color: gui::ERROR,
                    font: gui::BOLD,
                    size: gui::TEXT_SIZE - 1,
                    attr: TextAttr::None,
                    bgcolor: gui::PANEL,
                },
                // H: the line a search found, on a yellow band.
                StyleTableEntryExt {
                    color: Color::from_rgb(0x20, 0x21, 0x24),
                    font: Font::Helvetica,
                    size: gui::TEXT_SIZE,
                    attr: TextAttr::BgColor,
                    bgcolor: Color::from_rgb(0xfd, 0xe2, 0x93),
                },
            ],
        );
        let tips: Tips = Rc::default();
        {
            let tips = tips.clone();
            transcript.handle(move |t, ev| {
                if matches!(ev, Event::Move | Event::Enter) {
                    show_tip(t, &tips.borrow());
                }
                false
            });
        }
        let files = FileStrip::new(key, tx.clone());
        col.fixed(&files.group, 0);
        let mut under = Flex::default().row();
        let mut status = Frame::default().with_align(Align::Left | Align::Inside);
        status.set_label_font(Font::HelveticaItalic);
        status.set_label_size(gui::TEXT_SIZE - 1);
        status.set_label_color(gui::MUTED);
        let mut clear = Button::default().with_label("Clear history");
        clear.set_label_size(gui::TEXT_SIZE - 2);
        clear.set_tooltip("Delete this conversation from this computer");
        {
            let (tx, key) = (tx.clone(), key.to_string());
            clear.set_callback(move |_| tx.send(Msg::ClearHistory(key.clone())));
        }
        under.fixed(&clear, 96);
        under.end();
        col.fixed(&under, 20);
        let mut row = Flex::default().row();
        row.set_pad(6);
        let mut input = MultilineInput::default();
        input.set_tooltip("Enter sends; Shift+Enter starts a new line.");
        input.set_wrap(true);
        let mut buttons = Flex::default().column();
        buttons.set_pad(4);
        let mut send = Button::default().with_label("Send");
        send.set_tooltip("Send the message (Enter)");
        let mut send_file = Button::default().with_label("Send file...");
        send_file.set_label_size(gui::TEXT_SIZE - 2);
        send_file.set_tooltip(
            "Send a file. You can also drop files on this window, or paste a picture (Ctrl+V).",
        );
        {
            let (tx, key) = (tx.clone(), key.to_string());
            send_file.set_callback(move |_| tx.send(Msg::ChooseFile(key.clone())));
        }
        buttons.end();
        row.fixed(&buttons, 96);
        row.end();
        col.fixed(&row, 64);
        col.end();
        window.end();
        window.resizable(&col);

        {
            let (tx, key) = (tx.clone(), key.to_string());
            send.set_callback(move |_| tx.send(Msg::Send(key.clone())));
        }
        {
            let (tx, key) = (tx.clone(), key.to_string());
            // Ours first: a key it takes (Enter, Ctrl+V with a picture)
            // must not reach the box's own handling as well (which would
            // paste the clipboard as text).
            input.super_handle_first(false);
            input.handle(move |_, ev| {
                let enter = matches!(app::event_key(), Key::Enter | Key::KPEnter);
                if ev == Event::KeyDown && pastes(app::event_key()) {
                    // A picture on the clipboard (and no text: a copied
                    // picture often comes with its name as text, and text
                    // wins in a text box) is sent as a file; else the box
                    // pastes as ever.
                    match clipboard_picture() {
                        Some(pixels) => {
                            tx.send(Msg::PastedPicture(key.clone(), pixels));
                            true
                        }
                        None => false,
                    }
                } else if ev == Event::KeyDown && enter && !app::is_event_shift() {
                    tx.send(Msg::Send(key.clone()));
                    true
                } else if ev == Event::KeyDown && closes(app::event_key()) {
                    tx.send(Msg::Close(key.clone()));
                    true
                } else if ev == Event::KeyDown && finds(app::event_key()) {
                    tx.send(Msg::FindInHistory(String::new()));
                    true
                } else {
                    if ev == Event::KeyDown && !app::event_text().is_empty() {
                        tx.send(Msg::Typed(key.clone()));
                    }
                    false
                }
            });
        }
        // Closing only hides: the transcript stays. The close box and
        // Escape come here (FLTK turns Escape into a close request).
        {
            let (tx, key) = (tx.clone(), key.to_string());
            window.set_callback(move |_| {
                if matches!(
                    app::event(),
                    Event::Close | Event::Shortcut | Event::KeyDown
                ) {
                    tx.send(Msg::Close(key.clone()));
                }
            });
        }
        // Getting the keyboard focus means the user is looking: stop asking
        // the taskbar for attention, and count the messages as read.
        let focused = Rc::new(Cell::new(false));
        {
            let focused = focused.clone();
            let key = key.to_string();
            let order = [
                transcript.as_base_widget(),
                input.as_base_widget(),
                send.as_base_widget(),
                send_file.as_base_widget(),
            ];
            window.handle(move |w, ev| {
                if gui::wrap_tab(ev, &order) {
                    return true;
                }
                match ev {
                    // Files dropped anywhere on the window are offered.
                    Event::DndEnter | Event::DndDrag | Event::DndRelease => return true,
                    Event::DndLeave => return true,
                    Event::Paste => {
                        tx.send(Msg::Dropped(key.clone(), app::event_text()));
                        return true;
                    }
                    Event::Focus => {
                        focused.set(true);
                        attention::request(w, false);
                        tx.send(Msg::Focus(key.clone(), true));
                    }
                    Event::Unfocus | Event::Hide if focused.get() => {
                        focused.set(false);
                        tx.send(Msg::Focus(key.clone(), false));
                    }
                    Event::KeyDown | Event::Shortcut if closes(app::event_key()) => {
                        tx.send(Msg::Close(key.clone()));
                        return true;
                    }
                    Event::KeyDown | Event::Shortcut if finds(app::event_key()) => {
                        tx.send(Msg::FindInHistory(String::new()));
                        return true;
                    }
                    _ => {}
                }
                false
            });
        }
        // A resize keeps the end in view if the user saw it: without this
        // a shrunk window shows its oldest lines.
        let at_end = follow::follow_end(&mut transcript);
        let mut chat = ChatWindow {
            window,
            input,
            send,
            send_file,
            files,
            col,
            header,
            faces,
            focused,
            text,
            styles,
            transcript,
            shown: 0,
            at_end,
            following: None,
            marks: Vec::new(),
            tips,
            status,
            bodies: Vec::new(),
        };
        chat.show_lines(conversation);
        chat
    }

    /// Updates the header (a new picture, a partner back under a new id).
    pub fn set_faces(&mut self, faces: (Face, Face)) {
        if *self.faces.borrow() != faces {
            *self.faces.borrow_mut() = faces;
            self.header.redraw();
        }
    }

    /// Starts a batch of updates: the window has drawn everything before.
    pub fn new_batch(&mut self) {
        self.following = None;
    }

    /// Puts the keyboard in the box to write in (the user opened the
    /// window to write).
    pub fn focus_input(&mut self) {
        let _ = self.input.take_focus();
    }

    /// The transcript's text as shown, for tests.
    pub fn transcript_text(&self) -> String {
        self.text.text()
    }

    /// The header's two sides, for tests.
    pub fn faces(&self) -> (Face, Face) {
        self.faces.borrow().clone()
    }

    /// Makes the transcript follow the end again (the user wrote something).
    pub fn follow(&mut self) {
        self.following = Some(true);
    }

    /// Scrolls the transcript to its first line, as a user reading back.
    pub fn scroll_to_top(&mut self) {
        self.transcript.scroll(0, 0);
    }

    /// The first line the transcript shows.
    pub fn top_row(&self) -> i32 {
        self.transcript.scroll_row()
    }

    /// Whether the user is looking at this window (it has the keyboard).
    pub fn has_focus(&self) -> bool {
        self.focused.get() && self.window.shown() && self.window.visible()
    }

    /// Appends the lines not yet shown (drawing all again when a shown
    /// line's mark moved on), and says under the transcript who is typing
    /// or where messages go while the partner is away. The user can always
    /// write: what cannot go now waits, or is kept by the server.
    pub fn show_lines(&mut self, c: &Conversation) {
        let changed = self
            .marks
            .iter()
            .zip(&c.lines)
            .any(|(shown, line)| *shown != line.mark);
        if changed || self.shown > c.lines.len() {
            let row = self.transcript.scroll_row();
            let following = self.following;
            self.reset();
            self.following = following;
            self.append_lines(c, Some(row));
        } else {
            self.append_lines(c, None);
        }
        self.show_status(c);
        self.show_files(c);
        self.window.redraw();
    }

    /// The files' rows, as tall as they need.
    fn show_files(&mut self, c: &Conversation) {
        let height = FileStrip::height(&c.files);
        if self.files.group.h() != height || (height == 0) == self.files.group.visible() {
            if height == 0 {
                self.files.group.hide();
            } else {
                self.files.group.show();
            }
            self.col.fixed(&self.files.group, height);
            self.col.layout();
        }
        self.files.show(&c.files);
    }

    /// Greys "Send file..." out where files cannot go, with the reason as
    /// its tooltip.
    pub fn allow_files(&mut self, allowed: &Result<(), String>, max_file: Option<u64>) {
        let tip = match (allowed, max_file) {
            (Ok(()), Some(max)) => format!(
                "Send a file (this server passes on files of up to {}). You can also drop files \
                 on this window, or paste a picture (Ctrl+V).",
                crate::common::file_packet::describe_size(max)
            ),
            (Ok(()), None) => {
                "Send a file. You can also drop files on this window, or paste a picture (Ctrl+V)."
                    .into()
            }
            (Err(why), _) => why.clone(),
        };
        if self.send_file.tooltip().as_deref() != Some(tip.as_str()) {
            self.send_file.set_tooltip(&tip);
        }
        if allowed.is_ok() != self.send_file.active() {
            gui::set_active(&mut self.send_file, allowed.is_ok());
            self.send_file.redraw();
        }
    }

    fn append_lines(&mut self, c: &Conversation, keep_row: Option<i32>) {
        let following = match self.following {
            Some(f) => f,
            None => keep_row.is_none() && follow::sees_end(&self.transcript),
        };
        let me = self.faces.borrow().0.name.clone();
        self.following = Some(following);
        let first = self.shown.min(c.lines.len());
        for (n, line) in c.lines.iter().enumerate().skip(first) {
            let (who, style) = match &line.author {
                Author::Me => (format!("{me}: "), 'B'),
                Author::Partner => (format!("{}: ", c.partner), 'C'),
                Author::Member(name) => (format!("{name}: "), 'C'),
                Author::Notice => (String::new(), 'D'),
            };
            let body_style = if c.found == Some(n) {
                'H' // the line a search found
            } else if line.author == Author::Notice {
                'D'
            } else {
                'A'
            };
            let start = self.text.length();
            let time = line.at.format("%H:%M ").to_string();
            self.text.append(&time);
            self.styles.append(&"D".repeat(time.len()));
            let tip = line.mark.as_ref().map(|mark| {
                let glyph = format!("{} ", mark.glyph());
                let style = match mark {
                    Mark::Read => 'F',
                    Mark::Failed(_) => 'G',
                    _ => 'E',
                };
                self.text.append(&glyph);
                self.styles.append(&style.to_string().repeat(glyph.len()));
                mark.describe(&c.partner)
            });
            self.text.append(" ");
            self.styles.append("A");
            let body = format!("{}\n", line.text);
            self.text.append(&who);
            self.styles.append(&style.to_string().repeat(who.len()));
            let body_start = self.text.length();
            self.bodies
                .push((body_start, body_start + line.text.len() as i32));
            self.text.append(&body);
            self.styles
                .append(&body_style.to_string().repeat(body.len()));
            self.tips.borrow_mut().push((start, tip));
            self.marks.push(line.mark.clone());
        }
        self.shown = c.lines.len();
        if following {
            self.transcript.scroll(self.text.length(), 0);
            self.at_end.set(true);
        } else if let Some(row) = keep_row {
            self.transcript.scroll(row, 0);
        }
    }

    /// The line under the transcript.
    fn show_status(&mut self, c: &Conversation) {
        let status = if c.typing(Instant::now()) {
            format!("{} is typing...", c.partner)
        } else if c.room || c.partner_id.is_some() {
            String::new()
        } else {
            format!(
                "{} is away: messages are kept if the server knows them.",
                c.partner
            )
        };
        if self.status.label() != status {
            self.status.set_label(&status);
            self.status.redraw();
        }
    }

    /// Forgets what is drawn: the next [`Self::show_lines`] draws every
    /// line again (the conversation's lines were replaced or cleared).
    pub fn reset(&mut self) {
        self.text.set_text("");
        self.styles.set_text("");
        self.tips.borrow_mut().clear();
        self.marks.clear();
        self.bodies.clear();
        self.shown = 0;
        self.following = Some(false);
    }

    /// Scrolls line `n` of the transcript into view, near the top, and
    /// selects it: where a search hit is (the conversation marks the line
    /// found, on a band of its own, since FLTK shows a selection only
    /// while the transcript has the keyboard).
    pub fn jump_to(&mut self, n: usize) {
        let Some(&(start, end)) = self.bodies.get(n) else {
            return;
        };
        self.text.select(start, end);
        let _ = self.transcript.take_focus();
        let row = self.transcript.count_lines(0, start, true);
        self.transcript.scroll(row.saturating_sub(2).max(0), 0);
        self.at_end.set(false);
        self.window.redraw();
    }

    /// The transcript's selected text (a search hit), for tests.
    pub fn selected_text(&self) -> String {
        self.text.selection_text()
    }

    /// The text under the transcript, for tests.
    pub fn status_text(&self) -> String {
        self.status.label()
    }
}

/// Shows the meaning of the mark on the line under the mouse as its
/// tooltip (FLTK keeps a tooltip's text, so each distinct one is kept
/// once for the program's life: a handful per partner).
fn show_tip(t: &TextDisplay, tips: &[(i32, Option<String>)]) {
    let (x, y) = (app::event_x(), app::event_y());
    let pos = t.xy_to_position(x, y, PositionType::Character);
    let at = tips.partition_point(|(start, _)| *start <= pos);
    let line_h = gui::TEXT_SIZE + 4;
    let tip = match at.checked_sub(1).and_then(|i| tips.get(i)) {
        Some((_, Some(tip))) => interned(tip),
        _ => c"",
    };
    Tooltip::enter_area(t, x - t.x() - 4, y - t.y() - line_h / 2, 8, line_h, tip);
}

fn interned(text: &str) -> &'static CStr {
    thread_local! {
        static TIPS: RefCell<HashMap<String, &'static CStr>> = RefCell::default();
    }
    TIPS.with(|tips| {
        *tips
            .borrow_mut()
            .entry(text.to_string())
            .or_insert_with(|| {
                let c = CString::new(text.replace('\0', "")).unwrap_or_default();
                Box::leak(c.into_boxed_c_str())
            })
    })
}

/// Ctrl+V pastes.
fn pastes(key: Key) -> bool {
    key == Key::from_char('v') && app::event_state().contains(EventState::Ctrl)
}

/// The picture on the clipboard, if it holds one and no text, read with
/// arboard: FLTK, built without its image readers, cannot read a pasted
/// picture on X11 (and asking it what the clipboard holds, as well,
/// left the picture's bytes pasted into the box as text).
fn clipboard_picture() -> Option<Pasted> {
    let mut clipboard = arboard::Clipboard::new().ok()?;
    if clipboard.get_text().is_ok_and(|t| !t.is_empty()) {
        return None;
    }
    let image = clipboard.get_image().ok()?;
    Some(Pasted {
        width: u32::try_from(image.width).ok()?,
        height: u32::try_from(image.height).ok()?,
        depth: 4,
        data: image.bytes.into_owned(),
    })
}

/// Ctrl+F searches the history.
fn finds(key: Key) -> bool {
    key == Key::from_char('f') && app::event_state().contains(EventState::Ctrl)
}

/// Escape and Ctrl+W close a conversation window.
fn closes(key: Key) -> bool {
    key == Key::Escape
        || (key == Key::from_char('w') && app::event_state().contains(EventState::Ctrl))
}

/// The header: our avatar and name on the left, the partner's on the right.
fn draw_header(f: &Frame, faces: &(Face, Face), avatars: &mut Avatars) {
    let (x, y, w, h) = (f.x(), f.y(), f.w(), f.h());
    let size = crate::gui::avatars::SIZE;
    let top = y + (h - size) / 2;
    let (me, partner) = faces;
    draw::set_font(gui::BOLD, gui::TEXT_SIZE + 1);
    avatars.draw(me.picture.as_deref(), &me.image_name, x, top);
    draw::set_draw_color(gui::color(me.color));
    let half = (w - 2 * size - 40) / 2;
    draw::draw_text2(
        &me.name,
        x + size + 8,
        y,
        half,
        h,
        Align::Left | Align::Inside,
    );
    draw::set_draw_color(gui::MUTED);
    draw::draw_text2("↔", x + w / 2 - 12, y, 24, h, Align::Center | Align::Inside);
    if partner.image_name.is_empty() {
        super::draw_room_icon(x + w - size, top); // the Everyone room
    } else {
        avatars.draw(
            partner.picture.as_deref(),
            &partner.image_name,
            x + w - size,
            top,
        );
    }
    draw::set_draw_color(gui::color(partner.color));
    draw::draw_text2(
        &partner.name,
        x + w - size - 8 - half,
        y,
        half,
        h,
        Align::Right | Align::Inside,
    );
}
