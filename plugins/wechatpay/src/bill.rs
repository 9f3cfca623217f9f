//! WeChat Pay's trade bill (交易账单, `bill_type=ALL`): UTF-8 CSV, possibly with a BOM and CRLF
//! line ends, every field prefixed with a backtick. A column header, one row per payment or
//! refund, then a summary header (总交易单数,...) and its row of totals. Columns are read by
//! name, so the bill may carry more of them than are read here.
//!
//! Fees (手续费) carry five decimals (0.11994 yuan), finer than a fen: each line's fee is
//! rounded to fen for the contract, while the bill's own fee total is checked exactly. A fee
//! on a refund line is given back to the merchant: negative. A line in another currency than
//! CNY is kept as it is, for the host to flag; the summary must agree with the lines (row
//! count, fee total, refund total), so a truncated download is refused, not half-read.

use coffer_plugin_sdk::*;

use crate::wire::BEIJING;

/// Fee amounts in the bill: 1e-5 yuan.
const FEE_DECIMALS: u8 = 5;

/// The row of totals under the summary header.
struct Summary {
    rows: i64,
    /// 1e-5 of the currency.
    fees: i64,
    /// Minor units.
    refunds: i64,
}

pub fn parse(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError> {
    let text = std::str::from_utf8(document).map_err(|_| malformed("bill is not UTF-8"))?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rows = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty());
    let header = fields(rows.next().ok_or_else(|| malformed("bill is empty"))?);
    let column = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| malformed(format!("bill has no column {name}")))
    };
    let columns = Columns {
        time: column("交易时间")?,
        txn: column("微信订单号")?,
        order: column("商户订单号")?,
        refund_no: column("商户退款单号")?,
        state: column("交易状态")?,
        currency: column("货币种类")?,
        settled: column("应结订单金额")?,
        refund: column("退款金额")?,
        fee: column("手续费")?,
        count: header.len(),
    };
    let mut lines = Vec::new();
    let (mut fees, mut refunds) = (0_i64, 0_i64);
    let mut summary = None;
    let mut number = 1;
    while let Some(row) = rows.next() {
        number += 1;
        if row.starts_with("总交易单数") {
            let totals = rows
                .next()
                .ok_or_else(|| malformed("bill summary has no totals"))?;
            summary = Some(summary_of(&header_of(row), &fields(totals))?);
            break;
        }
        let line = columns.read(&fields(row), number)?;
        fees += line.exact_fee;
        if line.statement.kind == StatementEntryKind::Refund {
            refunds += -line.statement.amount.minor;
        }
        lines.push(line.statement);
    }
    let summary = summary.ok_or_else(|| malformed("bill has no summary: it is truncated"))?;
    if summary.rows != lines.len() as i64 {
        return Err(malformed(format!(
            "bill summary counts {} rows, the bill has {}",
            summary.rows,
            lines.len()
        )));
    }
    if summary.fees != fees || summary.refunds != refunds {
        return Err(malformed(format!(
            "bill summary totals (fees {}, refunds {}) differ from its rows (fees {fees}, \
             refunds {refunds})",
            summary.fees, summary.refunds
        )));
    }
    Ok(lines)
}

/// A row's fields, without the backtick WeChat Pay puts before each.
fn fields(row: &str) -> Vec<&str> {
    row.split(',')
        .map(|c| c.trim().trim_start_matches('`'))
        .collect()
}

fn header_of(row: &str) -> Vec<&str> {
    row.split(',').map(str::trim).collect()
}

fn summary_of(header: &[&str], totals: &[&str]) -> Result<Summary, ChannelError> {
    let total = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .and_then(|i| totals.get(i))
            .copied()
            .ok_or_else(|| malformed(format!("bill summary has no {name}")))
    };
    Ok(Summary {
        rows: total("总交易单数")?
            .parse()
            .map_err(|_| malformed("bill summary: bad 总交易单数"))?,
        fees: amount::parse_fixed(total("手续费总金额")?, FEE_DECIMALS)?,
        refunds: amount::parse_fixed(total("退款总金额")?, 2)?,
    })
}

struct Columns {
    time: usize,
    txn: usize,
    order: usize,
    refund_no: usize,
    state: usize,
    currency: usize,
    settled: usize,
    refund: usize,
    fee: usize,
    count: usize,
}

/// A row as a statement line, with its fee as the bill wrote it (1e-5 units).
struct Row {
    statement: StatementLine,
    exact_fee: i64,
}

impl Columns {
    fn read(&self, cols: &[&str], number: usize) -> Result<Row, ChannelError> {
        if cols.len() != self.count {
            return Err(malformed(format!(
                "bill row {number} has {} columns, the header {}",
                cols.len(),
                self.count
            )));
        }
        let currency = match cols[self.currency] {
            "" => "CNY",
            code => code,
        };
        let exponent = amount::exponent(currency)
            .map_err(|_| malformed(format!("bill row {number}: unknown currency {currency:?}")))?;
        let (kind, gross) = match cols[self.state] {
            "SUCCESS" => (
                StatementEntryKind::Payment,
                amount::from_decimal(cols[self.settled], currency)?,
            ),
            "REFUND" => {
                let refunded = amount::from_decimal(cols[self.refund], currency)?;
                (
                    StatementEntryKind::Refund,
                    Money {
                        minor: -refunded.minor.abs(),
                        currency: refunded.currency,
                    },
                )
            }
            _ => (
                StatementEntryKind::Adjustment,
                amount::from_decimal(cols[self.settled], currency)?,
            ),
        };
        let exact_fee = amount::parse_fixed(cols[self.fee], FEE_DECIMALS)?;
        Ok(Row {
            statement: StatementLine {
                kind,
                order_no: Some(cols[self.order].to_owned()).filter(|o| !o.is_empty()),
                refund_no: Some(cols[self.refund_no].to_owned())
                    .filter(|r| kind == StatementEntryKind::Refund && !r.is_empty()),
                channel_txn_id: cols[self.txn].to_owned(),
                amount: gross,
                fee: Some(Money {
                    minor: amount::rescale_rounded(exact_fee, FEE_DECIMALS, exponent),
                    currency: currency.to_owned(),
                }),
                occurred_at: time::parse_datetime(cols[self.time], BEIJING)
                    .ok_or_else(|| malformed(format!("bill row {number}: bad time")))?,
                channel_status: cols[self.state].to_owned(),
            },
            exact_fee,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

    fn payment(txn: &str, order: &str, yuan: &str, fee: &str, currency: &str) -> String {
        format!(
            "`2026-11-30 10:00:00,`wxapp,`1900000001,`0,`,`{txn},`{order},`oUser,`NATIVE,`SUCCESS,`OTHERS,`{currency},`{yuan},`0.00,`0,`0,`0.00,`0.00,`,`,`100 Gems,`,`{fee},`0.60%,`{yuan},`0.00,`"
        )
    }

    fn refund(txn: &str, order: &str, yuan: &str, fee: &str) -> String {
        format!(
            "`2026-11-30 11:00:00,`wxapp,`1900000001,`0,`,`{txn},`{order},`oUser,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300,`RF-1,`{yuan},`0.00,`ORIGINAL,`SUCCESS,`100 Gems,`,`{fee},`0.60%,`0.00,`{yuan},`"
        )
    }

    /// A bill as WeChat Pay serves it: BOM, CRLF, backticks, summary header and row.
    fn bill(rows: &[String], summary: &str) -> Vec<u8> {
        let mut text = format!("\u{feff}{HEADER}\r\n");
        for row in rows {
            text.push_str(row);
            text.push_str("\r\n");
        }
        text.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n");
        text.push_str(summary);
        text.push_str("\r\n");
        text.into_bytes()
    }

    #[test]
    fn a_real_bill_reads_with_five_decimal_fees_and_refund_fees_given_back() {
        let document = bill(
            &[
                payment("4200001", "WX-1", "19.99", "0.11994", "CNY"),
                refund("4200001", "WX-1", "5.00", "-0.03000"),
            ],
            "`2,`19.99,`5.00,`0.00,`0.08994,`19.99,`5.00",
        );
        let lines = parse(&document).unwrap();
        assert_eq!(lines.len(), 2);
        let (paid, refunded) = (&lines[0], &lines[1]);
        assert_eq!(
            (paid.kind, paid.amount.minor),
            (StatementEntryKind::Payment, 1999)
        );
        assert_eq!(
            paid.fee.as_ref().unwrap().minor,
            12,
            "0.11994 yuan is 12 fen"
        );
        assert_eq!(paid.order_no.as_deref(), Some("WX-1"));
        assert_eq!(
            (paid.refund_no.as_deref(), refunded.refund_no.as_deref()),
            (None, Some("RF-1")),
            "a refund line carries our refund number (商户退款单号), a payment none"
        );
        assert_eq!(
            (refunded.kind, refunded.amount.minor),
            (StatementEntryKind::Refund, -500)
        );
        assert_eq!(
            refunded.fee.as_ref().unwrap().minor,
            -3,
            "the fee is given back"
        );
    }

    #[test]
    fn a_line_in_another_currency_is_kept_for_the_host_to_flag() {
        let document = bill(
            &[
                payment("4200001", "WX-1", "19.99", "0.11994", "CNY"),
                payment("4200002", "WX-2", "3.00", "0.01800", "USD"),
            ],
            "`2,`22.99,`0.00,`0.00,`0.13794,`22.99,`0.00",
        );
        let lines = parse(&document).unwrap();
        assert_eq!(
            lines[1].amount,
            Money {
                minor: 300,
                currency: "USD".into()
            }
        );
    }

    #[test]
    fn a_truncated_or_inconsistent_bill_is_refused_whole() {
        let rows = [
            payment("4200001", "WX-1", "19.99", "0.11994", "CNY"),
            payment("4200002", "WX-2", "6.00", "0.03600", "CNY"),
        ];
        // Cut before the summary.
        let mut cut = format!("{HEADER}\n{}\n{}\n", rows[0], rows[1]).into_bytes();
        assert!(parse(&cut).unwrap_err().to_string().contains("truncated"));
        // A row lost, the summary kept.
        cut = bill(&rows[..1], "`2,`25.99,`0.00,`0.00,`0.15594,`25.99,`0.00");
        assert!(
            parse(&cut)
                .unwrap_err()
                .to_string()
                .contains("counts 2 rows")
        );
        // Fees that do not add up.
        let wrong = bill(&rows, "`2,`25.99,`0.00,`0.00,`0.15000,`25.99,`0.00");
        assert!(parse(&wrong).unwrap_err().to_string().contains("differ"));
    }

    #[test]
    fn extra_columns_are_read_by_name() {
        let header = format!("{HEADER},新增列");
        let row = format!(
            "{},`x",
            payment("4200001", "WX-1", "19.99", "0.11994", "CNY")
        );
        let text = format!(
            "{header}\n{row}\n总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n`1,`19.99,`0.00,`0.00,`0.11994,`19.99,`0.00\n"
        );
        assert_eq!(parse(text.as_bytes()).unwrap().len(), 1);
    }
}
