//! What both programs share: the wire protocol and the rules it carries.

pub mod avatar;
pub mod color;
pub mod connection;
pub mod frame;
pub mod netaddr;
pub mod packet;
pub mod profile;
pub mod settings;
