//! The command-line contract of `a9s-dev-broker`: `--help`, `--version`, clear errors, flags
//! with their environment variables.

include!("../../cli_contract.rs");

cli_contract_tests!("a9s-dev-broker", env!("CARGO_BIN_EXE_a9s-dev-broker"));

#[test]
fn help_lists_the_flags_with_their_environment_variables() {
    let out = run(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--postgres-url", "A9S_DEV_BROKER_POSTGRES_URL"),
        ("--listen", "A9S_DEV_BROKER_LISTEN"),
        ("--password", "A9S_DEV_BROKER_PASSWORD"),
        ("--public-host", "A9S_DEV_BROKER_PUBLIC_HOST"),
        ("--pg-bin-dir", "A9S_DEV_BROKER_PG_BIN_DIR"),
        ("--state-database", "A9S_DEV_BROKER_STATE_DATABASE"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing:\n{help}"
        );
    }
}

#[test]
fn a_missing_postgres_url_is_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_a9s-dev-broker"))
        .env_remove("A9S_DEV_BROKER_POSTGRES_URL")
        .args(["--password", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--postgres-url"));
}
