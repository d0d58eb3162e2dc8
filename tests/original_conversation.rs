//! A complete conversation between two original clients and a HubChat
//! server, byte for byte as `shared/seed-protocol.md` describes it: what an
//! original client sends is accepted, and what it receives is exactly what
//! the original server would send (with the documented one-entry rosters).

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
