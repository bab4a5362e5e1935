//! Keys from an identity provider's JWKS (SPEC §6): fetched with reqwest (rustls), selected by
//! `kid`, refreshed in the background (every `Cache-Control: max-age`, kept between 1 minute and
//! 1 hour; 5 minutes without one), and on an unknown `kid` — at most once per 30 s. The last good
//! key set is kept when the endpoint fails; until a first set arrives, protected routes answer 503
//! and `/readyz` says why.
//!
//! One key set per URL for the whole process, so a reload (which builds a new plan) keeps the keys
//! and their refresher instead of starting with none.

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// An unknown `kid` refreshes the set at most this often.
pub const UNKNOWN_KID_REFRESH: Duration = Duration::from_secs(30);
/// Waiting for one fetch, at most.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One key of the set.
pub struct Key {
    /// Its `kid`, when it has one.
    pub kid: Option<String>,
    /// The key.
    pub key: DecodingKey,
}

/// The keys of one JWKS URL, with their refresh state.
pub struct KeySet {
    url: String,
    keys: ArcSwap<Vec<Key>>,
    loaded: AtomicBool,
    started: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_kid_refresh: Mutex<Option<Instant>>,
    wake: tokio::sync::Notify,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet").field("url", &self.url).finish()
    }
}

/// The process's key set for `url` (made on first use; nothing is fetched here).
pub fn key_set(url: &str) -> Arc<KeySet> {
    static SETS: OnceLock<Mutex<HashMap<String, Arc<KeySet>>>> = OnceLock::new();
    let sets = SETS.get_or_init(Default::default);
    let mut sets = sets.lock().unwrap_or_else(|p| p.into_inner());
    sets.entry(url.to_string())
        .or_insert_with(|| {
            Arc::new(KeySet {
                url: url.to_string(),
                keys: ArcSwap::from_pointee(Vec::new()),
                loaded: AtomicBool::new(false),
                started: AtomicBool::new(false),
                last_error: Mutex::new(None),
                last_kid_refresh: Mutex::new(None),
                wake: tokio::sync::Notify::new(),
                fetching: tokio::sync::Mutex::new(()),
            })
        })
        .clone()
}

/// Why no key could be chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No key set has arrived yet.
    Unavailable,
    /// The set holds no key for this `kid`.
    Unknown,
}

impl KeySet {
    /// Whether a key set ever arrived.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// The last fetch's error, when it failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Runs `f` with the key for `kid` (a token without `kid` takes the only key, or fails).
    pub fn with_key<T>(&self, kid: Option<&str>, f: impl FnOnce(&DecodingKey) -> T) -> Result<T, Lookup> {
        if !self.loaded() {
            return Err(Lookup::Unavailable);
        }
        let keys = self.keys.load();
        let found = match kid {
            Some(k) => keys.iter().find(|key| key.kid.as_deref() == Some(k)),
            None if keys.len() == 1 => keys.first(),
            None => None,
        };
        found.map(|k| f(&k.key)).ok_or(Lookup::Unknown)
    }

    /// Fetches the set again for an unknown `kid`, unless that was done less than 30 s ago;
    /// returns whether a fetch succeeded.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        {
            let mut last = self.last_kid_refresh.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < UNKNOWN_KID_REFRESH) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.fetch().await.is_ok()
    }

    /// Fetches the set now (what the background refresher does on its schedule); whether it
    /// succeeded. A failure keeps the last good set.
    pub async fn refresh(&self) -> bool {
        self.fetch().await.is_ok()
    }

    /// Starts the background refresher, once per set (it needs the Tokio runtime).
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let set = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = match set.fetch().await {
                    Ok(max_age) => max_age,
                    // Not yet loaded: try again soon; loaded: the last good set serves meanwhile.
                    Err(()) if !set.loaded() => Duration::from_secs(2),
                    Err(()) => Duration::from_secs(30),
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = set.wake.notified() => {}
                }
            }
        });
    }

    /// One fetch; returns how long the answer may be kept.
    async fn fetch(&self) -> Result<Duration, ()> {
        let _one = self.fetching.lock().await;
        match fetch_set(&self.url).await {
            Ok((keys, max_age)) => {
                let n = keys.len();
                self.keys.store(Arc::new(keys));
                let first = !self.loaded.swap(true, Ordering::SeqCst);
                let recovered = self.last_error.lock().ok().and_then(|mut e| e.take()).is_some();
                if first || recovered {
                    tracing::info!(url = %self.url, keys = n, "JWKS keys loaded");
                }
                Ok(max_age)
            }
            Err(e) => {
                let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none() {
                    tracing::warn!(url = %self.url, error = %e, kept = self.loaded(), "JWKS fetch failed; the last good keys (if any) keep serving");
                }
                *last = Some(e);
                Err(())
            }
        }
    }
}

/// GETs a JWKS and turns its keys (RSA, EC P-256/P-384, Ed25519) into decoding keys; keys of
/// another kind are skipped.
async fn fetch_set(url: &str) -> Result<(Vec<Key>, Duration), String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .no_proxy()
            .build()
            .unwrap_or_default()
    });
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("cannot fetch the JWKS: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("the JWKS endpoint answered {}", resp.status()));
    }
    let max_age = resp
        .headers()
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|d| d.trim().strip_prefix("max-age=").and_then(|s| s.parse::<u64>().ok()))
        })
        .map(|s| Duration::from_secs(s.clamp(60, 3600)))
        .unwrap_or(Duration::from_secs(300));
    let set: JwkSet = resp
        .json()
        .await
        .map_err(|e| format!("the JWKS is not a JWK set: {e}"))?;
    let keys: Vec<Key> = set
        .keys
        .iter()
        .filter_map(|jwk| {
            DecodingKey::from_jwk(jwk).ok().map(|key| Key {
                kid: jwk.common.key_id.clone(),
                key,
            })
        })
        .collect();
    if keys.is_empty() {
        return Err("the JWKS holds no usable key".into());
    }
    Ok((keys, max_age))
}
