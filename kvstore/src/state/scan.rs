//! SCAN: a cursor over key order that survives writes between calls.
//!
//! The cursor is the last key a page examined, and the next page starts just
//! after it. A key present for the whole iteration is therefore returned
//! exactly once, whatever is written, deleted or re-created meanwhile: it lies
//! after exactly one cursor and before the next. A key created or deleted
//! during the iteration may or may not be returned, as in Redis. The cursor
//! holds a key rather than a position, so a write cannot shift it.
//!
//! As in Redis, `count` bounds the work of one call (keys examined), not the
//! keys returned: with a `MATCH` pattern a page may be empty while the
//! iteration goes on, and iteration is over when the returned cursor is
//! [`ScanCursor::Start`] (the wire token `0`).

use std::ops::Bound;

use bytes::Bytes;

use super::glob::Pattern;
use super::keyspace::Keyspace;
use super::reply::CommandError;

/// Where a SCAN iteration stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ScanCursor {
    /// At the beginning; as a returned cursor, the iteration is complete.
    Start,
    /// Just after this key, the last one a page examined.
    After(Bytes),
}

/// One page of a SCAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPage {
    /// The examined keys that matched, in byte order.
    pub keys: Vec<Bytes>,
    /// The cursor for the next call; [`ScanCursor::Start`] when done.
    pub next: ScanCursor,
}

/// The prefix that tells a key cursor token from the start token `0`.
const KEY_TOKEN_PREFIX: u8 = b'k';

impl ScanCursor {
    /// The cursor as the client sees it: `0` for [`ScanCursor::Start`], else
    /// `k` followed by the key in lowercase hex.
    ///
    /// Clients that treat the cursor as an opaque string handle this; clients
    /// that parse it as an integer (redis-cli's `--scan` does) do not.
    pub fn to_token(&self) -> Bytes {
        match self {
            ScanCursor::Start => Bytes::from_static(b"0"),
            ScanCursor::After(key) => {
                let mut token = Vec::with_capacity(1 + 2 * key.len());
                token.push(KEY_TOKEN_PREFIX);
                for byte in key.iter() {
                    token.push(hex_digit(byte >> 4));
                    token.push(hex_digit(byte & 0x0f));
                }
                Bytes::from(token)
            }
        }
    }

    /// Reads a token written by [`ScanCursor::to_token`].
    pub fn from_token(token: &[u8]) -> Result<ScanCursor, CommandError> {
        match token.split_first() {
            Some((b'0', [])) => Ok(ScanCursor::Start),
            Some((&KEY_TOKEN_PREFIX, hex)) if hex.len() % 2 == 0 => {
                let key = hex
                    .chunks_exact(2)
                    .map(|pair| Some(hex_value(pair[0])? << 4 | hex_value(pair[1])?))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or(CommandError::InvalidCursor)?;
                Ok(ScanCursor::After(Bytes::from(key)))
            }
            _ => Err(CommandError::InvalidCursor),
        }
    }
}

fn hex_digit(nibble: u8) -> u8 {
    b"0123456789abcdef"[usize::from(nibble)]
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

impl Keyspace {
    /// Examines up to `count` keys after `cursor` (at least one, so every call
    /// makes progress) and returns those matching the glob `pattern`.
    pub(super) fn scan(&self, cursor: &ScanCursor, count: usize, pattern: Option<&[u8]>) -> ScanPage {
        let pattern = pattern.map(Pattern::new);
        let lower = match cursor {
            ScanCursor::Start => Bound::Unbounded,
            ScanCursor::After(key) => Bound::Excluded(key.as_ref()),
        };
        let mut walk = self.entries.range::<_, [u8]>((lower, Bound::Unbounded)).map(|(key, _)| key);
        let mut keys = Vec::new();
        let mut last_examined = None;
        for key in walk.by_ref().take(count.max(1)) {
            let wanted = match &pattern {
                Some(pattern) => pattern.matches(key),
                None => true,
            };
            if wanted {
                keys.push(key.clone());
            }
            last_examined = Some(key);
        }
        // Peeking one key further ends the iteration on the page that reaches
        // the last key, instead of on an extra empty page.
        let next = match (last_examined, walk.next()) {
            (Some(last), Some(_)) => ScanCursor::After(last.clone()),
            _ => ScanCursor::Start,
        };
        ScanPage { keys, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let keys: [&[u8]; 4] = [b"", b"user:1", b"\x00\xff\x10", b"0"];
        for key in keys {
            let cursor = ScanCursor::After(Bytes::copy_from_slice(key));
            assert_eq!(ScanCursor::from_token(&cursor.to_token()), Ok(cursor));
        }
        let start = ScanCursor::Start.to_token();
        assert_eq!(start.as_ref(), b"0");
        assert_eq!(ScanCursor::from_token(&start), Ok(ScanCursor::Start));
    }

    #[test]
    fn foreign_tokens_are_invalid() {
        for token in [&b""[..], b"1", b"00", b"k0", b"kzz", b"kAB", b"x61"] {
            assert_eq!(ScanCursor::from_token(token), Err(CommandError::InvalidCursor));
        }
    }
}
