//! The calls on groups: a person's groups, the groups of the AppID, a group's persons.

use super::request::Request;
use super::{CallError, Client};
use crate::model::{GroupId, PersonId};
use crate::service::api::{AddGroupIdsData, Call, DelGroupIdsData, GroupIdsData, PersonIdsData};

impl Client {
    /// Puts a person in more groups (created on first use).
    pub fn add_group_ids(
        &self,
        person: &PersonId,
        groups: &[GroupId],
    ) -> Result<AddGroupIdsData, CallError> {
        self.send(
            Request::new(Call::AddGroupIds)
                .text("person_id", person.as_str())
                .list("group_ids", groups),
        )
    }

    /// Takes a person out of groups.
    pub fn del_group_ids(
        &self,
        person: &PersonId,
        groups: &[GroupId],
    ) -> Result<DelGroupIdsData, CallError> {
        self.send(
            Request::new(Call::DelGroupIds)
                .text("person_id", person.as_str())
                .list("group_ids", groups),
        )
    }

    /// The groups of the AppID.
    pub fn get_group_ids(&self) -> Result<GroupIdsData, CallError> {
        self.send(Request::new(Call::GetGroupIds))
    }

    /// The persons of a group.
    pub fn get_person_ids(&self, group: &GroupId) -> Result<PersonIdsData, CallError> {
        self.send(Request::new(Call::GetPersonIds).text("group_id", group.as_str()))
    }
}
