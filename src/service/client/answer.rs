//! Reading an answer: the contract's envelope, the service's code, and the data.

use super::{CallError, TransportKind};
use crate::service::api::{Call, Envelope};
use crate::service::codes::code;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The part of an answer every answer has.
#[derive(Deserialize)]
struct Head {
    #[serde(deserialize_with = "crate::service::api::lenient::int")]
    code: i64,
    #[serde(default, deserialize_with = "crate::service::api::lenient::string")]
    message: String,
}

/// The call's data from an answer's body, or the error the answer carries.
pub(super) fn decode<T: DeserializeOwned + Default>(
    call: Call,
    status: u16,
    bytes: &[u8],
) -> Result<T, CallError> {
    let head = serde_json::from_slice::<Head>(bytes);
    match head {
        // An addface that added nothing may answer a refused image's code with
        // every image's code still in `ret_codes` (API.md, points left open):
        // the images' outcomes are the answer, as with code 0.
        Ok(head) if head.code != code::OK && call == Call::AddFace => {
            match carries_ret_codes::<T>(bytes) {
                Some(data) => Ok(data),
                None => Err(CallError::Service {
                    call,
                    code: head.code,
                    message: head.message,
                }),
            }
        }
        Ok(head) if head.code != code::OK => Err(CallError::Service {
            call,
            code: head.code,
            message: head.message,
        }),
        _ if status != 200 => Err(CallError::Transport {
            call,
            kind: TransportKind::HttpStatus(status),
            detail: snippet(bytes),
        }),
        Ok(_) => serde_json::from_slice::<Envelope<T>>(bytes)
            .map(|e| e.data)
            .map_err(|e| CallError::Transport {
                call,
                kind: TransportKind::BadAnswer,
                detail: format!("code 0 but its data does not fit: {e}"),
            }),
        Err(e) => Err(CallError::Transport {
            call,
            kind: TransportKind::BadAnswer,
            detail: format!("{e}: {}", snippet(bytes)),
        }),
    }
}

/// The data of an answer whose `ret_codes` lists at least one image's outcome.
fn carries_ret_codes<T: DeserializeOwned + Default>(bytes: &[u8]) -> Option<T> {
    let envelope: Envelope<serde_json::Value> = serde_json::from_slice(bytes).ok()?;
    let filled = envelope
        .data
        .get("ret_codes")
        .and_then(|c| c.as_array())
        .is_some_and(|c| !c.is_empty());
    if !filled {
        return None;
    }
    serde_json::from_value(envelope.data).ok()
}

/// The start of an answer body, for messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let text = text.trim();
    if text.is_empty() {
        "empty body".into()
    } else {
        format!("body starts {text:?}")
    }
}
