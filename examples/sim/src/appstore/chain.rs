//! The simulated App Store's certificates: a test root, an intermediate carrying Apple's WWDR
//! OID and a leaf carrying the receipt-signing OID, as Apple's chain has them, generated fresh
//! at start (Coffer trusts the test root, never Apple's). A rogue root signs look-alike chains
//! for forgeries.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType, IsCa, KeyPair,
    PKCS_ECDSA_P256_SHA256,
};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::Value;

const LEAF_OID: &[u64] = &[1, 2, 840, 113635, 100, 6, 11, 1];
const INTERMEDIATE_OID: &[u64] = &[1, 2, 840, 113635, 100, 6, 2, 1];

/// A chain that signs payloads: its certificates (DER, leaf first) and the leaf's key.
pub struct SigningChain {
    pub x5c: Vec<Vec<u8>>,
    leaf: EcdsaKeyPair,
}

/// Every chain the simulated App Store signs with.
pub struct AppStoreCerts {
    /// The root Coffer is configured to trust (PEM).
    pub root_pem: String,
    pub genuine: SigningChain,
    /// Leaf, intermediate and root made to look the same, under a root nobody trusts.
    pub rogue: SigningChain,
    /// One self-signed certificate, three times.
    pub self_signed: SigningChain,
}

fn params(name: &str, ca: bool, oid: Option<&[u64]>) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names to check");
    params
        .distinguished_name
        .push(DnType::CommonName, name.to_owned());
    if ca {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    }
    if let Some(oid) = oid {
        // Apple's extensions carry an ASN.1 NULL.
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(oid, vec![0x05, 0x00]));
    }
    params
}

fn key() -> KeyPair {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key generation")
}

fn signer(key: &KeyPair) -> EcdsaKeyPair {
    EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &key.serialize_der(),
        &ring::rand::SystemRandom::new(),
    )
    .expect("ring takes rcgen's PKCS#8")
}

/// Root, intermediate and leaf under `root_name`; returns the chain and the root's PEM.
fn chain(root_name: &str) -> (SigningChain, String) {
    let root = CertifiedIssuer::self_signed(params(root_name, true, None), key()).expect("root");
    let intermediate = CertifiedIssuer::signed_by(
        params(
            "Sim Worldwide Developer Relations",
            true,
            Some(INTERMEDIATE_OID),
        ),
        key(),
        &root,
    )
    .expect("intermediate");
    let leaf_key = key();
    let leaf = params("Sim App Store Receipt Signing", false, Some(LEAF_OID))
        .signed_by(&leaf_key, &intermediate)
        .expect("leaf");
    let x5c = vec![
        leaf.der().to_vec(),
        intermediate.der().to_vec(),
        root.der().to_vec(),
    ];
    (
        SigningChain {
            x5c,
            leaf: signer(&leaf_key),
        },
        root.pem(),
    )
}

impl AppStoreCerts {
    pub fn generate() -> Arc<Self> {
        let (genuine, root_pem) = chain("Coffer Sim Root CA - G3");
        let (rogue, _) = chain("Coffer Sim Root CA - G3");
        let lone_key = key();
        let lone = params("Sim App Store Receipt Signing", true, Some(LEAF_OID))
            .self_signed(&lone_key)
            .expect("self-signed");
        let self_signed = SigningChain {
            x5c: vec![lone.der().to_vec(); 3],
            leaf: signer(&lone_key),
        };
        Arc::new(Self {
            root_pem,
            genuine,
            rogue,
            self_signed,
        })
    }
}

impl SigningChain {
    /// A compact JWS (ES256, `x5c`) of `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let x5c: Vec<String> = self.x5c.iter().map(|der| STANDARD.encode(der)).collect();
        let header = serde_json::json!({ "alg": "ES256", "x5c": x5c });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .leaf
            .sign(&ring::rand::SystemRandom::new(), input.as_bytes())
            .expect("ECDSA signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}
