//! The fast path of answer validation: the built-in schema's common valid case, read in
//! one pass over the body without building a JSON tree or calling a JSON library.
//!
//! It reads a strict subset of JSON: strings without escapes or control characters,
//! numbers as JSON spells them (no exponent, at most [`MAX_NUMBER`] characters), nesting
//! at most [`MAX_DEPTH`] deep, each known field once. It may only say "valid" when the
//! schema would; anything outside that subset, or anything that breaks a rule, is
//! `None`, and the schema decides (and names the violations). It must never panic on any
//! input, and allocates only for the scope it hands back. `validate`'s tests run every
//! case through both paths.

/// What a valid answer says about its token, borrowed from the body.
#[derive(Debug, PartialEq)]
pub struct Token<'a> {
    /// The token itself: handed on to the next call and to the ledger, never shown.
    pub access_token: &'a str,
    pub token_type: &'a str,
    pub expires_in: i64,
    pub scope: Vec<String>,
}

/// Deeper than this, the schema decides.
const MAX_DEPTH: usize = 32;
/// Longer numbers (which a JSON parser may refuse as out of range), the schema decides.
const MAX_NUMBER: usize = 32;

/// The token answer in `body`, if the built-in schema accepts it and the scanner is sure.
pub fn token_answer(body: &str) -> Option<Token<'_>> {
    let mut s = Scanner { text: body, at: 0 };
    let token = s.answer()?;
    s.blank();
    (s.at == body.len()).then_some(token)
}

/// A position in the body. Every method returns `None` on anything it is unsure of.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Skips JSON's four blanks.
    fn blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// The next character after blanks, consumed.
    fn next(&mut self) -> Option<u8> {
        self.blank();
        let c = self.peek()?;
        self.at += 1;
        Some(c)
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// A string whose opening quote was consumed: its text (no escapes, no control
    /// characters).
    fn string_rest(&mut self) -> Option<&'a str> {
        let b = self.text.as_bytes();
        let mut end = self.at;
        // Eight bytes at a time, up to the first quote, backslash or control character.
        loop {
            match b.get(end..end + 8) {
                Some(word) => match stops(u64::from_le_bytes(word.try_into().ok()?)) {
                    0 => end += 8,
                    flags => {
                        end += (flags.trailing_zeros() / 8) as usize;
                        break;
                    }
                },
                None => {
                    end += b.get(end..)?.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
                    break;
                }
            }
        }
        if b.get(end) != Some(&b'"') {
            return None;
        }
        let s = self.text.get(self.at..end)?;
        self.at = end + 1;
        Some(s)
    }

    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        self.string_rest()
    }

    /// A number whose first character `first` was consumed: its text.
    fn number_rest(&mut self, first: u8) -> Option<&'a str> {
        let start = self.at - 1;
        let b = self.text.as_bytes();
        let digits = |at: &mut usize| {
            let from = *at;
            while b.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            *at - from
        };
        let mut at = self.at;
        let lead = if first == b'-' {
            let c = *b.get(at)?;
            at += 1;
            c
        } else {
            first
        };
        match lead {
            b'0' => {}
            b'1'..=b'9' => {
                digits(&mut at);
            }
            _ => return None,
        }
        if b.get(at) == Some(&b'.') {
            at += 1;
            if digits(&mut at) == 0 {
                return None;
            }
        }
        if matches!(b.get(at), Some(b'e' | b'E')) || at - start > MAX_NUMBER {
            return None;
        }
        self.at = at;
        self.text.get(start..at)
    }

    /// Any JSON value, checked and skipped; `first` is its first character, consumed.
    fn skip_rest(&mut self, first: u8, depth: usize) -> Option<()> {
        match first {
            b'"' => self.string_rest().map(drop),
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => self.members(|s, _| {
                let c = s.next()?;
                s.skip_rest(c, depth + 1)
            }),
            b'[' => self.items(|s, c| s.skip_rest(c, depth + 1)),
            b't' => self.word("rue"),
            b'f' => self.word("alse"),
            b'n' => self.word("ull"),
            b'-' | b'0'..=b'9' => self.number_rest(first).map(drop),
            _ => None,
        }
    }

    fn word(&mut self, rest: &str) -> Option<()> {
        let end = self.at + rest.len();
        (self.text.as_bytes().get(self.at..end)? == rest.as_bytes()).then(|| self.at = end)
    }

    /// An object whose `{` was consumed: `member` reads each value after its key.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.next()? == b'}' {
            return Some(());
        }
        self.at -= 1;
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array whose `[` was consumed: `item` reads each item from its first character.
    fn items(&mut self, mut item: impl FnMut(&mut Self, u8) -> Option<()>) -> Option<()> {
        let mut c = self.next()?;
        if c == b']' {
            return Some(());
        }
        loop {
            item(self, c)?;
            match self.next()? {
                b',' => c = self.next()?,
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The answer's top level: `version`, `code` 0, `message` and `result`.
    fn answer(&mut self) -> Option<Token<'a>> {
        self.expect(b'{')?;
        let mut seen = 0u16;
        let mut token = None;
        self.members(|s, key| {
            let bit = match key {
                "version" => 1,
                "code" => 2,
                "message" => 4,
                "result" => 8,
                _ => 0,
            };
            let c = s.next()?;
            if bit != 0 && seen & bit != 0 {
                return None;
            }
            seen |= bit;
            match (bit, c) {
                (1 | 4, b'"') => s.string_rest().map(drop),
                (2, b'0') => (s.number_rest(c)? == "0").then_some(()),
                (8, b'{') => {
                    token = Some(s.result()?);
                    Some(())
                }
                (0, _) => s.skip_rest(c, 1),
                _ => None,
            }
        })?;
        (seen == 0b1111).then_some(())?;
        token
    }

    /// `result`, its `{` consumed: the token's fields.
    fn result(&mut self) -> Option<Token<'a>> {
        // The first character each optional field's value may start with (null aside).
        const KINDS: [&[u8]; 7] = [b"{tf", b"{\"", b"{", b"\"", b"[", b"{\"", b"{\""];
        let mut seen = 0u16;
        let (mut access_token, mut token_type, mut expires_in, mut scope) = ("", "", 0, Vec::new());
        self.members(|s, key| {
            let bit: u16 = match key {
                "access_token" => 1,
                "token_type" => 1 << 1,
                "refresh_token" => 1 << 2,
                "expires_in" => 1 << 3,
                "scope" => 1 << 4,
                "firstLogin" => 1 << 5,
                "loggedInUser" => 1 << 6,
                "userDetails" => 1 << 7,
                "persCode" => 1 << 8,
                "userIntitutes" => 1 << 9,
                "civilId" => 1 << 10,
                "userMobile" => 1 << 11,
                _ => 0,
            };
            if bit != 0 && seen & bit != 0 {
                return None;
            }
            seen |= bit;
            let c = s.next()?;
            match bit.trailing_zeros() {
                0 => {
                    access_token = (c == b'"').then(|| s.string_rest()).flatten()?;
                    (!access_token.is_empty()).then_some(())
                }
                2 => (c == b'"' && !s.string_rest()?.is_empty()).then_some(()),
                1 => {
                    token_type = (c == b'"').then(|| s.string_rest()).flatten()?;
                    token_type.eq_ignore_ascii_case("bearer").then_some(())
                }
                3 => {
                    let n = (c != b'-').then(|| s.number_rest(c)).flatten()?;
                    expires_in = if n.bytes().all(|b| b.is_ascii_digit()) { n.parse().ok()? } else { 0 };
                    (expires_in > 0).then_some(())
                }
                4 if c == b'[' => s.items(|s, c| {
                    (c == b'"').then_some(())?;
                    scope.push(s.string_rest()?.to_owned());
                    Some(())
                }),
                4 => None,
                i @ 5..=11 => (c == b'n' || KINDS[i as usize - 5].contains(&c)).then(|| s.skip_rest(c, 2)).flatten(),
                _ => s.skip_rest(c, 2),
            }
        })?;
        (seen & 0b11111 == 0b11111).then_some(Token { access_token, token_type, expires_in, scope })
    }
}

/// Whether a little-endian word of eight body bytes holds a quote, a backslash or a
/// control character (non-zero if so; the lowest flagged byte is the first such).
fn stops(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero_byte(word ^ (ONES * u64::from(b'"')))
        | zero_byte(word ^ (ONES * u64::from(b'\\')))
        | (word.wrapping_sub(ONES * 0x20) & !word & HIGH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_answer() {
        let body = include_str!("../../schemas/get-token.example.json");
        let t = token_answer(body).expect("the spec's answer");
        assert_eq!(
            t,
            Token {
                access_token: "d0816a77-af67-43fc-bad1-2edb2aae3dc5",
                token_type: "bearer",
                expires_in: 86399,
                scope: vec!["".into(), "read".into(), "write".into()]
            }
        );
    }

    #[test]
    fn numbers_as_json_spells_them() {
        for (n, ok) in [
            ("0", true),
            ("-0", true),
            ("12.5", true),
            ("-1.0", true),
            ("01", false),
            ("1.", false),
            ("-", false),
            ("+1", false),
            (".5", false),
            ("1e5", false),
            ("1E5", false),
            ("-x", false),
        ] {
            let body = format!("{n} ");
            let mut s = Scanner { text: &body, at: 1 };
            let read = s.number_rest(body.as_bytes()[0]);
            assert_eq!(read.is_some() && s.peek() == Some(b' '), ok, "{n}");
        }
    }

    #[test]
    fn a_word_stops_at_its_first_quote_backslash_or_control_character() {
        for c in 0..=255u8 {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = c;
                let flags = stops(u64::from_le_bytes(word));
                if c == b'"' || c == b'\\' || c < 0x20 {
                    assert_eq!(flags.trailing_zeros() / 8, at as u32, "{c:#x} at {at}");
                } else {
                    assert_eq!(flags, 0, "{c:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn never_panics_on_cut_answers() {
        let body = include_str!("../../schemas/get-token.example.json").trim_end();
        for end in 0..body.len() {
            if let Some(cut) = body.get(..end) {
                assert!(token_answer(cut).is_none(), "{cut}");
            }
        }
    }
}
