//! `sluice keys publisher new`, `sluice connector pack|sign|verify` and `sluice trust add|list`:
//! a publisher signs a package, an operator trusts the publisher, and anything changed after
//! signing is refused.

use sluice_tests::sluice_cli as sluice;
use sluice_tests::{Scratch, connector};

#[test]
fn a_signed_package_verifies_only_once_its_publisher_is_trusted() {
    let s = Scratch::new();
    let faker = connector("source-faker").display().to_string();
    let (code, out, err) = sluice(&s, &["connector", "pack", &faker, "--out", "faker.slpkg"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("source-faker"), "{out}");

    let (code, _, err) = sluice(&s, &["connector", "verify", "faker.slpkg"]);
    assert_ne!(code, 0);
    assert!(err.contains("not signed"), "{err}");

    let (code, out, err) = sluice(&s, &["keys", "publisher", "new", "acme"]);
    assert_eq!(code, 0, "{err}");
    let id = out
        .split('`')
        .nth(1)
        .expect("the key id is printed")
        .to_string();
    assert!(id.starts_with("acme:"), "{out}");
    let secret = std::fs::read_to_string(s.path("acme.key")).unwrap();
    assert!(
        !out.contains(&secret[20..60]),
        "the secret key is never printed"
    );

    let (code, _, err) = sluice(
        &s,
        &["connector", "sign", "faker.slpkg", "--key", "acme.key"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = sluice(&s, &["connector", "verify", "faker.slpkg"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&id) && err.contains("not a trusted publisher"),
        "{err}"
    );

    let (code, out, err) = sluice(&s, &["trust", "add", "acme.pub"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    let (_, out, _) = sluice(&s, &["trust", "list"]);
    assert_eq!(out.trim(), id);
    let (code, out, err) = sluice(&s, &["connector", "verify", "faker.slpkg"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("component sha256:"), "{out}");

    // One byte of the component changed after signing.
    let mut bytes = std::fs::read(s.path("faker.slpkg")).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(s.path("tampered.slpkg"), &bytes).unwrap();
    let (code, _, err) = sluice(&s, &["connector", "verify", "tampered.slpkg"]);
    assert_ne!(code, 0);
    assert!(err.contains("does not match its contents"), "{err}");

    let (code, out, _) = sluice(&s, &["audit", "list", "--action", "trust.added"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("publisher/{id}")), "{out}");
}
