//! The command-line contract of `kubectl-bind`: help, version, usage errors and completions,
//! run as the built binary.

include!("../../cli_contract.rs");

cli_contract_tests!("kubectl-bind", env!("CARGO_BIN_EXE_kubectl-bind"));

#[test]
fn no_url_is_a_usage_error_that_says_what_to_pass() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pass the provider's export URL"),
        "{stderr}"
    );
}

#[test]
fn help_snapshots() {
    let filters = vec![(r"kubectl-bind \d+\.\d+\.\d+", "kubectl-bind [VERSION]")];
    for (name, args) in [
        ("help", &["--help"][..]),
        ("apiservice_help", &["apiservice", "--help"][..]),
    ] {
        let out = run(args);
        assert!(out.status.success());
        insta::with_settings!({filters => filters.clone()}, {
            insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
        });
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completion", shell]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("kubectl-bind"), "{shell}");
        assert!(script.contains("apiservice"), "{shell}");
    }
}

#[test]
fn a_url_that_is_not_http_is_rejected_before_touching_a_cluster() {
    let out = run(&["ftp://example.com/export", "--kubeconfig", "/nonexistent"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not an http(s) URL"), "{stderr}");
}

#[test]
fn no_color_and_bad_flag_values_give_plain_one_line_errors() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kubectl-bind"))
        .args([
            "http://127.0.0.1:1/export",
            "--accept-claims",
            "Secrets!",
            "--kubeconfig",
            "/nonexistent",
        ])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: --accept-claims"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let out = run(&["http://x/export", "--timeout", "10 parsecs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--timeout"));
}
