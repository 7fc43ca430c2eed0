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

/// The most pixels a photo's header may declare: 100 megapixels. A camera original
/// is 12 to 50 megapixels and a large scan rarely more; a header that claims more is
/// read as a damaged file or a decompression bomb (a 3 KB JPEG claiming 65500×65500
/// pixels took 20 s of CPU and 400 MB to decode into a grey square) and the photo
/// fails as unusable input, naming its size, before it is decoded or sent. Not a
/// limit of the service's: it bounds the work and memory of one photo here.
pub const MAX_PHOTO_PIXELS: u64 = 100_000_000;

/// A group holds at most this many persons (the service answers -1310 past it).
pub const MAX_PERSONS_PER_GROUP: usize = 20_000;

/// An AppID holds at most this many groups (the service answers -1311 past it).
pub const MAX_GROUPS_PER_APPID: usize = 5_000;

/// The group limits a job plans with: [`MAX_PERSONS_PER_GROUP`] and
/// [`MAX_GROUPS_PER_APPID`] unless a test lowers them to reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    pub persons_per_group: usize,
    pub groups: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        GroupLimits {
            persons_per_group: MAX_PERSONS_PER_GROUP,
            groups: MAX_GROUPS_PER_APPID,
        }
    }
}

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
/// and the carriage return that travels with newlines, as the contract lists them
/// (spec/API.md: "special characters *such as* space, `/`, tab or newline"), and the
/// backslash. The list is open; past the characters it names, an id may hold no
/// control character either ([`is_illegal_in_id`]): a NUL or an escape in an id
/// would end or garble it in every C string, log line and terminal on the way. The
/// IAI API's documented alphabet, `[A-Za-z0-9-%@#&_]`, excludes all of these too.
pub const ILLEGAL_ID_CHARS: &[char] = &[' ', '/', '\\', '\t', '\n', '\r'];

/// Whether `c` may not appear in an id: one of [`ILLEGAL_ID_CHARS`] or a control
/// character (NUL, ESC, DEL, ...).
pub fn is_illegal_in_id(c: char) -> bool {
    ILLEGAL_ID_CHARS.contains(&c) || c.is_control()
}

/// The longest validity a multi-use signature may have: three months.
pub const MAX_SIGNATURE_VALIDITY_SECS: u64 = 90 * 24 * 3600;

/// The request body limit as the job has learned it from the service's answers,
/// in the bytes the chunker counts (the images plus [`REQUEST_ENVELOPE_BYTES`]).
///
/// The limit is not known for sure (see [`MAX_REQUEST_BYTES`]), so the job starts
/// from the configured figure and narrows the limit down between the largest request
/// the service accepted and the smallest it refused as too large (23 or HTTP 413),
/// halving the gap at each refusal. Once the gap is within [`LIMIT_PRECISION`] it
/// cuts requests to the largest accepted and stops probing. The progress store keeps
/// it, so a later run starts from what an earlier one learned; a later run cuts
/// requests to the largest accepted and probes again only if it is refused itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RequestLimit {
    /// The largest request the service accepted.
    pub accepted: u64,
    /// The smallest request the service refused as too large, if any.
    pub refused: Option<u64>,
    /// Whether this run was refused itself, and so probes between the two.
    #[serde(skip)]
    pub probing: bool,
}

/// How close the largest accepted and the smallest refused request must be before
/// the job stops probing between them: 1/8 of the refused size. Finer costs more
/// refused calls (chunks of photos of uneven sizes land on both sides of the real
/// limit for a long time) for at most an eighth more photos per call.
pub const LIMIT_PRECISION: u64 = 8;

impl RequestLimit {
    /// The request size to cut chunks to, starting from `start` (the configured
    /// limit) when nothing was refused.
    pub fn budget(&self, start: u64) -> u64 {
        let Some(refused) = self.refused else {
            return start;
        };
        let gap = refused.saturating_sub(self.accepted);
        let learned = if self.accepted == 0 {
            refused / 2
        } else if !self.probing || gap <= refused / LIMIT_PRECISION {
            self.accepted
        } else {
            self.accepted + gap / 2
        };
        learned.min(start)
    }

    /// The largest request that may still be sent: just under the smallest refused.
    pub fn ceiling(&self, start: u64) -> u64 {
        self.refused
            .map_or(start, |r| r.saturating_sub(1))
            .min(start)
    }

    /// The service accepted a request of `bytes`; answers whether that changed what
    /// the job knows.
    pub fn accept(&mut self, bytes: u64) -> bool {
        if bytes <= self.accepted {
            return false;
        }
        self.accepted = bytes;
        if self.refused.is_some_and(|r| r <= bytes) {
            // The limit was raised since it was refused: probe again.
            self.refused = None;
        }
        true
    }

    /// The service refused a request of `bytes` as too large.
    pub fn refuse(&mut self, bytes: u64) {
        self.probing = true;
        self.refused = Some(self.refused.map_or(bytes, |r| r.min(bytes)));
        if self.accepted >= bytes {
            // The limit was lowered since it accepted more: search below again.
            self.accepted = 0;
        }
    }

    /// Whether a refusal taught the job anything.
    pub fn learned(&self) -> bool {
        self.refused.is_some()
    }
}

/// What one request may carry: the request limit (configured, or learned from the
/// service's refusals, see [`RequestLimit`]) and what is left of it for images once
/// the multipart envelope ([`REQUEST_ENVELOPE_BYTES`]) is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBudget {
    /// The configured limit, the starting point.
    configured: u64,
    /// The request size to cut chunks to.
    chunk: u64,
    /// The largest request that may be sent at all.
    ceiling: u64,
}

impl RequestBudget {
    /// The budget before anything is learned: the configured limit.
    pub const fn configured(limit: u64) -> RequestBudget {
        RequestBudget {
            configured: limit,
            chunk: limit,
            ceiling: limit,
        }
    }

    /// The budget with what the job learned of the limit.
    pub fn learned(configured: u64, limit: &RequestLimit) -> RequestBudget {
        RequestBudget {
            configured,
            chunk: limit.budget(configured),
            ceiling: limit.ceiling(configured),
        }
    }

    /// This budget's configured limit with what the job learned of the limit (kept
    /// in the store, or learned in this run).
    pub fn with_learned(self, limit: &RequestLimit) -> RequestBudget {
        RequestBudget::learned(self.configured, limit)
    }

    /// The configured request limit, envelope included.
    pub const fn configured_request_bytes(&self) -> u64 {
        self.configured
    }

    /// The size of a request carrying `image_bytes` of images, as the chunker
    /// counts it.
    pub const fn request_size(image_bytes: u64) -> u64 {
        REQUEST_ENVELOPE_BYTES + image_bytes
    }

    /// The request size chunks are cut to, envelope included.
    pub const fn chunk_request_bytes(&self) -> u64 {
        self.chunk
    }

    /// The most image bytes a chunk carries: the chunk size less the envelope.
    pub const fn chunk_image_bytes(&self) -> u64 {
        self.chunk.saturating_sub(REQUEST_ENVELOPE_BYTES)
    }

    /// The most image bytes a request under the configured limit carries.
    pub const fn configured_image_bytes(&self) -> u64 {
        self.configured.saturating_sub(REQUEST_ENVELOPE_BYTES)
    }

    /// The largest photo that may be sent alone, under the limit learned.
    pub const fn photo_bytes(&self) -> u64 {
        self.ceiling.saturating_sub(REQUEST_ENVELOPE_BYTES)
    }

    /// Whether the service's refusals lowered the limit under the configured one.
    pub const fn is_learned(&self) -> bool {
        self.ceiling < self.configured
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_counts_the_envelope_and_what_was_learned() {
        let start = RequestBudget::configured(1_000_000);
        assert_eq!(start.chunk_request_bytes(), 1_000_000);
        assert_eq!(start.photo_bytes(), 1_000_000 - REQUEST_ENVELOPE_BYTES);
        assert_eq!(start.configured_image_bytes(), start.photo_bytes());
        assert_eq!(start.chunk_image_bytes(), start.photo_bytes());
        assert!(!start.is_learned());
        let limit = RequestLimit {
            accepted: 300_000,
            refused: Some(500_000),
            probing: false,
        };
        let learned = RequestBudget::learned(1_000_000, &limit);
        assert_eq!(learned.chunk_request_bytes(), 300_000);
        assert_eq!(
            learned.chunk_image_bytes(),
            300_000 - REQUEST_ENVELOPE_BYTES
        );
        assert_eq!(start.with_learned(&limit), learned);
        assert_eq!(learned.photo_bytes(), 499_999 - REQUEST_ENVELOPE_BYTES);
        assert_eq!(learned.configured_image_bytes(), start.photo_bytes());
        assert!(learned.is_learned());
        assert_eq!(RequestBudget::configured(100).photo_bytes(), 0);
        assert_eq!(RequestBudget::request_size(10), REQUEST_ENVELOPE_BYTES + 10);
    }

    /// Sends requests as a job would, against a service whose limit is `real`, and
    /// answers the refusals it took to settle and the budget it settled at.
    fn settle(real: u64, start: u64, item: u64) -> (u32, u64) {
        let mut limit = RequestLimit::default();
        let mut refusals = 0;
        for _ in 0..200 {
            let budget = limit.budget(start);
            let items = ((budget - REQUEST_ENVELOPE_BYTES) / item).max(1);
            let size = items * item + REQUEST_ENVELOPE_BYTES;
            if size <= real {
                limit.accept(size);
            } else {
                refusals += 1;
                limit.refuse(size);
            }
        }
        (refusals, limit.budget(start))
    }

    #[test]
    fn the_budget_converges_to_the_real_limit_in_a_few_refusals() {
        let (refusals, budget) = settle(1 << 20, MAX_REQUEST_BYTES, 100_000);
        assert!(refusals <= 4, "{refusals} refusals");
        // Chunks of whole photos are cut under the budget; the refusals above bound
        // how often a chunk cut to it is refused.
        assert!((900_000..=1_100_000).contains(&budget), "{budget}");
        // A limit above the start is never probed.
        assert_eq!(
            settle(6 << 20, MAX_REQUEST_BYTES, 100_000),
            (0, MAX_REQUEST_BYTES)
        );
        // Small photos: close to the limit.
        let (refusals, budget) = settle(1_000_000, MAX_REQUEST_BYTES, 5_000);
        assert!(refusals <= 8, "{refusals} refusals");
        assert!((875_000..=1_000_000).contains(&budget), "{budget}");
    }

    #[test]
    fn a_limit_that_moves_is_learned_again() {
        let mut limit = RequestLimit::default();
        limit.refuse(1_000_000);
        limit.accept(900_000);
        assert_eq!(limit.ceiling(MAX_REQUEST_BYTES), 999_999);
        limit.accept(1_200_000);
        assert_eq!(limit.refused, None);
        limit.refuse(500_000);
        assert_eq!((limit.accepted, limit.refused), (0, Some(500_000)));
        assert_eq!(limit.budget(MAX_REQUEST_BYTES), 250_000);
    }

    #[test]
    fn a_later_run_cuts_to_the_largest_accepted_without_probing() {
        let mut limit = RequestLimit::default();
        limit.refuse(1_400_000);
        limit.accept(700_000);
        assert_eq!(limit.budget(MAX_REQUEST_BYTES), 1_050_000, "probing");
        let kept: RequestLimit =
            serde_json::from_str(&serde_json::to_string(&limit).unwrap()).unwrap();
        assert_eq!(kept.budget(MAX_REQUEST_BYTES), 700_000);
    }
}
