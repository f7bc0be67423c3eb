//! Go-style durations for flags: `90s`, `10m`, `1h30m`, `1.5h`, `500ms`, `250us`, `10ns`, and a
//! bare number of seconds (`90`, `1.5`).
//!
//! The grammar is Go's [`time.ParseDuration`](https://pkg.go.dev/time#ParseDuration): a possibly
//! signed sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`,
//! `ms`, `s`, `m`, `h`), such as `300ms` or `2h45m`. Two differences, both kept from the parsers
//! klutch's binaries had before: a bare number without a unit means seconds, and surrounding
//! whitespace is ignored. Negative durations are refused (a [`std::time::Duration`] cannot hold
//! them), and so is anything larger than [`Duration::MAX`].
//!
//! [`parse`] fits clap's `value_parser`:
//!
//! ```
//! use std::time::Duration;
//! use clap::Parser;
//! use klutch_sdk::runtime::duration;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[arg(long, default_value = "1h30m", value_parser = duration::parse)]
//!     timeout: Duration,
//! }
//!
//! let cli = Cli::parse_from(["app"]);
//! assert_eq!(cli.timeout, Duration::from_secs(5400));
//! assert_eq!(duration::parse("500ms").unwrap(), Duration::from_millis(500));
//! assert_eq!(duration::parse("45").unwrap(), Duration::from_secs(45));
//! assert!(Cli::try_parse_from(["app", "--timeout=1x"]).is_err());
//! ```

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;
/// Fraction digits beyond this many do not change a nanosecond count (Go drops them too).
const MAX_FRACTION_DIGITS: usize = 18;

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing (or only whitespace) was given.
    #[error("empty duration")]
    Empty,
    /// A component does not start with a number.
    #[error("invalid duration {input:?}: expected e.g. 90s, 10m, 1h30m or 500ms")]
    Invalid {
        /// The text given.
        input: String,
    },
    /// A number inside a sequence has no unit, as in `1h30`.
    #[error("invalid duration {input:?}: missing unit after a number (use ns, us, ms, s, m or h)")]
    MissingUnit {
        /// The text given.
        input: String,
    },
    /// A unit that is not one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("invalid duration {input:?}: unit {unit:?} is not one of ns, us, ms, s, m, h")]
    UnknownUnit {
        /// The text given.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// A leading `-`.
    #[error("invalid duration {input:?}: must not be negative")]
    Negative {
        /// The text given.
        input: String,
    },
    /// More than [`Duration::MAX`].
    #[error("invalid duration {input:?}: too large")]
    Overflow {
        /// The text given.
        input: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Nanoseconds per unit.
fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 (micro sign) and U+03BC (Greek small letter mu), as Go accepts both.
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return None,
    })
}

/// A decimal number `int[.frac]` at the start of `s`: (integer part, fraction digits, rest).
/// `None` when `s` starts with neither a digit nor a `.` followed by a digit.
fn number(s: &str) -> Option<(&str, &str, &str)> {
    let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int, rest) = s.split_at(int_len);
    let (frac, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let frac_len = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            after.split_at(frac_len)
        }
        None => ("", rest),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    Some((int, frac, rest))
}

/// `int.frac` times `unit` nanoseconds, truncated to whole nanoseconds.
fn scaled(int: &str, frac: &str, unit: u128) -> Option<u128> {
    let mut total: u128 = 0;
    for d in int.bytes() {
        total = total.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    total = total.checked_mul(unit)?;
    let frac = &frac[..frac.len().min(MAX_FRACTION_DIGITS)];
    if !frac.is_empty() {
        let digits: u128 = frac.parse().ok()?;
        let scale = 10u128.pow(u32::try_from(frac.len()).ok()?);
        total = total.checked_add(digits.checked_mul(unit)? / scale)?;
    }
    Some(total)
}

/// Parses a Go-style duration; see the [module documentation](self) for the grammar.
///
/// ```
/// use std::time::Duration;
/// use klutch_sdk::runtime::duration::{Error, parse};
/// assert_eq!(parse("1h2m3.5s"), Ok(Duration::from_millis(3_723_500)));
/// assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
/// assert!(matches!(parse("10x"), Err(Error::UnknownUnit { .. })));
/// ```
pub fn parse(text: &str) -> Result<Duration> {
    let input = text.trim();
    if input.is_empty() {
        return Err(Error::Empty);
    }
    let owned = || input.to_owned();
    let mut rest = match input.as_bytes()[0] {
        b'-' => return Err(Error::Negative { input: owned() }),
        b'+' => &input[1..],
        _ => input,
    };
    let mut total: u128 = 0;
    let mut first = true;
    loop {
        let Some((int, frac, after)) = number(rest) else {
            return Err(Error::Invalid { input: owned() });
        };
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos = if unit.is_empty() {
            // A bare number is seconds; inside a sequence (`1h30`) it lacks its unit.
            if !first || !next.is_empty() {
                return Err(Error::MissingUnit { input: owned() });
            }
            NANOS_PER_SEC
        } else {
            unit_nanos(unit).ok_or_else(|| Error::UnknownUnit {
                input: owned(),
                unit: unit.to_owned(),
            })?
        };
        total = scaled(int, frac, nanos)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(|| Error::Overflow { input: owned() })?;
        first = false;
        rest = next;
        if rest.is_empty() {
            break;
        }
    }
    let secs =
        u64::try_from(total / NANOS_PER_SEC).map_err(|_| Error::Overflow { input: owned() })?;
    // The remainder is below 10^9, so it fits.
    let nanos = u32::try_from(total % NANOS_PER_SEC).unwrap_or_default();
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Result<Duration> {
        Ok(Duration::from_secs(s))
    }

    /// The cases of `bins/konnector/src/cli.rs`.
    #[test]
    fn konnector_cases() {
        assert_eq!(parse("150s").unwrap().as_secs(), 150);
        assert_eq!(parse("2m").unwrap().as_secs(), 120);
        assert_eq!(parse("500ms").unwrap().as_millis(), 500);
        assert_eq!(parse("3").unwrap().as_secs(), 3);
        assert!(parse("3 fortnights").is_err());
        // It parsed fractions, with or without unit.
        assert_eq!(parse("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.5m"), secs(30));
        assert_eq!(parse(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("5."), secs(5));
    }

    /// The cases of `bins/provider-anynines/src/cli.rs` (its doc test).
    #[test]
    fn provider_cases() {
        assert_eq!(parse("1h30m"), secs(5400));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("45"), secs(45));
        assert!(parse("1x").is_err());
        // Its defaults.
        for (text, want) in [
            ("1h", 3600),
            ("1m", 60),
            ("60s", 60),
            ("24h", 86_400),
            ("2m", 120),
        ] {
            assert_eq!(parse(text), secs(want), "{text}");
        }
        // `str::parse::<u64>` took a leading `+`, as Go does.
        assert_eq!(parse("+5"), secs(5));
    }

    /// The cases of `bins/kubectl-bind/src/cli.rs`.
    #[test]
    fn durations_parse_like_kubectl() {
        assert_eq!(parse("90"), secs(90));
        assert_eq!(parse("90s"), secs(90));
        assert_eq!(parse("10m"), secs(600));
        assert_eq!(parse("1h30m"), secs(5400));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse("").is_err());
        assert!(parse("10x").unwrap_err().to_string().contains("unit"));
        assert!(parse("m").is_err());
    }

    #[test]
    fn go_grammar() {
        assert_eq!(parse("0"), secs(0));
        assert_eq!(parse("0s"), secs(0));
        assert_eq!(parse("+5s"), secs(5));
        assert_eq!(parse("1.5h"), secs(5400));
        assert_eq!(parse("2h45m"), secs(9900));
        assert_eq!(parse("1h2m3s4ms5us6ns"), Ok(Duration::new(3723, 4_005_006)));
        assert_eq!(parse("7µs"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("7\u{3bc}s"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("1.0000000015s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse("  90s \n"), secs(90));
    }

    #[test]
    fn refusals_are_typed() {
        assert_eq!(parse("   "), Err(Error::Empty));
        assert!(matches!(parse("-5s"), Err(Error::Negative { .. })));
        assert!(matches!(parse("-5"), Err(Error::Negative { .. })));
        assert!(matches!(parse("."), Err(Error::Invalid { .. })));
        assert!(matches!(parse("s"), Err(Error::Invalid { .. })));
        assert!(matches!(parse("+"), Err(Error::Invalid { .. })));
        assert!(matches!(parse("1h30"), Err(Error::MissingUnit { .. })));
        assert!(matches!(parse("1.5.5s"), Err(Error::MissingUnit { .. })));
        assert!(matches!(parse("1h 30m"), Err(Error::UnknownUnit { unit, .. }) if unit == "h "));
        assert!(matches!(parse("1d"), Err(Error::UnknownUnit { .. })));
        assert!(matches!(parse("1e3s"), Err(Error::UnknownUnit { .. })));
    }

    #[test]
    fn the_whole_range_of_duration() {
        // Bare u64 seconds were accepted up to u64::MAX.
        assert_eq!(parse("18446744073709551615"), secs(u64::MAX));
        assert!(matches!(
            parse("18446744073709551616"),
            Err(Error::Overflow { .. })
        ));
        assert!(matches!(
            parse("99999999999999999999999999999999999999999h"),
            Err(Error::Overflow { .. })
        ));
        assert_eq!(parse("1000000000000h"), secs(3_600_000_000_000_000));
    }

    #[test]
    fn works_as_a_clap_value_parser() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[arg(long, value_parser = parse)]
            every: Duration,
        }
        assert_eq!(
            Cli::try_parse_from(["x", "--every=2m"]).unwrap().every,
            Duration::from_secs(120)
        );
        let err = Cli::try_parse_from(["x", "--every=2y"]).err().unwrap();
        assert!(err.to_string().contains("unit \"y\""), "{err}");
    }
}
