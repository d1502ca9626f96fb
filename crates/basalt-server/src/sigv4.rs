//! AWS Signature Version 4 verification of incoming boto3 requests, done by re-signing
//! the received request with `aws-sigv4` and comparing signatures in constant time.
//!
//! `aws-sigv4` only signs, so verification rebuilds the request as the client signed it:
//! only the headers named in `SignedHeaders`, the path and query exactly as received,
//! the body, and `X-Amz-Date` as the signing time. The settings that reproduce botocore:
//!
//! - `PercentEncodingMode::Double`: the canonical path is the percent-encoding of the
//!   already-encoded path (`%3A` becomes `%253A`), as botocore does for every service
//!   but S3.
//! - `UriPathNormalizationMode::Enabled`: botocore removes `.`/`..` segments and
//!   collapses `//` before encoding, and keeps a trailing slash.
//! - `PayloadChecksumKind::NoHeader`: the payload hash is the SHA-256 of the body and no
//!   `x-amz-content-sha256` header is added.
//! - `SessionTokenMode::Include` with credentials that carry *no* session token: the
//!   received `X-Amz-Security-Token` is passed as an ordinary header, so it is signed
//!   exactly as received (with `Exclude` the signer would drop it from the signed set).
//! - `excluded_headers = None`: the request handed to the signer holds only the headers
//!   the client says it signed, so nothing must be filtered out (the default list drops
//!   `user-agent`, which another client could legitimately sign).
//!
//! The clock-skew check is done here, before re-signing.

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignableBody,
    SignableRequest, SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::{Duration, SystemTime};
use subtle::ConstantTimeEq;

/// The only algorithm accepted in the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Clock skew AWS tolerates between the client's `X-Amz-Date` and the server clock.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(5 * 60);

const X_AMZ_DATE: &str = "x-amz-date";

/// A received request, as needed to check its signature.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The path exactly as received, still percent-encoded (`http::Uri::path`).
    pub raw_path: &'a str,
    /// The query string exactly as received, without `?` (empty if none).
    pub raw_query: &'a str,
    /// All request headers. For HTTP/2 the caller must add `host` from `:authority`.
    pub headers: &'a http::HeaderMap,
    /// The complete request body.
    pub body: &'a [u8],
}

impl<'a> SignedRequest<'a> {
    /// Takes method, raw path, raw query and headers from the parts of an `http` request.
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        }
    }
}

/// Who signed a request whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The access key id from the credential scope.
    pub access_key_id: String,
    /// The region from the credential scope, e.g. `us-east-1`.
    pub region: String,
    /// The signing service name from the credential scope, e.g. `bedrock`, `sagemaker`.
    pub service: String,
    /// The `X-Amz-Date` signing time.
    pub signed_at: SystemTime,
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The request carries no `Authorization` header.
    #[error("request is not signed: no Authorization header")]
    Missing,
    /// The `Authorization` header uses another scheme (e.g. `Bearer`).
    #[error("unsupported authorization scheme {0:?}")]
    UnsupportedScheme(String),
    /// The `Authorization` header, `X-Amz-Date` or a signed header is malformed or missing.
    #[error("malformed SigV4 request: {0}")]
    Malformed(String),
    /// No secret is known for the access key id.
    #[error("unknown access key id {0:?}")]
    UnknownAccessKey(String),
    /// `X-Amz-Date` is further from the server clock than allowed.
    #[error("signature expired: request time {request_time} is more than {max_skew:?} away from server time {server_time}")]
    ClockSkew {
        /// The request's `X-Amz-Date`, as received.
        request_time: String,
        /// The server's clock, formatted like `X-Amz-Date`.
        server_time: String,
        /// The allowed skew.
        max_skew: Duration,
    },
    /// The re-computed signature differs from the received one.
    #[error("the request signature does not match the signature computed with the stored secret")]
    SignatureMismatch,
    /// `aws-sigv4` refused to sign the rebuilt request.
    #[error("cannot re-sign request: {0}")]
    Signing(String),
}

impl SigV4Error {
    /// The AWS error code a service answers with for this failure.
    pub fn aws_error_code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::UnsupportedScheme(_) | Self::Malformed(_) => "IncompleteSignatureException",
            Self::UnknownAccessKey(_) => "UnrecognizedClientException",
            // botocore corrects its clock on InvalidSignatureException "Signature expired".
            Self::ClockSkew { .. } | Self::SignatureMismatch => "InvalidSignatureException",
            Self::Signing(_) => "InternalServerException",
        }
    }

    /// The HTTP status a service answers with for this failure.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnsupportedScheme(_) | Self::Malformed(_) => 400,
            Self::Signing(_) => 500,
            _ => 403,
        }
    }
}

/// The parsed `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug)]
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn malformed(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::Malformed(msg.into())
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme != ALGORITHM {
        if scheme.starts_with("AWS4-") || rest.trim().is_empty() {
            return Err(malformed(format!("unsupported algorithm {scheme:?}")));
        }
        return Err(SigV4Error::UnsupportedScheme(scheme.to_owned()));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, val) = part
            .split_once('=')
            .ok_or_else(|| malformed(format!("authorization component {part:?} has no '='")))?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed(format!(
                "duplicate authorization component {key}"
            )));
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("SignedHeaders is missing"))?;
    let signature = signature.ok_or_else(|| malformed("Signature is missing"))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(malformed(format!(
            "Credential {credential:?} is not AKID/DATE/REGION/SERVICE/aws4_request"
        )));
    };
    if terminator != "aws4_request"
        || access_key_id.is_empty()
        || region.is_empty()
        || service.is_empty()
        || date.len() != 8
        || !date.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(malformed(format!(
            "Credential {credential:?} is not AKID/DATE/REGION/SERVICE/aws4_request"
        )));
    }

    let signed_headers: Vec<&str> = signed_headers.split(';').collect();
    for name in &signed_headers {
        let valid = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b)
            });
        if !valid {
            return Err(malformed(format!("invalid signed header name {name:?}")));
        }
    }
    for required in ["host", X_AMZ_DATE] {
        if !signed_headers.contains(&required) {
            return Err(malformed(format!("SignedHeaders must include {required}")));
        }
    }
    if signed_headers.contains(&"authorization") {
        return Err(malformed("SignedHeaders must not include authorization"));
    }

    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(malformed("Signature is not 64 lowercase hex digits"));
    }

    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Every value of the header called `name`, in order; values must be UTF-8.
fn header_values<'h>(headers: &'h http::HeaderMap, name: &str) -> Result<Vec<&'h str>, SigV4Error> {
    headers
        .get_all(name)
        .iter()
        .map(|v| {
            std::str::from_utf8(v.as_bytes())
                .map_err(|_| malformed(format!("header {name} is not UTF-8")))
        })
        .collect()
}

fn single_header<'h>(
    headers: &'h http::HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, SigV4Error> {
    match header_values(headers, name)?[..] {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => Err(malformed(format!("more than one {name} header"))),
    }
}

/// Parses `YYYYMMDDTHHMMSSZ`.
fn parse_amz_date(value: &str) -> Result<SystemTime, SigV4Error> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(value, format)
        .map(|t| SystemTime::from(t.assume_utc()))
        .map_err(|_| malformed(format!("X-Amz-Date {value:?} is not YYYYMMDDTHHMMSSZ")))
}

fn format_amz_date(t: SystemTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from(t)
        .format(format)
        .unwrap_or_else(|_| format!("{t:?}"))
}

/// The `aws-sigv4` settings that reproduce botocore's SigV4 (see the module docs).
fn boto3_settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Double;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
    settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    settings.session_token_mode = SessionTokenMode::Include;
    settings.signature_location = SignatureLocation::Headers;
    settings.excluded_headers = None;
    settings
}

/// Re-signs `req` as the client described it in `auth` and returns the hex signature.
fn compute_signature(
    req: &SignedRequest<'_>,
    auth: &Authorization<'_>,
    secret: &str,
    signed_at: SystemTime,
    settings: SigningSettings,
) -> Result<String, SigV4Error> {
    // The request as the client signed it: only the signed headers, every value of each.
    let mut headers: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for &name in &auth.signed_headers {
        let before = headers.len();
        headers.extend(
            header_values(req.headers, name)?
                .into_iter()
                .map(|value| (name, value)),
        );
        if headers.len() == before {
            return Err(malformed(format!("signed header {name} is missing")));
        }
    }

    // `SignableRequest` wants the URI in encoded form, which the raw path and query are.
    // `host` is among the headers (checked when parsing), so no authority is needed.
    if !req.raw_path.starts_with('/') {
        return Err(malformed(format!(
            "path {:?} is not absolute",
            req.raw_path
        )));
    }
    let uri = if req.raw_query.is_empty() {
        req.raw_path.to_owned()
    } else {
        format!("{}?{}", req.raw_path, req.raw_query)
    };
    let signable = SignableRequest::new(
        req.method,
        uri,
        headers.into_iter(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| malformed(format!("cannot rebuild request: {e}")))?;

    // No session token in the credentials: a received X-Amz-Security-Token is one of the
    // headers above and is signed as received.
    let identity: Identity =
        Credentials::new(auth.access_key_id, secret, None, None, "basalt-sigv4").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(signed_at)
        .settings(settings)
        .build()
        .map_err(|e| SigV4Error::Signing(e.to_string()))?
        .into();
    // Header values the signer cannot represent are the client's fault.
    let output =
        sign(signable, &params).map_err(|e| malformed(format!("cannot re-sign request: {e}")))?;
    Ok(output.signature().to_owned())
}

/// Checks the SigV4 signature of `req`.
///
/// `lookup` maps an access key id to its secret access key; `now` is the server clock
/// and `max_skew` the largest accepted distance between it and `X-Amz-Date`
/// ([`DEFAULT_MAX_SKEW`] is what AWS uses). Checks run in this order: header syntax,
/// access key, clock skew, signature.
pub fn verify(
    req: &SignedRequest<'_>,
    lookup: impl Fn(&str) -> Option<String>,
    now: SystemTime,
    max_skew: Duration,
) -> Result<VerifiedIdentity, SigV4Error> {
    let authorization = single_header(req.headers, "authorization")?.ok_or(SigV4Error::Missing)?;
    let auth = parse_authorization(authorization)?;

    let amz_date = single_header(req.headers, X_AMZ_DATE)?
        .ok_or_else(|| malformed("X-Amz-Date header is missing"))?;
    let signed_at = parse_amz_date(amz_date)?;
    if !amz_date.starts_with(auth.date) {
        return Err(malformed(format!(
            "credential scope date {} does not match X-Amz-Date {amz_date}",
            auth.date
        )));
    }

    let secret = lookup(auth.access_key_id)
        .ok_or_else(|| SigV4Error::UnknownAccessKey(auth.access_key_id.to_owned()))?;

    let skew = now
        .duration_since(signed_at)
        .unwrap_or_else(|e| e.duration());
    if skew > max_skew {
        return Err(SigV4Error::ClockSkew {
            request_time: amz_date.to_owned(),
            server_time: format_amz_date(now),
            max_skew,
        });
    }

    let computed = compute_signature(req, &auth, &secret, signed_at, boto3_settings())?;

    if bool::from(computed.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(VerifiedIdentity {
            access_key_id: auth.access_key_id.to_owned(),
            region: auth.region.to_owned(),
            service: auth.service.to_owned(),
            signed_at,
        })
    } else {
        Err(SigV4Error::SignatureMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Clone)]
    struct Captured {
        method: String,
        raw_path: String,
        raw_query: String,
        headers: Vec<(String, String)>,
        body: String,
        sigv4: Expected,
    }

    #[derive(Deserialize, Clone)]
    struct Expected {
        valid: bool,
        service: String,
        region: String,
    }

    fn captured() -> Vec<Captured> {
        serde_json::from_str(include_str!(
            "../tests/fixtures/wire/captured_requests.json"
        ))
        .unwrap()
    }

    fn header_map(pairs: &[(String, String)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    fn secrets(akid: &str) -> Option<String> {
        (akid == "AKIDEXAMPLE").then(|| "SECRETEXAMPLE".to_owned())
    }

    fn date_of(c: &Captured) -> SystemTime {
        let (_, v) = c
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-date"))
            .unwrap();
        parse_amz_date(v).unwrap()
    }

    fn check_with(
        c: &Captured,
        lookup: impl Fn(&str) -> Option<String>,
        now: SystemTime,
    ) -> Result<VerifiedIdentity, SigV4Error> {
        let headers = header_map(&c.headers);
        let req = SignedRequest {
            method: &c.method,
            raw_path: &c.raw_path,
            raw_query: &c.raw_query,
            headers: &headers,
            body: c.body.as_bytes(),
        };
        verify(&req, lookup, now, DEFAULT_MAX_SKEW)
    }

    fn check(c: &Captured) -> Result<VerifiedIdentity, SigV4Error> {
        check_with(c, secrets, date_of(c))
    }

    fn set_header(c: &mut Captured, name: &str, value: &str) {
        let slot = c
            .headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .unwrap();
        slot.1 = value.to_owned();
    }

    fn authorization(c: &Captured) -> String {
        c.headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .unwrap()
            .1
            .clone()
    }

    #[test]
    fn all_captured_boto3_requests_verify() {
        let all = captured();
        assert_eq!(all.len(), 5);
        for c in &all {
            assert!(c.sigv4.valid);
            let id = check(c).unwrap_or_else(|e| panic!("{} {}: {e}", c.method, c.raw_path));
            assert_eq!(id.access_key_id, "AKIDEXAMPLE");
            assert_eq!(id.region, c.sigv4.region);
            assert_eq!(id.service, c.sigv4.service);
            assert_eq!(id.signed_at, date_of(c));
        }
    }

    #[test]
    fn verifies_from_http_request_parts() {
        // What the server does: raw path/query from the URI, headers from the HeaderMap.
        for c in &captured() {
            let mut builder =
                http::Request::builder()
                    .method(c.method.as_str())
                    .uri(if c.raw_query.is_empty() {
                        c.raw_path.clone()
                    } else {
                        format!("{}?{}", c.raw_path, c.raw_query)
                    });
            for (k, v) in &c.headers {
                builder = builder.header(k, v);
            }
            let (parts, ()) = builder.body(()).unwrap().into_parts();
            let req = SignedRequest::from_parts(&parts, c.body.as_bytes());
            assert_eq!(req.raw_path, c.raw_path);
            assert_eq!(req.raw_query, c.raw_query);
            verify(&req, secrets, date_of(c), DEFAULT_MAX_SKEW).unwrap();
        }
    }

    #[test]
    fn repeated_headers_are_rejected_or_joined() {
        // Two Authorization or X-Amz-Date headers are ambiguous.
        let mut c = captured()[0].clone();
        c.headers
            .push(("authorization".to_owned(), authorization(&c)));
        assert!(matches!(check(&c), Err(SigV4Error::Malformed(_))));
        // A repeated signed header is signed as its values joined with ',': adding a
        // second content-type value changes the canonical request.
        let mut c = captured()[0].clone();
        c.headers
            .push(("content-type".to_owned(), "text/plain".to_owned()));
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));
    }

    #[test]
    fn wrong_secret_is_a_mismatch() {
        for c in &captured() {
            let wrong = |_: &str| Some("NOTTHESECRET".to_owned());
            assert_eq!(
                check_with(c, wrong, date_of(c)),
                Err(SigV4Error::SignatureMismatch)
            );
        }
    }

    #[test]
    fn tampered_body_is_a_mismatch() {
        for mut c in captured() {
            c.body.push(' ');
            assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));
        }
    }

    #[test]
    fn tampered_path_is_a_mismatch() {
        let mut c = captured()[0].clone();
        c.raw_path = c.raw_path.replace("llama3-1-8b", "llama3-1-70b");
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));
        // Decoding the path before verifying would also break the signature.
        let mut c = captured()[0].clone();
        c.raw_path = c.raw_path.replace("%3A", ":");
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));
    }

    #[test]
    fn tampered_query_is_a_mismatch() {
        let mut c = captured()[1].clone();
        c.raw_query = "byProvider=Meta%20AI&byOutputModality=IMAGE".to_owned();
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));
        // Parameter order does not matter: the canonical query string is sorted.
        let mut c = captured()[1].clone();
        c.raw_query = "byOutputModality=TEXT&byProvider=Meta%20AI".to_owned();
        check(&c).unwrap();
    }

    #[test]
    fn tampered_signed_header_is_a_mismatch_unsigned_is_not() {
        let mut c = captured()[2].clone();
        set_header(&mut c, "X-Amzn-SageMaker-Target-Variant", "green");
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));

        let mut c = captured()[4].clone();
        set_header(&mut c, "X-Amz-Security-Token", "OTHERTOKEN");
        assert_eq!(check(&c), Err(SigV4Error::SignatureMismatch));

        let mut c = captured()[3].clone();
        set_header(&mut c, "User-Agent", "something else");
        set_header(&mut c, "amz-sdk-request", "attempt=2; max=3");
        check(&c).unwrap();
    }

    #[test]
    fn unknown_access_key() {
        let c = &captured()[0];
        assert_eq!(
            check_with(c, |_| None, date_of(c)),
            Err(SigV4Error::UnknownAccessKey("AKIDEXAMPLE".to_owned()))
        );
    }

    #[test]
    fn clock_skew_beyond_five_minutes() {
        let c = &captured()[3];
        let t = date_of(c);
        for now in [t + Duration::from_secs(301), t - Duration::from_secs(301)] {
            let err = check_with(c, secrets, now).unwrap_err();
            assert!(
                matches!(&err, SigV4Error::ClockSkew { request_time, .. } if request_time == "20261122T013715Z"),
                "{err:?}"
            );
            assert_eq!(err.aws_error_code(), "InvalidSignatureException");
        }
        for now in [t + Duration::from_secs(299), t - Duration::from_secs(299)] {
            check_with(c, secrets, now).unwrap();
        }
    }

    #[test]
    fn missing_authorization() {
        let mut c = captured()[0].clone();
        c.headers.retain(|(k, _)| k != "Authorization");
        assert_eq!(check(&c), Err(SigV4Error::Missing));
    }

    #[test]
    fn garbled_authorization() {
        let good = authorization(&captured()[0]);
        let sig = good.rsplit_once("Signature=").unwrap().1.to_owned();
        let cases = [
            "garbage".to_owned(),
            "AWS4-HMAC-SHA256".to_owned(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261122/us-east-1/bedrock/aws4_request"
                .to_owned(),
            good.replace("/aws4_request", "/aws5_request"),
            good.replace("/us-east-1", ""),
            good.replace("Signature=", "Signature=zz"),
            good.replace(&sig, &sig[..63]),
            good.replace(&sig, &sig.to_uppercase()),
            good.replace(
                "SignedHeaders=content-type;host;x-amz-date",
                "SignedHeaders=content-type;x-amz-date",
            ),
            good.replace(
                "SignedHeaders=content-type;host;x-amz-date",
                "SignedHeaders=Content-Type;host;x-amz-date",
            ),
            good.replace(
                "SignedHeaders=content-type;host;x-amz-date",
                "SignedHeaders=content-type;;host;x-amz-date",
            ),
            good.replace(
                ", Signature=",
                ", Credential=AKIDEXAMPLE/20261122/us-east-1/bedrock/aws4_request, Signature=",
            ),
            good.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
            good.replace("20261122/", "20261121/"),
        ];
        for auth in cases {
            let mut c = captured()[0].clone();
            set_header(&mut c, "Authorization", &auth);
            let err = check(&c).unwrap_err();
            assert!(matches!(err, SigV4Error::Malformed(_)), "{auth:?}: {err:?}");
            assert_eq!(err.http_status(), 400);
        }

        let mut c = captured()[0].clone();
        set_header(&mut c, "Authorization", "Bearer ABSKabc");
        assert_eq!(
            check(&c),
            Err(SigV4Error::UnsupportedScheme("Bearer".to_owned()))
        );
    }

    #[test]
    fn missing_or_bad_date_and_signed_headers() {
        let mut c = captured()[0].clone();
        c.headers.retain(|(k, _)| k != "X-Amz-Date");
        assert!(matches!(
            check_with(&c, secrets, date_of(&captured()[0])),
            Err(SigV4Error::Malformed(_))
        ));

        let mut c = captured()[0].clone();
        set_header(&mut c, "X-Amz-Date", "2026-11-22T01:37:15Z");
        assert!(matches!(
            check_with(&c, secrets, date_of(&captured()[0])),
            Err(SigV4Error::Malformed(_))
        ));

        // content-type is signed but absent.
        let mut c = captured()[0].clone();
        c.headers.retain(|(k, _)| k != "Content-Type");
        let err = check(&c).unwrap_err();
        assert!(
            matches!(&err, SigV4Error::Malformed(m) if m.contains("content-type")),
            "{err:?}"
        );
    }

    /// Documents which settings matter: single encoding breaks the ARN path (vector 0),
    /// excluding the session token breaks vector 4; the others are unaffected.
    #[test]
    fn settings_that_reproduce_boto3() {
        let all = captured();
        let signature_with = |c: &Captured, settings: SigningSettings| {
            let headers = header_map(&c.headers);
            let req = SignedRequest {
                method: &c.method,
                raw_path: &c.raw_path,
                raw_query: &c.raw_query,
                headers: &headers,
                body: c.body.as_bytes(),
            };
            let auth_value = authorization(c);
            let auth = parse_authorization(&auth_value).unwrap();
            compute_signature(&req, &auth, "SECRETEXAMPLE", date_of(c), settings).unwrap()
                == auth.signature
        };
        for (i, c) in all.iter().enumerate() {
            assert!(signature_with(c, boto3_settings()), "vector {i}");

            let mut single = boto3_settings();
            single.percent_encoding_mode = PercentEncodingMode::Single;
            assert_eq!(
                signature_with(c, single),
                i != 0,
                "single encoding, vector {i}"
            );

            let mut exclude = boto3_settings();
            exclude.session_token_mode = SessionTokenMode::Exclude;
            assert_eq!(
                signature_with(c, exclude),
                i != 4,
                "token excluded, vector {i}"
            );

            let mut checksum = boto3_settings();
            checksum.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            assert!(
                !signature_with(c, checksum),
                "x-amz-content-sha256, vector {i}"
            );
        }
    }

    #[test]
    fn extra_unsigned_headers_are_ignored() {
        let mut c = captured()[0].clone();
        c.headers.push(("X-Extra".to_owned(), "1".to_owned()));
        check(&c).unwrap();
    }
}
