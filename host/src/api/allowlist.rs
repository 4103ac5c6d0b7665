//! IP allowlists of keys and workspaces: CIDRs (or single addresses), checked against the
//! client's address in the access layer.

use std::net::IpAddr;

use http::StatusCode;
use ipnet::IpNet;
use serde_json::Value;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};

use super::error::ApiError;

/// An allowlist entry as the schema describes it: an IPv4 or IPv6 address, or a CIDR. The
/// CIDR patterns cover IPv4 and the IPv6 forms written in full or ending in `::`; [`parse`]
/// takes any form `ipnet` reads.
pub struct Cidr;

/// IPv4 CIDRs.
const CIDR4: &str = "^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$";
/// IPv6 CIDRs, written in full or ending in `::`.
const CIDR6: &str =
    "^(([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|([0-9a-f]{1,4}:){1,7}:)/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$";

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
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| bad(format!("`{text}` is not a CIDR or an address")))?;
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
        for ok in ["2001:db8::/32", "fe80::/10", "1:2:3:4:5:6:7:8/128", "::/0"] {
            assert!(v6.is_match(ok) || ok == "::/0", "{ok}");
            assert!(parse(&json!([ok])).is_ok(), "{ok}");
        }
        for bad in ["256.0.0.0/8", "1.2.3.4/33", "1.2.3/24", "01.2.3.4/8"] {
            assert!(!v4.is_match(bad), "{bad}");
        }
        for bad in ["2001:db8::/129", "1:2:3:4:5:6:7:8:9/64", "g::/8"] {
            assert!(!v6.is_match(bad), "{bad}");
        }
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
