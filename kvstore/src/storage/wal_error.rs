//! Errors of the write-ahead log, one enum per kind of call.

use super::disk::DiskError;
use super::segment::SegmentDefect;

/// Why [`Wal::open`](super::Wal::open) refused to recover the log. Every variant but
/// [`WalOpenError::Disk`] means the log on disk is damaged: the node must not start
/// from it, and the message names the file and offset to inspect.
#[derive(Debug, thiserror::Error)]
pub enum WalOpenError {
    /// The disk failed.
    #[error("cannot recover the WAL: {0}")]
    Disk(#[from] DiskError),
    /// A bad record or header that is not a torn tail: either a later valid record
    /// follows it, or it is in a segment that is not the last one.
    #[error("corrupt WAL record in {path} at offset {offset_bytes}: {defect}")]
    Corrupt {
        /// The segment file.
        path: String,
        /// Byte offset of the bad record (0 for a bad header).
        offset_bytes: u64,
        /// What is wrong there.
        defect: SegmentDefect,
    },
    /// A segment does not start where the previous one ended: a segment is missing.
    #[error(
        "WAL segment {path} starts at sequence {found} but the previous segment ends \
         before sequence {expected}: a segment is missing"
    )]
    SequenceGap {
        /// The segment file that starts too late or too early.
        path: String,
        /// The sequence the previous segment leads to.
        expected: u64,
        /// The sequence this segment starts at.
        found: u64,
    },
}

/// Why an append, sync or segment removal failed.
///
/// Any disk failure poisons the WAL: the state of the file is unknown (a short write, or
/// a failed fsync after which the kernel may have dropped the dirty pages), so every
/// later call fails with [`WalWriteError::Poisoned`]. The caller must treat this as
/// fatal, stop, and recover by reopening the WAL from disk (after a restart), never by
/// retrying.
#[derive(Debug, thiserror::Error)]
pub enum WalWriteError {
    /// The disk failed; the WAL is now poisoned.
    #[error("WAL write failed, the WAL is poisoned: {0}")]
    Disk(#[from] DiskError),
    /// An earlier disk failure poisoned the WAL.
    #[error("WAL is poisoned by an earlier failure ({cause}); reopen it to recover")]
    Poisoned {
        /// The message of the failure that poisoned it.
        cause: String,
        /// True if that failure was a full disk.
        storage_full: bool,
    },
    /// The payload is larger than a record may be. The WAL is not poisoned.
    #[error("WAL record payload of {length_bytes} bytes is over the maximum of {maximum_bytes}")]
    PayloadTooLarge {
        /// The payload's length.
        length_bytes: usize,
        /// The largest payload allowed.
        maximum_bytes: u32,
    },
}

impl WalWriteError {
    /// True if the failure (or the one that poisoned the WAL) is a full disk.
    pub fn is_storage_full(&self) -> bool {
        match self {
            WalWriteError::Disk(error) => error.is_storage_full(),
            WalWriteError::Poisoned { storage_full, .. } => *storage_full,
            WalWriteError::PayloadTooLarge { .. } => false,
        }
    }
}
