//! UnionPay's online gateway (全渠道 5.1.0), as Coffer meets it: the cashier page the player's
//! browser posts the front consume to, the query and refund endpoints, and notifications to the
//! merchant's `backUrl`, every answer and notification signed with UnionPay's certificate
//! (`signPubKeyCert`), issued by a CA generated at start (Coffer trusts it as `unionpay-ca`).
//! Requests must carry the merchant's signature.
//!
//! `POST /_control/unionpay/pay/{orderId}` plays "the player paid", sending the notification (or
//! losing it, or sending a forgery: `bad_signature`, `rogue_cert` (the same CA's certificate
//! for another company), `self_signed`, `tampered_amount`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use pkcs8::{EncodePrivateKey, LineEnding};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256,
};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::Sim;
use crate::keys::{SigningKey, random_hex, sign_sha256_base64, verify_sha256_base64};

/// The merchant id and certificate serial Coffer's settings name.
pub const MER_ID: &str = "777290058110048";
pub const CERT_ID: &str = "69629715588";
const UNIONPAY: &str = "中国银联股份有限公司";

/// UnionPay's signing certificates: the CA Coffer trusts, UnionPay's own certificate and key,
/// and the forger's.
pub struct UnionPayCerts {
    pub ca_pem: String,
    genuine: (String, SigningKey),
    /// Issued by the same CA to another company.
    rogue: (String, SigningKey),
    /// UnionPay's name, signed by nobody.
    self_signed: (String, SigningKey),
}

fn names(params: &mut CertificateParams, name: &str) {
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name}(RSA2048)"));
    params
        .distinguished_name
        .push(DnType::OrganizationName, name.to_owned());
}

fn rsa_rcgen_key(key: &SigningKey) -> KeyPair {
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 encoding");
    KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256).expect("rcgen takes the key")
}

impl UnionPayCerts {
    pub fn generate(rsa: impl Fn() -> SigningKey) -> Arc<Self> {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("no names");
        ca.distinguished_name
            .push(DnType::CommonName, "Coffer Sim CFCA ACS OCA31");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(
            ca,
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key"),
        )
        .expect("CA");
        let issue = |name: &str, key: &SigningKey, self_signed: bool| {
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
            names(&mut params, name);
            let pair = rsa_rcgen_key(key);
            let certificate = if self_signed {
                params.self_signed(&pair)
            } else {
                params.signed_by(&pair, &ca)
            };
            certificate.expect("certificate").pem()
        };
        let (genuine, rogue, lone) = (rsa(), rsa(), rsa());
        Arc::new(Self {
            ca_pem: ca.pem(),
            genuine: (issue(UNIONPAY, &genuine, false), genuine),
            rogue: (issue("某某网络科技有限公司", &rogue, false), rogue),
            self_signed: (issue(UNIONPAY, &lone, true), lone),
        })
    }
}

#[derive(Clone)]
struct Payment {
    txn_time: String,
    amount: i64,
    back_url: String,
    query_id: Option<String>,
    refunded: i64,
}

#[derive(Default)]
pub struct Ledger {
    payments: Mutex<HashMap<String, Payment>>,
}

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/gateway/api/frontTransReq.do", post(front))
        .route("/gateway/api/queryTrans.do", post(query))
        .route("/gateway/api/backTransReq.do", post(back))
}

fn sha256_hex(fields: &[(String, String)]) -> String {
    let mut kept: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| k != "signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    kept.sort_unstable();
    let text = kept
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn get<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    crate::alipay::get_param(fields, name)
}

/// Checks the merchant's signature on a request.
fn merchant_signed(sim: &Sim, fields: &[(String, String)]) -> bool {
    get(fields, "certId") == CERT_ID
        && get(fields, "merId") == MER_ID
        && verify_sha256_base64(
            &sim.keys.unionpay_merchant,
            sha256_hex(fields).as_bytes(),
            get(fields, "signature"),
        )
}

/// Adds UnionPay's certificate and signature, as `which` signs (the genuine one by default).
fn sign_as(sim: &Sim, mut fields: Vec<(String, String)>, which: &str) -> Vec<(String, String)> {
    let certs = &sim.keys.unionpay;
    let (pem, key) = match which {
        "rogue_cert" => &certs.rogue,
        "self_signed" => &certs.self_signed,
        _ => &certs.genuine,
    };
    fields.push(("signMethod".into(), "01".into()));
    fields.push(("signPubKeyCert".into(), pem.clone()));
    let signature = sign_sha256_base64(key, sha256_hex(&fields).as_bytes());
    fields.push(("signature".into(), signature));
    fields
}

fn encode(fields: &[(String, String)]) -> String {
    let pairs: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    crate::carespay::form_body(&pairs)
}

fn decode(body: &[u8]) -> Vec<(String, String)> {
    crate::alipay::parse_form(body)
}

fn answer(sim: &Sim, fields: Vec<(String, String)>) -> (StatusCode, String) {
    (StatusCode::OK, encode(&sign_as(sim, fields, "genuine")))
}

fn common(fields: &[(String, String)]) -> Vec<(String, String)> {
    [
        "version",
        "encoding",
        "txnType",
        "txnSubType",
        "bizType",
        "accessType",
        "merId",
        "orderId",
        "txnTime",
    ]
    .iter()
    .map(|k| ((*k).to_owned(), get(fields, k).to_owned()))
    .collect()
}

/// The cashier page: the browser posts the signed front consume here.
async fn front(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> (StatusCode, String) {
    let fields = decode(&body);
    if !merchant_signed(&sim, &fields) || get(&fields, "txnType") != "01" {
        return (StatusCode::BAD_REQUEST, "验签失败".into());
    }
    let payment = Payment {
        txn_time: get(&fields, "txnTime").to_owned(),
        amount: get(&fields, "txnAmt").parse().unwrap_or(0),
        back_url: get(&fields, "backUrl").to_owned(),
        query_id: None,
        refunded: 0,
    };
    sim.unionpay
        .payments
        .lock()
        .unwrap()
        .insert(get(&fields, "orderId").to_owned(), payment);
    (
        StatusCode::OK,
        format!(
            "<html><body><h1>银联在线支付 (sim)</h1><p>{}</p></body></html>",
            get(&fields, "orderId")
        ),
    )
}

async fn query(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> (StatusCode, String) {
    let fields = decode(&body);
    if !merchant_signed(&sim, &fields) {
        return (StatusCode::OK, "respCode=11&respMsg=验证签名失败".into());
    }
    let mut out = common(&fields);
    let known = sim
        .unionpay
        .payments
        .lock()
        .unwrap()
        .get(get(&fields, "orderId"))
        .filter(|p| p.txn_time == get(&fields, "txnTime"))
        .cloned();
    match known {
        None => {
            out.push(("respCode".into(), "34".into()));
            out.push(("respMsg".into(), "查无此交易".into()));
        }
        Some(payment) => {
            out.push(("respCode".into(), "00".into()));
            out.push(("respMsg".into(), "成功".into()));
            let (code, message) = match payment.query_id {
                Some(_) => ("00", "成功"),
                None => ("05", "交易处理中"),
            };
            out.push(("origRespCode".into(), code.into()));
            out.push(("origRespMsg".into(), message.into()));
            out.push(("txnAmt".into(), payment.amount.to_string()));
            out.push(("currencyCode".into(), "156".into()));
            out.push(("queryId".into(), payment.query_id.unwrap_or_default()));
        }
    }
    answer(&sim, out)
}

/// Back transactions: refunds (`txnType` 04), answered at once and notified after.
async fn back(State(sim): State<Arc<Sim>>, body: axum::body::Bytes) -> (StatusCode, String) {
    let fields = decode(&body);
    if !merchant_signed(&sim, &fields) || get(&fields, "txnType") != "04" {
        return (StatusCode::OK, "respCode=11&respMsg=验证签名失败".into());
    }
    let amount: i64 = get(&fields, "txnAmt").parse().unwrap_or(0);
    let original = get(&fields, "origQryId");
    let mut out = common(&fields);
    let accepted = {
        let mut payments = sim.unionpay.payments.lock().unwrap();
        payments
            .values_mut()
            .find(|p| p.query_id.as_deref() == Some(original))
            .filter(|p| amount > 0 && p.refunded + amount <= p.amount)
            .map(|p| {
                p.refunded += amount;
                p.back_url.clone()
            })
    };
    let Some(_) = accepted else {
        out.push(("respCode".into(), "12".into()));
        out.push(("respMsg".into(), "退货金额超限".into()));
        return answer(&sim, out);
    };
    let query_id = format!(
        "{}",
        700_000_000_000_000_000u64 + u64::from_str_radix(&random_hex(6), 16).unwrap_or(0)
    );
    out.push(("respCode".into(), "00".into()));
    out.push(("respMsg".into(), "成功[0000000]".into()));
    out.push(("queryId".into(), query_id.clone()));
    // The result, by notification to the refund's own backUrl.
    let mut notice = common(&fields);
    for key in ["origQryId", "txnAmt", "currencyCode", "reqReserved"] {
        notice.push((key.into(), get(&fields, key).to_owned()));
    }
    notice.push(("queryId".into(), query_id));
    notice.push(("respCode".into(), "00".into()));
    notice.push(("respMsg".into(), "成功[0000000]".into()));
    let notice = sign_as(&sim, notice, "genuine");
    let url = get(&fields, "backUrl").to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let _ = post_form(&url, &notice).await;
    });
    answer(&sim, out)
}

async fn post_form(url: &str, fields: &[(String, String)]) -> Result<u16, String> {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(fields))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

/// What `/_control/unionpay/pay/{orderId}` does after the player paid.
#[derive(Debug, Default, Deserialize)]
pub struct Paid {
    /// Do not notify (a lost notification: the query finds the payment).
    #[serde(default)]
    pub lose_notification: bool,
    /// Send this forgery instead of the genuine notification (the payment stays paid).
    #[serde(default)]
    pub fault: Option<String>,
}

/// The player paid at the cashier; returns Coffer's answer to the notification, if one went.
pub async fn pay(sim: &Sim, order_id: &str, paid: Paid) -> Result<Value, String> {
    let payment = {
        let mut payments = sim.unionpay.payments.lock().unwrap();
        let payment = payments
            .get_mut(order_id)
            .ok_or_else(|| format!("no front consume {order_id}"))?;
        let query_id = format!(
            "{}",
            600_000_000_000_000_000u64 + u64::from_str_radix(&random_hex(6), 16).unwrap_or(0)
        );
        payment.query_id.get_or_insert(query_id);
        payment.clone()
    };
    if paid.lose_notification {
        return Ok(json!({ "status": null }));
    }
    let fault = paid.fault.as_deref().unwrap_or("genuine");
    let amount = if fault == "tampered_amount" {
        1
    } else {
        payment.amount
    };
    let mut notice: Vec<(String, String)> = vec![
        ("version".into(), "5.1.0".into()),
        ("encoding".into(), "UTF-8".into()),
        ("txnType".into(), "01".into()),
        ("txnSubType".into(), "01".into()),
        ("bizType".into(), "000201".into()),
        ("accessType".into(), "0".into()),
        ("merId".into(), MER_ID.into()),
        ("orderId".into(), order_id.into()),
        ("txnTime".into(), payment.txn_time.clone()),
        ("txnAmt".into(), payment.amount.to_string()),
        ("currencyCode".into(), "156".into()),
        (
            "queryId".into(),
            payment.query_id.clone().unwrap_or_default(),
        ),
        ("respCode".into(), "00".into()),
        ("respMsg".into(), "成功[0000000]".into()),
        ("settleAmt".into(), payment.amount.to_string()),
        ("traceNo".into(), random_hex(3)),
    ];
    notice = sign_as(sim, notice, fault);
    match fault {
        // Signed for the real amount, then changed.
        "tampered_amount" => {
            for (k, v) in &mut notice {
                if k == "txnAmt" {
                    *v = amount.to_string();
                }
            }
        }
        "bad_signature" => {
            for (k, v) in &mut notice {
                if k == "signature" {
                    *v = STANDARD.encode([7u8; 256]);
                }
            }
        }
        _ => {}
    }
    let status = post_form(&payment.back_url, &notice).await?;
    Ok(json!({ "status": status }))
}

/// Control route: `POST /_control/unionpay/pay/{orderId}`.
pub async fn control_pay(
    State(sim): State<Arc<Sim>>,
    Path(order_id): Path<String>,
    Json(paid): Json<Paid>,
) -> Result<Json<Value>, (StatusCode, String)> {
    pay(&sim, &order_id, paid)
        .await
        .map(Json)
        .map_err(|why| (StatusCode::CONFLICT, why))
}
