//! Error reporting: an error and its sources on one line, as logs and exit messages show them.

/// `err` and its sources, `: `-separated.
///
/// ```
/// use klutch_sdk::runtime::report::error_chain;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("read the kubeconfig")]
/// struct Read(#[source] std::io::Error);
///
/// let err = Read(std::io::Error::other("permission denied"));
/// assert_eq!(error_chain(&err), "read the kubeconfig: permission denied");
/// ```
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
