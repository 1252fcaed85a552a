//! Starting requests: the ordering rules of a connection, its client session, and the
//! futures whose replies come back in request order.
//!
//! The rules (see the module docs of the server for why): a local command starts at once; a
//! read starts when no write is in flight; a write (or a `RAFT.*` change) starts when nothing
//! is in flight. A
//! request that may not start yet waits, and so does everything behind it.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::future::BoxFuture;
use futures::stream::FuturesOrdered;
use futures::{FutureExt, StreamExt};

use super::commands::{Action, Read};
use super::listener::Shared;
use super::local::{self, Client};
use super::reads;
use super::reply::{frame_of, frame_of_admin, frame_of_read_error, frame_of_write_error, not_applied};
use crate::node::{AdminRequest, Backend, ReadMode, WriteError};
use crate::resp::Frame;
use crate::state::{Command, CommandError, Reply, Request as WriteRequest, SessionId};

/// A parsed request on its way to being started.
#[derive(Debug)]
pub(super) struct Request {
    /// Where the metrics count it.
    pub(super) metered: Metered,
    /// What to do, or the error reply found while parsing.
    pub(super) action: Result<Action, Frame>,
}

/// Where a request is counted in the metrics.
#[derive(Clone, Copy, Debug)]
pub(super) enum Metered {
    /// A call of the command at this index of the table.
    Command(usize),
    UnknownCommand,
    /// Not a command at all, such as the reply to malformed input (counted elsewhere).
    Uncounted,
}

/// The connection's client session, from the connection's point of view.
#[derive(Clone, Copy, Debug)]
enum Session {
    /// No session yet (or the last one expired): the next write registers one.
    Unregistered,
    Registered {
        id: SessionId,
        last_sequence: u64,
    },
}

/// How a finished write changes the session.
#[derive(Debug)]
enum SessionUpdate {
    Keep,
    /// The write registered this session and used sequence 1 in it.
    Started(SessionId),
    /// The state machine no longer knows the session: start a new one on the next write.
    Forget,
}

/// A finished request.
struct Completion {
    frame: Frame,
    was_write: bool,
    session: SessionUpdate,
}

impl Completion {
    fn reply(frame: Frame) -> Completion {
        Completion { frame, was_write: false, session: SessionUpdate::Keep }
    }
}

/// Starts the requests of one connection and hands back their replies in order.
pub(super) struct Dispatcher<B: Backend> {
    shared: Arc<Shared<B>>,
    session: Session,
    in_flight: FuturesOrdered<BoxFuture<'static, Completion>>,
    write_in_flight: bool,
}

impl<B: Backend> Dispatcher<B> {
    pub(super) fn new(shared: Arc<Shared<B>>) -> Dispatcher<B> {
        Dispatcher { shared, session: Session::Unregistered, in_flight: FuturesOrdered::new(), write_in_flight: false }
    }

    /// How many requests wait for their reply.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Starts `request`, or gives it back if the ordering rules make it wait.
    pub(super) fn start(&mut self, request: Request, client: &mut Client) -> Option<Request> {
        let Request { metered, action } = request;
        match action {
            Err(frame) => self.push_reply(metered, frame),
            Ok(Action::Local(command)) => {
                let frame = local::execute(command, client, &self.shared);
                self.push_reply(metered, frame);
            }
            Ok(Action::Read(read)) if !self.write_in_flight => self.push_read(metered, read, client.read_mode),
            Ok(Action::Write(command)) if self.in_flight.is_empty() => self.push_write(metered, command),
            Ok(Action::Admin(request)) if self.in_flight.is_empty() => self.push_admin(metered, request),
            action => return Some(Request { metered, action }),
        }
        None
    }

    /// The next reply in request order, once it is ready; `None` when nothing is in flight.
    /// Cancel-safe: dropping the future loses no reply.
    pub(super) async fn next_reply(&mut self) -> Option<Frame> {
        let completion = self.in_flight.next().await?;
        if completion.was_write {
            self.write_in_flight = false;
            self.session = match (completion.session, self.session) {
                (SessionUpdate::Keep, session) => session,
                (SessionUpdate::Started(id), _) => Session::Registered { id, last_sequence: 1 },
                (SessionUpdate::Forget, _) => Session::Unregistered,
            };
        }
        Some(completion.frame)
    }

    fn push_reply(&mut self, metered: Metered, frame: Frame) {
        self.push(metered, std::future::ready(Completion::reply(frame)));
    }

    fn push_read(&mut self, metered: Metered, read: Read, mode: ReadMode) {
        let shared = Arc::clone(&self.shared);
        let (query, shape) = match reads::prepare(read, shared.config.read_keys_max, &shared.cursors) {
            Ok(prepared) => prepared,
            Err(frame) => return self.push_reply(metered, frame),
        };
        shared.metrics.record_read(mode);
        self.push(metered, async move {
            let frame = match shared.backend.read(query, mode).await {
                Ok(reply) => reads::finish(reply, shape, &shared.cursors),
                Err(error) => frame_of_read_error(&error),
            };
            Completion::reply(frame)
        });
    }

    fn push_write(&mut self, metered: Metered, command: Command) {
        // The sequence number is taken now, in request order, so numbers never repeat.
        let known = match &mut self.session {
            Session::Registered { id, last_sequence } => {
                *last_sequence += 1;
                Some((*id, *last_sequence))
            }
            Session::Unregistered => None,
        };
        self.write_in_flight = true;
        let backend = self.shared.backend.clone();
        self.push(metered, write(backend, known, command));
    }

    /// A membership change or transfer: like a write, it starts when nothing is in flight.
    fn push_admin(&mut self, metered: Metered, request: AdminRequest) {
        let backend = self.shared.backend.clone();
        self.push(metered, async move { Completion::reply(frame_of_admin(backend.admin(request).await)) });
    }

    /// Queues `work`, counting it in the metrics when it finishes.
    fn push(&mut self, metered: Metered, work: impl Future<Output = Completion> + Send + 'static) {
        let metrics = Arc::clone(&self.shared.metrics);
        let started = Instant::now();
        let measured = async move {
            let completion = work.await;
            let failed = matches!(completion.frame, Frame::Error(_));
            match metered {
                Metered::Command(index) => metrics.record_command(index, started.elapsed(), failed),
                Metered::UnknownCommand => metrics.record_unknown_command(),
                Metered::Uncounted => {}
            }
            completion
        };
        self.in_flight.push_back(measured.boxed());
    }
}

/// One write in the connection's session, registering the session first if there is none.
async fn write<B: Backend>(backend: B, known: Option<(SessionId, u64)>, command: Command) -> Completion {
    let (session, sequence, update) = match known {
        Some((id, sequence)) => (id, sequence, SessionUpdate::Keep),
        None => match backend.register_session().await {
            Ok(id) => (id, 1, SessionUpdate::Started(id)),
            // Whatever became of the registration, the command itself was never sent.
            Err(WriteError::NotApplied { reason } | WriteError::OutcomeUnknown { reason }) => {
                let frame = not_applied(&format!("could not register a client session: {reason}"));
                return Completion { frame, was_write: true, session: SessionUpdate::Keep };
            }
        },
    };
    let request = WriteRequest { session: Some(session), sequence, command };
    let (frame, session) = match backend.write(request).await {
        Ok(reply) if session_refused(&reply) => (frame_of(reply), SessionUpdate::Forget),
        Ok(reply) => (frame_of(reply), update),
        Err(error) => (frame_of_write_error(&error), update),
    };
    Completion { frame, was_write: true, session }
}

/// Whether the state machine refused the write because it no longer knows the session or
/// its place in it; either way the session is of no further use.
fn session_refused(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(CommandError::SessionExpired | CommandError::StaleSequence { .. }))
}
