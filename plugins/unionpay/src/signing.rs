//! UnionPay's 5.1.0 signatures (`signMethod` 01): the fields sorted by name as `k=v&k=v`
//! without `signature`, their SHA-256 in lower-case hex, that hex string signed RSA-SHA256,
//! base64. Requests are signed with the merchant's key (its certificate's serial is `certId`);
//! answers and notifications carry UnionPay's certificate (`signPubKeyCert`, PEM), verified by
//! the host up to the CA configured as `unionpay-ca` and checked to be UnionPay's own, then
//! used to verify the signature.

use coffer_plugin_sdk::base64::Engine as _;
use coffer_plugin_sdk::base64::engine::general_purpose::STANDARD;
use coffer_plugin_sdk::{self as sdk, *};
use sha2::{Digest, Sha256};

/// The merchant's signing key (from its signing certificate's `.pfx`).
pub const MERCHANT_KEY: &str = "merchant-private-key";
/// The CA that issues UnionPay's signing certificates (`acp_prod_middle.cer`): the trust anchor.
pub const UNIONPAY_CA: &str = "unionpay-ca";
/// The organisation UnionPay's signing certificates are issued to; the CA issues to others too.
pub const UNIONPAY_ORGANISATION: &str = "中国银联股份有限公司";

/// The string whose digest is signed: every field but `signature`, sorted by name. Empty values
/// are kept, as UnionPay's SDK keeps them when it verifies (requests carry none).
fn signed_string(fields: &[(&str, &str)]) -> String {
    let mut kept: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .filter(|(k, _)| *k != "signature")
        .collect();
    kept.sort_unstable();
    canonical::join_pairs(&kept)
}

fn digest_hex(fields: &[(&str, &str)]) -> String {
    hex::encode(Sha256::digest(signed_string(fields).as_bytes()))
}

/// The `signature` of a request's fields.
pub fn sign(fields: &[(&str, &str)]) -> Result<String, ChannelError> {
    let signature = sdk::keys::sign(
        MERCHANT_KEY,
        SignatureAlgorithm::RsaPkcs1Sha256,
        digest_hex(fields).as_bytes(),
    )?;
    Ok(STANDARD.encode(signature))
}

/// Verifies fields UnionPay sent (an answer, a notification): no field twice, a
/// `signPubKeyCert` chaining to the configured CA and issued to UnionPay, and its key's
/// signature over the fields.
pub fn verify(fields: &[(String, String)]) -> Result<(), ChannelError> {
    for (i, (key, _)) in fields.iter().enumerate() {
        if fields[..i].iter().any(|(k, _)| k == key) {
            return Err(bad_signature(format!("field {key} appears twice")));
        }
    }
    let get = |name: &str| form::get(fields, name);
    if get("signMethod") != Some("01") {
        return Err(bad_signature("only RSA (signMethod 01) is accepted"));
    }
    let certificate = get("signPubKeyCert")
        .ok_or_else(|| bad_signature("no signPubKeyCert"))
        .and_then(pem_certificate)?;
    require_unionpay(&certificate)?;
    let signature = STANDARD
        .decode(get("signature").ok_or_else(|| bad_signature("no signature"))?)
        .map_err(|_| bad_signature("signature is not base64"))?;
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let policy = ChainPolicy {
        length: 1,
        required_extensions: vec![],
        valid_at: host::now_ms().div_euclid(1000),
    };
    let signed = sdk::keys::verify_with_chain(
        UNIONPAY_CA,
        &[certificate],
        &policy,
        SignatureAlgorithm::RsaPkcs1Sha256,
        digest_hex(&pairs).as_bytes(),
        &signature,
    )?;
    if signed {
        Ok(())
    } else {
        Err(bad_signature("the signature does not verify"))
    }
}

/// The DER of a PEM certificate, as UnionPay sends it (newlines possibly flattened).
fn pem_certificate(pem: &str) -> Result<Vec<u8>, ChannelError> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN CERTIFICATE-----")
        .and_then(|rest| rest.trim_end().strip_suffix("-----END CERTIFICATE-----"))
        .ok_or_else(|| bad_signature("signPubKeyCert is not a PEM certificate"))?;
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(base64)
        .map_err(|_| bad_signature("signPubKeyCert is not base64"))
}

/// The CA issues certificates to many companies: only one issued to UnionPay speaks for it.
/// (Its chain and validity are the host's to check; this reads the subject only.)
fn require_unionpay(der: &[u8]) -> Result<(), ChannelError> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| bad_signature("signPubKeyCert is not a certificate"))?;
    let subject = certificate.subject();
    let names: Vec<&str> = subject
        .iter_common_name()
        .chain(subject.iter_organization())
        .filter_map(|name| name.as_str().ok())
        .collect();
    if names
        .iter()
        .any(|name| name.contains(UNIONPAY_ORGANISATION))
    {
        Ok(())
    } else {
        Err(bad_signature(format!(
            "signPubKeyCert is issued to {names:?}, not to UnionPay"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_string_sorts_every_field_but_the_signature_keeping_empty_ones() {
        let fields = [
            ("txnAmt", "600"),
            ("signature", "xyz"),
            ("merId", "777290058110048"),
            ("reqReserved", ""),
        ];
        assert_eq!(
            signed_string(&fields),
            "merId=777290058110048&reqReserved=&txnAmt=600"
        );
        assert_eq!(digest_hex(&fields).len(), 64);
    }

    #[test]
    fn a_pem_certificate_reads_with_or_without_line_breaks() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        let text = STANDARD.encode(&der);
        let pem = format!("-----BEGIN CERTIFICATE-----\r\n{text}\r\n-----END CERTIFICATE-----\r\n");
        assert_eq!(pem_certificate(&pem).unwrap(), der);
        let flat = format!("-----BEGIN CERTIFICATE-----{text}-----END CERTIFICATE-----");
        assert_eq!(pem_certificate(&flat).unwrap(), der);
        assert!(pem_certificate("MIIB...").is_err());
    }
}
