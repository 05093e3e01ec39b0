//! Reading the files users point us at, bounded: regular files only (a device, a FIFO or a
//! folder is refused before it is opened), never more than a stated size.

use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read `{path}`: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("`{path}` is not a regular file ({kind})")]
    NotAFile { path: String, kind: &'static str },
    #[error("`{path}` is {size} bytes, more than the {limit} bytes this input may have")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("`{path}` is not UTF-8 text")]
    NotText { path: String },
}

/// The whole file, if it is a regular file of at most `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let shown = path.display().to_string();
    let unreadable = |e: std::io::Error| FileError::Unreadable { path: shown.clone(), reason: e.to_string() };
    // `metadata` follows symlinks, so a link to a device is refused like the device.
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(FileError::NotAFile { path: shown, kind: kind_of(&meta) });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge { path: shown, size: meta.len(), limit });
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the check and the read: never take more than the limit.
    file.take(limit + 1).read_to_end(&mut bytes).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge { path: shown, size: bytes.len() as u64, limit });
    }
    Ok(bytes)
}

/// The whole file as UTF-8 text, bounded like [`read_bytes`].
pub fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit)?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText { path: path.display().to_string() })
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_without_reading() {
        assert!(matches!(read_bytes(Path::new("/dev/zero"), 10), Err(FileError::NotAFile { kind: "a device", .. })));
        assert!(matches!(read_bytes(Path::new("/tmp"), 10), Err(FileError::NotAFile { kind: "a folder", .. })));
    }

    #[test]
    fn size_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "0123456789").unwrap();
        assert!(matches!(read_bytes(&p, 9), Err(FileError::TooLarge { size: 10, limit: 9, .. })));
        assert_eq!(read_text(&p, 10).unwrap(), "0123456789");
    }
}
