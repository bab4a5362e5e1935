//! The real `facade` binary: `check`, `routes`, `token`, and `serve` (start-up refusals, JSON
//! logs, request ids, SIGTERM draining).

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn facade() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facade"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("JWT_SECRET").env_remove("FACADE_LOG_FORMAT");
    c
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = facade().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_shipped_configuration() {
    let (code, out, err) = run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.starts_with("ok:"), "{out}");
}

#[test]
fn check_reports_every_error_and_exits_1() {
    let p = Project::new(
        "services:\n  a:\n    url: http://127.0.0.1:9\n    timout: 1s\n",
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      x: { service: b, get: /x }\n    response:\n      v: \"$.y.v\"\n",
        )],
    );
    let config = path_of(&p.config());
    let (code, _, err) = run(&["check", "--config", &config]);
    assert_eq!(code, 1, "{err}");
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("warning:") && l.contains(".yaml:"))
        .collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(err.contains("facade.yaml:4:5: unknown key `timout`"), "{err}");
    assert!(err.contains("compositions/app.yaml:7:21: unknown service `b`"), "{err}");
    assert!(
        err.contains("compositions/app.yaml:9:10: `$.y` refers to no call"),
        "{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");

    // Warnings alone exit 0.
    let p = Project::new("services:\n  a:\n    url: http://127.0.0.1:9\n", &[]);
    let (code, out, err) = run(&["check", "--config", &path_of(&p.config())]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("warning: service `a` has no `schema`"), "{err}");
}

#[test]
fn check_warns_of_a_missing_demo_folder_and_names_the_file_inside_a_folder_given_as_config() {
    let p = Project::new(
        "services:\n  a:\n    url: http://127.0.0.1:9\n    demo: fixtures/nowhere\n",
        &[],
    );
    let config = path_of(&p.config());
    let (code, _, err) = run(&["check", "--config", &config]);
    assert_eq!(code, 0, "a warning: only `serve --demo` needs the folder: {err}");
    assert!(
        err.contains("facade.yaml:4:11: warning: demo folder `")
            && err.contains("fixtures/nowhere` does not exist: `serve --demo` will refuse to start"),
        "{err}"
    );
    let folder = path_of(p.dir.path());
    let (code, _, err) = run(&["check", "--config", &folder]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("name the file, not its folder: did you mean `"), "{err}");
    assert!(err.contains("facade.yaml`?"), "{err}");
}

#[test]
fn routes_prints_the_table() {
    let (code, out, _) = run(&["routes"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("METHOD"), "{out}");
    let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert!(
        lines.iter().any(|l| cells(l)[..2] == ["GET", "/mobile/api/home"]),
        "{out}"
    );
    let graphql = lines.iter().find(|l| l.contains("/graphql")).unwrap();
    assert_eq!(
        cells(graphql)[..4],
        ["GET,POST", "/graphql", "graphql", "required"],
        "{graphql}"
    );
    let post = lines.iter().find(|l| l.contains("/web/api/cart/items")).unwrap();
    assert!(
        post.starts_with("POST") && post.contains("rest") && post.contains("required"),
        "{post}"
    );
    let product = lines.iter().find(|l| l.contains("/web/api/products/{id}")).unwrap();
    assert!(product.contains("optional"), "{product}");
    let orders = lines.iter().find(|l| l.contains("/api/orders ")).unwrap();
    assert!(
        orders.starts_with('*') && orders.contains("passthrough") && orders.contains("required"),
        "{orders}"
    );
    let products = lines.iter().find(|l| l.contains("/api/products ")).unwrap();
    assert!(
        products.contains("passthrough") && products.contains("none"),
        "{products}"
    );
}

#[test]
fn token_mints_what_the_configuration_accepts() {
    let (code, out, err) = run(&[
        "token",
        "--sub",
        "1001",
        "--role",
        "admin",
        "--role",
        "ops",
        "--ttl",
        "5m",
        "--claim",
        "tenant=acme",
        "--claim",
        "level=3",
    ]);
    assert_eq!(code, 0, "{err}");
    let token = out.trim();
    let env: std::collections::HashMap<String, String> = Default::default();
    let (plan, _) = facade::load::load_plan(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("facade.yaml"),
        &env,
    );
    let plan = plan.unwrap();
    let claims = plan.auth.as_ref().unwrap().verifier.verify(token).unwrap();
    assert_eq!(claims["sub"], "1001");
    assert_eq!(claims["role"], json!(["admin", "ops"]));
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["level"], 3);
    assert_eq!(claims["iss"], "https://demo.facade.local");
    assert_eq!(claims["aud"], "facade");
    let ttl = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(ttl, 300);
    // Problems outside the auth section do not stop a development token.
    let p = Project::new(
        "services:\n  a:\n    url: ${SURELY_UNSET_URL}\nauth:\n  jwt:\n    algorithms: [HS256]\n    secret: s\n",
        &[],
    );
    let (code, out, err) = run(&["token", "--config", &path_of(&p.config()), "--sub", "x"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().split('.').count(), 3);
    let (code, _, err) = run(&["token", "--sub", "x", "--ttl", "soon"]);
    assert_eq!(code, 1);
    assert!(err.contains("--ttl"), "{err}");
}

#[test]
fn serve_refuses_a_bad_configuration() {
    let p = Project::new("services:\n  a:\n    url: nope\n", &[]);
    let (code, _, err) = run(&["serve", "--config", &path_of(&p.config()), "--listen", "127.0.0.1:0"]);
    assert_eq!(code, 1);
    assert!(err.contains("facade.yaml:3:10: `url` must be an http(s) URL"), "{err}");
    assert!(err.contains("not starting"), "{err}");
    // Written as the log writes: JSON lines under `--log-format json` (a log collector reads
    // a refused start too), each problem once.
    let p = Project::new(
        "services:\n  a:\n    url: nope\n  b:\n    url: http://127.0.0.1:9\n",
        &[],
    );
    let (code, _, err) = run(&[
        "serve",
        "--config",
        &path_of(&p.config()),
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ]);
    assert_eq!(code, 1);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not a JSON line: {l}\n{err}")))
        .collect();
    let messages: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["level"].as_str().unwrap_or(""), l["message"].as_str().unwrap_or("")))
        .collect();
    assert!(
        messages.iter().any(|(level, m)| *level == "ERROR"
            && m.ends_with("facade.yaml:3:10: `url` must be an http(s) URL, found `nope`; start it with its scheme: `http://` or `https://`")),
        "{err}"
    );
    assert_eq!(
        messages
            .iter()
            .filter(|(_, m)| m.contains("service `b` has no `schema`"))
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        messages.last().map(|m| m.1),
        Some("the configuration has errors; not starting"),
        "{err}"
    );
}

/// A port nothing listens on (the discard service's). Not a port `free_port` found: released,
/// it can be handed to another test's backend (bound to port 0) before it is used.
const DEAD_PORT: u16 = 9;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    child: Child,
    port: u16,
    logs: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(config: &str, extra: &[&str]) -> Server {
        Server::start_env(config, extra, &[])
    }

    fn start_env(config: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["--listen", &listen];
        args.extend_from_slice(extra);
        Server::spawn(config, port, &args, env)
    }

    /// The server listening where the configuration's `listen` says (`port`), with no `--listen`.
    fn start_on_configured(config: &str, port: u16) -> Server {
        Server::spawn(config, port, &[], &[])
    }

    fn spawn(config: &str, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::spawn_logging(config, port, extra, env, "json")
    }

    /// The server writing its log lines in the text format (to a pipe: through the buffer).
    fn start_text(config: &str) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        Server::spawn_logging(config, port, &["--listen", &listen], &[], "text")
    }

    fn spawn_logging(config: &str, port: u16, extra: &[&str], env: &[(&str, &str)], format: &str) -> Server {
        let mut child = facade()
            .args(["serve", "--config", config, "--log-format", format])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let server = Server { child, port, logs: rx };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits for a log line that satisfies `pred`.
    fn wait_log(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => continue,
                Err(_) => panic!("no such log line within 10 s"),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn serve_runs_two_workers_per_cpu_unless_told_otherwise() {
    let p = Project::new(
        "services:\n  s:\n    url: http://127.0.0.1:9\nroutes:\n  - { prefix: /s, service: s }\n",
        &[],
    );
    let config = path_of(&p.config());
    let workers = |env: &[(&str, &str)]| {
        let server = Server::start_env(&config, &[], env);
        let line = server.wait_log(|l| l.contains("facade is serving"));
        let log: Value = serde_json::from_str(&line).unwrap();
        log["workers"].as_u64()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert_eq!(workers(&[]), Some(2 * cpus));
    assert_eq!(workers(&[("TOKIO_WORKER_THREADS", "3")]), Some(3));
}

#[tokio::test]
async fn serve_logs_json_lines_and_drains_in_flight_requests_on_sigterm() {
    let slow = Backend::start(|_| Reply::json(json!({"v": "done"})).after(Duration::from_millis(800))).await;
    let p = Project::new(
        &format!("services:\n  slow:\n    url: {}\n", slow.url()),
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: slow, get: /s }\n    response:\n      v: \"$.s.v\"\n",
        )],
    );
    let config = path_of(&p.config());
    let mut server = Server::start(&config, &[]);
    server.wait_log(|l| l.contains("facade is serving"));

    let (status, headers, body) = get(&server.url("/healthz"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    let line = server.wait_log(|l| l.contains(&id));
    let log: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["method"], "GET");
    assert_eq!(log["status"], 200);
    let latency = log["latency_ms"].as_f64().unwrap();
    assert_eq!((latency * 100.0).round() / 100.0, latency, "rounded: {line}");
    assert_eq!(log["route"], "/healthz");

    // A slow request is in flight when SIGTERM arrives: it still completes, then the process exits 0.
    let url = server.url("/app/e");
    let in_flight = tokio::spawn(async move { get(&url, None).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while slow.count() == 0 {
        assert!(Instant::now() < deadline, "request never reached the backend");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let (status, _, body) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status, body["v"].as_str()), (200, Some("done")));
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(code, Some(0));
    let route_line = server.wait_log(|l| l.contains("\"/app/e\""));
    let log: Value = serde_json::from_str(&route_line).unwrap();
    assert_eq!(log["route"], "/app/e");
}

#[tokio::test]
async fn serve_logs_text_lines_with_the_request_id_on_every_line_of_a_request() {
    // Nothing listens on the backend's port: the call fails, and its warning is written while
    // the request is handled.
    let dead = DEAD_PORT;
    let p = Project::new(
        &format!("services:\n  dead:\n    url: http://127.0.0.1:{dead}\n"),
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: dead, get: /s }\n    response:\n      v: \"$.s.v\"\n",
        )],
    );
    let config = path_of(&p.config());
    let server = Server::start_text(&config);
    server.wait_log(|l| l.contains("facade is serving"));
    let client = reqwest::Client::new();
    let resp = client
        .get(server.url("/app/e"))
        .header("x-request-id", "trace-\"7\"")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let warning = server.wait_log(|l| l.contains("backend call failed"));
    assert!(
        warning.contains(" WARN request{request_id=\"trace-\\\"7\\\"\"}: facade::upstream: backend call failed "),
        "{warning}"
    );
    let line = server.wait_log(|l| l.contains("facade::middleware::front: request "));
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(
        stamp.ends_with('Z') && stamp.len() == "2026-12-02T05:53:53.741122Z".len(),
        "{line}"
    );
    let rest = rest
        .strip_prefix(" INFO facade::middleware::front: request request_id=\"trace-\\\"7\\\"\" ")
        .unwrap_or_else(|| panic!("{line}"));
    let rest = rest
        .strip_prefix("method=GET route=\"/app/e\" path=/app/e status=502 latency_ms=")
        .unwrap_or_else(|| panic!("{line}"));
    let latency: f64 = rest.parse().unwrap_or_else(|_| panic!("{line}"));
    assert_eq!((latency * 100.0).round() / 100.0, latency, "rounded: {line}");
}

#[tokio::test]
async fn serve_demo_answers_every_shipped_endpoint_with_no_other_process() {
    let server = Server::start("facade.yaml", &["--demo"]);
    server.wait_log(|l| l.contains("demo secret"));
    let (code, out, _) = run(&["token", "--sub", "1001"]);
    assert_eq!(code, 0);
    let t = out.trim().to_string();
    let (status, _, body) = get(&server.url("/mobile/api/home"), Some(&t)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["greeting"], "Welcome back, Ada");
    assert_eq!(body["recommendedProducts"].as_array().unwrap().len(), 10);
    assert_eq!(body["cartItemCount"], 3);
    assert_eq!(body["unreadNotifications"], 4);
    assert_eq!(get(&server.url("/mobile/api/home"), None).await.0, 401);
    let (status, _, body) = get(&server.url("/mobile/api/orders/ord-77812"), Some(&t)).await;
    assert_eq!((status, body["id"].as_str()), (200, Some("ord-77812")), "{body}");
    let (status, _, body) = get(&server.url("/web/api/products/p-01001?reviews=2"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["topReviews"].as_array().unwrap().len(), 2, "{body}");
    let (_, _, body) = get(&server.url("/web/api/products/p-01001"), None).await;
    assert_eq!(body["topReviews"].as_array().unwrap().len(), 3, "{body}");
    let (_, _, body) = get(&server.url("/web/api/products/p-01001?reviews=2"), None).await;
    assert_eq!(body["sellerName"], "Babbage Audio Store");
    assert_eq!(
        body["variants"][1],
        json!({"sku": "SKU-0001001-WHT", "color": "white", "available": 0})
    );
    // The demo's state really changes: the cart grows.
    for expected in [4, 5] {
        let resp = client()
            .post(server.url("/web/api/cart/items"))
            .bearer_auth(&t)
            .json(&json!({"productId": "p-01002", "quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().await.unwrap()["cartItemCount"], expected);
    }
    let (_, _, body) = get(&server.url("/mobile/api/home"), Some(&t)).await;
    assert_eq!(body["cartItemCount"], 5);
    // Passthrough routes of the shipped configuration, answered by the demo backends.
    let (status, _, body) = get(&server.url("/api/orders/ord-77812"), Some(&t)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("shipped")), "{body}");
    assert_eq!(get(&server.url("/api/orders/ord-77812"), None).await.0, 401);
    let (status, _, body) = get(&server.url("/api/orders"), Some(&t)).await;
    assert_eq!(
        (status, body["orders"][0]["id"].as_str()),
        (200, Some("ord-77812")),
        "{body}"
    );
    let (status, _, body) = get(&server.url("/api/products/p-01001"), None).await;
    assert_eq!((status, body["id"].as_str()), (200, Some("p-01001")), "{body}");
}

#[tokio::test]
async fn sighup_reloads_the_demo_and_keeps_its_backends() {
    let server = Server::start("facade.yaml", &["--demo"]);
    server.wait_log(|l| l.contains("facade is serving"));
    let token = {
        let (_, out, _) = run(&["token", "--sub", "1001"]);
        out.trim().to_string()
    };
    let add = || async {
        client()
            .post(server.url("/web/api/cart/items"))
            .bearer_auth(&token)
            .json(&json!({"productId": "p-01002", "quantity": 1}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["cartItemCount"]
            .as_u64()
            .unwrap()
    };
    let before = add().await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    server.wait_log(|l| l.contains("configuration reloaded") && l.contains("SIGHUP"));
    // The same demo backends answer after the reload: the cart kept its state.
    assert_eq!(add().await, before + 1);
    let (status, _, _) = get(&server.url("/healthz"), None).await;
    assert_eq!(status, 200);
}

const RELOAD_APP: &str = "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: data, get: /s }\n    response:\n      v: \"$.s.v\"\n";

fn reload_project(data: &Backend, watch: bool) -> Project {
    Project::new(
        &format!("services:\n  data:\n    url: {}\nwatch: {watch}\n", data.url()),
        &[("app.yaml", RELOAD_APP)],
    )
}

#[tokio::test]
async fn sighup_swaps_in_a_good_configuration_and_refuses_a_broken_one() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let p = reload_project(&data, false);
    let server = Server::start(&path_of(&p.config()), &[]);
    server.wait_log(|l| l.contains("facade is serving"));
    let pid = server.child.id().to_string();
    let hup = || assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    assert_eq!(get(&server.url("/app/f"), None).await.0, 404);
    // A good change: a new endpoint, served after the reload.
    let comps = p.dir.path().join("compositions");
    std::fs::write(
        comps.join("app.yaml"),
        format!("{RELOAD_APP}  f:\n    get: /f\n    calls:\n      s: {{ service: data, get: /s }}\n    response:\n      w: \"$.s.v\"\n"),
    )
    .unwrap();
    hup();
    server.wait_log(|l| l.contains("configuration reloaded"));
    let (status, _, body) = get(&server.url("/app/f"), None).await;
    assert_eq!((status, body), (200, json!({"w": 1})));
    // A broken change: refused with file:line:col, the old configuration keeps serving.
    std::fs::write(comps.join("app.yaml"), "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: nope, get: /s }\n    response:\n      v: \"$.s.v\"\n").unwrap();
    hup();
    let error = server.wait_log(|l| l.contains("unknown service"));
    assert!(error.contains("app.yaml:7:21: unknown service `nope`"), "{error}");
    server.wait_log(|l| l.contains("reload refused"));
    assert_eq!(
        get(&server.url("/app/f"), None).await.0,
        200,
        "the old configuration serves"
    );
}

#[tokio::test]
async fn a_reload_does_not_hold_the_requests_of_the_thread_that_loads_it() {
    // 600 endpoints: loading and compiling them takes a while (in a debug build, most of a
    // second), and with one worker thread every connection is served by the thread the reload
    // starts on.
    let mut big = String::from("client: big\nbase_path: /big\nendpoints:\n");
    for i in 0..600 {
        big.push_str(&format!(
            "  e{i}:\n    get: /e{i}/{{id}}\n    auth: none\n    calls:\n      a: {{ service: things, get: \"/a/{{$.args.id}}\" }}\n      b: {{ service: things, get: \"/b/{{$.args.id}}\" }}\n    response:\n      x: $.a.x\n      y: \"coalesce($.b.y, 0)\"\n      items:\n        each: $.a.items\n        fields: {{ n: \"@.name\", v: \"@.value\" }}\n"
        ));
    }
    let p = Project::new(
        "services:\n  things:\n    url: http://127.0.0.1:9\n",
        &[("big.yaml", big.as_str())],
    );
    let server = Server::start_env(&path_of(&p.config()), &[], &[("TOKIO_WORKER_THREADS", "1")]);
    server.wait_log(|l| l.contains("facade is serving"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let healthz = server.url("/healthz");
    assert_eq!(client.get(&healthz).send().await.unwrap().status(), 200);
    let pid = server.child.id().to_string();
    let started = Instant::now();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    // Requests on a kept-alive connection until the reload is done; the slowest one is kept.
    let mut slowest = Duration::ZERO;
    let reload = loop {
        let sent = Instant::now();
        assert_eq!(client.get(&healthz).send().await.unwrap().status(), 200);
        slowest = slowest.max(sent.elapsed());
        match server.logs.try_recv() {
            Ok(line) if line.contains("configuration reloaded") => break started.elapsed(),
            _ => {}
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the reload did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(
        reload >= Duration::from_millis(150),
        "the reload took {reload:?}: too short to show anything; make the configuration larger"
    );
    assert!(
        slowest < reload / 2,
        "a request waited {slowest:?} during a reload of {reload:?}"
    );
}

#[tokio::test]
async fn watch_reloads_on_a_write_a_new_file_and_a_removed_file() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let p = reload_project(&data, true);
    let server = Server::start(&path_of(&p.config()), &[]);
    server.wait_log(|l| l.contains("facade is serving"));
    let comps = p.dir.path().join("compositions");
    let other = "client: other\nbase_path: /other\nendpoints:\n  g:\n    get: /g\n    calls:\n      s: { service: data, get: /s }\n    response:\n      x: \"$.s.v\"\n";
    std::fs::write(comps.join("other.yaml"), other).unwrap();
    server.wait_log(|l| l.contains("configuration reloaded") && l.contains("watched"));
    assert_eq!(get(&server.url("/other/g"), None).await.0, 200, "a new file");
    std::fs::write(comps.join("other.yaml"), other.replace("/g", "/h")).unwrap();
    server.wait_log(|l| l.contains("configuration reloaded"));
    assert_eq!(get(&server.url("/other/h"), None).await.0, 200, "a write");
    assert_eq!(get(&server.url("/other/g"), None).await.0, 404);
    std::fs::remove_file(comps.join("other.yaml")).unwrap();
    server.wait_log(|l| l.contains("configuration reloaded"));
    assert_eq!(get(&server.url("/other/h"), None).await.0, 404, "a removed file");
    assert_eq!(get(&server.url("/app/e"), None).await.0, 200);
}

#[tokio::test]
async fn reloads_under_load_lose_no_request() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let p = reload_project(&data, false);
    let server = Server::start(&path_of(&p.config()), &[]);
    server.wait_log(|l| l.contains("facade is serving"));
    let url = server.url("/app/e");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let until = done.clone();
    // Requests flow for as long as the reloads go on (and at least 2000 of them).
    let load = tokio::spawn(async move {
        let c = client();
        let mut statuses = std::collections::HashMap::<u16, u32>::new();
        let mut n = 0;
        while n < 2000 || !until.load(std::sync::atomic::Ordering::SeqCst) {
            let s = c.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
            *statuses.entry(s).or_default() += 1;
            n += 1;
        }
        (n, statuses)
    });
    let pid = server.child.id().to_string();
    let comps = p.dir.path().join("compositions");
    for i in 0..6 {
        // Good and broken configurations, alternately.
        let text = if i % 2 == 0 {
            RELOAD_APP.replace("v:", "v2:")
        } else {
            "client: [".to_string()
        };
        std::fs::write(comps.join("app.yaml"), text).unwrap();
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        server.wait_log(|l| l.contains("configuration reloaded") || l.contains("reload refused"));
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (n, statuses) = load.await.unwrap();
    assert_eq!(
        statuses.get(&200).copied().unwrap_or(0),
        n,
        "every request answered 200: {statuses:?}"
    );
}

#[test]
fn a_taken_listen_address_names_the_flag_before_demo_backends_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["serve", "--demo", "--listen", &addr]);
    assert_eq!(code, 1);
    assert!(err.contains("--listen") && err.contains(&addr), "{err}");
    assert!(!err.contains("demo backend started"), "{err}");
    // A port without a host, as Go servers take it, is told what to write.
    let (code, _, err) = run(&["serve", "--demo", "--listen", ":8080"]);
    assert_eq!(code, 1);
    assert!(err.contains("give the host too: `0.0.0.0:8080`"), "{err}");
}

#[tokio::test]
async fn a_rate_limit_store_outage_is_logged_once_not_per_request() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let dead = DEAD_PORT; // the store is down from the start
    let p = Project::new(
        &format!(
            "services:\n  data:\n    url: {}\nrate_limits:\n  store: redis://127.0.0.1:{dead}\n  default: p\n  policies:\n    p: {{ requests: 100, per: 60s, key: ip }}\n",
            data.url()
        ),
        &[(
            "app.yaml",
            "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: data, get: /s }\n    response:\n      v: \"$.s.v\"\n",
        )],
    );
    let server = Server::start(&path_of(&p.config()), &[]);
    for _ in 0..5 {
        let (status, headers, _) = get(&server.url("/app/e"), None).await;
        assert_eq!(status, 200, "on_store_error: allow (the default) lets requests through");
        assert!(headers.get("x-ratelimit-limit").is_none());
    }
    // Every line up to the log line of a last request, counted.
    let (_, headers, _) = get(&server.url("/healthz"), None).await;
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server.logs.recv_timeout(left).expect("the last request's log line");
        let last = line.contains(&id);
        lines.push(line);
        if last {
            break;
        }
    }
    let down = lines.iter().filter(|l| l.contains("rate-limit store is down")).count();
    assert_eq!(down, 1, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("not in force")),
        "a Redis store is in force: {lines:#?}"
    );
}

/// The value of one sample of the Prometheus text: `name{labels} value`, labels in any order.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        if n != name {
            return None;
        }
        let got: Vec<&str> = rest
            .trim_end_matches('}')
            .split(',')
            .filter(|s| !s.is_empty())
            .collect();
        let want: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        (got.len() == want.len() && want.iter().all(|w| got.contains(&w.as_str()))).then(|| value.parse().ok())?
    })
}

#[tokio::test]
async fn metrics_count_known_traffic_exactly() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let bad = Backend::start(|_| Reply::status(500, json!({}))).await;
    let app = "client: app\nbase_path: /app\nendpoints:\n  e:\n    get: /e\n    calls:\n      s: { service: data, get: /s }\n    response:\n      v: \"$.s.v\"\n  c:\n    get: /c\n    calls:\n      s: { service: data, get: /cached, cache: 60s }\n    response:\n      v: \"$.s.v\"\n  l:\n    get: /l\n    rate_limit: two\n    calls:\n      s: { service: data, get: /l }\n    response:\n      v: \"$.s.v\"\n  b:\n    get: /b\n    calls:\n      s: { service: bad, get: /b }\n    response:\n      v: \"$.s.v\"\n";
    let p = Project::new(
        &format!(
            "services:\n  data:\n    url: {}\n  bad:\n    url: {}\n    circuit_breaker: {{ failures: 5, within: 10s, open_for: 30s }}\nrate_limits:\n  policies:\n    two: {{ requests: 2, per: 60s, key: ip }}\ncors:\n  allow_origins: [\"https://app.example\"]\n",
            data.url(),
            bad.url()
        ),
        &[("app.yaml", app)],
    );
    let server = Server::start(&path_of(&p.config()), &[]);
    for _ in 0..3 {
        assert_eq!(get(&server.url("/app/e"), None).await.0, 200);
    }
    assert_eq!(get(&server.url("/nope/x?a=1"), None).await.0, 404);
    for _ in 0..2 {
        assert_eq!(get(&server.url("/app/c"), None).await.0, 200);
    }
    let limited: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(get(&server.url("/app/l"), None).await.0);
        }
        v
    };
    assert_eq!(limited, [200, 200, 429]);
    assert_eq!(get(&server.url("/app/b"), None).await.0, 502);
    // A CORS preflight counts under the route it asks about.
    let preflight = client()
        .request(reqwest::Method::OPTIONS, server.url("/app/e"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    server.wait_log(|l| l.contains("configuration reloaded"));
    std::fs::write(p.dir.path().join("compositions/app.yaml"), "client: [").unwrap();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    server.wait_log(|l| l.contains("reload refused"));

    let resp = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let n = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in\n{text}"))
    };
    let req = "facade_http_requests_total";
    assert_eq!(
        n(req, &[("route", "/app/e"), ("method", "GET"), ("status", "200")]),
        3.0
    );
    assert_eq!(
        n(req, &[("route", "unmatched"), ("method", "GET"), ("status", "404")]),
        1.0
    );
    assert_eq!(
        n(req, &[("route", "/app/l"), ("method", "GET"), ("status", "429")]),
        1.0
    );
    assert_eq!(
        n(req, &[("route", "/app/b"), ("method", "GET"), ("status", "502")]),
        1.0
    );
    assert_eq!(
        n(req, &[("route", "/app/e"), ("method", "OPTIONS"), ("status", "200")]),
        1.0
    );
    assert!(!text.contains("/nope"), "never the raw URL");
    assert_eq!(
        n(
            "facade_http_request_duration_seconds_count",
            &[("route", "/app/e"), ("method", "GET")]
        ),
        3.0
    );
    assert!(
        text.contains("facade_http_request_duration_seconds_bucket{"),
        "a histogram, with buckets"
    );
    let up = "facade_upstream_requests_total";
    assert_eq!(n(up, &[("service", "data"), ("outcome", "ok")]), 3.0 + 1.0 + 2.0);
    assert_eq!(n(up, &[("service", "bad"), ("outcome", "5xx")]), 1.0);
    assert_eq!(
        n("facade_upstream_request_duration_seconds_count", &[("service", "data")]),
        6.0
    );
    assert_eq!(n("facade_cache_requests_total", &[("result", "miss")]), 1.0);
    assert_eq!(n("facade_cache_requests_total", &[("result", "hit")]), 1.0);
    assert_eq!(
        n(
            "facade_rate_limit_decisions_total",
            &[("policy", "two"), ("result", "allowed")]
        ),
        2.0
    );
    assert_eq!(
        n(
            "facade_rate_limit_decisions_total",
            &[("policy", "two"), ("result", "limited")]
        ),
        1.0
    );
    assert_eq!(n("facade_circuit_breaker_state", &[("service", "bad")]), 0.0);
    assert_eq!(n("facade_config_reloads_total", &[("result", "success")]), 1.0);
    assert_eq!(n("facade_config_reloads_total", &[("result", "failure")]), 1.0);
    assert!(n("facade_config_loaded_timestamp_seconds", &[]) > 1.7e9);
}

#[tokio::test]
async fn debug_logs_follow_a_request_through_its_backend_calls() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let p = reload_project(&data, false);
    let server = Server::start_env(&path_of(&p.config()), &[], &[("FACADE_LOG", "info,facade=debug")]);
    server.wait_log(|l| l.contains("facade is serving"));
    let resp = client()
        .get(server.url("/app/e"))
        .header("x-request-id", "trace-me-1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let line = server.wait_log(|l| l.contains("backend call"));
    assert!(
        line.contains("trace-me-1"),
        "the call's line carries the request id: {line}"
    );
    let log: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(log["service"], "data");
    assert_eq!(log["outcome"], "ok");
    assert_eq!(log["path"], "/s");
}

#[tokio::test]
async fn a_changed_listen_address_is_reported_as_needing_a_restart_and_the_rest_reloads() {
    let data = Backend::fixed(json!({"v": 1})).await;
    let port = free_port();
    let yaml = |listen: u16, extra: &str| {
        format!(
            "listen: 127.0.0.1:{listen}\nservices:\n  data:\n    url: {}\n{extra}",
            data.url()
        )
    };
    let p = Project::new(&yaml(port, ""), &[("app.yaml", RELOAD_APP)]);
    let server = Server::start_on_configured(&path_of(&p.config()), port);
    server.wait_log(|l| l.contains("facade is serving"));
    assert!(get(&server.url("/app/e"), None)
        .await
        .1
        .get("x-ratelimit-limit")
        .is_none());
    // A new listen address and a new default policy: the policy applies, the address waits.
    let other = free_port();
    let policy = "rate_limits:\n  default: p\n  policies:\n    p: { requests: 9, per: 60s, key: ip }\n";
    std::fs::write(p.config(), yaml(other, policy)).unwrap();
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let line = server.wait_log(|l| l.contains("`listen` changed"));
    assert!(line.contains("restart"), "{line}");
    server.wait_log(|l| l.contains("configuration reloaded"));
    let (status, headers, _) = get(&server.url("/app/e"), None).await;
    assert_eq!(status, 200, "still on the old address");
    assert_eq!(
        headers["x-ratelimit-limit"], "9",
        "the rest of the configuration reloaded"
    );
}

#[tokio::test]
async fn a_log_reader_that_stops_reading_never_stops_requests() {
    // stderr is a pipe that nobody reads: it fills after a few hundred lines. Requests go on.
    let p = Project::new("services:\n  s:\n    url: http://127.0.0.1:9\n", &[]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = facade()
        .args([
            "serve",
            "--config",
            &path_of(&p.config()),
            "--listen",
            &listen,
            "--log-format",
            "text",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let unread = child.stderr.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://{listen}/healthz");
    let c = client();
    let started = Instant::now();
    for i in 0..2000 {
        let sent = tokio::time::timeout(Duration::from_secs(5), c.get(&url).send()).await;
        let status = sent
            .unwrap_or_else(|_| panic!("request {i} hung with its log lines unread"))
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // The lines waited, in order, and come out once the pipe is read.
    let _ = child.kill();
    let _ = child.wait();
    let text = std::io::read_to_string(unread).unwrap();
    assert!(text.contains("facade is serving"), "{}", &text[..text.len().min(500)]);
    assert!(text.matches("route=\"/healthz\"").count() > 100);
}

/// `facade serve` (JSON logs, stderr piped) of a configuration with one service, started by a
/// shell after `limit` (a `ulimit` command), on a free port; the project must outlive it.
fn serve_under(limit: &str, env: &[(&str, &str)]) -> (Project, Child, u16) {
    let p = Project::new("services:\n  s:\n    url: http://127.0.0.1:9\n", &[]);
    let port = free_port();
    let child = Command::new("bash")
        .args([
            "-c",
            &format!("{limit} && exec \"$0\" serve --config \"$1\" --listen \"$2\" --log-format json"),
            env!("CARGO_BIN_EXE_facade"),
            &path_of(&p.config()),
            &format!("127.0.0.1:{port}"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("JWT_SECRET")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (p, child, port)
}

#[tokio::test]
async fn serve_raises_its_open_files_limit_to_the_hard_limit() {
    // Started with a soft limit of 256, as a login shell or a systemd unit may start it.
    let (_p, mut child, _) = serve_under("ulimit -Sn 256", &[]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let start = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("facade is serving"))
        .expect("no start line");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let row: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    let (soft, hard) = (row[3], row[4]);
    assert_eq!(soft, hard, "{limits}");
    let start: Value = serde_json::from_str(&start).unwrap();
    assert_eq!(start["open_files"].to_string(), soft, "{start}");
}

#[tokio::test]
async fn running_out_of_files_is_logged_once_and_its_end_once() {
    // A hard limit of 48 open files: a few dozen clients use them up.
    let (_p, mut child, port) = serve_under("ulimit -n 48", &[("TOKIO_WORKER_THREADS", "1")]);
    let listen = format!("127.0.0.1:{port}");
    let stderr = child.stderr.take().unwrap();
    let (tx, logs) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // 80 clients hold their connections for a second: the later ones wait in the backlog while
    // every accept fails.
    let held: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(held);
    let url = format!("http://{listen}/healthz");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(2), client().get(&url).send()).await {
            assert_eq!(resp.status(), 200);
            break;
        }
        assert!(Instant::now() < deadline, "the server never accepted again");
    }
    // The log is written by a thread of its own: wait for the outage's end to reach it before
    // the process is killed (a kill at once could lose the line still on its way).
    let mut lines: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lines.iter().any(|l| l.contains("accepting connections again")) && Instant::now() < deadline {
        if let Ok(line) = logs.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines.extend(logs.try_iter());
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("cannot accept connections"), 1, "{lines:#?}");
    assert_eq!(count("accepting connections again"), 1, "{lines:#?}");
}
