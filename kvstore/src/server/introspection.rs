//! COMMAND, COMMAND DOCS and INFO: the server describing itself in Redis' formats.
//!
//! redis-cli reads `COMMAND DOCS` at startup (7.2 and later; older ones read `COMMAND`) to
//! build its inline hints, and it asserts on the shape of the reply: maps go out as flat
//! arrays of name and value (RESP2 has no map), every argument has a `name` and a `type`,
//! and argument flags are simple strings.

use bytes::Bytes;

use super::commands::{find, ArgumentDoc, ArgumentKind, CommandSpec, COMMANDS};
use super::listener::Shared;
use super::local::{Client, REDIS_COMPATIBLE_VERSION};
use crate::node::{Backend, NodeStatus};
use crate::resp::Frame;
use engine::Role;

/// COMMAND: every command's entry.
pub(super) fn command_table() -> Frame {
    Frame::array(COMMANDS.iter().map(command_entry).collect())
}

/// COMMAND COUNT.
pub(super) fn command_count() -> Frame {
    Frame::integer(COMMANDS.len() as i64)
}

/// COMMAND LIST: the names.
pub(super) fn command_list() -> Frame {
    Frame::array(COMMANDS.iter().map(|spec| Frame::bulk(spec.name)).collect())
}

/// COMMAND INFO name...: the entry of each name, or nil for an unknown one.
pub(super) fn command_info(names: &[Bytes]) -> Frame {
    if names.is_empty() {
        return command_table();
    }
    let entries = names.iter().map(|name| find(name).map_or_else(Frame::null, |index| command_entry(&COMMANDS[index])));
    Frame::array(entries.collect())
}

/// COMMAND DOCS [name...]: a flat map from name to documentation; unknown names are left
/// out, as in Redis.
pub(super) fn command_docs(names: &[Bytes]) -> Frame {
    let specs: Vec<&CommandSpec> = if names.is_empty() {
        COMMANDS.iter().collect()
    } else {
        names.iter().filter_map(|name| find(name)).map(|index| &COMMANDS[index]).collect()
    };
    let mut reply = Vec::with_capacity(2 * specs.len());
    for spec in specs {
        reply.push(Frame::bulk(spec.name));
        reply.push(command_doc(spec));
    }
    Frame::array(reply)
}

/// One COMMAND entry, in Redis 7's ten-field shape.
fn command_entry(spec: &CommandSpec) -> Frame {
    let (first_key, last_key, step) = spec.keys;
    Frame::array(vec![
        Frame::bulk(spec.name),
        Frame::integer(spec.arity),
        Frame::array(spec.flags.iter().map(|flag| Frame::simple(*flag)).collect()),
        Frame::integer(first_key),
        Frame::integer(last_key),
        Frame::integer(step),
        Frame::array(acl_categories(spec).into_iter().map(Frame::simple).collect()),
        Frame::array(vec![]),
        Frame::array(vec![]),
        Frame::array(vec![]),
    ])
}

fn acl_categories(spec: &CommandSpec) -> Vec<String> {
    let mut categories: Vec<String> = spec
        .flags
        .iter()
        .filter_map(|flag| match *flag {
            "write" => Some("@write"),
            "readonly" => Some("@read"),
            "fast" => Some("@fast"),
            _ => None,
        })
        .map(String::from)
        .collect();
    let group = match spec.group {
        "generic" => "keyspace",
        "server" => "admin",
        other => other,
    };
    categories.push(format!("@{group}"));
    categories
}

fn command_doc(spec: &CommandSpec) -> Frame {
    let mut fields = vec![
        Frame::bulk("summary"),
        Frame::bulk(spec.summary),
        Frame::bulk("since"),
        Frame::bulk(spec.since),
        Frame::bulk("group"),
        Frame::bulk(spec.group),
    ];
    if !spec.arguments.is_empty() {
        fields.push(Frame::bulk("arguments"));
        fields.push(Frame::array(spec.arguments.iter().map(argument_doc).collect()));
    }
    Frame::array(fields)
}

fn argument_doc(argument: &ArgumentDoc) -> Frame {
    let mut fields =
        vec![Frame::bulk("name"), Frame::bulk(argument.name), Frame::bulk("type"), Frame::bulk(argument.kind.name())];
    if let Some(token) = argument.token {
        fields.extend([Frame::bulk("token"), Frame::bulk(token)]);
    }
    let flags: Vec<Frame> = [(argument.optional, "optional"), (argument.multiple, "multiple")]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, flag)| Frame::simple(flag))
        .collect();
    if !flags.is_empty() {
        fields.extend([Frame::bulk("flags"), Frame::array(flags)]);
    }
    if let ArgumentKind::OneOf(nested) | ArgumentKind::Block(nested) = &argument.kind {
        fields.extend([Frame::bulk("arguments"), Frame::array(nested.iter().map(argument_doc).collect())]);
    }
    Frame::array(fields)
}

/// Appends one INFO section.
type SectionWriter<B> = fn(&mut String, &Client, &Shared<B>);

/// INFO [section ...]: `server`, `clients`, `stats` and `raft`; no section, `default`, `all`
/// or `everything` means all of them. Unknown sections add nothing, as in Redis.
pub(super) fn info<B: Backend>(sections: &[Bytes], client: &Client, shared: &Shared<B>) -> Frame {
    let wanted = |name: &str| {
        sections.is_empty()
            || sections.iter().any(|section| {
                ["default", "all", "everything", name].iter().any(|word| section.eq_ignore_ascii_case(word.as_bytes()))
            })
    };
    let mut text = String::new();
    let writers: [(&str, SectionWriter<B>); 4] =
        [("server", server_section), ("clients", clients_section), ("stats", stats_section), ("raft", raft_section)];
    for (name, write_section) in writers {
        if wanted(name) {
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            write_section(&mut text, client, shared);
        }
    }
    Frame::bulk(text)
}

fn server_section<B: Backend>(text: &mut String, client: &Client, shared: &Shared<B>) {
    let uptime_seconds = shared.started.elapsed().as_secs();
    let port = client.local.map_or(0, |address| address.port());
    text.push_str(&format!(
        "# Server\r\nredis_version:{REDIS_COMPATIBLE_VERSION}\r\ntally_version:{}\r\nredis_mode:standalone\r\n\
         tcp_port:{port}\r\nuptime_in_seconds:{uptime_seconds}\r\nuptime_in_days:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        uptime_seconds / 86_400,
    ));
}

fn clients_section<B: Backend>(text: &mut String, _client: &Client, shared: &Shared<B>) {
    let metrics = shared.metrics.snapshot();
    text.push_str(&format!("# Clients\r\nconnected_clients:{}\r\n", metrics.connections_open));
}

fn stats_section<B: Backend>(text: &mut String, _client: &Client, shared: &Shared<B>) {
    let metrics = shared.metrics.snapshot();
    text.push_str(&format!(
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_protocol_errors:{}\r\n",
        metrics.connections_accepted,
        metrics.total_calls(),
        metrics.protocol_errors,
    ));
    for (mode, count) in &metrics.reads_by_mode {
        text.push_str(&format!("reads_{}:{count}\r\n", mode.name()));
    }
}

fn raft_section<B: Backend>(text: &mut String, _client: &Client, shared: &Shared<B>) {
    text.push_str(&raft_lines(&shared.backend.status()));
}

/// The `# Raft` section. `leader_id:0` means no leader is known (node ids start at 1).
pub(super) fn raft_lines(status: &NodeStatus) -> String {
    let voters: Vec<String> = status.voters.iter().map(u64::to_string).collect();
    format!(
        "# Raft\r\nnode_id:{}\r\nrole:{}\r\nterm:{}\r\nleader_id:{}\r\ncommit_index:{}\r\napplied_index:{}\r\n\
         last_log_index:{}\r\nlog_entries:{}\r\nvoters:{}\r\nlearners:{}\r\nsnapshot_index:{}\r\n\
         snapshots_saved:{}\r\nsnapshots_installed:{}\r\n",
        status.id,
        role_name(status.role),
        status.term,
        status.leader_id.unwrap_or(0),
        status.commit_index,
        status.applied_index,
        status.last_log_index,
        status.log_entries,
        voters.join(","),
        status.membership.learners.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        status.snapshot_index,
        status.snapshots_saved,
        status.snapshots_installed,
    )
}

/// RAFT.STATUS: this node's view of the membership, one `key:value` line each, then one
/// `member:` line per member with its role, addresses and (on the leader) how far its log
/// matches.
pub(super) fn raft_status(status: &NodeStatus) -> String {
    let membership = &status.membership;
    let list = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    // INFO raft's lines, then the membership in detail.
    let mut text = raft_lines(status).trim_start_matches("# Raft\r\n").to_string();
    text.push_str(&format!("joint:{}\r\n", if membership.outgoing_voters.is_empty() { "no" } else { "yes" }));
    if !membership.outgoing_voters.is_empty() {
        text.push_str(&format!("outgoing_voters:{}\r\n", list(&membership.outgoing_voters)));
    }
    if let Some(target) = membership.transfer_target {
        text.push_str(&format!("transferring_to:{target}\r\n"));
    }
    let mut members: Vec<u64> = membership.voters.iter().chain(&membership.learners).copied().collect();
    members.extend(membership.outgoing_voters.iter().filter(|id| !membership.voters.contains(id)));
    members.sort_unstable();
    for id in members {
        let role = if membership.learners.contains(&id) {
            "learner"
        } else if membership.voters.contains(&id) {
            "voter"
        } else {
            "leaving"
        };
        let mut line = format!("member:{id} {role}");
        if let Some(addresses) = membership.addresses.get(&id) {
            line.push_str(&format!(" raft={}", addresses.raft));
            if let Some(client) = addresses.client {
                line.push_str(&format!(" client={client}"));
            }
        }
        if let Some(index) = membership.match_indexes.get(&id) {
            line.push_str(&format!(" match={index}"));
        }
        text.push_str(&line);
        text.push_str("\r\n");
    }
    text
}

/// The role as INFO shows it; a PreVote probe is a candidate to the outside world.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate | Role::PreCandidate => "candidate",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_lines_name_the_role_as_redis_tools_expect() {
        let status = NodeStatus {
            id: 2,
            role: Role::PreCandidate,
            term: 7,
            leader_id: None,
            commit_index: 10,
            applied_index: 9,
            last_log_index: 12,
            log_entries: 12,
            voters: vec![1, 2, 3],
            snapshot_index: 0,
            snapshots_saved: 0,
            snapshots_installed: 0,
            membership: Default::default(),
        };
        let lines = raft_lines(&status);
        assert!(lines.contains("\r\nrole:candidate\r\n"));
        assert!(lines.contains("\r\nleader_id:0\r\n"));
        assert!(lines.contains("\r\nvoters:1,2,3\r\n"));
    }

    #[test]
    fn docs_flags_are_simple_strings_because_redis_cli_asserts_it() {
        let Frame::Array(docs) = command_docs(&[Bytes::from("set")]) else { panic!("docs are an array") };
        let rendered = format!("{docs:?}");
        assert!(rendered.contains("Simple(b\"optional\")"), "{rendered}");
    }
}
