//! `sluice serve` over TLS, as a real process: TLS 1.3 and 1.2 work and carry HSTS; TLS 1.0
//! and 1.1 hellos, and plain HTTP on the TLS port, get no HTTP answer; the redirect listener
//! sends clients to HTTPS; and a non-loopback bind without a certificate is refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use http::Method;
use rustls::pki_types::ServerName;
use sluice_tests::serve::{Serve, request, send, tls_client};
use sluice_tests::{Scratch, private_ca, sluice_cli};

fn tls_server(s: &Scratch) -> (Serve, String) {
    let (ca, cert, key) = private_ca();
    s.write("tls/cert.pem", &cert);
    s.write("tls/key.pem", &key);
    let serve = Serve::start(
        s,
        &[
            "--tls-cert",
            "tls/cert.pem",
            "--tls-key",
            "tls/key.pem",
            "--redirect-http",
            "127.0.0.1:0",
        ],
    );
    assert!(serve.tls);
    (serve, ca)
}

/// A TLS ClientHello offering only `version` (0x0301 = TLS 1.0, 0x0302 = TLS 1.1, 0x0303 =
/// TLS 1.2) the way clients before TLS 1.3 send it (no `supported_versions` extension), with
/// suites, groups and signature schemes the server does support: the version is the only
/// thing it can object to.
fn client_hello(version: u16) -> Vec<u8> {
    fn ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    // ECDHE-ECDSA/RSA with AES-128-GCM, and two CBC suites of the era.
    let suites: [u16; 4] = [0xc02b, 0xc02f, 0xc013, 0x002f];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    let mut exts = Vec::new();
    ext(&mut exts, 0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]); // groups: x25519, P-256
    ext(&mut exts, 0x000b, &[1, 0]); // point formats: uncompressed
    ext(
        &mut exts,
        0x000d,
        &[0, 6, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01], // ecdsa-p256-sha256, pss, pkcs1
    );
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1u8]; // client_hello
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16u8]; // handshake
    record.extend_from_slice(&0x0301u16.to_be_bytes());
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

/// Everything the server sends back to `bytes` before it closes (or 3 s pass).
fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    c.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_3_and_1_2_are_served_with_hsts_and_older_or_plain_clients_are_not() {
    let s = Scratch::new();
    let (serve, ca) = tls_server(&s);
    let name = ServerName::try_from("127.0.0.1").unwrap();

    for (versions, expected) in [
        (
            &[&rustls::version::TLS13, &rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
    ] {
        let tcp = tokio::net::TcpStream::connect(serve.addr).await.unwrap();
        let tls = tls_client(&ca, versions)
            .connect(name.clone(), tcp)
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(expected));
        let cipher = tls.get_ref().1.negotiated_cipher_suite().unwrap().suite();
        let cipher = format!("{cipher:?}");
        assert!(
            cipher.contains("GCM") || cipher.contains("CHACHA20"),
            "an AEAD suite: {cipher}"
        );
        let reply = send(tls, request(Method::GET, "/healthz", None, None))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.headers["strict-transport-security"],
            "max-age=63072000; includeSubDomains"
        );
        // An API route over TLS still wants a key, and says so with HSTS too.
        let tcp = tokio::net::TcpStream::connect(serve.addr).await.unwrap();
        let tls = tls_client(&ca, versions)
            .connect(name.clone(), tcp)
            .await
            .unwrap();
        let reply = send(tls, request(Method::GET, "/v1/connectors", None, None))
            .await
            .unwrap();
        assert_eq!(reply.status, 401);
        assert!(reply.headers.contains_key("strict-transport-security"));
    }

    // The same hello as TLS 1.2 gets a ServerHello: what follows is refused for its version only.
    let answer = raw_exchange(serve.addr, &client_hello(0x0303));
    assert_eq!(&answer[..1], &[0x16], "{answer:02x?}");
    assert_eq!(answer[5], 2, "a ServerHello: {answer:02x?}");

    // TLS 1.0 and 1.1: the server answers with a fatal alert, never a ServerHello.
    for version in [0x0301u16, 0x0302] {
        let answer = raw_exchange(serve.addr, &client_hello(version));
        assert!(!answer.is_empty(), "the server says why before closing");
        assert_eq!(
            answer[0], 0x15,
            "an alert record, not a handshake: {answer:02x?}"
        );
        // level fatal (2), description protocol_version (70)
        assert_eq!(&answer[5..7], &[2, 70], "{answer:02x?}");
    }

    // Plain HTTP to the TLS port: no HTTP answer at all.
    let answer = raw_exchange(
        serve.addr,
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1"),
        "{answer:02x?}"
    );

    // The redirect listener sends every plain request to the same path over HTTPS.
    let redirect = serve.redirect.expect("a redirect listener");
    let tcp = tokio::net::TcpStream::connect(redirect).await.unwrap();
    let reply = send(tcp, request(Method::GET, "/v1/runs?limit=5", None, None))
        .await
        .unwrap();
    assert_eq!(reply.status, 308);
    assert_eq!(
        reply.headers["location"],
        format!("https://127.0.0.1:{}/v1/runs?limit=5", serve.addr.port())
    );

    // A clean stop on SIGTERM.
    assert_eq!(serve.stop(), Some(0));

    // The requests over TLS were audited with the client's address.
    let (code, out, err) = sluice_cli(&s, &["audit", "list", "--action", "api.request"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("api.request"), "{out}");
    assert!(out.contains("127.0.0.1"), "{out}");
}

#[test]
fn a_non_loopback_bind_without_a_certificate_is_refused_and_bad_tls_files_are_named() {
    let s = Scratch::new();
    let (code, _, err) = sluice_cli(&s, &["serve", "--listen", "0.0.0.0:0"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("refusing to serve plain HTTP on 0.0.0.0:0"),
        "{err}"
    );
    assert!(err.contains("--tls-cert"), "{err}");

    // A certificate without its key (and the reverse) is a usage error.
    let (code, _, err) = sluice_cli(&s, &["serve", "--tls-cert", "x.pem"]);
    assert_ne!(code, 0);
    assert!(err.contains("--tls-key"), "{err}");

    // A key that does not parse is named, and its contents are not echoed.
    let (_, cert, _) = private_ca();
    s.write("cert.pem", &cert);
    s.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n",
    );
    let (code, _, err) = sluice_cli(
        &s,
        &["serve", "--tls-cert", "cert.pem", "--tls-key", "key.pem"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("key.pem"), "{err}");
    assert!(!err.contains("c2VjcmV0"), "{err}");

    // A key that is not the certificate's.
    let (_, _, other_key) = private_ca();
    s.write("other.pem", &other_key);
    let (code, _, err) = sluice_cli(
        &s,
        &["serve", "--tls-cert", "cert.pem", "--tls-key", "other.pem"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("cannot be used together"), "{err}");
}
