//! The JWT secret: from configuration, or generated once into the data directory.

use std::path::Path;

use anyhow::Context;
use secrecy::SecretString;

use crate::config::Settings;

/// The JWT secret: from configuration, or (embedded mode only) generated once and kept in
/// the data directory so tokens survive restarts.
pub fn jwt_secret(settings: &Settings) -> anyhow::Result<SecretString> {
    if let Some(secret) = &settings.jwt_secret {
        return Ok(secret.clone());
    }
    let path = settings.data_dir.join("jwt-secret");
    load_or_create_secret(&path)
}

fn load_or_create_secret(path: &Path) -> anyhow::Result<SecretString> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Ok(existing) = std::fs::read_to_string(path) {
        return Ok(SecretString::from(existing.trim().to_owned()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no OS randomness: {e}"))?;
    let secret = hex::encode(bytes);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(secret.as_bytes())?;
    Ok(SecretString::from(secret))
}
