//! Output to files and stdout that a reader can trust: a file replaced whole or not at
//! all, and a stdout whose reader went away (`| head`) is not an error.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// How an output file is written, which decides what must be writable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Created or truncated in place (`std::fs::write`): the file, or its directory
    /// when it does not exist yet.
    InPlace,
    /// By [`write_atomically`]: a temporary file in its directory, renamed over it.
    Atomically,
}

/// Checks before any work that `path`, the value of `flag`, can be written as `how`
/// will write it, so a wrong path fails at once and not after a whole run. It never
/// changes an existing file and leaves nothing behind: it opens an existing file for
/// writing without truncating it, or creates the missing file (or the temporary file)
/// and removes it again. A FIFO or a device (`/dev/stdout`) is taken as it is.
pub fn check_writable(flag: &str, path: &Path, how: Written) -> anyhow::Result<()> {
    let fail = |why: String| anyhow::anyhow!("cannot write {flag} {}: {why}", path.display());
    let dir = parent(path);
    let probe_new = |probe: &Path| match std::fs::OpenOptions::new().write(true).create_new(true).open(probe) {
        Ok(_) => {
            std::fs::remove_file(probe).map_err(|e| fail(format!("cannot remove the probe {}: {e}", probe.display())))
        }
        // Appeared meanwhile, or a dangling link that the write will follow.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(match std::fs::metadata(dir) {
            Err(_) => format!("directory {} does not exist", dir.display()),
            Ok(m) if !m.is_dir() => format!("{} is not a directory", dir.display()),
            Ok(_) => e.to_string(),
        })),
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(fail("it is a directory".into())),
        Ok(m) if !m.is_file() => Ok(()),
        Ok(_) if how == Written::Atomically => probe_new(&temp_path(path)?),
        Ok(_) => std::fs::OpenOptions::new().write(true).open(path).map(drop).map_err(|e| fail(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => probe_new(path),
        // A parent that is a file (ENOTDIR), a directory that cannot be searched.
        Err(e) => Err(fail(e.to_string())),
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn parent(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// The temporary file [`write_atomically`] writes before renaming it to `path`.
fn temp_path(path: &Path) -> anyhow::Result<std::path::PathBuf> {
    let name = path.file_name().with_context(|| format!("{} names no file", path.display()))?;
    Ok(parent(path).join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id())))
}

/// Writes `path` so a reader sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    let tmp = temp_path(path)?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nehr.prom");
        write_atomically(&p, b"a 1\n").unwrap();
        write_atomically(&p, b"a 2\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomically(&dir.path().join("no/such/dir/x.prom"), b"").is_err());
    }

    #[test]
    fn a_path_that_cannot_be_written_is_found_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let check = |path: &Path, how| check_writable("--out", path, how).map_err(|e| e.to_string());
        for how in [Written::InPlace, Written::Atomically] {
            assert_eq!(check(&d.join("new.json"), how), Ok(()));
            let e = check(&d.join("missing/new.json"), how).unwrap_err();
            assert!(e.starts_with("cannot write --out ") && e.ends_with("missing does not exist"), "{e}");
            assert!(check(d, how).unwrap_err().ends_with("it is a directory"));
            std::fs::write(d.join("file"), "keep").unwrap();
            assert!(check(&d.join("file/x.json"), how).unwrap_err().contains("Not a directory"));
            assert_eq!(check(&d.join("file"), how), Ok(()));
            assert_eq!(check(Path::new("/dev/null"), how), Ok(()));
        }
        // Nothing clobbered, nothing left behind.
        assert_eq!(std::fs::read_to_string(d.join("file")).unwrap(), "keep");
        let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["file"]);
    }
}
