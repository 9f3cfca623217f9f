//! Apple's signed payloads: a JWS whose `x5c` holds exactly three certificates (leaf, Apple's
//! WWDR intermediate, a certificate signed by the root), verified by the host up to the root
//! configured as `apple-root`, with Apple's extension OIDs on leaf and intermediate and every
//! certificate valid at the payload's own `signedDate`. `alg` is pinned to ES256.

use coffer_plugin_sdk::jws::Jws;
use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::{self as sdk, *};

/// Apple's OIDs: the leaf (App Store receipt signing), the intermediate (WWDR CA).
const LEAF_OID: &str = "1.2.840.113635.100.6.11.1";
const INTERMEDIATE_OID: &str = "1.2.840.113635.100.6.2.1";

/// The claims of an Apple JWS, once its chain and signature hold.
pub fn verified_claims(compact: &str) -> Result<Value, ChannelError> {
    let jws = Jws::parse(compact)?;
    jws.require_alg("ES256")?;
    let chain = jws.x5c()?;
    if chain.len() != 3 {
        return Err(bad_signature(format!(
            "x5c has {} certificates, Apple signs with 3",
            chain.len()
        )));
    }
    let claims = jws.claims()?;
    let signed_ms = claims["signedDate"]
        .as_i64()
        .ok_or_else(|| malformed("the signed payload has no signedDate"))?;
    let policy = ChainPolicy {
        length: 3,
        required_extensions: vec![vec![LEAF_OID.into()], vec![INTERMEDIATE_OID.into()]],
        valid_at: signed_ms.div_euclid(1000),
    };
    let signed = sdk::keys::verify_with_chain(
        "apple-root",
        &chain,
        &policy,
        SignatureAlgorithm::EcdsaP256Sha256,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )?;
    if !signed {
        return Err(bad_signature(
            "the certificate's key did not sign this payload",
        ));
    }
    Ok(claims)
}

/// Refuses a payload for another app or environment than this channel's.
pub fn require_app_and_environment(claims: &Value) -> Result<(), ChannelError> {
    let bundle_id = sdk::setting("bundle-id")?;
    let environment = sdk::setting("environment")?;
    match claims["bundleId"].as_str() {
        Some(found) if found == bundle_id => {}
        found => {
            return Err(bad_signature(format!(
                "signed for bundle {found:?}, this channel is {bundle_id:?}"
            )));
        }
    }
    match claims["environment"].as_str() {
        Some(found) if found == environment => Ok(()),
        found => Err(bad_signature(format!(
            "signed in environment {found:?}, this channel is {environment:?}"
        ))),
    }
}
