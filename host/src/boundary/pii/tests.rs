use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

use super::*;

fn policy(toml_text: &str) -> PiiPolicy {
    let file: policy::PiiFile = toml::from_str(toml_text).unwrap();
    file.check().unwrap()
}

fn masker(p: PiiPolicy, workspace_key: u8) -> Masker {
    Masker::new(p, Zeroizing::new([workspace_key; 32]))
}

fn run(m: &Masker, stream: &str, line: &str) -> (Value, MaskStats) {
    let mut stats = MaskStats::default();
    let (out, _) = m.apply(stream, line.as_bytes(), &mut stats).unwrap();
    (serde_json::from_slice(&out).unwrap(), stats)
}

#[test]
fn field_rules_do_what_they_say_and_count_without_values() {
    let p = policy(
        r#"
        [[fields]]
        stream = "users"
        path = "email"
        rule = "hash"
        [[fields]]
        path = "card"
        rule = "mask"
        keep_last = 4
        [[fields]]
        path = "address.street"
        rule = "drop"
        [[fields]]
        path = "created_at"
        rule = "generalize"
        to = "month"
        [[fields]]
        path = "age"
        rule = "generalize"
        bucket = 10
        [[fields]]
        path = "version"
        rule = "keep"
        [[fields]]
        path = "note"
        rule = "redact"
        "#,
    );
    let m = masker(p, 1);
    let line = r#"{"email":"ann@example.com","card":"4111111111111111","address":{"street":"1 Main St","city":"Oslo"},"created_at":"2024-03-15T10:00:00Z","age":37,"version":"1.2.3.4","note":"x","bio":"call +44 20 7946 0958 or mail bob@example.org"}"#;
    let (v, stats) = run(&m, "users", line);
    assert_eq!(v["email"].as_str().unwrap().len(), 64);
    assert_eq!(v["card"], "************1111");
    assert!(v["address"].get("street").is_none());
    assert_eq!(v["address"]["city"], "Oslo");
    assert_eq!(v["created_at"], "2024-03");
    assert_eq!(v["age"], 30);
    assert_eq!(
        v["version"], "1.2.3.4",
        "keep exempts a field from the detectors"
    );
    assert_eq!(v["note"], "[redacted]");
    assert_eq!(v["bio"], "call [phone] or mail [email]");
    let text = serde_json::to_string(&stats.lines()).unwrap();
    assert!(!text.contains("ann@") && !text.contains("7946"), "{text}");
    let by: Vec<(String, String)> = stats.lines().into_iter().map(|l| (l.field, l.by)).collect();
    assert!(by.contains(&("email".into(), "hash".into())));
    assert!(by.contains(&("address.street".into(), "drop".into())));
    assert!(by.contains(&("bio".into(), "email".into())));
    assert!(by.contains(&("bio".into(), "phone".into())));

    // Another stream: the `users`-only hash does not apply, so the detector catches the email.
    let (v, _) = run(&m, "orders", r#"{"email":"ann@example.com"}"#);
    assert_eq!(v["email"], "[email]");
}

#[test]
fn hashes_are_stable_per_workspace_and_differ_across_workspaces() {
    let p = policy("[[fields]]\npath = \"email\"\nrule = \"hash\"\n");
    let line = r#"{"email":"ann@example.com"}"#;
    let a1 = run(&masker(p.clone(), 1), "s", line).0;
    let a2 = run(&masker(p.clone(), 1), "s", line).0;
    let b = run(&masker(p, 2), "s", line).0;
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
}

#[test]
fn a_rule_that_cannot_apply_fails_closed() {
    let p = policy("[[fields]]\npath = \"when\"\nrule = \"generalize\"\nto = \"day\"\n");
    let (v, _) = run(&masker(p, 1), "s", r#"{"when":"last tuesday at 5"}"#);
    assert_eq!(v["when"], "[redacted]");
}

/// A ruled value is still checked as JSON, whatever the rule: redacting a value serde_json
/// refuses (a lone surrogate, a number no float holds, nesting past its limit) refuses the
/// record, as it did when every ruled value was parsed; a plain string is redacted in place.
#[test]
fn a_redacted_value_is_still_checked_as_json() {
    let m = masker(
        policy("[[fields]]\npath = \"note\"\nrule = \"redact\"\n"),
        1,
    );
    let deep = format!("{{\"note\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    for bad in [r#"{"note":"\ud800"}"#, r#"{"note":1e400}"#, deep.as_str()] {
        let mut stats = MaskStats::default();
        let e = m.apply("s", bad.as_bytes(), &mut stats).unwrap_err();
        assert_eq!(e.line, 1, "{bad}");
    }
    let (v, stats) = run(&m, "s", r#"{"note":"call me", "n": {"note": 5}}"#);
    assert_eq!(
        v,
        serde_json::json!({"note": "[redacted]", "n": {"note": 5}})
    );
    assert_eq!(stats.total(), 1);
}

#[test]
fn bad_policies_name_the_rule() {
    let file: policy::PiiFile =
        toml::from_str("[[fields]]\npath = \"a\"\nrule = \"hash\"\nkeep_last = 2\n").unwrap();
    let e = file.check().unwrap_err().to_string();
    assert!(
        e.contains("pii.fields[0]") && e.contains("keep_last"),
        "{e}"
    );
    let file: policy::PiiFile =
        toml::from_str("[[fields]]\npath = \"a\"\nrule = \"generalize\"\n").unwrap();
    assert!(file.check().unwrap_err().to_string().contains("needs `to`"));
    assert!(toml::from_str::<policy::PiiFile>("detectors = [\"passport\"]").is_err());
    // A rule inside a kept field would never apply: refused, naming both, for the same stream
    // or where either names every stream; a rule in another stream's kept field is fine.
    for (keep_stream, below_stream) in [
        ("", ""),
        ("stream = \"users\"\n", ""),
        ("", "stream = \"users\"\n"),
    ] {
        let file: policy::PiiFile = toml::from_str(&format!(
            "[[fields]]\n{keep_stream}path = \"address\"\nrule = \"keep\"\n\
             [[fields]]\n{below_stream}path = \"address.street\"\nrule = \"redact\"\n"
        ))
        .unwrap();
        let e = file.check().unwrap_err().to_string();
        assert!(
            e.contains("pii.fields[1]") && e.contains("pii.fields[0]") && e.contains("`address`"),
            "{e}"
        );
    }
    let file: policy::PiiFile = toml::from_str(
        "[[fields]]\nstream = \"a\"\npath = \"x\"\nrule = \"keep\"\n\
         [[fields]]\nstream = \"b\"\npath = \"x.y\"\nrule = \"redact\"\n",
    )
    .unwrap();
    assert!(file.check().is_ok());
}

#[test]
fn what_no_rule_touches_passes_byte_for_byte() {
    let p = policy("[[fields]]\npath = \"a.secret\"\nrule = \"redact\"\n");
    let m = masker(p, 1);
    let line = r#"{"n":1.0e3,"z":null,"list":[1,2,{"x":"plain"}],"a":{"secret":"s","keep":[true,false]},"t":"caf\u00e9 \"q\""}"#;
    let mut stats = MaskStats::default();
    let (out, n) = m
        .apply("s", format!("{line}\n{line}\n").as_bytes(), &mut stats)
        .unwrap();
    assert_eq!(n, 2);
    let expected = line.replace(r#""secret":"s""#, r#""secret":"[redacted]""#);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("{expected}\n{expected}\n")
    );
    assert_eq!(stats.total(), 2);
}

#[test]
fn escapes_duplicates_and_arrays_do_not_hide_a_value() {
    let p = policy("[[fields]]\npath = \"items.email\"\nrule = \"hash\"\n");
    let m = masker(p, 1);
    // An escaped `@`, an escaped key, a duplicate key, and objects inside an array.
    let line = r#"{"note":"mail ann\u0040example.com","e\u006dail":"bob@example.org","email":"x@example.net","email":"y@example.net","items":[{"email":"c@example.com"},{"email":"d@example.com"}]}"#;
    let mut stats = MaskStats::default();
    let (out, _) = m.apply("s", line.as_bytes(), &mut stats).unwrap();
    let text = String::from_utf8(out).unwrap();
    for original in ["ann", "bob@", "x@", "y@", "c@", "d@"] {
        assert!(!text.contains(original), "{original} leaked: {text}");
    }
    assert!(text.contains(r#""note":"mail [email]""#), "{text}");
    let by: Vec<(String, String, u64)> = stats
        .lines()
        .into_iter()
        .map(|l| (l.field, l.by, l.count))
        .collect();
    assert!(
        by.contains(&("items.email".into(), "hash".into(), 2)),
        "{by:?}"
    );
    assert!(by.contains(&("email".into(), "email".into(), 3)), "{by:?}");
}

#[test]
fn a_line_that_is_not_an_object_is_refused_without_its_value() {
    let m = masker(policy(""), 1);
    let mut stats = MaskStats::default();
    let e = m
        .apply("s", b"{\"a\":1}\n\"ann@example.com\"\n", &mut stats)
        .unwrap_err();
    assert_eq!((e.line, e.not_json.as_deref()), (2, None));
    assert!(!e.to_string().contains("ann@"), "{e}");
    let e = m
        .apply("s", b"{\"a\":1}\n{\"a\":\n", &mut stats)
        .unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.not_json.is_some(), "{e}");
    let e = m
        .apply("s", b"{\"a\":1}\n\n{\"a\":2}\n", &mut stats)
        .unwrap_err();
    assert_eq!(e.line, 2, "a blank line is refused, as by the wall");
}

#[test]
fn numbers_keep_their_text_and_nested_values_are_walked_where_they_stand() {
    let m = masker(
        policy("[[fields]]\npath = \"a.b.secret\"\nrule = \"redact\"\n"),
        1,
    );
    // Numbers no float could hold, written as they came; a detector's finding three levels
    // down inside arrays; an escaped key that needs its escape back.
    let line = r#"{"big":123456789012345678901234567890,"f":1.50,"e":-0.0E-7,"a":{"b":{"secret":[1,{"x":2}],"k":"q"},"l":[[{"m":"mail ann@example.com"}]]},"k\"ey":"v"}"#;
    let mut stats = MaskStats::default();
    let (out, _) = m.apply("s", line.as_bytes(), &mut stats).unwrap();
    let expected = line
        .replace(r#""secret":[1,{"x":2}]"#, r#""secret":"[redacted]""#)
        .replace("ann@example.com", "[email]");
    assert_eq!(String::from_utf8(out).unwrap(), format!("{expected}\n"));
    let by: Vec<(String, String)> = stats.lines().into_iter().map(|l| (l.field, l.by)).collect();
    assert!(
        by.contains(&("a.b.secret".into(), "redact".into())),
        "{by:?}"
    );
    assert!(by.contains(&("a.l.m".into(), "email".into())), "{by:?}");
}

#[test]
fn the_walk_refuses_what_is_not_json_and_nesting_past_the_hosts_limit() {
    let m = masker(policy("[[fields]]\npath = \"r\"\nrule = \"hash\"\n"), 1);
    let refused = |line: &str| {
        let mut stats = MaskStats::default();
        let text = format!("{{\"ok\":1}}\n{line}\n");
        let e = m.apply("s", text.as_bytes(), &mut stats).unwrap_err();
        assert_eq!(e.line, 2, "{line:?}: {e}");
        e
    };
    for line in [
        r#"{"a":1} x"#,
        r#"{"a":01}"#,
        r#"{"a":"\ud800"}"#,
        "{\"a\":\"tab\there\"}",
        r#"{"a":NaN}"#,
        r#"{"a":[1,]}"#,
        r#"{"a":1,}"#,
        r#"{a:1}"#,
        r#"{"a" 1}"#,
        r#"{"r":"\ud800"}"#,
        r#"{"r":[1,]}"#,
        r#"{"a":"ann@example.com""#,
    ] {
        let e = refused(line);
        assert!(e.not_json.is_some(), "{line:?}: {e}");
        assert!(
            !e.to_string().contains("ann@") && !e.to_string().contains("tab"),
            "{e}"
        );
    }
    // Deeper than any connection may allow, in a member the detectors walk and in one a rule
    // reads: a typed refusal, not a crashed host.
    for key in ["deep", "r"] {
        let deep = format!(
            "{{\"{key}\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = refused(&deep);
        assert!(e.not_json.is_some(), "{e}");
    }
    // An honest record nested a hundred deep passes.
    let nested = format!("{{\"n\":{}\"x\"{}}}\n", "[".repeat(100), "]".repeat(100));
    let (out, _) = m
        .apply("s", nested.as_bytes(), &mut MaskStats::default())
        .unwrap();
    assert_eq!(out, nested.as_bytes());
}

#[test]
fn the_walk_accepts_exactly_the_json_objects_serde_json_accepts() {
    // Mutations of honest records, differentially: the walk (jiter) and serde_json agree on
    // every one, so the walk is no weaker a record check than the one it stands in for.
    let m = masker(policy("[[fields]]\npath = \"email\"\nrule = \"hash\"\n"), 1);
    let seeds = [
        r#"{"id":1,"email":"ann@example.com","tags":["a","b"],"n":{"x":-1.5e3,"y":null,"z":true}}"#,
        r#"{"a":[{"b":[1,2,{"c":"d"}]},false],"s":"caf\u00e9 \"q\" \n","k\\ey":0}"#,
    ];
    let alphabet = br#"{}[]:,"\ 0123456789-+.eEtrufalsn/u"#;
    let mut r = Pcg64::seed_from_u64(22);
    let mut compared = 0;
    for _ in 0..20_000 {
        let mut line = pick(&mut r, &seeds).as_bytes().to_vec();
        for _ in 0..r.random_range(1..4) {
            let at = r.random_range(0..line.len());
            match r.random_range(0..3) {
                0 => line[at] = *pick(&mut r, alphabet),
                1 => line.insert(at, *pick(&mut r, alphabet)),
                _ => {
                    line.remove(at);
                }
            }
        }
        let Ok(text) = String::from_utf8(line) else {
            continue;
        };
        if text.contains('\n') {
            continue;
        }
        let serde = serde_json::from_str::<Value>(&text);
        if serde
            .as_ref()
            .is_err_and(|e| e.to_string().contains("number out of range"))
        {
            continue; // serde_json's tree holds f64s; the walk copies number text
        }
        let serde_ok = serde.is_ok_and(|v| v.is_object());
        let walk_ok = m
            .apply(
                "s",
                format!("{text}\n").as_bytes(),
                &mut MaskStats::default(),
            )
            .is_ok();
        assert_eq!(walk_ok, serde_ok, "{text}");
        compared += 1;
    }
    assert!(compared > 15_000, "{compared}");
}

// ---- Detector precision and recall on a generated, labelled set -------------------------

const N: usize = 10_000;

fn pick<'a, T>(r: &mut Pcg64, xs: &'a [T]) -> &'a T {
    &xs[r.random_range(0..xs.len())]
}

fn word(r: &mut Pcg64, min: usize, max: usize) -> String {
    let n = r.random_range(min..=max);
    (0..n)
        .map(|_| (b'a' + r.random_range(0..26u8)) as char)
        .collect()
}

fn num(r: &mut Pcg64, n: usize) -> String {
    (0..n)
        .map(|_| (b'0' + r.random_range(0..10u8)) as char)
        .collect()
}

fn luhn_digit(body: &str) -> char {
    // The check digit that makes body + digit pass Luhn.
    let mut sum = 0;
    for (i, c) in body.bytes().rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    char::from_digit((10 - sum % 10) % 10, 10).unwrap()
}

fn email(r: &mut Pcg64) -> String {
    let local = match r.random_range(0..5) {
        0 => format!("{}.{}", word(r, 2, 8), word(r, 2, 10)),
        1 => format!("{}_{}{}", word(r, 1, 6), word(r, 2, 8), num(r, 2)),
        2 => format!("{}{}", word(r, 3, 10), num(r, 4)),
        3 => format!("{}+{}", word(r, 3, 8), word(r, 2, 6)),
        _ => word(r, 1, 3).to_uppercase(),
    };
    let tld = pick(
        r,
        &[
            "com", "org", "net", "io", "co.uk", "de", "fr", "info", "dev", "edu",
        ],
    );
    format!("{local}@{}.{tld}", word(r, 2, 12))
}

fn ipv4(r: &mut Pcg64) -> String {
    let o: [u8; 4] = r.random();
    std::net::Ipv4Addr::from(o).to_string()
}

fn ipv6(r: &mut Pcg64) -> String {
    let mut seg: [u16; 8] = r.random();
    match r.random_range(0..4) {
        0 => seg[2..6].fill(0), // compressed run
        1 => seg[..6].copy_from_slice(&[0x2001, 0xdb8, 0, 0, 0, 0]),
        _ => {}
    }
    let a = std::net::Ipv6Addr::from(seg);
    if r.random_range(0..3) == 0 {
        // Full, uncompressed form.
        seg.iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":")
    } else {
        a.to_string()
    }
}

fn card(r: &mut Pcg64) -> String {
    let (prefix, len) = *pick(
        r,
        &[
            ("4", 16),
            ("4", 13),
            ("51", 16),
            ("55", 16),
            ("2221", 16),
            ("34", 15),
            ("37", 15),
            ("6011", 16),
            ("65", 16),
            ("3530", 16),
        ],
    );
    let mut body = prefix.to_string();
    body.push_str(&num(r, len - 1 - prefix.len()));
    let d = luhn_digit(&body);
    body.push(d);
    match r.random_range(0..3) {
        0 => body,
        sep => {
            let sep = if sep == 1 { " " } else { "-" };
            let groups: &[usize] = if len == 15 {
                &[4, 6, 5]
            } else if len == 13 {
                &[4, 4, 5]
            } else {
                &[4, 4, 4, 4]
            };
            let mut out = Vec::new();
            let mut at = 0;
            for g in groups {
                out.push(&body[at..at + g]);
                at += g;
            }
            out.join(sep)
        }
    }
}

const IBAN_COUNTRIES: &[(&str, usize)] = &[
    ("DE", 22),
    ("GB", 22),
    ("FR", 27),
    ("NL", 18),
    ("ES", 24),
    ("IT", 27),
    ("BE", 16),
    ("CH", 21),
    ("AT", 20),
    ("PL", 28),
    ("SE", 24),
    ("NO", 15),
    ("PT", 25),
    ("IE", 22),
];

fn iban_with(r: &mut Pcg64, good: bool) -> String {
    let (cc, len) = *pick(r, IBAN_COUNTRIES);
    let bban: String = (0..len - 4)
        .map(|i| {
            if i < 4 && cc == "GB" {
                (b'A' + r.random_range(0..26u8)) as char
            } else {
                (b'0' + r.random_range(0..10u8)) as char
            }
        })
        .collect();
    let probe = format!("{cc}00{bban}");
    let mut rem = 0u32;
    for c in probe[4..].bytes().chain(probe[..4].bytes()) {
        let v = if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A') + 10
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    let mut check = 98 - rem;
    if !good {
        check = (check + 1 + r.random_range(0..90)) % 97 + 2;
        if check == 98 - rem {
            check = if check == 2 { 3 } else { check - 1 };
        }
    }
    let iban = format!("{cc}{check:02}{bban}");
    if r.random_range(0..2) == 0 {
        iban
    } else {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn ssn(r: &mut Pcg64) -> String {
    let mut area = r.random_range(1..900);
    if area == 666 {
        area = 667;
    }
    format!(
        "{area:03}-{:02}-{:04}",
        r.random_range(1..100),
        r.random_range(1..10000)
    )
}

fn phone(r: &mut Pcg64) -> String {
    let a = r.random_range(200..1000);
    let b = r.random_range(200..1000);
    let c = r.random_range(0..10000);
    match r.random_range(0..7) {
        0 => format!("({a}) {b}-{c:04}"),
        1 => format!("{a}-{b}-{c:04}"),
        2 => format!("{a}.{b}.{c:04}"),
        3 => format!("+1-{a}-{b}-{c:04}"),
        4 => format!("+44 20 {} {}", num(r, 4), num(r, 4)),
        5 => format!("+49{}", num(r, 11)),
        _ => format!("020 {} {}", num(r, 4), num(r, 4)),
    }
}

/// Values that look like PII but are not.
fn lookalike(r: &mut Pcg64) -> String {
    match r.random_range(0..16) {
        0 => {
            // A 16-digit order id that fails Luhn.
            let body = format!("4{}", num(r, 14));
            let good = luhn_digit(&body).to_digit(10).unwrap();
            format!("{body}{}", (good + 1 + r.random_range(0..9)) % 10)
        }
        1 => format!(
            "{}.{}.{}",
            r.random_range(0..20),
            r.random_range(0..50),
            r.random_range(0..300)
        ),
        2 => format!(
            "v{}.{}.{}.{}",
            r.random_range(0..9),
            r.random_range(0..9),
            r.random_range(0..9),
            r.random_range(0..9)
        ),
        3 => format!(
            "10.0.{}.{}",
            r.random_range(10000..30000),
            r.random_range(256..9999)
        ),
        4 => format!(
            "2{:03}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            r.random_range(0..30),
            r.random_range(1..13),
            r.random_range(1..29),
            r.random_range(0..24),
            r.random_range(0..60),
            r.random_range(0..60)
        ),
        5 => {
            let h: [u8; 16] = r.random();
            let s = hex::encode(h);
            format!(
                "{}-{}-{}-{}-{}",
                &s[..8],
                &s[8..12],
                &s[12..16],
                &s[16..20],
                &s[20..]
            )
        }
        6 => {
            let m: [u8; 6] = r.random();
            m.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }
        7 => iban_with(r, false),
        8 => format!(
            "{}-{:02}-{:04}",
            pick(r, &["000", "666", "900", "987"]),
            r.random_range(1..100),
            r.random_range(1..10000)
        ),
        9 => format!("{}@localhost", word(r, 3, 8)),
        10 => format!(
            "${},{:03}.{:02}",
            r.random_range(1..999),
            r.random_range(0..1000),
            r.random_range(0..100)
        ),
        11 => format!(
            "978-{}-{}-{}-{}",
            r.random_range(0..10),
            num(r, 2),
            num(r, 6),
            r.random_range(0..10)
        ),
        12 => hex::encode(r.random::<[u8; 20]>()),
        13 => format!("SKU-{}-{}", num(r, 4), word(r, 2, 2).to_uppercase()),
        14 => format!(
            "{:02}:{:02}:{:02}",
            r.random_range(0..24),
            r.random_range(0..60),
            r.random_range(0..60)
        ),
        _ => format!("{}", r.random_range(10_000_000u64..99_999_999_999)),
    }
}

fn embed(r: &mut Pcg64, v: String) -> (String, usize) {
    match r.random_range(0..4) {
        0 => {
            let pre = format!("{} {}: ", word(r, 3, 8), word(r, 2, 6));
            let at = pre.len();
            (format!("{pre}{v} (primary)"), at)
        }
        _ => (v, 0),
    }
}

#[test]
fn detectors_meet_precision_and_recall_on_a_labelled_set() {
    let mut r = Pcg64::seed_from_u64(0x5111ce);
    type Generator = fn(&mut Pcg64) -> String;
    let gens: [(Entity, Generator); 7] = [
        (Entity::Email, email),
        (Entity::Ipv4, ipv4),
        (Entity::Ipv6, ipv6),
        (Entity::Card, card),
        (Entity::Iban, |r| iban_with(r, true)),
        (Entity::Ssn, ssn),
        (Entity::Phone, phone),
    ];
    // (label, text, start, end of the labelled value)
    let mut set: Vec<(Option<Entity>, String, usize, usize)> = Vec::new();
    for (entity, g) in gens {
        for _ in 0..N {
            let v = g(&mut r);
            let len = v.len();
            let (text, at) = embed(&mut r, v);
            set.push((Some(entity), text, at, at + len));
        }
    }
    for _ in 0..2 * N {
        let v = lookalike(&mut r);
        let len = v.len();
        set.push((None, v, 0, len));
    }

    let all = Entity::ALL;
    let mut tp = BTreeMap::<Entity, usize>::new();
    let mut fp = BTreeMap::<Entity, usize>::new();
    let mut examples = BTreeMap::<(Entity, bool), String>::new();
    for (label, text, start, end) in &set {
        let found = detect::find(text, &all);
        let mut hit = false;
        for f in &found {
            if Some(f.entity) == *label && f.start <= *start && f.end >= *end {
                hit = true;
            } else {
                *fp.entry(f.entity).or_default() += 1;
                examples
                    .entry((f.entity, false))
                    .or_insert_with(|| text.clone());
            }
        }
        if let Some(l) = label {
            if hit {
                *tp.entry(*l).or_default() += 1;
            } else {
                examples.entry((*l, true)).or_insert_with(|| text.clone());
            }
        }
    }
    println!("| detector | recall | precision | example missed | example false positive |");
    println!("| --- | --- | --- | --- | --- |");
    let mut failures = Vec::new();
    for e in Entity::ALL {
        let t = tp.get(&e).copied().unwrap_or(0) as f64;
        let f = fp.get(&e).copied().unwrap_or(0) as f64;
        let recall = t / N as f64;
        let precision = if t + f == 0.0 { 0.0 } else { t / (t + f) };
        println!(
            "| {e} | {recall:.4} | {precision:.4} | {} | {} |",
            examples.get(&(e, true)).map_or("", String::as_str),
            examples.get(&(e, false)).map_or("", String::as_str)
        );
        // Phone numbers have no checksum and many national shapes: held to a lower bar and
        // reported on their own, as the issue asks.
        let bar = if e == Entity::Phone { 0.95 } else { 0.99 };
        if recall < bar || precision < bar {
            failures.push(format!(
                "{e}: recall {recall:.4}, precision {precision:.4} (< {bar})"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// `prefix` padded with digits to `len`, with a Luhn check digit.
fn card_of(prefix: &str, len: usize) -> String {
    let mut body = prefix.to_string();
    while body.len() < len - 1 {
        body.push(char::from(b'0' + (body.len() * 7 % 10) as u8));
    }
    let d = luhn_digit(&body);
    body.push(d);
    body
}

#[test]
fn phone_regions_decide_where_national_numbers_are_read() {
    let line = r#"{"note":"(02649) 699088","other":"06 35 51 71 23"}"#;
    // Default regions: a German and a French national number.
    let m = masker(policy(""), 1);
    let (v, _) = run(&m, "s", line);
    assert_eq!(v["note"], "[phone]");
    assert_eq!(v["other"], "[phone]");
    // Only the US: neither is read as one (nothing says phone around them).
    let m = masker(policy(r#"phone_regions = ["us"]"#), 1);
    let (v, _) = run(&m, "s", line);
    assert_eq!(v["note"], "(02649) 699088");
    assert_eq!(v["other"], "06 35 51 71 23");
    // Bad lists are refused by name.
    for (bad, says) in [
        (r#"phone_regions = ["XX"]"#, "`XX` is not a region"),
        (
            r#"phone_regions = ["germany"]"#,
            "`germany` is not a region",
        ),
        (r#"phone_regions = []"#, "is empty"),
    ] {
        let file: policy::PiiFile = toml::from_str(bad).unwrap();
        let e = file.check().unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn cards_are_found_by_each_issuers_ranges_and_lengths() {
    use detect::{Entity, find};
    let is_card = |s: &str| {
        let f = find(s, &[Entity::Card]);
        f.len() == 1 && f[0].start == 0 && f[0].end == s.len()
    };
    for (prefix, len) in [
        ("4", 13),
        ("4", 16),
        ("4", 19),
        ("51", 16),
        ("2720", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 19),
        ("644", 16),
        ("65", 16),
        ("300", 14),
        ("36", 14),
        ("3528", 16),
        ("3589", 19),
        ("1800", 15), // JCB, 15 digits
        ("2131", 15),
        ("50", 12), // Maestro, 12 to 19 digits
        ("5018", 12),
        ("56", 13),
        ("6759", 19),
        ("62", 17),   // UnionPay
        ("2200", 16), // Mir
        ("81", 16),   // RuPay
        ("9792", 16), // Troy
    ] {
        let n = card_of(prefix, len);
        assert!(is_card(&n), "{prefix}… ({len} digits): {n}");
    }
    for (prefix, len) in [
        ("4", 14), // Visa issues 13, 16 and 19
        ("4", 17),
        ("51", 15),
        ("34", 16),
        ("1800", 16),
        ("35", 15), // JCB issues 16 to 19 (15 only for 1800 and 2131)
        ("3095", 13),
        ("12", 16), // no issuer
        ("70", 16),
        ("9", 16),
        ("50", 11), // too short for anyone
        ("2100", 16),
    ] {
        let n = card_of(prefix, len);
        assert!(!is_card(&n), "{prefix}… ({len} digits) is no issuer's: {n}");
    }
    // The check digit matters.
    let good = card_of("4", 16);
    let last = good.as_bytes()[15];
    let bad = format!(
        "{}{}",
        &good[..15],
        char::from(b'0' + (last - b'0' + 1) % 10)
    );
    assert!(!is_card(&bad));
}

/// The necessary-conditions pass skips the phone detector for digit runs glued to a letter (a
/// timestamp's date) and for nothing else: numbers with extensions, after a word, or beside a
/// date are still found.
#[test]
fn runs_glued_to_letters_skip_the_phone_detector_and_only_those() {
    let phones = |text: &str| -> Vec<String> {
        detect::find(text, &[Entity::Phone])
            .iter()
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    };
    for none in [
        "2024-06-01T00:00:01+00:00",
        "order 2024-06-01T10:00:00Z",
        "SKU AB-1234-5678",
        "build 20240601T1200",
    ] {
        assert_eq!(phones(none), Vec::<String>::new(), "{none}");
    }
    for (text, want) in [
        ("555.123.4567x1234", "555.123.4567x1234"),
        ("+1-464-236-8794x2095", "+1-464-236-8794x2095"),
        ("call (555) 123-4567 ext. 12", "(555) 123-4567 ext. 12"),
        ("2024-06-01 call +44 20 7946 0958", "+44 20 7946 0958"),
        (
            "on 2024-06-01T10:00 rang +33 6 35 51 71 23",
            "+33 6 35 51 71 23",
        ),
    ] {
        assert_eq!(phones(text), vec![want.to_string()], "{text}");
    }
}

/// A rule applied to a value's JSON text where it stands gives exactly what the same rule gives
/// through a parsed value (the fallback): the same text, the same "changed" answer.
#[test]
fn rules_on_raw_text_agree_with_rules_on_values() {
    let m = masker(PiiPolicy::default(), 5);
    let rules = [
        Rule::Redact,
        Rule::Hash,
        Rule::Mask { keep_last: 4 },
        Rule::Mask { keep_last: 0 },
        Rule::Generalize {
            to: Some(Granularity::Month),
            bucket: None,
        },
        Rule::Generalize {
            to: Some(Granularity::Year),
            bucket: Some(10.0),
        },
        Rule::Generalize {
            to: None,
            bucket: Some(5.0),
        },
        Rule::Keep,
    ];
    let mut r = Pcg64::seed_from_u64(22);
    let mut texts: Vec<String> = [
        r#""""#,
        r#""a""#,
        r#""ab""#,
        r#""2024-03-15T10:00:00Z""#,
        r#""2024-03""#,
        r#""2024""#,
        r#""20x4-03-15""#,
        r#""héllo wörld ✓""#,
        r#""tab\there""#,
        r#""\u00e9t\u00e9""#,
        r#""quote \" and \\ slash""#,
        "null",
        "true",
        "12345",
        "-1.5e3",
        "1.0",
        r#"{"a": "b", "n": 12}"#,
        r#"["x", 1, null]"#,
        r#"  "padded"  "#,
    ]
    .map(str::to_string)
    .to_vec();
    for _ in 0..2_000 {
        let mut s = word(&mut r, 0, 12);
        if r.random_bool(0.3) {
            s = format!(
                "{}-{}-{}{s}",
                num(&mut r, 4),
                num(&mut r, 2),
                num(&mut r, 2)
            );
        }
        if r.random_bool(0.2) {
            s.push_str(pick::<&str>(&mut r, &["ü", "\n", "\"", "日本", "\u{7f}"]));
        }
        texts.push(serde_json::to_string(&s).unwrap());
    }
    for text in &texts {
        for rule in &rules {
            let mut raw = Vec::new();
            let changed = apply_raw(text, rule, &m, &mut raw).unwrap();
            let mut v: Value = serde_json::from_str(text).unwrap();
            let expected_changed = apply_value(&mut v, rule, &m);
            let expected = serde_json::to_string(&v).unwrap();
            assert_eq!(
                (String::from_utf8(raw).unwrap(), changed),
                (expected, expected_changed),
                "{rule:?} on {text}"
            );
        }
    }
}

/// The timestamp shortcut skips the detectors only on text the full pass finds nothing in, even
/// in a field named `phone`; text that merely starts like a timestamp still gets the full pass.
#[test]
fn timestamps_skip_the_detectors_only_where_they_would_find_nothing() {
    let context = detect::Context {
        field: "phone",
        regions: phone::DEFAULT_REGIONS,
    };
    let mut r = Pcg64::seed_from_u64(3339);
    for _ in 0..20_000 {
        let mut t = format!(
            "{}-{}-{}{}{}:{}:{}",
            num(&mut r, 4),
            num(&mut r, 2),
            num(&mut r, 2),
            pick(&mut r, &['T', 't']),
            num(&mut r, 2),
            num(&mut r, 2),
            num(&mut r, 2)
        );
        let fraction = r.random_range(0..=9);
        if fraction > 0 {
            t.push('.');
            t.push_str(&num(&mut r, fraction));
        }
        match r.random_range(0..4) {
            0 => {}
            1 => t.push('Z'),
            _ => t.push_str(&format!(
                "{}{}:{}",
                pick(&mut r, &['+', '-']),
                num(&mut r, 2),
                num(&mut r, 2)
            )),
        }
        assert!(detect::timestamp(t.as_bytes()), "{t}");
        assert_eq!(detect::scan(&t, &Entity::ALL, &context), vec![], "{t}");
    }
    for not in [
        "2024-06-01",
        "2024-06-01 12:34:56",
        "2024-06-01T12:34:56.4111111111111111",
        "2024-06-01T12:34:56+00:00 call 555-123-4567",
        "2024-06-01T12:34:56+0000",
        "2024-06-01T12:34:56Zx",
    ] {
        assert!(!detect::timestamp(not.as_bytes()), "{not}");
    }
    let found = detect::find("2024-06-01T12:34:56Z 4111 1111 1111 1111", &Entity::ALL);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].entity, Entity::Card);
}
