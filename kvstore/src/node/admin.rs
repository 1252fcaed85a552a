//! Operator requests in the node loop: membership changes and leadership transfer.
//!
//! Any node accepts one. A follower forwards it to the leader; the leader proposes it to the
//! engine and answers once it is done: an added learner once its configuration entry is
//! applied, a promotion or removal once the final configuration (after the joint one) is
//! applied, a transfer once the target leads. A request tried before (proposed here, or
//! forwarded with no answer) first checks whether the membership already is what it asked
//! for, so sending it again after a leader change does nothing twice; a first attempt that
//! asks for what already is (removing a node that is not a member) gets the engine's error.
//! Adding a learner that is already a member at the same address always succeeds: a node
//! started with `--join` asks on every start, to learn its peers' addresses.
//!
//! Members added at run time carry their addresses in the membership's metadata (postcard
//! [`MemberAddresses`]), so every node (and every node restarted later, or installing a
//! snapshot) knows where to reach them; the members the cluster started with come from
//! `--peers`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use engine::{ConfChange, ConfChangeError, Index, NodeId, Role, Term};

use crate::node::api::{AdminError, AdminReply, AdminRequest, MemberAddresses, MembershipStatus};
use crate::node::driver::{Driver, LogStore, PeerSender};
use crate::node::peer::{ForwardedOutcome, ForwardedRequest, PeerMessage};
use crate::node::pending::Responder;

/// An admin request and where it stands.
#[derive(Debug)]
pub struct PendingAdmin {
    pub request: AdminRequest,
    pub responder: Responder<Result<AdminReply, AdminError>>,
    pub deadline_ms: u64,
    pub stage: AdminStage,
    /// Tried before (proposed, or forwarded without an answer): it may already be done.
    pub attempted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminStage {
    /// Not under way: submitted (proposed or forwarded) at the next opportunity.
    Waiting,
    /// Forwarded to `leader` under `id`.
    Forwarded { id: u64, leader: NodeId, sent_ms: u64 },
    /// Proposed here, as leader of `term`, as the configuration entry at `index`.
    Proposed { term: Term, index: Index },
    /// A leadership transfer started here.
    Transferring,
}

/// Encodes a member's addresses as membership metadata.
pub fn encode_addresses(addresses: &MemberAddresses) -> Bytes {
    Bytes::from(postcard::to_allocvec(addresses).expect("addresses always serialize"))
}

/// Decodes membership metadata; `None` if it is not ours (then the member is unreachable
/// until `--peers` names it).
pub fn decode_addresses(metadata: &[u8]) -> Option<MemberAddresses> {
    postcard::from_bytes(metadata).ok()
}

impl<S: LogStore, P: PeerSender> Driver<S, P> {
    /// Every member's addresses, as of the last [`Self::sync_peer_addresses`].
    pub(crate) fn member_addresses(&self) -> &BTreeMap<NodeId, MemberAddresses> {
        &self.member_addresses
    }

    /// The membership changed (a new configuration entry, a truncation, a snapshot): the
    /// address book is rebuilt, the static peers overridden by the membership's metadata, and
    /// peers added at run time become reachable. Called at start and once per loop turn.
    pub(crate) fn sync_peer_addresses(&mut self) {
        if self.known_membership.as_ref() == Some(self.raft.membership()) {
            return;
        }
        self.known_membership = Some(self.raft.membership().clone());
        let mut addresses = self.static_addresses.clone();
        for (&id, metadata) in &self.raft.membership().metadata {
            if let Some(decoded) = decode_addresses(metadata) {
                addresses.insert(id, decoded);
            }
        }
        let own_id = self.raft.id();
        for (&id, member) in &addresses {
            if id != own_id {
                self.peers.add_peer(id, member.raft);
            }
        }
        self.member_addresses = addresses;
    }

    /// The membership as `RAFT.STATUS` shows it.
    pub(crate) fn membership_status(&self) -> MembershipStatus {
        let membership = self.raft.membership();
        let members = membership.members();
        let match_indexes = members
            .iter()
            .filter_map(|&id| self.raft.progress(id).map(|progress| (id, progress.match_index)))
            .collect();
        let addresses =
            self.member_addresses().iter().filter(|(id, _)| members.contains(id)).map(|(&id, &a)| (id, a)).collect();
        MembershipStatus {
            voters: membership.voters.iter().copied().collect(),
            outgoing_voters: membership.outgoing_voters.iter().copied().collect(),
            learners: membership.learners.iter().copied().collect(),
            addresses,
            match_indexes,
            transfer_target: self.raft.transfer_target(),
        }
    }

    /// A request from a local connection or, forwarded, from a follower.
    pub(crate) fn accept_admin(
        &mut self,
        request: AdminRequest,
        responder: Responder<Result<AdminReply, AdminError>>,
        attempted: bool,
    ) {
        let deadline_ms = self.clock.now_ms() + self.config.request_timeout_ms;
        self.admins.push(PendingAdmin { request, responder, deadline_ms, stage: AdminStage::Waiting, attempted });
    }

    /// The leader answered a forwarded admin request.
    pub(crate) fn on_admin_reply(&mut self, id: u64, outcome: Result<AdminReply, AdminError>) {
        let position = self
            .admins
            .iter()
            .position(|admin| matches!(admin.stage, AdminStage::Forwarded { id: sent, .. } if sent == id));
        let Some(position) = position else { return };
        if let Err(AdminError::Unavailable { .. }) = outcome {
            // The node asked does not lead (any more): ask again, of the leader known then.
            self.admins[position].stage = AdminStage::Waiting;
            return;
        }
        let admin = self.admins.remove(position);
        self.answer_admin(admin, outcome);
    }

    /// Moves every admin request along; called once per loop turn.
    pub(crate) fn advance_admins(&mut self, now_ms: u64) {
        for mut admin in std::mem::take(&mut self.admins) {
            if now_ms >= admin.deadline_ms {
                let error = timed_out(&admin, self.config.request_timeout_ms);
                self.answer_admin(admin, Err(error));
                continue;
            }
            match self.advance_admin(&mut admin, now_ms) {
                Some(outcome) => self.answer_admin(admin, outcome),
                None => self.admins.push(admin),
            }
        }
    }

    /// One step for one request; `Some` once it is answered.
    fn advance_admin(&mut self, admin: &mut PendingAdmin, now_ms: u64) -> Option<Result<AdminReply, AdminError>> {
        let leading = self.raft.role() == Role::Leader;
        match admin.stage {
            AdminStage::Forwarded { leader, sent_ms, .. } => {
                let stale =
                    Some(leader) != self.raft.leader_id() || now_ms >= sent_ms + self.config.forward_patience_ms;
                if stale {
                    admin.stage = AdminStage::Waiting;
                }
                None
            }
            AdminStage::Proposed { term, index } => {
                // Settled here (a leader that removed itself has stepped down by now).
                let settled = self.raft.log().applied_index() >= index && !self.raft.membership_change_pending();
                if settled {
                    if let Some(reply) = self.already_done(&admin.request) {
                        return Some(Ok(reply));
                    }
                }
                if settled || !leading || self.raft.term() != term {
                    // Lost its place in the log, or leadership: ask again (of the leader
                    // known then); the check above keeps that from doing anything twice.
                    admin.stage = AdminStage::Waiting;
                }
                None
            }
            AdminStage::Transferring => {
                let AdminRequest::Transfer(target) = admin.request else { unreachable!("only transfers transfer") };
                if self.raft.leader_id() == Some(target) {
                    return Some(Ok(AdminReply::Done));
                }
                if leading && self.raft.transfer_target().is_none() {
                    let reason = format!(
                        "leadership transfer to node {target} did not complete within an election timeout: \
                         is it up and reachable?"
                    );
                    return Some(Err(AdminError::Refused { reason }));
                }
                None
            }
            AdminStage::Waiting if leading => self.submit_admin(admin),
            AdminStage::Waiting => {
                let leader = self.raft.leader_id().filter(|&leader| leader != self.raft.id())?;
                let id = self.pending.allocate_forward_id();
                let request = ForwardedRequest::Admin { request: admin.request.clone(), retry: admin.attempted };
                self.peers.send(leader, PeerMessage::Forward { id, request });
                admin.stage = AdminStage::Forwarded { id, leader, sent_ms: now_ms };
                // From here on the leader may act on it, whether or not an answer comes.
                admin.attempted = true;
                None
            }
        }
    }

    /// As leader: answer at once if the membership already is what was asked, else propose.
    fn submit_admin(&mut self, admin: &mut PendingAdmin) -> Option<Result<AdminReply, AdminError>> {
        let adding_again = matches!(admin.request, AdminRequest::AddLearner { .. });
        if admin.attempted || adding_again {
            if let Some(reply) = self.already_done(&admin.request) {
                return Some(Ok(reply));
            }
        }
        let change = match &admin.request {
            AdminRequest::Transfer(target) => {
                return match self.raft.transfer_leadership(*target) {
                    Ok(()) => {
                        admin.stage = AdminStage::Transferring;
                        None
                    }
                    Err(error) => Some(Err(AdminError::Refused { reason: error.to_string() })),
                };
            }
            AdminRequest::AddLearner { id, raft_address, client_address } => {
                if let Some(conflict) = self.address_conflict(*id, *raft_address) {
                    return Some(Err(conflict));
                }
                let addresses = MemberAddresses { raft: *raft_address, client: Some(*client_address) };
                ConfChange::AddLearner { id: *id, metadata: encode_addresses(&addresses) }
            }
            AdminRequest::Promote(id) => ConfChange::Promote(*id),
            AdminRequest::Remove(id) => ConfChange::Remove(*id),
        };
        if self.raft.membership_change_pending() {
            // A joint change under way is another change: refused, unless it may be our own
            // (proposed by an earlier leader), which the check above tells once it settles.
            // A configuration entry not yet committed in this term (after a leader change)
            // settles by itself: wait for it.
            if admin.attempted || !self.raft.membership().is_joint() {
                return None;
            }
            let reason = "another membership change is in progress: retry when RAFT.STATUS shows it done";
            return Some(Err(AdminError::Refused { reason: reason.to_string() }));
        }
        match self.raft.propose_conf_change(change) {
            Ok(index) => {
                admin.stage = AdminStage::Proposed { term: self.raft.term(), index };
                admin.attempted = true;
                None
            }
            // The leader has not committed in its term yet, or is handing over: soon.
            Err(ConfChangeError::ChangeInProgress | ConfChangeError::TransferInProgress) => None,
            Err(error) => Some(Err(AdminError::Refused { reason: error.to_string() })),
        }
    }

    /// The answer, if the settled membership already is what `request` asks for.
    fn already_done(&self, request: &AdminRequest) -> Option<AdminReply> {
        let membership = self.raft.membership();
        let settled = !self.raft.membership_change_pending();
        match *request {
            AdminRequest::AddLearner { id, raft_address, .. } => {
                let known = self.member_addresses().get(&id).is_some_and(|addresses| addresses.raft == raft_address);
                (settled && membership.contains(id) && known).then(|| AdminReply::Peers(self.peer_book()))
            }
            AdminRequest::Promote(id) => (settled && membership.voters.contains(&id)).then_some(AdminReply::Done),
            AdminRequest::Remove(id) => (settled && !membership.contains(id)).then_some(AdminReply::Done),
            AdminRequest::Transfer(id) => (self.raft.leader_id() == Some(id)).then_some(AdminReply::Done),
        }
    }

    /// A node id already in use at another address: ids are never reused.
    fn address_conflict(&self, id: NodeId, raft_address: SocketAddr) -> Option<AdminError> {
        let known = self.member_addresses().get(&id).map(|addresses| addresses.raft)?;
        let in_use = self.raft.membership().contains(id) || id == self.raft.id();
        (in_use && known != raft_address).then(|| AdminError::Refused {
            reason: format!("node id {id} is already a member, at {known}: give the new node an unused id"),
        })
    }

    /// Every member's peer address, this node's included: what a joining node needs.
    fn peer_book(&self) -> BTreeMap<NodeId, SocketAddr> {
        let members = self.raft.membership().members();
        let addresses = self.member_addresses().iter();
        addresses.filter(|(id, _)| members.contains(id)).map(|(&id, a)| (id, a.raft)).collect()
    }

    fn answer_admin(&self, admin: PendingAdmin, outcome: Result<AdminReply, AdminError>) {
        admin.responder.answer(outcome, &self.peers, ForwardedOutcome::Admin);
    }

    /// Answers every admin request (the node is stopping).
    pub(crate) fn fail_admins(&mut self, reason: &str) {
        for admin in std::mem::take(&mut self.admins) {
            let error = match admin.stage {
                AdminStage::Waiting if !admin.attempted => AdminError::Unavailable { reason: reason.to_string() },
                _ => AdminError::OutcomeUnknown { reason: reason.to_string() },
            };
            self.answer_admin(admin, Err(error));
        }
    }
}

/// A request never proposed nor forwarded certainly changed nothing; any other may have.
fn timed_out(admin: &PendingAdmin, timeout_ms: u64) -> AdminError {
    match admin.stage {
        AdminStage::Waiting if !admin.attempted => {
            AdminError::Unavailable { reason: format!("no leader within {timeout_ms} ms") }
        }
        _ => AdminError::OutcomeUnknown {
            reason: format!("not seen to complete within {timeout_ms} ms: it may still complete; check RAFT.STATUS"),
        },
    }
}
