//! Reading a person's face count, and what the job does when the person is full.

use super::{Halt, Item, Worker};
use crate::engine::doubt;
use crate::limits::MAX_FACES_PER_PERSON;
use crate::service::api::Call;
use crate::store::{FaceRef, PersonEntry, PhotoState};
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// What this run knows of a person's faces on the service.
#[derive(Debug, Clone, Copy)]
pub(super) struct Room {
    /// Faces the service held when read, or 1 when this run created the person.
    pub(super) held: usize,
    source: Held,
    /// Faces this run added since.
    pub(super) added: usize,
}

/// How a [`Room`]'s count was established.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// This run created the person with its seed.
    Created,
    /// Read from the service (`call`) at `at` (unix seconds).
    Read { call: &'static str, at: u64 },
}

impl Room {
    pub(super) fn created() -> Room {
        Room {
            held: 1,
            source: Held::Created,
            added: 0,
        }
    }

    pub(super) fn read(held: usize, call: &'static str) -> Room {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Room {
            held,
            source: Held::Read { call, at },
            added: 0,
        }
    }

    /// Faces the person can still take.
    pub(super) fn left(&self) -> usize {
        MAX_FACES_PER_PERSON.saturating_sub(self.held + self.added)
    }

    /// Why the photos left for a full person are not sent, quoting the count read.
    pub(super) fn full_reason(&self) -> String {
        match self.source {
            Held::Read { call, at } => format!(
                "the person is full: the service held {} faces for it when read with {call} \
                 at {} (the limit is {MAX_FACES_PER_PERSON}), and this run added {} since",
                self.held,
                crate::report::utc_time(at),
                self.added
            ),
            Held::Created => format!(
                "the person is full: this run created it and added its {} faces (the limit \
                 is {MAX_FACES_PER_PERSON})",
                self.held + self.added
            ),
        }
    }
}

/// Times the face count is read again after -1309 for one person in one run before
/// the job believes the service's refusal over the count it reads.
const MAX_FULL_REREADS: u32 = 3;

impl Worker<'_, '_> {
    /// Reads the person's face count from the service.
    pub(super) fn read_room(&mut self, person: &PersonEntry) -> Result<Room, Halt> {
        Ok(self.read_faces(person)?.0)
    }

    /// Reads the person's faces from the service: the count and the face ids.
    fn read_faces(&mut self, person: &PersonEntry) -> Result<(Room, Vec<String>), Halt> {
        let id = &person.person;
        let faces = self.call_or_halt(Call::GetFaceIds, |c| c.get_face_ids(id))?;
        Ok((
            Room::read(faces.face_ids.len(), "getfaceids"),
            faces.face_ids,
        ))
    }

    /// The service answered -1309 for `refused` and `doubtful` (for the whole call
    /// or image by image), or the person is full with `doubtful` photos that an
    /// earlier send may have put on it: reads the faces again, queues again what now
    /// fits, settles the photos in doubt against the faces read ([`doubt`]), and
    /// records the rest `Full` with the count read.
    pub(super) fn person_full(
        &mut self,
        person: &PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut Room,
        mut refused: Vec<Item>,
        doubtful: Vec<Item>,
    ) -> Result<(), Halt> {
        self.full_rereads += 1;
        let held;
        (*room, held) = self.read_faces(person)?;
        tracing::info!(
            "the service says the person is full; it holds {} faces",
            room.held
        );
        if room.left() > 0 && self.full_rereads <= MAX_FULL_REREADS {
            // What fits goes again, in order, with the chunk cut to the room read.
            refused.extend(doubtful);
            refused.sort_by_key(|i| i.entry.seq);
            for item in refused.into_iter().rev() {
                queue.push_front(item);
            }
            return Ok(());
        }
        if !doubtful.is_empty() {
            let known = doubt::Known::read(self.shared.store, person.person.as_str())
                .map_err(|e| self.store_failed(e))?;
            let (on_service, not_there) =
                doubt::settle(doubtful, known.unaccounted(&held), |i| i.entry.seq);
            if !on_service.is_empty() {
                tracing::info!(
                    "the person is full and holds faces the job cannot account for otherwise: \
                     {} photos in doubt are recorded as those faces",
                    on_service.len()
                );
            }
            for mut item in on_service {
                let state = PhotoState::Enrolled {
                    face: FaceRef::Confirmed,
                };
                self.finish(&mut item, state)?;
            }
            refused.extend(not_there);
        }
        let reason = room.full_reason();
        self.skip_full(queue, refused, &reason)
    }

    /// Splits photos refused by the last call into those an earlier send may have
    /// put on the service ([`Self::sent_before`]) and the others.
    pub(super) fn split_in_doubt(&self, items: Vec<Item>) -> (Vec<Item>, Vec<Item>) {
        items.into_iter().partition(|i| self.sent_before(i))
    }

    /// Records `refused` and the rest of the queue `Full` with `reason`.
    pub(super) fn skip_full(
        &mut self,
        queue: &mut VecDeque<Item>,
        refused: impl IntoIterator<Item = Item>,
        reason: &str,
    ) -> Result<(), Halt> {
        tracing::info!("{reason}");
        let rest: Vec<Item> = queue.drain(..).collect();
        for mut item in refused.into_iter().chain(rest) {
            let reason = format!("{}: {reason}", item.entry.image);
            self.finish(&mut item, PhotoState::Full { reason })?;
        }
        Ok(())
    }
}
