//! Alipay's trade bill: a zip holding GBK-encoded CSV files. The detail file (业务明细) has `#`
//! header lines, a column header, one line per trade or refund, and `#` footer lines whose
//! 交易合计 counts them; the summary file (业务明细(汇总)) totals them per store with a 合计
//! row. Columns are read by name: the common layout has 25, some products get 27 to 29.
//!
//! Both files' own totals are checked against the lines, so a truncated download is refused
//! rather than half-read. 服务费 is written from the merchant's side: negative on a trade (a
//! fee charged), positive on a refund (the fee given back); the contract's fee is what was
//! charged, so it is the opposite.

use std::io::{Cursor, Read};

use coffer_plugin_sdk::*;

use crate::wire::BEIJING;

/// A bill larger than this is refused rather than inflated (zip bombs).
const MAX_UNZIPPED_BYTES: u64 = 16 << 20;

/// The two files of the zip, decoded.
struct Files {
    detail: String,
    summary: Option<String>,
}

pub fn parse(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError> {
    let files = if document.starts_with(b"PK\x03\x04") {
        unzip(document)?
    } else {
        Files {
            detail: gbk(document)?,
            summary: None,
        }
    };
    let detail = parse_detail(&files.detail)?;
    if let Some(summary) = &files.summary {
        check_summary(summary, &detail)?;
    }
    Ok(detail.lines)
}

fn gbk(bytes: &[u8]) -> Result<String, ChannelError> {
    let (decoded, _, had_errors) = encoding_rs::GBK.decode(bytes);
    if had_errors {
        return Err(malformed("bill is not valid GBK"));
    }
    Ok(decoded.into_owned())
}

/// The detail CSV (业务明细) and, when there, the summary (业务明细(汇总)).
fn unzip(document: &[u8]) -> Result<Files, ChannelError> {
    let zip_error = |e: zip::result::ZipError| malformed(format!("bill zip: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(document)).map_err(zip_error)?;
    let (mut detail, mut summary) = (None, None);
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(zip_error)?;
        // Alipay writes entry names in GBK without the zip UTF-8 flag; other tools in UTF-8.
        let raw = file.name_raw();
        let name = match std::str::from_utf8(raw) {
            Ok(utf8) => utf8.to_owned(),
            Err(_) => encoding_rs::GBK.decode(raw).0.into_owned(),
        };
        if !name.contains("业务明细") {
            continue;
        }
        let mut bytes = Vec::new();
        file.take(MAX_UNZIPPED_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| malformed(format!("bill zip: {e}")))?;
        if bytes.len() as u64 > MAX_UNZIPPED_BYTES {
            return Err(malformed("bill is too large"));
        }
        if name.contains("汇总") {
            summary = Some(gbk(&bytes)?);
        } else {
            detail = Some(gbk(&bytes)?);
        }
    }
    Ok(Files {
        detail: detail.ok_or_else(|| malformed("bill zip has no detail file (业务明细)"))?,
        summary,
    })
}

/// A CSV line's cells, without the tabs and quotes Alipay pads them with.
fn cells(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|c| c.trim_matches(['\t', ' ', '"']))
        .collect()
}

/// The lines of the detail file, with what they add up to.
struct Detail {
    lines: Vec<StatementLine>,
    trades: i64,
    refunds: i64,
    /// The fee column's sum, as written (merchant's side), in fen.
    fee_column: i64,
}

fn parse_detail(text: &str) -> Result<Detail, ChannelError> {
    let mut header: Option<Vec<&str>> = None;
    let mut detail = Detail {
        lines: Vec::new(),
        trades: 0,
        refunds: 0,
        fee_column: 0,
    };
    let mut footer = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(comment) = line.strip_prefix('#') {
            if comment.starts_with("交易合计") {
                footer = Some(counts_of(comment)?);
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let cols = cells(line);
        let Some(header) = &header else {
            if cols.first() != Some(&"支付宝交易号") {
                return Err(malformed("bill column header is missing or unknown"));
            }
            header = Some(cols);
            continue;
        };
        if cols.len() != header.len() {
            return Err(malformed(format!(
                "bill line {} has {} columns, the header {}",
                number + 1,
                cols.len(),
                header.len()
            )));
        }
        let cell = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .map(|i| cols[i])
                .ok_or_else(|| malformed(format!("bill has no column {name}")))
        };
        let kind = match cell("业务类型")? {
            "交易" => StatementEntryKind::Payment,
            "退款" => StatementEntryKind::Refund,
            _ => StatementEntryKind::Adjustment,
        };
        let gross = amount::from_decimal(cell("订单金额（元）")?, "CNY")?;
        let fee_text = cell("服务费（元）")?;
        let fee = amount::from_decimal(if fee_text.is_empty() { "0" } else { fee_text }, "CNY")?;
        detail.fee_column += fee.minor;
        let amount = match kind {
            StatementEntryKind::Payment => {
                detail.trades += 1;
                gross.minor.abs()
            }
            StatementEntryKind::Refund => {
                detail.refunds += 1;
                -gross.minor.abs()
            }
            _ => gross.minor,
        };
        // Our refund number is the refund's out_request_no, which the bill echoes.
        let refund_no = match kind {
            StatementEntryKind::Refund => cell("退款批次号/请求号")
                .ok()
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
            _ => None,
        };
        detail.lines.push(StatementLine {
            kind,
            order_no: Some(cell("商户订单号")?.to_owned()).filter(|o| !o.is_empty()),
            refund_no,
            channel_txn_id: cell("支付宝交易号")?.to_owned(),
            amount: Money {
                minor: amount,
                currency: "CNY".into(),
            },
            fee: Some(Money {
                minor: -fee.minor,
                currency: "CNY".into(),
            }),
            occurred_at: time::parse_datetime(cell("完成时间")?, BEIJING)
                .or_else(|| time::parse_datetime(cell("创建时间").unwrap_or_default(), BEIJING))
                .ok_or_else(|| malformed(format!("bill line {}: bad time", number + 1)))?,
            channel_status: cell("业务类型")?.to_owned(),
        });
    }
    if header.is_none() {
        return Err(malformed("bill has no column header"));
    }
    let (trades, refunds) =
        footer.ok_or_else(|| malformed("bill has no 交易合计 footer: it is truncated"))?;
    if (trades, refunds.unwrap_or(detail.refunds)) != (detail.trades, detail.refunds) {
        return Err(malformed(format!(
            "bill footer counts {trades} trades and {} refunds, the bill has {} and {}",
            refunds.map_or_else(|| "?".to_owned(), |r| r.to_string()),
            detail.trades,
            detail.refunds
        )));
    }
    Ok(detail)
}

/// `交易合计：3笔，退款合计：1笔` → (3, Some(1)); the refund count may be absent.
fn counts_of(footer: &str) -> Result<(i64, Option<i64>), ChannelError> {
    let count_after = |label: &str| {
        footer.find(label).map(|at| {
            footer[at + label.len()..]
                .trim_start_matches([':', '：'])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<i64>()
                .map_err(|_| malformed(format!("bill footer: bad {label}")))
        })
    };
    let trades = count_after("交易合计").ok_or_else(|| malformed("bill footer: no 交易合计"))??;
    Ok((trades, count_after("退款合计").transpose()?))
}

/// The summary file's 合计 row must agree with the detail: trade and refund counts, and the
/// fee column's total.
fn check_summary(text: &str, detail: &Detail) -> Result<(), ChannelError> {
    let mut header: Option<Vec<&str>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols = cells(line);
        let Some(header) = &header else {
            header = Some(cols);
            continue;
        };
        if !cols.contains(&"合计") {
            continue;
        }
        let cell = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| cols.get(i).copied())
                .ok_or_else(|| malformed(format!("bill summary has no column {name}")))
        };
        let count = |name: &str| {
            cell(name)?
                .parse::<i64>()
                .map_err(|_| malformed(format!("bill summary: bad {name}")))
        };
        let fees = amount::from_decimal(cell("服务费（元）")?, "CNY")?.minor;
        let told = (count("交易订单总笔数")?, count("退款订单总笔数")?, fees);
        let found = (detail.trades, detail.refunds, detail.fee_column);
        if told != found {
            return Err(malformed(format!(
                "bill summary (trades, refunds, fees) {told:?} differs from the detail {found:?}"
            )));
        }
        return Ok(());
    }
    Err(malformed("bill summary has no 合计 row"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_25: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

    fn trade(txn: &str, order: &str, yuan: &str, fee: &str) -> String {
        format!(
            "{txn}\t,{order}\t,交易,100 Gems,2026-11-30 10:00:00,2026-11-30 10:00:05,,,,,buyer@example.com,{yuan},{yuan},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-{fee},0.00,"
        )
    }

    fn refund(txn: &str, order: &str, yuan: &str, fee: &str) -> String {
        format!(
            "{txn}\t,{order}\t,退款,100 Gems,2026-11-30 10:00:00,2026-11-30 11:00:00,,,,,buyer@example.com,-{yuan},-{yuan},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,RF-1,{fee},0.00,"
        )
    }

    fn detail(header: &str, rows: &[String], footer: &str) -> String {
        let mut text = String::from("#支付宝业务明细查询\n#账号：[20880000000000010156]\n");
        text.push_str("#-----------------------------------------业务明细列表----------------------------------------\n");
        text.push_str(header);
        text.push('\n');
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        text.push_str("#-----------------------------------------业务明细列表结束------------------------------------\n");
        text.push_str(footer);
        text.push_str("\n#导出时间：[2026年12月01日 09:12:33]\n");
        text
    }

    fn gbk_bytes(text: &str) -> Vec<u8> {
        encoding_rs::GBK.encode(text).0.into_owned()
    }

    #[test]
    fn trades_and_refunds_read_with_the_fee_charged_and_given_back() {
        let text = detail(
            HEADER_25,
            &[
                trade("2026113022001", "AP-1", "19.99", "0.12"),
                refund("2026113022001", "AP-1", "5.00", "0.03"),
            ],
            "#交易合计：1笔，退款合计：1笔",
        );
        let lines = parse(&gbk_bytes(&text)).unwrap();
        let (paid, refunded) = (&lines[0], &lines[1]);
        assert_eq!(
            (
                paid.kind,
                paid.amount.minor,
                paid.fee.as_ref().unwrap().minor
            ),
            (StatementEntryKind::Payment, 1999, 12)
        );
        assert_eq!(
            (
                refunded.kind,
                refunded.amount.minor,
                refunded.fee.as_ref().unwrap().minor
            ),
            (StatementEntryKind::Refund, -500, -3)
        );
        assert_eq!(paid.order_no.as_deref(), Some("AP-1"));
        assert_eq!(
            (paid.refund_no.as_deref(), refunded.refund_no.as_deref()),
            (None, Some("RF-1")),
            "a refund line carries our refund number (退款批次号/请求号), a payment none"
        );
    }

    #[test]
    fn longer_layouts_are_read_by_column_name() {
        // Some products get 27 to 29 columns, with new ones in the middle.
        let header = HEADER_25
            .replace("对方账户,", "对方账户,花呗分期数,银行卡号,")
            .replace("备注", "备注,结算币种,汇率");
        let row = trade("2026113022001", "AP-1", "19.99", "0.12")
            .replace("buyer@example.com,", "buyer@example.com,0,,")
            .trim_end_matches(',')
            .to_owned()
            + ",,CNY,1";
        let text = detail(&header, &[row], "#交易合计：1笔，退款合计：0笔");
        let lines = parse(&gbk_bytes(&text)).unwrap();
        assert_eq!(
            (lines[0].amount.minor, lines[0].fee.as_ref().unwrap().minor),
            (1999, 12)
        );
    }

    #[test]
    fn a_truncated_bill_is_refused_whole() {
        let rows = [
            trade("1", "AP-1", "19.99", "0.12"),
            trade("2", "AP-2", "6.00", "0.04"),
        ];
        let mut cut = detail(HEADER_25, &rows, "#交易合计：2笔，退款合计：0笔");
        // The download cut after the lines: no footer.
        let end = cut.find("业务明细列表结束").unwrap();
        cut.truncate(cut[..end].rfind('\n').unwrap() + 1);
        let error = parse(&gbk_bytes(&cut)).unwrap_err().to_string();
        assert!(error.contains("truncated"), "{error}");
        let lost = detail(HEADER_25, &rows[..1], "#交易合计：2笔，退款合计：0笔");
        let error = parse(&gbk_bytes(&lost)).unwrap_err().to_string();
        assert!(error.contains("counts 2 trades"), "{error}");
    }

    #[test]
    fn the_summary_file_must_agree_with_the_detail() {
        let rows = [trade("1", "AP-1", "19.99", "0.12")];
        let text = detail(HEADER_25, &rows, "#交易合计：1笔，退款合计：0笔");
        let detail = parse_detail(&text).unwrap();
        let summary = |trades: i64, fee: &str| {
            format!(
                "#支付宝业务汇总查询\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,服务费（元）,分润（元）,实收净额（元）\n合计,,{trades},0,19.99,19.99,{fee},0.00,19.87\n#导出时间：[2026年12月01日 09:12:33]\n"
            )
        };
        assert!(check_summary(&summary(1, "-0.12"), &detail).is_ok());
        assert!(check_summary(&summary(2, "-0.12"), &detail).is_err());
        assert!(check_summary(&summary(1, "-0.10"), &detail).is_err());
    }
}
