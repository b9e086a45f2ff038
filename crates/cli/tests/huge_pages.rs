//! The huge-page re-execution (crates/cli/src/hugepages.rs): arguments reach the re-executed
//! process intact, child processes see the environment the user gave, and `bench decode`
//! reports the state it ran with.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `secateurs` with `GLIBC_TUNABLES` as given (`None`: unset) and no opt-out switch.
fn secateurs(tunables: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_secateurs"));
    c.env_remove("SECATEURS_HUGE_PAGES");
    match tunables {
        Some(t) => c.env("GLIBC_TUNABLES", t),
        None => c.env_remove("GLIBC_TUNABLES"),
    };
    c
}

/// Runs `c`, which must succeed.
fn succeed(c: &mut Command) -> Output {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Whether this machine's kernel lets advised memory use transparent huge pages (then the
/// binary re-executes itself; elsewhere it must run unchanged).
fn thp_allowed() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .is_ok_and(|s| s.contains("[always]") || s.contains("[madvise]"))
        && cfg!(all(target_os = "linux", target_env = "gnu"))
}

#[test]
fn arguments_survive_the_reexecution() {
    for switch in ["1", "0"] {
        let out = secateurs(None)
            .env("SECATEURS_HUGE_PAGES", switch)
            .args(["info", "/no such/dir  x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "switch {switch}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("/no such/dir  x: no such file or directory"),
            "switch {switch}: {err}"
        );
    }
}

/// Runs `bench kernels` on tiny matrices with a fake "python" that writes its environment to
/// a file and fails; returns that environment, one `NAME=value` per line.
fn child_environment(tunables: Option<&str>) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let dump = tmp.path().join("env.txt");
    let fake = tmp.path().join("fake-python");
    std::fs::write(&fake, "#!/bin/sh\nenv > \"$ENV_DUMP\"\nexit 3\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    succeed(
        secateurs(tunables)
            .env("ENV_DUMP", &dump)
            .args([
                "--threads",
                "1",
                "bench",
                "kernels",
                "--sizes",
                "64",
                "--sparsities",
                "0.5",
                "--nm24",
                "none",
                "--min-time",
                "0.001",
                "--rounds",
                "1",
                "--python",
            ])
            .arg(&fake),
    );
    std::fs::read_to_string(&dump).unwrap_or_else(|e| panic!("{}: {e}", dump.display()))
}

#[cfg(unix)]
#[test]
fn child_processes_see_the_users_environment() {
    let env = child_environment(None);
    assert!(!env.contains("GLIBC_TUNABLES="), "{env}");
    assert!(!env.contains("SECATEURS_SAVED_GLIBC_TUNABLES"), "{env}");
    assert!(!env.contains("SECATEURS_HAD_GLIBC_TUNABLES"), "{env}");
    let env = child_environment(Some("glibc.malloc.arena_max=4"));
    assert!(
        env.lines()
            .any(|l| l == "GLIBC_TUNABLES=glibc.malloc.arena_max=4"),
        "{env}"
    );
    assert!(!env.contains("SECATEURS_SAVED_GLIBC_TUNABLES"), "{env}");
}

#[test]
fn bench_decode_reports_the_huge_page_state() {
    let model =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny-llama");
    let run = |switch: &str, tunables: Option<&str>| -> String {
        let out = succeed(
            secateurs(tunables)
                .env("SECATEURS_HUGE_PAGES", switch)
                .args(["--threads", "1", "bench", "decode"])
                .arg(&model)
                .args([
                    "--new-tokens",
                    "2",
                    "--repeat",
                    "1",
                    "--no-reference",
                    "--json",
                ]),
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["huge_pages"].as_str().unwrap().to_string()
    };
    let on = if thp_allowed() {
        "on (glibc.malloc.hugetlb=1)"
    } else {
        "off"
    };
    assert_eq!(run("1", None), on);
    assert_eq!(run("0", None), "off");
    assert_eq!(
        run("1", Some("glibc.malloc.hugetlb=0")),
        "as set in GLIBC_TUNABLES"
    );
}
