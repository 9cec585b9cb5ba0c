//! `forkless demo` end to end through the built binary: a small dataset, one writer, both
//! snapshot modes, verification, `report.json` shape and `latency.svg`.

use std::process::Command;

#[test]
fn demo_small_run_writes_a_verified_report() {
    let dir = forkless_testkit::TempDir::new("forkless-demo-test");
    let report = dir.path().join("report");
    let out = Command::new(env!("CARGO_BIN_EXE_forkless"))
        .args([
            "demo",
            "--keys",
            "20000",
            "--writers",
            "1",
            "--idle-secs",
            "0.5",
            "--report",
        ])
        .arg(&report)
        .arg("--out")
        .arg(dir.path().join("snaps"))
        .output()
        .expect("run forkless");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Not a terminal: no progress-bar escape sequences in the output.
    assert!(
        !stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'),
        "{stderr}"
    );
    assert!(
        stdout.contains("converging") && stdout.contains("point-in-time"),
        "{stdout}"
    );
    assert_eq!(stdout.matches(" OK: ").count(), 2, "{stdout}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(report.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["dataset"]["keys"], 20000);
    assert_eq!(json["writers"], 1);
    let phases = json["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["idle", "converging", "point-in-time"]);
    for p in phases {
        assert!(p["ops"].as_u64().unwrap() > 0, "{p}");
        assert!(p["p999_us"].as_f64().unwrap() >= p["p50_us"].as_f64().unwrap());
    }
    let snaps = json["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    for s in snaps {
        assert_eq!(s["verified"]["ok"], true, "{s}");
        assert!(s["keys"].as_u64().unwrap() >= 20000, "{s}");
        assert!(s["total_bytes"].as_u64().unwrap() > 0);
    }
    assert!(!json["timeline"].as_array().unwrap().is_empty());
    let steps: Vec<&str> = json["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps[..2], ["build", "idle"], "{steps:?}");
    assert!(
        steps.contains(&"verify point-in-time: compare"),
        "{steps:?}"
    );
    assert!(stdout.contains("\ntime: "), "{stdout}");
    assert!(json["redis"].is_null());
    let svg = std::fs::read_to_string(report.join("latency.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("p99"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    assert!(dir.path().join("snaps/converging-load.rdb").exists());
}

#[test]
fn demo_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_forkless"))
        .args(["demo", "--keys", "0"])
        .output()
        .expect("run forkless");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--keys"));
}
