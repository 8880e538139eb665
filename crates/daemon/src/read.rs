//! Bounded reading of the desired-state file: regular files only, at most
//! [`MAX_DESIRED_BYTES`], opened so that nothing at the path can block the reader.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The most bytes a desired-state file or object may have (the parser's own limit).
pub const MAX_DESIRED_BYTES: usize = gec_model::desired::MAX_FILE_BYTES;

/// What kind of thing stands at a path that is not a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// A directory.
    Directory,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A character device (`/dev/zero`, a terminal).
    CharDevice,
    /// A block device.
    BlockDevice,
    /// Anything else that is not a regular file.
    Other,
}

impl FileType {
    /// Name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Directory => "a directory",
            FileType::Fifo => "a FIFO",
            FileType::Socket => "a socket",
            FileType::CharDevice => "a character device",
            FileType::BlockDevice => "a block device",
            FileType::Other => "not a regular file",
        }
    }

    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_dir() {
            FileType::Directory
        } else if t.is_fifo() {
            FileType::Fifo
        } else if t.is_socket() {
            FileType::Socket
        } else if t.is_char_device() {
            FileType::CharDevice
        } else if t.is_block_device() {
            FileType::BlockDevice
        } else {
            FileType::Other
        }
    }
}

/// Why a file could not be read. Messages name no byte of the file's content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening, inspecting or reading failed (missing, permission denied, ...).
    #[error("cannot read the file")]
    Io(#[source] std::io::Error),
    /// A FIFO, device, socket or directory stands at the path.
    #[error("cannot read the file: it is {}, not a regular file", .0.as_str())]
    NotRegular(FileType),
    /// The file is larger than the limit.
    #[error("cannot read the file: it is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl ReadError {
    /// A stable, content-free name of the failure (for `/status`, logs and change
    /// detection): `not_found`, `permission_denied`, `not_a_regular_file`, `too_large`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            ReadError::Io(e) => match e.kind() {
                std::io::ErrorKind::NotFound => "not_found",
                std::io::ErrorKind::PermissionDenied => "permission_denied",
                std::io::ErrorKind::InvalidData => "invalid_data",
                _ => "io_error",
            },
            ReadError::NotRegular(_) => "not_a_regular_file",
            ReadError::TooLarge { .. } => "too_large",
        }
    }
}

/// Reads a regular file of at most `limit` bytes. Symlinks are followed as any open
/// follows them.
///
/// # Guarantees
/// Never blocks on what stands at the path: it is opened non-blocking (a FIFO without a
/// writer opens at once), and the opened descriptor is inspected, so there is no window
/// between a check and the open. At most `limit + 1` bytes are read.
///
/// # Errors
/// The path cannot be opened or read, is not a regular file, or holds more than `limit`
/// bytes.
pub fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(ReadError::Io)?;
    // fstat of the opened descriptor: what we inspect is what we read.
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(FileType::of(&meta)));
    }
    read_capped(file, limit)
}

/// Reads a desired-state file ([`read_bounded`] with [`MAX_DESIRED_BYTES`]).
///
/// # Errors
/// As [`read_bounded`].
pub fn read_desired_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_bounded(path, MAX_DESIRED_BYTES)
}

fn read_capped(file: File, limit: usize) -> Result<Vec<u8>, ReadError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut bytes = Vec::new();
    // One byte past the limit tells "exactly the limit" from "larger" without trusting
    // the size fstat reported (the file can grow while we read).
    file.take(cap)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("gec-read-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_regular_file_up_to_the_limit_is_read_and_one_byte_more_is_refused() {
        let dir = Dir::new("limit");
        let path = dir.0.join("f");
        std::fs::write(&path, vec![b'a'; 100]).unwrap();
        assert_eq!(read_bounded(&path, 100).unwrap().len(), 100);
        let err = read_bounded(&path, 99).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 99 }), "{err:?}");
        assert_eq!(err.kind(), "too_large");
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_followed() {
        let dir = Dir::new("symlink");
        let target = dir.0.join("target");
        std::fs::write(&target, "version: 1\n").unwrap();
        let link = dir.0.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(read_desired_file(&link).unwrap(), b"version: 1\n");
    }

    #[test]
    fn a_fifo_is_refused_at_once_without_blocking() {
        let dir = Dir::new("fifo");
        let path = dir.0.join("fifo");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a file system node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let started = Instant::now();
        let err = read_desired_file(&path).unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular(FileType::Fifo)),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "cannot read the file: it is a FIFO, not a regular file"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_directory_and_a_device_are_refused() {
        let dir = Dir::new("dir");
        let err = read_desired_file(&dir.0).unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular(FileType::Directory)),
            "{err:?}"
        );
        let err = read_desired_file(Path::new("/dev/zero")).unwrap_err();
        assert!(
            matches!(err, ReadError::NotRegular(FileType::CharDevice)),
            "{err:?}"
        );
        assert_eq!(err.kind(), "not_a_regular_file");
    }

    #[test]
    fn a_missing_file_is_an_io_error_with_its_kind() {
        let dir = Dir::new("missing");
        let err = read_desired_file(&dir.0.join("nope")).unwrap_err();
        assert_eq!(err.kind(), "not_found");
    }
}
