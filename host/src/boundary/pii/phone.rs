//! Phone numbers by their numbering plans. A candidate (digits with the separators people write
//! between them, an optional `+`, an optional extension) is a phone number when:
//!
//! - it is international (`+…`, or `00…`) and libphonenumber's metadata (the `phonenumber`
//!   crate) says it is a valid number, or a possible one where the context says phone;
//! - or it is a national number valid in one of the policy's regions and written like one
//!   (`(555) 123-4567`, `555-123-4567`, a trunk `0` and groups: `030 1234567`, `06 35 51 71 23`);
//! - or the context says phone — the field's name (`phone`, `tel`, `mobile`, `fax`…) or a word
//!   just before it in text (`call`, `phone`, `tel.`…) — and it is valid or of a possible length
//!   in one of the regions: so a bare `03765221629` is caught in `phone` and left alone in
//!   `order_id`.
//!
//! Dates, decimals, three-part dotted versions, and digit groups glued to letters (UUIDs, SKUs
//! like `AB-1234-5678`) are never phone numbers.

use std::sync::LazyLock;

use phonenumber::country::Id;
use regex_automata::dfa::regex::Regex as Dfa;
use regex_automata::util::syntax;

use super::plan;

/// The regions national numbers are read in unless the policy names others.
pub const DEFAULT_REGIONS: &[Id] = &[
    Id::US,
    Id::CA,
    Id::GB,
    Id::DE,
    Id::FR,
    Id::ES,
    Id::IT,
    Id::NL,
    Id::BR,
    Id::JP,
    Id::IN,
    Id::AU,
];

/// A compiled DFA (forward and reverse, ASCII): the regex engine's tables without its per-call
/// set-up, which made up most of a candidate's cost (every phone-shaped value runs these).
fn dfa(pattern: &str) -> Dfa {
    Dfa::builder()
        .syntax(syntax::Config::new().unicode(false))
        .build(pattern)
        .expect("the phone patterns are valid")
}

/// A candidate: an optional `+` or `(`, digits and separators, an optional extension.
pub(super) static CANDIDATE: LazyLock<Dfa> = LazyLock::new(|| {
    dfa(r"(?:\+|\(\+?)?\d[\d \-./()]{4,24}\d(?:\s?(?:[xX]|ext\.?|extension|#)\s?\d{1,6})?")
});

static EXTENSION: LazyLock<Dfa> =
    LazyLock::new(|| dfa(r"\s?(?:[xX]|ext\.?|extension|#)\s?\d{1,6}$"));

/// North American groupings: `(555) 123-4567`, `555-123-4567`, `555.123.4567`.
static NANP: LazyLock<Dfa> =
    LazyLock::new(|| dfa(r"^(?:\(\d{3}\) ?|\d{3}[\-. ])\d{3}[\-. ]\d{4}$"));

/// Words that say a number near them is a phone number (lowercase, ASCII).
const WORDS: &[&str] = &[
    "call", "phone", "tel", "mobile", "cell", "fax", "reach", "dial", "sms", "whatsapp", "contact",
    "ring", "telefon", "telefono", "telefone", "bel ",
];

/// Field-name tokens that say the value is a phone number.
const FIELD_TOKENS: &[&str] = &[
    "phone",
    "phones",
    "telephone",
    "tel",
    "mobile",
    "cell",
    "cellphone",
    "fax",
    "msisdn",
    "whatsapp",
];

/// Whether a field named `name` (the last segment of its path) holds phone numbers:
/// `phone`, `phone_number`, `mobilePhone`, `tel`, `fax_no`… but not `hotel` or `telemetry`.
pub fn phone_field(name: &str) -> bool {
    // Tokens are cut at non-alphanumerics and where a lowercase letter meets an uppercase one;
    // read in place (this runs for every string value the detectors see).
    let b = name.as_bytes();
    let is_phone_token = |t: &[u8]| {
        FIELD_TOKENS
            .iter()
            .any(|f| t.eq_ignore_ascii_case(f.as_bytes()))
            || (t.len() >= 5 && t[..5].eq_ignore_ascii_case(b"phone"))
    };
    let mut start = 0;
    for i in 0..=b.len() {
        let cut = i == b.len()
            || !b[i].is_ascii_alphanumeric()
            || (i > start && b[i].is_ascii_uppercase() && b[i - 1].is_ascii_lowercase());
        if cut {
            if is_phone_token(&b[start..i]) {
                return true;
            }
            start = if i < b.len() && b[i].is_ascii_alphanumeric() {
                i
            } else {
                i + 1
            };
        }
    }
    false
}

/// Whether the text just before a candidate says phone (`call me on`, `tel.`).
pub fn phone_words_before(text: &[u8], start: usize) -> bool {
    let before = &text[start.saturating_sub(24)..start];
    // Only the words after the last digit count: `call 1 234` is not context for `5678`.
    let tail = match before.iter().rposition(u8::is_ascii_digit) {
        Some(i) => &before[i + 1..],
        None => before,
    };
    WORDS.iter().any(|w| {
        tail.windows(w.len())
            .any(|win| win.eq_ignore_ascii_case(w.as_bytes()))
    })
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Written like a national phone number: North American groupings, or a trunk `0` and groups.
fn shaped(body: &str) -> bool {
    NANP.is_match(body.as_bytes())
        || body.starts_with("(0")
        || (body.starts_with('0')
            && digit_count(body) >= 9
            && body.bytes().any(|b| matches!(b, b' ' | b'-' | b'/')))
}

/// Whether `candidate` (a [`CANDIDATE`] match, glue already checked) is a phone number.
pub fn is_phone(candidate: &str, context: bool, regions: &[Id]) -> bool {
    let candidate = candidate.trim();
    // Every way of writing an extension has an `x` or a `#`.
    let marked = candidate.bytes().any(|b| matches!(b, b'x' | b'X' | b'#'));
    let body = match marked
        .then(|| EXTENSION.find(candidate.as_bytes()))
        .flatten()
    {
        Some(m) => &candidate[..m.start()],
        None => candidate,
    };
    let without_trunk;
    let body = if body.contains("(0)") {
        without_trunk = body.replace("(0)", "");
        without_trunk.trim()
    } else {
        body.trim()
    };
    let n = digit_count(body);
    if !(7..=15).contains(&n) {
        return false;
    }
    let b = body.as_bytes();
    // A date (`2024-03-15`), a decimal (`48.8566`), a three-part dotted version (`20.99.313`).
    let date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-';
    let decimal = body.bytes().filter(|c| *c == b'.').count() == 1
        && body.bytes().all(|c| c.is_ascii_digit() || c == b'.');
    let dotted = body.contains('.')
        && body
            .split(|c: char| !c.is_ascii_digit())
            .filter(|g| !g.is_empty())
            .count()
            == 3
        && !NANP.is_match(body.as_bytes());
    if date || decimal || dotted {
        return false;
    }
    let international = body.trim_start_matches('(').starts_with('+') || body.starts_with("00");
    if international {
        // The digits alone: the parser misreads some groupings (`+31727-417454` gives no
        // country code), and the digits are all the plan looks at.
        let digits = Digits::of(body.strip_prefix("00").unwrap_or(body));
        if plan::read(digits.as_str(), true, None)
            .is_some_and(|r| plan::is_valid(&r) || plan::is_possible(&r))
        {
            return true;
        }
        if !context {
            return false;
        }
    }
    let shaped = shaped(body);
    if !context && !shaped {
        return false;
    }
    let digits = Digits::of(body);
    let digits = digits.as_str();
    // Regions sharing a country code often read the digits alike: a reading judged for one
    // is not judged again (the last few are remembered, on the stack; one older than those is
    // judged again, to the same answer).
    let mut judged: [Option<plan::Read>; 8] = [const { None }; 8];
    regions.iter().enumerate().any(|(i, &region)| {
        let Some(r) = plan::read(digits, false, Some(region)) else {
            return false;
        };
        if judged.iter().flatten().any(|j| *j == r) {
            return false;
        }
        let yes = plan::is_valid(&r) || (context && plan::is_possible(&r));
        judged[i % judged.len()] = Some(r);
        yes
    })
}

/// The digits of a candidate (at most 24 of them, as [`CANDIDATE`] allows), kept on the stack.
struct Digits {
    buf: [u8; 32],
    len: usize,
}

impl Digits {
    fn of(text: &str) -> Digits {
        let mut d = Digits {
            buf: [0; 32],
            len: 0,
        };
        for b in text.bytes().filter(u8::is_ascii_digit).take(32) {
            d.buf[d.len] = b;
            d.len += 1;
        }
        d
    }

    fn as_str(&self) -> &str {
        // ASCII digits only.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_say_phone_by_their_words() {
        for yes in [
            "phone",
            "phone_number",
            "mobilePhone",
            "tel",
            "fax_no",
            "PhoneNumbers",
        ] {
            assert!(phone_field(yes), "{yes}");
        }
        for no in ["hotel", "telemetry", "order_id", "cellar", "name", "faxon"] {
            assert!(!phone_field(no), "{no}");
        }
    }

    #[test]
    fn numbers_by_their_plans_and_context() {
        let r = DEFAULT_REGIONS;
        for (yes, context) in [
            ("+44 20 7946 0958", false),
            ("+1-245-849-1436", false),
            ("+4915112345678", false),
            ("+31727-417454", false),
            ("+1-464-236-8794x2095", false),
            ("+49 (0) 9141 777631", false),
            ("(02649) 699088", false),
            ("06 35 51 71 23", false),
            ("080-9141-7776", false),
            ("555.123.4567x1234", false),
            ("03765221629", true),
            ("2636606071", true),
        ] {
            assert!(is_phone(yes, context, r), "{yes} (context {context})");
        }
        for (no, context) in [
            ("03765221629", false), // a bare national number, no context
            ("2024-03-15", true),
            ("48.8566142", false),
            ("20.99.313", false),
            ("123456", true),
            ("37137-343", false), // a Brazilian postcode
        ] {
            assert!(!is_phone(no, context, r), "{no} (context {context})");
        }
    }
}
