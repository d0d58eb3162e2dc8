//! Files in the conversation windows (issue 15), under Xvfb: two client
//! windows and an original client on a real server. An offer opens the
//! receiver's window with Accept and Decline (and a thumbnail for a
//! picture), progress shows on both sides, a finished file has Open and
//! Show in folder; a dropped file and a pasted picture are offered too,
//! the Everyone room takes files, and for an original partner "Send
//! file..." is greyed with the reason.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fltk::app;
use fltk::prelude::*;
use hubchat::client::file_input::Pasted;
use hubchat::client::file_rows::FileState;
use hubchat::client::gui::file_strip::FileAction;
use hubchat::client::gui::{ClientApp, Msg};
use hubchat::client::model::EVERYONE_KEY;
use support::gui::xdo;
use support::{Peer, TestServer};

fn main() {
    if !hubchat::gui::display_available() {
        println!("skipped: no display; run under xvfb-run (scripts/test.sh does)");
        println!("test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out");
        return;
    }
    let config = std::env::temp_dir().join(format!("hubchat-files-window-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&config);
    std::fs::create_dir_all(&config).unwrap();
    std::env::set_var("HUBCHAT_CONFIG_DIR", &config);
    let _app = app::App::default();
    hubchat::gui::init_look();
    let server = TestServer::start();
    let port = server.addr.port().to_string();
    let mut passed = 0;

    let mut alice = connected("alice", &port, &config);
    let mut bob = connected("bob", &port, &config);
    pump_until(&mut [&mut alice, &mut bob], "both listed", |w| {
        w.iter().all(|a| a.model().contacts.len() == 2)
    });
    let to_bob = open_chat(&mut alice, "bob");

    print!("test a picture offered opens the receiver's window with its thumbnail, Accept and Decline ... ");
    let photo = config.join("beach.png");
    image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x / 3) as u8, (y / 2) as u8, 160])
    })
    .save(&photo)
    .unwrap();
    assert!(alice.chats[&to_bob].send_file.active(), "bob takes files");
    alice.send_file(&to_bob, &photo);
    let from_alice = "alice".to_string();
    pump_until(&mut [&mut alice, &mut bob], "the offer", |w| {
        w[1].chats
            .get("alice")
            .is_some_and(|c| c.files.buttons.iter().any(|(_, l, _)| l == "Accept"))
    });
    let offer = bob.model().conversations[&from_alice].files[0].clone();
    assert_eq!(offer.state, FileState::Offered);
    assert!(
        offer.thumbnail.is_some(),
        "a picture's offer shows a thumbnail"
    );
    let title = offer.title();
    assert!(
        title.starts_with("beach.png, ") && title.ends_with(" KB, from alice"),
        "{title}"
    );
    let transcript = bob.chats[&from_alice].transcript_text();
    assert!(transcript.contains("offers beach.png"), "{transcript}");
    assert!(
        bob.chats[&from_alice].window.shown(),
        "the offer opened the window"
    );
    screenshot(&mut [&mut alice, &mut bob], "client-file-offer.png");
    println!("ok");
    passed += 1;

    print!("test an accepted file arrives, and Open and Show in folder follow ... ");
    click(&mut bob, &from_alice, "Accept");
    // Building the rows again leaves no group open: the next window made
    // would land inside this one.
    assert!(
        fltk::group::Group::try_current().is_none(),
        "a file row left a group open"
    );
    pump_until(&mut [&mut alice, &mut bob], "the file saved", |w| {
        w[1].chats["alice"]
            .files
            .buttons
            .iter()
            .any(|(_, l, _)| l == "Show in folder")
    });
    let saved = config.join("bob-downloads").join("beach.png");
    assert_eq!(
        std::fs::read(&saved).unwrap(),
        std::fs::read(&photo).unwrap()
    );
    pump_until(&mut [&mut alice, &mut bob], "the sender hears", |w| {
        w[0].model().conversations["bob"]
            .files
            .iter()
            .any(|r| r.state == FileState::Saved { path: None })
    });
    screenshot(&mut [&mut alice, &mut bob], "client-file-done.png");
    // Closing the row leaves the transcript's word of it.
    click(&mut bob, &from_alice, "×");
    assert!(bob.model().conversations[&from_alice].files.is_empty());
    assert!(bob.chats[&from_alice]
        .transcript_text()
        .contains("Received beach.png"));
    println!("ok");
    passed += 1;

    print!("test a large file shows progress on both sides, and a cancel reaches the other ... ");
    let big = config.join("video.mkv");
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(1_500_000_000))
        .unwrap();
    alice.send_file(&to_bob, &big);
    pump_until(&mut [&mut alice, &mut bob], "the second offer", |w| {
        w[1].chats["alice"]
            .files
            .buttons
            .iter()
            .any(|(_, l, _)| l == "Accept")
    });
    click(&mut bob, &from_alice, "Accept");
    pump_until(&mut [&mut alice, &mut bob], "progress with a speed", |w| {
        let moving = |a: &ClientApp, key: &str| {
            a.model().conversations[key].files.iter().any(|r| {
                matches!(r.state, FileState::Moving { done } if done > 0)
                    && r.status(Instant::now()).contains("/s")
            })
        };
        moving(w[0], "bob") && moving(w[1], "alice")
    });
    screenshot(&mut [&mut alice, &mut bob], "client-file-progress.png");
    click(&mut alice, &to_bob, "Cancel");
    pump_until(&mut [&mut alice, &mut bob], "the receiver told", |w| {
        w[1].model().conversations["alice"].files.iter().any(|r| {
            matches!(&r.state, FileState::Ended { message } if message.contains("sender cancelled"))
        })
    });
    let left: Vec<_> = std::fs::read_dir(config.join("bob-downloads"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec!["beach.png"], "no partial file is left");
    println!("ok");
    passed += 1;

    print!("test a dropped file and a pasted picture (Ctrl+V) are offered like chosen ones ... ");
    let notes = config.join("notes for bob.txt");
    std::fs::write(&notes, "see you at ten").unwrap();
    let uri = format!("file://{}", notes.display()).replace(' ', "%20");
    alice.act(Msg::Dropped(to_bob.clone(), format!("{uri}\r\n")));
    let pixels = Pasted {
        width: 20,
        height: 10,
        depth: 3,
        data: vec![90; 20 * 10 * 3],
    };
    alice.act(Msg::PastedPicture(to_bob.clone(), pixels));
    pump_until(&mut [&mut alice, &mut bob], "both offers", |w| {
        let rows = &w[1].model().conversations["alice"].files;
        rows.iter().any(|r| r.name == "notes for bob.txt")
            && rows
                .iter()
                .any(|r| r.name.starts_with("Pasted picture ") && r.thumbnail.is_some())
    });
    // A picture really on the clipboard (xclip holds it, as an image
    // viewer would), pasted with Ctrl+V in the box to write in.
    let shot = config.join("shot.png");
    image::RgbImage::from_pixel(64, 48, image::Rgb([30, 120, 200]))
        .save(&shot)
        .unwrap();
    let copied = std::process::Command::new("xclip")
        .args(["-selection", "clipboard", "-t", "image/png", "-i"])
        .arg(&shot)
        .status()
        .expect("xclip (scripts/install-deps.sh --test installs it)");
    assert!(copied.success());
    let pasted_before = pasted_offers(&bob);
    let xid = alice.chats[&to_bob].window.raw_handle().to_string();
    let input = &alice.chats[&to_bob].input;
    let (ix, iy) = (input.x() + 20, input.y() + 20);
    xdo(&mut alice, &["windowraise", &xid]);
    xdo(
        &mut alice,
        &[
            "mousemove",
            "--window",
            &xid,
            &ix.to_string(),
            &iy.to_string(),
            "click",
            "1",
        ],
    );
    xdo(&mut alice, &["key", "ctrl+v"]);
    pump_until(
        &mut [&mut alice, &mut bob],
        "the pasted picture's offer",
        |w| pasted_offers(w[1]) > pasted_before,
    );
    assert_eq!(
        alice.chats[&to_bob].input.value(),
        "",
        "the picture is not also pasted into the box as text"
    );
    alice.act(Msg::Dropped(to_bob.clone(), "just words".into()));
    assert!(alice.model().conversations[&to_bob]
        .lines
        .last()
        .unwrap()
        .text
        .contains("Only files can be dropped"));
    println!("ok");
    passed += 1;

    print!("test the Everyone room takes files ... ");
    alice.act(Msg::Open(0)); // the room is first in the list
    assert!(alice.chats.contains_key(EVERYONE_KEY));
    alice.send_file(EVERYONE_KEY, &notes);
    pump_until(&mut [&mut alice, &mut bob], "the room's offer", |w| {
        w[1].model()
            .conversations
            .get(EVERYONE_KEY)
            .is_some_and(|c| c.files.iter().any(|r| r.state == FileState::Offered))
    });
    println!("ok");
    passed += 1;

    print!("test for an original partner Send file is greyed, with the reason ... ");
    let old = Peer::join_original(server.addr, "oldtimer");
    pump_until(
        &mut [&mut alice, &mut bob],
        "the original client listed",
        |w| w[0].model().contacts.len() == 3,
    );
    let to_old = open_chat(&mut alice, "oldtimer");
    let button = &alice.chats[&to_old].send_file;
    assert!(!button.active(), "greyed for an original partner");
    let tip = button.tooltip().unwrap_or_default();
    assert!(tip.contains("cannot receive files"), "{tip}");
    screenshot(&mut [&mut alice], "client-file-original.png");
    drop(old);
    println!("ok");
    passed += 1;

    alice.act(Msg::Quit);
    bob.act(Msg::Quit);
    let _ = std::fs::remove_dir_all(&config);
    println!("test result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

/// How many pasted pictures `app` has been offered.
fn pasted_offers(app: &ClientApp) -> usize {
    app.model().conversations["alice"]
        .files
        .iter()
        .filter(|r| r.name.starts_with("Pasted picture ") && r.thumbnail.is_some())
        .count()
}

/// A client window connected to the test server as `name`, saving files
/// in a folder of its own.
fn connected(name: &str, port: &str, config: &Path) -> ClientApp {
    let mut app = ClientApp::new();
    app.controller
        .set_downloads(config.join(format!("{name}-downloads")));
    app.host.set_value("127.0.0.1");
    app.port.set_value(port);
    app.name.set_value(name);
    app.window.show();
    app.act(Msg::ConnectDisconnect);
    pump_until(&mut [&mut app], "connected", |w| w[0].model().connected());
    app
}

/// Opens the conversation with `name` from the list; returns its key.
fn open_chat(app: &mut ClientApp, name: &str) -> String {
    let row = app
        .model()
        .rows()
        .iter()
        .position(|(c, _)| c.profile.name == name)
        .unwrap_or_else(|| panic!("{name} listed"));
    app.act(Msg::Open(row));
    let key = hubchat::client::model::ClientModel::key(name);
    assert!(app.chats.contains_key(&key), "a window for {name}");
    key
}

/// Presses the button labelled `label` on a file row of conversation `key`.
fn click(app: &mut ClientApp, key: &str, label: &str) {
    let (transfer, action) = {
        let chat = &app.chats[key];
        let (transfer, _, _) = chat
            .files
            .buttons
            .iter()
            .find(|(_, l, _)| l == label)
            .unwrap_or_else(|| panic!("a {label} button in {key}"));
        let action = match label {
            "Accept" => FileAction::Accept,
            "Decline" => FileAction::Decline,
            "Cancel" => FileAction::Cancel,
            "Open" => FileAction::Open,
            "Show in folder" => FileAction::ShowInFolder,
            _ => FileAction::Dismiss,
        };
        (transfer.clone(), action)
    };
    app.act(Msg::File(key.to_string(), transfer, action));
}

/// Saves the conversation windows side by side to
/// `$HUBCHAT_SCREENSHOTS/name` when that is set (how the README's
/// pictures are taken). Each window is drawn offscreen, as FLTK draws it
/// on screen, so windows overlapping on a display without a window
/// manager do not matter.
fn screenshot(apps: &mut [&mut ClientApp], name: &str) {
    let Some(dir) = std::env::var_os("HUBCHAT_SCREENSHOTS").map(PathBuf::from) else {
        return;
    };
    for _ in 0..10 {
        let _ = app::wait_for(0.02);
        for a in apps.iter_mut() {
            a.pump();
        }
    }
    let mut shots: Vec<image::RgbImage> = Vec::new();
    for a in apps.iter_mut() {
        let mut keys: Vec<String> = a.chats.keys().cloned().collect();
        keys.sort();
        for key in keys {
            let window = &a.chats[&key].window;
            if !window.shown() || !window.visible() {
                continue;
            }
            let (w, h) = (window.w(), window.h());
            let surface = fltk::surface::ImageSurface::new(w, h, false);
            fltk::surface::ImageSurface::push_current(&surface);
            fltk::draw::set_draw_color(fltk::enums::Color::White);
            fltk::draw::draw_rectf(0, 0, w, h);
            surface.draw(window, 0, 0);
            let picture = surface.image().expect("the window drawn");
            fltk::surface::ImageSurface::pop_current();
            let rgb = image::RgbImage::from_raw(
                picture.data_w() as u32,
                picture.data_h() as u32,
                picture.to_rgb_data(),
            )
            .expect("RGB pixels");
            shots.push(rgb);
        }
    }
    let gap = 12;
    let width = shots.iter().map(|s| s.width() + gap).sum::<u32>() - gap;
    let height = shots.iter().map(|s| s.height()).max().unwrap_or(1);
    let mut sheet = image::RgbImage::from_pixel(width, height, image::Rgb([0xc8, 0xcc, 0xd2]));
    let mut x = 0;
    for shot in &shots {
        image::imageops::replace(&mut sheet, shot, x as i64, 0);
        x += shot.width() + gap;
    }
    sheet.save(dir.join(name)).expect("the screenshot saved");
}

fn pump_until(apps: &mut [&mut ClientApp], what: &str, done: impl Fn(&[&mut ClientApp]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done(apps) {
        if Instant::now() >= deadline {
            for a in apps.iter() {
                for (k, c) in &a.model().conversations {
                    let last: Vec<_> = c.lines.iter().rev().take(6).map(|l| &l.text).collect();
                    let rows: Vec<_> = c.files.iter().map(|r| (&r.name, &r.state)).collect();
                    eprintln!("{:?}: {k:?} {last:?} {rows:?}", a.model().me);
                }
            }
            panic!("timed out waiting for {what}");
        }
        let _ = app::wait_for(0.01);
        for a in apps.iter_mut() {
            a.pump();
        }
    }
}
