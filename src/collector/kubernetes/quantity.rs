//! Kubernetes resource quantities (`"487558164n"`, `"732212Ki"`, `"1.5"`, `"2Gi"`, `"1e3"`) as
//! `f64`, following the grammar of apimachinery's `resource.ParseQuantity`:
//!
//! ```text
//! <quantity>        ::= <signedNumber><suffix>
//! <signedNumber>    ::= [+-] <number>
//! <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= e <signedInt> | E <signedInt>
//! ```
//!
//! `"1E"` is one exa, `"1E3"` is a thousand: a lone `E` is the SI suffix, `E` followed by
//! digits an exponent, as in Go.

/// Why a quantity string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not `<signedNumber><suffix>` (empty, no digits, stray characters, spaces).
    #[error("quantity {0:?} is not a number with an optional suffix")]
    Format(String),
    /// A well-formed number with an unknown suffix (`"1K"`, `"1kb"`).
    #[error("quantity {0:?} has an unknown suffix (expected n u m k M G T P E, Ki Mi Gi Ti Pi Ei, or e<exponent>)")]
    Suffix(String),
}

/// Parses a quantity into its value in base units (cores, bytes, count).
///
/// Decimal suffixes and exponents are applied by letting Rust's correctly rounded float parser
/// read `<number>e<exponent>`, so `"100m"` is exactly the `f64` nearest to 0.1 (multiplying by
/// 1e-3 would not be). Binary suffixes are powers of two and scale exactly.
pub fn parse_quantity(s: &str) -> Result<f64, QuantityError> {
    let format = || QuantityError::Format(s.to_owned());
    let bytes = s.as_bytes();
    let mut pos = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        pos = 1;
    }
    let int_start = pos;
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut digits = pos - int_start;
    if pos < bytes.len() && bytes[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        digits += pos - frac_start;
    }
    if digits == 0 {
        return Err(format());
    }
    let number_end = pos;
    // Go reads the suffix as characters from a fixed set, then an optional sign and digits
    // (the exponent); anything left over is a format error, and a suffix made of those
    // characters that means nothing is a suffix error.
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && matches!(bytes[pos], b'+' | b'-') {
        pos += 1;
    }
    while pos < bytes.len() && bytes[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos != bytes.len() {
        return Err(format());
    }
    let (number, suffix) = s.split_at(number_end);
    let decimal_exponent: i64 = match suffix {
        "" => 0,
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "k" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            let mantissa: f64 = number.parse().map_err(|_| format())?;
            return Ok(mantissa * 2f64.powi(power));
        }
        _ => suffix
            .strip_prefix(['e', 'E'])
            .filter(|exp| !exp.is_empty())
            .and_then(|exp| exp.parse::<i64>().ok())
            .ok_or_else(|| QuantityError::Suffix(s.to_owned()))?,
    };
    // Beyond ±400 every mantissa Kubernetes writes is 0 or infinity as an f64 anyway.
    let exponent = decimal_exponent.clamp(-400, 400);
    format!("{number}e{exponent}")
        .parse::<f64>()
        .map_err(|_| format())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn recorded_payload_values() {
        // Values as they appear in ../shared/data/k8s (node capacity, metrics.k8s.io).
        assert_eq!(parse_quantity("487558164n"), Ok(0.487558164));
        assert_eq!(parse_quantity("732212Ki"), Ok(732212.0 * 1024.0));
        assert_eq!(parse_quantity("14"), Ok(14.0));
        assert_eq!(parse_quantity("954976684Ki"), Ok(954976684.0 * 1024.0));
        assert_eq!(parse_quantity("8024304Ki"), Ok(8024304.0 * 1024.0));
        assert_eq!(parse_quantity("110"), Ok(110.0));
        assert_eq!(parse_quantity("0"), Ok(0.0));
    }

    #[test]
    fn every_suffix() {
        let cases: &[(&str, f64)] = &[
            ("1n", 1e-9),
            ("1u", 1e-6),
            ("1m", 1e-3),
            ("1", 1.0),
            ("1k", 1e3),
            ("1M", 1e6),
            ("1G", 1e9),
            ("1T", 1e12),
            ("1P", 1e15),
            ("1E", 1e18),
            ("1Ki", 1024.0),
            ("1Mi", 1048576.0),
            ("1Gi", 1073741824.0),
            ("1Ti", 1099511627776.0),
            ("1Pi", 1125899906842624.0),
            ("1Ei", 1152921504606846976.0),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s), Ok(*want), "{s}");
        }
    }

    #[test]
    fn fractions_signs_and_exponents() {
        let cases: &[(&str, f64)] = &[
            ("1.5", 1.5),
            ("2Gi", 2.0 * 1073741824.0),
            ("1.5Gi", 1.5 * 1073741824.0),
            ("100m", 0.1),
            ("250m", 0.25),
            ("0.5", 0.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("+5", 5.0),
            ("-5", -5.0),
            ("-1.5Ki", -1536.0),
            ("1e3", 1000.0),
            ("1E3", 1000.0),
            ("1e+3", 1000.0),
            ("1.5E-3", 0.0015),
            ("1e-9", 1e-9),
            ("12e0", 12.0),
            ("1e09", 1e9),
            ("0.1m", 1e-4),
            ("123456789012345678", 123456789012345678.0),
            ("1e500", f64::INFINITY),
            ("1e-500", 0.0),
        ];
        for (s, want) in cases {
            assert_eq!(parse_quantity(s), Ok(*want), "{s}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "", " ", "+", "-", ".", "+.", "Ki", "m", "e3", " 1", "1 ", "1 Ki", "1..5", "1.5.",
            "--1", "+-1", "1e1.5", "0x10", "1_000", "inf", "NaN", "1,5", "1Kix", "1/2", "1kb",
            "1KiB", "1KI", "1gi", "1e3x",
        ] {
            assert!(
                matches!(parse_quantity(s), Err(QuantityError::Format(_))),
                "{s:?}: {:?}",
                parse_quantity(s)
            );
        }
    }

    #[test]
    fn rejects_unknown_suffixes() {
        for s in [
            "1K",
            "1mi",
            "1Ki2",
            "1ki",
            "1Mm",
            "1nn",
            "1EE",
            "1e",
            "1e+",
            "1e-",
            "1ee3",
            "1+3",
            "1e99999999999999999999",
        ] {
            assert!(
                matches!(parse_quantity(s), Err(QuantityError::Suffix(_))),
                "{s:?}: {:?}",
                parse_quantity(s)
            );
        }
    }

    const DECIMAL: &[(&str, i32)] = &[
        ("n", -9),
        ("u", -6),
        ("m", -3),
        ("", 0),
        ("k", 3),
        ("M", 6),
        ("G", 9),
        ("T", 12),
        ("P", 15),
        ("E", 18),
    ];
    const BINARY: &[(&str, i32)] = &[
        ("Ki", 10),
        ("Mi", 20),
        ("Gi", 30),
        ("Ti", 40),
        ("Pi", 50),
        ("Ei", 60),
    ];

    proptest! {
        /// An integer with a binary suffix is exact: integer times a power of two.
        #[test]
        fn binary_suffixes_scale_exactly(n in 0u64..(1 << 40), i in 0usize..6) {
            let (suffix, power) = BINARY[i];
            let want = n as f64 * 2f64.powi(power);
            prop_assert_eq!(parse_quantity(&format!("{n}{suffix}")), Ok(want));
        }

        /// A decimal suffix means the same as the matching exponent and the same as the
        /// number written out in scientific notation.
        #[test]
        fn decimal_suffix_equals_exponent(n in 0u64..1_000_000_000_000, frac in proptest::option::of(0u32..1000), i in 0usize..10) {
            let (suffix, exp) = DECIMAL[i];
            let number = match frac { Some(f) => format!("{n}.{f:03}"), None => n.to_string() };
            let want: f64 = format!("{number}e{exp}").parse().unwrap();
            prop_assert_eq!(parse_quantity(&format!("{number}{suffix}")), Ok(want));
            prop_assert_eq!(parse_quantity(&format!("{number}e{exp}")), Ok(want));
            prop_assert_eq!(parse_quantity(&format!("{number}E{exp}")), Ok(want));
        }

        /// Integers below 2^53 with a non-negative decimal exponent that keeps them below 2^53
        /// are exact, whatever the spelling.
        #[test]
        fn small_integers_exact(n in 0u64..1_000_000, i in 3usize..7) {
            let (suffix, exp) = DECIMAL[i];
            let want = (n * 10u64.pow(exp as u32)) as f64;
            prop_assert_eq!(parse_quantity(&format!("{n}{suffix}")), Ok(want));
        }

        /// A sign flips the value and nothing else.
        #[test]
        fn sign_is_symmetric(n in 0u64..u64::MAX, i in 0usize..10) {
            let (suffix, _) = DECIMAL[i];
            let plus = parse_quantity(&format!("+{n}{suffix}")).unwrap();
            let minus = parse_quantity(&format!("-{n}{suffix}")).unwrap();
            prop_assert_eq!(plus, -minus);
            prop_assert_eq!(parse_quantity(&format!("{n}{suffix}")), Ok(plus));
        }

        /// Arbitrary text never panics, and whatever is accepted is made only of the
        /// grammar's characters.
        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,12}") {
            if parse_quantity(&s).is_ok() {
                prop_assert!(s.bytes().all(|b| b"+-.0123456789eEinumkKMGTP".contains(&b)), "{}", s);
            }
        }

        /// Strings from the grammar's own alphabet: accepted exactly when a regex of the
        /// grammar matches.
        #[test]
        fn accepts_exactly_the_grammar(s in "[-+]?[0-9.]{0,4}(|[eE][-+]?[0-9]{0,2}|n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|K|i)") {
            let grammar = regex::Regex::new(
                r"^[+-]?([0-9]+|[0-9]+\.[0-9]*|\.[0-9]+)(|[eE][+-]?[0-9]+|n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)$",
            ).unwrap();
            prop_assert_eq!(parse_quantity(&s).is_ok(), grammar.is_match(&s), "{:?}", s);
        }
    }
}
