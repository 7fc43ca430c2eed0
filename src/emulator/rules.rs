//! The service's rules: one call applied to the account gives one answer.
//!
//! Pure: the images were already fetched and examined ([`super::images`]) and the
//! signature checked; [`apply`] only reads the parameters, changes the state and
//! builds the answer from the wire types of [`crate::service::api`].
//!
//! # Rules, in the order they are checked
//!
//! - Ids (`person_id`, every `group_ids` entry, `group_id`): missing or empty
//!   -1301; a space, `/`, tab or newline -1313; over
//!   [`MAX_ID_BYTES`](crate::limits::MAX_ID_BYTES) -1304 ([`check_id`]).
//!   `person_name` over [`MAX_NAME_BYTES`] and `tag` over [`MAX_TAG_BYTES`]: -1304.
//!   A required list that is missing or empty: -1301.
//! - `newperson`: no image at all -1301; the person exists -1302; then the image's
//!   own verdict (-1300, -1400, -1102, -1101, -1308) is the answer of the whole
//!   call, and nothing is created. Otherwise the person, its groups (created on
//!   first use, duplicates in `group_ids` counted once) and its first face.
//! - `addface`: the person is missing -1303; no image -1301. Then, image by image
//!   in order, `ret_codes[i]` is the first that applies of: the image's own verdict
//!   (including an injected -1200); -1312 if the person already has a face with the
//!   same content hash (including one added earlier in the same call); -1309 if
//!   the person already holds [`MAX_FACES_PER_PERSON`] faces; else 0 and the face
//!   is added. By default the duplicate check comes before the full check, so a
//!   duplicate sent to a full person is reported as a duplicate; under
//!   [`DuplicateWhenFull::Full`] the full check comes first and it is answered
//!   -1309. The call answers 0 whenever the
//!   person exists and the request is well formed, even if no image was added: the
//!   outcome of each image is in `ret_codes`. `tag` is validated and not stored.
//!   Under the whole-call reading of -1309 ([`FullReading::WholeCall`]), a call whose
//!   images plus the person's faces would pass the limit is answered -1309 before
//!   any image is looked at, and nothing is added. Under [`EmptyAnswer::FirstCode`],
//!   a call that added nothing answers the first image's code, `ret_codes` filled.
//! - `newperson` and `addgroupids`: a group that already holds
//!   [`Contract::max_persons_per_group`] persons -1310; groups the account does not
//!   hold yet that would take it past [`Contract::max_groups`] -1311. Nothing is
//!   changed.
//! - `delface`: the faces of `face_ids` that belong to the person are deleted, the
//!   others ignored; -1305 if none was deleted, or under [`FaceGone::DeletedZero`]
//!   code 0 with `deleted` 0.
//! - `setinfo`: neither `person_name` nor `tag` given -1301; sets those given.
//! - `getpersonids`: a group that does not exist (no person in it) -1306.
//! - `getfaceinfo`: an unknown face id -1305. The attributes are derived from the
//!   face's content hash and size, so they are plausible and the same every time.
//! - `addgroupids`/`delgroupids`: `added`/`deleted` count the memberships that
//!   changed; `group_ids` is the person's groups afterwards. A person may be left
//!   in no group, unless under [`LastGroup::Refused`]: a `delgroupids` that would
//!   leave the person in no group is answered [`LAST_GROUP_REFUSED`] and removes
//!   nothing.
//! - `session_id` is echoed when the request carries one, else empty.
//!
//! Every answer has `code`, `message` and `data`; an error's `data` is `{}`.

use super::contract::{
    Contract, DuplicateWhenFull, EmptyAnswer, FaceGone, FullReading, LastGroup, LAST_GROUP_REFUSED,
};
use super::images::FaceImage;
use super::params::Params;
use super::state::State;
use crate::limits::{MAX_FACES_PER_PERSON, MAX_NAME_BYTES, MAX_TAG_BYTES};
use crate::model::check_id;
use crate::service::api::{
    AddFaceData, AddGroupIdsData, Call, DelFaceData, DelGroupIdsData, DelPersonData, Envelope,
    FaceIdsData, FaceInfo, FaceInfoData, GetInfoData, GroupIdsData, NewPersonData, PersonIdsData,
    SetInfoData,
};
use crate::service::codes::{self, code};
use serde::Serialize;

/// The outcome of examining one image: the face, or the code refusing it.
pub type Verdict = Result<FaceImage, i64>;

/// An answer: its code, its JSON text, and whether the state changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: i64,
    pub body: String,
    pub mutated: bool,
}

impl Answer {
    /// An error answer: `data` is `{}`.
    pub fn error(code: i64) -> Answer {
        Answer {
            code,
            body: envelope(code, codes::meaning(code), serde_json::Map::new()),
            mutated: false,
        }
    }

    fn ok(data: impl Serialize, mutated: bool) -> Answer {
        Answer {
            code: code::OK,
            body: envelope(code::OK, "OK", data),
            mutated,
        }
    }

    /// An answer with a refusal code that still carries its data.
    fn refused_with(code: i64, data: impl Serialize, mutated: bool) -> Answer {
        Answer {
            code,
            body: envelope(code, codes::meaning(code), data),
            mutated,
        }
    }
}

fn envelope(code: i64, message: &str, data: impl Serialize) -> String {
    serde_json::to_string(&Envelope {
        code,
        message: message.to_owned(),
        data,
    })
    .expect("answers serialize")
}

/// Whether `addface` refuses a face whose bytes the person already holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// -1312, as the contract says.
    #[default]
    Refuse,
    /// Added again: a reading outside the contract, for tests that must see a face
    /// sent twice.
    Accept,
}

/// Applies `call` with its parameters and examined images to the state, under the
/// readings of `contract`.
pub fn apply(
    state: &mut State,
    contract: &Contract,
    call: Call,
    params: &Params,
    images: Option<&[Verdict]>,
) -> Answer {
    apply_with(state, contract, call, params, images, Duplicates::Refuse)
}

/// [`apply`], with duplicate faces refused or accepted.
pub fn apply_with(
    state: &mut State,
    contract: &Contract,
    call: Call,
    params: &Params,
    images: Option<&[Verdict]>,
    duplicates: Duplicates,
) -> Answer {
    let result = match call {
        Call::NewPerson => new_person(state, contract, params, images),
        Call::DelPerson => del_person(state, params),
        Call::AddFace => add_face(state, contract, params, images, duplicates),
        Call::DelFace => del_face(state, contract, params),
        Call::SetInfo => set_info(state, params),
        Call::GetInfo => get_info(state, params),
        Call::GetGroupIds => Ok(Answer::ok(
            GroupIdsData {
                group_ids: state.group_ids().cloned().collect(),
            },
            false,
        )),
        Call::GetPersonIds => get_person_ids(state, params),
        Call::GetFaceIds => get_face_ids(state, params),
        Call::GetFaceInfo => get_face_info(state, params),
        Call::AddGroupIds => change_groups(state, contract, params, true),
        Call::DelGroupIds => change_groups(state, contract, params, false),
    };
    result.unwrap_or_else(Answer::error)
}

fn id(params: &Params, name: &str) -> Result<String, i64> {
    let value = params.text(name).unwrap_or("");
    check_id(value).map_err(|e| e.service_code())?;
    Ok(value.to_owned())
}

fn ids(params: &Params, name: &str) -> Result<Vec<String>, i64> {
    let list = params
        .list(name)
        .filter(|l| !l.is_empty())
        .ok_or(code::PARAMETER_EMPTY)?;
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        check_id(&item).map_err(|e| e.service_code())?;
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn bounded(params: &Params, name: &str, max: usize) -> Result<Option<String>, i64> {
    match params.text(name) {
        Some(v) if v.len() > max => Err(code::PARAMETER_TOO_LONG),
        other => Ok(other.map(str::to_owned)),
    }
}

fn session(params: &Params) -> String {
    params.text("session_id").unwrap_or("").to_owned()
}

fn existing<'s>(state: &'s State, person_id: &str) -> Result<&'s super::state::Person, i64> {
    state.person(person_id).ok_or(code::PERSON_MISSING)
}

/// Whether `person_id` may join `group_ids` under the group and AppID limits.
fn check_group_limits(
    state: &State,
    contract: &Contract,
    person_id: &str,
    group_ids: &[String],
) -> Result<(), i64> {
    let mut new_groups = 0;
    for group in group_ids {
        match state.group(group) {
            Some(members) if members.contains(person_id) => {}
            Some(members) if members.len() >= contract.max_persons_per_group => {
                return Err(code::TOO_MANY_PERSONS)
            }
            Some(_) => {}
            None => new_groups += 1,
        }
    }
    if new_groups > 0 && state.group_ids().count() + new_groups > contract.max_groups {
        return Err(code::TOO_MANY_GROUPS);
    }
    Ok(())
}

fn new_person(
    state: &mut State,
    contract: &Contract,
    params: &Params,
    images: Option<&[Verdict]>,
) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let group_ids = ids(params, "group_ids")?;
    let name = bounded(params, "person_name", MAX_NAME_BYTES)?;
    let tag = bounded(params, "tag", MAX_TAG_BYTES)?;
    let image = match images {
        Some([first, ..]) => first,
        _ => return Err(code::PARAMETER_EMPTY),
    };
    if state.person(&person_id).is_some() {
        return Err(code::PERSON_EXISTS);
    }
    check_group_limits(state, contract, &person_id, &group_ids)?;
    let image = (*image)?;
    state.insert_person(
        &person_id,
        name.unwrap_or_default(),
        tag.unwrap_or_default(),
    );
    for group in &group_ids {
        state.join_group(&person_id, group);
    }
    let face_id = state.add_face(&person_id, image);
    Ok(Answer::ok(
        NewPersonData {
            person_id,
            suc_group: group_ids.len() as i64,
            suc_face: 1,
            face_id,
            group_ids,
            session_id: session(params),
        },
        true,
    ))
}

fn del_person(state: &mut State, params: &Params) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    state
        .remove_person(&person_id)
        .ok_or(code::PERSON_MISSING)?;
    Ok(Answer::ok(
        DelPersonData {
            person_id,
            deleted: 1,
            session_id: session(params),
        },
        true,
    ))
}

fn add_face(
    state: &mut State,
    contract: &Contract,
    params: &Params,
    images: Option<&[Verdict]>,
    duplicates: Duplicates,
) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    bounded(params, "tag", MAX_TAG_BYTES)?;
    let held = existing(state, &person_id)?.faces.len();
    let images = images
        .filter(|i| !i.is_empty())
        .ok_or(code::PARAMETER_EMPTY)?;
    if contract.full == FullReading::WholeCall && held + images.len() > MAX_FACES_PER_PERSON {
        return Err(code::PERSON_FULL);
    }
    let mut face_ids = Vec::new();
    let mut ret_codes = Vec::with_capacity(images.len());
    for verdict in images {
        let ret = match verdict {
            Err(refused) => *refused,
            Ok(image) => {
                let person = existing(state, &person_id)?;
                let held = person.faces.iter().any(|f| f.image.hash == image.hash);
                let full = person.faces.len() >= MAX_FACES_PER_PERSON;
                if full && contract.duplicate_when_full == DuplicateWhenFull::Full {
                    code::PERSON_FULL
                } else if held && duplicates == Duplicates::Refuse {
                    code::DUPLICATE_FACE
                } else if full {
                    code::PERSON_FULL
                } else {
                    face_ids.push(state.add_face(&person_id, *image));
                    code::OK
                }
            }
        };
        ret_codes.push(ret);
    }
    let mutated = !face_ids.is_empty();
    let first_refusal = ret_codes[0];
    let data = AddFaceData {
        added: face_ids.len() as i64,
        face_ids,
        ret_codes,
        session_id: session(params),
    };
    Ok(match contract.empty_answer {
        EmptyAnswer::FirstCode if !mutated => Answer::refused_with(first_refusal, data, false),
        _ => Answer::ok(data, mutated),
    })
}

fn del_face(state: &mut State, contract: &Contract, params: &Params) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let wanted = params
        .list("face_ids")
        .filter(|l| !l.is_empty())
        .ok_or(code::PARAMETER_EMPTY)?;
    existing(state, &person_id)?;
    let face_ids: Vec<String> = wanted
        .into_iter()
        .filter(|face_id| state.remove_face(&person_id, face_id))
        .collect();
    if face_ids.is_empty() && contract.face_gone == FaceGone::FaceMissing {
        return Err(code::FACE_MISSING);
    }
    let mutated = !face_ids.is_empty();
    Ok(Answer::ok(
        DelFaceData {
            deleted: face_ids.len() as i64,
            face_ids,
            session_id: session(params),
        },
        mutated,
    ))
}

fn set_info(state: &mut State, params: &Params) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let name = bounded(params, "person_name", MAX_NAME_BYTES)?;
    let tag = bounded(params, "tag", MAX_TAG_BYTES)?;
    if name.is_none() && tag.is_none() {
        return Err(code::PARAMETER_EMPTY);
    }
    let person = state.person_mut(&person_id).ok_or(code::PERSON_MISSING)?;
    if let Some(name) = name {
        person.name = name;
    }
    if let Some(tag) = tag {
        person.tag = tag;
    }
    Ok(Answer::ok(
        SetInfoData {
            person_id,
            session_id: session(params),
        },
        true,
    ))
}

fn get_info(state: &State, params: &Params) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let person = existing(state, &person_id)?;
    Ok(Answer::ok(
        GetInfoData {
            person_name: person.name.clone(),
            face_ids: person.faces.iter().map(|f| f.face_id.clone()).collect(),
            group_ids: person.groups.clone(),
            tag: person.tag.clone(),
            person_id,
            session_id: session(params),
        },
        false,
    ))
}

fn get_person_ids(state: &State, params: &Params) -> Result<Answer, i64> {
    let group_id = id(params, "group_id")?;
    let members = state.group(&group_id).ok_or(code::GROUP_MISSING)?;
    Ok(Answer::ok(
        PersonIdsData {
            person_ids: members.iter().cloned().collect(),
        },
        false,
    ))
}

fn get_face_ids(state: &State, params: &Params) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let person = existing(state, &person_id)?;
    Ok(Answer::ok(
        FaceIdsData {
            face_ids: person.faces.iter().map(|f| f.face_id.clone()).collect(),
        },
        false,
    ))
}

fn get_face_info(state: &State, params: &Params) -> Result<Answer, i64> {
    let face_id = params
        .text("face_id")
        .filter(|f| !f.is_empty())
        .ok_or(code::PARAMETER_EMPTY)?;
    let (_, face) = state.face(face_id).ok_or(code::FACE_MISSING)?;
    Ok(Answer::ok(
        FaceInfoData {
            face_info: face_info(face_id, &face.image),
        },
        false,
    ))
}

/// Plausible face attributes, derived only from the face's content hash and size.
pub fn face_info(face_id: &str, image: &FaceImage) -> FaceInfo {
    let h = image.hash.0;
    let (w, ht) = (image.width as f64, image.height as f64);
    // The face covers 50-80% of the smaller side, somewhere inside the picture.
    let side = w.min(ht) * (0.5 + f64::from(h[0] % 31) / 100.0);
    let x = ((w - side).max(0.0) * f64::from(h[1]) / 255.0) as i64;
    let y = ((ht - side).max(0.0) * f64::from(h[2]) / 255.0) as i64;
    let signed = |b: u8, range: i64| i64::from(b) % (2 * range + 1) - range;
    FaceInfo {
        face_id: face_id.to_owned(),
        x,
        y,
        width: side.round(),
        height: (side * 1.1).min(ht).round(),
        gender: i64::from(h[3] % 101),
        age: 16 + i64::from(h[4] % 60),
        expression: i64::from(h[5] % 101),
        glass: h[6].is_multiple_of(4),
        pitch: signed(h[7], 20),
        yaw: signed(h[8], 30),
        roll: signed(h[9], 15),
    }
}

fn change_groups(
    state: &mut State,
    contract: &Contract,
    params: &Params,
    add: bool,
) -> Result<Answer, i64> {
    let person_id = id(params, "person_id")?;
    let group_ids = ids(params, "group_ids")?;
    let held = &existing(state, &person_id)?.groups;
    if add {
        check_group_limits(state, contract, &person_id, &group_ids)?;
    } else if contract.last_group == LastGroup::Refused
        && !held.is_empty()
        && held.iter().all(|g| group_ids.contains(g))
    {
        return Err(LAST_GROUP_REFUSED);
    }
    let changed = group_ids
        .iter()
        .filter(|g| {
            if add {
                state.join_group(&person_id, g)
            } else {
                state.remove_from_group(&person_id, g)
            }
        })
        .count() as i64;
    let now = existing(state, &person_id)?.groups.clone();
    let session_id = session(params);
    Ok(if add {
        Answer::ok(
            AddGroupIdsData {
                person_id,
                added: changed,
                group_ids: now,
                session_id,
            },
            changed > 0,
        )
    } else {
        Answer::ok(
            DelGroupIdsData {
                person_id,
                deleted: changed,
                group_ids: now,
                session_id,
            },
            changed > 0,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContentHash;
    use serde_json::{json, Value};

    fn face(n: u32) -> Verdict {
        Ok(FaceImage {
            hash: ContentHash::of(&n.to_le_bytes()),
            width: 64,
            height: 48,
        })
    }

    fn call(state: &mut State, call: Call, body: Value, images: Option<Vec<Verdict>>) -> Value {
        let params = Params::from_json(body.to_string().as_bytes()).unwrap();
        let answer = apply(
            state,
            &Contract::default(),
            call,
            &params,
            images.as_deref(),
        );
        let v: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(v["code"], answer.code);
        v
    }

    fn new_person(state: &mut State, id: &str, groups: &[&str]) -> Value {
        call(
            state,
            Call::NewPerson,
            json!({"person_id": id, "group_ids": groups, "person_name": "N"}),
            Some(vec![face(0)]),
        )
    }

    #[test]
    fn newperson_creates_person_groups_and_face() {
        let mut s = State::default();
        let v = new_person(&mut s, "p1", &["g1", "g2", "g1"]);
        assert_eq!(v["code"], 0);
        assert_eq!(v["message"], "OK");
        assert_eq!(v["data"]["suc_group"], 2);
        assert_eq!(v["data"]["suc_face"], 1);
        assert_eq!(v["data"]["group_ids"], json!(["g1", "g2"]));
        assert_eq!(v["data"]["session_id"], "");
        let snap = s.snapshot();
        assert_eq!(snap.groups["g1"], ["p1"]);
        assert_eq!(snap.persons["p1"].faces[0].face_id, v["data"]["face_id"]);
        assert_eq!(new_person(&mut s, "p1", &["g1"])["code"], -1302);
    }

    #[test]
    fn newperson_with_a_refused_image_creates_nothing() {
        let mut s = State::default();
        for refused in [-1101, -1102, -1300, -1400, -1308] {
            let v = call(
                &mut s,
                Call::NewPerson,
                json!({"person_id": "p", "group_ids": ["g"]}),
                Some(vec![Err(refused)]),
            );
            assert_eq!(v["code"], refused);
            assert_eq!(v["data"], json!({}));
        }
        let v = call(
            &mut s,
            Call::NewPerson,
            json!({"person_id": "p", "group_ids": ["g"]}),
            None,
        );
        assert_eq!(v["code"], -1301);
        assert_eq!(s, State::default());
    }

    #[test]
    fn ids_and_lengths_are_checked() {
        let mut s = State::default();
        let cases = [
            (json!({"person_id": "a b", "group_ids": ["g"]}), -1313),
            (json!({"person_id": "a/b", "group_ids": ["g"]}), -1313),
            (json!({"person_id": "p", "group_ids": ["g\tx"]}), -1313),
            (json!({"person_id": "p", "group_ids": ["g\nx"]}), -1313),
            (
                json!({"person_id": "x".repeat(65), "group_ids": ["g"]}),
                -1304,
            ),
            (
                json!({"person_id": "p", "group_ids": ["g".repeat(65)]}),
                -1304,
            ),
            (
                json!({"person_id": "p", "group_ids": ["g"], "person_name": "n".repeat(257)}),
                -1304,
            ),
            (
                json!({"person_id": "p", "group_ids": ["g"], "tag": "t".repeat(1025)}),
                -1304,
            ),
            (json!({"group_ids": ["g"]}), -1301),
            (json!({"person_id": "p"}), -1301),
            (json!({"person_id": "p", "group_ids": []}), -1301),
        ];
        for (body, expected) in cases {
            let v = call(&mut s, Call::NewPerson, body.clone(), Some(vec![face(1)]));
            assert_eq!(v["code"], expected, "{body}");
        }
        assert_eq!(s, State::default());
    }

    #[test]
    fn addface_reports_each_image() {
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let images = vec![face(1), Err(-1101), face(0), face(1), face(2), Err(-1200)];
        let v = call(
            &mut s,
            Call::AddFace,
            json!({"person_id": "p"}),
            Some(images),
        );
        assert_eq!(v["code"], 0);
        assert_eq!(v["data"]["added"], 2);
        assert_eq!(
            v["data"]["ret_codes"],
            json!([0, -1101, -1312, -1312, 0, -1200])
        );
        let added = v["data"]["face_ids"].as_array().unwrap();
        let faces = &s.snapshot().persons["p"].faces;
        assert_eq!(faces.len(), 3);
        assert_eq!(added[0], faces[1].face_id);
        assert_eq!(added[1], faces[2].face_id);
    }

    #[test]
    fn addface_keeps_a_face_sent_twice_when_duplicates_are_accepted() {
        let mut s = State::default();
        new_person(&mut s, "p1", &["g1"]);
        let params = Params::from_json(br#"{"person_id":"p1"}"#).unwrap();
        let images = [face(0), face(1), face(1)];
        let answer = apply_with(
            &mut s,
            &Contract::default(),
            Call::AddFace,
            &params,
            Some(&images),
            Duplicates::Accept,
        );
        let v: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(v["data"]["ret_codes"], json!([0, 0, 0]));
        assert_eq!(s.person("p1").unwrap().faces.len(), 4);
        let refused = apply(
            &mut s,
            &Contract::default(),
            Call::AddFace,
            &params,
            Some(&images[..1]),
        );
        assert!(refused.body.contains("-1312"), "{}", refused.body);
    }

    #[test]
    fn addface_stops_at_the_person_limit_duplicate_first() {
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let images: Vec<Verdict> = (1..=21).map(face).chain([face(0)]).collect();
        let v = call(
            &mut s,
            Call::AddFace,
            json!({"person_id": "p"}),
            Some(images),
        );
        assert_eq!(v["data"]["added"], 19);
        let codes = v["data"]["ret_codes"].as_array().unwrap();
        assert!(codes[..19].iter().all(|c| c == 0));
        assert_eq!(codes[19..], [json!(-1309), json!(-1309), json!(-1312)]);
        assert_eq!(s.person("p").unwrap().faces.len(), MAX_FACES_PER_PERSON);
        let v = call(
            &mut s,
            Call::AddFace,
            json!({"person_id": "q"}),
            Some(vec![face(3)]),
        );
        assert_eq!(v["code"], -1303);
        let v = call(&mut s, Call::AddFace, json!({"person_id": "p"}), None);
        assert_eq!(v["code"], -1301);
    }

    #[test]
    fn a_duplicate_sent_to_a_full_person_is_answered_by_the_reading() {
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let images: Vec<Verdict> = (1..20).map(face).collect();
        call(
            &mut s,
            Call::AddFace,
            json!({"person_id": "p"}),
            Some(images),
        );
        assert_eq!(s.person("p").unwrap().faces.len(), MAX_FACES_PER_PERSON);
        let again = || Some(vec![face(0), face(5), face(30)]);
        let v = call(&mut s, Call::AddFace, json!({"person_id": "p"}), again());
        assert_eq!(v["data"]["ret_codes"], json!([-1312, -1312, -1309]));
        let full_first = Contract {
            duplicate_when_full: DuplicateWhenFull::Full,
            ..Contract::default()
        };
        let v = call_under(
            &mut s,
            &full_first,
            Call::AddFace,
            json!({"person_id": "p"}),
            again(),
        );
        assert_eq!(v["data"]["ret_codes"], json!([-1309, -1309, -1309]));
        assert_eq!(s.person("p").unwrap().faces.len(), MAX_FACES_PER_PERSON);
    }

    fn call_under(
        state: &mut State,
        contract: &Contract,
        call: Call,
        body: Value,
        images: Option<Vec<Verdict>>,
    ) -> Value {
        let params = Params::from_json(body.to_string().as_bytes()).unwrap();
        let answer = apply(state, contract, call, &params, images.as_deref());
        serde_json::from_str(&answer.body).unwrap()
    }

    #[test]
    fn whole_call_reading_refuses_an_overflowing_addface_and_adds_nothing() {
        let whole = Contract {
            full: FullReading::WholeCall,
            ..Contract::default()
        };
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let add = |s: &mut State, from: u32, to: u32| {
            let images: Vec<Verdict> = (from..to).map(face).collect();
            call_under(
                s,
                &whole,
                Call::AddFace,
                json!({"person_id": "p"}),
                Some(images),
            )
        };
        assert_eq!(add(&mut s, 1, 18)["data"]["added"], 17);
        let v = add(&mut s, 100, 103);
        assert_eq!(v["code"], -1309);
        assert_eq!(v["data"], json!({}));
        assert_eq!(s.person("p").unwrap().faces.len(), 18);
        assert_eq!(add(&mut s, 100, 102)["data"]["added"], 2);
        assert_eq!(add(&mut s, 200, 201)["code"], -1309);
    }

    #[test]
    fn first_code_reading_answers_a_refusal_with_ret_codes_filled() {
        let first = Contract {
            empty_answer: EmptyAnswer::FirstCode,
            ..Contract::default()
        };
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let v = call_under(
            &mut s,
            &first,
            Call::AddFace,
            json!({"person_id": "p"}),
            Some(vec![face(0), Err(-1101)]),
        );
        assert_eq!(v["code"], -1312);
        assert_eq!(v["data"]["ret_codes"], json!([-1312, -1101]));
        let v = call_under(
            &mut s,
            &first,
            Call::AddFace,
            json!({"person_id": "p"}),
            Some(vec![face(0), face(5)]),
        );
        assert_eq!(v["code"], 0);
    }

    #[test]
    fn group_and_appid_limits() {
        let small = Contract {
            max_persons_per_group: 2,
            max_groups: 2,
            ..Contract::default()
        };
        let mut s = State::default();
        let new = |s: &mut State, id: &str, groups: &[&str]| {
            call_under(
                s,
                &small,
                Call::NewPerson,
                json!({"person_id": id, "group_ids": groups}),
                Some(vec![face(0)]),
            )["code"]
                .clone()
        };
        assert_eq!(new(&mut s, "a", &["g1"]), 0);
        assert_eq!(new(&mut s, "b", &["g1", "g2"]), 0);
        assert_eq!(new(&mut s, "c", &["g1"]), -1310);
        assert_eq!(new(&mut s, "c", &["g3"]), -1311);
        assert_eq!(new(&mut s, "c", &["g2"]), 0);
        assert!(s.person("c").is_some());
        let v = call_under(
            &mut s,
            &small,
            Call::AddGroupIds,
            json!({"person_id": "a", "group_ids": ["g2"]}),
            None,
        );
        assert_eq!(v["code"], -1310);
        let v = call_under(
            &mut s,
            &small,
            Call::AddGroupIds,
            json!({"person_id": "b", "group_ids": ["g1", "g2"]}),
            None,
        );
        assert_eq!(
            v["code"], 0,
            "groups the person is in are not counted again"
        );
    }

    #[test]
    fn info_groups_and_deletion() {
        let mut s = State::default();
        new_person(&mut s, "p", &["g1"]);
        let v = call(
            &mut s,
            Call::SetInfo,
            json!({"person_id": "p", "tag": "T", "session_id": "s1"}),
            None,
        );
        assert_eq!(v["data"], json!({"person_id": "p", "session_id": "s1"}));
        let v = call(&mut s, Call::SetInfo, json!({"person_id": "p"}), None);
        assert_eq!(v["code"], -1301);
        let v = call(&mut s, Call::GetInfo, json!({"person_id": "p"}), None);
        assert_eq!(v["data"]["person_name"], "N");
        assert_eq!(v["data"]["tag"], "T");
        let v = call(
            &mut s,
            Call::AddGroupIds,
            json!({"person_id": "p", "group_ids": ["g1", "g2"]}),
            None,
        );
        assert_eq!(v["data"]["added"], 1);
        assert_eq!(v["data"]["group_ids"], json!(["g1", "g2"]));
        let v = call(
            &mut s,
            Call::DelGroupIds,
            json!({"person_id": "p", "group_ids": ["g1", "g9"]}),
            None,
        );
        assert_eq!(v["data"]["deleted"], 1);
        assert_eq!(v["data"]["group_ids"], json!(["g2"]));
        let v = call(&mut s, Call::GetPersonIds, json!({"group_id": "g1"}), None);
        assert_eq!(v["code"], -1306);
        let v = call(&mut s, Call::GetPersonIds, json!({"group_id": "g2"}), None);
        assert_eq!(v["data"]["person_ids"], json!(["p"]));
        let face_id = s.snapshot().persons["p"].faces[0].face_id.clone();
        let v = call(&mut s, Call::GetFaceInfo, json!({"face_id": face_id}), None);
        assert_eq!(v["data"]["face_info"]["face_id"], face_id.as_str());
        let v = call(
            &mut s,
            Call::DelFace,
            json!({"person_id": "p", "face_ids": ["1"]}),
            None,
        );
        assert_eq!(v["code"], -1305);
        let v = call(
            &mut s,
            Call::DelFace,
            json!({"person_id": "p", "face_ids": [face_id, "1"]}),
            None,
        );
        assert_eq!(v["data"]["deleted"], 1);
        let v = call(&mut s, Call::GetFaceIds, json!({"person_id": "p"}), None);
        assert_eq!(v["data"]["face_ids"], json!([]));
        let v = call(&mut s, Call::DelPerson, json!({"person_id": "p"}), None);
        assert_eq!(v["data"]["deleted"], 1);
        let v = call(&mut s, Call::DelPerson, json!({"person_id": "p"}), None);
        assert_eq!(v["code"], -1303);
        let v = call(&mut s, Call::GetGroupIds, json!({}), None);
        assert_eq!(v["data"], json!({"group_ids": []}));
    }

    #[test]
    fn a_persons_last_group_is_taken_or_refused_by_the_reading() {
        let refusing = Contract {
            last_group: LastGroup::Refused,
            ..Contract::default()
        };
        let mut s = State::default();
        new_person(&mut s, "p", &["a", "b"]);
        let del = |s: &mut State, contract: &Contract, groups: &[&str]| {
            call_under(
                s,
                contract,
                Call::DelGroupIds,
                json!({"person_id": "p", "group_ids": groups}),
                None,
            )
        };
        // Not the last: taken under both readings.
        let v = del(&mut s, &refusing, &["a"]);
        assert_eq!(v["data"]["group_ids"], json!(["b"]));
        // The last, alone or with a group it is not in: refused, nothing removed.
        for groups in [&["b"][..], &["b", "x"][..]] {
            let v = del(&mut s, &refusing, groups);
            assert_eq!(v["code"], LAST_GROUP_REFUSED, "{groups:?}");
            assert_eq!(s.person("p").unwrap().groups, ["b"]);
        }
        // A group it is not in, under the refusing reading: 0 deleted, as before.
        let v = del(&mut s, &refusing, &["x"]);
        assert_eq!(
            (v["code"].clone(), v["data"]["deleted"].clone()),
            (json!(0), json!(0))
        );
        // Allowed: the person is left in no group.
        let v = del(&mut s, &Contract::default(), &["b"]);
        assert_eq!(v["code"], 0);
        assert_eq!(v["data"]["group_ids"], json!([]));
        assert!(s.person("p").unwrap().groups.is_empty());
    }

    #[test]
    fn a_delface_of_a_face_already_gone_is_answered_by_the_reading() {
        let zero = Contract {
            face_gone: FaceGone::DeletedZero,
            ..Contract::default()
        };
        let mut s = State::default();
        new_person(&mut s, "p", &["g"]);
        let face_id = s.snapshot().persons["p"].faces[0].face_id.clone();
        let body = json!({"person_id": "p", "face_ids": [face_id]});
        let v = call_under(&mut s, &zero, Call::DelFace, body.clone(), None);
        assert_eq!(v["data"]["deleted"], 1);
        let v = call_under(&mut s, &zero, Call::DelFace, body.clone(), None);
        assert_eq!(v["code"], 0);
        assert_eq!(v["data"]["deleted"], 0);
        let v = call_under(&mut s, &Contract::default(), Call::DelFace, body, None);
        assert_eq!(v["code"], -1305);
    }

    #[test]
    fn face_info_is_deterministic_and_plausible() {
        let image = face(7).unwrap();
        let a = face_info("1", &image);
        assert_eq!(a, face_info("1", &image));
        assert!((0..=100).contains(&a.gender) && (0..=100).contains(&a.age));
        assert!(a.width > 0.0 && a.width <= 64.0 && a.height <= 48.0);
        assert!(a.x >= 0 && a.x as f64 + a.width <= 64.0);
        assert_ne!(a, face_info("1", &face(8).unwrap()));
    }
}
