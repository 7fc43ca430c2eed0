//! Chunks: how one person's photos split into `addface` calls. Pure; the planner
//! counts calls with it and the engine cuts the calls it makes with it.

use crate::limits::{RequestBudget, MAX_IMAGES_PER_ADDFACE};
use std::ops::Range;

/// A photo's size as [`chunks`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkItem {
    /// Bytes the photo adds to a request (a file's size; a URL's length).
    pub bytes: u64,
    pub is_url: bool,
}

/// Splits a person's photos (in order) into `addface` chunks.
///
/// Each chunk is a run of consecutive items: at most [`MAX_IMAGES_PER_ADDFACE`]
/// photos, at most the budget's [`RequestBudget::chunk_image_bytes`] of images, all
/// files or all URLs. No more than `room` photos are put in chunks in all; items past
/// that are in no chunk. An item over the byte budget on its own is in no chunk
/// either: the caller fails it (or re-encodes it first). Chunks are in item order.
pub fn chunks(items: &[ChunkItem], room: usize, budget: &RequestBudget) -> Vec<Range<usize>> {
    let budget = budget.chunk_image_bytes();
    let mut out = Vec::new();
    let mut placed = 0;
    // The chunk being filled and its bytes.
    let mut open: Option<(Range<usize>, u64)> = None;
    for (i, item) in items.iter().enumerate() {
        if placed == room {
            break;
        }
        if item.bytes > budget {
            out.extend(open.take().map(|(r, _)| r));
            continue;
        }
        if let Some((r, bytes)) = &open {
            if r.len() == MAX_IMAGES_PER_ADDFACE
                || bytes + item.bytes > budget
                || items[r.start].is_url != item.is_url
            {
                out.extend(open.take().map(|(r, _)| r));
            }
        }
        match &mut open {
            Some((r, bytes)) => {
                r.end = i + 1;
                *bytes += item.bytes;
            }
            None => open = Some((i..i + 1, item.bytes)),
        }
        placed += 1;
    }
    out.extend(open.map(|(r, _)| r));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_REQUEST_BYTES;
    use proptest::prelude::*;

    fn files(sizes: &[u64]) -> Vec<ChunkItem> {
        sizes
            .iter()
            .map(|&bytes| ChunkItem {
                bytes,
                is_url: false,
            })
            .collect()
    }

    const MB: u64 = 1024 * 1024;
    /// The budget of the documented request limit.
    const DOCUMENTED: RequestBudget = RequestBudget::configured(MAX_REQUEST_BYTES);

    #[test]
    fn twenty_photos_per_chunk() {
        let items = files(&[1000; 45]);
        assert_eq!(chunks(&items, 45, &DOCUMENTED), vec![0..20, 20..40, 40..45]);
    }

    #[test]
    fn chunks_stop_at_the_room_left() {
        let items = files(&[1000; 45]);
        assert_eq!(chunks(&items, 19, &DOCUMENTED), vec![0..19]);
        assert_eq!(chunks(&items, 0, &DOCUMENTED), Vec::<Range<usize>>::new());
    }

    #[test]
    fn chunks_stay_under_the_request_limit() {
        // At 6 MiB (budget 6 MiB - 16 KiB), two 3 MiB photos do not fit together.
        let items = files(&[3 * MB, 3 * MB, 2 * MB, MB]);
        assert_eq!(
            chunks(&items, 20, &RequestBudget::configured(6 * MB)),
            vec![0..1, 1..3, 3..4]
        );
    }

    #[test]
    fn a_photo_too_large_alone_is_in_no_chunk() {
        let items = files(&[MB, 7 * MB, MB]);
        assert_eq!(chunks(&items, 20, &DOCUMENTED), vec![0..1, 2..3]);
    }

    #[test]
    fn files_and_urls_are_never_mixed() {
        let mut items = files(&[10, 10, 10]);
        items[1].is_url = true;
        assert_eq!(chunks(&items, 20, &DOCUMENTED), vec![0..1, 1..2, 2..3]);
    }

    proptest! {
        #[test]
        fn chunks_respect_every_limit(
            items in prop::collection::vec((0u64..4_000_000, any::<bool>()), 0..80),
            room in 0usize..60,
            limit in 20_000u64..8_000_000,
        ) {
            let items: Vec<ChunkItem> =
                items.into_iter().map(|(bytes, is_url)| ChunkItem { bytes, is_url }).collect();
            let limit = RequestBudget::configured(limit);
            let budget = limit.chunk_image_bytes();
            let got = chunks(&items, room, &limit);
            let mut next = 0;
            let mut placed = 0;
            for r in &got {
                prop_assert!(!r.is_empty());
                prop_assert!(r.start >= next, "chunks in order, disjoint");
                // Anything skipped between chunks is too large alone.
                for item in &items[next..r.start] {
                    prop_assert!(item.bytes > budget);
                }
                prop_assert!(r.len() <= MAX_IMAGES_PER_ADDFACE);
                let bytes: u64 = items[r.clone()].iter().map(|i| i.bytes).sum();
                prop_assert!(bytes <= budget);
                prop_assert!(items[r.clone()].iter().all(|i| i.is_url == items[r.start].is_url));
                placed += r.len();
                next = r.end;
            }
            prop_assert!(placed <= room);
            // Past the last chunk: only items too large alone, unless room ran out.
            if placed < room {
                for item in &items[next..] {
                    prop_assert!(item.bytes > budget);
                }
            }
        }
    }
}
