//! Hot reload (SPEC §9): on `SIGHUP`, or a change of a loaded file when `watch: true`, everything
//! is loaded and compiled again; the new plan replaces the old one atomically only when it has no
//! errors (warnings are fine), else the old one keeps serving and every error is logged with its
//! file, line and column. In-flight requests finish on the plan they started with (each request
//! takes the plan once). What lives outside the plan carries over: rate-limit buckets, breaker
//! state, cached responses (keyed by what a call sends), the backend pools, the demo backends.
//! What cannot change without a restart (the listen address, the rate-limit store) is reported,
//! and the rest still reloads.

use crate::config::env::ProcessEnv;
use crate::plan::{Plan, StoreConfig};
use crate::state::AppState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// What a reload needs to know of the running server.
pub struct Reloader {
    config: PathBuf,
    /// `--listen`, which wins over the file's `listen` (then a change of `listen` is no change).
    listen_flag: Option<String>,
    demo: Option<Mutex<crate::demo::Started>>,
    state: Arc<AppState>,
    /// One reload at a time: a signal during a reload waits for it.
    running: Mutex<()>,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The new configuration serves.
    Applied,
    /// It had errors: the old one keeps serving.
    Refused,
}

impl Reloader {
    /// A reloader for a server started from `config`.
    pub fn new(
        config: &Path,
        listen_flag: Option<&str>,
        demo: Option<crate::demo::Started>,
        state: Arc<AppState>,
    ) -> Arc<Reloader> {
        Arc::new(Reloader {
            config: config.to_path_buf(),
            listen_flag: listen_flag.map(str::to_string),
            demo: demo.map(Mutex::new),
            state,
            running: Mutex::new(()),
        })
    }

    /// Loads everything again and swaps it in when it has no errors.
    pub async fn reload(&self, why: &str) -> Outcome {
        let _one = self.running.lock().await;
        // Off the event loop: reading and compiling a large configuration takes long enough to
        // stall every connection of the worker thread this task runs on.
        let config = self.config.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::load::load_plan(&config, &ProcessEnv)).await;
        let (plan, diags) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(trigger = why, error = %e, "reload refused: loading the configuration failed");
                crate::metrics::reload("failure");
                return Outcome::Refused;
            }
        };
        let Some(mut plan) = plan else {
            for d in diags.errors() {
                tracing::error!("{d}");
            }
            tracing::error!(
                trigger = why,
                errors = diags.errors().count(),
                "reload refused: the new configuration has errors; the loaded one keeps serving"
            );
            crate::metrics::reload("failure");
            return Outcome::Refused;
        };
        for d in diags.warnings() {
            tracing::warn!("{d}");
        }
        if let Some(started) = &self.demo {
            let mut started = started.lock().await;
            if let Err(e) = crate::demo::start_all(&mut plan, &mut started).await {
                tracing::error!(trigger = why, error = %e, "reload refused: a demo backend could not start");
                crate::metrics::reload("failure");
                return Outcome::Refused;
            }
        }
        let old = self.state.plan();
        self.report_restart_only(&old, &plan);
        self.state.exec.upstream.set_body_limit(plan.limits.upstream_body);
        let endpoints = plan.endpoints.len();
        self.state.swap(plan);
        crate::metrics::reload("success");
        crate::metrics::config_loaded();
        tracing::info!(trigger = why, endpoints, "configuration reloaded");
        Outcome::Applied
    }

    /// Settings a reload cannot apply: said once per reload that changes them.
    fn report_restart_only(&self, old: &Plan, new: &Plan) {
        if self.listen_flag.is_none() && old.listen != new.listen {
            tracing::warn!(
                now = %old.listen,
                written = %new.listen,
                "`listen` changed: it takes a restart; the rest of the configuration is reloaded"
            );
        }
        let store = |p: &Plan| {
            p.rate_limits
                .as_ref()
                .map(|r| r.store.clone())
                .unwrap_or(StoreConfig::Memory)
        };
        if store(old) != store(new) && !self.state.limiter.serves(&store(new)) {
            tracing::warn!("`rate_limits.store` changed: it takes a restart; limits keep their current store");
        }
    }
}

/// Reloads on every `SIGHUP`.
pub fn on_sighup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    reloader.reload("SIGHUP").await;
                }
            });
        }
        Err(e) => tracing::warn!("cannot handle SIGHUP: {e}"),
    }
    #[cfg(not(unix))]
    let _ = reloader;
}

/// How long the watcher waits for writes to settle (an editor's save is several writes).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Whether a changed file can belong to the configuration: YAML, JSON or a PEM key. Editors'
/// swap files and everything else in the watched folders are ignored.
fn relevant(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json" | "pem" | "key" | "crt")
    )
}

/// `watch: true`: reloads when a file in the folders the configuration was read from changes —
/// written, created, removed or renamed — once the writes have settled for `DEBOUNCE`, so an
/// editor's several writes make one reload. The folders follow the configuration in force.
pub fn watch(reloader: Arc<Reloader>) -> Result<(), String> {
    use notify::EventKind;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let changes = !matches!(ev.kind, EventKind::Access(_));
            if changes && ev.paths.iter().any(|p| relevant(p)) {
                let _ = tx.send(());
            }
        }
    })
    .map_err(|e| e.to_string())?;
    let mut watched: Vec<PathBuf> = Vec::new();
    sync_folders(&mut watcher, &mut watched, &reloader.state.plan().watched);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Wait for the writes to settle.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if reloader.reload("a watched file changed").await == Outcome::Applied {
                sync_folders(&mut watcher, &mut watched, &reloader.state.plan().watched);
            }
        }
    });
    Ok(())
}

/// Watches exactly `want` (folders that do not exist yet are skipped, with a warning).
fn sync_folders(watcher: &mut notify::RecommendedWatcher, watched: &mut Vec<PathBuf>, want: &[PathBuf]) {
    use notify::{RecursiveMode, Watcher};
    watched.retain(|d| {
        let keep = want.contains(d);
        if !keep {
            let _ = watcher.unwatch(d);
        }
        keep
    });
    for d in want {
        if !watched.contains(d) {
            match watcher.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => watched.push(d.clone()),
                Err(e) => tracing::warn!(folder = %d.display(), error = %e, "cannot watch this folder"),
            }
        }
    }
}
