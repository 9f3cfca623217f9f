//! Verifying a signature made by the leaf of a certificate chain, the chain first: how the App
//! Store signs transactions and notifications (ES256, `x5c` up to Apple's root) and UnionPay its
//! answers (RS256, `signPubKeyCert` up to UnionPay's root). The plugin hands over the chain it
//! received; the host trusts it only if it leads to the root the operator configured, and only
//! then asks the leaf's key about the signature.
//!
//! A channel signs with the same chain for months, and verifying it costs three ECDSA P-384
//! verifications (about 2.5 ms): a chain verified once is remembered ([`TrustedChains`]) with
//! the window in which all its certificates are valid, so a later payload is checked against
//! that window and its leaf's signature only.

use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::time::ASN1Time;
use x509_parser::x509::SubjectPublicKeyInfo;

use sha2::{Digest, Sha256};

use super::SealedKey;
use super::ops::KeyOpError;
use crate::bindings::coffer::channel::sealed_keys::SignatureAlgorithm;

/// More certificates than any channel sends; bounds the work a plugin can ask for.
const MAX_CHAIN: usize = 5;

/// id-ecPublicKey and secp256r1 (RFC 5480), for an ES256 leaf.
const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const P256: &str = "1.2.840.10045.3.1.7";
/// rsaEncryption (RFC 8017), for an RS256 leaf.
const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";

/// What the chain must satisfy besides its signatures (the contract's `chain-policy`).
pub(crate) struct ChainPolicy<'a> {
    pub length: usize,
    pub required_extensions: &'a [Vec<String>],
    /// Unix seconds.
    pub valid_at: i64,
}

/// Chains verified before, by a digest of everything their verdict depends on but the time (the
/// root, the certificates, the policy's length and extensions), with the window `[from, to]`
/// (Unix seconds) in which every certificate of the chain is valid. Cheap to clone.
#[derive(Clone)]
pub(crate) struct TrustedChains(moka::sync::Cache<[u8; 32], (i64, i64)>);

impl TrustedChains {
    pub fn new(capacity: u64) -> Self {
        Self(moka::sync::Cache::new(capacity))
    }

    fn key(root: &[u8], chain: &[Vec<u8>], policy: &ChainPolicy<'_>) -> [u8; 32] {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        };
        part(root);
        chain.iter().for_each(|der| part(der));
        part(&(policy.length as u64).to_be_bytes());
        for (position, oids) in policy.required_extensions.iter().enumerate() {
            part(&(position as u64).to_be_bytes());
            oids.iter().for_each(|oid| part(oid.as_bytes()));
        }
        digest.finalize().into()
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.0.run_pending_tasks();
        self.0.entry_count()
    }
}

fn untrusted(why: String) -> KeyOpError {
    KeyOpError::UntrustedChain(why)
}

/// Ok(true) when the chain leads to `root` under `policy` and its leaf's key verifies
/// `signature` over `data`; Ok(false) when only the signature fails.
pub(crate) fn verify_with_chain(
    trusted: &TrustedChains,
    root: &SealedKey,
    chain: &[Vec<u8>],
    policy: &ChainPolicy<'_>,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, KeyOpError> {
    let SealedKey::Certificate(root) = root else {
        return Err(KeyOpError::WrongKind(
            "verify-with-chain needs a root certificate as its root key",
        ));
    };
    let key = TrustedChains::key(root, chain, policy);
    let remembered = trusted
        .0
        .get(&key)
        .is_some_and(|(from, to)| (from..=to).contains(&policy.valid_at));
    if !remembered {
        let window = verify_chain(root, chain, policy)?;
        trusted.0.insert(key, window);
    }
    // A verified (or remembered) chain has its leaf first.
    let leaf = parse(&chain[0]).map_err(|why| untrusted(format!("certificate 0: {why}")))?;
    leaf_verifies(leaf.public_key(), algorithm, data, signature)
}

/// Verifies the chain itself; answers the window in which all its certificates are valid.
fn verify_chain(
    root: &[u8],
    chain: &[Vec<u8>],
    policy: &ChainPolicy<'_>,
) -> Result<(i64, i64), KeyOpError> {
    let root = parse(root).map_err(|_| untrusted("the configured root is not X.509".into()))?;
    if chain.len() != policy.length || chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(untrusted(format!(
            "the chain has {} certificates, the policy {} (at most {MAX_CHAIN})",
            chain.len(),
            policy.length
        )));
    }
    let certificates = chain
        .iter()
        .enumerate()
        .map(|(i, der)| parse(der).map_err(|why| untrusted(format!("certificate {i}: {why}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let at = ASN1Time::from_timestamp(policy.valid_at)
        .map_err(|_| KeyOpError::InvalidInput("valid-at is not a time"))?;
    for (i, certificate) in certificates.iter().enumerate() {
        let issuer = certificates.get(i + 1).unwrap_or(&root);
        check_link(i, certificate, issuer, at)?;
        if i > 0 && !is_ca(certificate) {
            return Err(untrusted(format!(
                "certificate {i} ({}) issues certificates but is no CA",
                certificate.subject()
            )));
        }
        let required = policy
            .required_extensions
            .get(i)
            .map_or(&[][..], Vec::as_slice);
        if let Some(missing) = required.iter().find(|oid| !has_extension(certificate, oid)) {
            return Err(untrusted(format!(
                "certificate {i} ({}) lacks extension {missing}",
                certificate.subject()
            )));
        }
    }
    let from = certificates
        .iter()
        .map(|c| c.validity().not_before.timestamp())
        .max();
    let to = certificates
        .iter()
        .map(|c| c.validity().not_after.timestamp())
        .min();
    Ok((from.unwrap_or(i64::MAX), to.unwrap_or(i64::MIN)))
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], certificate)) => Ok(certificate),
        Ok(_) => Err("trailing bytes after the certificate".into()),
        Err(error) => Err(format!("not X.509 DER: {error}")),
    }
}

/// `certificate` is valid at `at`, names `issuer` as its issuer and carries its signature.
fn check_link(
    i: usize,
    certificate: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    at: ASN1Time,
) -> Result<(), KeyOpError> {
    let subject = certificate.subject();
    if !certificate.validity().is_valid_at(at) {
        return Err(untrusted(format!(
            "certificate {i} ({subject}) is not valid at {at}"
        )));
    }
    if certificate.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(untrusted(format!(
            "certificate {i} ({subject}) is issued by {}, not {}",
            certificate.issuer(),
            issuer.subject()
        )));
    }
    certificate
        .verify_signature(Some(issuer.public_key()))
        .map_err(|_| {
            untrusted(format!(
                "certificate {i} ({subject}) is not signed by {}",
                issuer.subject()
            ))
        })
}

fn is_ca(certificate: &X509Certificate<'_>) -> bool {
    matches!(certificate.basic_constraints(), Ok(Some(constraints)) if constraints.value.ca)
}

fn has_extension(certificate: &X509Certificate<'_>, oid: &str) -> bool {
    certificate
        .extensions()
        .iter()
        .any(|extension| extension.oid.to_id_string() == oid)
}

fn leaf_verifies(
    key: &SubjectPublicKeyInfo<'_>,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> Result<bool, KeyOpError> {
    let key_type = key.algorithm.algorithm.to_id_string();
    let curve = key
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string());
    let verifier: &'static dyn VerificationAlgorithm = match algorithm {
        SignatureAlgorithm::EcdsaP256Sha256
            if key_type == EC_PUBLIC_KEY && curve.as_deref() == Some(P256) =>
        {
            &ECDSA_P256_SHA256_FIXED
        }
        SignatureAlgorithm::RsaPkcs1Sha256 if key_type == RSA_ENCRYPTION => {
            &RSA_PKCS1_2048_8192_SHA256
        }
        SignatureAlgorithm::EcdsaP256Sha256 | SignatureAlgorithm::RsaPkcs1Sha256 => {
            return Err(KeyOpError::WrongKind(
                "the leaf's key is not of the kind the algorithm needs",
            ));
        }
        _ => {
            return Err(KeyOpError::WrongKind(
                "verify-with-chain verifies ES256 or RS256 only",
            ));
        }
    };
    let public_key = UnparsedPublicKey::new(verifier, &key.subject_public_key.data);
    Ok(public_key.verify(data, signature).is_ok())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::keys::load::parse_pem;

    /// 2027-06-01T00:00:00Z: within every test certificate's validity.
    const VALID_AT: i64 = 1_811_808_000;

    fn pem(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/chain")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    fn der(name: &str) -> Vec<u8> {
        let text = pem(name);
        let (_, block) = x509_parser::pem::parse_x509_pem(text.as_bytes()).unwrap();
        block.contents
    }

    fn apple_policy(valid_at: i64) -> ChainPolicy<'static> {
        static OIDS: std::sync::OnceLock<Vec<Vec<String>>> = std::sync::OnceLock::new();
        let required_extensions = OIDS.get_or_init(|| {
            vec![
                vec!["1.2.840.113635.100.6.11.1".to_owned()],
                vec!["1.2.840.113635.100.6.2.1".to_owned()],
            ]
        });
        ChainPolicy {
            length: 3,
            required_extensions,
            valid_at,
        }
    }

    /// The root as an operator configures it, and a payload signed by the leaf's key.
    fn signed(data: &[u8]) -> (SealedKey, Vec<u8>) {
        let root = parse_pem(&pem("root.pem")).unwrap();
        let leaf_key = parse_pem(&pem("leaf-private.pem")).unwrap();
        let signature =
            super::super::sign(&leaf_key, SignatureAlgorithm::EcdsaP256Sha256, data).unwrap();
        (root, signature)
    }

    fn check(chain: &[&str], policy: &ChainPolicy<'_>, data: &[u8]) -> Result<bool, KeyOpError> {
        let (root, signature) = signed(b"header.payload");
        let chain: Vec<Vec<u8>> = chain.iter().map(|name| der(name)).collect();
        verify_with_chain(
            &TrustedChains::new(16),
            &root,
            &chain,
            policy,
            SignatureAlgorithm::EcdsaP256Sha256,
            data,
            &signature,
        )
    }

    fn refused(result: Result<bool, KeyOpError>, why: &str) {
        match result {
            Err(KeyOpError::UntrustedChain(reason)) => {
                assert!(reason.contains(why), "{reason:?} should say {why:?}")
            }
            other => panic!("expected an untrusted chain ({why}), got {other:?}"),
        }
    }

    const GOOD: [&str; 3] = ["leaf.pem", "intermediate.pem", "root.pem"];

    #[test]
    fn a_chain_to_the_configured_root_lets_its_leaf_verify() {
        let policy = apple_policy(VALID_AT);
        assert_eq!(check(&GOOD, &policy, b"header.payload"), Ok(true));
        assert_eq!(
            check(&GOOD, &policy, b"header.tampered"),
            Ok(false),
            "the chain holds, the signature does not"
        );
    }

    #[test]
    fn a_chain_of_another_root_is_untrusted_even_with_the_same_names() {
        let policy = apple_policy(VALID_AT);
        let rogue = [
            "leaf-under-rogue.pem",
            "rogue-intermediate.pem",
            "rogue-root.pem",
        ];
        refused(check(&rogue, &policy, b"header.payload"), "not signed by");
        // A genuine leaf and intermediate ending in a self-signed look-alike root.
        let mixed = ["leaf.pem", "intermediate.pem", "rogue-root.pem"];
        refused(check(&mixed, &policy, b"header.payload"), "not signed by");
    }

    #[test]
    fn the_chain_must_have_exactly_the_policy_s_length() {
        let policy = apple_policy(VALID_AT);
        refused(
            check(
                &["leaf.pem", "intermediate.pem"],
                &policy,
                b"header.payload",
            ),
            "2 certificates",
        );
        refused(
            check(
                &["leaf.pem", "intermediate.pem", "root.pem", "root.pem"],
                &policy,
                b"header.payload",
            ),
            "4 certificates",
        );
    }

    #[test]
    fn every_certificate_must_be_valid_at_the_time_asked() {
        // 2025-01-01, before the test certificates were made; 2040-01-01, after they expire.
        for at in [1_735_689_600, 2_208_988_800] {
            refused(
                check(&GOOD, &apple_policy(at), b"header.payload"),
                "is not valid at",
            );
        }
    }

    #[test]
    fn required_extensions_and_ca_issuers_are_enforced() {
        let policy = apple_policy(VALID_AT);
        refused(
            check(
                &["leaf-without-oid.pem", "intermediate.pem", "root.pem"],
                &policy,
                b"header.payload",
            ),
            "lacks extension 1.2.840.113635.100.6.11.1",
        );
        refused(
            check(
                &["leaf-under-not-a-ca.pem", "not-a-ca.pem", "root.pem"],
                &policy,
                b"header.payload",
            ),
            "is no CA",
        );
    }

    #[test]
    fn garbage_and_wrong_kinds_are_refused_not_trusted() {
        let policy = apple_policy(VALID_AT);
        let (root, signature) = signed(b"x");
        let garbage = vec![vec![0x30, 0x03, 0x02, 0x01, 0x01]; 3];
        refused(
            verify_with_chain(
                &TrustedChains::new(16),
                &root,
                &garbage,
                &policy,
                SignatureAlgorithm::EcdsaP256Sha256,
                b"x",
                &signature,
            ),
            "certificate 0",
        );
        let chain: Vec<Vec<u8>> = GOOD.iter().map(|name| der(name)).collect();
        let not_a_root = SealedKey::Secret(b"k".to_vec().into());
        assert!(matches!(
            verify_with_chain(
                &TrustedChains::new(16),
                &not_a_root,
                &chain,
                &policy,
                SignatureAlgorithm::EcdsaP256Sha256,
                b"x",
                &signature
            ),
            Err(KeyOpError::WrongKind(_))
        ));
        // The leaf holds a P-256 key: it cannot be asked about an RSA signature.
        assert!(matches!(
            verify_with_chain(
                &TrustedChains::new(16),
                &root,
                &chain,
                &policy,
                SignatureAlgorithm::RsaPkcs1Sha256,
                b"x",
                &signature
            ),
            Err(KeyOpError::WrongKind(_))
        ));
    }

    #[test]
    fn a_remembered_chain_still_checks_the_time_the_signature_and_nothing_else() {
        let trusted = TrustedChains::new(16);
        let (root, signature) = signed(b"header.payload");
        let chain: Vec<Vec<u8>> = GOOD.iter().map(|name| der(name)).collect();
        let es256 = SignatureAlgorithm::EcdsaP256Sha256;
        let run = |policy: &ChainPolicy<'_>, data: &[u8]| {
            verify_with_chain(&trusted, &root, &chain, policy, es256, data, &signature)
        };
        assert_eq!(run(&apple_policy(VALID_AT), b"header.payload"), Ok(true));
        assert_eq!(trusted.len(), 1, "verified once, remembered");
        // From memory: the signature is still checked, and so is the time.
        assert_eq!(
            run(&apple_policy(VALID_AT + 86_400), b"header.payload"),
            Ok(true)
        );
        assert_eq!(run(&apple_policy(VALID_AT), b"header.tampered"), Ok(false));
        refused(
            run(&apple_policy(2_208_988_800), b"header.payload"),
            "is not valid at",
        );
        // Another chain, or the same chain under another policy, is verified afresh.
        let other: Vec<Vec<u8>> = ["leaf-without-oid.pem", "intermediate.pem", "root.pem"]
            .iter()
            .map(|name| der(name))
            .collect();
        refused(
            verify_with_chain(
                &trusted,
                &root,
                &other,
                &apple_policy(VALID_AT),
                es256,
                b"header.payload",
                &signature,
            ),
            "lacks extension",
        );
        let stricter = ChainPolicy {
            length: 2,
            ..apple_policy(VALID_AT)
        };
        refused(run(&stricter, b"header.payload"), "3 certificates");
        assert_eq!(trusted.len(), 1, "only verified chains are remembered");
    }
}
