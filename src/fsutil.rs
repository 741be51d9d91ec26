//! Writing output files safely.
//!
//! This module owns the rule that no output file is ever left half-written:
//! everything is written to a temporary file in the target's folder and renamed
//! over the target only once complete; files are created with the process
//! umask (0644 under the usual 022), not the temporary-file default 0600. A
//! folder of outputs ([`Staged`]) is built beside its target and swapped in
//! whole, under a lock, so a run killed while writing leaves the previous
//! outputs as they were and a rerun leaves no stale files.

use crate::error::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

/// Write `path` atomically: `fill` writes into a temporary file in the same
/// folder, which replaces `path` only if `fill` and the flush succeed.
/// The folder is created if missing.
pub fn write_atomic<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create folder {}", dir.display()), e))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp");
    // Read and write for everyone, less the umask (the default is 0600).
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("cannot create a file in {}", dir.display()), e))?;
    {
        let mut w = BufWriter::new(tmp.as_file());
        fill(&mut w)
            .and_then(|_| w.flush())
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e.error))?;
    Ok(())
}

/// An output folder being built: files go to a staging folder beside the
/// target (`.NAME.staging`), which [`Staged::commit`] swaps in for the target
/// whole. A lock file beside it (`.NAME.lock`, held with an OS lock, so a
/// killed run leaves no stale lock) refuses a second run into the same folder.
/// Dropped without a commit, the staging folder is removed and the target is
/// untouched.
///
/// ```
/// let root = tempfile::tempdir()?;
/// let out = root.path().join("results");
/// let staged = spillover::fsutil::Staged::begin(&out)?;
/// spillover::fsutil::write_atomic(&staged.path().join("a.txt"), |w| writeln!(w, "hello"))?;
/// staged.commit()?;
/// assert_eq!(std::fs::read_to_string(out.join("a.txt"))?, "hello\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Staged {
    target: std::path::PathBuf,
    staging: std::path::PathBuf,
    _lock: std::fs::File,
    committed: bool,
}

impl Staged {
    /// Check that `target` can be written (it is a folder or does not exist,
    /// and its parent can be created and written), take the lock and create
    /// an empty staging folder. Every failure is an input error (exit 2):
    /// the user named an unusable folder, and nothing has been computed yet.
    pub fn begin(target: &Path) -> Result<Staged> {
        let bad =
            |what: String| Error::input(format!("output folder {}: {what}", target.display()));
        if target.exists() && !target.is_dir() {
            return Err(bad(
                "exists and is not a folder: expected a folder to write into".into(),
            ));
        }
        let name = target
            .file_name()
            .ok_or_else(|| bad("expected a folder name, not a root or `..`".into()))?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .map_err(|e| bad(format!("cannot create {}: {e}", parent.display())))?;
        let lock_path = parent.join(format!(".{name}.lock"));
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| bad(format!("cannot write in {}: {e}", parent.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(bad(format!(
                    "another run is writing to it (lock {} is held): wait for it, or choose another --out",
                    lock_path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(bad(format!("cannot lock {}: {e}", lock_path.display())))
            }
        }
        let staging = parent.join(format!(".{name}.staging"));
        if staging.exists() {
            // Left by a run that was killed: we hold the lock, so it is stale.
            std::fs::remove_dir_all(&staging)
                .map_err(|e| bad(format!("cannot remove stale {}: {e}", staging.display())))?;
        }
        std::fs::create_dir(&staging)
            .map_err(|e| bad(format!("cannot create {}: {e}", staging.display())))?;
        Ok(Staged {
            target: target.to_path_buf(),
            staging,
            _lock: lock,
            committed: false,
        })
    }

    /// The staging folder: write every output here.
    pub fn path(&self) -> &Path {
        &self.staging
    }

    /// The folder the outputs will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Swap the staging folder in for the target: the previous target is
    /// moved aside, the staging folder renamed into place, and the previous
    /// one removed.
    pub fn commit(mut self) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("{what} {}", self.target.display()), e);
        let old = self.staging.with_extension("old");
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io("cannot clean up beside", e))?;
        }
        let had = self.target.exists();
        if had {
            std::fs::rename(&self.target, &old).map_err(|e| io("cannot move aside", e))?;
        }
        if let Err(e) = std::fs::rename(&self.staging, &self.target) {
            if had {
                let _ = std::fs::rename(&old, &self.target);
            }
            return Err(io("cannot swap in", e));
        }
        self.committed = true;
        if had {
            std::fs::remove_dir_all(&old).map_err(|e| io("cannot remove the previous", e))?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.tsv");
        let r = write_atomic(&target, |w| {
            writeln!(w, "partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        write_atomic(&target, |w| writeln!(w, "ok")).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "ok\n");
    }

    #[test]
    fn staged_folder_swaps_whole_and_is_locked() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("o");
        let s = Staged::begin(&out).unwrap();
        write_atomic(&s.path().join("old.txt"), |w| writeln!(w, "1")).unwrap();
        // A second writer is refused while the first holds the lock.
        let e = Staged::begin(&out).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("another run"), "{e}");
        s.commit().unwrap();
        assert!(out.join("old.txt").exists());
        // A second run replaces the folder whole: old files do not survive.
        let s = Staged::begin(&out).unwrap();
        write_atomic(&s.path().join("new.txt"), |w| writeln!(w, "2")).unwrap();
        assert!(out.join("old.txt").exists(), "untouched until the commit");
        s.commit().unwrap();
        assert!(out.join("new.txt").exists() && !out.join("old.txt").exists());
        // Dropped without a commit: the target is untouched, nothing is left beside it.
        let s = Staged::begin(&out).unwrap();
        write_atomic(&s.path().join("partial.txt"), |w| writeln!(w, "3")).unwrap();
        drop(s);
        assert!(out.join("new.txt").exists() && !out.join("partial.txt").exists());
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains("staging")), "{names:?}");
        // A file where the folder should be is an input error.
        let file = root.path().join("f");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(Staged::begin(&file).unwrap_err().exit_code(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn files_are_created_with_the_umask_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("r.html");
        write_atomic(&target, |w| writeln!(w, "x")).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .expect("Umask in /proc/self/status");
        assert_eq!(mode, 0o666 & !umask, "mode {mode:o} under umask {umask:o}");
    }
}
