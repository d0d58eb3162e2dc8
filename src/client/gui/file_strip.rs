//! The files of a conversation, under its transcript: one row per
//! transfer with a thumbnail (or a document sign), what the file is, how
//! far it got, and the buttons that fit where it stands (Accept and
//! Decline, Cancel, Open and Show in folder, and a close box once over).

use std::time::Instant;

use fltk::button::Button;
use fltk::draw;
use fltk::enums::{Align, Color, FrameType};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::image::RgbImage;
use fltk::misc::Progress;
use fltk::prelude::*;

use super::{Msg, Tx};
use crate::client::file_rows::{FileRow, FileState};
use crate::client::files::TransferKey;
use crate::gui;

/// The height of one row.
pub const ROW: i32 = 58;
/// At most this many rows show at once: those that ask for something
/// first, then those moving, then the newest finished ones.
pub const SHOWN: usize = 3;

/// What a row's button asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAction {
    Accept,
    Decline,
    Cancel,
    Open,
    ShowInFolder,
    /// Close the row of a finished transfer.
    Dismiss,
}

/// The rows as drawn.
pub struct FileStrip {
    pub group: Flex,
    /// What each row shows: its key and the kind of its state (rows are
    /// built again only when these change; progress just updates).
    shown: Vec<(TransferKey, &'static str)>,
    statuses: Vec<Frame>,
    bars: Vec<Progress>,
    /// The buttons, for tests: (row key, label, button).
    pub buttons: Vec<(TransferKey, String, Button)>,
    key: String,
    tx: Tx,
}

fn kind(state: &FileState) -> &'static str {
    match state {
        FileState::Offered => "offered",
        FileState::Waiting => "waiting",
        FileState::Moving { .. } => "moving",
        FileState::Saved { path: Some(_) } => "saved here",
        FileState::Saved { path: None } => "saved there",
        FileState::Ended { .. } => "ended",
    }
}

/// The rows to show, in order.
pub fn visible(rows: &[FileRow]) -> Vec<&FileRow> {
    let rank = |r: &FileRow| match r.state {
        FileState::Offered => 0,
        FileState::Waiting | FileState::Moving { .. } => 1,
        _ => 2,
    };
    let mut order: Vec<(usize, &FileRow)> = rows.iter().enumerate().collect();
    // Newest first within a rank.
    order.sort_by_key(|(i, r)| (rank(r), std::cmp::Reverse(*i)));
    order.into_iter().take(SHOWN).map(|(_, r)| r).collect()
}

impl FileStrip {
    pub fn new(key: &str, tx: Tx) -> Self {
        let mut group = Flex::default().column();
        group.set_pad(2);
        group.end();
        FileStrip {
            group,
            shown: Vec::new(),
            statuses: Vec::new(),
            bars: Vec::new(),
            buttons: Vec::new(),
            key: key.to_string(),
            tx,
        }
    }

    /// The height the strip needs for `rows`.
    pub fn height(rows: &[FileRow]) -> i32 {
        let n = visible(rows).len() as i32;
        if n == 0 {
            0
        } else {
            n * ROW + (n - 1) * 2
        }
    }

    /// Shows `rows`: built again when rows came, went or changed kind;
    /// otherwise only the words and bars move.
    pub fn show(&mut self, rows: &[FileRow]) {
        let now = Instant::now();
        let visible = visible(rows);
        let wanted: Vec<(TransferKey, &'static str)> = visible
            .iter()
            .map(|r| (r.key.clone(), kind(&r.state)))
            .collect();
        if wanted != self.shown {
            self.build(&visible, now);
            self.shown = wanted;
        } else {
            for ((row, status), bar) in visible.iter().zip(&mut self.statuses).zip(&mut self.bars) {
                let text = row.status(now);
                if status.label() != text {
                    status.set_label(&text);
                    status.redraw();
                }
                let value = row.fraction() * 100.0;
                if (bar.value() - value).abs() > 0.05 {
                    bar.set_value(value);
                }
            }
        }
    }

    fn build(&mut self, rows: &[&FileRow], now: Instant) {
        // Rows are built long after the window: whatever group was open
        // (none, usually) must be open again after, or the next window
        // made would land inside this one.
        let before = fltk::group::Group::try_current();
        self.group.clear();
        self.statuses.clear();
        self.bars.clear();
        self.buttons.clear();
        self.group.begin();
        for row in rows {
            self.build_row(row, now);
        }
        self.group.end();
        fltk::group::Group::set_current(before.as_ref());
        self.group.layout();
        self.group.redraw();
    }

    fn build_row(&mut self, row: &FileRow, now: Instant) {
        let mut line = Flex::default().row();
        line.set_pad(8);
        line.set_frame(FrameType::FlatBox);
        line.set_color(gui::PANEL);
        line.set_margins(4, 3, 6, 3);
        let mut picture = Frame::default();
        let image = row.thumbnail.as_ref().and_then(|t| {
            RgbImage::new(
                &t.rgba,
                t.width as i32,
                t.height as i32,
                fltk::enums::ColorDepth::Rgba8,
            )
            .ok()
        });
        picture.draw(move |f| draw_thumbnail(f, image.as_ref()));
        line.fixed(&picture, 52);
        let mut words = Flex::default().column();
        words.set_pad(1);
        let mut title = Frame::default().with_align(Align::Left | Align::Inside | Align::Clip);
        title.set_label(&row.title());
        title.set_label_font(gui::BOLD);
        title.set_label_size(gui::TEXT_SIZE - 1);
        let mut status = Frame::default().with_align(Align::Left | Align::Inside | Align::Clip);
        status.set_label(&row.status(now));
        status.set_label_size(gui::TEXT_SIZE - 2);
        status.set_label_color(match row.state {
            FileState::Ended { .. } => gui::ERROR,
            _ => gui::MUTED,
        });
        let mut bar = Progress::default();
        bar.set_minimum(0.0);
        bar.set_maximum(100.0);
        bar.set_value(row.fraction() * 100.0);
        bar.set_selection_color(Color::from_rgb(0x1a, 0x73, 0xe8));
        bar.set_color(Color::from_rgb(0xe3, 0xe6, 0xea));
        bar.set_frame(FrameType::FlatBox);
        words.fixed(&bar, 6);
        if !matches!(row.state, FileState::Moving { .. }) {
            bar.hide();
        }
        words.end();
        let labels: &[(&str, FileAction)] = match (&row.state, row.key.outgoing) {
            (FileState::Offered, _) => &[
                ("Accept", FileAction::Accept),
                ("Decline", FileAction::Decline),
            ],
            (FileState::Waiting | FileState::Moving { .. }, _) => &[("Cancel", FileAction::Cancel)],
            (FileState::Saved { path: Some(_) }, _) => &[
                ("Open", FileAction::Open),
                ("Show in folder", FileAction::ShowInFolder),
                ("×", FileAction::Dismiss),
            ],
            _ => &[("×", FileAction::Dismiss)],
        };
        // The buttons, at a button's height in the middle of the row.
        let mut buttons = Flex::default().row();
        buttons.set_pad(6);
        buttons.set_margins(0, 11, 0, 11);
        let mut total = 0;
        for (label, action) in labels {
            let mut b = Button::default().with_label(label);
            b.set_label_size(gui::TEXT_SIZE - 2);
            let width = match *label {
                "×" => 26,
                "Show in folder" => 104,
                _ => 70,
            };
            buttons.fixed(&b, width);
            total += width + 6;
            b.set_tooltip(match action {
                FileAction::Accept => "Save it in your Downloads folder",
                FileAction::Decline => "Say no; the sender is told",
                FileAction::Cancel => "Stop the transfer; the other side is told",
                FileAction::Open => "Open the file",
                FileAction::ShowInFolder => "Show the file in its folder",
                FileAction::Dismiss => "Close this row",
            });
            let (tx, key, transfer, action) = (
                self.tx.clone(),
                self.key.clone(),
                row.key.clone(),
                action.clone(),
            );
            b.set_callback(move |_| {
                tx.send(Msg::File(key.clone(), transfer.clone(), action.clone()))
            });
            self.buttons.push((row.key.clone(), label.to_string(), b));
        }
        buttons.end();
        line.fixed(&buttons, total - 6);
        line.end();
        self.group.fixed(&line, ROW);
        self.statuses.push(status);
        self.bars.push(bar);
    }
}

/// The thumbnail, centred, or a document sign when there is none.
fn draw_thumbnail(f: &Frame, image: Option<&RgbImage>) {
    let (x, y, w, h) = (f.x(), f.y(), f.w(), f.h());
    if let Some(image) = image {
        let mut image = image.clone();
        let (iw, ih) = (image.w(), image.h());
        let scale = (w as f64 / iw as f64).min(h as f64 / ih as f64).min(1.0);
        let (dw, dh) = ((iw as f64 * scale) as i32, (ih as f64 * scale) as i32);
        image.scale(dw, dh, true, true);
        image.draw(x + (w - dw) / 2, y + (h - dh) / 2, dw, dh);
        return;
    }
    // A sheet of paper with a folded corner and three lines of text.
    let (pw, ph) = (30, 38);
    let (px, py) = (x + (w - pw) / 2, y + (h - ph) / 2);
    draw::set_draw_color(Color::from_rgb(0xe8, 0xf0, 0xfe));
    draw::draw_rectf(px, py, pw, ph);
    draw::set_draw_color(Color::from_rgb(0x1a, 0x73, 0xe8));
    draw::draw_rect(px, py, pw, ph);
    draw::set_draw_color(gui::WINDOW);
    draw::draw_polygon(px + pw - 9, py, px + pw, py, px + pw, py + 9);
    draw::set_draw_color(Color::from_rgb(0x1a, 0x73, 0xe8));
    draw::draw_line(px + pw - 9, py, px + pw - 9, py + 9);
    draw::draw_line(px + pw - 9, py + 9, px + pw, py + 9);
    for i in 0..3 {
        let ly = py + 16 + i * 7;
        draw::draw_line(px + 6, ly, px + pw - 7, ly);
    }
}
