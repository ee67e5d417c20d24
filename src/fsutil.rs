//! Small file-system helpers used across modules.

use std::path::Path;

use anyhow::Context as _;

/// Writes `bytes` to `path` readable and writable by the owner only (mode 0600): for keys,
/// tokens and kubeconfigs. The file is written beside `path` and renamed over it, so a reader
/// never sees half a credential and an existing file with wider permissions is replaced, not
/// reused.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;

    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    // NB: a fresh random name opened with O_EXCL: in a shared directory (/tmp) a planted file
    // or symlink under a guessable name is never followed or reused.
    let (tmp, mut f) = {
        let mut attempt = 0;
        loop {
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(name);
            tmp_name.push(format!(".{:016x}.tmp", rand::random::<u64>()));
            let tmp = dir.join(tmp_name);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
            {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("writing {}", path.display()));
                }
            }
        }
    };
    let written = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.with_context(|| format!("writing {}", path.display()))
}

/// Reads a secret (a token) from `path`, trimmed, refusing a file that others could read or
/// write (any mode bit beyond 0600) or that belongs to another user: a secret in such a file
/// is not a secret any more, and the refusal says how to fix it.
pub fn read_private(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::MetadataExt as _;

    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} has mode {mode:04o}: a token file must be readable by its owner only \
         (chmod 600 {})",
        path.display(),
        path.display()
    );
    let me = nix::unistd::geteuid().as_raw();
    anyhow::ensure!(
        meta.uid() == me,
        "{} belongs to uid {}, not to this user (uid {me}): a token file must be your own \
         (chown or copy it)",
        path.display(),
        meta.uid()
    );
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.trim().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_private_file_is_0600_even_when_it_replaces_a_world_readable_one() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

        // Act
        write_private(&path, b"secret").unwrap();

        // Assert
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "secret");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn a_private_file_is_read_and_a_shared_one_refused_with_the_fix() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        write_private(&path, b"  vcm_secret\n").unwrap();

        // Act
        let ok = read_private(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let shared = read_private(&path).unwrap_err().to_string();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let group_writable = read_private(&path).unwrap_err().to_string();

        // Assert
        assert_eq!(ok, "vcm_secret");
        assert!(
            shared.contains("mode 0644") && shared.contains("chmod 600"),
            "{shared}"
        );
        assert!(group_writable.contains("mode 0620"), "{group_writable}");
    }
}
