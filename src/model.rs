//! The things faceenroll talks about: persons, groups, photos and where they came from.
//!
//! Ids are validated once, when they enter the program, by the same rules the service
//! applies (see [`crate::limits`]); past that point a [`PersonId`] or [`GroupId`] is
//! known to be acceptable to the service.

use crate::limits::{is_illegal_in_id, MAX_ID_BYTES};
use crate::service::codes::code;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("is empty")]
    Empty,
    #[error("is {len} bytes long, over the service's limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error(
        "contains {0:?}, which the service refuses in ids (space, '/', '\\', or a control \
         character: NUL, tab, newline, ...)"
    )]
    IllegalChar(char),
}

impl IdError {
    /// The code the service answers for an id with this defect.
    pub fn service_code(&self) -> i64 {
        match self {
            IdError::Empty => code::PARAMETER_EMPTY,
            IdError::TooLong { .. } => code::PARAMETER_TOO_LONG,
            IdError::IllegalChar(_) => code::ILLEGAL_PARAMETER,
        }
    }
}

/// Checks an id against the service's rules.
pub fn check_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(c) = id.chars().find(|&c| is_illegal_in_id(c)) {
        return Err(IdError::IllegalChar(c));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(IdError::TooLong {
            len: id.len(),
            max: MAX_ID_BYTES,
        });
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Result<Self, IdError> {
                let id = id.into();
                check_id(&id)?;
                Ok($name(id))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(id: String) -> Result<Self, IdError> {
                $name::new(id)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A person's id on the service, valid by the service's rules.
    PersonId
);
id_type!(
    /// A group's id on the service, valid by the service's rules.
    GroupId
);

/// Where a photo's bytes are: a local file (sent as a multipart part) or an http(s)
/// URL (sent in a JSON body for the service to download).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageRef {
    File(PathBuf),
    Url(String),
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageRef::File(p) => write!(f, "{}", p.display()),
            ImageRef::Url(u) => f.write_str(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_service_rules() {
        assert!(PersonId::new("alice_01").is_ok());
        assert!(PersonId::new("张三").is_ok());
        assert_eq!(PersonId::new(""), Err(IdError::Empty));
        assert_eq!(PersonId::new("a b"), Err(IdError::IllegalChar(' ')));
        assert_eq!(GroupId::new("a/b"), Err(IdError::IllegalChar('/')));
        assert_eq!(GroupId::new("a\tb"), Err(IdError::IllegalChar('\t')));
        assert_eq!(PersonId::new("a\0b"), Err(IdError::IllegalChar('\0')));
        assert_eq!(PersonId::new("a\\b"), Err(IdError::IllegalChar('\\')));
        assert_eq!(
            GroupId::new("a\u{1b}[31m"),
            Err(IdError::IllegalChar('\u{1b}'))
        );
        assert_eq!(
            PersonId::new("a\u{7f}"),
            Err(IdError::IllegalChar('\u{7f}'))
        );
        // What the contract does not name stays accepted.
        assert!(PersonId::new("a-%@#&_.b").is_ok());
        assert_eq!(
            PersonId::new("x".repeat(MAX_ID_BYTES + 1)),
            Err(IdError::TooLong {
                len: MAX_ID_BYTES + 1,
                max: MAX_ID_BYTES
            })
        );
        assert!(PersonId::new("x".repeat(MAX_ID_BYTES)).is_ok());
    }

    #[test]
    fn images_are_recognised_by_content() {
        assert_eq!(
            ImageKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(ImageKind::Png)
        );
        assert_eq!(ImageKind::sniff(b"BM\0\0"), Some(ImageKind::Bmp));
        assert_eq!(ImageKind::sniff(b"GIF89a"), Some(ImageKind::Gif));
        assert_eq!(ImageKind::sniff(b"hello, not an image"), None);
        assert_eq!(ImageKind::sniff(b""), None);
    }

    #[test]
    fn id_errors_map_to_service_codes() {
        assert_eq!(IdError::Empty.service_code(), -1301);
        assert_eq!(IdError::TooLong { len: 1, max: 0 }.service_code(), -1304);
        assert_eq!(IdError::IllegalChar(' ').service_code(), -1313);
    }
}

/// The image formats the service accepts, recognised from a file's first bytes.
///
/// [`ImageKind::sniff`] is the one place that reads magic bytes of these formats:
/// the planner, the multipart writer, the normalizer and the emulator ask it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImageKind {
    Jpeg,
    Png,
    Bmp,
    Gif,
}

impl ImageKind {
    /// How many leading bytes [`ImageKind::sniff`] needs.
    pub const SNIFF_BYTES: usize = 8;

    /// Recognises an image by its magic bytes, not its name.
    pub fn sniff(head: &[u8]) -> Option<ImageKind> {
        match head {
            [0xFF, 0xD8, 0xFF, ..] => Some(ImageKind::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(ImageKind::Png),
            [b'B', b'M', ..] => Some(ImageKind::Bmp),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageKind::Gif),
            _ => None,
        }
    }

    /// The `image` crate's name for the format.
    pub fn format(self) -> image::ImageFormat {
        match self {
            ImageKind::Jpeg => image::ImageFormat::Jpeg,
            ImageKind::Png => image::ImageFormat::Png,
            ImageKind::Bmp => image::ImageFormat::Bmp,
            ImageKind::Gif => image::ImageFormat::Gif,
        }
    }

    /// The MIME type of the format.
    pub fn mime(self) -> &'static str {
        match self {
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Png => "image/png",
            ImageKind::Bmp => "image/bmp",
            ImageKind::Gif => "image/gif",
        }
    }
}

/// The identity of a photo's bytes: the BLAKE3 hash of its content.
///
/// A local photo is known across runs by this hash, so a later run can tell a new
/// or changed file from one already enrolled; the emulator records the same hash of
/// each face it stores, so tests can check exactly what arrived.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    pub fn of(bytes: &[u8]) -> ContentHash {
        ContentHash(*blake3::hash(bytes).as_bytes())
    }

    /// Hashes a reader's content without holding it in memory.
    pub fn of_reader(mut reader: impl std::io::Read) -> std::io::Result<ContentHash> {
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut reader, &mut hasher)?;
        Ok(ContentHash(*hasher.finalize().as_bytes()))
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from(self.0).to_hex().to_string()
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}
