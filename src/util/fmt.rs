//! How numbers and errors read for people: seconds in the unit that fits, an error and
//! its causes on one line, a certificate's time left in days or hours.

/// Seconds as people read them: `850 µs`, `21.07 ms`, `1.002 s`.
pub fn human_secs(x: f64) -> String {
    if x < 0.001 {
        format!("{:.0} µs", x * 1e6)
    } else if x < 1.0 {
        format!("{:.2} ms", x * 1e3)
    } else {
        format!("{x:.3} s")
    }
}

/// An error and its causes on one line, each cause once (libraries often repeat their
/// source's text in their own message).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// `text` on one line: control characters (a newline inside a quoted value of a hostile
/// file, say) written as escapes, so an error or a log line cannot be split or forged.
pub fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// "certificate expires in 5 days" or "certificate expired 2 days ago", from the
/// seconds left (negative: expired).
pub fn cert_note(left: i64) -> String {
    let days = |s: i64| {
        let d = s as f64 / 86_400.0;
        if d >= 2.0 { format!("{} days", d.floor()) } else { format!("{} hours", (s / 3600).max(0)) }
    };
    if left >= 0 {
        format!("certificate expires in {}", days(left))
    } else {
        format!("certificate expired {} ago", days(-left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_control_characters_only() {
        assert_eq!(
            one_line("unknown variant `a\nb\r\tc`, expected `open` — ok"),
            "unknown variant `a\\nb\\r\\tc`, expected `open` — ok"
        );
        assert_eq!(one_line("\u{1b}[31m"), "\\u{1b}[31m");
    }

    #[test]
    fn seconds_pick_their_unit() {
        assert_eq!(human_secs(0.000_85), "850 µs");
        assert_eq!(human_secs(0.021_07), "21.07 ms");
        assert_eq!(human_secs(1.002), "1.002 s");
    }

    #[test]
    fn causes_are_joined_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer: inner broke")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner broke"));
        assert_eq!(error_chain(&e), "outer: inner broke");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot send")]
        struct Send(#[source] std::io::Error);
        assert_eq!(error_chain(&Send(std::io::Error::other("reset"))), "cannot send: reset");
    }

    #[test]
    fn certificate_notes() {
        assert_eq!(cert_note(10 * 86_400 + 600), "certificate expires in 10 days");
        assert_eq!(cert_note(5 * 3600), "certificate expires in 5 hours");
        assert_eq!(cert_note(-3 * 86_400), "certificate expired 3 days ago");
    }
}
