//! The deployment's content hash key: a file of 64 hexadecimal digits (32
//! random bytes), by default `content-hash.key` in the data directory,
//! created with mode 0600 on first start and read on every later one. It
//! is kept out of the store on purpose: whoever holds only the database
//! cannot test guesses of a record's discarded fields against its hash.

use anyhow::Context;
use istv_aggregate::ContentKey;
use std::io::Write;
use std::path::Path;

/// The file name in the data directory.
pub const FILE_NAME: &str = "content-hash.key";

/// Reads the key at `path`, or creates it (and its directory) when there
/// is no file there yet. Returns the key and whether it was created.
pub fn load_or_create(path: &Path) -> anyhow::Result<(ContentKey, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok((parse(path, &text)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot read the content hash key {}: istv needs it to tell re-sent records \
                     from changed ones (restore it from a backup, or fix its permissions)",
                    path.display()
                )
            })
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut bytes = [0u8; ContentKey::LEN];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        // Another process made it first: use that one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the content hash key {}", path.display()))?;
            return Ok((parse(path, &text)?, false));
        }
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot create the content hash key {}", path.display()))
        }
    };
    file.write_all(format!("{}\n", ContentKey::hex(&bytes)).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the content hash key {}", path.display()))?;
    Ok((ContentKey::new(bytes), true))
}

/// Reads the key at `path`, which must exist: for a service that makes
/// content hashes of a deployment whose key was made elsewhere (`istv
/// geocode`), where a new key would silently make every re-sent record a
/// correction.
pub fn load(path: &Path) -> anyhow::Result<ContentKey> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the content hash key {}: give the deployment's key (--content-key-file), \
             the one istv serve or istv ingest made",
            path.display()
        )
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> anyhow::Result<ContentKey> {
    ContentKey::from_hex(text).with_context(|| {
        format!(
            "the content hash key {} is damaged: expected 64 hexadecimal digits",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use istv_aggregate::content_hash;

    #[test]
    fn made_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data").join(FILE_NAME);
        let (first, created) = load_or_create(&path).unwrap();
        assert!(created);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text[..64].bytes().all(|b| b.is_ascii_hexdigit()) && text.ends_with('\n'));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        let parts = ["RJ1", "A-1"];
        assert_eq!(content_hash(&first, &parts), content_hash(&again, &parts));
        // Another data directory, another key.
        let (other, _) = load_or_create(&dir.path().join("other").join(FILE_NAME)).unwrap();
        assert_ne!(content_hash(&first, &parts), content_hash(&other, &parts));
    }

    #[test]
    fn unreadable_or_damaged_keys_stop_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read.
        let path = dir.path().join(FILE_NAME);
        std::fs::create_dir(&path).unwrap();
        let e = format!("{:#}", load_or_create(&path).unwrap_err());
        assert!(e.starts_with("cannot read the content hash key"), "{e}");
        let damaged = dir.path().join("damaged.key");
        std::fs::write(&damaged, "not a key\n").unwrap();
        let e = format!("{:#}", load_or_create(&damaged).unwrap_err());
        assert!(
            e.contains("is damaged: expected 64 hexadecimal digits"),
            "{e}"
        );
        // Left as it was.
        assert_eq!(std::fs::read_to_string(&damaged).unwrap(), "not a key\n");
    }
}
