//! Builders shared by the state machine tests.

use bytes::Bytes;
use kvstore::state::{Command, Limits, Reply, Request, SessionId, StateMachine};

/// Bytes from text, for readable tests.
pub fn bytes(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

/// A write outside any session.
pub fn plain(command: Command) -> Request {
    Request { session: None, sequence: 0, command }
}

/// A write in `session` with `sequence`.
pub fn in_session(session: SessionId, sequence: u64, command: Command) -> Request {
    Request { session: Some(session), sequence, command }
}

/// `PUT key value`.
pub fn put(key: &str, value: &str) -> Command {
    Command::Put { key: bytes(key), value: bytes(value) }
}

/// `INCRBY key delta`.
pub fn incr_by(key: &str, delta: i64) -> Command {
    Command::IncrBy { key: bytes(key), delta }
}

/// A machine with a log: it hands out consecutive indexes, as a Raft log
/// without empty entries would.
#[derive(Debug)]
pub struct Driver {
    pub machine: StateMachine,
}

impl Driver {
    pub fn new(limits: Limits) -> Driver {
        Driver { machine: StateMachine::new(limits) }
    }

    /// The index the next entry gets.
    pub fn next_index(&self) -> u64 {
        self.machine.applied_index() + 1
    }

    pub fn apply(&mut self, request: Request) -> Reply {
        let index = self.next_index();
        self.machine.apply(index, request)
    }

    /// Applies a write outside any session.
    pub fn write(&mut self, command: Command) -> Reply {
        self.apply(plain(command))
    }

    /// Registers a session and returns its id.
    pub fn register(&mut self) -> SessionId {
        match self.write(Command::RegisterSession) {
            Reply::Integer(id) => SessionId(u64::try_from(id).expect("ids are positive")),
            other => panic!("RegisterSession replied {other:?}"),
        }
    }

    /// The value at `key`, as text.
    pub fn get(&self, key: &str) -> Option<String> {
        let value = self.machine.get(key.as_bytes())?;
        Some(String::from_utf8(value.to_vec()).expect("tests store text"))
    }
}
