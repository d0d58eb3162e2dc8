//! A complete conversation between two original clients and a HubChat
//! server, byte for byte as `shared/seed-protocol.md` describes it: what an
//! original client sends is accepted, and what it receives is exactly what
//! the original server would send (with the documented rosters holding only
//! the newcomers).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{wire, TestServer, PATIENCE};

/// An original client's socket, checked byte by byte.
struct OriginalClient {
    stream: TcpStream,
}

impl OriginalClient {
    fn connect(server: &TestServer) -> Self {
        let stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        OriginalClient { stream }
    }

    fn sends(&mut self, body: &str) {
        self.stream.write_all(&wire(body)).unwrap();
    }

    fn receives(&mut self, body: &str) {
        let expected = wire(body);
        let mut got = vec![0u8; expected.len()];
        self.stream.read_exact(&mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected)
        );
    }

    /// The next frame, header and body, as text.
    fn next_frame(&mut self) -> String {
        let mut header = [0u8; 10];
        self.stream.read_exact(&mut header).unwrap();
        let len: usize = String::from_utf8_lossy(&header).trim().parse().unwrap();
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).unwrap();
        String::from_utf8_lossy(&[&header[..], &body].concat()).into_owned()
    }

    fn is_closed(&mut self) {
        let mut rest = Vec::new();
        self.stream.read_to_end(&mut rest).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&rest),
            "",
            "nothing more before the close"
        );
    }
}

#[test]
fn two_original_clients_talk_through_a_hubchat_server_byte_for_byte() {
    let mut server = TestServer::start();
    let mut alice = OriginalClient::connect(&server);
    alice.receives(r#"{"flag": "INFO", "data": "Send your information!"}"#);
    alice.sends(r#"{"flag": "INFO", "data": {"name": "alice", "color": "blue", "image_name": "image_3.png"}}"#);
    alice.receives(
        r#"{"flag": "ALL CLIENTS", "data": {"client0": {"name": "alice", "color": "blue", "image_name": "image_3.png"}}}"#,
    );

    let mut bob = OriginalClient::connect(&server);
    bob.receives(r#"{"flag": "INFO", "data": "Send your information!"}"#);
    bob.sends(r#"{"flag": "INFO", "data": {"name": "bob", "color": "darkcyan", "image_name": "image_25.png"}}"#);
    bob.receives(
        r#"{"flag": "ALL CLIENTS", "data": {"client0": {"name": "alice", "color": "blue", "image_name": "image_3.png"}, "client1": {"name": "bob", "color": "darkcyan", "image_name": "image_25.png"}}}"#,
    );
    alice.receives(
        r#"{"flag": "ALL CLIENTS", "data": {"client1": {"name": "bob", "color": "darkcyan", "image_name": "image_25.png"}}}"#,
    );

    alice
        .sends(r#"{"flag": "MESSAGE", "data": {"message": "hello\n", "partner_name": "client1"}}"#);
    bob.receives(
        r#"{"flag": "MESSAGE", "data": {"message": "hello\n", "partner_name": "client1", "source_client": "client0"}}"#,
    );
    // Non-ASCII is escaped, as the original writes it, in both directions.
    bob.sends(r#"{"flag": "MESSAGE", "data": {"message": "h\u00e9llo \u4f60\u597d\n", "partner_name": "client0"}}"#);
    alice.receives(
        r#"{"flag": "MESSAGE", "data": {"message": "h\u00e9llo \u4f60\u597d\n", "partner_name": "client0", "source_client": "client1"}}"#,
    );

    alice.sends(r#"{"flag": "DISCONNECT", "data": "Please disconnect me!!"}"#);
    alice.is_closed();
    bob.receives(r#"{"flag": "DISCONNECT", "data": "client0"}"#);

    server.stop();
    bob.receives(r#"{"flag": "SERVER CLOSE", "data": {"message": "Server is closing..."}}"#);
    bob.is_closed();
}

/// Two original clients join within moments of each other: the one already
/// in hears of both in one ALL CLIENTS frame, exactly as the original
/// server would send a roster of two (it sends the whole roster; its
/// client adds whom it has not seen).
#[test]
fn newcomers_joining_together_reach_an_original_client_in_one_roster_byte_for_byte() {
    let server = TestServer::start();
    let mut alice = OriginalClient::connect(&server);
    alice.receives(r#"{"flag": "INFO", "data": "Send your information!"}"#);
    alice.sends(r#"{"flag": "INFO", "data": {"name": "alice", "color": "blue", "image_name": "image_3.png"}}"#);
    alice.receives(
        r#"{"flag": "ALL CLIENTS", "data": {"client0": {"name": "alice", "color": "blue", "image_name": "image_3.png"}}}"#,
    );
    let entry = |k: usize, name: &str| {
        format!(
            r#""client{k}": {{"name": "{name}", "color": "plum", "image_name": "image_1.png"}}"#
        )
    };
    let roster = |entries: &[String]| {
        String::from_utf8(wire(&format!(
            r#"{{"flag": "ALL CLIENTS", "data": {{{}}}}}"#,
            entries.join(", ")
        )))
        .unwrap()
    };
    // The two joins are gathered when they land within the same few
    // milliseconds; a machine busy enough to split them gets two more
    // chances. Either way alice gets exactly one of the two forms.
    let mut next = 1;
    // Everyone stays connected to the end: a departure would be news too.
    let mut joined = Vec::new();
    for attempt in 0..3 {
        let names = [format!("bob{attempt}"), format!("carol{attempt}")];
        let mut pair: Vec<OriginalClient> =
            (0..2).map(|_| OriginalClient::connect(&server)).collect();
        for c in &mut pair {
            c.receives(r#"{"flag": "INFO", "data": "Send your information!"}"#);
        }
        for (c, name) in pair.iter_mut().zip(&names) {
            c.sends(&format!(
                r#"{{"flag": "INFO", "data": {{"name": "{name}", "color": "plum", "image_name": "image_1.png"}}}}"#
            ));
        }
        // Whichever INFO the server read first got the lower id.
        let first = alice.next_frame();
        let at = |name: &String| first.find(&format!("\"{name}\"")).unwrap_or(usize::MAX);
        let (x, y) = if at(&names[0]) <= at(&names[1]) {
            (&names[0], &names[1])
        } else {
            (&names[1], &names[0])
        };
        let (a, b) = (entry(next, x), entry(next + 1, y));
        next += 2;
        if first == roster(&[a.clone(), b.clone()]) {
            return;
        }
        assert_eq!(first, roster(&[a]), "one roster each, if not one for both");
        assert_eq!(alice.next_frame(), roster(&[b]));
        joined.extend(pair);
    }
    panic!("three pairs of newcomers joining together never reached alice in one roster");
}
