//! The operations a plugin may ask of a sealed key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use md5::Md5;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::SealedKey;
use crate::bindings::coffer::channel::sealed_keys::{
    AeadAlgorithm, DigestAlgorithm, SignatureAlgorithm,
};

/// A refused key operation, as reported to the plugin. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyOpError {
    WrongKind(&'static str),
    InvalidInput(&'static str),
    /// Why a certificate chain was not trusted, naming the certificate.
    UntrustedChain(String),
}

pub(crate) fn sign(
    key: &SealedKey,
    algorithm: SignatureAlgorithm,
    data: &[u8],
) -> Result<Vec<u8>, KeyOpError> {
    use SignatureAlgorithm as A;
    match (key, algorithm) {
        (SealedKey::RsaPrivate(k), A::RsaPkcs1Sha256) => k
            .sign_sha256(data)
            .map_err(|_| KeyOpError::InvalidInput("RSA signing failed")),
        (SealedKey::RsaPrivate(k), A::RsaPkcs1Sha1) => k
            .sign_sha1(data)
            .map_err(|_| KeyOpError::InvalidInput("RSA signing failed")),
        (SealedKey::Secret(s), A::HmacSha256) => Ok(hmac::<Hmac<Sha256>>(s, data)),
        (SealedKey::Secret(s), A::HmacSha512) => Ok(hmac::<Hmac<Sha512>>(s, data)),
        (SealedKey::Secret(s), A::HmacSha1) => Ok(hmac::<Hmac<Sha1>>(s, data)),
        (SealedKey::EcPrivate(k), A::EcdsaP256Sha256) => k
            .sign(&SystemRandom::new(), data)
            .map(|signature| signature.as_ref().to_vec())
            .map_err(|_| KeyOpError::InvalidInput("ECDSA signing failed")),
        (SealedKey::RsaPublic(_) | SealedKey::EcPublic(_), _) => {
            Err(KeyOpError::WrongKind("a public key cannot sign"))
        }
        (SealedKey::Certificate(_), _) => Err(KeyOpError::WrongKind(
            "a root certificate only anchors verify-with-chain",
        )),
        (SealedKey::RsaPrivate(_), _) => Err(KeyOpError::WrongKind("an RSA key signs only RSA")),
        (SealedKey::EcPrivate(_), _) => Err(KeyOpError::WrongKind("an EC key signs only ES256")),
        (SealedKey::Secret(_), _) => Err(KeyOpError::WrongKind("a secret signs only HMAC")),
    }
}

pub(crate) fn verify(
    key: &SealedKey,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, KeyOpError> {
    use SignatureAlgorithm as A;
    match (key, algorithm) {
        (SealedKey::RsaPublic(k), A::RsaPkcs1Sha256) => {
            Ok(k.pkcs1v15_verify::<Sha256>(data, signature).is_ok())
        }
        (SealedKey::RsaPublic(k), A::RsaPkcs1Sha1) => {
            Ok(k.pkcs1v15_verify::<Sha1>(data, signature).is_ok())
        }
        (SealedKey::Secret(s), A::HmacSha256) => {
            Ok(hmac_verify::<Hmac<Sha256>>(s, data, signature))
        }
        (SealedKey::Secret(s), A::HmacSha512) => {
            Ok(hmac_verify::<Hmac<Sha512>>(s, data, signature))
        }
        (SealedKey::Secret(s), A::HmacSha1) => Ok(hmac_verify::<Hmac<Sha1>>(s, data, signature)),
        (SealedKey::EcPublic(point), A::EcdsaP256Sha256) => {
            Ok(UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                .verify(data, signature)
                .is_ok())
        }
        (SealedKey::RsaPrivate(_) | SealedKey::EcPrivate(_), _) => Err(KeyOpError::WrongKind(
            "verify with the channel's public key, not a private key",
        )),
        (SealedKey::RsaPublic(_), _) => Err(KeyOpError::WrongKind("an RSA key verifies only RSA")),
        (SealedKey::EcPublic(_), _) => Err(KeyOpError::WrongKind("an EC key verifies only ES256")),
        (SealedKey::Certificate(_), _) => Err(KeyOpError::WrongKind(
            "a root certificate only anchors verify-with-chain",
        )),
        (SealedKey::Secret(_), _) => Err(KeyOpError::WrongKind("a secret verifies only HMAC")),
    }
}

pub(crate) fn decrypt(
    key: &SealedKey,
    algorithm: AeadAlgorithm,
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>, KeyOpError> {
    let SealedKey::Secret(secret) = key else {
        return Err(KeyOpError::WrongKind("AEAD needs a secret key"));
    };
    match algorithm {
        AeadAlgorithm::Aes256Gcm => {
            let cipher = Aes256Gcm::new_from_slice(secret)
                .map_err(|_| KeyOpError::WrongKind("AES-256-GCM needs a 32-byte key"))?;
            let nonce = Nonce::try_from(nonce)
                .map_err(|_| KeyOpError::InvalidInput("AES-256-GCM needs a 12-byte nonce"))?;
            let payload = Payload {
                msg: ciphertext,
                aad: associated_data,
            };
            cipher
                .decrypt(&nonce, payload)
                .map_err(|_| KeyOpError::InvalidInput("decryption failed: not authentic"))
        }
    }
}

/// digest(prefix || secret || suffix).
pub(crate) fn keyed_digest(
    key: &SealedKey,
    algorithm: DigestAlgorithm,
    prefix: &[u8],
    suffix: &[u8],
) -> Result<Vec<u8>, KeyOpError> {
    let SealedKey::Secret(secret) = key else {
        return Err(KeyOpError::WrongKind("a keyed digest needs a secret key"));
    };
    Ok(match algorithm {
        DigestAlgorithm::Md5 => digest3::<Md5>(prefix, secret, suffix),
        DigestAlgorithm::Sha1 => digest3::<Sha1>(prefix, secret, suffix),
        DigestAlgorithm::Sha256 => digest3::<Sha256>(prefix, secret, suffix),
        DigestAlgorithm::Sha512 => digest3::<Sha512>(prefix, secret, suffix),
    })
}

fn digest3<D: Digest>(a: &[u8], b: &[u8], c: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    d.update(a);
    d.update(b);
    d.update(c);
    d.finalize().to_vec()
}

fn hmac<M: Mac + KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time comparison, so a forger learns nothing from timing.
fn hmac_verify<M: Mac + KeyInit>(secret: &[u8], data: &[u8], signature: &[u8]) -> bool {
    let mut mac = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(data);
    mac.verify_slice(signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn secret(bytes: &[u8]) -> SealedKey {
        SealedKey::Secret(Zeroizing::new(bytes.to_vec()))
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231_case_2() {
        let mac = sign(
            &secret(b"Jefe"),
            SignatureAlgorithm::HmacSha256,
            b"what do ya want for nothing?",
        )
        .unwrap();
        assert_eq!(
            hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let key = secret(b"Jefe");
        let data = b"what do ya want for nothing?";
        assert_eq!(
            verify(&key, SignatureAlgorithm::HmacSha256, data, &mac),
            Ok(true)
        );
        let mut tampered = mac.clone();
        tampered[0] ^= 1;
        assert_eq!(
            verify(&key, SignatureAlgorithm::HmacSha256, data, &tampered),
            Ok(false)
        );
    }

    #[test]
    fn keyed_md5_appends_the_secret_between_prefix_and_suffix() {
        // md5("abc") = 900150983cd24fb0d6963f7d28e17f72: the secret "b" sits between "a" and "c".
        let d = keyed_digest(&secret(b"b"), DigestAlgorithm::Md5, b"a", b"c").unwrap();
        assert_eq!(hex::encode(d), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn aes_gcm_rejects_tampered_ciphertext_and_wrong_nonce_length() {
        let key = secret(&[7u8; 32]);
        let cipher = Aes256Gcm::new_from_slice(&[7u8; 32]).unwrap();
        let nonce = [1u8; 12];
        let sealed = cipher
            .encrypt(
                &Nonce::try_from(&nonce[..]).unwrap(),
                Payload {
                    msg: b"paid",
                    aad: b"ad",
                },
            )
            .unwrap();
        let opened = decrypt(&key, AeadAlgorithm::Aes256Gcm, &nonce, b"ad", &sealed).unwrap();
        assert_eq!(opened, b"paid");
        let mut tampered = sealed.clone();
        tampered[0] ^= 1;
        assert!(decrypt(&key, AeadAlgorithm::Aes256Gcm, &nonce, b"ad", &tampered).is_err());
        assert!(decrypt(&key, AeadAlgorithm::Aes256Gcm, &nonce, b"other", &sealed).is_err());
        assert!(decrypt(&key, AeadAlgorithm::Aes256Gcm, &nonce[..8], b"ad", &sealed).is_err());
    }

    #[test]
    fn secrets_cannot_do_rsa_and_public_keys_cannot_sign() {
        assert_eq!(
            sign(&secret(b"k"), SignatureAlgorithm::RsaPkcs1Sha256, b"x"),
            Err(KeyOpError::WrongKind("a secret signs only HMAC"))
        );
    }
}

#[cfg(test)]
mod openssl_vectors {
    //! Against keys and signatures made by `openssl` (see tests/data/README.md).

    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use base64::Engine as _;

    use super::*;
    use crate::keys::{KeyFormat, KeyRing, KeySource};

    fn data(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    fn ring() -> KeyRing {
        let pem = |file: &str| KeySource {
            file: data(file),
            format: KeyFormat::Pem,
        };
        let sources = BTreeMap::from([
            ("pkcs8".to_owned(), pem("test-rsa-private.pem")),
            ("pkcs1".to_owned(), pem("test-rsa-private-pkcs1.pem")),
            ("public".to_owned(), pem("test-rsa-public.pem")),
            ("ec-private".to_owned(), pem("test-ec-p256-private.pem")),
            ("ec-public".to_owned(), pem("test-ec-p256-public.pem")),
        ]);
        KeyRing::load(&sources).unwrap()
    }

    fn openssl_vector() -> (Vec<u8>, Vec<u8>) {
        let message = std::fs::read(data("rsa-message.txt")).unwrap();
        let text = std::fs::read_to_string(data("rsa-sha256-signature.b64")).unwrap();
        let signature = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .unwrap();
        (message, signature)
    }

    #[test]
    fn signs_exactly_like_openssl_from_either_pem_form() {
        let ring = ring();
        let (message, expected) = openssl_vector();
        for name in ["pkcs8", "pkcs1"] {
            let key = ring.get(name).unwrap();
            let signature = sign(key, SignatureAlgorithm::RsaPkcs1Sha256, &message).unwrap();
            assert_eq!(signature, expected, "{name}");
        }
    }

    #[test]
    fn sha256_signatures_come_from_ring_and_match_the_rsa_crate() {
        let ring = ring();
        let Some(SealedKey::RsaPrivate(signer)) = ring.get("pkcs8") else {
            panic!("the test key is an RSA private key");
        };
        assert!(signer.is_fast(), "a 2048-bit key must be signed by ring");
        let (message, expected) = openssl_vector();
        let slow = signer.to_portable();
        assert_eq!(slow.sign_sha256(&message).unwrap(), expected);
        assert_eq!(signer.sign_sha256(&message).unwrap(), expected);
        // SHA-1 goes through the rsa crate and verifies with the public key.
        let sha1 = SignatureAlgorithm::RsaPkcs1Sha1;
        let signature = sign(ring.get("pkcs8").unwrap(), sha1, &message).unwrap();
        assert_eq!(
            verify(ring.get("public").unwrap(), sha1, &message, &signature),
            Ok(true)
        );
    }

    #[test]
    fn verifies_openssl_signature_and_rejects_tampering() {
        let ring = ring();
        let public = ring.get("public").unwrap();
        let (message, signature) = openssl_vector();
        let alg = SignatureAlgorithm::RsaPkcs1Sha256;
        assert_eq!(verify(public, alg, &message, &signature), Ok(true));
        let mut tampered_message = message.clone();
        tampered_message[0] ^= 1;
        assert_eq!(
            verify(public, alg, &tampered_message, &signature),
            Ok(false)
        );
        assert_eq!(verify(public, alg, &message, b"short"), Ok(false));
        // The signature is over SHA-256, so checking it as SHA-1 must fail.
        let sha1 = SignatureAlgorithm::RsaPkcs1Sha1;
        assert_eq!(verify(public, sha1, &message, &signature), Ok(false));
        assert!(matches!(
            sign(public, alg, &message),
            Err(KeyOpError::WrongKind(_))
        ));
    }

    #[test]
    fn bad_key_files_are_named_without_leaking_content() {
        let sources = BTreeMap::from([(
            "broken".to_owned(),
            KeySource {
                file: data("rsa-message.txt"),
                format: KeyFormat::Pem,
            },
        )]);
        let error = KeyRing::load(&sources).unwrap_err().to_string();
        assert!(error.contains("broken"), "{error}");
        assert!(!error.contains("app_id"), "{error}");
    }

    #[test]
    fn es256_verifies_openssl_signature_and_rejects_tampering() {
        let keys = ring();
        let public = keys.get("ec-public").unwrap();
        assert!(matches!(public, SealedKey::EcPublic(_)), "{public:?}");
        let message = std::fs::read(data("es256-message.txt")).unwrap();
        let text = std::fs::read_to_string(data("es256-signature.hex")).unwrap();
        let signature = hex::decode(text.trim()).unwrap();
        let es256 = SignatureAlgorithm::EcdsaP256Sha256;
        assert_eq!(verify(public, es256, &message, &signature), Ok(true));
        let mut tampered = signature.clone();
        tampered[40] ^= 1;
        assert_eq!(verify(public, es256, &message, &tampered), Ok(false));
        assert_eq!(
            verify(public, es256, b"another message", &signature),
            Ok(false)
        );
        // A DER-encoded signature is not JWS's r || s.
        assert_eq!(verify(public, es256, &message, &signature[..63]), Ok(false));
    }

    #[test]
    fn es256_signatures_of_the_sealed_p8_key_verify_with_its_public_key() {
        let keys = ring();
        let (private, public) = (
            keys.get("ec-private").unwrap(),
            keys.get("ec-public").unwrap(),
        );
        let es256 = SignatureAlgorithm::EcdsaP256Sha256;
        let signature = sign(private, es256, b"header.claims").unwrap();
        assert_eq!(signature.len(), 64, "JWS's r || s");
        assert_eq!(
            verify(public, es256, b"header.claims", &signature),
            Ok(true)
        );
        // ECDSA is randomized: two signatures differ, both verify.
        let again = sign(private, es256, b"header.claims").unwrap();
        assert_ne!(signature, again);
        assert_eq!(verify(public, es256, b"header.claims", &again), Ok(true));
    }

    #[test]
    fn each_key_does_only_its_own_algorithms() {
        let keys = ring();
        let es256 = SignatureAlgorithm::EcdsaP256Sha256;
        let wrong = |key: &str, algorithm| {
            let key = keys.get(key).unwrap();
            matches!(sign(key, algorithm, b"x"), Err(KeyOpError::WrongKind(_)))
        };
        assert!(wrong("ec-private", SignatureAlgorithm::RsaPkcs1Sha256));
        assert!(wrong("ec-private", SignatureAlgorithm::HmacSha256));
        assert!(wrong("pkcs8", es256));
        assert!(wrong("ec-public", es256), "a public key cannot sign");
        assert!(matches!(
            verify(keys.get("ec-private").unwrap(), es256, b"x", &[0; 64]),
            Err(KeyOpError::WrongKind(_))
        ));
        assert!(matches!(
            verify(keys.get("public").unwrap(), es256, b"x", &[0; 64]),
            Err(KeyOpError::WrongKind(_))
        ));
        let secret = SealedKey::Secret(b"k".to_vec().into());
        assert!(matches!(
            sign(&secret, es256, b"x"),
            Err(KeyOpError::WrongKind(_))
        ));
    }
}
