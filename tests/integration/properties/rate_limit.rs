//! Rate-limit keys: `X-Forwarded-For` never picks an address that is neither the peer nor
//! one of the listed hops, trusted-proxy entries parse as documented, keys of different kinds
//! and composite keys never collide, quotas are what they say.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use proptest::prelude::*;
use tollgate::Quota;
use tollgate::rate_limit::{ClientIp, Key, KeyExtractor, RequestHead};

use super::config;

/// Addresses from small pools (so that proxies and hops meet), and anywhere.
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (0u8..4).prop_map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))),
        (0u8..4).prop_map(|i| IpAddr::V4(Ipv4Addr::new(203, 0, 113, i))),
        (0u16..4).prop_map(|i| IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i))),
        (0u8..4).prop_map(|i| IpAddr::V6(Ipv4Addr::new(10, 0, 0, i).to_ipv6_mapped())),
        any::<IpAddr>(),
    ]
}

/// One hop as a proxy may write it: an address, with a port, bracketed, or garbage.
fn hop() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ip().prop_map(|ip| ip.to_string()),
        1 => (ip(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port).to_string()),
        1 => ip().prop_map(|ip| format!("  {ip} ")),
        1 => "[ -~]{0,12}",
        1 => Just(String::new()),
    ]
}

/// A trusted-proxy entry: an address or a CIDR range around one of the pools.
fn proxy_entry() -> impl Strategy<Value = String> {
    prop_oneof![
        ip().prop_map(|ip| ip.to_string()),
        (ip(), 0u8..=129).prop_map(|(ip, prefix)| format!("{ip}/{prefix}")),
    ]
}

fn canonical(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

proptest! {
    #![proptest_config(config())]

    /// Whatever the peer, the trusted proxies and the `X-Forwarded-For` lines (garbage and
    /// non-UTF-8 included), the client address is the peer or one of the listed hops: the
    /// peer when it is not trusted, else the one the documented right-to-left walk reaches.
    #[test]
    fn the_client_is_the_peer_or_a_listed_hop(
        peer in ip(),
        proxies in proptest::collection::vec(proxy_entry(), 0..4),
        lines in proptest::collection::vec(proptest::collection::vec(hop(), 0..5), 0..3),
        raw_line in proptest::option::of(proptest::collection::vec(0x80u8..=0xff, 1..4)),
    ) {
        let extractor = ClientIp::peer()
            .trust_proxies(proxies.iter().filter(|p| is_valid_entry(p)))
            .unwrap();
        let mut request = http::Request::new(());
        request.extensions_mut().insert(SocketAddr::new(peer, 443));
        // Each hop as written, `None` for one that is not an address (a non-UTF-8 line is one
        // such hop), left to right.
        let mut chain: Vec<Option<IpAddr>> = Vec::new();
        for line in &lines {
            let value = line.join(",");
            request.headers_mut().append("x-forwarded-for", http::HeaderValue::from_str(&value).unwrap());
            chain.extend(value.split(',').map(canonical));
        }
        if let Some(raw) = raw_line {
            request.headers_mut().append("x-forwarded-for", http::HeaderValue::from_bytes(&raw).unwrap());
            chain.push(None);
        }
        let head = RequestHead::of(&request);
        let client = extractor.resolve(&head);
        prop_assert!(client.is_some());
        let client = client.unwrap();
        let peer = peer.to_canonical();
        let mut listed: Vec<IpAddr> = chain.iter().flatten().copied().collect();
        listed.push(peer);
        prop_assert!(listed.contains(&client), "{client} is not listed");

        // The documented walk: from the right, skip trusted proxies, stop at the first
        // untrusted address or at garbage (then the nearest trusted hop).
        let trusted: Vec<&String> = proxies.iter().filter(|p| is_valid_entry(p)).collect();
        let is_trusted = |ip: IpAddr| trusted.iter().any(|entry| in_range(entry, ip));
        let expected = if is_trusted(peer) {
            let mut nearest = peer;
            for hop in chain.iter().rev() {
                match hop {
                    None => break,
                    Some(ip) if !is_trusted(*ip) => {
                        nearest = *ip;
                        break;
                    }
                    Some(ip) => nearest = *ip,
                }
            }
            nearest
        } else {
            peer
        };
        prop_assert_eq!(client, expected);
        prop_assert!(extractor.extract(&head).is_some());
        // Without a peer address there is no client.
        let bare = http::Request::new(());
        prop_assert_eq!(extractor.resolve(&RequestHead::of(&bare)), None);
    }

    /// A trusted-proxy entry is accepted exactly when it is an address, or an address and a
    /// prefix no longer than the address (32 bits for IPv4 and IPv4-mapped, 128 for IPv6).
    #[test]
    fn proxy_entries_parse_as_documented(entry in prop_oneof![proxy_entry(), "[0-9a-f.:/ ]{0,20}", ".{0,12}"]) {
        let accepted = ClientIp::peer().trust_proxies([&entry]).is_ok();
        prop_assert_eq!(accepted, is_valid_entry(&entry), "{:?}", entry);
    }

    /// An IPv4 address's key is its own, and never equals a string's key.
    #[test]
    fn ip_keys_never_collide_with_string_keys(a in any::<Ipv4Addr>(), b in any::<Ipv4Addr>(), s in ".{0,20}") {
        let (ka, kb) = (Key::ip(IpAddr::V4(a)), Key::ip(IpAddr::V4(b)));
        prop_assert_eq!(ka == kb, a == b);
        prop_assert!(ka != Key::from(s.as_str()));
        prop_assert!(Key::ip(IpAddr::V6(any_v6(&s))) != Key::from(s.as_str()));
    }

    /// Composite keys (two extractors in a tuple) are equal exactly when both parts are.
    #[test]
    fn composite_keys_are_injective(
        a in ".{0,6}", b in ".{0,6}", c in ".{0,6}", d in ".{0,6}",
    ) {
        let key_of = |first: String, second: String| {
            let pair = (
                move |_: &RequestHead<'_>| Some(Key::from(first.clone())),
                move |_: &RequestHead<'_>| Some(Key::from(second.clone())),
            );
            let request = http::Request::new(());
            pair.extract(&RequestHead::of(&request)).map(|k| k.as_bytes().to_vec())
        };
        let (one, two) = (key_of(a.clone(), b.clone()), key_of(c.clone(), d.clone()));
        prop_assert_eq!(one == two, (a, b) == (c, d));
    }

    /// A quota exists exactly when both the limit and the window are non-zero, and reads back.
    #[test]
    fn quotas_read_back(limit in prop_oneof![Just(0u64), any::<u64>()], secs in prop_oneof![Just(0u64), any::<u64>()], nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000]) {
        let window = Duration::new(secs, nanos);
        match Quota::new(limit, window) {
            Some(quota) => {
                prop_assert_eq!((quota.limit(), quota.window()), (limit, window));
            }
            None => prop_assert!(limit == 0 || window.is_zero()),
        }
    }
}

/// The documented rule for a trusted-proxy entry: an address, or an address and a prefix no
/// longer than it (32 bits for IPv4 and IPv4-mapped IPv6, 128 for IPv6), spaces trimmed.
fn is_valid_entry(entry: &str) -> bool {
    match entry.split_once('/') {
        None => entry.trim().parse::<IpAddr>().is_ok(),
        Some((addr, bits)) => match (addr.trim().parse::<IpAddr>(), bits.trim().parse::<u8>()) {
            (Ok(addr), Ok(bits)) => {
                bits <= if addr.to_canonical().is_ipv4() {
                    32
                } else {
                    128
                }
            }
            _ => false,
        },
    }
}

/// Whether `ip` (canonical) is in the range a valid entry describes: compared as 128-bit
/// numbers, IPv4 ranges only with IPv4 addresses.
fn in_range(entry: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((addr, bits)) => (addr.trim(), Some(bits.trim().parse::<u32>().unwrap())),
        None => (entry.trim(), None),
    };
    let net = addr.parse::<IpAddr>().unwrap().to_canonical();
    let wide = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    };
    let ((net, width), (ip, ip_width)) = (wide(net), wide(ip));
    let bits = bits.unwrap_or(width);
    let shift = width - bits;
    width == ip_width && (bits == 0 || net >> shift == ip >> shift)
}

/// Some IPv6 address derived from `s`.
fn any_v6(s: &str) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    for (o, b) in octets.iter_mut().zip(s.bytes()) {
        *o = b;
    }
    Ipv6Addr::from(octets)
}
