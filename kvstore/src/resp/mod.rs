//! The RESP2 codec: the [`Frame`] type, an incremental [`Parser`] with
//! [`ParseLimits`], byte-exact encoding ([`Frame::encode`]), and
//! [`RawCommand`], which splits a request into a command name and arguments.
//!
//! The codec is pure: it reads from and writes to buffers that the connection
//! owns, and does no I/O, keeps no global state and iterates no hash map, so
//! it runs unchanged inside the deterministic simulator.
//!
//! A server loop uses it like this: append what the socket delivers to a
//! `BytesMut`, call [`Parser::parse`] until it returns `Ok(None)`, turn each
//! frame into a [`RawCommand`], and [`Frame::encode`] each reply into the
//! outgoing buffer. On a [`ParseError`] or a [`RequestError`], send its
//! `reply()` and close the connection, as Redis does.
//!
//! # Code map
//! - `frame`: [`Frame`] and the reply constructors.
//! - `encode`: [`Frame::encode`].
//! - `parse`: [`Parser`] and [`ParseLimits`]; resumable validation.
//! - `token`: the validated pieces of a pending frame, and how a complete
//!   frame is built from them.
//! - `error`: [`ParseError`], worded like Redis' protocol errors.
//! - `request`: [`RawCommand`] and [`RequestError`].

mod encode;
mod error;
mod frame;
mod parse;
mod request;
mod token;

pub use error::ParseError;
pub use frame::Frame;
pub use parse::{ParseLimits, Parser};
pub use request::{RawCommand, RequestError};
