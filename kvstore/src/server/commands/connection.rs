//! Parse functions of the commands the server answers itself: connection handling (PING,
//! ECHO, SELECT, HELLO, AUTH, CLIENT, READMODE, QUIT) and introspection (COMMAND, INFO,
//! CONFIG GET).

use bytes::Bytes;

use super::arguments::{integer, is, syntax_error};
use super::{lossy_prefix, wrong_arity, Action, Local};
use crate::node::ReadMode;
use crate::resp::Frame;

type Parsed = Result<Action, Frame>;

fn local(local: Local) -> Parsed {
    Ok(Action::Local(local))
}

fn reply(frame: Frame) -> Parsed {
    local(Local::Reply(frame))
}

/// `PING [message]`.
pub(super) fn ping(arguments: &[Bytes]) -> Parsed {
    match arguments {
        [] => reply(Frame::simple("PONG")),
        [message] => reply(Frame::bulk(message.clone())),
        _ => Err(wrong_arity("ping")),
    }
}

/// `ECHO message`.
pub(super) fn echo(arguments: &[Bytes]) -> Parsed {
    let [message] = arguments else { return Err(wrong_arity("echo")) };
    reply(Frame::bulk(message.clone()))
}

/// `SELECT index`: Tally has one database, 0.
pub(super) fn select(arguments: &[Bytes]) -> Parsed {
    let [index] = arguments else { return Err(wrong_arity("select")) };
    match integer(index)? {
        0 => reply(Frame::ok()),
        _ => Err(Frame::error("ERR DB index is out of range")),
    }
}

/// `QUIT`: the server replies OK and closes the connection.
pub(super) fn quit(_arguments: &[Bytes]) -> Parsed {
    local(Local::Quit)
}

/// `AUTH [username] password`.
pub(super) fn auth(arguments: &[Bytes]) -> Parsed {
    match arguments {
        [password] => local(Local::Auth { user: None, password: password.clone() }),
        [user, password] => local(Local::Auth { user: Some(user.clone()), password: password.clone() }),
        _ => Err(syntax_error()),
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`. Only RESP2 is spoken,
/// so a protocol version other than 2 gets Redis' NOPROTO error.
pub(super) fn hello(arguments: &[Bytes]) -> Parsed {
    let Some((version, options)) = arguments.split_first() else {
        return local(Local::Hello { auth: None, name: None });
    };
    let version =
        integer(version).map_err(|_| Frame::error("ERR Protocol version is not an integer or out of range"))?;
    if version != 2 {
        return Err(Frame::error("NOPROTO unsupported protocol version"));
    }
    let (mut auth, mut name) = (None, None);
    let mut index = 0;
    while let Some(option) = options.get(index) {
        let remaining = &options[index + 1..];
        match remaining {
            [user, password, ..] if is(option, "AUTH") => {
                auth = Some((user.clone(), password.clone()));
                index += 3;
            }
            [client_name, ..] if is(option, "SETNAME") => {
                name = Some(valid_client_name(client_name)?);
                index += 2;
            }
            _ => return Err(Frame::error(format!("ERR Syntax error in HELLO option '{}'", lossy_prefix(option, 128)))),
        }
    }
    local(Local::Hello { auth, name })
}

/// `CLIENT SETNAME|GETNAME|ID|INFO|SETINFO ...`.
pub(super) fn client(arguments: &[Bytes]) -> Parsed {
    let [subcommand, rest @ ..] = arguments else { return Err(wrong_arity("client")) };
    let subcommand_arity_error = || wrong_arity(&format!("client|{}", lossy_prefix(subcommand, 32).to_lowercase()));
    match rest {
        [name] if is(subcommand, "SETNAME") => local(Local::ClientSetName(valid_client_name(name)?)),
        [] if is(subcommand, "GETNAME") => local(Local::ClientGetName),
        [] if is(subcommand, "ID") => local(Local::ClientId),
        [] if is(subcommand, "INFO") => local(Local::ClientInfo),
        // Client libraries announce themselves with SETINFO; accepting it keeps them quiet.
        [_attribute, _value] if is(subcommand, "SETINFO") => reply(Frame::ok()),
        _ if ["SETNAME", "GETNAME", "ID", "INFO", "SETINFO"].iter().any(|name| is(subcommand, name)) => {
            Err(subcommand_arity_error())
        }
        _ => Err(unknown_subcommand(subcommand, "CLIENT")),
    }
}

/// Redis' rule for client names: printable ASCII without spaces.
fn valid_client_name(name: &Bytes) -> Result<Bytes, Frame> {
    if name.iter().all(|byte| (b'!'..=b'~').contains(byte)) {
        Ok(name.clone())
    } else {
        Err(Frame::error("ERR Client names cannot contain spaces, newlines or special characters."))
    }
}

/// `COMMAND [COUNT | DOCS [name ...] | INFO [name ...] | LIST]`.
pub(super) fn command(arguments: &[Bytes]) -> Parsed {
    let Some((subcommand, names)) = arguments.split_first() else {
        return local(Local::CommandTable);
    };
    match names {
        [] if is(subcommand, "COUNT") => local(Local::CommandCount),
        [] if is(subcommand, "LIST") => local(Local::CommandList),
        _ if is(subcommand, "DOCS") => local(Local::CommandDocs(names.to_vec())),
        _ if is(subcommand, "INFO") => local(Local::CommandInfo(names.to_vec())),
        _ if is(subcommand, "COUNT") || is(subcommand, "LIST") => {
            Err(wrong_arity(&format!("command|{}", lossy_prefix(subcommand, 32).to_lowercase())))
        }
        _ => Err(unknown_subcommand(subcommand, "COMMAND")),
    }
}

/// `INFO [section ...]`.
pub(super) fn info(arguments: &[Bytes]) -> Parsed {
    local(Local::Info(arguments.to_vec()))
}

/// `CONFIG GET parameter [parameter ...]`: the few parameters that tools such as
/// redis-benchmark ask for.
pub(super) fn config(arguments: &[Bytes]) -> Parsed {
    let [subcommand, parameters @ ..] = arguments else { return Err(wrong_arity("config")) };
    if !is(subcommand, "GET") {
        return Err(unknown_subcommand(subcommand, "CONFIG"));
    }
    if parameters.is_empty() {
        return Err(wrong_arity("config|get"));
    }
    local(Local::ConfigGet(parameters.to_vec()))
}

/// `READMODE [linearizable|lease|follower|stale]`.
pub(super) fn read_mode(arguments: &[Bytes]) -> Parsed {
    match arguments {
        [] => local(Local::ReadMode(None)),
        [mode] => match std::str::from_utf8(mode).ok().and_then(ReadMode::parse) {
            Some(mode) => local(Local::ReadMode(Some(mode))),
            None => Err(Frame::error("ERR READMODE must be 'linearizable', 'lease', 'follower' or 'stale'")),
        },
        _ => Err(wrong_arity("readmode")),
    }
}

fn unknown_subcommand(subcommand: &[u8], command: &str) -> Frame {
    let subcommand = lossy_prefix(subcommand, 128);
    Frame::error(format!("ERR unknown subcommand '{subcommand}'. Try {command} HELP."))
}

#[cfg(test)]
mod tests {
    use super::super::arguments::not_an_integer;
    use super::*;

    fn words(words: &[&'static str]) -> Vec<Bytes> {
        words.iter().map(|word| Bytes::from_static(word.as_bytes())).collect()
    }

    #[test]
    fn hello_speaks_only_resp2() {
        assert_eq!(hello(&words(&["3"])).unwrap_err(), Frame::error("NOPROTO unsupported protocol version"));
        let parsed = hello(&words(&["2", "AUTH", "default", "secret", "SETNAME", "me"])).unwrap();
        assert!(matches!(parsed, Action::Local(Local::Hello { auth: Some(_), name: Some(_) })));
        assert!(hello(&words(&["2", "AUTH", "default"])).is_err());
    }

    #[test]
    fn client_subcommands_check_their_own_arity() {
        let error = client(&words(&["setname"])).unwrap_err();
        assert_eq!(error, wrong_arity("client|setname"));
        let error = client(&words(&["kill"])).unwrap_err();
        assert_eq!(error, Frame::error("ERR unknown subcommand 'kill'. Try CLIENT HELP."));
        assert!(client(&words(&["SETNAME", "has space"])).is_err());
    }

    #[test]
    fn select_accepts_only_database_zero() {
        assert!(select(&words(&["0"])).is_ok());
        assert_eq!(select(&words(&["1"])).unwrap_err(), Frame::error("ERR DB index is out of range"));
        assert_eq!(select(&words(&["x"])).unwrap_err(), not_an_integer());
    }
}
