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
use fltk::enums::{Align, Color, Font, FrameType};
use fltk::frame::Frame;
use fltk::prelude::*;
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

/// Where the samples were drawn.
struct Scene {
    window: Window,
    display: TextDisplay,
    references: Vec<Frame>,
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
    let mut scene = build_scene();
    scene.window.show();
    settle(&scene.window);
    let shot = Shot::take(&mut scene.window);
    if let Ok(path) = std::env::var("HUBCHAT_TEXT_LOOK_SHOT") {
        shot.save(&path);
    }

    let checks: [(&str, Check); 2] = [
        (
            "no line of a text display is clipped, whatever scripts it mixes",
            every_line_is_drawn_whole,
        ),
        (
            "latin words sit on the same baseline beside CJK as on their own",
            latin_sits_level_beside_cjk,
        ),
    ];
    for (name, check) in checks {
        print!("test {name} ... ");
        check(&scene, &shot);
        println!("ok");
    }
    println!(
        "test result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out",
        checks.len()
    );
}

/// A white window: the samples in one styled `TextDisplay` as the programs
/// build theirs, then each sample again as a roomy label.
fn build_scene() -> Scene {
    const WIDTH: i32 = 560;
    const REFERENCE_H: i32 = 48;
    let display_h = SAMPLES.len() as i32 * 26 + 8;
    let height = 20 + display_h + SAMPLES.len() as i32 * REFERENCE_H;
    let mut window = Window::new(40, 40, WIDTH + 20, height, "text look");
    window.set_color(Color::White);

    let mut text = String::new();
    let mut styles = String::new();
    for (i, (line, _)) in SAMPLES.iter().enumerate() {
        text.push_str(line);
        text.push('\n');
        let style = (b'A' + i as u8) as char;
        styles.extend(std::iter::repeat_n(style, line.len() + 1));
    }
    let table: Vec<StyleTableEntry> = SAMPLES
        .iter()
        .map(|&(_, font)| StyleTableEntry {
            color: Color::Black,
            font,
            size: TEXT_SIZE,
        })
        .collect();
    let mut display = TextDisplay::new(10, 10, WIDTH, display_h, None);
    display.set_frame(FrameType::FlatBox);
    display.set_color(Color::White);
    display.set_scrollbar_size(-1);
    display.set_buffer(TextBuffer::default());
    display.buffer().expect("buffer set").set_text(&text);
    let mut style_buffer = TextBuffer::default();
    style_buffer.set_text(&styles);
    display.set_highlight_data(style_buffer, table);

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
    }
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
