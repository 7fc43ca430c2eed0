//! The calls on persons and their faces.

use super::request::{Images, Request};
use super::{CallError, Client, ImageBody};
use crate::limits::MAX_IMAGES_PER_ADDFACE;
use crate::model::{GroupId, PersonId};
use crate::service::api::{
    AddFaceData, Call, DelFaceData, DelPersonData, FaceIdsData, FaceInfoData, GetInfoData,
    NewPersonData, SetInfoData,
};

impl Client {
    /// Creates a person in `groups` with its first photo.
    pub fn new_person(
        &self,
        person: &PersonId,
        groups: &[GroupId],
        image: &ImageBody,
        name: Option<&str>,
        tag: Option<&str>,
    ) -> Result<NewPersonData, CallError> {
        let mut req = Request::new(Call::NewPerson)
            .list("group_ids", groups)
            .text("person_id", person.as_str())
            .opt_text("person_name", name)
            .opt_text("tag", tag);
        req.images = Images::One(image);
        self.send(req)
    }

    /// Adds photos to a person: all local files/bytes, or all URLs, at most
    /// [`MAX_IMAGES_PER_ADDFACE`].
    pub fn add_faces(
        &self,
        person: &PersonId,
        images: &[ImageBody],
        tag: Option<&str>,
    ) -> Result<AddFaceData, CallError> {
        let refuse = |reason: String| CallError::Request {
            call: Call::AddFace,
            reason,
        };
        if images.is_empty() {
            return Err(refuse("no photos to add".into()));
        }
        if images.len() > MAX_IMAGES_PER_ADDFACE {
            return Err(refuse(format!(
                "{} photos in one call, over the limit of {MAX_IMAGES_PER_ADDFACE}",
                images.len()
            )));
        }
        let mut req = Request::new(Call::AddFace)
            .text("person_id", person.as_str())
            .opt_text("tag", tag);
        req.images = Images::Many(images);
        self.send(req)
    }

    /// A person's name, tag, faces and groups.
    pub fn get_info(&self, person: &PersonId) -> Result<GetInfoData, CallError> {
        self.send(Request::new(Call::GetInfo).text("person_id", person.as_str()))
    }

    /// Sets a person's name and/or tag; a `None` field is left as it is.
    pub fn set_info(
        &self,
        person: &PersonId,
        name: Option<&str>,
        tag: Option<&str>,
    ) -> Result<SetInfoData, CallError> {
        self.send(
            Request::new(Call::SetInfo)
                .text("person_id", person.as_str())
                .opt_text("person_name", name)
                .opt_text("tag", tag),
        )
    }

    /// Deletes a person and all its faces.
    pub fn del_person(&self, person: &PersonId) -> Result<DelPersonData, CallError> {
        self.send(Request::new(Call::DelPerson).text("person_id", person.as_str()))
    }

    /// Deletes faces of a person; faces it does not hold are ignored.
    pub fn del_faces(
        &self,
        person: &PersonId,
        face_ids: &[String],
    ) -> Result<DelFaceData, CallError> {
        self.send(
            Request::new(Call::DelFace)
                .text("person_id", person.as_str())
                .list("face_ids", face_ids),
        )
    }

    /// The faces of a person.
    pub fn get_face_ids(&self, person: &PersonId) -> Result<FaceIdsData, CallError> {
        self.send(Request::new(Call::GetFaceIds).text("person_id", person.as_str()))
    }

    /// What the service knows of a face.
    pub fn get_face_info(&self, face_id: &str) -> Result<FaceInfoData, CallError> {
        self.send(Request::new(Call::GetFaceInfo).text("face_id", face_id))
    }
}
