//! Where igdm keeps its state: `$IGDM_HOME`, or the platform data directory.

use std::path::{Path, PathBuf};

use crate::Error;

/// igdm's state directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `$IGDM_HOME` when set, else the platform data directory (`~/.local/share/igdm` on Linux).
    ///
    /// # Errors
    /// When neither is available.
    pub fn from_env() -> Result<Self, Error> {
        if let Some(dir) = std::env::var_os("IGDM_HOME").filter(|d| !d.is_empty()) {
            return Ok(Self::at(dir));
        }
        directories::ProjectDirs::from("", "", "igdm")
            .map(|d| Self::at(d.data_dir()))
            .ok_or_else(|| Error::Home("no IGDM_HOME and no home directory to default to".into()))
    }

    /// A home at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the home.
    #[must_use]
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Creates the directory (0700 on Unix) when missing.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn ensure(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(&self.root, e))?;
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` atomically (temp file + rename), 0600 on Unix.
///
/// # Errors
/// On any I/O failure.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
