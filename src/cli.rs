//! The commands of SPEC §2: `serve`, `check`, `routes`, `schema`, `openapi`, `token`. Each returns the process exit code.

use crate::config::diag::Diagnostics;
use crate::config::env::ProcessEnv;
use crate::config::model::AuthMode;
use std::path::Path;
use std::sync::Arc;

fn print_diagnostics(diags: &Diagnostics) {
    for d in diags.sorted() {
        eprintln!("{d}");
    }
}

/// `facade check`: every problem, exit 0 (warnings only) or 1.
pub fn check(config: &Path) -> i32 {
    let (plan, diags) = crate::load::load_plan(config, &ProcessEnv);
    print_diagnostics(&diags);
    let errors = diags.errors().count();
    let warnings = diags.warnings().count();
    match plan {
        Some(plan) if errors == 0 => {
            println!(
                "ok: {} endpoint(s), {} service(s); {} warning(s)",
                plan.endpoints.len(),
                plan.services.len(),
                warnings
            );
            0
        }
        _ => {
            eprintln!("{errors} error(s), {warnings} warning(s)");
            1
        }
    }
}

/// `facade routes`: a table of every route.
pub fn routes(config: &Path) -> i32 {
    let (plan, diags) = crate::load::load_plan(config, &ProcessEnv);
    let Some(plan) = plan else {
        print_diagnostics(&diags);
        return 1;
    };
    let mut rows = vec![[
        "METHOD".to_string(),
        "PATH".into(),
        "KIND".into(),
        "AUTH".into(),
        "RATE LIMIT".into(),
    ]];
    for ep in &plan.endpoints {
        rows.push([
            ep.method.as_str().to_string(),
            ep.path.clone(),
            "rest".into(),
            access_text(&ep.access),
            ep.access.rate_limit.clone().unwrap_or_else(|| "none".into()),
        ]);
    }
    if let Some(g) = &plan.graphql {
        rows.push([
            "GET,POST".to_string(),
            g.path.clone(),
            "graphql".into(),
            access_text(&g.access),
            g.access.rate_limit.clone().unwrap_or_else(|| "none".into()),
        ]);
    }
    for route in &plan.passthrough {
        rows.push([
            "*".to_string(),
            route.label.clone(),
            "passthrough".into(),
            access_text(&route.access),
            route.access.rate_limit.clone().unwrap_or_else(|| "none".into()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    0
}

/// `facade schema`: the GraphQL SDL of the configuration.
pub fn schema(config: &Path) -> i32 {
    let (plan, diags) = crate::load::load_plan(config, &ProcessEnv);
    let Some(plan) = plan else {
        print_diagnostics(&diags);
        return 1;
    };
    match &plan.graphql_schema {
        Some(s) => {
            print!("{}", s.schema.sdl());
            0
        }
        None => {
            eprintln!("error: GraphQL is not served by this configuration (a passthrough route holds its path)");
            1
        }
    }
}

/// `facade openapi`: the OpenAPI 3.1 document of the composed REST endpoints.
pub fn openapi(config: &Path) -> i32 {
    let (plan, diags) = crate::load::load_plan(config, &ProcessEnv);
    let Some(plan) = plan else {
        print_diagnostics(&diags);
        return 1;
    };
    let doc = crate::plan::openapi::document(&plan);
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => {
            println!("{text}");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn access_text(access: &crate::plan::Access) -> String {
    if access.roles.is_empty() {
        mode(access.auth).to_string()
    } else {
        format!("{} roles={}", mode(access.auth), access.roles.join(","))
    }
}

fn mode(m: AuthMode) -> &'static str {
    match m {
        AuthMode::Required => "required",
        AuthMode::Optional => "optional",
        AuthMode::None => "none",
    }
}

/// `facade token`: mints an HS* development token.
pub fn token(config: &Path, sub: &str, roles: &[String], ttl: &str, claims: &[String]) -> i32 {
    // Only the auth section matters for signing: an unrelated problem elsewhere (a service URL
    // from an unset variable, a composition error) does not stop a development token.
    let (loaded, diags) = crate::config::load(config, &ProcessEnv);
    let jwt = loaded
        .as_ref()
        .and_then(|l| l.gateway.auth.as_ref())
        .and_then(|a| a.jwt.as_ref());
    let Some(jwt) = jwt else {
        print_diagnostics(&diags);
        eprintln!(
            "error: {} has no usable auth.jwt section to sign with",
            config.display()
        );
        return 1;
    };
    let Some(ttl) = crate::config::read::parse_duration(ttl) else {
        eprintln!("error: --ttl must be a duration like 30m or 1h");
        return 1;
    };
    let mut extra = Vec::new();
    for c in claims {
        let Some((k, v)) = c.split_once('=') else {
            eprintln!("error: --claim must be key=value, found `{c}`");
            return 1;
        };
        let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
        extra.push((k.to_string(), value));
    }
    match crate::jwt::mint(jwt, sub, roles, ttl, &extra) {
        Ok(t) => {
            println!("{t}");
            0
        }
        Err(e) => {
            print_diagnostics(&diags);
            eprintln!("error: {e}");
            1
        }
    }
}

/// `facade serve`: load, compile, (start the demo backends,) serve until SIGTERM/SIGINT.
pub async fn serve(config: &Path, listen: Option<&str>, demo: bool) -> i32 {
    let (plan, diags) = crate::load::load_plan(config, &ProcessEnv);
    // Through the log, as every other line `serve` writes, in file and line order: with
    // `--log-format json` a log collector gets JSON lines for a refused start too.
    for d in diags.sorted() {
        match d.severity {
            crate::config::diag::Severity::Error => tracing::error!("{d}"),
            _ => tracing::warn!("{d}"),
        }
    }
    let Some(mut plan) = plan else {
        tracing::error!(
            errors = diags.errors().count(),
            "the configuration has errors; not starting"
        );
        return 1;
    };
    for key in &plan.not_in_force {
        tracing::warn!(key = %key, "`{key}` is accepted and checked, but not in force yet in this version");
    }
    if plan.demo_secret {
        tracing::warn!("auth.jwt.secret is the default written in facade.yaml (the demo secret): set JWT_SECRET for anything but a demo");
    }
    // Bind first: a taken address is reported before any demo backend starts.
    let addr = listen.map(str::to_string).unwrap_or_else(|| plan.listen.clone());
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            let from = if listen.is_some() {
                "--listen"
            } else {
                "`listen` in the configuration"
            };
            let hint = crate::config::gateway::listen_hint(&addr)
                .unwrap_or_else(|| "pick another address with --listen ADDR".into());
            tracing::error!("cannot listen on {addr} (from {from}): {e}; {hint}");
            return 1;
        }
    };
    let mut started = crate::demo::Started::new();
    if demo {
        if let Err(e) = crate::demo::start_all(&mut plan, &mut started).await {
            tracing::error!("cannot start the demo backends: {e}");
            return 1;
        }
    }
    let watch = plan.watch;
    let clock: Arc<dyn crate::exec::cache::Clock> = Arc::new(crate::exec::cache::SystemClock::default());
    let exec = match crate::exec::new_exec(&plan, clock) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("cannot build the backend client: {e}");
            return 1;
        }
    };
    let endpoints = plan.endpoints.len();
    let state = match crate::state::AppState::new(plan, exec) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return 1;
        }
    };
    let reloader = crate::reload::Reloader::new(config, listen, demo.then_some(started), state.clone());
    crate::reload::on_sighup(reloader.clone());
    if watch {
        if let Err(e) = crate::reload::watch(reloader.clone()) {
            tracing::warn!(error = %e, "`watch: true`, but the files cannot be watched; SIGHUP still reloads");
        }
    }
    let options = crate::server::ServeOptions {
        workers: crate::server::worker_count(),
        ..crate::server::ServeOptions::for_state(&state)
    };
    let open_files = open_files_limit();
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or(addr),
        endpoints,
        workers = options.workers,
        open_files,
        "facade is serving"
    );
    match crate::server::serve_with(listener, state, crate::server::shutdown_signal(), options).await {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            tracing::error!("server error: {e}");
            1
        }
    }
}

/// Raises this process's limit of open files to the most it may have (its hard limit), and
/// returns it.
///
/// Why: every client connection is a file, and a proxied one a second for its backend. Many
/// systems start a process with a soft limit of 1024 (systemd services, a login shell), where a
/// gateway would refuse connections at a few hundred clients while the hard limit allows far
/// more, as nginx's `worker_rlimit_nofile` and Go's runtime do it too.
fn open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the limit of open files");
            rlimit::Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(0)
        }
    }
}
