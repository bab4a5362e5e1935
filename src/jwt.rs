//! JWT verification and minting (SPEC §6): keys built once from the configuration, tokens checked
//! for algorithm, signature, `exp`, `nbf`, `iss` and `aud` with leeway.
//!
//! No HTTP here: keys from a `jwks_url` come from a `jwks::KeySet`, fetched elsewhere. The auth
//! middleware turns a `TokenError` into a 401 (or a 503 while no JWKS key has arrived).

use crate::config::model::{JwtConfig, KeySource};
use http::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a token was refused. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts, or unreadable JSON.
    #[error("the token is malformed")]
    Malformed,
    /// The `Authorization` header holds another scheme (`Basic …`) or no token after `Bearer`.
    #[error("the Authorization header holds no bearer token (`Authorization: Bearer <token>`)")]
    NotBearer,
    /// `alg` is `none` or not one of the configured algorithms.
    #[error("the token's algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// The signature does not verify with the configured key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` is in the past (beyond the leeway).
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` differs from `issuer`.
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not include `audience`.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A required claim is missing, or is not what it must be (`exp` as a string).
    #[error("{}", missing_claim_message(.0))]
    MissingClaim(String),
    /// The identity provider's keys have not arrived yet (503, not the client's fault).
    #[error("the identity provider's keys are not available yet; try again shortly")]
    KeysUnavailable,
    /// No key of the JWKS has the token's `kid`.
    #[error("the token's key is not known")]
    UnknownKey,
}

/// jsonwebtoken reports a time claim of the wrong type (`"exp": "1700000000"`) as missing.
fn missing_claim_message(claim: &str) -> String {
    match claim {
        "exp" | "nbf" | "iat" => format!("the token's `{claim}` claim is missing or not a number of seconds"),
        _ => format!("the token lacks the `{claim}` claim"),
    }
}

/// Verifies tokens with the configured algorithms and keys.
pub struct Verifier {
    keys: HashMap<Algorithm, DecodingKey>,
    /// Keys from `jwks_url`, for the algorithms without a configured key.
    jwks: Option<std::sync::Arc<crate::jwks::KeySet>>,
    validation: Validation,
    roles_claim: Vec<String>,
    /// Tokens that verified, with their claims: a client sends the same token on every request,
    /// and checking its signature again is the largest cost of authentication. The time claims
    /// are checked again on every use. Only tokens whose signature verified are ever inserted,
    /// so a fast hash cannot be flooded with colliding keys.
    verified: std::sync::Mutex<rustc_hash::FxHashMap<Box<str>, Remembered>>,
}

/// A verified token's claims with its time claims read out once.
#[derive(Debug, Clone)]
struct Remembered {
    claims: Arc<Value>,
    exp: Option<u64>,
    nbf: Option<u64>,
    forwarded: Arc<OnceLock<ForwardedClaims>>,
}

impl Remembered {
    fn new(claims: Arc<Value>) -> Remembered {
        Remembered {
            exp: claims.get("exp").and_then(Value::as_u64),
            nbf: claims.get("nbf").and_then(Value::as_u64),
            claims,
            forwarded: Arc::default(),
        }
    }
}

/// The `forward_claims` headers of one token, shared by every request that sends it.
pub type ForwardedClaims = Arc<[(HeaderName, HeaderValue)]>;

/// A token that verified: its claims, and a place for the headers derived from them.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The claims.
    pub claims: Arc<Value>,
    /// The token's `forward_claims` headers, derived by the first request that needs them and
    /// kept while the token is remembered. Why: reading two claims out of the claims' map (with
    /// SipHash) and copying their values into new headers was a twentieth of a passthrough
    /// request's work, the same for every request of a client. The verifier belongs to one plan,
    /// so the headers can never outlive the `forward_claims` they were derived with.
    pub forwarded: Arc<OnceLock<ForwardedClaims>>,
}

/// Verified tokens kept at most; the table is emptied when it is full.
const VERIFIED_TOKENS: usize = 4096;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish()
    }
}

/// Which algorithms a PEM public key is for, when it is one jsonwebtoken reads.
fn pem_fits(pem: &[u8]) -> Option<&'static str> {
    if DecodingKey::from_rsa_pem(pem).is_ok() {
        Some("RS256/384/512 and PS256/384/512 (an RSA key)")
    } else if DecodingKey::from_ec_pem(pem).is_ok() {
        Some("ES256/ES384 (an elliptic-curve key)")
    } else if DecodingKey::from_ed_pem(pem).is_ok() {
        Some("EdDSA (an Ed25519 key)")
    } else {
        None
    }
}

/// Reads an algorithm name as SPEC §3 writes it.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

impl Verifier {
    /// Builds the keys for every configured algorithm. A key that doesn't parse is an error
    /// message for the load diagnostics.
    pub fn build(cfg: &JwtConfig) -> Result<Verifier, String> {
        let mut keys = HashMap::new();
        let mut algorithms = Vec::new();
        for name in &cfg.algorithms {
            let alg = algorithm(&name.value).ok_or_else(|| format!("unsupported algorithm `{}`", name.value))?;
            algorithms.push(alg);
            let key = match name.value.get(..2) {
                Some("HS") => cfg.keys.iter().find_map(|k| match k {
                    KeySource::Secret(s) => Some(DecodingKey::from_secret(s).map_err(|e| format!("bad secret: {e}"))),
                    _ => None,
                }),
                _ => cfg.keys.iter().find_map(|k| match k {
                    KeySource::PublicKeyPem(pem) => Some(
                        match name.value.get(..2) {
                            Some("RS") | Some("PS") => DecodingKey::from_rsa_pem(pem),
                            Some("ES") => DecodingKey::from_ec_pem(pem),
                            _ => DecodingKey::from_ed_pem(pem),
                        }
                        .map_err(|e| match pem_fits(pem) {
                            Some(fits) => format!(
                                "`public_key` cannot verify {}: it is a key for {fits}; list only the algorithms of its kind",
                                name.value
                            ),
                            None => format!("`public_key` is not a PEM public key (`-----BEGIN PUBLIC KEY-----` …): {e}"),
                        }),
                    ),
                    _ => None,
                }),
            };
            match key {
                Some(k) => {
                    keys.insert(alg, k?);
                }
                None => {
                    if !cfg.keys.iter().any(|k| matches!(k, KeySource::Jwks(_))) {
                        return Err(format!("no key configured for {}", name.value));
                    }
                }
            }
        }
        let mut validation = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::HS256));
        validation.algorithms = algorithms;
        validation.leeway = cfg.leeway.as_secs();
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.required_spec_claims = ["exp".to_string()].into_iter().collect();
        match &cfg.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &cfg.audience {
            Some(aud) => validation.set_audience(aud),
            None => validation.validate_aud = false,
        }
        let jwks = cfg.keys.iter().find_map(|k| match k {
            KeySource::Jwks(url) => Some(crate::jwks::key_set(url)),
            _ => None,
        });
        Ok(Verifier {
            keys,
            jwks,
            validation,
            roles_claim: claim_path(&cfg.roles_claim),
            verified: std::sync::Mutex::new(rustc_hash::FxHashMap::default()),
        })
    }

    /// The JWKS key set, when `jwks_url` is configured.
    pub fn jwks(&self) -> Option<&std::sync::Arc<crate::jwks::KeySet>> {
        self.jwks.as_ref()
    }

    /// Verifies a token; a `kid` the JWKS does not know fetches the set again first (at most once
    /// per 30 s), so a key rotation at the identity provider costs no refused request.
    pub async fn verify_fresh(&self, token: &str) -> Result<Verified, TokenError> {
        match self.remember(token) {
            Err(TokenError::UnknownKey) => match &self.jwks {
                // Boxed: a refresh is rare, and its future would otherwise sit inside every
                // request's future.
                Some(set) if Box::pin(set.refresh_for_unknown_kid()).await => self.remember(token),
                _ => Err(TokenError::UnknownKey),
            },
            other => other,
        }
    }

    /// Verifies a compact JWS and returns its claims (shared: a token seen before costs a lookup,
    /// not a copy of its claims).
    pub fn verify(&self, token: &str) -> Result<Arc<Value>, TokenError> {
        self.remember(token).map(|v| v.claims)
    }

    /// Verifies a token, or finds it among those that verified before (its time claims checked
    /// again), and remembers it.
    fn remember(&self, token: &str) -> Result<Verified, TokenError> {
        let known = self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned();
        if let Some(known) = known {
            self.check_time(known.exp, known.nbf)?;
            return Ok(Verified {
                claims: known.claims,
                forwarded: known.forwarded,
            });
        }
        let remembered = Remembered::new(Arc::new(self.verify_fully(token)?));
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.clear();
        }
        verified.insert(token.into(), remembered.clone());
        Ok(Verified {
            claims: remembered.claims,
            forwarded: remembered.forwarded,
        })
    }

    /// `exp` and `nbf` against the clock, with the leeway, for a token verified before.
    fn check_time(&self, exp: Option<u64>, nbf: Option<u64>) -> Result<(), TokenError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let leeway = self.validation.leeway;
        if let Some(exp) = exp {
            if exp.saturating_add(leeway) < now {
                return Err(TokenError::Expired);
            }
        }
        if let Some(nbf) = nbf {
            if nbf > now.saturating_add(leeway) {
                return Err(TokenError::NotYetValid);
            }
        }
        Ok(())
    }

    /// Full verification: algorithm, signature, and every configured claim check.
    fn verify_fully(&self, token: &str) -> Result<Value, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName
            | jsonwebtoken::errors::ErrorKind::UnsupportedAlgorithm => TokenError::AlgorithmNotAllowed,
            _ => {
                // `alg: none` and other unknown names fail header parsing in jsonwebtoken.
                if header_alg_is_unknown(token) {
                    TokenError::AlgorithmNotAllowed
                } else {
                    TokenError::Malformed
                }
            }
        })?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let decoded = match (self.keys.get(&header.alg), &self.jwks) {
            (Some(key), _) => jsonwebtoken::decode::<Value>(token, key, &validation),
            (None, Some(set)) => match set.with_key(header.kid.as_deref(), |key| {
                jsonwebtoken::decode::<Value>(token, key, &validation)
            }) {
                Ok(d) => d,
                Err(crate::jwks::Lookup::Unavailable) => return Err(TokenError::KeysUnavailable),
                Err(crate::jwks::Lookup::Unknown) => return Err(TokenError::UnknownKey),
            },
            (None, None) => return Err(TokenError::AlgorithmNotAllowed),
        };
        let data = decoded.map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => TokenError::BadSignature,
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidIssuer => TokenError::WrongIssuer,
                K::InvalidAudience => TokenError::WrongAudience,
                K::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
                K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
                _ => TokenError::Malformed,
            }
        })?;
        if !data.claims.is_object() {
            return Err(TokenError::Malformed);
        }
        Ok(data.claims)
    }

    /// The roles a token holds: the `roles_claim` (dotted path), a string or an array of strings.
    pub fn roles<'a>(&self, claims: &'a Value) -> Vec<&'a str> {
        match claim_at(claims, &self.roles_claim) {
            Some(Value::String(s)) => vec![s.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// A claim name as configured, split into the path of nested claims it names: dots separate
/// them (`realm_access.roles`, as Keycloak nests roles), except in a name that is a URI
/// (`https://shop.example/roles`, as Auth0 namespaces custom claims), which is one claim.
pub fn claim_path(name: &str) -> Vec<String> {
    if name.contains("://") {
        return vec![name.to_string()];
    }
    name.split('.').map(str::to_string).collect()
}

/// The claim at a path of nested claims (`claim_path`).
pub fn claim_at<'a, S: AsRef<str>>(claims: &'a Value, path: &[S]) -> Option<&'a Value> {
    let mut v = claims;
    for p in path {
        v = v.get(p.as_ref())?;
    }
    Some(v)
}

fn header_alg_is_unknown(token: &str) -> bool {
    use base64::Engine;
    let Some(head) = token.split('.').next() else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('=')) else {
        return false;
    };
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    v.get("alg")
        .and_then(Value::as_str)
        .is_some_and(|a| algorithm(a).is_none())
}

/// Mints an HS* token for development (`facade token`): signed with the configured secret and the
/// first HS algorithm, with `iss` and `aud` copied from the configuration.
pub fn mint(
    cfg: &JwtConfig,
    sub: &str,
    roles: &[String],
    ttl: Duration,
    extra: &[(String, Value)],
) -> Result<String, String> {
    let alg_name = cfg
        .algorithms
        .iter()
        .find(|a| a.value.starts_with("HS"))
        .ok_or("`facade token` needs an HS256/384/512 algorithm in auth.jwt.algorithms")?;
    let alg = algorithm(&alg_name.value).ok_or("unsupported algorithm")?;
    let secret = cfg
        .keys
        .iter()
        .find_map(|k| match k {
            KeySource::Secret(s) => Some(s),
            _ => None,
        })
        .ok_or("`facade token` needs auth.jwt.secret or secret_base64")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), Value::String(sub.to_string()));
    claims.insert("iat".into(), Value::from(now));
    claims.insert("exp".into(), Value::from(now + ttl.as_secs()));
    if let Some(iss) = &cfg.issuer {
        claims.insert("iss".into(), Value::String(iss.clone()));
    }
    if let Some(aud) = &cfg.audience {
        claims.insert(
            "aud".into(),
            if aud.len() == 1 {
                Value::String(aud[0].clone())
            } else {
                Value::from(aud.clone())
            },
        );
    }
    if !roles.is_empty() {
        let value = if roles.len() == 1 {
            Value::String(roles[0].clone())
        } else {
            Value::from(roles.to_vec())
        };
        set_dotted(&mut claims, &cfg.roles_claim, value);
    }
    for (k, v) in extra {
        claims.insert(k.clone(), v.clone());
    }
    let key = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&Header::new(alg), &Value::Object(claims), &key).map_err(|e| e.to_string())
}

fn set_dotted(map: &mut serde_json::Map<String, Value>, path: &str, value: Value) {
    let mut parts = claim_path(path);
    let last = parts.pop().unwrap_or_else(|| path.to_string());
    let mut cur = map;
    for p in parts {
        let entry = cur.entry(p).or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        let Value::Object(next) = entry else { return };
        cur = next;
    }
    cur.insert(last, value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Spanned;

    fn config() -> JwtConfig {
        JwtConfig {
            loc: Default::default(),
            algorithms: vec![Spanned {
                value: "HS256".into(),
                loc: Default::default(),
            }],
            keys: vec![KeySource::Secret(b"s".to_vec())],
            secret_is_default: false,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(5),
            roles_claim: "role".into(),
            key_file: None,
        }
    }

    #[test]
    fn a_remembered_token_is_still_checked_against_the_clock() {
        let v = Verifier::build(&config()).unwrap();
        let token = mint(&config(), "ada", &[], Duration::from_secs(60), &[]).unwrap();
        assert_eq!(v.verify(&token).unwrap()["sub"], "ada");
        assert_eq!(v.verify(&token).unwrap()["sub"], "ada", "second time from the table");
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        v.verified.lock().unwrap().insert(
            "expired".into(),
            Remembered::new(Arc::new(serde_json::json!({"sub": "x", "exp": now - 10}))),
        );
        assert_eq!(v.verify("expired"), Err(TokenError::Expired));
        v.verified.lock().unwrap().insert(
            "early".into(),
            Remembered::new(Arc::new(
                serde_json::json!({"sub": "x", "exp": now + 60, "nbf": now + 60}),
            )),
        );
        assert_eq!(v.verify("early"), Err(TokenError::NotYetValid));
        // A tampered token is never taken from the table.
        let mut bad = token.clone();
        bad.push('x');
        assert!(v.verify(&bad).is_err());
    }

    #[test]
    fn a_claim_name_that_is_a_uri_is_one_claim_and_dots_nest_the_others() {
        let mut cfg = config();
        cfg.roles_claim = "https://shop.example/roles".into();
        let v = Verifier::build(&cfg).unwrap();
        let token = mint(&cfg, "ada", &["admin".into()], Duration::from_secs(60), &[]).unwrap();
        let claims = v.verify(&token).unwrap();
        assert_eq!(claims["https://shop.example/roles"], "admin", "{claims}");
        assert_eq!(v.roles(&claims), ["admin"]);
        cfg.roles_claim = "realm_access.roles".into();
        let v = Verifier::build(&cfg).unwrap();
        let token = mint(&cfg, "ada", &["a".into(), "b".into()], Duration::from_secs(60), &[]).unwrap();
        let claims = v.verify(&token).unwrap();
        assert_eq!(claims["realm_access"]["roles"], serde_json::json!(["a", "b"]));
        assert_eq!(v.roles(&claims), ["a", "b"]);
    }
}
