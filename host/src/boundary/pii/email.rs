//! Email addresses, found by their `@`: the matches of
//!
//! ```text
//! \b[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b
//! ```
//!
//! (ASCII, leftmost-first, as `Regex::find_iter` gives them), read outward from each `@`
//! instead of by a regex engine, whose per-call set-up was most of an address's cost. The
//! pattern's shape makes each part's extent unique, which is what lets it be read directly:
//!
//! - the local part cannot hold an `@`, so an `@` is reached from exactly the starts in the
//!   run of local characters just before it; the leftmost one that begins with a letter or
//!   digit, sits on a word boundary and is at most 64 characters from the `@` is the match's;
//! - a label cannot hold a `.` and must be followed by one, so the labels are the dot-separated
//!   segments after the `@`; the engine takes as many valid ones as there are, and gives them
//!   back one by one until a top-level domain follows;
//! - a top-level domain is a run of 2 to 24 letters followed by no letter, digit or `_`.
//!
//! Neither part can hold an `@`, so the leftmost match is the first `@` that has both a start
//! and an end, and its end does not depend on which start is taken: each `@` is read once.
//!
//! The unit tests hold this to the regex itself on generated hostile text.

/// A character of the local part.
fn local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

/// A word character, for `\b` outside Unicode mode.
fn word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Every address in `text`, as byte ranges, in text order and without overlaps.
pub(super) fn find_iter(text: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(i) = memchr::memchr(b'@', &text[from..]) {
            let at = from + i;
            let found = start(text, from, at).and_then(|s| end(text, at).map(|e| (s, e)));
            match found {
                Some((s, e)) => {
                    from = e;
                    return Some((s, e));
                }
                None => from = at + 1,
            }
        }
        from = text.len();
        None
    })
}

/// The leftmost start at or after `from` whose local part reaches the `@` at `at`.
fn start(text: &[u8], from: usize, at: usize) -> Option<usize> {
    // The run of local characters ending at the `@`, at most 64 of them.
    let floor = from.max(at.saturating_sub(64));
    let mut run = at;
    while run > floor && local(text[run - 1]) {
        run -= 1;
    }
    (run..at).find(|&s| text[s].is_ascii_alphanumeric() && (s == 0 || !word(text[s - 1])))
}

/// Where the domain after the `@` at `at` ends: its labels and a top-level domain.
fn end(text: &[u8], at: usize) -> Option<usize> {
    // The start of each segment that follows a valid label: where a top-level domain may begin.
    let mut after_labels: Vec<usize> = Vec::new();
    let mut i = at + 1;
    loop {
        let len = text[i..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
            .count();
        let label = &text[i..i + len];
        let valid = (1..=63).contains(&len)
            && label[0].is_ascii_alphanumeric()
            && label[len - 1].is_ascii_alphanumeric()
            && text.get(i + len) == Some(&b'.');
        if !valid {
            break;
        }
        i += len + 1;
        after_labels.push(i);
    }
    after_labels.into_iter().rev().find_map(|t| {
        let letters = text[t..]
            .iter()
            .take_while(|b| b.is_ascii_alphabetic())
            .count();
        ((2..=24).contains(&letters) && !text.get(t + letters).copied().is_some_and(word))
            .then_some(t + letters)
    })
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64;
    use regex::Regex;

    use super::*;

    fn oracle() -> Regex {
        Regex::new(
            r"(?-u)\b[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b",
        )
        .unwrap()
    }

    fn ours(text: &str) -> Vec<(usize, usize)> {
        find_iter(text.as_bytes()).collect()
    }

    fn theirs(re: &Regex, text: &str) -> Vec<(usize, usize)> {
        re.find_iter(text).map(|m| (m.start(), m.end())).collect()
    }

    #[test]
    fn addresses_and_their_edges() {
        let re = oracle();
        for text in [
            "ann@example.com",
            "mail ann.lee+tag@mail.example.co.uk today",
            "x_y@z.com",
            "_x@z.com",
            "a@b.com.x",
            "a@b.com-x",
            "a@b.com-x.org",
            "a@b.c1",
            "a@b.com1",
            "a@-b.com",
            "a@b-.com",
            "a@b..com",
            "a@@b.com",
            "a@b.com@c.org",
            "a@b.com,c@d.org",
            ".a@b.com",
            "é@b.com, ü.a@b.com",
            "@b.com",
            "a@",
            "a@b.",
            "a@b.c",
            &format!("{}@b.com", "a".repeat(70)),
            &format!("{}@b.com", "a".repeat(64)),
            &format!("{}@b.com", "a".repeat(65)),
            &format!("{}.{}@b.com", "a".repeat(60), "b".repeat(10)),
            &format!("a@{}.com", "b".repeat(63)),
            &format!("a@{}.com", "b".repeat(64)),
            &format!("a@b.{}", "c".repeat(24)),
            &format!("a@b.{}", "c".repeat(25)),
        ] {
            assert_eq!(ours(text), theirs(&re, text), "{text:?}");
        }
        assert_eq!(ours("a@b.com.x"), vec![(0, 7)]);
    }

    /// Generated text over the characters that matter, with runs long enough to cross every
    /// counted limit, agrees with the regex match for match.
    #[test]
    fn generated_text_agrees_with_the_regex() {
        let re = oracle();
        let mut r = Pcg64::seed_from_u64(0xe3a11);
        let pieces = [
            "a", "Z", "0", "9", ".", "-", "_", "@", "%", "+", " ", "é", "com", "co.uk", "x1",
        ];
        let mut matched = 0;
        for _ in 0..60_000 {
            let mut text = String::new();
            for _ in 0..r.random_range(1..40) {
                let piece = pieces[r.random_range(0..pieces.len())];
                let times = if r.random_range(0..12) == 0 {
                    r.random_range(20..80)
                } else {
                    1
                };
                for _ in 0..times {
                    text.push_str(piece);
                }
            }
            let want = theirs(&re, &text);
            matched += usize::from(!want.is_empty());
            assert_eq!(ours(&text), want, "{text:?}");
        }
        assert!(matched > 3_000, "{matched}");
    }
}
