//! A photo over the request limit on its own is sent as a smaller copy.
//!
//! The request limit is learned from the service's refusals (23 or HTTP 413, see
//! [`RequestLimit`](crate::limits::RequestLimit)). A photo that is refused alone, or
//! that is larger than the smallest request refused so far, cannot travel as it is
//! prepared; unless re-encoding is off (`--no-resize`), it is re-encoded by the
//! normalizer to a smaller budget and sent again.
//!
//! The budget is a step of a fixed ladder (each step a quarter under the one before,
//! from the normalizer's own budget down to [`MIN_COPY_BYTES`]): the largest step
//! under the limit learned. So a copy refused again leads to the next step (a few
//! refusals reach the real limit, never a byte-by-byte creep), and a job resumed
//! with the same limit makes the very same copy, whose face the service then
//! recognises as one it holds. A photo is failed, with the sizes, only when even the
//! smallest step does not fit.

use crate::normalize::{self, NormalizeError, NormalizeOptions, Normalized, Prepared};
use std::path::Path;

/// The smallest copy the job sends: a JPEG of 16 KB is a picture of a few hundred
/// pixels across, and a face in a smaller one is hardly worth enrolling.
pub const MIN_COPY_BYTES: u64 = 16_000;

/// The budget of a smaller copy under `limit` bytes: the largest step of the ladder
/// from `start` under it, if one is at least [`MIN_COPY_BYTES`].
pub fn copy_budget(start: u64, limit: u64) -> Option<u64> {
    let mut step = start;
    while step > limit {
        step -= step / 4;
    }
    (step >= MIN_COPY_BYTES).then_some(step)
}

/// A copy of the photo at `path` of at most `limit` bytes, or why none is made.
pub(super) fn smaller_copy(
    path: &Path,
    options: &NormalizeOptions,
    limit: u64,
) -> Result<(Vec<u8>, Normalized), String> {
    if !options.enabled {
        return Err("re-encoding is off (--no-resize)".to_owned());
    }
    let budget = copy_budget(options.budget(), limit).ok_or_else(|| {
        format!(
            "a copy under {limit} bytes would be under the smallest sent ({MIN_COPY_BYTES} bytes)"
        )
    })?;
    let smaller = NormalizeOptions {
        max_bytes: budget,
        ..*options
    };
    match normalize::prepare_down_to(path, &smaller, normalize::Floor::RequestLimit) {
        Ok(Prepared::Normalized { bytes, normalized }) => Ok((bytes, normalized)),
        Ok(Prepared::Cropped { bytes, cropped }) => Ok((bytes, cropped.copy)),
        // Within the smaller budget already: the copy prepared before was larger.
        Ok(Prepared::AsIs) => Err(format!(
            "the photo is within {budget} bytes as it is, yet was prepared larger"
        )),
        // Not the per-photo budget's fault: the request limit leaves no more.
        Err(NormalizeError::OverBudget {
            bytes,
            dims,
            quality,
            ..
        }) => Err(format!(
            "no copy of {budget} bytes could be made: even at {}×{} px and JPEG quality \
             {quality} it takes about {bytes} bytes",
            dims.0, dims.1
        )),
        Err(e) => Err(format!("no copy of {budget} bytes could be made: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_budget_is_the_largest_step_under_the_limit() {
        assert_eq!(copy_budget(300_000, 400_000), Some(300_000));
        assert_eq!(copy_budget(300_000, 299_999), Some(225_000));
        assert_eq!(copy_budget(300_000, 225_000), Some(225_000));
        assert_eq!(copy_budget(300_000, 100_000), Some(94_923));
        // The same limit gives the same step, whatever was tried before.
        assert_eq!(copy_budget(300_000, 100_000), copy_budget(300_000, 99_000));
        assert_eq!(copy_budget(300_000, 16_000), None);
        assert_eq!(copy_budget(300_000, 20_000), Some(16_896));
    }
}
