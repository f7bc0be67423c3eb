//! Property tests: random and mutated byte sequences at every response parser (never a panic),
//! and percent-encoding round trips for ids and operation keys. The same parsers are the
//! target of the cargo-fuzz target in `klutch-osb/fuzz` (see docs/osb.md).

use std::time::SystemTime;

use klutch_osb::client::encode;
use klutch_osb::parse;

const SEEDS: &[&str] = &[
    r#"{"services":[{"id":"s","name":"n","description":"d","bindable":true,"plans":[{"id":"p","name":"q","description":"d","free":false,"schemas":{"service_instance":{"create":{"parameters":{"$schema":"x"}}}},"maintenance_info":{"version":"1.0.0"},"maximum_polling_duration":60}],"dashboard_client":{"id":"c","secret":"s"}}]}"#,
    r#"{"state":"in progress","description":"x","instance_usable":false,"update_repeatable":true}"#,
    r#"{"error":"AsyncRequired","description":"d","instance_usable":false}"#,
    r#"{"credentials":{"a":1},"endpoints":[{"host":"h","ports":[1,"2-3"],"protocol":"tcp"}],"volume_mounts":[{"driver":"d","container_dir":"c","mode":"r","device_type":"shared","device":{"volume_id":"v","mount_config":{}}}],"metadata":{"expires_at":"x"}}"#,
    r#"{"operation":"op+1","dashboard_url":"u","metadata":{"labels":{"a":"b"},"attributes":{}}}"#,
    r#"{"service_id":"s","plan_id":"p","parameters":{"a":[1,2,{"b":null}]},"maintenance_info":{"version":"1"}}"#,
    "null",
    "\"\"",
    "",
    "Sun, 06 Nov 1994 08:49:37 GMT",
];

fn exercise(data: &[u8]) {
    if let Ok(c) = parse::catalog(data) {
        let _ = c.validate();
        let _ = c.plan_by_name("n", "q");
        let _ = format!("{c:?}");
    }
    let _ = parse::error_body(data);
    let _ = parse::last_operation(data);
    let _ = parse::operation_body(data);
    if let Ok(b) = parse::binding(data) {
        let _ = format!("{b:?}");
    }
    let _ = parse::instance(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse::retry_after(s, SystemTime::now());
    }
    for status in [200u16, 400, 404, 409, 410, 412, 422, 500, 599] {
        let e = klutch_osb::BrokerError::from_response(
            http::StatusCode::from_u16(status).unwrap(),
            data,
            None,
        );
        let _ = e.to_string();
    }
}

fn mutate(rng: &mut fastrand::Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..8) {
        match rng.u8(0..6) {
            0 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v[i] = rng.u8(..);
            }
            1 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v.remove(i);
            }
            2 => {
                let i = rng.usize(..=v.len());
                v.insert(
                    i,
                    *rng.choice(b"{}[]\",:0123456789.eE-+ntfalsu\\".iter())
                        .unwrap(),
                );
            }
            3 if !v.is_empty() => {
                let i = rng.usize(..v.len());
                v.truncate(i);
            }
            4 => {
                // Splice a piece of another seed in.
                let other = SEEDS[rng.usize(..SEEDS.len())].as_bytes();
                if !other.is_empty() {
                    let a = rng.usize(..other.len());
                    let b = rng.usize(a..=other.len());
                    let i = rng.usize(..=v.len());
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            _ => {
                let i = rng.usize(..=v.len());
                v.insert(i, rng.u8(..));
            }
        }
    }
    v
}

#[test]
fn parsers_never_panic_on_random_bytes() {
    let mut rng = fastrand::Rng::with_seed(0x05b_2017);
    for _ in 0..20_000 {
        let len = rng.usize(0..256);
        let data: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        exercise(&data);
    }
}

#[test]
fn parsers_never_panic_on_mutated_valid_bodies() {
    let mut rng = fastrand::Rng::with_seed(42);
    for seed in SEEDS {
        exercise(seed.as_bytes());
    }
    for _ in 0..50_000 {
        let seed = SEEDS[rng.usize(..SEEDS.len())].as_bytes();
        exercise(&mutate(&mut rng, seed));
    }
}

#[test]
fn deep_nesting_and_huge_strings_do_not_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    exercise(deep.as_bytes());
    let deep_obj = format!(
        r#"{{"services":[{{"plans":[{{"metadata":{}1{}}}]}}]}}"#,
        r#"{"a":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    exercise(deep_obj.as_bytes());
    let huge = format!(
        r#"{{"state":"in progress","description":"{}"}}"#,
        "x".repeat(5_000_000)
    );
    assert!(parse::last_operation(huge.as_bytes()).is_ok());
    exercise(&[0xff, 0xfe, 0x00, 0x7b]);
}

#[test]
fn percent_encoding_round_trips() {
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet: Vec<char> = "aZ09-._~+&=#%/ ?:@!$'()*,;[]\"\\ü€😀\t\n".chars().collect();
    for _ in 0..20_000 {
        let s: String = (0..rng.usize(0..40))
            .map(|_| *rng.choice(alphabet.iter()).unwrap())
            .collect();
        let e = encode(&s);
        assert!(
            e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "only unreserved characters and escapes: {e}"
        );
        assert!(!e.contains('+') && !e.contains(' '));
        let back = percent_encoding::percent_decode_str(&e)
            .decode_utf8()
            .unwrap();
        assert_eq!(back, s);
    }
    // A 10,000-character operation key survives.
    let long: String = (0..10_000)
        .map(|i| if i % 3 == 0 { '+' } else { '=' })
        .collect();
    assert_eq!(
        percent_encoding::percent_decode_str(&encode(&long))
            .decode_utf8()
            .unwrap(),
        long
    );
}
