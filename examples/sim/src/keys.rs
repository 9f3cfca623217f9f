//! The simulator's keys. Generated fresh (nothing secret is committed) and written out in the
//! forms Coffer's configuration loads.

use std::path::Path;

/// Every key the simulated channels and their merchant (Coffer) use.
#[derive(Clone)]
pub struct SimKeys {
    /// CaresPay's shared md5Key.
    pub carespay_md5: String,
}

impl SimKeys {
    pub fn generate() -> Self {
        Self {
            carespay_md5: random_hex(16),
        }
    }

    /// Writes the merchant's side of every key into `dir` (mode 0600), as Coffer's
    /// `[channels.*.keys]` sections expect them:
    /// - `carespay-md5.key` (raw)
    pub fn write_for_coffer(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        write_private(&dir.join("carespay-md5.key"), self.carespay_md5.as_bytes())?;
        Ok(())
    }
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
