//! The service's limits, in one place.
//!
//! Every number here comes from the contract (`shared/spec/API.md`) or, where the
//! contract is silent, is a documented choice of this project. The planner, the
//! client, the engine and the emulator all read these constants, so a limit that
//! changes changes everywhere at once.

/// A person holds at most this many faces (the service answers -1309 past it).
pub const MAX_FACES_PER_PERSON: usize = 20;

/// One `addface` call carries at most this many images.
///
/// The contract does not name a per-call image count; the person limit bounds it,
/// since a call can never usefully add more faces than a person may hold.
pub const MAX_IMAGES_PER_ADDFACE: usize = MAX_FACES_PER_PERSON;

/// The request body limit the job starts from, and the emulator's default: the
/// service's overview of these calls says 1.5 MB per request (code 23 past it).
///
/// The overview does not say whether "MB" is 10^6 or 2^20 bytes, nor whether the
/// multipart envelope counts, so this is the smaller reading (1 500 000 bytes, the
/// envelope included). It is only a starting point: the engine learns the real limit
/// from 23 (or HTTP 413) answers and remembers it in the progress store.
pub const MAX_REQUEST_BYTES: u64 = 1_500_000;

/// A group holds at most this many persons (the service answers -1310 past it).
pub const MAX_PERSONS_PER_GROUP: usize = 20_000;

/// An AppID holds at most this many groups (the service answers -1311 past it).
pub const MAX_GROUPS_PER_APPID: usize = 5_000;

/// Bytes the planner reserves in every request for the multipart envelope: the
/// text fields, the part headers and boundaries around each image.
pub const REQUEST_ENVELOPE_BYTES: u64 = 16 * 1024;

/// Person-library calls per second allowed per account by default (code 15 past it).
pub const DEFAULT_QPS: u32 = 50;

/// Longest person_id or group_id, in bytes, before the service answers -1304.
///
/// The contract says only "over-long values give -1304"; 64 bytes is the limit this
/// project assumes and the emulator enforces.
pub const MAX_ID_BYTES: usize = 64;

/// Longest person_name, in bytes, before -1304 (a documented assumption, as above).
pub const MAX_NAME_BYTES: usize = 256;

/// Longest tag, in bytes, before -1304 (a documented assumption, as above).
pub const MAX_TAG_BYTES: usize = 1024;

/// Characters that may not appear in an id (-1313): space, slash, tab, newline,
/// and the carriage return that travels with newlines.
pub const ILLEGAL_ID_CHARS: &[char] = &[' ', '/', '\t', '\n', '\r'];

/// The longest validity a multi-use signature may have: three months.
pub const MAX_SIGNATURE_VALIDITY_SECS: u64 = 90 * 24 * 3600;
