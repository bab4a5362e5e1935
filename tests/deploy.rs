//! The shipped scale-out example (`deploy/scale-out/run.sh`): one Redis, two instances behind
//! nginx, run as a user would run it; the two instances together allow the policy's five
//! requests, not five each.

mod common;

#[test]
fn two_instances_behind_a_load_balancer_share_one_limit() {
    common::ensure_debian_package("nginx", "nginx");
    common::ensure_debian_package("redis-server", "redis-server");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(root.join("deploy/scale-out/run.sh"))
        .env("FACADE", env!("CARGO_BIN_EXE_facade"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("request ")).collect();
    assert_eq!(lines.len(), 10, "{stdout}");
    let statuses: Vec<&str> = lines.iter().map(|l| l.split_whitespace().nth(2).unwrap()).collect();
    assert_eq!(
        statuses,
        ["200", "200", "200", "200", "200", "429", "429", "429", "429", "429"],
        "{stdout}"
    );
    let upstreams: std::collections::HashSet<&str> = lines.iter().filter_map(|l| l.split("via ").nth(1)).collect();
    assert_eq!(upstreams.len(), 2, "both instances answered: {stdout}");
}

/// The YAML documents of a manifest file, as JSON.
fn documents(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("\n---\n")
        .map(|doc| {
            facade::config::yaml::parse(doc)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
                .unwrap_or_else(|| panic!("{}: empty document", path.display()))
                .to_json()
        })
        .collect()
}

#[test]
fn the_kubernetes_manifests_parse_and_their_configuration_passes_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("deploy/kubernetes");
    let mut kinds = Vec::new();
    let mut config = None;
    let mut deployment = None;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            for doc in documents(&path) {
                let kind = doc["kind"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{}: no kind", path.display()))
                    .to_string();
                assert!(
                    doc["apiVersion"].is_string() && doc["metadata"]["name"].is_string(),
                    "{}",
                    path.display()
                );
                if kind == "ConfigMap" {
                    config = Some(doc.clone());
                }
                if kind == "Deployment" && doc["metadata"]["name"] == "facade" {
                    deployment = Some(doc.clone());
                }
                kinds.push(kind);
            }
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ConfigMap",
            "Deployment",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Service",
            "Service"
        ]
    );
    let deployment = deployment.unwrap();
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["lifecycle"]["preStop"].is_object());
    assert!(c["resources"]["requests"].is_object());
    // The ConfigMap's files, laid out as deployment.yaml mounts them, pass `facade check`.
    let config = config.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let items = deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
        .as_array()
        .unwrap()
        .clone();
    for item in items {
        let target = tmp.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, config["data"][item["key"].as_str().unwrap()].as_str().unwrap()).unwrap();
    }
    let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_facade"));
    check.args(["check", "--config"]).arg(tmp.path().join("facade.yaml"));
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        check.env(name, e["value"].as_str().unwrap_or("from-a-secret"));
    }
    let out = check.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_dockerfile_builds_what_ci_builds() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Dockerfile")).unwrap();
    assert!(text.contains("RUN cargo build --release --locked"), "{text}");
    assert!(text.contains("USER nonroot"));
    assert!(
        root.join("Cargo.lock").exists(),
        "--locked needs the committed lockfile"
    );
}
