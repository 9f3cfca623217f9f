//! Exact conversion between minor units and the decimal strings channels use.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0:?} is not a plain decimal number")]
    NotDecimal(String),
    #[error("amount {text:?} has more than {exponent} decimal places")]
    TooPrecise { text: String, exponent: u8 },
    #[error("amount {0:?} is too large")]
    Overflow(String),
}

/// Formats `minor` units with exactly `exponent` decimals: `format_minor(1999, 2) == "19.99"`.
pub fn format_minor(minor: i64, exponent: u8) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let scale = 10u64.pow(u32::from(exponent));
    let width = usize::from(exponent);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale,
        width = width
    )
}

/// Parses a decimal string into minor units, refusing anything that would need rounding.
///
/// Accepts an optional leading `-`, digits, and an optional fraction of at most `exponent`
/// digits ("12", "12.3", "12.30"). Rejects exponents, signs in the middle, spaces and empty parts.
pub fn parse_decimal(text: &str, exponent: u8) -> Result<i64, AmountError> {
    let not_decimal = || AmountError::NotDecimal(text.to_owned());
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return Err(not_decimal()),
        None => (unsigned, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return Err(not_decimal());
    }
    if fraction.len() > usize::from(exponent) {
        return Err(AmountError::TooPrecise {
            text: text.to_owned(),
            exponent,
        });
    }
    let overflow = || AmountError::Overflow(text.to_owned());
    let padded = format!("{whole}{fraction:0<width$}", width = usize::from(exponent));
    let magnitude: i64 = padded.parse().map_err(|_| overflow())?;
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_the_currency_precision() {
        assert_eq!(format_minor(1999, 2), "19.99");
        assert_eq!(format_minor(5, 2), "0.05");
        assert_eq!(format_minor(-105, 2), "-1.05");
        assert_eq!(format_minor(1234, 3), "1.234");
        assert_eq!(format_minor(700, 0), "700");
        assert_eq!(format_minor(i64::MIN, 2), "-92233720368547758.08");
    }

    #[test]
    fn parses_exact_decimals_only() {
        assert_eq!(parse_decimal("19.99", 2), Ok(1999));
        assert_eq!(parse_decimal("19.9", 2), Ok(1990));
        assert_eq!(parse_decimal("19", 2), Ok(1900));
        assert_eq!(parse_decimal("-0.01", 2), Ok(-1));
        assert!(matches!(
            parse_decimal("0.001", 2),
            Err(AmountError::TooPrecise { .. })
        ));
        for bad in [
            "", "-", ".5", "5.", "1e3", " 1", "1,00", "+1", "1.-1", "--1",
        ] {
            assert!(
                matches!(parse_decimal(bad, 2), Err(AmountError::NotDecimal(_))),
                "{bad:?} must be rejected"
            );
        }
        assert!(matches!(
            parse_decimal("99999999999999999999", 2),
            Err(AmountError::Overflow(_))
        ));
    }
}
