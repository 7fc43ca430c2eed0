//! One job split over many machines: `--shard I/N`.
//!
//! A shard takes the persons whose [`bucket`] of N is I, so all the calls for one
//! person are made by one shard, and a re-run of shard I takes the same persons.
//! Shards need no coordinator: each has its own state directory and reads the whole
//! source, keeping only its persons ([`Shard::split`], called where the planner opens
//! the source). An unusable manifest row goes with the person it names; entries that
//! name no person (a stray file at the root of a tree, a row without a person) belong
//! to shard 0, so that each is reported once.

use crate::source::SourceItem;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Shard I of N (0 <= I < N). `0/1`, the default, is the whole job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

/// Why a `--shard` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("--shard {0:?}: expected I/N, e.g. 0/4 for the first of four shards")]
    Form(String),
    #[error("--shard {0:?}: N (the number of shards) must be at least 1")]
    NoShards(String),
    #[error("--shard {given:?}: I must be between 0 and {last} (shards are counted from 0)")]
    Index { given: String, last: u32 },
}

impl Shard {
    /// The whole job, unsplit.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        Shard::from_str(&format!("{index}/{count}"))
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether the job is split at all.
    pub fn is_split(&self) -> bool {
        self.count > 1
    }

    /// Whether this shard takes `person` (an id in Unicode NFC).
    pub fn takes(&self, person: &str) -> bool {
        bucket(person, self.count) == self.index
    }

    /// This shard's share of a rate the whole job may use: `qps / N`, at least 1
    /// (0, unlimited, stays 0).
    pub fn share_of(&self, qps: u32) -> u32 {
        if qps == 0 {
            0
        } else {
            (qps / self.count).max(1)
        }
    }

    /// Keeps this shard's items of a source's stream. The returned count fills as the
    /// stream is read: what belongs to the other shards.
    pub fn split(
        &self,
        items: Box<dyn Iterator<Item = SourceItem> + Send>,
    ) -> (
        Box<dyn Iterator<Item = SourceItem> + Send>,
        Arc<Mutex<OtherShards>>,
    ) {
        let others = Arc::new(Mutex::new(OtherShards::default()));
        if !self.is_split() {
            return (items, others);
        }
        let shard = *self;
        let count = Arc::clone(&others);
        let mine = items.filter(move |item| {
            let (person, photo) = match item {
                SourceItem::Photo(record) => (Some(&record.person), true),
                SourceItem::Problem(problem) => match (&problem.photo, &problem.cells) {
                    (Some(record), _) => (Some(&record.person), true),
                    (None, Some(cells)) if !cells.person_id.is_empty() => {
                        (Some(&cells.person_id), false)
                    }
                    (None, _) => (None, false),
                },
            };
            let Some(person) = person else {
                return shard.index == 0;
            };
            if shard.takes(person) {
                return true;
            }
            let mut others = count.lock().unwrap_or_else(|e| e.into_inner());
            others.photos += usize::from(photo);
            others.persons.insert(person_hash(person));
            false
        });
        (Box::new(mine), others)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(given: &str) -> Result<Shard, ShardError> {
        let form = || ShardError::Form(given.to_owned());
        let (i, n) = given.trim().split_once('/').ok_or_else(form)?;
        let index: u32 = i.trim().parse().map_err(|_| form())?;
        let count: u32 = n.trim().parse().map_err(|_| form())?;
        if count == 0 {
            return Err(ShardError::NoShards(given.to_owned()));
        }
        if index >= count {
            return Err(ShardError::Index {
                given: given.to_owned(),
                last: count - 1,
            });
        }
        Ok(Shard { index, count })
    }
}

/// What a shard's pass over the source left to the other shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherShards {
    /// Listed photos of the other shards' persons (not counting unusable rows).
    pub photos: usize,
    /// The other shards' persons, by [`person_hash`].
    pub persons: HashSet<u64>,
}

/// The stable hash of a person id: the first 8 bytes of the BLAKE3 hash of the id's
/// UTF-8 bytes in Unicode NFC, read little-endian.
///
/// It decides which shard makes a person's calls, across runs, machines and versions
/// of this program: it must never change (a change would move persons between shards
/// that already hold state for them). The test `the_hash_never_changes` pins it.
pub fn person_hash(person: &str) -> u64 {
    use unicode_normalization::UnicodeNormalization as _;
    let nfc: String = person.nfc().collect();
    let digest = blake3::hash(nfc.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// The shard of `count` that takes `person`: [`person_hash`] mod `count`.
pub fn bucket(person: &str, count: u32) -> u32 {
    (person_hash(person) % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_never_changes() {
        // Literal values: a change here moves persons between existing shards.
        assert_eq!(person_hash("alice"), 0x4744_43dc_f378_b271);
        assert_eq!(person_hash("p0001"), 0xcc91_08f9_ddce_e4d8);
        assert_eq!(person_hash("josé"), 0x5812_3fa1_6a60_660f);
        assert_eq!(bucket("alice", 7), 0);
        assert_eq!(bucket("p0001", 3), 1);
    }

    #[test]
    fn spellings_of_one_person_share_a_shard() {
        // "josé" composed (NFC) and decomposed (NFD, as macOS writes folder names).
        assert_eq!(person_hash("jos\u{e9}"), person_hash("jose\u{301}"));
    }

    #[test]
    fn every_person_has_exactly_one_shard() {
        for count in [1, 3, 7] {
            for p in 0..200 {
                let person = format!("p{p:04}");
                let takers = (0..count)
                    .filter(|&i| Shard::new(i, count).unwrap().takes(&person))
                    .count();
                assert_eq!(takers, 1, "{person} of {count}");
            }
        }
    }

    #[test]
    fn persons_spread_over_the_shards() {
        let mut per = [0usize; 4];
        for p in 0..4000 {
            per[bucket(&format!("person-{p}"), 4) as usize] += 1;
        }
        assert!(per.iter().all(|&n| (800..1200).contains(&n)), "{per:?}");
    }

    #[test]
    fn the_value_is_checked_and_errors_name_the_flag() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert_eq!("0/1".parse::<Shard>().unwrap(), Shard::WHOLE);
        for (given, words) in [
            ("4/4", "between 0 and 3"),
            ("0/0", "at least 1"),
            ("1", "expected I/N"),
            ("-1/4", "expected I/N"),
            ("a/b", "expected I/N"),
        ] {
            let e = given.parse::<Shard>().unwrap_err().to_string();
            assert!(
                e.starts_with("--shard") && e.contains(words),
                "{given}: {e}"
            );
        }
    }

    #[test]
    fn the_rate_is_shared() {
        let s = Shard::new(1, 4).unwrap();
        assert_eq!(s.share_of(50), 12);
        assert_eq!(s.share_of(0), 0);
        assert_eq!(Shard::new(0, 100).unwrap().share_of(50), 1);
        assert_eq!(Shard::WHOLE.share_of(50), 50);
    }
}
