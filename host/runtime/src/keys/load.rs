use std::path::Path;

use base64::Engine as _;
use pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use pkcs8::{DecodePrivateKey, DecodePublicKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rsa::{PrivateKey, PublicKey};
use spki::ObjectIdentifier;
use spki::der::DecodePem;
use zeroize::Zeroizing;

use super::{KeyFormat, KeySource, SealedKey};

/// Why a key could not be loaded. Never includes key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key {name}: cannot read {path}: {source}")]
    Io {
        name: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "key {name}: {path} is not an RSA or EC P-256 private or public key, nor a certificate, in PEM form"
    )]
    Pem { name: String, path: String },
    #[error("key {name}: {path} is not valid {format}")]
    Encoding {
        name: String,
        path: String,
        format: &'static str,
    },
    #[error("key {name}: {path} is empty")]
    Empty { name: String, path: String },
}

pub(super) fn read_key(name: &str, source: &KeySource) -> Result<SealedKey, KeyError> {
    let path = source.file.display().to_string();
    let bytes = Zeroizing::new(std::fs::read(&source.file).map_err(|e| KeyError::Io {
        name: name.to_owned(),
        path: path.clone(),
        source: e,
    })?);
    let encoding_error = |format| KeyError::Encoding {
        name: name.to_owned(),
        path: path.clone(),
        format,
    };
    let key = match source.format {
        KeyFormat::Pem => {
            let text = std::str::from_utf8(&bytes).map_err(|_| encoding_error("PEM"))?;
            parse_pem(text).ok_or_else(|| KeyError::Pem {
                name: name.to_owned(),
                path: path.clone(),
            })?
        }
        KeyFormat::Hex => SealedKey::Secret(Zeroizing::new(
            hex::decode(trimmed(&bytes)).map_err(|_| encoding_error("hex"))?,
        )),
        KeyFormat::Base64 => SealedKey::Secret(Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(trimmed(&bytes))
                .map_err(|_| encoding_error("base64"))?,
        )),
        KeyFormat::Raw => {
            let secret = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
            let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
            SealedKey::Secret(Zeroizing::new(secret.to_vec()))
        }
    };
    // Public keys are not secrets; everything else should be readable by the service only.
    let public = matches!(
        key,
        SealedKey::RsaPublic(_) | SealedKey::EcPublic(_) | SealedKey::Certificate(_)
    );
    if !public {
        warn_if_readable_by_others(name, &source.file);
    }
    if matches!(&key, SealedKey::Secret(s) if s.is_empty()) {
        return Err(KeyError::Empty {
            name: name.to_owned(),
            path,
        });
    }
    Ok(key)
}

fn trimmed(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Tries the PEM forms channels hand out, private keys first.
pub(crate) fn parse_pem(text: &str) -> Option<SealedKey> {
    if text.contains("-----BEGIN CERTIFICATE-----") {
        return certificate_pem(text);
    }
    if let Ok(key) = PrivateKey::from_pkcs8_pem(text) {
        return Some(SealedKey::RsaPrivate(Box::new(super::RsaSigner::new(key))));
    }
    if let Ok(key) = PrivateKey::from_pkcs1_pem(text) {
        return Some(SealedKey::RsaPrivate(Box::new(super::RsaSigner::new(key))));
    }
    if let Some(key) = ec_private_pem(text) {
        return Some(key);
    }
    if let Ok(key) = PublicKey::from_public_key_pem(text) {
        return Some(SealedKey::RsaPublic(Box::new(key)));
    }
    if let Ok(key) = PublicKey::from_pkcs1_pem(text) {
        return Some(SealedKey::RsaPublic(Box::new(key)));
    }
    ec_public_pem(text)
}

fn ec_private_pem(text: &str) -> Option<SealedKey> {
    let (label, document) = pkcs8::der::SecretDocument::from_pem(text).ok()?;
    if label != "PRIVATE KEY" {
        return None;
    }
    ec_private_pkcs8(document.as_bytes())
}

/// An EC P-256 private key from PKCS#8 DER (which must carry its public key).
pub(crate) fn ec_private_pkcs8(der: &[u8]) -> Option<SealedKey> {
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .ok()?;
    Some(SealedKey::EcPrivate(Box::new(pair)))
}

fn ec_public_pem(text: &str) -> Option<SealedKey> {
    let info = spki::SubjectPublicKeyInfoOwned::from_pem(text).ok()?;
    let curve = info
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
    if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
        return None;
    }
    ec_public_point(info.subject_public_key.raw_bytes())
}

/// A certificate, kept as DER once it parses as X.509.
fn certificate_pem(text: &str) -> Option<SealedKey> {
    use x509_parser::prelude::FromDer;
    let (_, pem) = x509_parser::pem::parse_x509_pem(text.as_bytes()).ok()?;
    if pem.label != "CERTIFICATE" {
        return None;
    }
    let (rest, _) = x509_parser::certificate::X509Certificate::from_der(&pem.contents).ok()?;
    rest.is_empty()
        .then(|| SealedKey::Certificate(pem.contents.into_boxed_slice()))
}

/// An EC P-256 public key from its uncompressed point (`04 || x || y`).
pub(crate) fn ec_public_point(point: &[u8]) -> Option<SealedKey> {
    (point.len() == 65 && point[0] == 4).then(|| SealedKey::EcPublic(point.into()))
}

/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, a.k.a. prime256v1 (RFC 5480).
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

#[cfg(unix)]
fn warn_if_readable_by_others(name: &str, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            key = name,
            path = %path.display(),
            "key file is readable by group or others; restrict it to the service user (chmod 600)"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_name: &str, _path: &Path) {}
