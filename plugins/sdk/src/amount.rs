//! Amounts between the contract's minor units and the decimal strings channels use.

use coffer_money::{Currency, format_minor, parse_decimal};

use crate::{ChannelError, ChannelResult, Money};

fn currency(code: &str) -> ChannelResult<Currency> {
    Currency::parse(code).map_err(|e| ChannelError::Unsupported(e.to_string()))
}

/// Number of decimals of the currency's minor unit: 2 for USD, 0 for JPY.
pub fn exponent(currency_code: &str) -> ChannelResult<u8> {
    Ok(currency(currency_code)?.exponent())
}

/// Parses a decimal with at most `decimals` fraction digits into an integer scaled by
/// 10^decimals ("12.3", 2 → 1230), refusing anything that would need rounding.
pub fn parse_fixed(text: &str, decimals: u8) -> ChannelResult<i64> {
    Ok(parse_decimal(text, decimals)?)
}

/// "19.99" for 1999 USD, "500" for 500 JPY: exactly the currency's decimals.
pub fn to_decimal(money: &Money) -> ChannelResult<String> {
    Ok(format_minor(
        money.minor,
        currency(&money.currency)?.exponent(),
    ))
}

/// Parses a channel's decimal amount in `currency`, refusing anything that needs rounding.
pub fn from_decimal(text: &str, currency_code: &str) -> ChannelResult<Money> {
    let exponent = currency(currency_code)?.exponent();
    Ok(Money {
        minor: parse_decimal(text, exponent)?,
        currency: currency_code.to_owned(),
    })
}

/// An amount kept with `from` decimals (a fee of 0.11994 yuan is 11994 at 5) in the
/// currency's minor units (`to` decimals), rounded half away from zero: 12 fen.
pub fn rescale_rounded(value: i64, from: u8, to: u8) -> i64 {
    if from <= to {
        return value.saturating_mul(10_i64.saturating_pow(u32::from(to - from)));
    }
    let divisor = 10_i64.pow(u32::from(from - to));
    let (quotient, remainder) = (value / divisor, value % divisor);
    if remainder.abs() * 2 >= divisor {
        quotient + value.signum()
    } else {
        quotient
    }
}

/// `amount * basis_points / 10_000`, rounded half up: a fee estimate.
pub fn basis_points(money: &Money, basis_points: u32) -> Money {
    let scaled = i128::from(money.minor) * i128::from(basis_points);
    let fee = (scaled + 5_000) / 10_000;
    Money {
        minor: i64::try_from(fee).unwrap_or(i64::MAX),
        currency: money.currency.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(minor: i64, currency: &str) -> Money {
        Money {
            minor,
            currency: currency.into(),
        }
    }

    #[test]
    fn decimal_forms_follow_the_currency() {
        assert_eq!(to_decimal(&money(1999, "USD")).unwrap(), "19.99");
        assert_eq!(to_decimal(&money(500, "JPY")).unwrap(), "500");
        assert_eq!(from_decimal("0.10", "CNY").unwrap(), money(10, "CNY"));
        assert!(from_decimal("0.101", "CNY").is_err());
        assert!(to_decimal(&money(1, "XYZ")).is_err());
    }

    #[test]
    fn finer_amounts_round_half_away_from_zero_to_minor_units() {
        assert_eq!(rescale_rounded(11994, 5, 2), 12);
        assert_eq!(rescale_rounded(11494, 5, 2), 11);
        assert_eq!(rescale_rounded(11500, 5, 2), 12);
        assert_eq!(rescale_rounded(-8994, 5, 2), -9);
        assert_eq!(rescale_rounded(-500, 5, 2), -1);
        assert_eq!(rescale_rounded(499, 5, 2), 0);
        assert_eq!(rescale_rounded(12, 2, 2), 12);
        assert_eq!(rescale_rounded(12, 0, 2), 1200);
    }

    #[test]
    fn fee_rounds_half_up() {
        assert_eq!(basis_points(&money(1000, "USD"), 250).minor, 25);
        assert_eq!(basis_points(&money(1, "USD"), 5000).minor, 1);
        assert_eq!(basis_points(&money(1, "USD"), 4999).minor, 0);
    }
}
