//! Writing output files safely.
//!
//! This module owns the rule that no output file is ever left half-written:
//! everything is written to a temporary file in the target's folder and renamed
//! over the target only once complete.

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
    let tmp = tempfile::NamedTempFile::new_in(dir)
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
}
