//! Runs the scenario scripts in `tests/scenarios/*.txt` against an in-memory cluster.
//!
//! A script is a sequence of blocks: a command line, a `----` line, the expected output, and a
//! blank line. Lines starting with `#` between blocks are comments. Every cluster operation
//! checks the Raft oracles, so a script also fails if any safety property breaks.
//! Run with `REWRITE=1` to regenerate the expected output from what the engine does now.
//!
//! Commands:
//! - `nodes N [pre_vote=B] [check_quorum=B] [inflight=N] [append_entries_max=N] [seed=N]
//!   [snapshot_entries=N] [trailing=N] [chunk=N] [chunks_inflight=N] [spares=N]` (spares:
//!   empty nodes numbered after the voters, ready to be added)
//! - `conf ID|leader add-learner|promote|remove N`, `transfer ID|leader TO`, `members ID`
//! - `campaign ID`, `propose ID|leader DATA [count=N]`, `tick MS`, `run MS [step=MS]`
//! - `stabilize [quiet]`, `deliver [from=ID] [to=ID] [type=KIND]`, `drop [from=..] [to=..] [type=..]`
//! - `ready ID [persist=B]`, `persist ID`, `in-flight`
//! - `partition 1 2 | 3`, `isolate ID`, `cut FROM TO`, `heal`, `crash ID`, `crash-leader`, `restart ID`, `restart-all`
//! - `snapshot ID` (take one now), `status`, `log ID` (with the snapshot it starts from),
//!   `count-messages`

use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use engine::testkit::Cluster;
use engine::{ConfChange, Config, EntryKind, Message, NodeId, Role};

#[test]
fn scenario_scripts() {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut paths: Vec<_> = std::fs::read_dir(&directory)
        .expect("scenario directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "txt"))
        .collect();
    paths.sort();
    let rewrite = std::env::var_os("REWRITE").is_some();
    let mut failures = Vec::new();
    for path in &paths {
        let script = std::fs::read_to_string(path).expect("readable script");
        let (rewritten, mismatches) = run_script(&script);
        if rewrite {
            std::fs::write(path, rewritten).expect("writable script");
        } else if !mismatches.is_empty() {
            failures.push(format!("{}:\n{}", path.display(), mismatches.join("\n")));
        }
    }
    assert!(paths.len() >= 10, "expected at least 10 scenario scripts, found {}", paths.len());
    assert!(failures.is_empty(), "scenario output differs (REWRITE=1 regenerates):\n{}", failures.join("\n\n"));
}

/// Runs a script; returns the script with regenerated outputs, and a description of each
/// block whose output differed.
fn run_script(script: &str) -> (String, Vec<String>) {
    let mut runner = Runner { cluster: None, count_baseline: 0 };
    let mut rewritten = String::new();
    let mut mismatches = Vec::new();
    let mut lines = script.lines().enumerate().peekable();
    while let Some((number, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            rewritten.push_str(line);
            rewritten.push('\n');
            continue;
        }
        let command = line.trim();
        assert_eq!(lines.next().map(|(_, l)| l), Some("----"), "line {}: expected ---- after a command", number + 1);
        let mut expected = String::new();
        while let Some((_, output)) = lines.next_if(|(_, l)| !l.is_empty()) {
            expected.push_str(output);
            expected.push('\n');
        }
        let actual = runner.run(command);
        if actual != expected {
            mismatches.push(format!("line {}: `{command}`\n--- expected\n{expected}--- actual\n{actual}", number + 1));
        }
        let _ = write!(rewritten, "{command}\n----\n{actual}");
    }
    (rewritten, mismatches)
}

struct Runner {
    cluster: Option<Cluster>,
    count_baseline: u64,
}

/// `key=value` arguments after the positional ones.
fn option<T: std::str::FromStr>(arguments: &[&str], key: &str) -> Option<T> {
    arguments
        .iter()
        .find_map(|argument| argument.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.parse().unwrap_or_else(|_| panic!("bad value for {key}")))
}

fn node_id(argument: Option<&&str>) -> NodeId {
    argument.expect("a node id").parse().expect("a numeric node id")
}

fn message_filter(arguments: &[&str]) -> impl Fn(&Message) -> bool {
    let from: Option<NodeId> = option(arguments, "from");
    let to: Option<NodeId> = option(arguments, "to");
    let kind: Option<String> = option(arguments, "type");
    move |message: &Message| {
        from.is_none_or(|from| message.from == from)
            && to.is_none_or(|to| message.to == to)
            && kind.as_deref().is_none_or(|kind| message.body.kind_name() == kind)
    }
}

fn lines_of(messages: &[Message]) -> String {
    messages.iter().map(|message| format!("{message}\n")).collect()
}

impl Runner {
    fn cluster(&mut self) -> &mut Cluster {
        self.cluster.as_mut().expect("`nodes` must come first")
    }

    fn run(&mut self, command: &str) -> String {
        let words: Vec<&str> = command.split_whitespace().collect();
        let (name, arguments) = words.split_first().expect("a command");
        let output = match *name {
            "nodes" => self.nodes(arguments),
            "campaign" => match self.cluster().campaign(node_id(arguments.first())) {
                Ok(()) => String::new(),
                Err(error) => format!("error: {error}\n"),
            },
            "propose" => self.propose(arguments),
            "tick" => {
                self.cluster().advance(node_id(arguments.first()));
                String::new()
            }
            "run" => self.run_for(arguments),
            "stabilize" => {
                let delivered = self.cluster().stabilize();
                if arguments.first() == Some(&"quiet") {
                    format!("delivered {} messages\n", delivered.len())
                } else {
                    lines_of(&delivered)
                }
            }
            "deliver" => lines_of(&self.cluster().deliver_where(message_filter(arguments))),
            "drop" => format!("dropped {}\n", self.cluster().drop_where(message_filter(arguments))),
            "ready" => {
                let persist = option(arguments, "persist").unwrap_or(true);
                self.cluster().process_ready(node_id(arguments.first()), persist);
                String::new()
            }
            "persist" => {
                self.cluster().persist_pending(node_id(arguments.first()));
                String::new()
            }
            "in-flight" => lines_of(self.cluster().in_flight()),
            "partition" => {
                let groups: Vec<Vec<NodeId>> = command["partition".len()..]
                    .split('|')
                    .map(|group| group.split_whitespace().map(|id| id.parse().expect("node id")).collect())
                    .collect();
                self.cluster().partition(&groups);
                String::new()
            }
            "isolate" => {
                let lonely = node_id(arguments.first());
                let others = self.cluster().ids().into_iter().filter(|&id| id != lonely).collect();
                self.cluster().partition(&[vec![lonely], others]);
                String::new()
            }
            "cut" => {
                let (from, to) = (node_id(arguments.first()), node_id(arguments.get(1)));
                self.cluster().cut_link(from, to);
                String::new()
            }
            "heal" => {
                self.cluster().heal();
                String::new()
            }
            "crash" => {
                self.cluster().crash(node_id(arguments.first()));
                String::new()
            }
            "crash-leader" => {
                let leader = self.cluster().leader().expect("a leader to crash");
                self.cluster().crash(leader);
                format!("crashed leader {leader}\n")
            }
            "restart-all" => {
                for id in self.cluster().ids() {
                    if self.cluster().node(id).is_none() {
                        self.cluster().restart(id);
                    }
                }
                String::new()
            }
            "restart" => {
                self.cluster().restart(node_id(arguments.first()));
                String::new()
            }
            "conf" => self.conf(arguments),
            "transfer" => {
                let Some(id) = self.node_or_leader(arguments.first()) else { return "error: no leader\n".to_string() };
                match self.cluster().transfer_leadership(id, node_id(arguments.get(1))) {
                    Ok(()) => String::new(),
                    Err(error) => format!("error: {error}\n"),
                }
            }
            "members" => {
                let id = node_id(arguments.first());
                let raft = self.cluster().node(id).expect("a live node");
                let membership = raft.membership();
                let mut line = format!("voters{:?}", membership.voters);
                if membership.is_joint() {
                    let _ = write!(line, " outgoing{:?}", membership.outgoing_voters);
                }
                if !membership.learners.is_empty() {
                    let _ = write!(line, " learners{:?}", membership.learners);
                }
                line + "\n"
            }
            "snapshot" => {
                self.cluster().take_snapshot(node_id(arguments.first()));
                String::new()
            }
            "status" => self.status(),
            "log" => self.log(node_id(arguments.first())),
            "count-messages" => {
                let total = self.cluster().delivered_count();
                let since = total - self.count_baseline;
                self.count_baseline = total;
                format!("{since} messages delivered\n")
            }
            other => panic!("unknown scenario command `{other}`"),
        };
        if output.is_empty() {
            "ok\n".to_string()
        } else {
            output
        }
    }

    fn nodes(&mut self, arguments: &[&str]) -> String {
        let count: NodeId = node_id(arguments.first());
        let defaults = Config::default();
        let config = Config {
            election_timeout_ms_min: 1000,
            election_timeout_ms_max: 2000,
            heartbeat_interval_ms: 100,
            pre_vote: option(arguments, "pre_vote").unwrap_or(defaults.pre_vote),
            check_quorum: option(arguments, "check_quorum").unwrap_or(defaults.check_quorum),
            inflight_appends_max: option(arguments, "inflight").unwrap_or(defaults.inflight_appends_max),
            append_entries_max: option(arguments, "append_entries_max").unwrap_or(defaults.append_entries_max),
            snapshot_entries_threshold: option(arguments, "snapshot_entries")
                .unwrap_or(defaults.snapshot_entries_threshold),
            snapshot_trailing_entries: option(arguments, "trailing").unwrap_or(defaults.snapshot_trailing_entries),
            snapshot_chunk_bytes: option(arguments, "chunk").unwrap_or(defaults.snapshot_chunk_bytes),
            snapshot_inflight_chunks: option(arguments, "chunks_inflight").unwrap_or(defaults.snapshot_inflight_chunks),
            ..defaults
        };
        let seed = option(arguments, "seed").unwrap_or(1);
        let spares: NodeId = option(arguments, "spares").unwrap_or(0);
        let ids: Vec<NodeId> = (1..=count).collect();
        let spare_ids: Vec<NodeId> = (count + 1..=count + spares).collect();
        self.cluster = Some(Cluster::with_spares(&ids, &spare_ids, config, seed));
        self.count_baseline = 0;
        String::new()
    }

    /// The node an argument names: a number, or `leader` for the current leader (`None`
    /// if there is none, which the command reports).
    fn node_or_leader(&mut self, argument: Option<&&str>) -> Option<NodeId> {
        match argument {
            Some(&"leader") => self.cluster().leader(),
            other => Some(node_id(other)),
        }
    }

    fn conf(&mut self, arguments: &[&str]) -> String {
        let Some(id) = self.node_or_leader(arguments.first()) else { return "error: no leader\n".to_string() };
        let target = node_id(arguments.get(2));
        let change = match arguments.get(1) {
            Some(&"add-learner") => ConfChange::AddLearner { id: target, metadata: Bytes::new() },
            Some(&"promote") => ConfChange::Promote(target),
            Some(&"remove") => ConfChange::Remove(target),
            other => panic!("unknown membership change {other:?}"),
        };
        match self.cluster().conf_change(id, change) {
            Ok(index) => format!("index {index}\n"),
            Err(error) => format!("error: {error}\n"),
        }
    }

    fn propose(&mut self, arguments: &[&str]) -> String {
        let Some(id) = self.node_or_leader(arguments.first()) else { return "error: no leader\n".to_string() };
        let data = arguments.get(1).expect("data to propose").to_string();
        let count: usize = option(arguments, "count").unwrap_or(1);
        let mut indexes = Vec::new();
        for n in 0..count {
            let command = if count == 1 { data.clone() } else { format!("{data}{n}") };
            match self.cluster().propose(id, Bytes::from(command)) {
                Ok(index) => indexes.push(index),
                Err(error) => return format!("error: {error}\n"),
            }
        }
        match (indexes.first(), indexes.last()) {
            (Some(first), Some(last)) if first != last => format!("indexes {first}..{last}\n"),
            (Some(index), _) => format!("index {index}\n"),
            _ => String::new(),
        }
    }

    /// Lets `MS` of time pass in steps, delivering everything after each step; prints the
    /// number of messages delivered and every leader change.
    fn run_for(&mut self, arguments: &[&str]) -> String {
        let total_ms: u64 = node_id(arguments.first());
        let step_ms: u64 = option(arguments, "step").unwrap_or(10);
        let cluster = self.cluster();
        let mut output = String::new();
        let mut leader = cluster.leader().map(|id| (id, cluster.node(id).map(|raft| raft.term())));
        let mut delivered = 0;
        for _ in 0..total_ms / step_ms {
            cluster.advance(step_ms);
            delivered += cluster.stabilize().len();
            let now_leader = cluster.leader().map(|id| (id, cluster.node(id).map(|raft| raft.term())));
            if now_leader != leader {
                if let Some((id, Some(term))) = now_leader {
                    let _ = writeln!(output, "at {}ms: node {id} leads term {term}", cluster.now_ms());
                }
                leader = now_leader;
            }
        }
        let _ = writeln!(output, "{delivered} messages delivered");
        output
    }

    fn status(&mut self) -> String {
        let cluster = self.cluster();
        let mut output = String::new();
        for id in cluster.ids() {
            let status = cluster.status(id);
            let role = match status.role {
                None => "down",
                Some(Role::Follower) => "follower",
                Some(Role::PreCandidate) => "pre-candidate",
                Some(Role::Candidate) => "candidate",
                Some(Role::Leader) => "leader",
            };
            let leader = status.leader_id.map_or("none".to_string(), |id| id.to_string());
            let _ = writeln!(
                output,
                "{id}: {role} term={} leader={leader} last={}/{} commit={} applied={}",
                status.term, status.last_index, status.last_term, status.commit_index, status.applied_index
            );
        }
        output
    }

    fn log(&mut self, id: NodeId) -> String {
        let cluster = self.cluster();
        let (entries, snapshot) = match cluster.node(id) {
            Some(raft) => {
                let log = raft.log();
                (log.entries().to_vec(), (log.snapshot_index(), log.snapshot_term(), raft.membership().clone()))
            }
            None => {
                let disk = cluster.disk(id);
                let meta = disk.snapshot.as_ref().map(|snapshot| snapshot.meta.clone()).unwrap_or_default();
                (disk.entries.clone(), (meta.index, meta.term, meta.membership))
            }
        };
        let mut output = String::new();
        if snapshot.0 > 0 {
            let _ = writeln!(output, "snapshot {}/{} voters{:?}", snapshot.0, snapshot.1, snapshot.2.voters);
        }
        // Runs of entries of one term print as one line, so long logs stay readable.
        let mut run_start = 0;
        for position in 0..entries.len() {
            let ends_run = entries.get(position + 1).is_none_or(|next| next.term != entries[position].term);
            if ends_run {
                let (first, last) = (&entries[run_start], &entries[position]);
                let kinds: Vec<String> =
                    entries[run_start..=position].iter().map(|entry| describe(&entry.kind)).collect();
                let shown = if kinds.len() > 4 {
                    format!("{} .. {}", kinds[0], kinds[kinds.len() - 1])
                } else {
                    kinds.join(" ")
                };
                let _ = writeln!(output, "{}..{} term {}: {shown}", first.index, last.index, first.term);
                run_start = position + 1;
            }
        }
        output
    }
}

fn describe(kind: &EntryKind) -> String {
    match kind {
        EntryKind::Normal(data) => String::from_utf8_lossy(data).into_owned(),
        EntryKind::Noop => "noop".to_string(),
        EntryKind::Configuration(membership) if membership.is_joint() => {
            format!("config{:?}/old{:?}", membership.voters, membership.outgoing_voters)
        }
        EntryKind::Configuration(membership) if !membership.learners.is_empty() => {
            format!("config{:?}+learners{:?}", membership.voters, membership.learners)
        }
        EntryKind::Configuration(membership) => format!("config{:?}", membership.voters),
    }
}
