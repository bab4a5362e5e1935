//! The shipped scale-out example (`deploy/scale-out/run.sh`): one Redis, two instances behind
//! nginx, run as a user would run it; the two instances together allow the policy's five
//! requests, not five each.

#[test]
fn two_instances_behind_a_load_balancer_share_one_limit() {
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
