//! Runs one endpoint of the plan (SPEC §4.2–§4.3): every call starts as soon as the calls it
//! reads have finished, `each` calls fan out per item, optional failures degrade, identical GETs
//! run once per request, cached calls go through the response cache, and the response is
//! projected. Knows nothing of axum or GraphQL.

pub mod cache;
pub mod eval;
pub mod jsonpath;
pub mod request;
pub mod write;

use crate::plan::expr::{Expr, PathExpr, Step};
use crate::plan::{Call, Endpoint, Plan};
use crate::upstream::{CallError, CallResponse, Upstream};
use cache::ResponseCache;
use eval::{eval, locate, slot_mut, truthy, Scope, Slot};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::stream::{FuturesUnordered, StreamExt};
use http::HeaderValue;
use request::{build, BuildError};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What one client request brings to the executor.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// `$.args`: the converted parameters.
    pub args: Value,
    /// `$.auth`: the verified claims, `None` when anonymous.
    pub claims: Option<Arc<Value>>,
    /// The `forward_claims` headers for backends.
    pub forwarded: crate::jwt::ForwardedClaims,
    /// Sent to every backend as `X-Request-Id`.
    pub request_id: HeaderValue,
    /// The client's `traceparent`, forwarded as is.
    pub traceparent: Option<HeaderValue>,
    /// The caller's identity for dedup and cache keys: the verified `sub` and the forwarded
    /// claim headers (SPEC §4.3), derived once per request.
    pub identity: String,
    /// How widely identical GET calls are shared (SPEC §4.3).
    pub sharing: Sharing,
}

/// The reach of dedup for one run of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// One REST request: the calls of this endpoint that may be identical (`Call::dedup`).
    Endpoint,
    /// One GraphQL operation, which runs several endpoint fields with one dedup table: also the
    /// GET calls whose service another endpoint calls too (`Call::shared_in_plan`), and every GET
    /// call when this endpoint is selected more than once (`repeated`).
    Operation {
        /// The endpoint appears under more than one response key.
        repeated: bool,
    },
}

impl RequestCtx {
    /// A request's context; derives the caller's identity.
    pub fn new(
        args: Value,
        claims: Option<Arc<Value>>,
        forwarded: crate::jwt::ForwardedClaims,
        request_id: HeaderValue,
        traceparent: Option<HeaderValue>,
    ) -> RequestCtx {
        let mut identity = String::new();
        if let Some(sub) = claims.as_ref().and_then(|c| c.get("sub")) {
            identity.push_str(&eval::render(sub));
        }
        for (name, value) in forwarded.iter() {
            identity.push('\n');
            identity.push_str(name.as_str());
            identity.push(':');
            identity.push_str(value.to_str().unwrap_or_default());
        }
        RequestCtx {
            args,
            claims,
            forwarded,
            request_id,
            traceparent,
            identity,
            sharing: Sharing::Endpoint,
        }
    }
}

/// Shared dependencies of the executor.
#[derive(Clone, Debug)]
pub struct Exec {
    /// The backend client.
    pub upstream: Upstream,
    /// The response cache.
    pub cache: ResponseCache,
    /// The clock every time-dependent part reads (the rate limiter too).
    pub clock: Arc<dyn cache::Clock>,
}

type SharedCall = Shared<BoxFuture<'static, Result<CallResponse, CallError>>>;

/// Identical GET calls within one request (or one GraphQL operation) run once.
#[derive(Default)]
pub struct Dedup {
    inflight: Mutex<HashMap<String, SharedCall>>,
}

/// A call that failed without failing the endpoint.
#[derive(Debug, Clone)]
pub struct PartialFailure {
    /// The call.
    pub call: String,
    /// Its service.
    pub service: String,
    /// What happened, safe for clients.
    pub message: String,
    /// The error code of what happened (`upstream_failed`, `upstream_timeout`, `not_found`).
    pub code: &'static str,
}

/// A successful run.
#[derive(Debug)]
pub struct Outcome {
    /// The data document: every call's result, `auth` and `args`.
    pub doc: Value,
    /// Optional calls that failed, in written order.
    pub partial: Vec<PartialFailure>,
}

impl Outcome {
    /// The projection as JSON text, written straight from the document.
    pub fn write_json(&self, response: &Expr) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        write::write(
            response,
            Scope {
                doc: &self.doc,
                item: None,
            },
            &mut out,
        );
        out
    }
}

/// Why an endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// A value from the client is unusable (400).
    #[error("{0}")]
    BadArgument(String),
    /// A required call failed.
    #[error("call `{call}` to service `{service}` failed: {error}")]
    CallFailed {
        /// The call.
        call: String,
        /// Its service.
        service: String,
        /// What happened.
        error: CallError,
        /// `errors: pass` was set on the call.
        pass: bool,
    },
}

impl ExecError {
    /// The error code (SPEC §4.2): a backend 404 is `not_found`, a backend 4xx on an `errors:
    /// pass` call `upstream_rejected`, a timeout `upstream_timeout`, a client's unusable value
    /// `bad_request`, everything else `upstream_failed`. GraphQL upper-cases it.
    pub fn code(&self) -> &'static str {
        match self {
            ExecError::BadArgument(_) => "bad_request",
            ExecError::CallFailed {
                error: CallError::Status { status, .. },
                pass: true,
                ..
            } if (400..500).contains(status) => "upstream_rejected",
            ExecError::CallFailed { error, .. } => failure_code(error),
        }
    }

    /// A message for a person; never a URL or backend body.
    pub fn message(&self) -> String {
        match self {
            ExecError::BadArgument(m) => m.clone(),
            ExecError::CallFailed {
                call, service, error, ..
            } => client_message(call, service, error),
        }
    }
}

/// The code of a failed call, whether or not it failed its endpoint.
fn failure_code(error: &CallError) -> &'static str {
    match error {
        CallError::Status { status: 404, .. } => "not_found",
        CallError::Timeout(_) => "upstream_timeout",
        _ => "upstream_failed",
    }
}

fn client_message(call: &str, service: &str, error: &CallError) -> String {
    let what = match error {
        CallError::Connect(_) => "the backend could not be reached".to_string(),
        CallError::Timeout(d) => format!("the backend did not answer within {} ms", d.as_millis()),
        CallError::Status { status, .. } => format!("the backend answered {status}"),
        CallError::InvalidAnswer(why) => crate::upstream::invalid_answer_message(why),
        CallError::NotJson => "the backend's answer is not JSON".into(),
        CallError::Compressed => "the backend's answer is gzip-compressed, though Facade asked for none".into(),
        CallError::TooLarge(n) => format!("the backend's answer is larger than {n} bytes"),
        CallError::NotMade(m) => format!("the call was not made: {m}"),
        CallError::CircuitOpen => "the service's circuit is open, so the call was not made".into(),
    };
    format!("call `{call}` to service `{service}` failed: {what}")
}

/// The output of one finished call.
struct Finished {
    index: usize,
    /// The call's result (for `each`: the array), or the failure of a required call.
    result: Result<Value, CallError>,
    /// Item failures of an optional call (or the whole call's failure).
    failures: Vec<CallError>,
    /// Where each item of an `each` call's source array is, for `attach` (in item order; `None`
    /// for an item whose place is not known, which gets nothing attached).
    attach: Option<Vec<Option<Vec<Slot>>>>,
}

impl Finished {
    /// The outcome of a call made once (not `each`): an optional call's failure becomes its
    /// fallback (or null) and is reported; a required call's failure is kept.
    fn single(index: usize, call: &Call, result: Result<Value, CallError>) -> Finished {
        let (result, failures) = match result {
            Ok(v) => (Ok(v), Vec::new()),
            // An `each` call's fallback stands for one failed item; when the whole call fails
            // (its array is not one, or is longer than `max_items`) it is `null`, not an item.
            Err(e) if call.optional && call.each.is_some() => (Ok(Value::Null), vec![e]),
            Err(e) if call.optional => (Ok(call.fallback.clone().unwrap_or(Value::Null)), vec![e]),
            Err(e) => (Err(e), Vec::new()),
        };
        Finished {
            index,
            result,
            failures,
            attach: None,
        }
    }
}

impl Exec {
    /// Runs an endpoint's calls; the caller projects the response from the outcome.
    pub async fn run(
        &self,
        plan: &Plan,
        endpoint: &Endpoint,
        ctx: &RequestCtx,
        dedup: &Dedup,
    ) -> Result<Outcome, ExecError> {
        self.run_only(plan, endpoint, ctx, dedup, None).await
    }

    /// Runs only the calls marked in `only` (closed over their dependencies by the caller; `None`:
    /// every call): a GraphQL selection makes just the calls its fields need.
    pub async fn run_only(
        &self,
        plan: &Plan,
        endpoint: &Endpoint,
        ctx: &RequestCtx,
        dedup: &Dedup,
        only: Option<&[bool]>,
    ) -> Result<Outcome, ExecError> {
        let wanted = |i: usize| only.is_none_or(|o| o.get(i).copied().unwrap_or(false));
        let mut doc = Map::with_capacity(endpoint.calls.len() + 2);
        doc.insert("auth".into(), ctx.claims.as_deref().cloned().unwrap_or(Value::Null));
        doc.insert("args".into(), ctx.args.clone());
        let mut doc = Value::Object(doc);
        let calls = &endpoint.calls;
        let mut waiting: Vec<usize> = calls.iter().map(|c| c.deps.len()).collect();
        let mut running: FuturesUnordered<BoxFuture<'_, Finished>> = FuturesUnordered::new();
        for (i, call) in calls.iter().enumerate() {
            if call.deps.is_empty() && wanted(i) {
                running.push(self.start(plan, i, call, &doc, ctx, dedup)?);
            }
        }
        let mut partial: Vec<(usize, PartialFailure)> = Vec::new();
        while let Some(done) = running.next().await {
            let call = &calls[done.index];
            let service = &plan.services[call.service].name;
            for f in &done.failures {
                tracing::warn!(call = %call.name, service = %service, error = %f, "optional call failed");
            }
            let value = match done.result {
                Ok(v) => v,
                Err(error) => {
                    tracing::warn!(call = %call.name, service = %service, error = %error, "required call failed");
                    return Err(ExecError::CallFailed {
                        call: call.name.clone(),
                        service: service.to_string(),
                        error,
                        pass: call.errors_pass,
                    });
                }
            };
            if let Some(first) = done.failures.first() {
                partial.push((
                    done.index,
                    PartialFailure {
                        call: call.name.clone(),
                        service: service.to_string(),
                        message: client_message(&call.name, service, first),
                        code: failure_code(first),
                    },
                ));
            }
            if let (Some(slots), Some((field, _))) = (&done.attach, call.each.as_ref().and_then(|e| e.attach.as_ref()))
            {
                if let Value::Array(items) = &value {
                    for (slot, item) in slots.iter().zip(items) {
                        if let Some(Value::Object(target)) = slot.as_deref().and_then(|s| slot_mut(&mut doc, s)) {
                            target.insert(field.clone(), item.clone());
                        }
                    }
                }
            }
            if let Value::Object(m) = &mut doc {
                m.insert(call.name.clone(), value);
            }
            for (j, other) in calls.iter().enumerate() {
                if other.deps.contains(&done.index) {
                    waiting[j] -= 1;
                    if waiting[j] == 0 && wanted(j) {
                        running.push(self.start(plan, j, other, &doc, ctx, dedup)?);
                    }
                }
            }
        }
        partial.sort_by_key(|(i, _)| *i);
        Ok(Outcome {
            doc,
            partial: partial.into_iter().map(|(_, p)| p).collect(),
        })
    }

    /// Builds a call's requests from the document as it is now and returns the future that sends
    /// them. A client-caused unusable value fails the whole request with 400.
    fn start<'a>(
        &'a self,
        plan: &'a Plan,
        index: usize,
        call: &'a Call,
        doc: &Value,
        ctx: &RequestCtx,
        dedup: &'a Dedup,
    ) -> Result<BoxFuture<'a, Finished>, ExecError> {
        let scope = Scope { doc, item: None };
        let service = &plan.services[call.service];
        let ready =
            |result: Result<Value, CallError>| futures::future::ready(Finished::single(index, call, result)).boxed();
        if let Some(w) = &call.when {
            if !truthy(&eval(w, scope)) {
                return Ok(ready(Ok(Value::Null)));
            }
        }
        let Some(each) = &call.each else {
            return match build(call, service, scope, ctx) {
                Ok(built) => Ok(async move {
                    let result = self.send(dedup, built).await.map(|r| take(r.body));
                    Finished::single(index, call, result)
                }
                .boxed()),
                Err(BuildError::Client(m)) => Err(ExecError::BadArgument(m)),
                Err(BuildError::NotMade(m)) => Ok(ready(Err(CallError::NotMade(m)))),
            };
        };
        let items = match eval(&each.over, scope) {
            Value::Array(items) => items,
            Value::Null => Vec::new(),
            _ => {
                let message = format!("`each` of call `{}` is not an array", call.name);
                return Ok(ready(Err(CallError::NotMade(message))));
            }
        };
        if items.len() > each.max_items {
            let message = format!(
                "`each` of call `{}` has {} items, more than its `max_items` ({})",
                call.name,
                items.len(),
                each.max_items
            );
            if each.from_client {
                return Err(ExecError::BadArgument(message));
            }
            return Ok(ready(Err(CallError::NotMade(message))));
        }
        let attach = each.attach.as_ref().map(|(_, steps)| match &each.over {
            // A filter or a slice: of the candidates its steps locate, the ones it selected.
            Expr::Path(p) if p.steps.is_none() => selected_slots(p, steps, doc),
            _ => locate(steps, doc).into_iter().map(|(slots, _)| Some(slots)).collect(),
        });
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            let item_scope = Scope { doc, item: Some(item) };
            requests.push(match build(call, service, item_scope, ctx) {
                Ok(b) => Ok(b),
                Err(BuildError::Client(m)) => return Err(ExecError::BadArgument(m)),
                Err(BuildError::NotMade(m)) => Err(CallError::NotMade(m)),
            });
        }
        let concurrency = each.concurrency;
        Ok(async move {
            // Items finish in any order and go to their own slot. A required call's first
            // failed item fails it at once, as a failed required call fails its endpoint at
            // once: the items still running are dropped (their requests cancelled) and the
            // ones not started never are.
            let mut slots: Vec<Option<Value>> = vec![None; requests.len()];
            let mut failures = Vec::new();
            let mut answers = futures::stream::iter(requests.into_iter().enumerate())
                .map(|(i, r)| async move {
                    let result = match r {
                        Ok(built) => self.send(dedup, built).await,
                        Err(e) => Err(e),
                    };
                    (i, result)
                })
                .buffer_unordered(concurrency);
            while let Some((i, r)) = answers.next().await {
                slots[i] = Some(match r {
                    Ok(resp) => take(resp.body),
                    Err(e) if call.optional => {
                        failures.push((i, e));
                        call.fallback.clone().unwrap_or(Value::Null)
                    }
                    Err(e) => {
                        return Finished {
                            index,
                            result: Err(e),
                            failures: Vec::new(),
                            attach: None,
                        }
                    }
                });
            }
            // Reported in item order, as before.
            failures.sort_by_key(|(i, _)| *i);
            let failures = failures.into_iter().map(|(_, e)| e).collect();
            let values = slots.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
            Finished {
                index,
                result: Ok(Value::Array(values)),
                failures,
                attach,
            }
        }
        .boxed())
    }

    /// Sends one built request through dedup and the cache.
    async fn send(&self, dedup: &Dedup, built: request::Built) -> Result<CallResponse, CallError> {
        let upstream = self.upstream.clone();
        let cache = self.cache.clone();
        let request = built.request;
        let cache_key = built.cache_key;
        let fetch = async move {
            match cache_key {
                // Boxed: the cache's future is several KiB, and every call's future would carry
                // that much (and copy it when boxed) even when the call is not cached.
                Some((key, ttl)) => Box::pin(cache.get_or_fetch(key, ttl, upstream.send(&request))).await,
                None => upstream.send(&request).await,
            }
        };
        let Some(key) = built.dedup_key else {
            return fetch.await;
        };
        let shared = {
            let mut map = dedup.inflight.lock().unwrap_or_else(|p| p.into_inner());
            map.entry(key).or_insert_with(|| fetch.boxed().shared()).clone()
        };
        shared.await
    }
}

/// The value of a shared answer: moved out when this was its only holder, copied otherwise (a
/// cached or deduplicated answer).
fn take(body: Arc<Value>) -> Value {
    Arc::try_unwrap(body).unwrap_or_else(|shared| (*shared).clone())
}

/// Builds the `Exec` dependencies from a plan's limits.
pub fn new_exec(plan: &Plan, clock: Arc<dyn cache::Clock>) -> Result<Exec, String> {
    Ok(Exec {
        upstream: Upstream::new(plan.limits.upstream_body, clock.clone())?,
        cache: ResponseCache::new(64 << 20, clock.clone()),
        clock,
    })
}

/// Where the items an `each` path with filters or slices selects are, in its order (the order of
/// its answers): the places `steps` (the path with every filter and slice as `[*]`) locate,
/// matched to the selected nodes by identity.
fn selected_slots(p: &PathExpr, steps: &[Step], doc: &Value) -> Vec<Option<Vec<Slot>>> {
    let at: std::collections::HashMap<*const Value, Vec<Slot>> = locate(steps, doc)
        .into_iter()
        .map(|(slots, node)| (node as *const Value, slots))
        .collect();
    crate::exec::jsonpath::select(&p.query, doc)
        .into_iter()
        .map(|node| at.get(&(node as *const Value)).cloned())
        .collect()
}
