//! Numbering plans compiled once, for the phone detector's hot path.
//!
//! `phonenumber::parse` and `is_valid` read libphonenumber's metadata through one LRU cache of
//! compiled expressions, keyed by the expression's text and held behind a mutex: every match
//! hashes a pattern of hundreds of bytes and takes the lock, a dozen times per region tried.
//! Here each region's expressions are compiled once (on first use, anchored where the crate
//! matches from the start) and the crate's steps — IDD, country code, national prefix and its
//! transform, possible lengths, number type — are done on the candidate's digits directly. The
//! unit tests hold this to the crate's own answers on numbers built from the metadata's examples.

use std::borrow::Cow;
use std::sync::{LazyLock, OnceLock};

use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

/// The shortest and longest national significant numbers the crate takes.
const NSN: std::ops::RangeInclusive<usize> = 2..=17;

/// One descriptor: its pattern, matched from the start as the crate does, and its lengths.
struct Desc {
    pattern: Pattern,
    lengths: Vec<u16>,
    local: Vec<u16>,
}

impl Desc {
    fn of(d: &Descriptor) -> Desc {
        Desc {
            pattern: Pattern::new(d.national_number().as_str()),
            lengths: d.possible_length().to_vec(),
            local: d.possible_local_length().to_vec(),
        }
    }

    fn is_match(&self, nsn: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&(nsn.len() as u16)))
            && self.pattern.is_match(nsn)
    }
}

/// How a length stands against the general descriptor (the crate's `Validation`).
#[derive(PartialEq)]
enum Length {
    Possible,
    TooShort,
    Other,
}

/// One region's plan.
struct Plan {
    code: u16,
    /// The country code as digits.
    code_text: String,
    idd: Option<Pattern>,
    national_prefix: Option<String>,
    for_parsing: Option<Pattern>,
    transform: Option<String>,
    leading_digits: Option<Pattern>,
    general: Desc,
    /// Every type's descriptor: a number matching the general one and any of these is valid.
    kinds: Vec<Desc>,
    /// Every length any of its descriptors allows.
    any_length: Vec<u16>,
}

/// A metadata pattern compiled as the crate compiles it (whitespace in it is layout), matched
/// from the start. Candidates are digits, so it runs as a compiled DFA over ASCII: a table walk
/// that stops at the first byte no number of the pattern can have, with none of a regex
/// engine's per-call set-up (a dozen calls per candidate made that most of the cost).
struct Pattern {
    dfa: dense::DFA<Vec<u32>>,
    /// The anchored start state at the start of a text: the same for every candidate, so it
    /// is looked up once rather than per search.
    start: StateID,
    /// Bit `100 * a + 10 * b + c`: whether some text starting with digits `abc` can match. Most
    /// candidates are refused by this one lookup (a country code's twenty regions are tried
    /// by their leading digits).
    starts: [u64; 16],
    /// For the groups a national-prefix transform reads, compiled on first use.
    groups: OnceLock<Regex>,
    text: String,
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        // The newline ends any `#` comment the layout mode would read, before the group closes.
        let text = format!("^(?:{pattern}\n)");
        let dfa = dense::Builder::new()
            .configure(dense::Config::new().start_kind(StartKind::Anchored))
            .syntax(syntax::Config::new().ignore_whitespace(true).unicode(false))
            .build(&text)
            .expect("libphonenumber's patterns compile");
        let start = dfa
            .start_state_forward(&Input::new("").anchored(Anchored::Yes))
            .expect("an anchored start state");
        Pattern {
            starts: starts(&dfa, start),
            start,
            dfa,
            groups: OnceLock::new(),
            text,
        }
    }

    /// Whether the text's first three bytes are digits the pattern cannot start with.
    fn refuses(&self, text: &str) -> bool {
        start_index(text).is_some_and(|i| !self.may_start(i))
    }

    /// Whether some text starting with the digits of [`start_index`] `i` can match.
    fn may_start(&self, i: usize) -> bool {
        self.starts[i / 64] & (1 << (i % 64)) != 0
    }

    /// Where the leftmost-first match from the start ends (the crate's `find` at 0).
    fn end(&self, text: &str) -> Option<usize> {
        if self.refuses(text) {
            return None;
        }
        self.walk(text, false)
    }

    fn is_match(&self, text: &str) -> bool {
        !self.refuses(text) && self.walk(text, true).is_some()
    }

    /// The DFA's table walk from the cached start state, as `try_search_fwd` does it for an
    /// anchored search (a match state reports a match ending one byte back; the end of the
    /// text is one more transition), without its per-call set-up. `earliest` stops at the
    /// first match.
    fn walk(&self, text: &str, earliest: bool) -> Option<usize> {
        let dfa = &self.dfa;
        let mut state = self.start;
        let mut last = None;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            state = dfa.next_state(state, b);
            if dfa.is_special_state(state) {
                if dfa.is_match_state(state) {
                    last = Some(i);
                    if earliest {
                        return last;
                    }
                } else if dfa.is_dead_state(state) {
                    return last;
                } else if dfa.is_quit_state(state) {
                    // Not built with quit bytes; the engine's own search if it ever is.
                    let input = Input::new(text).anchored(Anchored::Yes).earliest(earliest);
                    return dfa
                        .try_search_fwd(&input)
                        .ok()
                        .flatten()
                        .map(|m| m.offset());
                }
            }
        }
        if dfa.is_match_state(dfa.next_eoi_state(state)) {
            last = Some(text.len());
        }
        last
    }

    fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        if self.refuses(text) {
            return None;
        }
        self.groups
            .get_or_init(|| {
                regex::RegexBuilder::new(&self.text)
                    .ignore_whitespace(true)
                    .build()
                    .expect("libphonenumber's patterns compile")
            })
            .captures(text)
    }
}

/// `100 * a + 10 * b + c` for a text starting with the digits `abc`.
fn start_index(text: &str) -> Option<usize> {
    match text.as_bytes() {
        [a @ b'0'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', ..] => {
            Some(usize::from(a - b'0') * 100 + usize::from(b - b'0') * 10 + usize::from(c - b'0'))
        }
        _ => None,
    }
}

/// Which three-digit starts the anchored DFA can match: a match within them, or a state after
/// them that is not dead, walking from the anchored start state `start`.
fn starts(dfa: &dense::DFA<Vec<u32>>, start: StateID) -> [u64; 16] {
    // A match so far (the DFA reports one a byte late, or at the end of the input).
    let matched = |s| dfa.is_match_state(s) || dfa.is_match_state(dfa.next_eoi_state(s));
    if matched(start) {
        return [u64::MAX; 16];
    }
    let mut table = [0u64; 16];
    for a in 0..10u8 {
        let one = dfa.next_state(start, b'0' + a);
        let one_matched = matched(one);
        if dfa.is_dead_state(one) && !one_matched {
            continue;
        }
        for b in 0..10u8 {
            let two = dfa.next_state(one, b'0' + b);
            let two_matched = one_matched || matched(two);
            for c in 0..10u8 {
                let three = dfa.next_state(two, b'0' + c);
                if two_matched || !dfa.is_dead_state(three) || matched(three) {
                    let i = usize::from(a) * 100 + usize::from(b) * 10 + usize::from(c);
                    table[i / 64] |= 1 << (i % 64);
                }
            }
        }
    }
    table
}

impl Plan {
    fn of(m: &Metadata) -> Plan {
        let d = m.descriptors();
        // The common types first: `valid` stops at the first that matches.
        let kinds: Vec<&Descriptor> = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut any_length: Vec<u16> = std::iter::once(d.general())
            .chain(kinds.iter().copied())
            .flat_map(|k| k.possible_length().iter().copied())
            .collect();
        any_length.sort_unstable();
        any_length.dedup();
        Plan {
            code: m.country_code(),
            code_text: m.country_code().to_string(),
            idd: m.international_prefix().map(|r| Pattern::new(r.as_str())),
            national_prefix: m.national_prefix().map(str::to_string),
            for_parsing: m
                .national_prefix_for_parsing()
                .map(|r| Pattern::new(r.as_str())),
            transform: m.national_prefix_transform_rule().map(str::to_string),
            leading_digits: m.leading_digits().map(|r| Pattern::new(r.as_str())),
            general: Desc::of(d.general()),
            kinds: kinds.into_iter().map(Desc::of).collect(),
            any_length,
        }
    }

    /// The crate's `number_type(…) != Unknown`.
    fn valid(&self, nsn: &str) -> bool {
        self.general.is_match(nsn) && self.kinds.iter().any(|k| k.is_match(nsn))
    }

    /// The crate's `validator::length(meta, number, Type::Unknown)`.
    fn length(&self, len: usize) -> Length {
        let len = len as u16;
        let possible = &self.general.lengths;
        let Some((&min, &max)) = possible.first().zip(possible.last()) else {
            return Length::Other;
        };
        if self.general.local.contains(&len) || len == min {
            Length::Possible
        } else if len < min {
            Length::TooShort
        } else if len <= max && possible.contains(&len) {
            Length::Possible
        } else {
            Length::Other
        }
    }

    /// The crate's national-prefix step: strip the prefix for parsing (or apply its transform)
    /// where what is left still fits the plan, then the national prefix itself; kept only if
    /// not too short.
    fn national<'a>(&self, number: Cow<'a, str>) -> Cow<'a, str> {
        let mut potential = number.clone();
        if let Some(parsing) = &self.for_parsing {
            // Groups only where a transform needs them (captures cost more than a match).
            let caps = match &self.transform {
                Some(_) => parsing.captures(&potential),
                None => None,
            };
            match (&self.transform, caps) {
                // The last group, or the whole match where there are none (as the crate
                // reads it).
                (Some(rule), Some(caps)) if caps.get(caps.len() - 1).is_some() => {
                    let end = caps.get(0).map_or(0, |m| m.end());
                    let mut next = String::new();
                    caps.expand(rule, &mut next);
                    next.push_str(&potential[end..]);
                    // Kept unless it spoils a number that fitted the plan.
                    if !self.general.is_match(&potential) || self.general.is_match(&next) {
                        potential = Cow::Owned(next);
                    }
                }
                // The crate's viability check here compares the number with itself, so the
                // prefix is always stripped.
                _ => {
                    if let Some(end) = parsing.end(&potential) {
                        potential = skip(potential, end);
                    }
                }
            }
        } else if let Some(prefix) = &self.national_prefix
            && potential.starts_with(prefix.as_str())
        {
            potential = skip(potential, prefix.len());
        }
        if let Some(prefix) = &self.national_prefix
            && potential.starts_with(prefix.as_str())
        {
            potential = skip(potential, prefix.len());
        }
        if self.length(potential.len()) == Length::TooShort {
            number
        } else {
            potential
        }
    }
}

/// `text` without its first `n` bytes (ASCII digits), borrowed where it was.
fn skip(text: Cow<'_, str>, n: usize) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(t) => Cow::Borrowed(&t[n..]),
        Cow::Owned(t) => Cow::Owned(t[n..].to_string()),
    }
}

/// One of a country code's regions: a region with an id, or the code's non-geographic entity
/// (`+800` freephone and the like, which all share the id `001`).
#[derive(Clone, Copy)]
enum Region {
    Id(Id),
    NonGeographic,
}

/// Every region's plan, compiled on first use; found by index (the hot path hashes nothing).
struct Plans {
    /// By `Id as usize`; `None` inside for an id the metadata does not have.
    by_region: Vec<OnceLock<Option<Plan>>>,
    /// By country code.
    non_geographic: Vec<OnceLock<Plan>>,
    /// The regions of each country code (by code, empty for none), in the metadata's order.
    by_code: Vec<Vec<Region>>,
    /// For each code of several regions, compiled on first use: [`source_for`]'s candidates.
    sources: Vec<OnceLock<Sources>>,
}

/// The plans [`source_for`] tries for one country code, in the metadata's order: all of them,
/// and, by a number's first three digits, those whose leading digits can start with them (or
/// that have none). NANP's 25 regions are otherwise walked for every US number the US plan
/// refuses.
struct Sources {
    all: Vec<&'static Plan>,
    by_start: Vec<Vec<&'static Plan>>,
}

impl Sources {
    fn of(code: u16) -> Sources {
        let all: Vec<&'static Plan> = regions_of(code)
            .iter()
            .filter_map(|r| plan_in(code, *r))
            .collect();
        let by_start = (0..1000)
            .map(|i| {
                all.iter()
                    .copied()
                    .filter(|p| p.leading_digits.as_ref().is_none_or(|l| l.may_start(i)))
                    .collect()
            })
            .collect();
        Sources { all, by_start }
    }

    /// The plans that may be `nsn`'s source: those a first-three-digit refusal leaves.
    fn of_number(&self, nsn: &str) -> &[&'static Plan] {
        match start_index(nsn) {
            Some(i) => &self.by_start[i],
            None => &self.all,
        }
    }
}

/// Country codes have one to three digits.
const CODES: usize = 1000;

const NON_GEOGRAPHIC: &str = "001";

static PLANS: LazyLock<Plans> = LazyLock::new(|| {
    let db: &'static phonenumber::metadata::Database = &DATABASE;
    let mut by_code: Vec<Vec<Region>> = vec![Vec::new(); CODES];
    let mut most = 0;
    // `iter` gives one entry per region id, and the non-geographic entities share one, so
    // codes are walked instead.
    for (code, regions) in by_code.iter_mut().enumerate() {
        let Some(ids) = db.region(&(code as u16)) else {
            continue;
        };
        for id in ids {
            if id == NON_GEOGRAPHIC {
                regions.push(Region::NonGeographic);
            } else if let Ok(id) = id.parse::<Id>() {
                most = most.max(id as usize);
                regions.push(Region::Id(id));
            }
        }
    }
    Plans {
        by_region: (0..=most).map(|_| OnceLock::new()).collect(),
        non_geographic: (0..CODES).map(|_| OnceLock::new()).collect(),
        by_code,
        sources: (0..CODES).map(|_| OnceLock::new()).collect(),
    }
});

/// The plan of a region, if the metadata has it.
fn plan(id: Id) -> Option<&'static Plan> {
    PLANS
        .by_region
        .get(id as usize)?
        .get_or_init(|| DATABASE.by_id(id.as_ref()).map(Plan::of))
        .as_ref()
}

fn plan_in(code: u16, region: Region) -> Option<&'static Plan> {
    match region {
        Region::Id(id) => plan(id),
        Region::NonGeographic => {
            let cell = PLANS.non_geographic.get(usize::from(code))?;
            Some(cell.get_or_init(|| {
                let metas = DATABASE
                    .by_code(&code)
                    .expect("codes are read from the database");
                Plan::of(metas[0])
            }))
        }
    }
}

fn regions_of(code: u16) -> &'static [Region] {
    PLANS
        .by_code
        .get(usize::from(code))
        .map_or(&[], Vec::as_slice)
}

/// The crate's `source_for`: the region of `code` whose leading digits (or whose types) fit.
fn source_for(code: u16, nsn: &str) -> Option<&'static Plan> {
    match regions_of(code) {
        [] => return None,
        [only] => return plan_in(code, *only),
        _ => {}
    }
    let sources = PLANS.sources.get(usize::from(code))?;
    sources
        .get_or_init(|| Sources::of(code))
        .of_number(nsn)
        .iter()
        .copied()
        .find(|p| match &p.leading_digits {
            Some(leading) => leading.is_match(nsn),
            None => p.valid(nsn),
        })
}

/// A number read the crate's way: its country code and national significant number.
pub struct Read {
    pub code: u16,
    /// The national significant number's digits (at most 17), kept in place.
    digits: [u8; 17],
    len: u8,
    /// The region [`source_for`] gave for this very number while reading it, when it did:
    /// [`is_valid`] asks the same question of the same digits.
    source: Option<Option<&'static Plan>>,
}

impl PartialEq for Read {
    fn eq(&self, other: &Read) -> bool {
        self.code == other.code && self.digits() == other.digits()
    }
}

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "+{} {}", self.code, self.nsn())
    }
}

impl Read {
    fn digits(&self) -> &[u8] {
        &self.digits[..usize::from(self.len)]
    }

    /// The national significant number.
    pub fn nsn(&self) -> &str {
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }
}

/// Read `digits` (ASCII digits only) as the crate's `parse` does: `plus` for a number written
/// with `+`, else national in `region` (an ISO 3166 code). `None` where `parse` fails.
pub fn read(digits: &str, plus: bool, region: Option<Id>) -> Option<Read> {
    let home = match region {
        Some(r) => Some(plan(r)?),
        None => None,
    };
    let mut number = Cow::Borrowed(digits);
    let mut international = plus;
    if !plus
        && let Some(idd) = home.and_then(|h| h.idd.as_ref())
        && let Some(end) = idd.end(&number)
        && !number[end..].starts_with('0')
    {
        number = skip(number, end);
        international = true;
    }
    let code = if international {
        if number.len() <= 2 || number.starts_with('0') {
            return None;
        }
        let len = (1..=3).find(|&len| {
            number[..len]
                .parse::<u16>()
                .is_ok_and(|c| !regions_of(c).is_empty())
        })?;
        let code = number[..len].parse::<u16>().ok()?;
        number = skip(number, len);
        code
    } else {
        let home = home?;
        let prefix = home.code_text.as_str();
        if number.starts_with(prefix)
            && (!home.general.is_match(&number) || home.length(number.len()) != Length::Possible)
        {
            number = skip(number, prefix.len());
        }
        home.code
    };
    let (meta, asked) = match home {
        Some(h) => (Some(h), None),
        None => {
            let key = number.trim_start_matches('0');
            let source = source_for(code, key);
            (source, Some((key.len(), source)))
        }
    };
    let before = number.len();
    if let Some(meta) = meta {
        number = meta.national(number);
    }
    // Asked of these digits if the national step left them as they were (it only cuts a
    // prefix, or rewrites them) and no leading zero was trimmed for the question.
    let source = asked
        .filter(|&(key, _)| {
            key == before && number.len() == before && meta.is_none_or(|m| m.transform.is_none())
        })
        .map(|(_, source)| source);
    if !NSN.contains(&number.len()) {
        return None;
    }
    // The crate keeps the number as its leading zeros and a value under 2^56, so all zeros
    // (no value) and values past it are not numbers.
    let value = number.trim_start_matches('0');
    if value.is_empty() || value.parse::<u64>().map_or(true, |v| v >= 1 << 56) {
        return None;
    }
    let mut read = Read {
        code,
        digits: [0; 17],
        len: number.len() as u8,
        source,
    };
    read.digits[..number.len()].copy_from_slice(number.as_bytes());
    Some(read)
}

/// The crate's `is_valid`.
pub fn is_valid(read: &Read) -> bool {
    let nsn = read.nsn();
    read.source
        .unwrap_or_else(|| source_for(read.code, nsn))
        .is_some_and(|p| p.valid(nsn))
}

/// Whether the national number has a length some type of its country's numbers may have.
pub fn is_possible(read: &Read) -> bool {
    let len = u16::from(read.len);
    regions_of(read.code)
        .iter()
        .filter_map(|r| plan_in(read.code, *r))
        .any(|p| p.any_length.contains(&len))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the crate answers for the same digits.
    fn crate_says(
        digits: &str,
        plus: bool,
        region: Option<phonenumber::country::Id>,
    ) -> Option<bool> {
        let text = if plus {
            format!("+{digits}")
        } else {
            digits.to_string()
        };
        phonenumber::parse(region, &text)
            .ok()
            .map(|n| phonenumber::is_valid(&n))
    }

    /// Numbers built from every region's example numbers — bare, with the trunk prefix, with
    /// the country code, with the IDD, cut short and run long, a digit changed — read and
    /// validated here and by the crate, with the same answers.
    #[test]
    fn the_plans_agree_with_the_crate() {
        let regions = super::super::phone::DEFAULT_REGIONS;
        // The crate's own cache holds 100 expressions, which this many regions overflow (each
        // parse would compile its expressions again): room for all, so the test is quick.
        if let Ok(mut cache) = DATABASE.cache().lock() {
            *cache = regex_cache::RegexCache::new(16_384);
        }
        let mut inputs: Vec<String> = Vec::new();
        for m in DATABASE.iter() {
            let d = m.descriptors();
            let examples = [d.general()]
                .into_iter()
                .chain(
                    [
                        d.fixed_line(),
                        d.mobile(),
                        d.toll_free(),
                        d.premium_rate(),
                        d.voip(),
                    ]
                    .into_iter()
                    .flatten(),
                )
                .filter_map(Descriptor::example);
            for e in examples {
                let code = m.country_code();
                let prefix = m.national_prefix().unwrap_or("0");
                inputs.push(e.to_string());
                inputs.push(format!("{prefix}{e}"));
                inputs.push(format!("{code}{e}"));
                inputs.push(format!("00{code}{e}"));
                inputs.push(format!("011{code}{e}"));
                inputs.push(e[..e.len() - 1].to_string());
                inputs.push(format!("{e}7"));
                let mut changed = e.as_bytes().to_vec();
                let i = changed.len() / 2;
                changed[i] = b'0' + (changed[i] - b'0' + 3) % 10;
                inputs.push(String::from_utf8(changed).unwrap());
            }
        }
        assert!(inputs.len() > 5_000, "{}", inputs.len());
        let (mut checked, mut valid) = (0, 0);
        for input in &inputs {
            if !input.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let ours = read(input, true, None).map(|r| is_valid(&r));
            assert_eq!(ours, crate_says(input, true, None), "+{input}");
            for &region in regions {
                let id: &str = region.as_ref();
                let ours = read(input, false, Some(region)).map(|r| is_valid(&r));
                let theirs = crate_says(input, false, Some(region));
                assert_eq!(ours, theirs, "{input} in {id}");
                checked += 1;
                valid += usize::from(theirs == Some(true));
            }
        }
        // The comparison means something only if both answers occur often.
        assert!(
            valid > 1_000 && checked - valid > 10_000,
            "{valid} of {checked}"
        );
    }

    /// The by-start table of a code's regions gives the region the metadata's order gives:
    /// every three-digit start at several lengths, and every region's example numbers.
    #[test]
    fn sources_by_start_agree_with_the_regions_in_order() {
        let linear = |code: u16, nsn: &str| {
            regions_of(code)
                .iter()
                .filter_map(|r| plan_in(code, *r))
                .find(|p| match &p.leading_digits {
                    Some(leading) => leading.is_match(nsn),
                    None => p.valid(nsn),
                })
                .map(|p| p as *const Plan)
        };
        let (mut codes, mut found) = (0, 0);
        for code in 1..CODES as u16 {
            if regions_of(code).len() < 2 {
                continue;
            }
            codes += 1;
            let mut numbers: Vec<String> = DATABASE
                .by_code(&code)
                .into_iter()
                .flatten()
                .flat_map(|m| {
                    let d = m.descriptors();
                    [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free()]
                        .into_iter()
                        .flatten()
                        .filter_map(|d| d.example().map(str::to_string))
                        .collect::<Vec<_>>()
                })
                .collect();
            for start in 0..1000 {
                for tail in ["", "5", "5550", "5550123", "55501234567"] {
                    numbers.push(format!("{start:03}{tail}"));
                }
            }
            numbers.extend(["", "4", "47"].map(str::to_string));
            for nsn in &numbers {
                let ours = source_for(code, nsn).map(|p| p as *const Plan);
                assert_eq!(ours, linear(code, nsn), "+{code} {nsn}");
                found += usize::from(ours.is_some());
            }
        }
        assert!(codes > 10 && found > 1_000, "{codes} codes, {found} found");
    }

    /// A policy may name any region: every region's plan compiles and reads a number.
    #[test]
    fn every_region_has_a_plan() {
        let mut regions = 0;
        for code in 1..CODES as u16 {
            for &region in regions_of(code) {
                let plan = plan_in(code, region).expect("a plan for every listed region");
                assert_eq!(plan.code, code);
                if let Region::Id(id) = region {
                    let _ = read("0123456789", false, Some(id));
                }
                regions += 1;
            }
        }
        assert!(regions > 240, "{regions}");
    }

    /// A pattern matches from the start, as the crate's `find` at 0 does, and ends where the
    /// regex engine's leftmost-first match ends.
    #[test]
    fn patterns_match_from_the_start() {
        let p = Pattern::new(r"[2-9]\d{9}|3\d{6}");
        for (text, yes) in [
            ("0123456789", false),
            ("2015550123", true),
            ("20155501234", true),
            ("3123456", true),
            ("201555", false),
            ("x2015550123", false),
        ] {
            assert_eq!(p.is_match(text), yes, "{text}");
        }
        // Layout mode, a comment, groups: as the crate's expression reads them.
        let p = Pattern::new("(?:\n  1 # trunk\n  ([2-9]\\d{2})\n)?");
        assert_eq!(p.end("1201"), Some(4));
        assert_eq!(p.end("0201"), Some(0));
        let caps = p.captures("1201").unwrap();
        assert_eq!(caps.get(1).map(|m| m.as_str()), Some("201"));
        // Leftmost-first, like the regex engine: the first alternative that matches wins.
        let p = Pattern::new("0|01");
        assert_eq!(p.end("01"), Some(1));
        // The start table refuses what cannot match, and only that.
        let us = plan(Id::US).unwrap();
        let kept: u32 = us
            .general
            .pattern
            .starts
            .iter()
            .map(|s| s.count_ones())
            .sum();
        assert!(kept <= 800, "{kept} of 1000 starts kept for US numbers");
        assert!(us.general.pattern.refuses("0678357187"));
        assert!(!us.general.pattern.refuses("2015550123"));
    }

    /// The table walk gives the engine's own answers: every pattern of every default region,
    /// on random digit strings of every length a candidate has (and a few non-digits).
    #[test]
    fn the_walk_agrees_with_the_engine() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut patterns = Vec::new();
        for &id in super::super::phone::DEFAULT_REGIONS {
            let p = plan(id).unwrap();
            patterns.extend([&p.general.pattern]);
            patterns.extend(p.kinds.iter().map(|k| &k.pattern));
            patterns.extend(
                [&p.idd, &p.for_parsing, &p.leading_digits]
                    .into_iter()
                    .flatten(),
            );
        }
        let (mut matched, mut tried) = (0, 0);
        for p in patterns {
            for _ in 0..400 {
                let len = (next() % 19) as usize;
                let text: String = (0..len)
                    .map(|_| match next() % 40 {
                        0 => 'x',
                        n => char::from(b'0' + (n % 10) as u8),
                    })
                    .collect();
                let input = Input::new(&text).anchored(Anchored::Yes);
                let theirs = p.dfa.try_search_fwd(&input).unwrap().map(|m| m.offset());
                assert_eq!(p.walk(&text, false), theirs, "{} on {text}", p.text);
                let earliest = p.dfa.try_search_fwd(&input.clone().earliest(true)).unwrap();
                assert_eq!(p.walk(&text, true).is_some(), earliest.is_some(), "{text}");
                tried += 1;
                matched += usize::from(theirs.is_some());
            }
        }
        assert!(
            matched > 1_000 && tried - matched > 1_000,
            "{matched} of {tried}"
        );
    }

    #[test]
    fn national_numbers_lose_their_prefixes() {
        let r = read("03012345678", false, Some(Id::DE)).unwrap();
        assert_eq!((r.code, r.nsn()), (49, "3012345678"));
        assert!(is_valid(&r));
        let r = read("4930123456", true, None).unwrap();
        assert_eq!(r.code, 49);
        let r = read("0114930123456", false, Some(Id::US)).unwrap();
        assert_eq!(r.code, 49, "the IDD makes it international");
        let r = read("2015550123", false, Some(Id::US)).unwrap();
        assert_eq!((r.code, r.nsn()), (1, "2015550123"));
    }
}
