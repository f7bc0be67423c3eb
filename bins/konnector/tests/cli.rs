//! The command-line contract of `konnector`, and a clear error for a bad kubeconfig.

include!("../../cli_contract.rs");

cli_contract_tests!("konnector", env!("CARGO_BIN_EXE_konnector"));

#[test]
fn an_unreadable_kubeconfig_is_a_clear_error() {
    let out = run(&[
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--healthz-address",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("read the app cluster kubeconfig /nonexistent/kubeconfig"),
        "{err}"
    );
}

#[test]
fn control_plane_mode_is_refused_honestly() {
    let out = run(&["--control-plane-mode", "--healthz-address", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not implemented"));
}
