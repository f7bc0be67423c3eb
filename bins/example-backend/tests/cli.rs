//! The command-line contract of `example-backend` and its flag validation (no cluster needed:
//! every case is refused before the backend connects anywhere).

include!("../../cli_contract.rs");

cli_contract_tests!("example-backend", env!("CARGO_BIN_EXE_example-backend"));

const OIDC: [&str; 8] = [
    "--oidc-issuer-url=https://idp.invalid",
    "--oidc-issuer-client-id=c",
    "--oidc-issuer-client-secret=s",
    "--oidc-callback-url=https://bind.invalid/callback",
    // 32 bytes of zeros, base64.
    "--cookie-signing-key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "--kubeconfig=/nonexistent",
    "--namespace-prefix=cluster",
    "--pretty-name=Test",
];

fn refused(extra: &[&str]) -> String {
    let flag = |a: &str| a.split('=').next().unwrap_or_default().to_owned();
    let mut args: Vec<&str> = OIDC
        .iter()
        .copied()
        .filter(|a| !extra.iter().any(|e| flag(e) == flag(a)))
        .collect();
    args.extend_from_slice(extra);
    let out = run(&args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn missing_oidc_flags_are_named() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--oidc-issuer-url is required"));
}

#[test]
fn bad_keys_addresses_and_modes_are_refused_with_reasons() {
    assert!(
        refused(&["--cookie-signing-key=AAAA"])
            .contains("--cookie-signing-key must be 32 or 64 bytes, got 3")
    );
    assert!(
        refused(&["--cookie-encryption-key=AAAA"])
            .contains("--cookie-encryption-key must be 16, 24 or 32 bytes")
    );
    assert!(refused(&["--external-address=http://api:6443"]).contains("must start with https://"));
    assert!(
        refused(&["--cluster-scoped-isolation=Namespaced"])
            .contains("not implemented (only prefixed is)")
    );
    assert!(refused(&["--cluster-scoped-isolation=none"]).contains("not implemented"));
    assert!(refused(&["--control-plane-mode"]).contains("not implemented yet"));
    // clap's own checks.
    assert!(refused(&["--consumer-scope=Global"]).contains("Global"));
    assert!(refused(&["--tls-cert-file=/x"]).contains("--tls-key-file"));
    assert!(refused(&["--pretty-name="]).contains("must not be empty"));
}

#[test]
fn consumer_scope_is_case_insensitive_and_env_works() {
    // Accepted flags get past validation and fail later on the missing kubeconfig (exit 1).
    let mut args: Vec<&str> = OIDC.to_vec();
    args.push("--consumer-scope=cluster");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_example-backend"))
        .args(&args)
        .env("CLUSTER_SCOPED_ISOLATION", "PREFIXED")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("load the provider kubeconfig"));
}
