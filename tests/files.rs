//! Sending files (issue 15), against a real server on port 0: real client
//! sessions on both ends, or a raw peer where a test needs to misbehave.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use hubchat::client::files::{FileEvent, Recipient, TransferKey};
use hubchat::client::{Session, SessionEvent};
use hubchat::common::file_packet::{CancelReason, FileMsg, FilePacket, Offer, WINDOW};
use hubchat::common::incoming::sha256;
use hubchat::common::packet::{ClientPacket, ServerPacket};
use support::{client_config, join, new_identity, Peer, TestServer, PATIENCE};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hubchat-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Bytes that no two offsets share by accident, so a chunk out of place
/// shows.
fn content(len: usize) -> Vec<u8> {
    let mut seed = 0x2545_f491_u32;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as u8
        })
        .collect()
}

struct Person {
    session: Session,
    events: Receiver<SessionEvent>,
    downloads: PathBuf,
    /// A folder of this person's own: the files they send, and their
    /// Downloads; deleted with them, so runs leave nothing in /tmp.
    scratch: PathBuf,
}

impl Drop for Person {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

fn person(server: &TestServer, name: &str) -> Person {
    let (config, _) = client_config(server.addr, name, &new_identity());
    let (session, events) = join(&config).expect("joins");
    static PEOPLE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PEOPLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = temp_dir(&format!("{name}-{n}"));
    let downloads = scratch.join("Downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    session
        .files()
        .expect("a HubChat server passes files on")
        .set_downloads(downloads.clone());
    Person {
        session,
        events,
        downloads,
        scratch,
    }
}

impl Person {
    fn files(&self) -> &hubchat::client::files::Files {
        self.session.files().unwrap()
    }

    /// The next file event that `pick` takes, skipping everything else.
    fn file_event<T>(&self, what: &str, pick: impl Fn(FileEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE * 3;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(SessionEvent::File(e)) => {
                    if let Some(found) = pick(e) {
                        return found;
                    }
                }
                Ok(_) => {}
                Err(_) => panic!("no {what}"),
            }
        }
    }

    fn offered(&self) -> (TransferKey, String, u64) {
        self.file_event("offer", |e| match e {
            FileEvent::Offered {
                key, name, size, ..
            } => Some((key, name, size)),
            _ => None,
        })
    }

    fn finished(&self) -> Option<PathBuf> {
        self.file_event("finished transfer", |e| match e {
            FileEvent::Finished { path, .. } => Some(path),
            FileEvent::Ended { message, .. } => panic!("the transfer ended: {message}"),
            _ => None,
        })
    }

    fn ended(&self) -> (CancelReason, String) {
        self.file_event("end of the transfer", |e| match e {
            FileEvent::Ended {
                reason, message, ..
            } => Some((reason, message)),
            FileEvent::Finished { .. } => panic!("the transfer finished"),
            _ => None,
        })
    }

    fn progress(&self) -> u64 {
        self.file_event("progress", |e| match e {
            FileEvent::Progress { done, .. } if done > 0 => Some(done),
            _ => None,
        })
    }

    fn id(&self) -> String {
        self.session.id.clone()
    }
}

/// What is in a folder, by name.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

impl Person {
    /// A file to send, `name` holding `bytes`.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.scratch.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

#[test]
fn a_file_arrives_whole_checked_and_under_its_own_name() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    let bytes = content(3 << 20);
    let source = alice.file("holiday report.pdf", &bytes);

    alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .expect("offered");
    let (key, name, size) = bob.offered();
    assert_eq!(
        (name.as_str(), size),
        ("holiday report.pdf", bytes.len() as u64)
    );
    assert_eq!(key.peer, alice.id());
    bob.files()
        .accept(&key.peer, &key.transfer)
        .expect("accepted");

    let saved = bob.finished().expect("the receiver knows where it is");
    assert_eq!(saved, bob.downloads.join("holiday report.pdf"));
    assert_eq!(std::fs::read(&saved).unwrap(), bytes);
    assert_eq!(listing(&bob.downloads), vec!["holiday report.pdf"]);
    assert_eq!(alice.finished(), None, "the sender hears it was saved");

    // The same file again lands beside the first, never over it.
    alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .unwrap();
    let (key, _, _) = bob.offered();
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    assert_eq!(
        bob.finished(),
        Some(bob.downloads.join("holiday report (2).pdf"))
    );
}

#[test]
fn an_empty_file_is_sent_too() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    let source = alice.file("empty.txt", b"");
    alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .unwrap();
    let (key, _, size) = bob.offered();
    assert_eq!(size, 0);
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    let saved = bob.finished().unwrap();
    assert_eq!(std::fs::read(saved).unwrap(), b"");
}

#[test]
fn a_declined_offer_tells_the_sender_and_saves_nothing() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    let source = alice.file("notes.txt", b"hello");
    alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .unwrap();
    let (key, _, _) = bob.offered();
    bob.files().decline(&key.peer, &key.transfer);
    let (reason, _) = alice.ended();
    assert_eq!(reason, CancelReason::Declined);
    assert!(listing(&bob.downloads).is_empty());
}

/// A transfer large enough to be caught in the middle: 2 GB, of which
/// the source holds no blocks on disk (a sparse file).
fn started(alice: &Person, bob: &Person) -> TransferKey {
    let source = alice.scratch.join("big.bin");
    std::fs::File::create(&source)
        .and_then(|f| f.set_len(2_000_000_000))
        .unwrap();
    alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .unwrap();
    let (key, _, _) = bob.offered();
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    bob.progress();
    key
}

#[test]
fn the_sender_can_cancel_and_the_receiver_is_told_and_keeps_nothing() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    let key = started(&alice, &bob);
    alice.files().cancel(&TransferKey {
        transfer: key.transfer.clone(),
        peer: bob.id(),
        outgoing: true,
    });
    let (reason, message) = bob.ended();
    assert_eq!(reason, CancelReason::Cancelled);
    assert!(message.contains("sender cancelled"), "{message}");
    assert!(
        listing(&bob.downloads).is_empty(),
        "no partial file is left"
    );
}

#[test]
fn the_receiver_can_cancel_and_the_sender_is_told() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    let key = started(&alice, &bob);
    bob.files().cancel(&key);
    let (reason, message) = alice.ended();
    assert_eq!(reason, CancelReason::Cancelled);
    assert!(message.contains("receiver cancelled"), "{message}");
    assert!(
        listing(&bob.downloads).is_empty(),
        "no partial file is left"
    );
    // Both can still talk.
    alice.session.send(&bob.id(), "still here?");
}

/// A raw client "bob" that alice offers a file of `size` bytes and that
/// accepts it with HubChat's window: its socket and the transfer's id.
fn raw_receiver(server: &TestServer, alice: &Person, size: usize) -> (Peer, String) {
    let source = alice.file("big.bin", &content(size));
    let mut bob = Peer::join_hubchat(server.addr, "bob");
    alice
        .files()
        .offer(Recipient::Client(bob.id.clone()), &source)
        .unwrap();
    let transfer = match bob.recv() {
        ServerPacket::File(FilePacket { transfer, .. }) => transfer,
        other => panic!("expected the offer, got {other:?}"),
    };
    bob.send(&ClientPacket::File(FilePacket {
        transfer: transfer.clone(),
        peer: Some(alice.id()),
        what: FileMsg::Accept { window: WINDOW },
    }));
    (bob, transfer)
}

#[test]
fn a_receiver_killed_mid_transfer_fails_it_with_a_sentence() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let (mut bob, _) = raw_receiver(&server, &alice, 50 << 20);
    // Its first chunk arrives; then the program dies without a word.
    assert!(matches!(bob.recv(), ServerPacket::File(_)));
    drop(bob);
    let (reason, message) = alice.ended();
    assert_eq!(reason, CancelReason::Failed);
    assert!(message.contains("bob left"), "{message}");
}

#[test]
fn a_receiver_that_stops_reading_holds_its_sender_to_the_window() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let (mut bob, transfer) = raw_receiver(&server, &alice, 64 << 20);
    // Bob reads nothing for a while, and acknowledges nothing.
    std::thread::sleep(Duration::from_secs(2));
    let queued = server.server.as_ref().unwrap().queued_bytes();
    assert!(
        queued <= WINDOW as usize + 4096,
        "the server holds {queued} bytes for a receiver that gave a window of {WINDOW}"
    );
    // Whatever reached him is within the window.
    let mut got = 0u64;
    bob.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    while let Ok(Some(body)) = bob.reader.read_frame() {
        if let Ok(ServerPacket::File(FilePacket {
            what: FileMsg::Data { bytes, .. },
            ..
        })) = ServerPacket::decode(body)
        {
            got += bytes.len() as u64;
        }
    }
    assert!(got > 0, "the sender started");
    assert!(got <= WINDOW, "{got} bytes passed a window of {WINDOW}");
    // Acknowledged, the sender goes on.
    bob.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    bob.send(&ClientPacket::File(FilePacket {
        transfer,
        peer: Some(alice.id()),
        what: FileMsg::Ack { received: got },
    }));
    match bob.recv() {
        ServerPacket::File(FilePacket {
            what: FileMsg::Data { offset, .. },
            ..
        }) => assert_eq!(offset, got),
        other => panic!("expected more of the file, got {other:?}"),
    }
}

/// A raw sender's offer of `bytes`, accepted by a real receiver.
fn raw_offer(server: &TestServer, name: &str, size: u64) -> (Peer, Person, TransferKey) {
    raw_offer_to(server, "bob", name, size)
}

fn raw_offer_to(
    server: &TestServer,
    receiver: &str,
    name: &str,
    size: u64,
) -> (Peer, Person, TransferKey) {
    let bob = person(server, receiver);
    let mut mallory = Peer::join_hubchat(server.addr, "mallory");
    // Bob's roster entry reaches mallory first; then the offer goes out.
    mallory.send(&ClientPacket::File(FilePacket {
        transfer: "t1".into(),
        peer: Some(bob.id()),
        what: FileMsg::Offer(Offer {
            name: name.into(),
            size,
            thumbnail: None,
            room: false,
        }),
    }));
    let (key, _, _) = bob.offered();
    (mallory, bob, key)
}

fn accepted(mallory: &mut Peer) {
    loop {
        if let ServerPacket::File(FilePacket {
            what: FileMsg::Accept { .. },
            ..
        }) = mallory.recv()
        {
            return;
        }
    }
}

fn chunk(mallory: &Peer, to: &str, offset: u64, bytes: &[u8]) -> ClientPacket {
    let _ = mallory;
    ClientPacket::File(FilePacket {
        transfer: "t1".into(),
        peer: Some(to.into()),
        what: FileMsg::Data {
            offset,
            bytes: bytes.to_vec(),
        },
    })
}

#[test]
fn a_corrupted_chunk_is_caught_and_the_partial_file_deleted() {
    let server = TestServer::start();
    let bytes = content(300_000);
    let (mut mallory, bob, key) = raw_offer(&server, "photo.jpg", bytes.len() as u64);
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    accepted(&mut mallory);
    let mut damaged = bytes.clone();
    damaged[123_456] ^= 0x40;
    let (first, second) = damaged.split_at(200_000);
    let bob_id = bob.id();
    mallory.send(&chunk(&mallory, &bob_id, 0, first));
    mallory.send(&chunk(&mallory, &bob_id, first.len() as u64, second));
    mallory.send(&ClientPacket::File(FilePacket {
        transfer: "t1".into(),
        peer: Some(bob_id),
        what: FileMsg::Done {
            sha256: sha256(&bytes),
        },
    }));
    let (reason, message) = bob.ended();
    assert_eq!(reason, CancelReason::Failed);
    assert!(message.contains("damaged"), "{message}");
    assert!(
        listing(&bob.downloads).is_empty(),
        "{:?}",
        listing(&bob.downloads)
    );
    // The sender hears why.
    loop {
        if let ServerPacket::File(FilePacket {
            what: FileMsg::Cancel { message, .. },
            ..
        }) = mallory.recv()
        {
            assert!(message.unwrap_or_default().contains("damaged"));
            break;
        }
    }
}

#[test]
fn hostile_file_names_are_saved_harmlessly_inside_downloads() {
    let server = TestServer::start();
    for (i, (offered, saved)) in [
        ("../../.bashrc", ".bashrc"),
        ("C:\\Windows\\System32\\evil.dll", "evil.dll"),
        ("CON.txt", "_CON.txt"),
        ("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
        ("tab\tand\nnewline.txt", "tabandnewline.txt"),
    ]
    .into_iter()
    .enumerate()
    {
        let (mut mallory, bob, key) = raw_offer_to(&server, &format!("bob{i}"), offered, 3);
        bob.files().accept(&key.peer, &key.transfer).unwrap();
        accepted(&mut mallory);
        let bob_id = bob.id();
        mallory.send(&chunk(&mallory, &bob_id, 0, b"abc"));
        mallory.send(&ClientPacket::File(FilePacket {
            transfer: "t1".into(),
            peer: Some(bob_id),
            what: FileMsg::Done {
                sha256: sha256(b"abc"),
            },
        }));
        let path = bob.finished().unwrap();
        assert_eq!(path, bob.downloads.join(saved), "offered as {offered:?}");
        assert_eq!(listing(&bob.downloads), vec![saved.to_string()]);
        drop(bob); // its session says goodbye as it goes
        drop(mallory);
        server.wait_for_count(0);
    }
}

#[test]
fn offers_over_the_servers_limit_are_refused_with_the_limit() {
    let server = TestServer::start_with(|c| c.max_file = 1000);
    let alice = person(&server, "alice");
    let bob = person(&server, "bob");
    assert_eq!(alice.files().max_file(), 1000, "told in WELCOME");
    let source = alice.file("big.bin", &content(2000));
    let refused = alice
        .files()
        .offer(Recipient::Client(bob.id()), &source)
        .expect_err("over the limit");
    assert!(refused.0.contains("at most 1000 bytes"), "{}", refused.0);

    // A client that offers it anyway is refused by the server.
    let mut mallory = Peer::join_hubchat(server.addr, "mallory");
    mallory.send(&ClientPacket::File(FilePacket {
        transfer: "t1".into(),
        peer: Some(bob.id()),
        what: FileMsg::Offer(Offer {
            name: "big.bin".into(),
            size: 1001,
            thumbnail: None,
            room: false,
        }),
    }));
    loop {
        match mallory.recv() {
            ServerPacket::File(FilePacket {
                peer: None,
                what: FileMsg::Cancel { message, .. },
                ..
            }) => {
                assert!(message.unwrap_or_default().contains("at most 1000 bytes"));
                break;
            }
            ServerPacket::File(other) => panic!("unexpected {other:?}"),
            _ => {}
        }
    }
    bob.events
        .try_iter()
        .for_each(|e| assert!(!matches!(e, SessionEvent::File(_)), "{e:?}"));
}

#[test]
fn an_original_client_is_never_offered_a_file() {
    let server = TestServer::start();
    let alice = person(&server, "alice");
    let mut old = Peer::join_original(server.addr, "oldtimer");
    let bob = person(&server, "bob");
    let source = alice.file("minutes.txt", b"all of it");

    // To the room: bob is offered it, the original client hears nothing.
    alice.files().offer(Recipient::Everyone, &source).unwrap();
    let (key, _, _) = bob.offered();
    assert_eq!(key.peer, alice.id());
    // Offered straight to the original client: refused, with why.
    alice
        .files()
        .offer(Recipient::Client(old.id.clone()), &source)
        .unwrap();
    let message = alice.file_event("refusal", |e| match e {
        FileEvent::Refused { message, .. } => Some(message),
        _ => None,
    });
    assert!(message.contains("cannot receive files"), "{message}");
    // The roster says who can take files.
    old.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut frames = 0;
    while let Ok(Some(body)) = old.reader.read_frame() {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains("FILE"), "an original client got {text}");
        assert!(!text.contains("\"files\""), "an original client got {text}");
        frames += 1;
    }
    assert!(frames >= 1, "it heard of bob joining");
}

#[test]
fn a_sender_that_oversteps_the_window_loses_the_transfer() {
    let server = TestServer::start();
    let (mut mallory, bob, key) = raw_offer(&server, "flood.bin", 10 << 20);
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    accepted(&mut mallory);
    // One chunk larger than the window bob gave: over it whatever bob has
    // acknowledged.
    let block = vec![7u8; WINDOW as usize + 1];
    let bob_id = bob.id();
    mallory.send(&chunk(&mallory, &bob_id, 0, &block));
    let (reason, message) = bob.ended();
    assert_eq!(reason, CancelReason::Failed);
    assert!(
        message.contains("more than the receiver had room for"),
        "{message}"
    );
    assert!(listing(&bob.downloads).is_empty());
}

#[test]
fn a_server_whose_owner_passes_no_files_offers_its_clients_none() {
    let server = TestServer::start_with(|c| c.max_file = 0);
    let (config, _) = client_config(server.addr, "alice", &new_identity());
    let (session, _events) = join(&config).expect("joins");
    assert!(session.files().is_none(), "no files without a limit told");
    // One that offers all the same is refused.
    let bob = Peer::join_hubchat(server.addr, "bob");
    let mut mallory = Peer::join_hubchat(server.addr, "mallory");
    mallory.send(&ClientPacket::File(FilePacket {
        transfer: "t1".into(),
        peer: Some(bob.id.clone()),
        what: FileMsg::Offer(Offer {
            name: "a.txt".into(),
            size: 1,
            thumbnail: None,
            room: false,
        }),
    }));
    loop {
        if let ServerPacket::File(FilePacket {
            what: FileMsg::Cancel { message, .. },
            ..
        }) = mallory.recv()
        {
            assert_eq!(
                message.as_deref(),
                Some("This server does not pass files on.")
            );
            break;
        }
    }
}

#[test]
fn a_sender_gone_mid_transfer_fails_it_and_leaves_no_partial_file() {
    let server = TestServer::start();
    let (mut mallory, bob, key) = raw_offer(&server, "half.bin", 1 << 20);
    bob.files().accept(&key.peer, &key.transfer).unwrap();
    accepted(&mut mallory);
    let bob_id = bob.id();
    mallory.send(&chunk(&mallory, &bob_id, 0, &content(100_000)));
    // It arrives under a partial name.
    let part = bob.downloads.join("half.bin.part");
    let deadline = Instant::now() + PATIENCE;
    while std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < 100_000 {
        assert!(Instant::now() < deadline, "{:?}", listing(&bob.downloads));
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(mallory); // its program dies without a word
    let (reason, message) = bob.ended();
    assert_eq!(reason, CancelReason::Failed);
    assert!(message.contains("mallory left"), "{message}");
    assert!(
        listing(&bob.downloads).is_empty(),
        "{:?}",
        listing(&bob.downloads)
    );
}
