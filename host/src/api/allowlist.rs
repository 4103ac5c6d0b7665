//! IP allowlists of keys and workspaces: CIDRs (or single addresses), checked against the
//! client's address in the access layer.

use std::net::IpAddr;

use http::StatusCode;
use ipnet::IpNet;
use serde_json::Value;

use super::error::ApiError;

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
