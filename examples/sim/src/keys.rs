//! The simulator's keys. Generated fresh at start (nothing secret is committed) and written
//! out in the forms Coffer's configuration loads.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::{PrivateKey, PublicKey};
use sha2::Sha256;

/// The serial of the simulated WeChat Pay platform key. Not a secret: fixed, so configurations
/// can name it.
pub const WECHAT_PLATFORM_SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1";

/// Every key the simulated channels and their merchant (Coffer) use.
#[derive(Clone)]
pub struct SimKeys {
    /// CaresPay's shared md5Key.
    pub carespay_md5: String,
    /// The merchant's Alipay application key: Coffer signs with it, Alipay verifies.
    pub alipay_app: SigningKey,
    /// Alipay's own key: Alipay signs answers and notifications, Coffer verifies.
    pub alipay_platform: SigningKey,
    /// The merchant's WeChat Pay API key: Coffer signs requests.
    pub wechat_merchant: SigningKey,
    /// WeChat Pay's platform key: signs answers and notifications.
    pub wechat_platform: SigningKey,
    /// The platform certificate serial number Coffer is configured with.
    pub wechat_platform_serial: String,
    /// The 32-character APIv3 key that encrypts notification resources.
    pub wechat_api_v3_key: String,
    /// The merchant's App Store in-app purchase key (`.p8`): Coffer signs API tokens.
    pub appstore_api_key: Arc<rcgen::KeyPair>,
    /// The certificates the simulated App Store signs with.
    pub appstore: Arc<crate::appstore::chain::AppStoreCerts>,
    /// The merchant's Google service account key: Coffer signs token grants.
    pub google_service_account: SigningKey,
    /// Google's key for Pub/Sub push tokens (key id `googleplay::PUSH_KID`).
    pub google_push: SigningKey,
    /// The merchant's UnionPay signing key: Coffer signs requests.
    pub unionpay_merchant: SigningKey,
    /// UnionPay's CA and signing certificates.
    pub unionpay: Arc<crate::unionpay::UnionPayCerts>,
}

/// An RSA key, held twice: as the `rsa` crate's key (encodings, verification) and as `ring`'s
/// key pair, which signs four times faster, so that a benchmark measures Coffer, not the
/// simulator's signatures.
#[derive(Clone)]
pub struct SigningKey {
    key: PrivateKey,
    fast: Arc<RsaKeyPair>,
}

impl std::ops::Deref for SigningKey {
    type Target = PrivateKey;

    fn deref(&self) -> &PrivateKey {
        &self.key
    }
}

fn rsa_2048() -> SigningKey {
    let key = PrivateKey::new(&mut getrandom::SysRng, 2048).expect("RSA key generation");
    let der = key.to_pkcs8_der().expect("PKCS#8 encoding");
    let fast = RsaKeyPair::from_pkcs8(der.as_bytes()).expect("ring accepts the key");
    SigningKey {
        key,
        fast: Arc::new(fast),
    }
}

impl SimKeys {
    pub fn generate() -> Self {
        Self {
            carespay_md5: random_hex(16),
            alipay_app: rsa_2048(),
            alipay_platform: rsa_2048(),
            wechat_merchant: rsa_2048(),
            wechat_platform: rsa_2048(),
            wechat_platform_serial: WECHAT_PLATFORM_SERIAL.to_owned(),
            wechat_api_v3_key: random_hex(16),
            appstore_api_key: Arc::new(
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .expect("P-256 key generation"),
            ),
            appstore: crate::appstore::chain::AppStoreCerts::generate(),
            google_service_account: rsa_2048(),
            google_push: rsa_2048(),
            unionpay_merchant: rsa_2048(),
            unionpay: crate::unionpay::UnionPayCerts::generate(rsa_2048),
        }
    }

    /// The public half of the App Store API key (an uncompressed P-256 point).
    pub fn appstore_api_public(&self) -> &[u8] {
        self.appstore_api_key.public_key_raw()
    }

    /// Writes the merchant's side of every key into `dir` (private files mode 0600), as
    /// Coffer's `[channels.*.keys]` sections load them:
    /// - `carespay-md5.key` (raw)
    /// - `alipay-app-private.pem`, `alipay-public.pem` (pem)
    /// - `wechat-merchant-private.pem`, `wechat-platform-public.pem` (pem),
    ///   `wechat-api-v3.key` (raw)
    /// - `wechat-platform-serial.txt`: the serial to put in the `platform-serial` setting
    /// - `appstore-api-key.p8` (pem), `appstore-root.pem` (pem: the root certificate to trust)
    /// - `googleplay-service-account.pem`, `googleplay-push-simkid1.pem` (pem)
    /// - `unionpay-merchant-private.pem`, `unionpay-ca.pem` (pem)
    pub fn write_for_coffer(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let private_pem = |k: &PrivateKey| {
            k.to_pkcs8_pem(LineEnding::LF)
                .expect("PEM encoding")
                .to_string()
        };
        let public_pem = |k: &PrivateKey| {
            PublicKey::from(k)
                .to_public_key_pem(LineEnding::LF)
                .expect("PEM encoding")
        };
        write_private(&dir.join("carespay-md5.key"), self.carespay_md5.as_bytes())?;
        write_private(
            &dir.join("alipay-app-private.pem"),
            private_pem(&self.alipay_app).as_bytes(),
        )?;
        std::fs::write(
            dir.join("alipay-public.pem"),
            public_pem(&self.alipay_platform),
        )?;
        write_private(
            &dir.join("wechat-merchant-private.pem"),
            private_pem(&self.wechat_merchant).as_bytes(),
        )?;
        std::fs::write(
            dir.join("wechat-platform-public.pem"),
            public_pem(&self.wechat_platform),
        )?;
        write_private(
            &dir.join("wechat-api-v3.key"),
            self.wechat_api_v3_key.as_bytes(),
        )?;
        std::fs::write(
            dir.join("wechat-platform-serial.txt"),
            &self.wechat_platform_serial,
        )?;
        write_private(
            &dir.join("appstore-api-key.p8"),
            self.appstore_api_key.serialize_pem().as_bytes(),
        )?;
        std::fs::write(dir.join("appstore-root.pem"), &self.appstore.root_pem)?;
        write_private(
            &dir.join("googleplay-service-account.pem"),
            private_pem(&self.google_service_account).as_bytes(),
        )?;
        std::fs::write(
            dir.join(format!(
                "googleplay-push-{}.pem",
                crate::googleplay::PUSH_KID
            )),
            public_pem(&self.google_push),
        )?;
        write_private(
            &dir.join("unionpay-merchant-private.pem"),
            private_pem(&self.unionpay_merchant).as_bytes(),
        )?;
        std::fs::write(dir.join("unionpay-ca.pem"), &self.unionpay.ca_pem)?;
        Ok(())
    }
}

/// RSASSA-PKCS1-v1_5 with SHA-256, base64: the signature of Alipay RSA2 and WeChat Pay v3.
pub fn sign_sha256_base64(key: &SigningKey, message: &[u8]) -> String {
    let mut signature = vec![0; key.fast.public().modulus_len()];
    key.fast
        .sign(
            &RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .expect("RSA signing");
    base64::engine::general_purpose::STANDARD.encode(signature)
}

/// Checks a base64 RSA-SHA256 signature with the public half of `key`.
pub fn verify_sha256_base64(key: &PrivateKey, message: &[u8], signature: &str) -> bool {
    let Ok(signature) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    PublicKey::from(key)
        .pkcs1v15_verify::<Sha256>(message, &signature)
        .is_ok()
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("OS randomness");
    hex::encode(buf)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Days since 1970-01-01 → "YYYY-MM-DD" (proleptic Gregorian).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
