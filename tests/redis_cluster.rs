//! The Redis Cluster store against a real three-node cluster (`redis-server --cluster-enabled
//! yes` ×3, joined by `redis-cli --cluster create`) on free ports, stopped by PID: buckets are
//! shared across instances through the cluster, and a slot moved while requests flow keeps its
//! user limited and the other users' counts.

mod common;

use common::*;
use serde_json::json;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Cluster {
    nodes: Vec<(Child, u16)>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (c, _) in &mut self.nodes {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A port free together with its cluster bus port (+10000).
fn free_pair() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55000 && std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli must be installed (.ci/run installs redis-server, which brings it)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_pair();
            let conf = dir.path().join(format!("nodes-{port}.conf"));
            let extra: Vec<&std::ffi::OsStr> = [
                "--cluster-enabled".as_ref(),
                "yes".as_ref(),
                "--cluster-config-file".as_ref(),
                conf.as_os_str(),
                "--cluster-node-timeout".as_ref(),
                "2000".as_ref(),
            ]
            .to_vec();
            let child = redis_server(port, &extra, Some(dir.path()));
            nodes.push((child, port));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for (_, port) in &nodes {
            while cli(*port, &["PING"]) != "PONG" {
                assert!(Instant::now() < deadline, "a cluster node did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let addrs: Vec<String> = nodes.iter().map(|(_, p)| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
        for (_, port) in &nodes {
            while !cli(*port, &["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(Instant::now() < deadline, "the cluster did not form");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Cluster { nodes, _dir: dir }
    }

    fn seeds(&self) -> String {
        // One seed is enough: the rest is discovered.
        format!("[redis://127.0.0.1:{}]", self.nodes[0].1)
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(_, p)| *p).collect()
    }

    /// The id of the node on `port`.
    fn id(&self, port: u16) -> String {
        cli(port, &["CLUSTER", "MYID"])
    }

    /// The port of the node that holds `slot`.
    fn owner(&self, slot: u16) -> u16 {
        // CLUSTER NODES lists each node's address and slot ranges.
        let nodes = cli(self.ports()[0], &["CLUSTER", "NODES"]);
        for line in nodes.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let port: u16 = parts[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            for range in &parts[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                    if (a..=b).contains(&slot) {
                        return port;
                    }
                }
            }
        }
        panic!("no owner for slot {slot}")
    }

    /// Moves `slot` from `from` to `to` with its keys, the way `redis-cli --cluster reshard` does.
    fn migrate(&self, slot: u16, from: u16, to: u16, between: &mut dyn FnMut()) {
        let s = slot.to_string();
        let (from_id, to_id) = (self.id(from), self.id(to));
        assert_eq!(cli(to, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id]), "OK");
        assert_eq!(cli(from, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id]), "OK");
        between();
        let keys = cli(from, &["CLUSTER", "GETKEYSINSLOT", &s, "100"]);
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let r = cli(from, &["MIGRATE", "127.0.0.1", &to.to_string(), key, "0", "5000"]);
            assert_eq!(r, "OK", "MIGRATE {key}");
        }
        between();
        for port in self.ports() {
            cli(port, &["CLUSTER", "SETSLOT", &s, "NODE", &to_id]);
        }
    }
}

/// The endpoint the store tests limit, under the policy `shared`.
const APP: &str = SHARED_LIMIT_APP;

async fn gateway(cluster: &Cluster, data: &Backend) -> Gateway {
    let yaml = format!(
        "services:\n  data:\n    url: {}\n{AUTH}rate_limits:\n  store: {{ cluster: {} }}\n  on_store_error: deny\n  policies:\n    shared: {{ requests: 5, per: 3600s, key: user }}\n",
        data.url(),
        cluster.seeds()
    );
    let p = Project::new(&yaml, &[("app.yaml", APP)]);
    Gateway::start(p.plan(&[])).await
}

async fn status(gw: &Gateway, token: &str) -> u16 {
    client()
        .get(gw.url("/app/one"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_shares_buckets_and_keeps_them_through_a_slot_migration() {
    let cluster = Cluster::start();
    let data = Backend::fixed(json!({"v": 1})).await;
    let a = gateway(&cluster, &data).await;
    let b = gateway(&cluster, &data).await;
    let (ta, tb) = (token("ua", json!({})), token("ub", json!({})));
    // User A uses the whole quota through two instances; user B three of five.
    let mut allowed = 0;
    for i in 0..7 {
        let gw = if i % 2 == 0 { &a } else { &b };
        allowed += (status(gw, &ta).await == 200) as u32;
    }
    assert_eq!(allowed, 5, "two instances, one cluster, one quota");
    for _ in 0..3 {
        assert_eq!(status(&b, &tb).await, 200);
    }
    // Move A's slot to another node while requests flow.
    let key = "facade:rl:{shared:u:ua}";
    let slot: u16 = cli(cluster.ports()[0], &["CLUSTER", "KEYSLOT", key]).parse().unwrap();
    let from = cluster.owner(slot);
    let to = *cluster.ports().iter().find(|p| **p != from).unwrap();
    let ga = a.url("/app/one");
    let mut flowing = || {
        // Requests during the migration: A stays refused (ASK redirections are followed),
        // nothing errors.
        let (ga, ta) = (ga.clone(), ta.clone());
        let s = std::thread::spawn(move || {
            rt_block(async move {
                client()
                    .get(&ga)
                    .bearer_auth(&ta)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        });
        assert_eq!(s.join().unwrap(), 429, "A stays limited while its slot moves");
    };
    cluster.migrate(slot, from, to, &mut flowing);
    assert_eq!(cluster.owner(slot), to);
    assert_eq!(status(&a, &ta).await, 429, "A's count moved with its slot");
    assert_eq!(status(&b, &ta).await, 429);
    // B's count, wherever it lives, is intact: two more, then refused.
    assert_eq!(status(&a, &tb).await, 200);
    assert_eq!(status(&b, &tb).await, 200);
    assert_eq!(status(&a, &tb).await, 429);
}

/// Runs a future to completion on a runtime of its own (from a plain thread).
fn rt_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
