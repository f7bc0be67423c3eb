// Shared by the `tests/cli.rs` of every binary under bins/: the command-line contract every klutch
// binary keeps (`--help`, `--version`, clear errors). Included with `include!`, so each binary's
// test crate gets its own copy of the tests, bound to its own executable.

/// Generates the contract tests for one binary: its name and the path of its executable.
macro_rules! cli_contract_tests {
    ($name:literal, $exe:expr) => {
        fn run(args: &[&str]) -> std::process::Output {
            std::process::Command::new($exe)
                .args(args)
                .output()
                .expect("run the binary")
        }

        #[test]
        fn version_prints_name_and_version() {
            let out = run(&["--version"]);
            assert!(out.status.success());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                format!("{} {}", $name, env!("CARGO_PKG_VERSION"))
            );
        }

        #[test]
        fn help_explains_the_component() {
            let out = run(&["--help"]);
            assert!(out.status.success());
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(help.contains(&format!("Usage: {}", $name)), "{help}");
            assert!(help.contains("--version"), "{help}");
        }

        #[test]
        fn unknown_flag_is_rejected_with_its_name() {
            let out = run(&["--no-such-flag"]);
            assert_eq!(out.status.code(), Some(2));
            assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
        }
    };
}
