//! Redis glob patterns, as used by `SCAN ... MATCH`.
//!
//! The syntax is Redis' `stringmatchlen`: `*` matches any run of bytes, `?` one
//! byte, `[abc]`, `[^abc]` and `[a-z]` one byte from (or not from) a class, and
//! `\` makes the next byte literal. Its quirks are kept so that a pattern means
//! here what it means to Redis: a `\` at the very end is a literal `\`, a
//! reversed range `[z-a]` is read as `[a-z]`, an unclosed `[` runs to the end
//! of the pattern, and `[]` matches nothing.
//!
//! Matching does not recurse: every token but `*` consumes exactly one byte, so
//! remembering the last `*` is enough to backtrack, and the cost is bounded by
//! the pattern length times the key length, whatever the client sends.

/// A compiled pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Pattern {
    tokens: Vec<Token>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// `*`: any run of bytes, possibly empty.
    Star,
    /// `?`: any one byte.
    AnyByte,
    /// One exact byte.
    Literal(u8),
    /// `[...]`: one byte in (or, when negated, not in) the inclusive ranges.
    Class { negated: bool, ranges: Vec<(u8, u8)> },
}

impl Pattern {
    /// Compiles a pattern; every byte string is a valid pattern.
    pub(super) fn new(pattern: &[u8]) -> Pattern {
        let mut tokens = Vec::new();
        let mut rest = pattern;
        while let Some((&first, after)) = rest.split_first() {
            rest = after;
            let token = match first {
                b'*' => Token::Star,
                b'?' => Token::AnyByte,
                b'[' => {
                    let (class, after_class) = parse_class(rest);
                    rest = after_class;
                    class
                }
                b'\\' => match rest.split_first() {
                    Some((&escaped, after_escape)) => {
                        rest = after_escape;
                        Token::Literal(escaped)
                    }
                    None => Token::Literal(b'\\'),
                },
                literal => Token::Literal(literal),
            };
            // Consecutive stars mean one star; collapsing them keeps the
            // backtracking below from revisiting the same positions.
            if !(token == Token::Star && tokens.last() == Some(&Token::Star)) {
                tokens.push(token);
            }
        }
        Pattern { tokens }
    }

    /// Whether `text` matches the whole pattern.
    pub(super) fn matches(&self, text: &[u8]) -> bool {
        let (mut token_at, mut text_at) = (0, 0);
        // Where to resume after the last `*`: the token after it, and the
        // first text byte it has not yet swallowed.
        let mut resume: Option<(usize, usize)> = None;
        while text_at < text.len() {
            match self.tokens.get(token_at) {
                Some(Token::Star) => {
                    resume = Some((token_at + 1, text_at));
                    token_at += 1;
                    continue;
                }
                Some(token) if token.matches_byte(text[text_at]) => {
                    token_at += 1;
                    text_at += 1;
                    continue;
                }
                _ => {}
            }
            // A mismatch: let the last star swallow one more byte, if any.
            let Some((star_next, swallowed_to)) = resume else {
                return false;
            };
            token_at = star_next;
            text_at = swallowed_to + 1;
            resume = Some((star_next, swallowed_to + 1));
        }
        self.tokens[token_at..].iter().all(|token| *token == Token::Star)
    }
}

impl Token {
    fn matches_byte(&self, byte: u8) -> bool {
        match self {
            Token::Star => unreachable!("a star is handled by the matcher"),
            Token::AnyByte => true,
            Token::Literal(literal) => *literal == byte,
            Token::Class { negated, ranges } => {
                let inside = ranges.iter().any(|(low, high)| (*low..=*high).contains(&byte));
                inside != *negated
            }
        }
    }
}

/// Parses a class from just after its `[`, returning it and what follows it.
fn parse_class(mut rest: &[u8]) -> (Token, &[u8]) {
    let negated = rest.first() == Some(&b'^');
    if negated {
        rest = &rest[1..];
    }
    let mut ranges = Vec::new();
    loop {
        match rest {
            // Unclosed: the class runs to the end of the pattern, as in Redis.
            [] => break,
            [b']', after @ ..] => {
                rest = after;
                break;
            }
            [b'\\', escaped, after @ ..] => {
                ranges.push((*escaped, *escaped));
                rest = after;
            }
            // Redis reads `x-y` as a range whenever two bytes follow the
            // `x`, even when `y` is `]`.
            [low, b'-', high, after @ ..] => {
                ranges.push((*low.min(high), *low.max(high)));
                rest = after;
            }
            [literal, after @ ..] => {
                ranges.push((*literal, *literal));
                rest = after;
            }
        }
    }
    (Token::Class { negated, ranges }, rest)
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn matches(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern.as_bytes()).matches(text.as_bytes())
    }

    #[test]
    fn stars_and_question_marks() {
        assert!(matches("*", ""));
        assert!(matches("*", "anything"));
        assert!(matches("user:*", "user:42"));
        assert!(!matches("user:*", "users:42"));
        assert!(matches("*:*:end", "a:b:c:end"));
        assert!(matches("h?llo", "hello"));
        assert!(!matches("h?llo", "hllo"));
        assert!(matches("a**b", "ab"));
        assert!(!matches("a*b", "a"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[ae]llo", "hillo"));
        assert!(matches("h[^e]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("k[0-9]", "k7"));
        assert!(matches("k[9-0]", "k7"), "a reversed range is swapped");
        assert!(!matches("k[]", "k"));
        assert!(!matches("k[]", "kx"), "[] matches nothing");
    }

    #[test]
    fn escapes_and_redis_quirks() {
        assert!(matches("a\\*", "a*"));
        assert!(!matches("a\\*", "ab"));
        assert!(matches("a\\", "a\\"), "a trailing backslash is literal");
        assert!(matches("[\\]]", "]"));
        assert!(matches("[ab", "b"), "an unclosed class runs to the end");
        // As in Redis, `a-]` is the range from `]` to `a`, so the class never
        // closes and swallows the `x` too.
        assert!(matches("[a-]x", "_"));
        assert!(matches("[a-]x", "x"));
        assert!(!matches("[a-]x", "ax"));
    }

    #[test]
    fn backtracking_stays_polynomial() {
        let text = "a".repeat(2_000);
        let pattern = format!("{}b", "a*".repeat(200));
        assert!(!matches(&pattern, &text));
    }
}
