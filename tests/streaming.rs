//! Passthrough bodies stream both ways (SPEC §8): 200 MiB up and 200 MiB down while the
//! process's resident memory stays bounded. Alone in its test binary, so that no other test's
//! memory is counted.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn bodies_stream_both_ways_without_sitting_in_memory() {
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    const SIZE: u64 = 200 << 20;
    const CHUNK: usize = 64 << 10;
    // The backend counts an upload as it streams in, and streams a download out of nothing.
    let received = std::sync::Arc::new(AtomicU64::new(0));
    let r = received.clone();
    let app = axum::Router::new()
        .route(
            "/up",
            axum::routing::post(move |body: axum::body::Body| {
                let r = r.clone();
                async move {
                    let mut stream = body.into_data_stream();
                    while let Some(chunk) = stream.next().await {
                        r.fetch_add(chunk.unwrap().len() as u64, Ordering::SeqCst);
                    }
                    axum::Json(json!({"received": r.load(Ordering::SeqCst)}))
                }
            }),
        )
        .route(
            "/down",
            axum::routing::get(|| async {
                let chunks = futures::stream::iter(0..SIZE / CHUNK as u64)
                    .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; CHUNK])));
                axum::body::Body::from_stream(chunks)
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let gw = routes_gateway(
        &[("files", format!("http://{addr}"), "    timeout: 5s\n")],
        "  - { prefix: /files, service: files, strip_prefix: true, auth: none }\n",
        &[],
    )
    .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .no_proxy()
        .build()
        .unwrap();
    let before = resident_kib();
    let upload = futures::stream::iter(0..SIZE / CHUNK as u64)
        .map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'u'; CHUNK])));
    let resp = http
        .post(gw.url("/files/up"))
        .body(reqwest::Body::wrap_stream(upload))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["received"], SIZE);
    let resp = http.get(gw.url("/files/down")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut total = 0u64;
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len() as u64;
    }
    assert_eq!(total, SIZE);
    let grown = resident_kib().saturating_sub(before);
    assert!(grown < 64 << 10, "resident memory grew by {grown} KiB for 2 × 200 MiB");
}
