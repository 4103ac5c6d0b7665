//! Detectors of personal data in free text: email, phone, IPv4, IPv6, payment card, IBAN and US
//! SSN. Each finds candidates with a regular expression and then validates them the way the
//! format itself does (Luhn for cards, mod-97 and per-country length for IBANs, the address
//! parsers of `std::net`, the SSA's rules for SSNs), so look-alikes such as a 16-digit order id
//! or a MAC address are not reported.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A kind of personal data a detector finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// `name@example.com`.
    Email,
    /// A number valid by its country's numbering plan (`+44 20 7946 0958`, `(555) 123-4567`,
    /// `06 35 51 71 23`); bare national numbers where the field or nearby words say phone.
    Phone,
    /// `192.0.2.1`.
    Ipv4,
    /// `2001:db8::1`.
    Ipv6,
    /// A payment card number in an issuer's range, of a length that issuer uses, that passes
    /// the Luhn check.
    Card,
    /// An IBAN of a country that issues them, with mod-97 check digits.
    Iban,
    /// A US social security number `123-45-6789` within the SSA's assigned ranges.
    Ssn,
}

impl Entity {
    /// Every detector, in the order overlapping matches are resolved (first wins).
    pub const ALL: [Entity; 7] = [
        Entity::Email,
        Entity::Iban,
        Entity::Card,
        Entity::Ssn,
        Entity::Ipv6,
        Entity::Ipv4,
        Entity::Phone,
    ];

    /// Its name in policies and stats.
    pub fn name(self) -> &'static str {
        match self {
            Entity::Email => "email",
            Entity::Phone => "phone",
            Entity::Ipv4 => "ipv4",
            Entity::Ipv6 => "ipv6",
            Entity::Card => "card",
            Entity::Iban => "iban",
            Entity::Ssn => "ssn",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding: a byte range of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub entity: Entity,
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive).
    pub end: usize,
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("detector patterns are valid")
}

static IPV4: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u)\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"));
static IPV6: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?-u)(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})?")
});
static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u)\b\d(?:[ \-]?\d){11,18}\b"));
static IBAN: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b"));
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u)\b\d{3}-\d{2}-\d{4}\b"));

/// Whether a byte can continue a dotted or colon-separated token (so a match is only part of a
/// longer one, like `1.2.3.4.5`).
fn continues(text: &[u8], at: usize, sep: u8) -> bool {
    text.get(at) == Some(&sep) && text.get(at + 1).is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Whether `start..end` is only part of a longer run of digit groups (an account number, an
/// IBAN written in blocks): glued to a letter or digit, or one separator away from more digits.
fn in_digit_run(text: &[u8], start: usize, end: usize) -> bool {
    let sep = |i: usize| matches!(text.get(i), Some(b' ' | b'-' | b'.'));
    let digit = |i: usize| text.get(i).is_some_and(u8::is_ascii_digit);
    (start > 0 && text[start - 1].is_ascii_alphanumeric())
        || (start > 1 && sep(start - 1) && digit(start - 2))
        || text.get(end).is_some_and(u8::is_ascii_alphanumeric)
        || (sep(end) && digit(end + 1))
}

fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// One issuer range: card numbers whose first `digits` digits are in `lo..=hi`, of a length in
/// `lengths`.
struct Iin {
    digits: usize,
    lo: u32,
    hi: u32,
    lengths: std::ops::RangeInclusive<usize>,
    /// Lengths inside `lengths` the network does not issue.
    except: &'static [usize],
}

const fn iin(digits: usize, lo: u32, hi: u32, min: usize, max: usize) -> Iin {
    Iin {
        digits,
        lo,
        hi,
        lengths: min..=max,
        except: &[],
    }
}

/// The issuers' identification number ranges with the lengths each issues (ISO/IEC 7812 as the
/// networks publish them): Visa, Mastercard (51–55 and the 2-series), Amex, Discover, Diners,
/// JCB (3528–3589, and the 15-digit 1800 and 2131), Maestro (12–19 digits), UnionPay, Mir,
/// RuPay, Troy, Verve, Dankort, InterPayment, InstaPayment, UATP, BORICA, Humo, Uzcard.
static IINS: &[Iin] = &[
    // Visa (13, 16 or 19 digits; Electron and Dankort co-brands are inside it).
    Iin {
        digits: 1,
        lo: 4,
        hi: 4,
        lengths: 13..=19,
        except: &[14, 15, 17, 18],
    },
    iin(2, 51, 55, 16, 16),     // Mastercard
    iin(4, 2221, 2720, 16, 16), // Mastercard 2-series
    iin(2, 34, 34, 15, 15),     // American Express
    iin(2, 37, 37, 15, 15),     // American Express
    iin(4, 6011, 6011, 16, 19), // Discover
    iin(3, 644, 649, 16, 19),   // Discover
    iin(2, 65, 65, 16, 19),     // Discover, RuPay, Troy
    iin(3, 300, 305, 14, 19),   // Diners Club
    iin(4, 3095, 3095, 14, 19), // Diners Club
    iin(2, 36, 36, 14, 19),     // Diners Club
    iin(2, 38, 39, 14, 19),     // Diners Club
    // JCB is 3528–3589 and RuPay 353 and 356; the rest of 35 is nobody's, but a 16-digit 35…
    // number that passes Luhn is read as a card: letting one through costs more than
    // redacting an id.
    iin(2, 35, 35, 16, 19),
    iin(4, 1800, 1800, 15, 15), // JCB
    iin(4, 2131, 2131, 15, 15), // JCB
    iin(2, 50, 50, 12, 19),     // Maestro
    iin(2, 56, 69, 12, 19),     // Maestro (and UnionPay 62, RuPay 60, InterPayment 636…)
    iin(4, 2200, 2205, 16, 19), // Mir, BORICA
    iin(2, 81, 82, 16, 16),     // RuPay
    iin(3, 508, 508, 16, 16),   // RuPay
    iin(3, 353, 353, 16, 16),   // RuPay
    iin(3, 356, 356, 16, 16),   // RuPay
    iin(4, 9792, 9792, 16, 16), // Troy
    iin(4, 9860, 9860, 16, 16), // Humo
    iin(4, 8600, 8600, 16, 16), // Uzcard
    iin(1, 1, 1, 15, 15),       // UATP
];

/// Whether `d` (13 to 19 digits… or 12 for Maestro) is a length some issuer uses for its prefix.
fn card_issuer(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| -> u32 { d[..k].iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0')) };
    IINS.iter().any(|r| {
        n >= r.digits
            && r.lengths.contains(&n)
            && !r.except.contains(&n)
            && (r.lo..=r.hi).contains(&prefix(r.digits))
    })
}

/// IBAN length by country (the SWIFT IBAN registry).
fn iban_length(country: &str) -> Option<usize> {
    Some(match country {
        "NO" => 15,
        "BE" => 16,
        "DK" | "FI" | "FO" | "GL" | "NL" => 18,
        "MK" | "SI" => 19,
        "AT" | "BA" | "EE" | "KZ" | "LT" | "LU" | "XK" => 20,
        "CH" | "HR" | "LI" | "LV" => 21,
        "BG" | "BH" | "CR" | "DE" | "GB" | "GE" | "IE" | "ME" | "RS" | "VA" => 22,
        "AE" | "GI" | "IL" | "IQ" | "TL" => 23,
        "AD" | "CZ" | "ES" | "MD" | "PK" | "RO" | "SA" | "SE" | "SK" | "TN" | "VG" => 24,
        "PT" | "ST" => 25,
        "IS" | "TR" => 26,
        "FR" | "GR" | "IT" | "MC" | "MR" | "SM" => 27,
        "AL" | "AZ" | "BY" | "CY" | "DO" | "GT" | "HU" | "LB" | "PL" | "SV" => 28,
        "BR" | "EG" | "PS" | "QA" | "UA" => 29,
        "JO" | "KW" | "MU" => 30,
        "MT" | "SC" => 31,
        "LC" => 32,
        _ => return None,
    })
}

/// The mod-97 check of ISO 13616 over an IBAN without spaces.
pub fn iban_valid(iban: &[u8]) -> bool {
    let Ok(country) = std::str::from_utf8(&iban[..2]) else {
        return false;
    };
    // The country must be one that issues IBANs; the length is not held to its registry entry
    // (generators and old formats differ), the check digits are.
    if iban_length(country).is_none() || !(15..=34).contains(&iban.len()) {
        return false;
    }
    let mut rem = 0u32;
    for &c in iban[4..].iter().chain(&iban[..4]) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ssn_valid(s: &[u8]) -> bool {
    let n = |r: std::ops::Range<usize>| -> u32 {
        s[r].iter().fold(0, |a, &b| a * 10 + u32::from(b - b'0'))
    };
    let (area, group, serial) = (n(0..3), n(4..6), n(7..11));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn digits(s: &[u8]) -> Vec<u8> {
    s.iter().copied().filter(u8::is_ascii_digit).collect()
}

/// Necessary conditions for each detector, from one pass over the bytes: most strings (names,
/// cities, timestamps) meet none, and no regular expression runs on them.
#[derive(Default)]
struct Facts {
    at: bool,
    digits: usize,
    colons: usize,
    double_colon: bool,
    /// `[A-Z][A-Z][0-9][0-9]` somewhere: an IBAN's country and check digits.
    iban: bool,
    /// The most digits in one run whose digits are at most three of ` -.()` apart: a card
    /// needs 12, an SSN 9, a phone number 7 (a `+` starts a run: it only leads a number).
    run: usize,
    /// Dots between two digits: an IPv4 address has three.
    digit_dots: usize,
    /// `ddd-dd-` somewhere (three digits, a dash, two digits, a dash): an SSN's start.
    ssn: bool,
    /// The longest such run that can hold a phone number: a run that begins the text or
    /// follows a letter, fits in one candidate, and ends glued to a letter (the date of a
    /// timestamp, `2024-06-01T…`) only yields candidates the phone detector skips.
    phone_run: usize,
}

impl Facts {
    fn of(bytes: &[u8]) -> Facts {
        let mut f = Facts::default();
        let (mut run, mut gap) = (0usize, 0usize);
        // Digits since the last non-digit, and how many stood before the last dash (0 when
        // something other than digits came between).
        let (mut group, mut before_dash) = (0usize, 0usize);
        // The current run: open, where it starts, and whether nothing a candidate could take
        // stands before it.
        let (mut open, mut start, mut hard) = (false, 0usize, false);
        for (i, &b) in bytes.iter().enumerate() {
            if b.is_ascii_digit() {
                group += 1;
            } else {
                if b == b'-' {
                    f.ssn |= group == 2 && before_dash == 3;
                    before_dash = group;
                } else {
                    before_dash = 0;
                }
                group = 0;
            }
            match b {
                b'0'..=b'9' => {
                    f.digits += 1;
                    if !open || gap > 3 {
                        if open {
                            f.phone_run = f.phone_run.max(run);
                        }
                        (open, start) = (true, i);
                        hard = i == 0
                            || !matches!(bytes[i - 1], b' ' | b'-' | b'.' | b'(' | b')' | b'/');
                        run = 0;
                    }
                    run = if gap > 3 { 1 } else { run + 1 };
                    gap = 0;
                    f.run = f.run.max(run);
                    if i >= 3
                        && bytes[i - 1].is_ascii_digit()
                        && bytes[i - 2].is_ascii_uppercase()
                        && bytes[i - 3].is_ascii_uppercase()
                    {
                        f.iban = true;
                    }
                }
                b' ' | b'-' | b'.' | b'(' | b')' => {
                    if b == b'.'
                        && i > 0
                        && bytes[i - 1].is_ascii_digit()
                        && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                    {
                        f.digit_dots += 1;
                    }
                    gap += 1;
                }
                _ => {
                    if open {
                        // A letter right after the last digit (not an extension's `x` or
                        // `ext`) glues the one candidate the run makes.
                        let glued = hard
                            && i - start <= 24
                            && bytes[i - 1].is_ascii_digit()
                            && b.is_ascii_alphabetic()
                            && !matches!(b, b'x' | b'X' | b'e');
                        if !glued {
                            f.phone_run = f.phone_run.max(run);
                        }
                        open = false;
                    }
                    f.at |= b == b'@';
                    if b == b':' {
                        f.colons += 1;
                        f.double_colon |= i > 0 && bytes[i - 1] == b':';
                    }
                    gap = 4;
                }
            }
        }
        if open {
            f.phone_run = f.phone_run.max(run);
        }
        f
    }

    /// An address in text has `::`, or all eight groups (seven colons; six before an
    /// embedded IPv4 address).
    fn ipv6(&self) -> bool {
        self.double_colon || self.colons >= 6
    }

    fn ipv4(&self) -> bool {
        self.digit_dots >= 3 && self.digits >= 4
    }

    fn any(&self) -> bool {
        self.at || self.iban || self.run >= 7 || self.ipv6() || self.ipv4()
    }
}

/// What is known about where a text is: the field it is in, and the regions national phone
/// numbers are read in.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The field's path (`address.phone`; empty for none): its last name says whether it holds
    /// phone numbers (`phone`, `mobile`…), read only when a phone candidate turns up.
    pub field: &'a str,
    /// Regions for national phone numbers.
    pub regions: &'a [phonenumber::country::Id],
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context {
            field: "",
            regions: super::phone::DEFAULT_REGIONS,
        }
    }
}

/// Find every entity of `enabled` in `text` (with no context), without overlaps, in text order.
pub fn find(text: &str, enabled: &[Entity]) -> Vec<Finding> {
    find_in(text, enabled, &Context::default())
}

/// Whether `bytes` can hold anything a detector finds. Most values (names, cities, codes) have
/// neither an `@`, a `:` nor four digits, and every detector but the IBAN's needs one of those
/// (an IBAN: two check digits in 15 characters or more): a branch-free count says so. A
/// backslash counts as a mark, so a string's JSON text can be asked before it is unescaped
/// (an escape may stand for any character).
pub(super) fn may_hold(bytes: &[u8]) -> bool {
    match Counts::of(bytes) {
        Some(counts) => counts.may_hold(bytes.len()),
        None => {
            let (numerals, marks) = bytes.iter().fold((0usize, 0usize), |(d, m), &b| {
                (
                    d + usize::from(b.is_ascii_digit()),
                    m + usize::from(matches!(b, b'@' | b':' | b'\\')),
                )
            });
            marks > 0 || numerals >= 4 || (numerals >= 2 && bytes.len() >= 15)
        }
    }
}

/// How many digits, `@`, `:`, `\`, `.` and uppercase letters a value of at most
/// [`Counts::MAX`] bytes has, from one table load and add per byte: six 10-bit lanes of one
/// word. Most values are a few bytes, too short for a vector loop to pay, and what the
/// detectors need first is these counts.
#[derive(Clone, Copy)]
struct Counts(u64);

/// The lanes of [`Counts`].
const DIGIT: u32 = 0;
const AT: u32 = 1;
const COLON: u32 = 2;
const BACKSLASH: u32 = 3;
const DOT: u32 = 4;
const UPPER: u32 = 5;
const LANE_BITS: u32 = 10;

/// Each byte's [`Counts`]: a one in its lane.
static LANES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut b = 0;
    while b < 256 {
        let lane = match b as u8 {
            b'0'..=b'9' => Some(DIGIT),
            b'@' => Some(AT),
            b':' => Some(COLON),
            b'\\' => Some(BACKSLASH),
            b'.' => Some(DOT),
            b'A'..=b'Z' => Some(UPPER),
            _ => None,
        };
        if let Some(lane) = lane {
            t[b] = 1 << (lane * LANE_BITS);
        }
        b += 1;
    }
    t
};

impl Counts {
    /// The longest value counted: no lane can overflow into the next.
    const MAX: usize = (1 << LANE_BITS) - 1;

    fn of(bytes: &[u8]) -> Option<Counts> {
        (bytes.len() <= Counts::MAX)
            .then(|| Counts(bytes.iter().fold(0, |n, &b| n + LANES[usize::from(b)])))
    }

    fn get(self, lane: u32) -> usize {
        ((self.0 >> (lane * LANE_BITS)) & Counts::MAX as u64) as usize
    }

    /// [`may_hold`] for a value of `len` bytes.
    fn may_hold(self, len: usize) -> bool {
        let numerals = self.get(DIGIT);
        self.get(AT) + self.get(COLON) + self.get(BACKSLASH) > 0
            || numerals >= 4
            || (numerals >= 2 && len >= 15)
    }

    /// The [`Facts`] without their pass, where the counts alone rule out every detector but
    /// the email's: fewer than seven digits (a phone number's fewest; a card, an SSN need
    /// more), fewer than two colons (IPv6), not three dots and four digits (IPv4), not two
    /// uppercase letters and two digits (an IBAN's start). `None` where the pass is needed.
    /// The facts are gates on the detectors: a gate closed here may be open after the pass
    /// (`123-45-` opens the SSN's with five digits) only where its detector, which needs more
    /// digits, would find nothing.
    fn facts(self) -> Option<Facts> {
        let digits = self.get(DIGIT);
        let only_email = digits < 7
            && self.get(COLON) < 2
            && !(self.get(DOT) >= 3 && digits >= 4)
            && !(self.get(UPPER) >= 2 && digits >= 2);
        only_email.then(|| Facts {
            at: self.get(AT) > 0,
            digits,
            ..Facts::default()
        })
    }
}

/// Whether `b` is exactly an RFC 3339 timestamp, `2024-06-01T12:34:56`, with at most nine
/// digits of fraction and an optional `Z` or `+hh:mm` offset: the shape of most `*_at` values.
/// Nothing in that shape is anything a detector reports (its longest digit run is eleven, its
/// date is glued to the `T`, it has at most three colons and one dot), so the full pass is
/// skipped; a test holds this to what the full pass finds.
pub(super) fn timestamp(b: &[u8]) -> bool {
    let d = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(d);
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b't'))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        i += 1 + n;
    }
    match b.get(i) {
        None => true,
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            b.len() == i + 6 && digits(i + 1..i + 3) && at(i + 3, b':') && digits(i + 4..i + 6)
        }
        Some(_) => false,
    }
}

/// Find every entity of `enabled` in `text`, in `context`, without overlaps, in text order.
pub fn find_in(text: &str, enabled: &[Entity], context: &Context<'_>) -> Vec<Finding> {
    let bytes = text.as_bytes();
    let counts = Counts::of(bytes);
    let hold = counts.map_or_else(|| may_hold(bytes), |c| c.may_hold(bytes.len()));
    if !hold || timestamp(bytes) {
        return Vec::new();
    }
    let facts = counts
        .and_then(Counts::facts)
        .unwrap_or_else(|| Facts::of(bytes));
    detectors(text, enabled, context, &facts)
}

/// [`find_in`] without its shortcuts: the necessary conditions, then the detectors (what the
/// tests hold the shortcuts to).
#[cfg(test)]
pub(super) fn scan(text: &str, enabled: &[Entity], context: &Context<'_>) -> Vec<Finding> {
    detectors(text, enabled, context, &Facts::of(text.as_bytes()))
}

/// The detectors whose necessary conditions `facts` meets.
fn detectors(text: &str, enabled: &[Entity], context: &Context<'_>, facts: &Facts) -> Vec<Finding> {
    let bytes = text.as_bytes();
    if !facts.any() {
        return Vec::new();
    }
    let mut found: Vec<Finding> = Vec::new();
    let mut push = |entity: Entity, start: usize, end: usize| {
        if !found.iter().any(|f| start < f.end && f.start < end) {
            found.push(Finding { entity, start, end });
        }
    };
    for &entity in Entity::ALL.iter().filter(|e| enabled.contains(e)) {
        match entity {
            Entity::Email if facts.at => {
                for (start, end) in super::email::find_iter(bytes) {
                    push(entity, start, end);
                }
            }
            Entity::Iban if facts.iban => {
                for m in IBAN.find_iter(text) {
                    let compact: Vec<u8> = m.as_str().bytes().filter(|b| *b != b' ').collect();
                    if iban_valid(&compact) {
                        push(entity, m.start(), m.end());
                    }
                }
            }
            Entity::Card if facts.run >= 12 => {
                for m in CARD.find_iter(text) {
                    let d = digits(m.as_str().as_bytes());
                    // Separators, when present, must be used consistently (`4111 1111 …`).
                    let seps: Vec<u8> =
                        m.as_str().bytes().filter(|b| !b.is_ascii_digit()).collect();
                    let consistent = seps.windows(2).all(|w| w[0] == w[1]);
                    // `+49…` is a phone number, not a card.
                    let signed = m.start() > 0 && bytes[m.start() - 1] == b'+';
                    if (12..=19).contains(&d.len())
                        && consistent
                        && !signed
                        && !in_digit_run(bytes, m.start(), m.end())
                        && card_issuer(&d)
                        && luhn(&d)
                    {
                        push(entity, m.start(), m.end());
                    }
                }
            }
            Entity::Ssn if facts.ssn => {
                for m in SSN.find_iter(text) {
                    if ssn_valid(m.as_str().as_bytes())
                        && !continues(bytes, m.end(), b'-')
                        && !(m.start() > 0 && bytes[m.start() - 1] == b'-')
                    {
                        push(entity, m.start(), m.end());
                    }
                }
            }
            Entity::Ipv6 if facts.ipv6() => {
                for m in IPV6.find_iter(text) {
                    let s = m.as_str();
                    let before = m.start().checked_sub(1).map(|i| bytes[i]);
                    let glued = before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b':')
                        || bytes
                            .get(m.end())
                            .is_some_and(|b| b.is_ascii_alphanumeric());
                    if !glued
                        && s.len() >= 3
                        && s.bytes().any(|b| b.is_ascii_hexdigit())
                        && s.parse::<Ipv6Addr>().is_ok()
                    {
                        push(entity, m.start(), m.end());
                    }
                }
            }
            Entity::Ipv4 if facts.ipv4() => {
                for m in IPV4.find_iter(text) {
                    let glued = (m.start() > 0 && bytes[m.start() - 1] == b'.')
                        || continues(bytes, m.end(), b'.');
                    if !glued && m.as_str().parse::<Ipv4Addr>().is_ok() {
                        push(entity, m.start(), m.end());
                    }
                }
            }
            Entity::Phone if facts.phone_run >= 7 => {
                let mut phone_field = None;
                for m in super::phone::CANDIDATE.find_iter(bytes) {
                    let (start, end) = (m.start(), m.end());
                    // Glued to a word (`AB-1234-5678`, a UUID's groups, `v1.2.3`): part of an
                    // identifier, not a number on its own.
                    let glued = (start > 0 && bytes[start - 1].is_ascii_alphanumeric())
                        || (start > 1
                            && matches!(bytes[start - 1], b'-' | b'_' | b'/' | b'.' | b':')
                            && bytes[start - 2].is_ascii_alphanumeric())
                        || bytes.get(end).is_some_and(u8::is_ascii_alphanumeric)
                        || (matches!(bytes.get(end), Some(b'-' | b'_' | b'/' | b'.' | b':'))
                            && bytes.get(end + 1).is_some_and(u8::is_ascii_alphanumeric));
                    if glued {
                        continue;
                    }
                    let field = *phone_field.get_or_insert_with(|| {
                        let name = context.field.rsplit('.').next().unwrap_or_default();
                        super::phone::phone_field(name)
                    });
                    let said = field || super::phone::phone_words_before(bytes, start);
                    if super::phone::is_phone(&text[start..end], said, context.regions) {
                        push(entity, start, end);
                    }
                }
            }
            _ => {}
        }
    }
    found.sort_by_key(|f| f.start);
    found
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64;

    use super::*;

    /// Where the counts stand in for the facts' pass, the detectors find what they find after
    /// the pass; and a value the counts say cannot hold anything has nothing to find.
    #[test]
    fn the_counts_shortcut_finds_what_the_full_pass_finds() {
        let pieces = [
            "a",
            "Z",
            "Q",
            "7",
            "123",
            "4111",
            "-",
            " ",
            ".",
            ":",
            "@",
            "+",
            "(",
            ")",
            "x",
            "\\",
            "é",
            "ann@example.com",
            "+1-464-236-8794",
            "078-05-1120",
            "DE89",
            "1.2.3.4",
            "::1",
            "4111 1111 1111 1111",
            "GB82 WEST 1234 5698 7654 32",
            "marker1979+12345@zoho.com",
        ];
        let mut r = Pcg64::seed_from_u64(7);
        let (mut short, mut found) = (0, 0);
        for _ in 0..40_000 {
            let mut text = String::new();
            for _ in 0..r.random_range(1..12) {
                text.push_str(pieces[r.random_range(0..pieces.len())]);
            }
            let bytes = text.as_bytes();
            let context = Context::default();
            let full = scan(&text, &Entity::ALL, &context);
            let counts = Counts::of(bytes).expect("short values are counted");
            if !counts.may_hold(bytes.len()) {
                assert_eq!(full, vec![], "{text:?}");
            }
            if let Some(facts) = counts.facts() {
                short += 1;
                found += full.len();
                assert_eq!(
                    detectors(&text, &Entity::ALL, &context, &facts),
                    full,
                    "{text:?}"
                );
            }
            assert_eq!(find_in(&text, &Entity::ALL, &context), full, "{text:?}");
        }
        assert!(
            short > 5_000 && found > 1_000,
            "{short} short, {found} found"
        );
    }

    /// A value too long to count in lanes takes the full pass, with the same answer.
    #[test]
    fn long_values_are_counted_the_long_way() {
        let text = format!(
            "{} call +1-464-236-8794 or ann@example.com",
            "word ".repeat(300)
        );
        assert!(Counts::of(text.as_bytes()).is_none());
        assert!(may_hold(text.as_bytes()));
        assert!(!may_hold("word ".repeat(300).as_bytes()));
        let found = find(&text, &Entity::ALL);
        let entities: Vec<Entity> = found.iter().map(|f| f.entity).collect();
        assert_eq!(entities, vec![Entity::Phone, Entity::Email], "{found:?}");
    }
}
