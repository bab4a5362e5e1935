//! JWT authentication (SPEC §6) through the real server: every rejection reason, the algorithms,
//! optional auth, roles, and the headers derived from claims.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn composition() -> &'static str {
    r#"
client: c
base_path: /c
endpoints:
  required:
    get: /required
    calls:
      who: { service: echo, get: /who }
    response:
      sub: "$.auth.sub"
      forwarded: "$.who.user"
  optional:
    get: /optional
    auth: optional
    calls:
      who: { service: echo, get: /who }
    response:
      sub: "$.auth.sub"
      forwarded: "$.who.user"
  admin:
    get: /admin
    auth: optional
    roles: [admin]
    response:
      ok: true
  open:
    get: /open
    auth: none
    response:
      ok: true
"#
}

async fn echo() -> Backend {
    Backend::start(|s| Reply::json(json!({"user": s.header("x-user-id")}))).await
}

async fn gateway_with(jwt: &str, extra_files: &[(&str, &str)]) -> (Gateway, Backend) {
    let backend = echo().await;
    let facade = format!(
        "services:\n  echo:\n    url: {}\nauth:\n{jwt}\n  forward_claims:\n    x-user-id: sub\n",
        backend.url()
    );
    let mut p = Project::new(&facade, &[("app.yaml", composition())]);
    for (name, text) in extra_files {
        p = p.file(name, text);
    }
    (Gateway::start(p.plan(&[])).await, backend)
}

const HS: &str = "  jwt:\n    algorithms: [HS256]\n    secret: test-secret\n    issuer: https://idp.test\n    audience: facade\n    leeway: 30s\n    roles_claim: realm.roles";

fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "ada", "exp": now() + 600, "iss": "https://idp.test", "aud": "facade"});
    if let (Value::Object(c), Value::Object(e)) = (&mut c, extra) {
        for (k, v) in e {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
    }
    c
}

async fn status_of(gw: &Gateway, path: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let (status, headers, body) = get(&gw.url(path), token).await;
    let www = headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    (status, www, body)
}

#[tokio::test]
async fn required_routes_refuse_every_bad_token_with_401() {
    let (gw, backend) = gateway_with(HS, &[]).await;
    let (status, www, body) = status_of(&gw, "/c/required", None).await;
    assert_eq!((status, www.as_deref()), (401, Some("Bearer")));
    assert_eq!(body["error"], "unauthorized");
    assert!(body["request_id"].is_string());

    let hs = |c: Value| sign(&c, Algorithm::HS256, b"test-secret");
    let none_token = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(claims(json!({})).to_string())
        )
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature",
            sign(&claims(json!({})), Algorithm::HS256, b"other-secret"),
        ),
        ("expired", hs(claims(json!({"exp": now() - 120})))),
        ("not yet valid", hs(claims(json!({"nbf": now() + 120})))),
        ("wrong issuer", hs(claims(json!({"iss": "https://evil.test"})))),
        ("wrong audience", hs(claims(json!({"aud": "someone-else"})))),
        ("no exp", hs(claims(json!({"exp": null})))),
        ("alg none", none_token),
        (
            "unlisted algorithm",
            sign(&claims(json!({})), Algorithm::HS384, b"test-secret"),
        ),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, t) in cases {
        let (status, www, body) = status_of(&gw, "/c/required", Some(&t)).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(www.as_deref(), Some("Bearer error=\"invalid_token\""), "{what}");
        assert_eq!(body["error"], "invalid_token", "{what}");
    }
    // An `exp` written as a string is not called missing.
    let (_, _, body) = status_of(&gw, "/c/required", Some(&hs(claims(json!({"exp": now().to_string()}))))).await;
    assert_eq!(
        body["message"], "the token's `exp` claim is missing or not a number of seconds",
        "{body}"
    );
    // Basic auth is not a bearer token, and is named as such (not as a malformed token).
    let resp = client()
        .get(gw.url("/c/required"))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["message"],
        "the Authorization header holds no bearer token (`Authorization: Bearer <token>`)"
    );
    assert_eq!(backend.count(), 0, "no backend call for refused requests");

    // Within the leeway is still fine.
    let t = hs(claims(json!({"exp": now() - 10})));
    let (status, _, body) = status_of(&gw, "/c/required", Some(&t)).await;
    assert_eq!((status, body["sub"].as_str()), (200, Some("ada")), "{body}");
    assert_eq!(body["forwarded"], "ada");
}

#[tokio::test]
async fn optional_routes_take_anonymous_requests_but_refuse_invalid_tokens() {
    let (gw, backend) = gateway_with(HS, &[]).await;
    let (status, _, body) = status_of(&gw, "/c/optional", None).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"sub": null, "forwarded": null}));
    assert_eq!(backend.seen()[0].header("x-user-id"), None);
    let bad = sign(&claims(json!({})), Algorithm::HS256, b"nope");
    assert_eq!(status_of(&gw, "/c/optional", Some(&bad)).await.0, 401);
    let good = sign(&claims(json!({})), Algorithm::HS256, b"test-secret");
    let (status, _, body) = status_of(&gw, "/c/optional", Some(&good)).await;
    assert_eq!((status, body["sub"].as_str()), (200, Some("ada")));
    // `auth: none` ignores even a bad token.
    assert_eq!(status_of(&gw, "/c/open", Some(&bad)).await.0, 200);
}

#[tokio::test]
async fn roles_give_403_to_tokens_without_them_and_401_to_anonymous() {
    let (gw, _) = gateway_with(HS, &[]).await;
    let hs = |c: Value| sign(&c, Algorithm::HS256, b"test-secret");
    let (status, www, _) = status_of(&gw, "/c/admin", None).await;
    assert_eq!((status, www.as_deref()), (401, Some("Bearer")));
    let user = hs(claims(json!({"realm": {"roles": ["user"]}})));
    let (status, www, body) = status_of(&gw, "/c/admin", Some(&user)).await;
    assert_eq!((status, www, body["error"].as_str()), (403, None, Some("forbidden")));
    let admin = hs(claims(json!({"realm": {"roles": ["user", "admin"]}})));
    assert_eq!(status_of(&gw, "/c/admin", Some(&admin)).await.0, 200);
    let admin_string = hs(claims(json!({"realm": {"roles": "admin"}})));
    assert_eq!(status_of(&gw, "/c/admin", Some(&admin_string)).await.0, 200);
}

#[tokio::test]
async fn claims_named_by_a_uri_as_auth0_namespaces_them_are_one_claim() {
    let backend =
        Backend::start(|s| Reply::json(json!({"user": s.header("x-user-id"), "tier": s.header("x-tier")}))).await;
    let facade = format!(
        "services:\n  echo:\n    url: {}\nauth:\n  jwt:\n    algorithms: [HS256]\n    secret: test-secret\n    roles_claim: https://shop.example/roles\n  forward_claims:\n    x-user-id: sub\n    x-tier: https://shop.example/tier\n",
        backend.url()
    );
    let comp = "client: c\nbase_path: /c\nendpoints:\n  admin:\n    get: /admin\n    roles: [admin]\n    calls: { who: { service: echo, get: /who } }\n    response: { tier: \"$.who.tier\" }\n";
    let gw = Gateway::start(Project::new(&facade, &[("app.yaml", comp)]).plan(&[])).await;
    let hs = |c: Value| sign(&c, Algorithm::HS256, b"test-secret");
    let exp = now() + 600;
    let admin = hs(
        json!({"sub": "ada", "exp": exp, "https://shop.example/roles": ["admin"], "https://shop.example/tier": "gold"}),
    );
    let (status, _, body) = status_of(&gw, "/c/admin", Some(&admin)).await;
    assert_eq!((status, &body["tier"]), (200, &json!("gold")), "{body}");
    let user = hs(json!({"sub": "bob", "exp": exp, "https://shop.example/roles": "user"}));
    assert_eq!(status_of(&gw, "/c/admin", Some(&user)).await.0, 403);
}

fn sign_pem(alg: Algorithm, pem: &str, c: &Value) -> String {
    let key = match alg {
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::RS512 => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(alg), c, &key).unwrap()
}

#[tokio::test]
async fn public_key_algorithms_verify_with_pem_keys() {
    let keys = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let read = |f: &str| std::fs::read_to_string(keys.join(f)).unwrap();
    let cases = [
        ("RS256", Algorithm::RS256, "rsa"),
        ("PS256", Algorithm::PS256, "rsa"),
        ("RS512", Algorithm::RS512, "rsa"),
        ("ES256", Algorithm::ES256, "ec256"),
        ("ES384", Algorithm::ES384, "ec384"),
        ("EdDSA", Algorithm::EdDSA, "ed"),
    ];
    for (name, alg, key) in cases {
        let jwt = format!("  jwt:\n    algorithms: [{name}]\n    public_key: keys/idp.pem");
        let (gw, _) = gateway_with(&jwt, &[("keys/idp.pem", &read(&format!("{key}.pub")))]).await;
        let c = json!({"sub": "ada", "exp": now() + 600});
        let good = sign_pem(alg, &read(&format!("{key}.key")), &c);
        let (status, _, body) = status_of(&gw, "/c/required", Some(&good)).await;
        assert_eq!((status, body["sub"].as_str()), (200, Some("ada")), "{name}: {body}");
        // An HS token made with the public key as secret must not pass (key confusion).
        let confused = sign(&c, Algorithm::HS256, read(&format!("{key}.pub")).as_bytes());
        assert_eq!(status_of(&gw, "/c/required", Some(&confused)).await.0, 401, "{name}");
    }
}

#[tokio::test]
async fn hs384_hs512_and_base64_secrets() {
    use base64::Engine;
    let secret = [0u8, 1, 2, 255, 254, 7];
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let jwt = format!("  jwt:\n    algorithms: [HS384, HS512]\n    secret_base64: \"{b64}\"");
    let (gw, _) = gateway_with(&jwt, &[]).await;
    let c = json!({"sub": "bin", "exp": now() + 600});
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        let t = sign(&c, alg, &secret);
        assert_eq!(status_of(&gw, "/c/required", Some(&t)).await.0, 200, "{alg:?}");
    }
    let t = sign(&c, Algorithm::HS256, &secret);
    assert_eq!(
        status_of(&gw, "/c/required", Some(&t)).await.0,
        401,
        "HS256 is not listed"
    );
}

#[tokio::test]
async fn forward_claim_headers_are_stripped_from_clients_on_every_route() {
    let (gw, backend) = gateway_with(HS, &[]).await;
    let resp = client()
        .get(gw.url("/c/optional"))
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["forwarded"], Value::Null);
    assert_eq!(backend.seen()[0].header("x-user-id"), None);
}
