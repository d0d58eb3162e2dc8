//! The avatar picker: the built-in pictures in a grid, and "From file..."
//! for any PNG, JPEG, GIF or BMP, cropped to a square and scaled to 48x48.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use fltk::app;
use fltk::button::Button;
use fltk::dialog::{FileDialogType, NativeFileChooser};
use fltk::enums::{Align, FrameType};
use fltk::frame::Frame;
use fltk::group::Flex;
use fltk::prelude::*;
use fltk::window::DoubleWindow;

use crate::common::avatar::{self, Picture, PictureError, BUILTIN};
use crate::gui::{self, avatars, Sound};

/// What the user picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvatarChoice {
    /// Built-in number `n` (1-based).
    Builtin(u32),
    /// A picture of their own: its 48x48 PNG (as sent) and its pixels.
    Custom { png: Vec<u8>, picture: Arc<Picture> },
}

const COLUMNS: usize = 6;
const CELL: i32 = 62;
const GAP: i32 = 4;

pub struct AvatarPicker {
    pub window: DoubleWindow,
    /// One button per built-in, in order.
    pub builtins: Vec<Button>,
    pub from_file: Button,
    pub cancel: Button,
    pub error: Frame,
    chosen: Rc<RefCell<Option<AvatarChoice>>>,
}

impl AvatarPicker {
    /// Builds the picker (not shown yet); `current` is the built-in to mark.
    pub fn new(current: u32) -> Self {
        let rows = BUILTIN.len().div_ceil(COLUMNS) as i32;
        let columns = COLUMNS as i32;
        let width = columns * CELL + (columns - 1) * GAP + 24;
        let grid_height = rows * CELL + (rows - 1) * GAP;
        let mut window = DoubleWindow::default()
            .with_size(width, grid_height + 130)
            .with_label("Choose your avatar - HubChat");
        gui::icon::apply(&mut window);
        window.set_color(gui::WINDOW);
        window.make_modal(true);
        let mut col = Flex::default_fill().column();
        col.set_margin(12);
        col.set_pad(6);
        let heading = gui::heading("Pick a picture, or use one of your own");
        col.fixed(&heading, 20);

        let chosen = Rc::new(RefCell::new(None));
        let mut grid = Flex::default().column();
        grid.set_pad(GAP);
        let mut builtins = Vec::new();
        for chunk in BUILTIN.chunks(COLUMNS) {
            let mut row = Flex::default().row();
            row.set_pad(GAP);
            for b in chunk {
                let mut button = Button::default();
                if let Some(img) = avatars::png_image(b.png) {
                    button.set_image(Some(img));
                }
                button.set_tooltip(b.name);
                button.set_frame(if b.number == current {
                    FrameType::DownBox
                } else {
                    FrameType::FlatBox
                });
                button.set_color(gui::PANEL);
                let (chosen, number) = (chosen.clone(), b.number);
                button.set_callback(move |b| {
                    *chosen.borrow_mut() = Some(AvatarChoice::Builtin(number));
                    if let Some(mut w) = b.window() {
                        w.hide();
                    }
                });
                row.fixed(&button, CELL);
                builtins.push(button);
            }
            row.end();
            grid.fixed(&row, CELL);
        }
        grid.end();
        col.fixed(&grid, grid_height);

        let mut error = gui::error_label();
        error.set_align(Align::Left | Align::Inside | Align::Wrap);
        col.fixed(&error, 34);
        let mut buttons = Flex::default().row();
        buttons.set_pad(6);
        Frame::default();
        let mut from_file = Button::default().with_label("From file...");
        buttons.fixed(&from_file, 110);
        let mut cancel = Button::default().with_label("Cancel");
        buttons.fixed(&cancel, 90);
        buttons.end();
        col.fixed(&buttons, 30);
        col.end();
        window.end();
        cancel.set_callback(|b| {
            if let Some(mut w) = b.window() {
                w.hide();
            }
        });
        {
            let (mut window, mut error, chosen) = (window.clone(), error.clone(), chosen.clone());
            from_file.set_callback(move |_| {
                if let Some(path) = ask_for_file() {
                    use_file(&path, &mut window, &mut error, &chosen);
                }
            });
        }
        AvatarPicker {
            window,
            builtins,
            from_file,
            cancel,
            error,
            chosen,
        }
    }

    /// Shows the picker over `parent` and waits until the user picks or
    /// cancels.
    pub fn run(mut self, parent: &DoubleWindow) -> Option<AvatarChoice> {
        let (px, py, pw) = (parent.x(), parent.y(), parent.w());
        self.window
            .set_pos(px + (pw - self.window.w()).max(0) / 2, py + 40);
        self.window.show();
        while self.window.shown() {
            app::wait();
        }
        self.chosen.borrow_mut().take()
    }

    /// Uses the picture in `path`, or explains in the picker why not.
    pub fn choose_file(&mut self, path: &Path) {
        use_file(path, &mut self.window, &mut self.error, &self.chosen);
    }

    /// What was picked so far.
    pub fn chosen(&self) -> Option<AvatarChoice> {
        self.chosen.borrow().clone()
    }
}

/// Takes the picture in `path` as the choice and closes the picker, or
/// explains under the grid why it cannot be used.
fn use_file(
    path: &Path,
    window: &mut DoubleWindow,
    error: &mut Frame,
    chosen: &Rc<RefCell<Option<AvatarChoice>>>,
) {
    match load_file(path) {
        Ok(picture) => {
            let png = avatar::encode_picture(&picture);
            *chosen.borrow_mut() = Some(AvatarChoice::Custom {
                png,
                picture: Arc::new(picture),
            });
            window.hide();
        }
        Err(message) => {
            error.set_label(&message);
            error.redraw();
            gui::play(Sound::Error, true);
        }
    }
}

/// Asks for a picture file with the system's file chooser.
fn ask_for_file() -> Option<std::path::PathBuf> {
    let mut chooser = NativeFileChooser::new(FileDialogType::BrowseFile);
    chooser.set_title("Choose a picture");
    // Start in the user's pictures (or home) rather than "Recently used".
    if let Some(home) = std::env::home_dir() {
        let pictures = home.join("Pictures");
        let start = if pictures.is_dir() { pictures } else { home };
        let _ = chooser.set_directory(&start);
    }
    chooser.set_filter("Pictures\t*.{png,jpg,jpeg,gif,bmp,PNG,JPG,JPEG,GIF,BMP}");
    chooser.show();
    let path = chooser.filename();
    (!path.as_os_str().is_empty()).then_some(path)
}

/// Reads and decodes a picture file, checking its size before reading it.
fn load_file(path: &Path) -> Result<Picture, String> {
    let name = path.display();
    let size = std::fs::metadata(path)
        .map_err(|e| format!("Cannot open {name}: {e}."))?
        .len();
    if size > avatar::MAX_FILE_BYTES as u64 {
        return Err(PictureError::TooLarge {
            bytes: usize::try_from(size).unwrap_or(usize::MAX),
        }
        .to_string());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("Cannot read {name}: {e}."))?;
    avatar::decode_picture(&bytes).map_err(|e| e.to_string())
}

/// Shows the choice on the form's avatar button.
pub fn show_on(button: &mut Button, choice: &AvatarChoice) {
    match choice {
        AvatarChoice::Builtin(n) => {
            button.set_image(avatar::builtin(*n).and_then(|b| avatars::png_image(b.png)))
        }
        AvatarChoice::Custom { picture, .. } => button.set_image(avatars::to_image(picture)),
    }
    button.redraw();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file the user picks is anyone's file: one that panics the PNG
    /// decoder (tests/fuzz-cases/README.md) is only refused, with the
    /// sentence the picker shows, and the window lives on.
    #[test]
    fn a_file_that_panics_the_decoder_is_refused_with_a_sentence() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-cases/png-palette-panic.png");
        let why = load_file(&path).expect_err("not a usable picture");
        assert!(
            why.starts_with("This is not a picture HubChat can read"),
            "{why}"
        );
    }
}
