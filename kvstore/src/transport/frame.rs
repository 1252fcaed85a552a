//! Framing of message batches: pure functions over byte buffers, no I/O, so that a fuzz
//! target can feed them arbitrary bytes.
//!
//! ```text
//! offset  size  field
//! 0       4     payload length in bytes, u32 little-endian
//! 4       4     CRC32C of the payload, u32 little-endian
//! 8       n     payload: the postcard encoding of a Vec<M>
//! ```
//!
//! A postcard `Vec<M>` is a varint element count followed by the elements. The sender
//! encodes each message on its own (to learn its size before committing it to a frame)
//! and prefixes the count itself; [`BatchEncoder`] produces exactly the bytes postcard
//! would for the whole vector, so the receiver decodes with plain postcard.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes of framing before each payload.
pub const FRAME_HEADER_SIZE_BYTES: usize = 8;

/// Why bytes received from a peer are not a valid frame. Each one closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameDefect {
    /// The declared payload length is over the limit; nothing was allocated for it.
    #[error("declared payload length {length_bytes} bytes is over the limit of {maximum_bytes}")]
    LengthTooLarge {
        /// The declared length.
        length_bytes: u32,
        /// The limit in force.
        maximum_bytes: u32,
    },
    /// The checksum does not match the payload.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    ChecksumMismatch {
        /// The checksum in the header.
        stored: u32,
        /// The checksum of the payload bytes.
        computed: u32,
    },
    /// The checksum matches but the payload is not a postcard `Vec<M>`.
    #[error("payload is not a valid message batch: {reason}")]
    MalformedPayload {
        /// What postcard reported.
        reason: String,
    },
}

/// The outcome of decoding from the front of a buffer that may not hold a whole item yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// More bytes are needed; at least this many more.
    Incomplete {
        /// The minimum number of further bytes before decoding can progress.
        bytes_needed: usize,
    },
    /// A whole item was decoded from the first `size_bytes` of the buffer.
    Complete {
        /// The item.
        value: T,
        /// How many bytes it took; the next item starts there.
        size_bytes: usize,
    },
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let field: [u8; 4] = bytes[offset..offset + 4].try_into().expect("four bytes");
    u32::from_le_bytes(field)
}

/// Appends a frame holding `payload` to `buffer`.
///
/// The caller keeps payloads within its limit, which is a `u32`; a longer one is our bug.
pub fn encode_frame(buffer: &mut Vec<u8>, payload: &[u8]) {
    let length = u32::try_from(payload.len()).expect("payload length bounded by the frame limit");
    buffer.extend_from_slice(&length.to_le_bytes());
    buffer.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buffer.extend_from_slice(payload);
}

/// Decodes the frame at the front of `bytes`, checking length and checksum, and returns
/// its payload. A declared length over `payload_size_bytes_max` is refused from the header
/// alone, before any payload byte is awaited.
pub fn decode_frame(bytes: &[u8], payload_size_bytes_max: u32) -> Result<Decoded<&[u8]>, FrameDefect> {
    if bytes.len() < FRAME_HEADER_SIZE_BYTES {
        return Ok(Decoded::Incomplete { bytes_needed: FRAME_HEADER_SIZE_BYTES - bytes.len() });
    }
    let length_bytes = read_u32(bytes, 0);
    if length_bytes > payload_size_bytes_max {
        return Err(FrameDefect::LengthTooLarge { length_bytes, maximum_bytes: payload_size_bytes_max });
    }
    let size_bytes = FRAME_HEADER_SIZE_BYTES + length_bytes as usize;
    if bytes.len() < size_bytes {
        return Ok(Decoded::Incomplete { bytes_needed: size_bytes - bytes.len() });
    }
    let payload = &bytes[FRAME_HEADER_SIZE_BYTES..size_bytes];
    let stored = read_u32(bytes, 4);
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(FrameDefect::ChecksumMismatch { stored, computed });
    }
    Ok(Decoded::Complete { value: payload, size_bytes })
}

/// Decodes a frame payload as a batch of messages. Trailing bytes after the batch are a
/// defect: a correct sender never writes them.
pub fn decode_batch<M: DeserializeOwned>(payload: &[u8]) -> Result<Vec<M>, FrameDefect> {
    let malformed = |reason: String| FrameDefect::MalformedPayload { reason };
    let (messages, rest) =
        postcard::take_from_bytes::<Vec<M>>(payload).map_err(|error| malformed(error.to_string()))?;
    if !rest.is_empty() {
        return Err(malformed(format!("{} trailing bytes after the batch", rest.len())));
    }
    Ok(messages)
}

/// Decodes the frame at the front of `bytes` and its batch of messages in one step; this is
/// what the receiving side runs on every frame, and what the `peer_frame` fuzz target feeds.
pub fn decode_batch_frame<M: DeserializeOwned>(
    bytes: &[u8],
    payload_size_bytes_max: u32,
) -> Result<Decoded<Vec<M>>, FrameDefect> {
    match decode_frame(bytes, payload_size_bytes_max)? {
        Decoded::Incomplete { bytes_needed } => Ok(Decoded::Incomplete { bytes_needed }),
        Decoded::Complete { value: payload, size_bytes } => {
            Ok(Decoded::Complete { value: decode_batch(payload)?, size_bytes })
        }
    }
}

/// Encodes one message on its own, as it will appear inside a batch.
pub fn encode_message<M: Serialize>(message: &M) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_allocvec(message)
}

/// The size of postcard's varint encoding of `value`: seven bits per byte.
pub fn varint_size_bytes(value: usize) -> usize {
    let significant_bits = usize::BITS - value.leading_zeros();
    (significant_bits.max(1) as usize).div_ceil(7)
}

/// Gathers encoded messages into one frame payload without exceeding the frame limit.
#[derive(Debug)]
pub struct BatchEncoder {
    body: Vec<u8>,
    message_count: usize,
    payload_size_bytes_max: u32,
}

impl BatchEncoder {
    /// An empty batch for frames of at most `payload_size_bytes_max` payload bytes.
    pub fn new(payload_size_bytes_max: u32) -> Self {
        BatchEncoder { body: Vec::new(), message_count: 0, payload_size_bytes_max }
    }

    /// Messages in the batch so far.
    pub fn message_count(&self) -> usize {
        self.message_count
    }

    /// Whether the batch holds no message.
    pub fn is_empty(&self) -> bool {
        self.message_count == 0
    }

    /// Whether a message of `encoded_size_bytes` still fits, counting the growth of the
    /// element count's varint.
    pub fn fits(&self, encoded_size_bytes: usize) -> bool {
        let payload_size_bytes = varint_size_bytes(self.message_count + 1) + self.body.len() + encoded_size_bytes;
        payload_size_bytes <= self.payload_size_bytes_max as usize
    }

    /// Whether a message of `encoded_size_bytes` could ever be sent, alone in its frame.
    pub fn fits_alone(payload_size_bytes_max: u32, encoded_size_bytes: usize) -> bool {
        varint_size_bytes(1) + encoded_size_bytes <= payload_size_bytes_max as usize
    }

    /// Adds an encoded message; the caller checked [`BatchEncoder::fits`].
    pub fn push(&mut self, encoded_message: &[u8]) {
        assert!(self.fits(encoded_message.len()), "the caller checks that a message fits");
        self.body.extend_from_slice(encoded_message);
        self.message_count += 1;
    }

    /// Appends the framed batch to `buffer` and empties the batch for reuse.
    pub fn finish_into(&mut self, buffer: &mut Vec<u8>) {
        // The header is written by hand, rather than through encode_frame, so that a large
        // body is copied once instead of twice.
        let count = postcard::to_allocvec(&self.message_count).expect("a usize always encodes");
        let payload_size_bytes = count.len() + self.body.len();
        assert!(payload_size_bytes <= self.payload_size_bytes_max as usize, "push checks the limit");
        let length = u32::try_from(payload_size_bytes).expect("bounded by a u32 limit");
        let checksum = crc32c::crc32c_append(crc32c::crc32c(&count), &self.body);
        buffer.extend_from_slice(&length.to_le_bytes());
        buffer.extend_from_slice(&checksum.to_le_bytes());
        buffer.extend_from_slice(&count);
        buffer.extend_from_slice(&self.body);
        self.body.clear();
        self.message_count = 0;
    }
}
