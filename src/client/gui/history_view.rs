//! The window side of the history: the search box and "Keep history" in
//! the main window, the search results window, and opening a conversation
//! at a line found. The history itself is `crate::client::history`; the
//! controller keeps it.

use std::sync::Arc;

use chrono::{Local, TimeZone};
use fltk::app;
use fltk::browser::HoldBrowser;
use fltk::button::CheckButton;
use fltk::dialog;
use fltk::enums::{Align, CallbackTrigger, Event, Key};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::input::Input;
use fltk::prelude::*;
use fltk::window::DoubleWindow;

use super::{ClientApp, Msg, Show, Tx};
use crate::client::controller::SEARCH_HITS;
use crate::client::form::{ClientSettings, SETTINGS_FILE};
use crate::client::history::{self as kept, History, Hit};
use crate::client::model::EVERYONE_KEY;
use crate::common::settings;
use crate::gui;

/// The row above the list: a box to search the history, and whether to
/// keep one.
pub struct SearchRow {
    pub row: Flex,
    pub input: Input,
    pub keep: CheckButton,
}

pub fn search_row(saved: &ClientSettings, tx: &Tx) -> SearchRow {
    let mut row = Flex::default().row();
    row.set_pad(8);
    let label = gui::label("Search:");
    row.fixed(&label, 52);
    let mut input = Input::default();
    input.set_tooltip("Search all conversations (Enter). Ctrl+F in a conversation comes here too.");
    input.set_trigger(CallbackTrigger::EnterKeyAlways);
    {
        let tx = tx.clone();
        input.set_callback(move |i| tx.send(Msg::FindInHistory(i.value())));
    }
    let mut keep = CheckButton::default().with_label("Keep history");
    keep.set_tooltip(
        "Keep every conversation on this computer (in history.sqlite in the settings folder), \
         so it is there after a restart and can be searched",
    );
    keep.set_checked(!saved.no_history);
    {
        let tx = tx.clone();
        keep.set_callback(move |_| tx.send(Msg::KeepHistory));
    }
    row.fixed(&keep, 118);
    row.end();
    SearchRow { row, input, keep }
}

/// Opens the history the settings ask for: the file in the settings
/// folder, or one for this run only. A file that cannot be used is said
/// in the status box, and this run keeps its history in memory.
pub fn open_history(saved: &ClientSettings) -> (Option<Arc<History>>, Option<String>) {
    if saved.no_history {
        return (History::open_in_memory().ok().map(Arc::new), None);
    }
    let opened = kept::default_path()
        .ok_or_else(|| "there is no settings folder to keep it in".to_string())
        .and_then(|path| History::open(&path).map_err(|e| e.to_string()));
    match opened {
        Ok(h) => (Some(Arc::new(h)), None),
        Err(why) => (
            History::open_in_memory().ok().map(Arc::new),
            Some(format!("Conversations are not kept this time: {why}")),
        ),
    }
}

/// The search results: a box to search again, and the lines found.
pub struct SearchWindow {
    pub window: DoubleWindow,
    pub input: Input,
    pub results: HoldBrowser,
    pub summary: Frame,
    pub hits: Vec<Hit>,
}

impl SearchWindow {
    pub fn new(tx: &Tx) -> Self {
        let mut window = DoubleWindow::default()
            .with_size(600, 420)
            .with_label("Search history - HubChat");
        gui::icon::apply(&mut window);
        window.set_color(gui::WINDOW);
        window.size_range(360, 240, 0, 0);
        let mut col = Flex::default_fill().column();
        col.set_margin(10);
        col.set_pad(6);
        let mut input = Input::default();
        input.set_trigger(CallbackTrigger::EnterKeyAlways);
        {
            let tx = tx.clone();
            input.set_callback(move |i| tx.send(Msg::FindInHistory(i.value())));
        }
        col.fixed(&input, 28);
        let mut summary = Frame::default().with_align(Align::Left | Align::Inside);
        summary.set_label_color(gui::MUTED);
        col.fixed(&summary, 20);
        let mut results = HoldBrowser::default();
        results.set_text_size(gui::TEXT_SIZE);
        results.set_column_widths(&[130, 110, 90, 400]);
        results.set_column_char('\t');
        results.set_tooltip("Double-click or Enter opens the conversation at that line");
        {
            let tx = tx.clone();
            results.set_callback(move |b| {
                if app::event_clicks() && b.value() > 0 {
                    tx.send(Msg::OpenHit(b.value() as usize - 1));
                }
            });
        }
        {
            let tx = tx.clone();
            results.handle(move |b, ev| {
                let enter = matches!(app::event_key(), Key::Enter | Key::KPEnter);
                if ev == Event::KeyDown && enter && b.value() > 0 {
                    tx.send(Msg::OpenHit(b.value() as usize - 1));
                    return true;
                }
                false
            });
        }
        col.end();
        window.end();
        window.resizable(&col);
        SearchWindow {
            window,
            input,
            results,
            summary,
            hits: Vec::new(),
        }
    }

    /// Shows what a search found.
    pub fn show(&mut self, typed: &str, hits: Vec<Hit>) {
        self.results.clear();
        for hit in &hits {
            self.results.add(&hit_line(hit));
        }
        let summary = match hits.len() {
            _ if typed.trim().is_empty() => "Type words to look for, then Enter.".to_string(),
            0 => format!("Nothing found for \"{}\".", typed.trim()),
            n if n >= SEARCH_HITS => format!("The newest {n} lines found; more words find fewer."),
            1 => "1 line found. Double-click it to see it in its conversation.".to_string(),
            n => format!(
                "{n} lines found, newest first. Double-click one to see it in its conversation."
            ),
        };
        self.summary.set_label(&summary);
        self.hits = hits;
        if !self.hits.is_empty() {
            self.results.select(1);
        }
        self.window.redraw();
    }
}

/// One result as a browser line: when, in which conversation, who, and
/// the words around the match.
fn hit_line(hit: &Hit) -> String {
    let when = Local
        .timestamp_millis_opt(hit.at_ms)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default();
    let place = if hit.conv == EVERYONE_KEY {
        "Everyone".to_string()
    } else {
        hit.partner_name.clone()
    };
    let snippet: String = hit
        .snippet
        .iter()
        .map(|piece| piece.text.replace(['\t', '\n'], " "))
        .collect();
    // Columns: time, conversation, author, the words found.
    // "@." ends a column's format marks: the date's digits would
    // otherwise run on into the colour's number.
    format!(
        "@C{}@.{when}\t@b@.{}\t@.{}:\t@.{}",
        gui::MUTED.bits(),
        place.replace('\t', " "),
        hit.author.replace('\t', " "),
        snippet
    )
}

impl ClientApp {
    /// Runs a search typed in the main window, a conversation (Ctrl+F) or
    /// the results window, and shows what it found.
    pub(super) fn search_history(&mut self, typed: &str) {
        let hits = self.controller.search(typed);
        let tx = self.tx.clone();
        let search = self.finder.get_or_insert_with(|| SearchWindow::new(&tx));
        search.input.set_value(typed);
        search.show(typed, hits);
        search.window.show();
        if typed.trim().is_empty() {
            let _ = search.input.take_focus();
        } else {
            let _ = search.results.take_focus();
        }
    }

    /// Opens the conversation of search hit `n` at its line.
    pub(super) fn open_hit(&mut self, n: usize) {
        let Some(hit) = self.finder.as_ref().and_then(|s| s.hits.get(n).cloned()) else {
            return;
        };
        let Some((key, at)) = self.controller.show_hit(&hit) else {
            return;
        };
        if let Some(chat) = self.chats.get_mut(&key) {
            chat.reset();
        }
        self.show_chat(&key, Show::Asked);
        if let Some(chat) = self.chats.get_mut(&key) {
            chat.jump_to(at);
        }
        self.show_list();
    }

    /// "Keep history" was ticked or cleared. Clearing it deletes what was
    /// kept, once the user says so; either way the choice is remembered.
    pub(super) fn keep_history_toggled(&mut self) {
        let keep = self.history_row.keep.is_checked();
        if !keep {
            let asked = dialog::choice2_default(
                "Keep no history? The conversations kept on this computer are deleted now, \
                 and from now on nothing is kept after HubChat closes.",
                "Keep history",
                "Delete and keep none",
                "",
            );
            if asked != Some(1) {
                self.history_row.keep.set_checked(true);
                return;
            }
            if let Some(h) = self.controller.history() {
                let _ = h.clear_all();
            }
        }
        let mut saved: ClientSettings = settings::load(SETTINGS_FILE);
        saved.no_history = !keep;
        let _ = settings::save(SETTINGS_FILE, &saved);
        let (history, problem) = open_history(&saved);
        if let Some(history) = history {
            self.controller.set_history(history);
        }
        if let Some(problem) = problem {
            self.log(&problem);
        }
    }

    /// "Clear history" in a conversation: its lines go, on screen and on
    /// disk, once the user says so.
    pub(super) fn clear_history(&mut self, key: &str) {
        let name = self
            .controller
            .model
            .conversations
            .get(key)
            .map(|c| c.partner.clone())
            .unwrap_or_default();
        let asked = dialog::choice2_default(
            &format!("Delete the conversation with {name} from this computer?"),
            "Keep it",
            "Delete",
            "",
        );
        if asked != Some(1) {
            return;
        }
        self.controller.clear_history(key);
        if let Some(chat) = self.chats.get_mut(key) {
            chat.reset();
        }
        self.show_chat(key, Show::IfOpen);
        self.show_list();
    }

    /// At start: the conversations kept for the remembered server.
    pub(super) fn restore_history(&mut self, host: &str, port: u16) {
        if host.trim().is_empty() {
            return;
        }
        let pin = self.controller.known.pin(host, port);
        let key = crate::client::controller::history_key(host, port, pin);
        self.controller.load_history(&key);
        self.show_list();
    }
}

/// The labels of the results, for tests.
pub fn result_lines(search: &SearchWindow) -> Vec<String> {
    (1..=search.results.size())
        .filter_map(|i| search.results.text(i))
        .collect()
}
