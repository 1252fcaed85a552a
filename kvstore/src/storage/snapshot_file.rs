//! Snapshot files: the state machine's snapshot as opaque bytes, with the Raft position it
//! covers, each written once and made visible atomically.
//!
//! A snapshot is `snapshots/<index, 20 digits>-<term, 20 digits>.snap`:
//!
//! ```text
//! offset    size  field
//! 0         8     magic "TALLYSNP"
//! 8         4     format version, u32 little-endian (1)
//! 12        8     index of the last entry the snapshot covers, u64 little-endian
//! 20        8     term of that entry, u64 little-endian
//! 28        4     metadata length m in bytes, u32 little-endian
//! 32        8     data length d in bytes, u64 little-endian
//! 40        m     metadata (the caller's bytes)
//! 40+m      d     data (the encoded state machine)
//! 40+m+d    4     CRC32C of bytes 0..40+m+d, u32 little-endian
//! ```
//!
//! The position is in the name, so that listing the directory finds the newest snapshot
//! without opening every file, and again in the header, so that a file renamed or copied
//! under the wrong name is caught rather than trusted.
//!
//! A write goes to `<name>.snap.tmp`, is fsynced, renamed to `<name>.snap`, and the
//! directory is fsynced, as for the [hard state](super::hard_state). A crash leaves the
//! snapshots that existed before, possibly plus the new one, possibly plus a `.snap.tmp`
//! leftover that loading ignores and [`remove_snapshots_before`] deletes.
//!
//! Loading takes the newest snapshot and, if it is damaged, fails rather than fall back to
//! an older one: the log entries between the older snapshot and the newest may already be
//! compacted away, so starting from the older one would silently lose committed writes.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use super::disk::{join_path, Disk, DiskError};

/// The directory holding the snapshots, relative to the data directory.
pub const SNAPSHOT_DIRECTORY: &str = "snapshots";

/// The first bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"TALLYSNP";

/// The snapshot format this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Size of the fixed header, before the metadata.
pub const SNAPSHOT_HEADER_SIZE_BYTES: usize = 40;

/// Size of the checksum that ends the file.
pub const SNAPSHOT_CHECKSUM_SIZE_BYTES: usize = 4;

const SNAPSHOT_SUFFIX: &str = ".snap";
const SNAPSHOT_TEMPORARY_SUFFIX: &str = ".snap.tmp";
const SNAPSHOT_NAME_DIGITS: usize = 20;

/// A snapshot as stored: the Raft position it covers, the caller's metadata (a
/// postcard-encoded `engine::SnapshotMeta`: index, term, membership) and the data (the
/// encoded state machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// Index of the last log entry the snapshot covers.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
    /// The caller's metadata bytes.
    pub meta: Vec<u8>,
    /// The encoded state machine; shares the buffer the file was read into.
    pub data: Bytes,
}

/// Why a snapshot could not be written, listed, loaded or removed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// The disk failed. After a failed write the caller must treat the failure as fatal,
    /// like a failed WAL sync: whether the new snapshot is durable is unknown.
    #[error("snapshot: {0}")]
    Disk(#[from] DiskError),
    /// A file in the snapshot directory is damaged or misnamed; the node must not start
    /// until an operator restores the data directory or replaces the node.
    #[error("corrupt snapshot file {path}: {defect}")]
    Corrupt {
        /// The file, relative to the data directory.
        path: String,
        /// What is wrong with it.
        defect: SnapshotDefect,
    },
    /// The metadata does not fit the format's 32-bit length field.
    #[error("snapshot metadata of {length_bytes} bytes is too large (the format allows {} bytes)", u32::MAX)]
    MetadataTooLarge {
        /// The metadata's length.
        length_bytes: usize,
    },
}

/// What is wrong with a snapshot file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotDefect {
    /// The name ends in `.snap` but is not `<index, 20 digits>-<term, 20 digits>.snap`.
    UnrecognizedName,
    /// The file is shorter than a header and a checksum.
    Truncated {
        /// The file's length.
        file_length_bytes: u64,
    },
    /// The file does not start with [`SNAPSHOT_MAGIC`].
    BadMagic,
    /// A format version this code does not read.
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
    /// The lengths in the header do not add up to the file's length.
    LengthMismatch {
        /// The metadata length in the header.
        metadata_length_bytes: u32,
        /// The data length in the header.
        data_length_bytes: u64,
        /// The file's length.
        file_length_bytes: u64,
    },
    /// The checksum does not match the bytes before it.
    ChecksumMismatch {
        /// The checksum stored at the end of the file.
        stored: u32,
        /// The checksum computed over the bytes.
        computed: u32,
    },
    /// The position in the header disagrees with the position in the file name.
    PositionMismatch {
        /// The index in the header.
        index_in_header: u64,
        /// The term in the header.
        term_in_header: u64,
    },
}

impl fmt::Display for SnapshotDefect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotDefect::UnrecognizedName => formatter
                .write_str("the name is not <index, 20 digits>-<term, 20 digits>.snap, so its position is unknown"),
            SnapshotDefect::Truncated { file_length_bytes } => write!(
                formatter,
                "truncated: {file_length_bytes} bytes, shorter than the {SNAPSHOT_HEADER_SIZE_BYTES}-byte header \
                 and {SNAPSHOT_CHECKSUM_SIZE_BYTES}-byte checksum"
            ),
            SnapshotDefect::BadMagic => formatter.write_str("bad magic number at offset 0: not a snapshot file"),
            SnapshotDefect::UnsupportedVersion { version } => write!(
                formatter,
                "unsupported format version {version} at offset 8 (this build reads version \
                 {SNAPSHOT_FORMAT_VERSION})"
            ),
            SnapshotDefect::LengthMismatch { metadata_length_bytes, data_length_bytes, file_length_bytes } => {
                let expected = expected_file_length_bytes(*metadata_length_bytes, *data_length_bytes);
                write!(
                    formatter,
                    "the header declares {metadata_length_bytes} bytes of metadata and {data_length_bytes} bytes \
                     of data, a file of {expected} bytes, but the file has {file_length_bytes} bytes"
                )
            }
            SnapshotDefect::ChecksumMismatch { stored, computed } => write!(
                formatter,
                "checksum mismatch: the content is damaged (stored {stored:#010x}, computed {computed:#010x})"
            ),
            SnapshotDefect::PositionMismatch { index_in_header, term_in_header } => write!(
                formatter,
                "the header says index {index_in_header} term {term_in_header}, which disagrees with the file name"
            ),
        }
    }
}

/// The length of a file with these declared lengths; in `u128` so that any header, however
/// damaged, gives an exact answer instead of an overflow.
fn expected_file_length_bytes(metadata_length_bytes: u32, data_length_bytes: u64) -> u128 {
    let framing = (SNAPSHOT_HEADER_SIZE_BYTES + SNAPSHOT_CHECKSUM_SIZE_BYTES) as u128;
    framing + u128::from(metadata_length_bytes) + u128::from(data_length_bytes)
}

/// The path of the snapshot covering the log up to `index`, at `term`.
pub fn snapshot_path(index: u64, term: u64) -> String {
    let name = format!("{index:0width$}-{term:0width$}{SNAPSHOT_SUFFIX}", width = SNAPSHOT_NAME_DIGITS);
    join_path(SNAPSHOT_DIRECTORY, &name)
}

/// The path a snapshot is written to before it is renamed to `path`.
fn temporary_path(path: &str) -> String {
    format!("{path}.tmp")
}

fn encode_header(
    index: u64,
    term: u64,
    metadata_length_bytes: u32,
    data_length_bytes: u64,
) -> [u8; SNAPSHOT_HEADER_SIZE_BYTES] {
    let mut header = [0; SNAPSHOT_HEADER_SIZE_BYTES];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    header[12..20].copy_from_slice(&index.to_le_bytes());
    header[20..28].copy_from_slice(&term.to_le_bytes());
    header[28..32].copy_from_slice(&metadata_length_bytes.to_le_bytes());
    header[32..40].copy_from_slice(&data_length_bytes.to_le_bytes());
    header
}

/// Writes the snapshot of the log up to `index` (at `term`) and returns its path. When this
/// returns `Ok`, a crash recovers it; if it fails or crashes midway, a crash recovers the
/// snapshots there were before, possibly with this one among them. A snapshot already
/// stored at the same position is replaced atomically.
pub fn write_snapshot<D: Disk>(
    disk: &mut D,
    index: u64,
    term: u64,
    meta: &[u8],
    data: &[u8],
) -> Result<String, SnapshotFileError> {
    let metadata_length_bytes =
        u32::try_from(meta.len()).map_err(|_| SnapshotFileError::MetadataTooLarge { length_bytes: meta.len() })?;
    let header = encode_header(index, term, metadata_length_bytes, data.len() as u64);
    // Several appends instead of one framed buffer, so that a large snapshot is not copied
    // a second time only to be written.
    let parts = [header.as_slice(), meta, data];
    let checksum = parts.iter().fold(0, |checksum, part| crc32c::crc32c_append(checksum, part));
    create_snapshot_directory_on_first_use(disk)?;
    let path = snapshot_path(index, term);
    let temporary = temporary_path(&path);
    disk.create(&temporary)?;
    for part in parts {
        disk.append(&temporary, part)?;
    }
    disk.append(&temporary, &checksum.to_le_bytes())?;
    // The data must be durable before the rename can make it visible under the real name.
    disk.sync(&temporary)?;
    disk.rename(&temporary, &path)?;
    disk.sync_directory(SNAPSHOT_DIRECTORY)?;
    Ok(path)
}

/// Creates the snapshot directory if it does not exist yet. [`Disk::create_directory`]
/// makes the new name durable itself (it syncs the root directory), so nothing else is
/// synced here; checking first spares later snapshots that extra sync of the root.
fn create_snapshot_directory_on_first_use<D: Disk>(disk: &mut D) -> Result<(), DiskError> {
    match disk.list(SNAPSHOT_DIRECTORY) {
        Ok(_) => Ok(()),
        Err(error) if error.is_not_found() => disk.create_directory(SNAPSHOT_DIRECTORY),
        Err(error) => Err(error),
    }
}

/// A snapshot found by listing the directory, known only by its name so far.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ListedSnapshot {
    index: u64,
    term: u64,
    path: String,
}

/// The files of the snapshot directory that are ours.
#[derive(Debug, Default)]
struct SnapshotListing {
    snapshots: Vec<ListedSnapshot>,
    temporary_paths: Vec<String>,
}

impl SnapshotListing {
    /// The snapshot with the highest (index, term).
    fn newest(&self) -> Option<&ListedSnapshot> {
        self.snapshots.iter().max()
    }
}

/// Lists the snapshot directory; a missing directory is an empty listing (no snapshot was
/// ever written).
///
/// A name ending in `.snap` that does not parse is refused: it looks like a snapshot whose
/// position we cannot tell, and it might be the newest one, so picking among the others
/// could start the node from a stale state. Other names (an operator's notes, an editor's
/// backup) cannot be mistaken for a snapshot and are ignored, never removed.
fn list_snapshot_directory<D: Disk>(disk: &D) -> Result<SnapshotListing, SnapshotFileError> {
    let names = match disk.list(SNAPSHOT_DIRECTORY) {
        Ok(names) => names,
        Err(error) if error.is_not_found() => return Ok(SnapshotListing::default()),
        Err(error) => return Err(error.into()),
    };
    let mut listing = SnapshotListing::default();
    for name in names {
        let path = join_path(SNAPSHOT_DIRECTORY, &name);
        if name.ends_with(SNAPSHOT_TEMPORARY_SUFFIX) {
            listing.temporary_paths.push(path);
        } else if name.ends_with(SNAPSHOT_SUFFIX) {
            let Some((index, term)) = parse_snapshot_name(&name) else {
                return Err(SnapshotFileError::Corrupt { path, defect: SnapshotDefect::UnrecognizedName });
            };
            listing.snapshots.push(ListedSnapshot { index, term, path });
        }
    }
    Ok(listing)
}

/// The (index, term) in a snapshot file name, or `None` if it is not exactly the form
/// [`snapshot_path`] writes.
fn parse_snapshot_name(name: &str) -> Option<(u64, u64)> {
    let (index, term) = name.strip_suffix(SNAPSHOT_SUFFIX)?.split_once('-')?;
    Some((parse_name_digits(index)?, parse_name_digits(term)?))
}

fn parse_name_digits(digits: &str) -> Option<u64> {
    let well_formed = digits.len() == SNAPSHOT_NAME_DIGITS && digits.bytes().all(|byte| byte.is_ascii_digit());
    // Twenty digits can exceed u64::MAX; `parse` refuses those.
    well_formed.then(|| digits.parse().ok()).flatten()
}

/// Where the parts of a checked snapshot file lie.
#[derive(Debug)]
struct SnapshotLayout {
    index: u64,
    term: u64,
    metadata: Range<usize>,
    data: Range<usize>,
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().expect("four bytes"))
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("eight bytes"))
}

/// Checks every field of a snapshot file's content, never trusting a length before it is
/// compared with the file's. The checks run in the order that names the defect most
/// usefully: a truncated or foreign file is reported as such, not as a checksum mismatch.
fn decode(bytes: &[u8]) -> Result<SnapshotLayout, SnapshotDefect> {
    let file_length_bytes = bytes.len() as u64;
    if bytes.len() < SNAPSHOT_HEADER_SIZE_BYTES + SNAPSHOT_CHECKSUM_SIZE_BYTES {
        return Err(SnapshotDefect::Truncated { file_length_bytes });
    }
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotDefect::BadMagic);
    }
    let version = read_u32(bytes, 8);
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotDefect::UnsupportedVersion { version });
    }
    let metadata_length_bytes = read_u32(bytes, 28);
    let data_length_bytes = read_u64(bytes, 32);
    if expected_file_length_bytes(metadata_length_bytes, data_length_bytes) != u128::from(file_length_bytes) {
        return Err(SnapshotDefect::LengthMismatch { metadata_length_bytes, data_length_bytes, file_length_bytes });
    }
    let checksum_offset = bytes.len() - SNAPSHOT_CHECKSUM_SIZE_BYTES;
    let stored = read_u32(bytes, checksum_offset);
    let computed = crc32c::crc32c(&bytes[..checksum_offset]);
    if stored != computed {
        return Err(SnapshotDefect::ChecksumMismatch { stored, computed });
    }
    // The lengths add up to the file's, so both ranges lie inside it.
    let metadata_end = SNAPSHOT_HEADER_SIZE_BYTES + metadata_length_bytes as usize;
    Ok(SnapshotLayout {
        index: read_u64(bytes, 12),
        term: read_u64(bytes, 20),
        metadata: SNAPSHOT_HEADER_SIZE_BYTES..metadata_end,
        data: metadata_end..checksum_offset,
    })
}

/// Loads the newest snapshot: `None` if there is none (a fresh node), the snapshot if its
/// file is intact, and [`SnapshotFileError::Corrupt`] naming the file if it is damaged.
/// Never falls back to an older snapshot; see the module documentation.
pub fn load_latest_snapshot<D: Disk>(disk: &D) -> Result<Option<StoredSnapshot>, SnapshotFileError> {
    let listing = list_snapshot_directory(disk)?;
    let Some(newest) = listing.newest() else {
        return Ok(None);
    };
    let bytes = disk.read(&newest.path)?;
    let corrupt = |defect| SnapshotFileError::Corrupt { path: newest.path.clone(), defect };
    let layout = decode(&bytes).map_err(corrupt)?;
    if (layout.index, layout.term) != (newest.index, newest.term) {
        let defect = SnapshotDefect::PositionMismatch { index_in_header: layout.index, term_in_header: layout.term };
        return Err(corrupt(defect));
    }
    let content = Bytes::from(bytes);
    Ok(Some(StoredSnapshot {
        index: layout.index,
        term: layout.term,
        meta: content[layout.metadata].to_vec(),
        data: content.slice(layout.data),
    }))
}

/// Removes every snapshot covering less of the log than `index` (but never the newest
/// one, so that a node always keeps a snapshot once it had one) and every leftover
/// temporary file; returns how many files it removed.
pub fn remove_snapshots_before<D: Disk>(disk: &mut D, index: u64) -> Result<usize, SnapshotFileError> {
    let listing = list_snapshot_directory(disk)?;
    let newest = listing.newest();
    let obsolete = listing.snapshots.iter().filter(|snapshot| snapshot.index < index && Some(*snapshot) != newest);
    let paths: Vec<&String> = obsolete.map(|snapshot| &snapshot.path).chain(listing.temporary_paths.iter()).collect();
    for path in &paths {
        disk.remove(path)?;
    }
    // A removal that a crash undoes would only waste space, but a sync keeps what is on
    // disk equal to what the caller was told.
    if !paths.is_empty() {
        disk.sync_directory(SNAPSHOT_DIRECTORY)?;
    }
    Ok(paths.len())
}
