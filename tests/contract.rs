//! The job against every reading of the points the contract leaves open (API.md):
//! -1309 for the whole call or image by image, the request body limit learned from
//! 23 or HTTP 413, persons and faces the job did not make. Each test checks what the
//! emulator holds, under both readings of -1309.

mod common;

use common::*;
use faceenroll::emulator::{Contract, Emulator, Prepared, TooLarge};
use faceenroll::model::{GroupId, PersonId};
use faceenroll::service::client::ImageBody;
use faceenroll::service::codes::{Class, Outcome};
use std::sync::Arc;

fn emulator_under(contract: Contract) -> Emulator {
    emulator_with(|c| c.contract = contract)
}

fn bytes(b: Vec<u8>) -> ImageBody {
    ImageBody::Bytes {
        filename: "p.png".into(),
        bytes: Arc::from(b),
    }
}

#[test]
fn a_body_over_the_limit_is_refused_as_too_large_either_way() {
    for how in [TooLarge::Code23, TooLarge::Http413] {
        let emulator = emulator_under(Contract {
            max_request_bytes: 4000,
            too_large: how,
            ..Contract::default()
        });
        let client = client(&emulator);
        let id = PersonId::new("p").unwrap();
        let groups = [GroupId::new("g").unwrap()];
        client
            .new_person(&id, &groups, &bytes(photo(1)), None, None)
            .unwrap();
        let big: Vec<ImageBody> = (2..10).map(|s| bytes(photo(s))).collect();
        let err = client.add_faces(&id, &big, None).unwrap_err();
        assert_eq!(
            err.class(),
            Class::Outcome(Outcome::TooLarge),
            "{how:?}: {err}"
        );
        assert_eq!(emulator.snapshot().persons["p"].faces.len(), 1, "{how:?}");
        assert_eq!(
            emulator.counters().http_413,
            u64::from(how == TooLarge::Http413)
        );
    }
}

#[test]
fn a_prepared_account_holds_its_persons_before_any_job() {
    let emulator = emulator_under(Contract {
        prepared: vec![Prepared {
            person: "pre".into(),
            group: "staff".into(),
            faces: 18,
        }],
        ..Contract::default()
    });
    let snapshot = emulator.snapshot();
    assert_eq!(snapshot.persons["pre"].faces.len(), 18);
    assert_eq!(snapshot.groups["staff"], ["pre"]);
    assert_eq!(emulator.counters().requests, 0);
}
