//! What tests and operators can read of a running emulator besides the API: the
//! whole state ([`StateSnapshot`](super::state::StateSnapshot)) and the
//! [`Counters`], from the library type or over HTTP outside `/face/`:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /_emulator/state` | the [`StateSnapshot`](super::state::StateSnapshot) as JSON |
//! | `GET /_emulator/counters` | the [`Counters`] as JSON |
//! | `GET /_emulator/faults` | the current [`Faults`](super::faults::Faults) |
//! | `PUT /_emulator/faults` | replaces the faults (body: `Faults` JSON; missing fields are off) |
//! | `PUT /_emulator/qps` | sets the rate limit (body: `{"qps": 5}`, `null` or 0 = unlimited) |
//! | `POST /_emulator/inject` | answers the next calls with a code (body: `{"code": 3, "count": 1}`) |
//!
//! These requests are neither signed, rate limited nor counted.

use super::faults::FaultCounters;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the emulator has seen and answered since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Calls received on `/face/...`, whatever became of them.
    pub requests: u64,
    /// Connections accepted.
    pub connections: u64,
    /// Calls received, by call name (`newperson`, ...).
    pub calls: BTreeMap<String, u64>,
    /// Answers sent, by answer code (calls dropped or whose answer was lost are
    /// not answers).
    pub codes: BTreeMap<i64, u64>,
    /// Bodies over the limit refused with HTTP 413 (under
    /// [`TooLarge::Http413`](super::contract::TooLarge::Http413)) rather than code 23.
    #[serde(default)]
    pub http_413: u64,
    /// Faults injected, by kind.
    pub faults: FaultCounters,
}

impl Counters {
    /// How many answers carried `code`.
    pub fn answered(&self, code: i64) -> u64 {
        self.codes.get(&code).copied().unwrap_or(0)
    }

    /// How many `name` calls were received.
    pub fn received(&self, name: &str) -> u64 {
        self.calls.get(name).copied().unwrap_or(0)
    }
}

/// Body of `PUT /_emulator/qps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QpsRequest {
    pub qps: Option<u32>,
}

/// Body of `POST /_emulator/inject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectRequest {
    pub code: i64,
    pub count: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_round_trip_through_json() {
        let mut c = Counters::default();
        c.codes.insert(-1309, 2);
        c.codes.insert(0, 5);
        c.calls.insert("addface".into(), 7);
        c.faults.drop_connection = 1;
        let text = serde_json::to_string(&c).unwrap();
        let back: Counters = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.answered(-1309), 2);
        assert_eq!(back.answered(15), 0);
        assert_eq!(back.received("addface"), 7);
    }
}
