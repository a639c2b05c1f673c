use http::Request;

use std::net::SocketAddr;

use super::*;

fn request(peer: &str, xff: &[&str]) -> Request<()> {
    let mut builder = Request::builder();
    for value in xff {
        builder = builder.header("x-forwarded-for", *value);
    }
    let mut request = builder.body(()).unwrap();
    request
        .extensions_mut()
        .insert(peer.parse::<SocketAddr>().unwrap());
    request
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn client_ip_table() {
    let untrusting = ClientIp::peer();
    let proxies = ClientIp::peer()
        .trust_proxies(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])
        .unwrap();
    let cases: &[(&str, &ClientIp, &str, &[&str], Option<IpAddr>)] = &[
        (
            "no proxies: header ignored",
            &untrusting,
            "198.51.100.9:1",
            &["1.1.1.1"],
            ip("198.51.100.9"),
        ),
        (
            "peer not a proxy: header ignored",
            &proxies,
            "198.51.100.9:1",
            &["10.0.0.1"],
            ip("198.51.100.9"),
        ),
        (
            "one proxy: client is the right-most hop",
            &proxies,
            "10.0.0.2:1",
            &["203.0.113.7"],
            ip("203.0.113.7"),
        ),
        (
            "spoofed left part never reached",
            &proxies,
            "10.0.0.2:1",
            &["6.6.6.6, 203.0.113.7"],
            ip("203.0.113.7"),
        ),
        (
            "trusted hops skipped",
            &proxies,
            "10.0.0.2:1",
            &["6.6.6.6, 203.0.113.7, 192.0.2.1, 10.9.9.9"],
            ip("203.0.113.7"),
        ),
        (
            "several header lines, last is right-most",
            &proxies,
            "10.0.0.2:1",
            &["6.6.6.6", "203.0.113.7"],
            ip("203.0.113.7"),
        ),
        (
            "client spoofing a trusted proxy address stops at it",
            &proxies,
            "10.0.0.2:1",
            &["10.1.1.1, 203.0.113.7"],
            ip("203.0.113.7"),
        ),
        (
            "garbage hop: nearest trusted hop",
            &proxies,
            "10.0.0.2:1",
            &["6.6.6.6, nonsense"],
            ip("10.0.0.2"),
        ),
        (
            "no header behind a proxy: the proxy",
            &proxies,
            "10.0.0.2:1",
            &[],
            ip("10.0.0.2"),
        ),
        (
            "hop with a port",
            &proxies,
            "10.0.0.2:1",
            &["203.0.113.7:5555"],
            ip("203.0.113.7"),
        ),
        (
            "v6 proxy, v4-mapped client",
            &proxies,
            "[fd00::1]:1",
            &["::ffff:203.0.113.7"],
            ip("203.0.113.7"),
        ),
        (
            "v4-mapped peer is a v4 proxy",
            &proxies,
            "[::ffff:10.0.0.2]:1",
            &["203.0.113.8"],
            ip("203.0.113.8"),
        ),
    ];
    for (name, extractor, peer, xff, expected) in cases {
        let request = request(peer, xff);
        assert_eq!(
            extractor.resolve(&RequestHead::of(&request)),
            *expected,
            "{name}"
        );
    }
}

#[test]
fn bad_proxy_entries_fail_at_build_time() {
    for bad in ["10.0.0.0/33", "nonsense", "::/129", ""] {
        assert!(ClientIp::peer().trust_proxies([bad]).is_err(), "{bad}");
    }
}

#[test]
fn keys_of_different_kinds_do_not_collide() {
    let v4 = Key::ip("1.2.3.4".parse().unwrap());
    assert_eq!(v4.as_bytes(), &[0xFF, 1, 2, 3, 4]);
    assert_eq!(Key::ip("::ffff:1.2.3.4".parse().unwrap()), v4);
    assert_ne!(Key::from("\u{ff}"), v4);
    let request = Request::builder().uri("/ab").body(()).unwrap();
    let view = RequestHead::of(&request);
    let pair = (Route, |_: &RequestHead<'_>| Some(Key::from("c"))).extract(&view);
    let other = (
        |_: &RequestHead<'_>| Some(Key::from("/a")),
        |_: &RequestHead<'_>| Some(Key::from("bc")),
    )
        .extract(&view);
    assert_ne!(pair, other);
}
