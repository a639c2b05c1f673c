//! The default renderings: RFC 9457 problem+json over HTTP, trailers-only over gRPC.

use std::fmt::Write as _;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use super::Rejection;

/// Renders `rejection` as an HTTP response with a problem+json body.
pub(crate) fn http(rejection: &Rejection, realm: Option<&str>) -> Response<Bytes> {
    let kind = rejection.kind();
    let status = kind.status();
    let mut body = String::with_capacity(160);
    body.push_str("{\"type\":\"about:blank\",\"title\":");
    push_json_string(&mut body, status.canonical_reason().unwrap_or("Error"));
    let _ = write!(body, ",\"status\":{},\"code\":", status.as_u16());
    push_json_string(&mut body, kind.code());
    body.push_str(",\"detail\":");
    push_json_string(&mut body, rejection.detail());
    if let Some(scope) = rejection.scope() {
        body.push_str(",\"scope\":");
        push_json_string(&mut body, scope);
    }
    body.push('}');

    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if kind.challenges() {
        for challenge in challenges(rejection, realm) {
            headers.append(WWW_AUTHENTICATE, challenge);
        }
    }
    add_common(rejection, &mut response);
    response
}

/// Renders `rejection` as a gRPC trailers-only response: HTTP 200 with the status in headers.
pub(super) fn grpc(rejection: &Rejection, content_type: HeaderValue) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    // HTTP 200 to intermediaries: say it must not be stored or reused.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "grpc-status",
        HeaderValue::from(u16::from(rejection.kind().grpc_code())),
    );
    let message = percent_encode_grpc_message(rejection.detail());
    if let Ok(value) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", value);
    }
    add_common(rejection, &mut response);
    response
}

fn add_common(rejection: &Rejection, response: &mut Response<Bytes>) {
    let headers = response.headers_mut();
    if let Some(after) = rejection.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(after)));
    }
    if let Some(extra) = rejection.headers() {
        for (name, value) in extra {
            headers.append(name, value.clone());
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, never 0 (a client told "0" retries at once).
pub(crate) fn retry_after_secs(after: std::time::Duration) -> u64 {
    let secs = after
        .as_secs()
        .saturating_add(u64::from(after.subsec_nanos() > 0));
    secs.max(1)
}

fn challenges(rejection: &Rejection, realm: Option<&str>) -> Vec<HeaderValue> {
    let kind = rejection.kind();
    let challenge = rejection.challenge();
    let mut out = Vec::with_capacity(2);
    if challenge.is_bearer() {
        let mut params = Vec::new();
        if let Some(realm) = realm {
            params.push(("realm", realm));
        }
        if let Some(error) = kind.bearer_error() {
            params.push(("error", error));
            params.push(("error_description", rejection.detail()));
        }
        if let Some(scope) = rejection.scope() {
            params.push(("scope", scope));
        }
        out.extend(challenge_value("Bearer", &params));
    }
    if let Some(header) = challenge.api_key_header() {
        let mut params = Vec::new();
        if let Some(realm) = realm {
            params.push(("realm", realm));
        }
        params.push(("header", header.as_str()));
        if kind != super::RejectionKind::MissingCredential {
            params.push(("error", kind.code()));
        }
        if let Some(scope) = rejection.scope() {
            params.push(("scope", scope));
        }
        out.extend(challenge_value("ApiKey", &params));
    }
    out
}

/// `Scheme a="x", b="y"` with quoted-string escaping (RFC 9110 §5.6.4).
fn challenge_value(scheme: &str, params: &[(&str, &str)]) -> Option<HeaderValue> {
    let mut value = String::from(scheme);
    for (i, (name, param)) in params.iter().enumerate() {
        value.push_str(if i == 0 { " " } else { ", " });
        value.push_str(name);
        value.push_str("=\"");
        for c in param.chars() {
            // Only visible ASCII and spaces survive; quotes and backslashes are escaped.
            match c {
                '"' | '\\' => {
                    value.push('\\');
                    value.push(c);
                }
                ' '..='~' => value.push(c),
                _ => value.push('?'),
            }
        }
        value.push('"');
    }
    HeaderValue::from_str(&value).ok()
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Percent-encodes a `grpc-message` as the gRPC HTTP/2 spec asks: everything outside
/// printable ASCII, and `%` itself.
fn percent_encode_grpc_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::rejection::{Challenge, RejectionKind};

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        let cases = [
            (Duration::ZERO, 1),
            (Duration::from_millis(1), 1),
            (Duration::from_millis(999), 1),
            (Duration::from_secs(1), 1),
            (Duration::from_millis(1001), 2),
            (Duration::from_secs(1200), 1200),
        ];
        for (after, want) in cases {
            assert_eq!(retry_after_secs(after), want, "{after:?}");
        }
    }

    #[test]
    fn problem_json_escapes_and_parses() {
        let rejection = Rejection::new(RejectionKind::InsufficientScope)
            .with_detail("needs \"orders:read\"\n")
            .with_scope("orders:read")
            .with_challenge(Challenge::bearer());
        let response = http(&rejection, Some("orders"));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["code"], "insufficient_scope");
        assert_eq!(body["status"], 403);
        assert_eq!(body["detail"], "needs \"orders:read\"\n");
        assert_eq!(body["scope"], "orders:read");
        let www = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(
            www,
            r#"Bearer realm="orders", error="insufficient_scope", error_description="needs \"orders:read\"?", scope="orders:read""#
        );
    }

    #[test]
    fn missing_bearer_credential_has_no_error_code() {
        let rejection =
            Rejection::new(RejectionKind::MissingCredential).with_challenge(Challenge::bearer());
        let response = http(&rejection, None);
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode_grpc_message("50% ok é"), "50%25 ok %C3%A9");
        let rejection = Rejection::new(RejectionKind::RateLimited)
            .with_retry_after(Duration::from_millis(1500));
        let response = grpc(&rejection, HeaderValue::from_static("application/grpc"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        assert!(response.body().is_empty());
    }
}
