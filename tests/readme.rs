//! The README's GraphQL commands, run verbatim (with the demo's port) against the real binary
//! serving the shipped configuration with `--demo`: each must answer data and no error.

mod common;

use serde_json::Value;

/// The shell commands of the README's GraphQL block, continuation lines joined.
fn graphql_commands(readme: &str) -> Vec<String> {
    let section = readme
        .split("### GraphQL")
        .nth(1)
        .expect("the README has a GraphQL section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in the GraphQL section");
    let mut commands = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.trim();
        if let Some(head) = line.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(line);
        if current.starts_with("curl") {
            commands.push(std::mem::take(&mut current));
        }
        current.clear();
    }
    commands
}

#[tokio::test]
async fn the_readme_graphql_commands_work_against_the_demo() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let commands = graphql_commands(&readme);
    assert!(commands.len() >= 4, "{commands:?}");
    let server = common::DemoServer::start(&[]).await;
    let token = server.token("1001");
    let host = server.base.trim_start_matches("http://").to_string();
    for command in commands {
        let command = command.replace("localhost:8080", &host);
        let out = tokio::process::Command::new("bash")
            .args(["-c", &command])
            .env("TOKEN", &token)
            .output()
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{command}\n{}", String::from_utf8_lossy(&out.stdout)));
        assert!(
            body.get("errors").is_none() && body["data"].is_object(),
            "{command}\n{body}"
        );
    }
}
