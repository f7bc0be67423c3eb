//! Feeds arbitrary bytes to every broker-response parser of klutch-osb: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use klutch_osb::parse;
    if let Ok(catalog) = parse::catalog(data) {
        let _ = catalog.validate();
        let _ = catalog.plan_by_name("a", "b");
    }
    let _ = parse::error_body(data);
    let _ = parse::last_operation(data);
    let _ = parse::operation_body(data);
    let _ = parse::binding(data);
    let _ = parse::instance(data);
    let _ = parse::is_empty_body(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse::retry_after(s, std::time::SystemTime::now());
    }
    for status in [200u16, 404, 410, 422, 500] {
        let e = klutch_osb::BrokerError::from_response(
            http::StatusCode::from_u16(status).unwrap(),
            data,
            None,
        );
        let _ = e.to_string();
    }
});
