//! Which IP addresses a connector may not reach unless the operator named the host exactly:
//! everything that is not a public unicast address on the internet.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether only a grant naming the address itself (not a name that resolves to it) may reach
/// it: instance metadata and link-local addresses hand out credentials and talk to the host's
/// own network link.
pub fn only_by_address(s: Special) -> bool {
    matches!(s, Special::Metadata | Special::LinkLocal)
}

/// Why an address is not a public internet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// 127.0.0.0/8, ::1
    Loopback,
    /// 10/8, 172.16/12, 192.168/16 (RFC 1918), fc00::/7 (unique local)
    Private,
    /// 100.64/10 (RFC 6598)
    CarrierNat,
    /// 169.254.169.254, fd00:ec2::254, 100.100.100.200, 168.63.129.16: cloud instance metadata
    Metadata,
    /// 169.254/16, fe80::/10
    LinkLocal,
    /// 224/4, ff00::/8
    Multicast,
    /// 0.0.0.0/8, ::
    Unspecified,
    /// 255.255.255.255
    Broadcast,
    /// Documentation, benchmarking, protocol-assignment and reserved ranges: never a real peer.
    Reserved,
}

impl Special {
    /// For messages: what kind of address this is.
    pub fn describe(self) -> &'static str {
        match self {
            Special::Loopback => "a loopback address",
            Special::Private => "a private-network address",
            Special::CarrierNat => "a carrier-grade NAT address",
            Special::Metadata => "a cloud metadata address",
            Special::LinkLocal => "a link-local address",
            Special::Multicast => "a multicast address",
            Special::Unspecified => "the unspecified address",
            Special::Broadcast => "the broadcast address",
            Special::Reserved => "a reserved address",
        }
    }
}

/// `None` for a public unicast address; otherwise what it is. IPv4 addresses embedded in IPv6
/// (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`) are judged as the
/// IPv4 address they carry.
pub fn classify(ip: IpAddr) -> Option<Special> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Special> {
    let [a, b, c, d] = ip.octets();
    let special = match (a, b, c, d) {
        (169, 254, 169, 254) | (100, 100, 100, 200) | (168, 63, 129, 16) => Special::Metadata,
        (0, ..) => Special::Unspecified,
        (127, ..) => Special::Loopback,
        (10, ..) | (192, 168, ..) => Special::Private,
        (172, b, ..) if (16..32).contains(&b) => Special::Private,
        (100, b, ..) if (64..128).contains(&b) => Special::CarrierNat,
        (169, 254, ..) => Special::LinkLocal,
        (255, 255, 255, 255) => Special::Broadcast,
        (224..=239, ..) => Special::Multicast,
        (240..=255, ..) => Special::Reserved,
        (192, 0, 0, _) | (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => Special::Reserved,
        (198, b, ..) if b == 18 || b == 19 => Special::Reserved,
        _ => return None,
    };
    Some(special)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Special> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (deprecated) ::a.b.c.d, and NAT64 64:ff9b::a.b.c.d.
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_unspecified() {
        return Some(Special::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Special::Loopback);
    }
    if s[..6] == [0; 6] {
        // Deprecated IPv4-compatible form: never a legitimate peer.
        return classify_v4(embedded).or(Some(Special::Reserved));
    }
    // IPv4-translated (SIIT, RFC 6145) ::ffff:0:a.b.c.d.
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return classify_v4(embedded).or(Some(Special::Reserved));
    }
    // NAT64: the well-known prefix 64:ff9b::/96 and the local-use 64:ff9b:1::/48.
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1) {
        return classify_v4(embedded);
    }
    // 6to4 (2002:a.b.c.d::/48) carries its IPv4 address in the prefix; Teredo (2001:0::/32),
    // the client's, inverted, in the last 32 bits.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return classify_v4(v4);
    }
    if s[0] == 0x2001 && s[1] == 0 {
        let (hi, lo) = (!s[6], !s[7]);
        let v4 = Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
        return classify_v4(v4);
    }
    // AWS's and Google Cloud's metadata services on IPv6.
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)
        || ip == Ipv6Addr::new(0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x0254)
    {
        return Some(Special::Metadata);
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some(Special::Private),
        x if x & 0xffc0 == 0xfe80 => Some(Special::LinkLocal),
        x if x & 0xff00 == 0xff00 => Some(Special::Multicast),
        0x2001 if s[1] == 0x0db8 => Some(Special::Reserved),
        // Only 2000::/3 is allocated as global unicast.
        x if x & 0xe000 != 0x2000 => Some(Special::Reserved),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<Special> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(c(ip), None, "{ip}");
        }
    }

    #[test]
    fn special_addresses_are_named() {
        use Special::*;
        for (ip, want) in [
            ("127.0.0.1", Loopback),
            ("127.1.2.3", Loopback),
            ("::1", Loopback),
            ("10.0.0.1", Private),
            ("172.16.5.5", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("fd12:3456::1", Private),
            ("100.64.0.1", CarrierNat),
            ("169.254.169.254", Metadata),
            ("fd00:ec2::254", Metadata),
            ("100.100.100.200", Metadata),
            ("169.254.1.1", LinkLocal),
            ("fe80::1", LinkLocal),
            ("224.0.0.1", Multicast),
            ("ff02::1", Multicast),
            ("0.0.0.0", Unspecified),
            ("::", Unspecified),
            ("255.255.255.255", Broadcast),
            ("192.0.2.1", Reserved),
            ("198.18.0.1", Reserved),
            ("2001:db8::1", Reserved),
            ("240.0.0.1", Reserved),
        ] {
            assert_eq!(c(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_ipv4() {
        assert_eq!(c("::ffff:127.0.0.1"), Some(Special::Loopback));
        assert_eq!(c("::ffff:10.0.0.1"), Some(Special::Private));
        assert_eq!(c("::ffff:169.254.169.254"), Some(Special::Metadata));
        assert_eq!(c("::127.0.0.1"), Some(Special::Loopback));
        assert_eq!(c("64:ff9b::10.0.0.1"), Some(Special::Private));
        assert_eq!(c("::ffff:8.8.8.8"), None);
        assert_eq!(c("64:ff9b::8.8.8.8"), None);
        // Local-use NAT64, 6to4 and Teredo carry an IPv4 address too.
        assert_eq!(c("64:ff9b:1::a9fe:a9fe"), Some(Special::Metadata));
        assert_eq!(c("2002:a9fe:a9fe::1"), Some(Special::Metadata));
        assert_eq!(c("2002:7f00:1::1"), Some(Special::Loopback));
        assert_eq!(c("2002:0808:0808::1"), None);
        // Teredo: the client's address, inverted, in the last 32 bits (10.0.0.1 here).
        assert_eq!(
            c("2001:0:4136:e378:8000:63bf:f5ff:fffe"),
            Some(Special::Private)
        );
        assert_eq!(c("168.63.129.16"), Some(Special::Metadata));
    }

    /// Found by an outside review: GCP's IPv6 metadata address was only `Private` (reachable
    /// by name under an exact grant), and the SIIT form was not judged by its IPv4 address.
    #[test]
    fn gcp_metadata_and_ipv4_translated_addresses_are_judged_like_their_ipv4() {
        assert_eq!(c("fd20:ce::254"), Some(Special::Metadata));
        assert!(only_by_address(Special::Metadata));
        assert_eq!(c("::ffff:0:169.254.169.254"), Some(Special::Metadata));
        assert_eq!(c("::ffff:0:127.0.0.1"), Some(Special::Loopback));
        assert_eq!(c("::ffff:0:10.0.0.1"), Some(Special::Private));
        assert_eq!(c("::ffff:0:8.8.8.8"), Some(Special::Reserved));
    }
}
