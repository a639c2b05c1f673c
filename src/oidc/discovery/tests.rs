use super::*;

#[test]
fn well_known_urls_follow_both_specifications() {
    let (oidc, oauth) = well_known("https://sso.example/realms/acme/").unwrap();
    assert_eq!(
        oidc,
        "https://sso.example/realms/acme/.well-known/openid-configuration"
    );
    assert_eq!(
        oauth,
        "https://sso.example/.well-known/oauth-authorization-server/realms/acme"
    );
    let (oidc, oauth) = well_known("https://idp.example").unwrap();
    assert_eq!(oidc, "https://idp.example/.well-known/openid-configuration");
    assert_eq!(
        oauth,
        "https://idp.example/.well-known/oauth-authorization-server"
    );
    for bad in [
        "idp.example",
        "ftp://idp.example",
        "https://idp.example/?x=1",
        "",
    ] {
        assert!(well_known(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_document_is_checked_before_anything_is_fetched_from_it() {
    let client = HttpClient::new();
    let issuer = "https://idp.example";
    let doc = |iss: &str, jwks: &str| {
        format!(
            r#"{{"issuer":"{iss}","jwks_uri":"{jwks}","id_token_signing_alg_values_supported":["RS256","none","HS256","ES256"]}}"#
        )
    };
    let ok = check(
        &client,
        issuer,
        doc(issuer, "https://idp.example/jwks").as_bytes(),
    )
    .unwrap();
    assert_eq!(
        ok.algorithms,
        Some(vec![Algorithm::RS256, Algorithm::ES256])
    );
    let err = |body: String| check(&client, issuer, body.as_bytes()).unwrap_err();
    assert!(matches!(
        err(doc("https://evil.example", "https://idp.example/jwks")),
        DiscoveryError::IssuerMismatch { .. }
    ));
    assert!(matches!(
        err(doc("https://idp.example/", "https://idp.example/jwks")),
        DiscoveryError::IssuerMismatch { .. }
    ));
    assert!(matches!(
        err(doc(issuer, "http://idp.example/jwks")),
        DiscoveryError::JwksUri(_)
    ));
    assert!(matches!(
        err(doc(issuer, "file:///etc/passwd")),
        DiscoveryError::JwksUri(_)
    ));
    assert!(matches!(
        err("[1]".to_owned()),
        DiscoveryError::InvalidDocument(_)
    ));
    assert!(matches!(
        err(r#"{"issuer":"https://idp.example"}"#.to_owned()),
        DiscoveryError::InvalidDocument(_)
    ));
}
