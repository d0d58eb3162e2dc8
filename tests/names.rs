//! Names that pass for another: every look-alike of "alice" a hostile LAN
//! user tried (issue 10) is refused by a real server, with a sentence the
//! person can act on, while names that merely use another script, accents
//! or emoji still join.

mod support;

use hubchat::client::form;
use hubchat::client::model::ClientModel;
use hubchat::common::packet::{ClientPacket, ErrorCode, ServerPacket};
use support::{info, Peer, TestServer};

/// What the server answered a client that asked for `name`: the error code
/// (HubChat clients) or `None` (original clients, told by SERVER CLOSE),
/// and the sentence. Panics if the name was accepted.
fn refusal(server: &TestServer, name: &str, hubchat: bool) -> (Option<ErrorCode>, String) {
    let mut peer = Peer::connect(server.addr);
    assert_eq!(peer.recv(), ServerPacket::InfoRequest);
    peer.send(&ClientPacket::Info(info(name, hubchat)));
    match peer.recv_until_closed().as_slice() {
        [ServerPacket::Error(e)] if hubchat => (Some(e.code), e.message.clone()),
        [ServerPacket::ServerClose { message }] if !hubchat => (None, message.clone()),
        other => panic!("{name:?} was not refused as expected: {other:?}"),
    }
}

/// Refused for the name itself, on both kinds of client, saying `words`.
fn assert_invalid(server: &TestServer, name: &str, words: &str) {
    for hubchat in [true, false] {
        let (code, said) = refusal(server, name, hubchat);
        if hubchat {
            assert_eq!(code, Some(ErrorCode::NameInvalid), "{name:?}: {said}");
        }
        assert!(said.contains(words), "{name:?}: {said}");
    }
}

/// Refused because `holder` is here and looks the same.
fn assert_taken_by(server: &TestServer, name: &str, holder: &str) {
    for hubchat in [true, false] {
        let (code, said) = refusal(server, name, hubchat);
        if hubchat {
            assert_eq!(code, Some(ErrorCode::NameTaken), "{name:?}: {said}");
        }
        assert_eq!(
            said,
            format!("This name looks like \"{holder}\", who is already here. Choose another name."),
            "{name:?}"
        );
    }
}

#[test]
fn a_cyrillic_a_cannot_pass_for_alice() {
    let server = TestServer::start();
    let _alice = Peer::join_original(server.addr, "alice");
    assert_taken_by(&server, "\u{430}lice", "alice");
    assert_taken_by(&server, "\u{410}LICE", "alice");
    assert_eq!(server.client_count(), 1);
}

#[test]
fn fullwidth_letters_cannot_pass_for_alice() {
    let server = TestServer::start();
    let _alice = Peer::join_hubchat(server.addr, "alice");
    assert_taken_by(&server, "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}", "alice");
    assert_eq!(server.client_count(), 1);
}

#[test]
fn capitals_and_digits_for_letters_cannot_pass_for_alice() {
    let server = TestServer::start();
    let _alice = Peer::join_hubchat(server.addr, "alice");
    let (code, said) = refusal(&server, "ALICE", true);
    assert_eq!(code, Some(ErrorCode::NameTaken));
    assert_eq!(
        said,
        "The name \"ALICE\" is already taken. Choose another name."
    );
    assert_taken_by(&server, "a1ice", "alice");
    assert_taken_by(&server, "AIice", "alice"); // a capital i for the l
    assert_eq!(server.client_count(), 1);
}

#[test]
fn alice_with_an_invisible_character_is_refused_naming_it() {
    let server = TestServer::start();
    let _alice = Peer::join_hubchat(server.addr, "alice");
    for (c, shown) in [
        ('\u{200B}', "U+200B"),
        ('\u{200D}', "U+200D"),
        ('\u{2060}', "U+2060"),
        ('\u{FEFF}', "U+FEFF"),
        ('\u{AD}', "U+00AD"),
    ] {
        for name in [format!("alice{c}"), format!("al{c}ice")] {
            assert_invalid(&server, &name, "invisible character");
            assert_invalid(&server, &name, shown);
        }
    }
    // The rule is about the name, not about alice being here.
    let (_, said) = refusal(&TestServer::start(), "bob\u{200B}", true);
    assert!(said.contains("U+200B"), "{said}");
    assert_eq!(server.client_count(), 1);
}

#[test]
fn a_right_to_left_override_cannot_turn_ecila_into_alice() {
    let server = TestServer::start();
    let _alice = Peer::join_hubchat(server.addr, "alice");
    assert_invalid(&server, "\u{202E}ecila", "turns the text around (U+202E)");
    assert_invalid(&server, "\u{2067}ecila\u{2069}", "U+2067");
    assert_invalid(&server, "alice\u{200F}", "U+200F");
}

#[test]
fn names_made_only_of_invisible_characters_or_marks_are_refused() {
    let server = TestServer::start();
    assert_invalid(&server, "\u{200B}\u{200B}\u{200B}", "invisible character");
    assert_invalid(&server, "\u{3164}", "invisible character (U+3164)");
    assert_invalid(&server, "\u{2800}", "invisible character (U+2800)");
    assert_invalid(&server, "alice\u{2800}", "invisible character (U+2800)");
    assert_invalid(&server, "\u{301}\u{302}\u{303}", "starts with an accent");
    assert_invalid(&server, "...", "no letter or digit");
    assert_invalid(&server, "a\u{301}\u{302}\u{303}\u{304}\u{305}", "at most 4");
}

#[test]
fn a_line_separator_or_odd_space_inside_a_name_is_refused() {
    let server = TestServer::start();
    assert_invalid(
        &server,
        "al\u{2028}ice",
        "other than the plain space (U+2028)",
    );
    assert_invalid(&server, "al\u{2029}ice", "U+2029");
    assert_invalid(&server, "ann\u{A0}lee", "U+00A0");
    assert_invalid(&server, "山田\u{3000}太郎", "U+3000");
}

#[test]
fn names_in_other_scripts_accents_and_emoji_still_join_and_talk() {
    let server = TestServer::start();
    let names = [
        "Zoë",
        "李明",
        "🦊 fox",
        "❤️ ann",
        "👩‍💻 dev",
        "محمد",
        "דוד",
        "Иван",
        "Nguyễn Thị Ánh",
    ];
    let mut peers: Vec<Peer> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            if i % 2 == 0 {
                Peer::join_hubchat(server.addr, name)
            } else {
                Peer::join_original(server.addr, name)
            }
        })
        .collect();
    assert_eq!(server.client_count(), names.len());
    let to = peers[1].id.clone();
    peers[0].message(&to, "hello");
    let from = peers[0].id.clone();
    loop {
        match peers[1].recv() {
            ServerPacket::AllClients(_) => continue,
            ServerPacket::Message { from: f, text, .. } => {
                assert_eq!((f, text), (from, "hello\n".to_string()));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_look_alike_name_is_free_once_its_holder_leaves_and_then_holds_it() {
    let server = TestServer::start();
    let alice = Peer::join_hubchat(server.addr, "alice");
    assert_taken_by(&server, "\u{430}lice", "alice");
    drop(alice);
    server.wait_for_count(0);
    let _impostor = Peer::join_hubchat(server.addr, "\u{430}lice");
    // Now the real alice is the one who looks like someone already here.
    assert_taken_by(&server, "alice", "\u{430}lice");
}

#[test]
fn the_clients_form_refuses_the_same_names_before_connecting() {
    for name in ["alice\u{200B}", "\u{202E}ecila", "al\u{2028}ice", "\u{301}"] {
        assert!(form::check("127.0.0.1", "5050", name).is_err(), "{name:?}");
    }
    assert!(form::check("127.0.0.1", "5050", "🦊 fox").is_ok());
}

#[test]
fn conversations_of_look_alike_names_share_one_key_and_others_do_not() {
    let alice = ClientModel::key("alice");
    assert_eq!(ClientModel::key("ALICE"), alice);
    assert_eq!(ClientModel::key("\u{430}lice"), alice);
    assert_eq!(
        ClientModel::key("\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}"),
        alice
    );
    let others = ["bob", "Zoë", "Zoe", "李明", "🦊 fox", "Иван", "alicia"];
    for name in others {
        assert_ne!(ClientModel::key(name), alice, "{name}");
    }
    let mut keys: Vec<String> = others.iter().map(|n| ClientModel::key(n)).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), others.len(), "distinct names, distinct keys");
}
