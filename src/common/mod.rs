//! What both programs share: the wire protocol and the rules it carries.

pub mod avatar;
pub mod connection;
pub mod frame;
pub mod packet;
pub mod profile;
