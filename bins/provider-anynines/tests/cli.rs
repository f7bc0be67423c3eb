//! The command-line contract of `provider-anynines`: `--help`, `--version`, clear errors, the
//! v1.5 flag names and their environment variables.

include!("../../cli_contract.rs");

cli_contract_tests!("provider-anynines", env!("CARGO_BIN_EXE_provider-anynines"));

#[test]
fn help_lists_the_v1_5_flags_with_their_environment_variables() {
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--debug",
        "--leader-election",
        "--health-probe-bind-address",
        "--sync",
        "--poll",
        "--max-reconcile-rate",
        "--namespace",
        "--enable-external-secret-stores",
        "--enable-management-policies",
        "--broker-timeout",
        "--backup-manager-timeout",
        "--catalog-ttl",
        "--max-polling-duration",
        "--orphan-mitigation",
        "--reconcile-timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
    for env in [
        "LEADER_ELECTION",
        "POD_NAMESPACE",
        "ENABLE_EXTERNAL_SECRET_STORES",
        "ENABLE_MANAGEMENT_POLICIES",
    ] {
        assert!(help.contains(env), "{env} missing:\n{help}");
    }
}

#[test]
fn bad_durations_and_addresses_are_named() {
    let out = run(&["--poll", "5 minutes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--poll"));
    let out = run(&["--health-probe-bind-address", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected :PORT or HOST:PORT"));
}
