//! The command-line contract of `provider-anynines`, and that it says honestly what it does not do yet.

include!("../../cli_contract.rs");

cli_contract_tests!("provider-anynines", env!("CARGO_BIN_EXE_provider-anynines"));

#[test]
fn running_it_says_the_component_is_not_built_yet() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not built yet"));
}
