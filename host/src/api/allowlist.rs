//! IP allowlists of keys and workspaces: CIDRs (or single addresses), checked against the
//! client's address in the access layer.

use std::net::IpAddr;
use std::sync::LazyLock;

use http::StatusCode;
use ipnet::IpNet;
use regex::Regex;
use serde_json::Value;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};

use super::error::ApiError;

/// An allowlist entry as the schema describes it: an IPv4 or IPv6 address, or a CIDR. The
/// server takes exactly what the patterns describe ([`parse`] checks a CIDR against them
/// before `ipnet` reads it), so a request the schema refuses is refused.
pub struct Cidr;

/// IPv4 CIDRs.
const CIDR4: &str = "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$";
/// IPv6 CIDRs in every written form (full, or with one `::` anywhere; hex in either case),
/// and IPv4-mapped ones with a dotted tail (`::ffff:10.0.0.0/104`, how they are printed back).
const CIDR6: &str = concat!(
    "^(",
    "([0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}",
    "|([0-9a-fA-F]{1,4}:){1,7}:",
    "|([0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}",
    "|([0-9a-fA-F]{1,4}:){1,5}(:[0-9a-fA-F]{1,4}){1,2}",
    "|([0-9a-fA-F]{1,4}:){1,4}(:[0-9a-fA-F]{1,4}){1,3}",
    "|([0-9a-fA-F]{1,4}:){1,3}(:[0-9a-fA-F]{1,4}){1,4}",
    "|([0-9a-fA-F]{1,4}:){1,2}(:[0-9a-fA-F]{1,4}){1,5}",
    "|[0-9a-fA-F]{1,4}:(:[0-9a-fA-F]{1,4}){1,6}",
    "|:(:[0-9a-fA-F]{1,4}){1,7}",
    "|::",
    "|::[fF]{4}:((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
    ")/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$"
);

/// The two CIDR patterns, compiled: a CIDR the server takes matches one of them, so the
/// schema and the server agree on every entry with a `/`.
static CIDR_PATTERNS: LazyLock<[Regex; 2]> =
    LazyLock::new(|| [CIDR4, CIDR6].map(|p| Regex::new(p).expect("the CIDR patterns compile")));

impl utoipa::PartialSchema for Cidr {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let any_of = AnyOfBuilder::new()
            .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv4))))
            .item(string().format(Some(SchemaFormat::KnownFormat(KnownFormat::Ipv6))))
            .item(string().pattern(Some(CIDR4)))
            .item(string().pattern(Some(CIDR6)))
            .description(Some(
                "An IP address or a CIDR (`203.0.113.0/24`, `2001:db8::/32`)",
            ))
            .build();
        RefOr::T(Schema::AnyOf(any_of))
    }
}

impl utoipa::ToSchema for Cidr {}

/// The CIDRs in `value` (a JSON array of strings), normalised (`10.0.0.1` becomes
/// `10.0.0.1/32`); `None` for `null` (any address). A 422 naming the first bad entry otherwise.
pub fn parse(value: &Value) -> Result<Option<Vec<String>>, ApiError> {
    let bad = |what: String| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "allowed_ips must be a list of CIDRs such as \"203.0.113.0/24\" or \
                 \"2001:db8::/32\" (or null for any address): {what}"
            ),
        )
    };
    let items = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => items,
        other => return Err(bad(format!("got {}", kind(other)))),
    };
    if items.is_empty() {
        return Err(bad(
            "an empty list would allow no address; use null to allow any".into(),
        ));
    }
    items
        .iter()
        .map(|item| {
            let text = item
                .as_str()
                .ok_or_else(|| bad(format!("got {}", kind(item))))?;
            let not_one = || bad(format!("`{text}` is not a CIDR or an address"));
            let net = if text.contains('/') {
                if !CIDR_PATTERNS.iter().any(|p| p.is_match(text)) {
                    return Err(not_one());
                }
                text.parse::<IpNet>().map_err(|_| not_one())?
            } else {
                IpNet::from(text.parse::<IpAddr>().map_err(|_| not_one())?)
            };
            Ok(net.trunc().to_string())
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// For a field where `null` (allow any address) differs from leaving it out.
pub fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    use serde::Deserialize;
    Value::deserialize(d).map(Some)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether `ip` is inside one of `cidrs` (an IPv4 client seen over IPv6 counts as IPv4).
/// Entries that do not parse allow nothing.
pub fn allows(cidrs: &[String], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    cidrs
        .iter()
        .filter_map(|c| c.parse::<IpNet>().ok())
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_the_cidr_patterns_match_is_accepted() {
        let v4 = regex::Regex::new(CIDR4).unwrap();
        let v6 = regex::Regex::new(CIDR6).unwrap();
        for ok in [
            "203.0.113.0/24",
            "10.0.0.1/8",
            "0.0.0.0/0",
            "255.255.255.255/32",
        ] {
            assert!(v4.is_match(ok), "{ok}");
            assert!(parse(&json!([ok])).is_ok(), "{ok}");
        }
        for ok in [
            "2001:db8::/32",
            "fe80::/10",
            "1:2:3:4:5:6:7:8/128",
            "::/0",
            "::1/128",
            "::2:c006/128",
            "::60b:7275/128",
            "::11:d1b5/128",
            "4:b:914:1:6b6b::/101",
            "4:31:ba9d:9a11:c5:3e:d60:0/108",
            "fe80::1:2/64",
            "1::8/64",
            "1:2::7:8/64",
            "1::3:4:5:6:7:8/64",
            "1:2:3:4:5:6::8/64",
            "1:2:3:4:5:6:7::/64",
            "2001:DB8::/32",
            "::ffff:10.0.0.0/104",
            "::FFFF:192.0.2.1/128",
        ] {
            assert!(v6.is_match(ok), "{ok}");
            assert!(parse(&json!([ok])).is_ok(), "{ok}");
        }
        for bad in [
            "256.0.0.0/8",
            "1.2.3.4/33",
            "1.2.3/24",
            "01.2.3.4/8",
            "1.2.3.4/08",
        ] {
            assert!(!v4.is_match(bad), "{bad}");
            assert!(parse(&json!([bad])).is_err(), "{bad}");
        }
        for bad in [
            "2001:db8::/129",
            "1:2:3:4:5:6:7:8:9/64",
            "g::/8",
            "1::2::3/64",
            ":1/64",
            "1:/64",
            "::/064",
            "::10.0.0.0/104",
            "::ffff:10.0.0.01/104",
            "1:2:3:4:5:6:7:8::/64",
        ] {
            assert!(!v6.is_match(bad), "{bad}");
            assert!(parse(&json!([bad])).is_err(), "{bad}");
        }
    }

    /// Every CIDR `ipnet` prints is one the schema's patterns describe, so what the server
    /// hands back is valid input.
    #[test]
    fn the_patterns_cover_every_ipv6_compression() {
        let v6 = Regex::new(CIDR6).unwrap();
        for bits in 0u32..256 {
            // Each bit pattern zeroes a different set of the eight groups.
            let groups: Vec<u16> = (0..8)
                .map(|i| if bits & (1 << i) != 0 { 0 } else { 0x1a2b })
                .collect();
            let mut octets = [0u8; 16];
            for (i, g) in groups.iter().enumerate() {
                octets[2 * i..2 * i + 2].copy_from_slice(&g.to_be_bytes());
            }
            let addr = std::net::Ipv6Addr::from(octets);
            let text = format!("{addr}/128");
            assert!(v6.is_match(&text), "{text}");
            assert!(parse(&json!([text])).is_ok(), "{text}");
        }
        // IPv4-mapped networks are printed with a dotted tail; that form is taken back.
        let mapped = parse(&json!(["::ffff:a00:0/104"])).unwrap().unwrap();
        assert_eq!(mapped, ["::ffff:10.0.0.0/104"]);
        assert!(v6.is_match(&mapped[0]));
        assert!(parse(&json!(mapped)).is_ok());
    }

    #[test]
    fn lists_are_normalised_and_bad_entries_named() {
        let got = parse(&json!(["10.1.2.3", "192.168.7.9/16", "2001:db8::1/32"])).unwrap();
        assert_eq!(
            got,
            Some(vec![
                "10.1.2.3/32".to_string(),
                "192.168.0.0/16".to_string(),
                "2001:db8::/32".to_string()
            ])
        );
        assert_eq!(parse(&json!(null)).unwrap(), None);
        for (bad, says) in [
            (json!([]), "empty list"),
            (json!(["10.0.0.0/33"]), "`10.0.0.0/33`"),
            (json!(["localhost"]), "`localhost`"),
            (json!("10.0.0.0/8"), "got a string"),
            (json!([8]), "got a number"),
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn addresses_inside_are_allowed_and_the_rest_are_not() {
        let list = vec!["10.0.0.0/8".to_string(), "2001:db8::/32".to_string()];
        assert!(allows(&list, "10.200.1.1".parse().unwrap()));
        assert!(allows(&list, "::ffff:10.0.0.1".parse().unwrap()));
        assert!(allows(&list, "2001:db8::5".parse().unwrap()));
        assert!(!allows(&list, "127.0.0.1".parse().unwrap()));
        assert!(!allows(&list, "11.0.0.1".parse().unwrap()));
        assert!(!allows(
            &["garbage".to_string()],
            "10.0.0.1".parse().unwrap()
        ));
    }
}
