//! Alipay's trade bill: a zip holding GBK-encoded CSV files. The detail file has `#` header and
//! footer lines, a column header, and 25 columns per line:
//! 支付宝交易号, 商户订单号, 业务类型, 商品名称, 创建时间, 完成时间, 门店编号, 门店名称, 操作员,
//! 终端号, 对方账户, 订单金额（元）, 商家实收（元）, 支付宝红包（元）, 集分宝（元）,
//! 支付宝优惠（元）, 商家优惠（元）, 券核销金额（元）, 券名称, 商家红包消费金额（元）,
//! 卡消费金额（元）, 退款批次号/请求号, 服务费（元）, 分润（元）, 备注.

use std::io::{Cursor, Read};

use coffer_plugin_sdk::*;

use crate::wire::BEIJING;

const COLUMNS: usize = 25;
/// A bill larger than this is refused rather than inflated (zip bombs).
const MAX_UNZIPPED_BYTES: u64 = 16 << 20;

pub fn parse(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError> {
    let text = if document.starts_with(b"PK\x03\x04") {
        detail_file(document)?
    } else {
        document.to_vec()
    };
    let (decoded, _, had_errors) = encoding_rs::GBK.decode(&text);
    if had_errors {
        return Err(malformed("bill is not valid GBK"));
    }
    parse_csv(&decoded)
}

/// The detail CSV inside the zip: the file whose name says 业务明细 and not 汇总.
fn detail_file(document: &[u8]) -> Result<Vec<u8>, ChannelError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(document))
        .map_err(|e| malformed(format!("bill zip: {e}")))?;
    for i in 0..archive.len() {
        let file = archive
            .by_index(i)
            .map_err(|e| malformed(format!("bill zip: {e}")))?;
        // Alipay writes entry names in GBK without the zip UTF-8 flag; other tools in UTF-8.
        let raw = file.name_raw();
        let name = match std::str::from_utf8(raw) {
            Ok(utf8) => utf8.to_owned(),
            Err(_) => encoding_rs::GBK.decode(raw).0.into_owned(),
        };
        if name.contains("业务明细") && !name.contains("汇总") {
            let mut bytes = Vec::new();
            file.take(MAX_UNZIPPED_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| malformed(format!("bill zip: {e}")))?;
            if bytes.len() as u64 > MAX_UNZIPPED_BYTES {
                return Err(malformed("bill is too large"));
            }
            return Ok(bytes);
        }
    }
    Err(malformed("bill zip has no detail file (业务明细)"))
}

fn parse_csv(text: &str) -> Result<Vec<StatementLine>, ChannelError> {
    let mut lines = Vec::new();
    let mut header_seen = false;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line
            .split(',')
            .map(|c| c.trim_matches(['\t', ' ', '"']))
            .collect();
        if !header_seen {
            if cols.first() != Some(&"支付宝交易号") || cols.len() != COLUMNS {
                return Err(malformed("bill column header is missing or unknown"));
            }
            header_seen = true;
            continue;
        }
        if cols.len() != COLUMNS {
            return Err(malformed(format!(
                "bill line {} has {} columns",
                number + 1,
                cols.len()
            )));
        }
        let kind = match cols[2] {
            "交易" => StatementEntryKind::Payment,
            "退款" => StatementEntryKind::Refund,
            _ => StatementEntryKind::Adjustment,
        };
        let gross = amount::from_decimal(cols[11], "CNY")?;
        let fee = amount::from_decimal(if cols[22].is_empty() { "0" } else { cols[22] }, "CNY")?;
        lines.push(StatementLine {
            kind,
            order_no: Some(cols[1].to_owned()).filter(|o| !o.is_empty()),
            channel_txn_id: cols[0].to_owned(),
            amount: gross,
            // The bill writes the fee as a deduction (negative); the contract wants what was
            // charged.
            fee: Some(Money {
                minor: fee.minor.abs(),
                currency: fee.currency,
            }),
            occurred_at: time::parse_datetime(cols[5], BEIJING)
                .or_else(|| time::parse_datetime(cols[4], BEIJING))
                .ok_or_else(|| malformed(format!("bill line {}: bad time", number + 1)))?,
            channel_status: cols[2].to_owned(),
        });
    }
    if !header_seen {
        return Err(malformed("bill has no column header"));
    }
    Ok(lines)
}
