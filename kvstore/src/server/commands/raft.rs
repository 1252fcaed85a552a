//! Tally's operator commands: `RAFT.ADDLEARNER`, `RAFT.PROMOTE`, `RAFT.REMOVE`,
//! `RAFT.TRANSFER` (membership change and leadership transfer, answered once done) and
//! `RAFT.STATUS` (the membership as this node sees it).

use bytes::Bytes;
use engine::NodeId;

use super::arguments::integer;
use super::{Action, Local};
use crate::node::AdminRequest;
use crate::resp::Frame;

type Parsed = Result<Action, Frame>;

/// `RAFT.ADDLEARNER id raft-address client-address`.
pub(super) fn add_learner(arguments: &[Bytes]) -> Parsed {
    let [id, raft, client] = arguments else { unreachable!("the table checks the arity") };
    let id = node_id(id)?;
    let raft_address = address(raft, "raft-address")?;
    let client_address = address(client, "client-address")?;
    Ok(Action::Admin(AdminRequest::AddLearner { id, raft_address, client_address }))
}

/// `RAFT.PROMOTE id`.
pub(super) fn promote(arguments: &[Bytes]) -> Parsed {
    Ok(Action::Admin(AdminRequest::Promote(only_id(arguments)?)))
}

/// `RAFT.REMOVE id`.
pub(super) fn remove(arguments: &[Bytes]) -> Parsed {
    Ok(Action::Admin(AdminRequest::Remove(only_id(arguments)?)))
}

/// `RAFT.TRANSFER id`.
pub(super) fn transfer(arguments: &[Bytes]) -> Parsed {
    Ok(Action::Admin(AdminRequest::Transfer(only_id(arguments)?)))
}

/// `RAFT.STATUS`.
pub(super) fn status(_arguments: &[Bytes]) -> Parsed {
    Ok(Action::Local(Local::RaftStatus))
}

fn only_id(arguments: &[Bytes]) -> Result<NodeId, Frame> {
    let [id] = arguments else { unreachable!("the table checks the arity") };
    node_id(id)
}

fn node_id(word: &[u8]) -> Result<NodeId, Frame> {
    let value = integer(word)?;
    NodeId::try_from(value)
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| Frame::error("ERR node id must be a positive integer"))
}

fn address(word: &[u8], name: &str) -> Result<std::net::SocketAddr, Frame> {
    let text = std::str::from_utf8(word).unwrap_or("");
    text.parse().map_err(|_| Frame::error(format!("ERR {name} must be ip:port, not '{text}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(words: &[&'static str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::from_static(word.as_bytes())).collect()
    }

    #[test]
    fn arguments_are_checked_with_clear_errors() {
        let added = add_learner(&words(&["4", "127.0.0.1:7104", "127.0.0.1:7004"])).unwrap();
        assert!(matches!(added, Action::Admin(AdminRequest::AddLearner { id: 4, .. })));
        let zero = promote(&words(&["0"])).unwrap_err();
        assert_eq!(zero, Frame::error("ERR node id must be a positive integer"));
        let bad = add_learner(&words(&["4", "localhost", "127.0.0.1:7004"])).unwrap_err();
        assert_eq!(bad, Frame::error("ERR raft-address must be ip:port, not 'localhost'"));
        assert!(matches!(transfer(&words(&["2"])), Ok(Action::Admin(AdminRequest::Transfer(2)))));
        assert!(remove(&words(&["x"])).is_err());
    }
}
