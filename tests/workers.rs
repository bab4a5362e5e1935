//! Serving on several worker threads (`server::ServeOptions::workers`, what `facade serve` does
//! with two threads per CPU): client connections are handed round robin to the workers, each
//! worker keeps its own backend connections, every request is answered, and a shutdown drains
//! the requests in flight on every worker before `serve_with` returns; h2c connections too.

mod common;

use common::*;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Served {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// Serves `/api/orders` (no auth) in front of `backend` on `workers` threads.
async fn serve(backend: SocketAddr, workers: usize) -> Served {
    let facade = routes_facade(
        &[("orders", format!("http://{backend}"), "")],
        "  - { prefix: /api/orders, service: orders, auth: none }\n",
    );
    let plan = Project::new(&facade, &[]).plan(&[]);
    let (addr, tx, done) = serve_plan(plan, |o| o.workers = workers).await;
    Served {
        addr,
        stop: Some(tx),
        done,
    }
}

/// One keep-alive client connection.
struct Client(TcpStream);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .unwrap();
        Client(stream)
    }

    /// Sends a GET and reads its whole response (the backend's body is 11 bytes).
    async fn get(&mut self, path: &str) -> String {
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw\r\n\r\n");
        self.0.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let read = async {
            loop {
                let mut chunk = [0u8; 4096];
                let n = self.0.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed: {}", String::from_utf8_lossy(&buf));
                buf.extend_from_slice(&chunk[..n]);
                if buf.ends_with(b"{\"ok\":true}") {
                    return;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("response timed out");
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[tokio::test]
async fn each_worker_keeps_its_own_backend_connections() {
    // Two client connections, one request at a time on each, so never two exchanges at once.
    // On one thread the second request reuses the backend connection of the first; on two
    // workers each client connection is on a worker of its own, with its own backend connection.
    for (workers, backend_connections) in [(1, 1), (2, 2)] {
        let (backend, peers) = peer_recording_backend(Duration::ZERO).await;
        let served = serve(backend, workers).await;
        let mut a = Client::connect(served.addr).await;
        let mut b = Client::connect(served.addr).await;
        for round in 0..3 {
            for client in [&mut a, &mut b] {
                let response = client.get(&format!("/api/orders/{round}")).await;
                assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            }
        }
        let peers = peers.lock().unwrap().clone();
        assert_eq!(peers.len(), 6);
        let distinct: HashSet<_> = peers.iter().collect();
        assert_eq!(distinct.len(), backend_connections, "{workers} worker(s): {peers:?}");
    }
}

#[tokio::test]
async fn many_connections_over_three_workers_are_all_answered() {
    let (backend, peers) = peer_recording_backend(Duration::ZERO).await;
    let served = serve(backend, 3).await;
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let addr = served.addr;
            tokio::spawn(async move {
                let mut client = Client::connect(addr).await;
                for j in 0..5 {
                    let response = client.get(&format!("/api/orders/{i}-{j}")).await;
                    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("a client timed out")
            .unwrap();
    }
    assert_eq!(peers.lock().unwrap().len(), 120);
}

#[tokio::test]
async fn shutdown_drains_the_requests_in_flight_on_every_worker() {
    let (backend, peers) = peer_recording_backend(Duration::from_millis(400)).await;
    let mut served = serve(backend, 2).await;
    // Four connections, so two on each worker, each with a request in flight.
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect(served.addr).await);
    }
    let requests: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| tokio::spawn(async move { client.get(&format!("/api/orders/{i}")).await }))
        .collect();
    let arrived = async {
        while peers.lock().unwrap().len() < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), arrived)
        .await
        .expect("the requests never reached the backend");
    let _ = served.stop.take().unwrap().send(());
    for request in requests {
        let response = tokio::time::timeout(Duration::from_secs(10), request)
            .await
            .expect("an in-flight request was not finished")
            .unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    tokio::time::timeout(Duration::from_secs(10), &mut served.done)
        .await
        .expect("serve_with did not return after draining")
        .unwrap()
        .unwrap();
    // Nothing is listening any more.
    assert!(TcpStream::connect(served.addr).await.is_err());
}

#[tokio::test]
async fn http2_without_tls_is_served_on_worker_threads_too() {
    // h2c with prior knowledge: the streams of a connection run as tasks of its worker's runtime.
    let (backend, peers) = peer_recording_backend(Duration::from_millis(100)).await;
    let served = serve(backend, 2).await;
    for _ in 0..2 {
        // Two connections, so one lands on the worker thread.
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let requests = (0..8).map(|i| {
            let client = client.clone();
            let url = format!("http://{}/api/orders/{i}", served.addr);
            async move { client.get(url).send().await.unwrap() }
        });
        for resp in futures::future::join_all(requests).await {
            assert_eq!(resp.version(), http::Version::HTTP_2);
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.text().await.unwrap(), "{\"ok\":true}");
        }
        // Eight 100 ms answers on one connection at once, not one after another (800 ms).
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(peers.lock().unwrap().len(), 16);
}
