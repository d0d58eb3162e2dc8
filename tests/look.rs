//! How text looks in the programs' text displays (the server's log, the
//! conversation transcripts), checked from the pixels on a real X display
//! (Xvfb in CI): every line is drawn whole, whatever scripts it mixes.
//!
//! Each sample line is drawn twice with the same font: once in a
//! `TextDisplay` (where FLTK clips every line to its line box) and once as a
//! label with room to spare. Clipped glyphs show as less ink in the display
//! than in the label.
//!
//! FLTK must stay on one thread, so this is a plain `main` (harness = false)
//! that runs its checks in order and reports like libtest.

use std::time::{Duration, Instant};

use fltk::app;
use fltk::button::Button;
use fltk::enums::{Align, Color, Font, FrameType};
use fltk::frame::Frame;
use fltk::input::Input;
use fltk::prelude::*;
use fltk::table::{TableContext, TableRow};
use fltk::text::{StyleTableEntry, TextBuffer, TextDisplay};
use fltk::window::Window;
use hubchat::gui::TEXT_SIZE;

/// The lines to draw, each in one of the font slots the programs use.
const SAMPLES: &[(&str, Font)] = &[
    ("plain latin joined", Font::Helvetica),
    ("Zoë 陈 joined", Font::Helvetica),
    ("Zoë 陈 joined", Font::HelveticaBold),
    ("日本語 mixed text, gjpqy", Font::HelveticaItalic),
    ("한국어 and 中文 typed", Font::Helvetica),
    ("Ёжик в тумане, Привет", Font::Helvetica),
    ("مرحبا بالعالم שלום עולם", Font::Helvetica),
    ("emoji 😀🎉 joined", Font::Helvetica),
    ("12:34:56 陈 joined", Font::Courier),
];

/// One check of the drawn scene.
type Check = fn(&Scene, &Shot);

/// One check of the focus form.
type FocusCheck = fn(&mut Form);

/// A form like the programs' own: a field, a button, a table built with
/// `gui::one_column_table` and a text display given `gui::mark_focus`.
struct Form {
    window: Window,
    field: Input,
    button: Button,
    table: TableRow,
    log: TextDisplay,
}

/// Who says the chat lines.
const SENDER: &str = "Zoë: ";

/// Messages alone in their script, as people send them, and whether they
/// come out on the name's baseline. Those wholly in a fallback font
/// (Hebrew, Arabic, emoji) sit up to 4 px high: FLTK places every piece by
/// its slot font's metrics, and the CJK-capable slot font is the tallest
/// (see `hubchat::gui::fonts`). They are checked for being drawn whole.
const CHAT: &[(&str, Level)] = &[
    ("hello", Level::OnBaseline),
    ("陈", Level::OnBaseline),
    ("日本語", Level::OnBaseline),
    ("한국어", Level::OnBaseline),
    ("Привет", Level::OnBaseline),
    ("שלום", Level::Whole),
    ("مرحبا", Level::Whole),
    ("👍", Level::Whole),
    ("😀🎉", Level::Whole),
];

/// What a chat line's message is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// Drawn whole and on the baseline of the sender's name.
    OnBaseline,
    /// Drawn whole.
    Whole,
}

/// Where the samples were drawn.
struct Scene {
    window: Window,
    display: TextDisplay,
    references: Vec<Frame>,
    /// The chat lines in two pieces, as a transcript draws them.
    chat: TextDisplay,
    /// The chat lines in one piece each.
    chat_whole: TextDisplay,
}

/// Rows `top..bottom` (inclusive) that hold ink, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ink {
    top: i32,
    bottom: i32,
}

impl Ink {
    fn height(self) -> i32 {
        self.bottom - self.top + 1
    }
}

/// A captured window: RGB rows.
struct Shot {
    width: i32,
    rgb: Vec<u8>,
}

impl Shot {
    fn take(window: &mut Window) -> Shot {
        let image = fltk::draw::capture_window(window).expect("the window can be captured");
        Shot {
            width: image.data_w(),
            rgb: image.to_rgb_data(),
        }
    }

    /// Whether the pixel differs visibly from the white background.
    fn inked(&self, x: i32, y: i32) -> bool {
        let i = ((y * self.width + x) * 3) as usize;
        self.rgb[i..i + 3].iter().any(|&c| c < 0xff - 60)
    }

    /// The ink inside a rectangle, columns `x0..x1`, rows `y0..y1`.
    fn ink(&self, (x0, x1): (i32, i32), (y0, y1): (i32, i32)) -> Option<Ink> {
        let rows: Vec<i32> = (y0..y1)
            .filter(|&y| (x0..x1).any(|x| self.inked(x, y)))
            .collect();
        Some(Ink {
            top: *rows.first()?,
            bottom: *rows.last()?,
        })
    }

    /// Writes the shot as a PPM picture, for a person to look at.
    fn save(&self, path: &str) {
        let height = self.rgb.len() as i32 / 3 / self.width;
        let mut out = format!("P6\n{} {}\n255\n", self.width, height).into_bytes();
        out.extend_from_slice(&self.rgb);
        std::fs::write(path, out).expect("the shot can be written");
    }
}

fn main() {
    if !hubchat::gui::display_available() {
        println!("skipped: no display; run under xvfb-run (scripts/test.sh does)");
        println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        return;
    }
    let _app = app::App::default();
    hubchat::gui::init_look();
    // The installed fonts follow FLTK's 16 built-in slots.
    assert!(
        app::get_font_names()
            .iter()
            .skip(16)
            .any(|family| family.starts_with("Noto Sans CJK")),
        "Noto Sans CJK is not installed, and the text checks draw CJK with it: \
         install fonts-noto-cjk (scripts/install-deps.sh --test does)"
    );
    let mut scene = build_scene();
    scene.window.show();
    settle(&scene.window);
    let shot = Shot::take(&mut scene.window);
    if let Ok(path) = std::env::var("HUBCHAT_LOOK_SHOT") {
        shot.save(&path);
    }

    let checks: [(&str, Check); 3] = [
        (
            "no line of a text display is clipped, whatever scripts it mixes",
            every_line_is_drawn_whole,
        ),
        (
            "latin words sit on the same baseline beside CJK as on their own",
            latin_sits_level_beside_cjk,
        ),
        (
            "a message after its sender's name is drawn whole, latin and CJK on the name's baseline",
            messages_sit_on_the_name_baseline,
        ),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let mut passed = 0;
    for (name, check) in checks {
        if wanted(name) {
            print!("test {name} ... ");
            check(&scene, &shot);
            println!("ok");
            passed += 1;
        }
    }
    scene.window.hide();

    let mut form = build_form();
    form.window.show();
    settle(&form.window);
    let focus_checks: [(&str, FocusCheck); 4] = [
        (
            "a button with the keyboard focus shows the focus mark",
            button_shows_focus,
        ),
        (
            "a table with the keyboard focus shows the focus mark",
            table_shows_focus,
        ),
        (
            "a text display given gui::mark_focus shows the focus mark",
            text_display_shows_focus,
        ),
        (
            "Tab walks from a field to the button, the table and the text display",
            tab_reaches_every_control,
        ),
    ];
    for (name, check) in focus_checks {
        if wanted(name) {
            print!("test {name} ... ");
            check(&mut form);
            println!("ok");
            passed += 1;
        }
    }
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// A white window: the samples in one styled `TextDisplay` as the programs
/// build theirs, then each sample again as a roomy label; beside them the
/// chat lines twice, as a transcript draws them (bold name, plain message:
/// two pieces) and as one piece of plain text.
fn build_scene() -> Scene {
    const WIDTH: i32 = 560;
    const CHAT_W: i32 = 200;
    const REFERENCE_H: i32 = 48;
    let display_h = SAMPLES.len() as i32 * 26 + 8;
    let height = 20 + display_h + SAMPLES.len() as i32 * REFERENCE_H;
    let mut window = Window::new(40, 40, WIDTH + 2 * CHAT_W + 40, height, "text look");
    window.set_color(Color::White);

    let samples: Vec<Vec<(&str, Font)>> = SAMPLES.iter().map(|&piece| vec![piece]).collect();
    let display = styled_display((10, 10, WIDTH, display_h), &samples);
    let chat_h = CHAT.len() as i32 * 26 + 8;
    let pieces: Vec<Vec<(&str, Font)>> = CHAT
        .iter()
        .map(|&(message, _)| vec![(SENDER, Font::HelveticaBold), (message, Font::Helvetica)])
        .collect();
    let chat = styled_display((WIDTH + 20, 10, CHAT_W, chat_h), &pieces);
    let whole_lines: Vec<String> = CHAT.iter().map(|(m, _)| format!("{SENDER}{m}")).collect();
    let whole: Vec<Vec<(&str, Font)>> = whole_lines
        .iter()
        .map(|line| vec![(line.as_str(), Font::Helvetica)])
        .collect();
    let chat_whole = styled_display((WIDTH + CHAT_W + 30, 10, CHAT_W, chat_h), &whole);

    let mut references = Vec::new();
    for (i, &(line, font)) in SAMPLES.iter().enumerate() {
        let y = 20 + display_h + i as i32 * REFERENCE_H;
        let mut frame = Frame::new(10, y, WIDTH, REFERENCE_H, None).with_label(line);
        frame.set_frame(FrameType::FlatBox);
        frame.set_color(Color::White);
        frame.set_label_color(Color::Black);
        frame.set_label_font(font);
        frame.set_label_size(TEXT_SIZE);
        frame.set_align(Align::Left | Align::Inside);
        references.push(frame);
    }
    window.end();
    Scene {
        window,
        display,
        references,
        chat,
        chat_whole,
    }
}

/// A white `TextDisplay` showing `lines`, each a list of pieces in their
/// own style, as the programs style theirs.
fn styled_display((x, y, w, h): (i32, i32, i32, i32), lines: &[Vec<(&str, Font)>]) -> TextDisplay {
    let mut text = String::new();
    let mut styles = String::new();
    let mut table = Vec::new();
    for pieces in lines {
        for &(piece, font) in pieces {
            let style = (b'A' + table.len() as u8) as char;
            table.push(StyleTableEntry {
                color: Color::Black,
                font,
                size: TEXT_SIZE,
            });
            text.push_str(piece);
            styles.extend(std::iter::repeat_n(style, piece.len()));
        }
        text.push('\n');
        styles.push('A');
    }
    let mut display = TextDisplay::new(x, y, w, h, None);
    display.set_frame(FrameType::FlatBox);
    display.set_color(Color::White);
    display.set_scrollbar_size(-1);
    let mut buffer = TextBuffer::default();
    buffer.set_text(&text);
    display.set_buffer(buffer);
    let mut style_buffer = TextBuffer::default();
    style_buffer.set_text(&styles);
    display.set_highlight_data(style_buffer, table);
    display
}

/// Lets the window map and draw.
fn settle(window: &Window) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !window.shown() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the window"
        );
        let _ = app::wait_for(0.01);
    }
    let quiet = Instant::now() + Duration::from_millis(300);
    while Instant::now() < quiet {
        let _ = app::wait_for(0.01);
    }
}

/// The byte position where sample `n` starts in the display's buffer.
fn line_start(n: usize) -> i32 {
    SAMPLES[..n].iter().map(|(l, _)| l.len() as i32 + 1).sum()
}

/// Rows `top..bottom` of sample `n`'s line box in the display.
fn line_box(scene: &Scene, n: usize) -> (i32, i32) {
    let top = scene.display.position_to_xy(line_start(n)).1;
    let bottom = scene.display.position_to_xy(line_start(n + 1)).1;
    assert!(bottom > top, "line {n} has a box ({top}..{bottom})");
    (top, bottom)
}

/// The columns of the display's text area.
fn text_columns(scene: &Scene) -> (i32, i32) {
    (
        scene.display.x() + 2,
        scene.display.x() + scene.display.w() - 2,
    )
}

fn every_line_is_drawn_whole(scene: &Scene, shot: &Shot) {
    let columns = text_columns(scene);
    for (n, (line, font)) in SAMPLES.iter().enumerate() {
        let in_display = shot.ink(columns, line_box(scene, n));
        let r = &scene.references[n];
        let in_label = shot.ink(columns, (r.y(), r.y() + r.h()));
        let (Some(shown), Some(whole)) = (in_display, in_label) else {
            panic!("{line:?} ({font:?}) drew no ink: {in_display:?} / {in_label:?}");
        };
        assert_eq!(
            shown.height(),
            whole.height(),
            "{line:?} ({font:?}) is clipped in the text display: {} of its {} rows of ink \
             are shown in its line box {:?}",
            shown.height(),
            whole.height(),
            line_box(scene, n),
        );
    }
}

fn latin_sits_level_beside_cjk(scene: &Scene, shot: &Shot) {
    let word = "joined";
    let baseline_of = |n: usize| {
        let (line, _) = SAMPLES[n];
        let at = line.find(word).expect("the sample has the word") as i32;
        let start = scene.display.position_to_xy(line_start(n) + at).0;
        let end = start + (word.len() as i32) * TEXT_SIZE;
        let (top, bottom) = line_box(scene, n);
        let ink = shot
            .ink((start, end.min(text_columns(scene).1)), (top, bottom))
            .unwrap_or_else(|| panic!("{word:?} in {line:?} drew no ink"));
        (ink.top - top, ink.bottom - top)
    };
    let plain = baseline_of(0);
    let mixed = baseline_of(1);
    assert_eq!(
        mixed, plain,
        "{word:?} beside CJK spans rows {mixed:?} of its line box; on its own, rows {plain:?}"
    );
}

/// The ink of the pieces of chat line `n` in `display`: the sender's name
/// and the message, each within its own columns of the line box.
fn chat_ink(display: &TextDisplay, shot: &Shot, n: usize) -> (Ink, Ink) {
    let start: i32 = CHAT[..n]
        .iter()
        .map(|(m, _)| (SENDER.len() + m.len()) as i32 + 1)
        .sum();
    let split = start + SENDER.len() as i32;
    let end = split + CHAT[n].0.len() as i32;
    let top = display.position_to_xy(start).1;
    let bottom = display.position_to_xy(end + 1).1;
    let x = |pos: i32| display.position_to_xy(pos).0;
    let name = shot.ink((x(start), x(split) - 2), (top, bottom));
    let message = shot.ink((x(split), x(end)), (top, bottom));
    match (name, message) {
        (Some(name), Some(message)) => (name, message),
        other => panic!("chat line {:?} drew no ink: {other:?}", CHAT[n].0),
    }
}

fn messages_sit_on_the_name_baseline(scene: &Scene, shot: &Shot) {
    for (n, &(message, level)) in CHAT.iter().enumerate() {
        let (name, text) = chat_ink(&scene.chat, shot, n);
        let (whole_name, whole_text) = chat_ink(&scene.chat_whole, shot, n);
        assert_eq!(
            text.height(),
            whole_text.height(),
            "{message:?} after a bold name shows {} rows of ink; in one piece of text, {}",
            text.height(),
            whole_text.height(),
        );
        if level == Level::OnBaseline {
            let pieces = (text.top - name.bottom, text.bottom - name.bottom);
            let whole = (
                whole_text.top - whole_name.bottom,
                whole_text.bottom - whole_name.bottom,
            );
            assert_eq!(
                pieces, whole,
                "{message:?} after a bold name spans rows {pieces:?} from the name's baseline; \
                 in one piece of text, rows {whole:?}"
            );
        }
    }
}

/// The focus form, shown in the programs' look.
fn build_form() -> Form {
    let window = Window::new(40, 40, 360, 320, "focus look");
    let field = Input::new(10, 10, 200, 30, None);
    let button = Button::new(220, 10, 120, 30, "Connect");
    let mut table = TableRow::new(10, 50, 330, 150, None);
    table.end();
    hubchat::gui::one_column_table(&mut table);
    table.set_rows(3);
    table.set_row_height_all(40);
    table.draw_cell(|_, context, row, _, x, y, w, h| {
        if context == TableContext::Cell {
            fltk::draw::draw_rect_fill(x, y, w, h, hubchat::gui::PANEL);
            fltk::draw::set_draw_color(Color::Black);
            fltk::draw::set_font(Font::Helvetica, TEXT_SIZE);
            fltk::draw::draw_text2(&format!("client {row}"), x + 8, y, w, h, Align::Left);
        }
    });
    let mut log = TextDisplay::new(10, 210, 330, 100, None);
    let mut buffer = TextBuffer::default();
    buffer.set_text("listening");
    log.set_buffer(buffer);
    hubchat::gui::mark_focus(&mut log);
    window.end();
    Form {
        window,
        field,
        button,
        table,
        log,
    }
}

/// Gives `widget` the keyboard focus and returns the window's pixels once
/// drawn.
fn focused_look<W: WidgetExt>(form: &mut Form, widget: &W) -> Shot {
    app::set_focus(widget);
    form.window.redraw();
    settle(&form.window);
    Shot::take(&mut form.window)
}

/// Where the look of `widget` changes when it takes the focus from the
/// field: (column, row) pairs relative to the widget.
fn focus_mark<W: WidgetExt>(form: &mut Form, widget: &W) -> Vec<(i32, i32)> {
    let field = form.field.clone();
    let before = focused_look(form, &field);
    let after = focused_look(form, widget);
    let pixel = |shot: &Shot, x: i32, y: i32| {
        let i = ((y * shot.width + x) * 3) as usize;
        shot.rgb[i..i + 3].to_vec()
    };
    let mut changed = Vec::new();
    for y in 0..widget.h() {
        for x in 0..widget.w() {
            let (wx, wy) = (widget.x() + x, widget.y() + y);
            if pixel(&before, wx, wy) != pixel(&after, wx, wy) {
                changed.push((x, y));
            }
        }
    }
    changed
}

/// Asserts that `widget` shows a mark when focused, and only along its
/// inner edge (the content inside is left as it was).
fn assert_focus_mark<W: WidgetExt>(form: &mut Form, widget: &W, what: &str) {
    let mark = focus_mark(form, widget);
    assert!(
        !mark.is_empty(),
        "the focused {what} looks the same as unfocused"
    );
    let (w, h) = (widget.w(), widget.h());
    let off_edge: Vec<_> = mark
        .iter()
        .filter(|&&(x, y)| x.min(w - 1 - x).min(y).min(h - 1 - y) > 4)
        .collect();
    assert!(
        off_edge.is_empty(),
        "the {what}'s focus mark is not along its edge: {} pixels inside, first {:?}",
        off_edge.len(),
        off_edge.first()
    );
}

fn button_shows_focus(form: &mut Form) {
    let button = form.button.clone();
    assert_focus_mark(form, &button, "button");
}

fn table_shows_focus(form: &mut Form) {
    let table = form.table.clone();
    assert_focus_mark(form, &table, "table");
}

fn text_display_shows_focus(form: &mut Form) {
    let log = form.log.clone();
    assert_focus_mark(form, &log, "text display");
}

/// Presses Tab on the X display, as a user would, with the pointer in the
/// window (without a window manager the keyboard follows the pointer).
fn press_tab(form: &Form) {
    let (x, y) = (
        (form.window.x() + 5).to_string(),
        (form.window.y() + 5).to_string(),
    );
    for args in [&["mousemove", &x, &y][..], &["key", "Tab"]] {
        let status = std::process::Command::new("xdotool")
            .args(args)
            .status()
            .expect("xdotool runs (scripts/install-deps.sh --test installs it)");
        assert!(status.success(), "xdotool {args:?} failed");
    }
    settle(&form.window);
}

/// Whether `widget` has the keyboard focus.
fn has_focus<W: WidgetExt>(widget: &W) -> bool {
    app::focus().is_some_and(|f| f.as_widget_ptr() == widget.as_widget_ptr())
}

fn tab_reaches_every_control(form: &mut Form) {
    let field = form.field.clone();
    app::set_focus(&field);
    settle(&form.window);
    press_tab(form);
    assert!(
        has_focus(&form.button),
        "Tab from the field did not reach the button"
    );
    press_tab(form);
    assert!(
        has_focus(&form.table),
        "Tab from the button did not reach the table"
    );
    press_tab(form);
    assert!(
        has_focus(&form.log),
        "Tab from the table did not reach the text display"
    );
}
