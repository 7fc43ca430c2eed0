//! Sources of photos: a directory tree or a CSV manifest, read as one stream of
//! [`SourceItem`]s.
//!
//! A source says which photo belongs to which person and groups, and where it was
//! listed; it does not read the photos (the planner does that, in parallel) and does
//! not judge ids (the planner checks them with [`crate::model::check_id`], so both
//! sources report the same defect in the same words). What a source can tell on its
//! own it reports as a [`Problem`] naming the place: a file that is not an image by
//! its extension, a name that is not UTF-8, a symbolic link loop, a manifest row that
//! cannot be read. The rest of the program does not know which source an item came
//! from.
//!
//! Items come in source order (sorted walk order, manifest line order) and carry a
//! sequence number in that order: it decides which photos of a person are planned
//! first when a person has more than the service allows.

pub mod manifest;
pub mod tree;

use crate::model::ImageRef;
pub use crate::store::Cells;
use crate::store::Origin;
use std::path::{Path, PathBuf};

/// File extensions (compared case-insensitively) that make a file in a person folder
/// a photo: the formats the service takes as they are (JPEG, PNG, BMP, GIF) and those
/// sent as JPEG copies (HEIC/HEIF, WebP, TIFF). Anything else in a person folder is
/// reported as skipped, never dropped. The one list: the walker, its messages and
/// README's tree table (checked by a test) follow it.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "bmp", "gif", "heic", "heif", "webp", "tif", "tiff",
];

/// Whether a path names a photo by its extension.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// How a directory tree is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Layout {
    /// ROOT/PERSON_ID/PHOTO; groups come from --group.
    #[default]
    #[value(name = "person")]
    Person,
    /// ROOT/GROUP_ID/PERSON_ID/PHOTO; a person is in every group whose folder holds
    /// it, plus any --group.
    #[value(name = "group/person")]
    GroupPerson,
}

/// Where the photos come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Tree {
        root: PathBuf,
        /// Groups every person of the tree is put in (`--group`).
        groups: Vec<String>,
        layout: Layout,
        follow_symlinks: bool,
    },
    Manifest {
        path: PathBuf,
    },
}

/// A path as the file system knows it: absolute, with `.`, `..`, repeated or
/// trailing separators and symbolic links resolved, so the same folder named
/// `tree`, `tree/`, `../x/tree` or through a link is one path. A path that cannot
/// be resolved (it does not exist yet) is made absolute as written.
pub fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
}

impl SourceSpec {
    /// Chooses the source by its path: a `.csv` file is a manifest, anything else a
    /// directory tree.
    pub fn from_path(
        path: &Path,
        groups: Vec<String>,
        layout: Layout,
        follow_symlinks: bool,
    ) -> SourceSpec {
        let is_csv = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if is_csv && !path.is_dir() {
            SourceSpec::Manifest {
                path: path.to_owned(),
            }
        } else {
            SourceSpec::Tree {
                root: path.to_owned(),
                groups,
                layout,
                follow_symlinks,
            }
        }
    }

    /// The source as the operator named it.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Tree { root, .. } => root.display().to_string(),
            SourceSpec::Manifest { path } => path.display().to_string(),
        }
    }

    /// The source as the job remembers it: its absolute path, the same from any
    /// working directory.
    pub fn id(&self) -> String {
        let path = match self {
            SourceSpec::Tree { root, .. } => root,
            SourceSpec::Manifest { path } => path,
        };
        real_path(path).display().to_string()
    }

    /// The columns of a manifest's header that only `faceenroll report` writes (a
    /// report is a manifest): a manifest holding them is the job's own report fed
    /// back, a part of the job rather than its whole source. `None` for a tree or
    /// a manifest that is not a report (or cannot be read: planning says why).
    pub fn report_columns(&self) -> Option<Vec<String>> {
        match self {
            SourceSpec::Tree { .. } => None,
            SourceSpec::Manifest { path } => manifest::report_columns(path),
        }
    }

    /// Opens the source, failing only when it cannot be read at all.
    pub fn open(&self) -> Result<Box<dyn Iterator<Item = SourceItem> + Send>, SourceError> {
        match self {
            SourceSpec::Tree {
                root,
                groups,
                layout,
                follow_symlinks,
            } => Ok(Box::new(tree::walk(
                root,
                groups,
                *layout,
                *follow_symlinks,
            )?)),
            SourceSpec::Manifest { path } => Ok(Box::new(manifest::read(path)?)),
        }
    }
}

/// Why a source cannot be read at all (as opposed to a problem with one of its
/// entries, which is a [`Problem`] and does not stop the job).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}: cannot read the source: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the source is neither a directory nor a .csv manifest")]
    NotADirectory { path: PathBuf },
    #[error(
        "{root}: a directory tree needs at least one --group (every person must be in a group)"
    )]
    NoGroup { root: PathBuf },
    #[error("{path}: cannot read the manifest header: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{path}: the manifest header has no {column:?} column (found: {found})")]
    MissingColumn {
        path: PathBuf,
        column: &'static str,
        found: String,
    },
}

/// One photo as listed by a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRecord {
    /// The person, in Unicode NFC (not yet validated).
    pub person: String,
    /// The person as written, when that is not NFC: two spellings of one person in
    /// different normal forms are refused rather than merged.
    pub written: Option<String>,
    pub image: ImageRef,
    /// Group ids as written (not yet validated).
    pub groups: Vec<String>,
    pub name: Option<String>,
    pub tag: Option<String>,
    pub origin: Origin,
    /// Position in the source, increasing in source order.
    pub seq: u64,
}

/// What the planner does with a listed photo a source already knows it cannot send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// Deliberately left out (not an image by its name, a link not followed).
    Skip,
    /// Unusable input the operator must fix.
    Invalid,
    /// The person itself is unusable (a folder name that is not UTF-8): every photo
    /// of it fails and no person is planned.
    InvalidPerson,
    /// The whole source cannot be trusted (a manifest whose quoting is broken or
    /// whose row has the wrong number of fields): the job is refused before any call.
    Refused,
}

/// An entry of the source that is not a usable photo record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    /// The listed photo the problem is about, when there is one: the planner records
    /// it in the store (as skipped or failed) so every input photo is accounted for.
    pub photo: Option<PhotoRecord>,
    pub kind: ProblemKind,
    /// The reason in a few words, the same for every entry left for it ("hidden",
    /// "not a photo by its extension"): what `plan` and the summary count by.
    pub class: &'static str,
    /// What is wrong, starting with the place.
    pub message: String,
    /// A manifest row as written (lossily decoded when not UTF-8), so the report can
    /// give it back with its columns.
    pub cells: Option<Cells>,
}

/// One item of a source's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceItem {
    Photo(PhotoRecord),
    Problem(Problem),
}

/// An id in Unicode NFC, and the id as written when it was not NFC. A name typed on
/// one system and a folder copied from another (macOS writes NFD) then name the same
/// person.
pub fn nfc(id: String) -> (String, Option<String>) {
    use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization as _};
    if is_nfc_quick(id.chars()) == IsNormalized::Yes {
        return (id, None);
    }
    let normal: String = id.nfc().collect();
    if normal == id {
        (id, None)
    } else {
        (normal, Some(id))
    }
}

/// A path as text for messages and records: lossless when it is UTF-8.
pub(crate) fn lossy(path: &Path) -> PathBuf {
    PathBuf::from(path.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_case_insensitive() {
        for name in [
            "a.jpg", "a.JPG", "a.Jpeg", "a.png", "a.BMP", "a.gif", "a.HEIC", "a.heif", "a.webp",
            "a.tif", "a.TIFF",
        ] {
            assert!(has_image_extension(Path::new(name)), "{name}");
        }
        for name in ["a.txt", "a", "jpg", "a.jpg.bak", "a.svg"] {
            assert!(!has_image_extension(Path::new(name)), "{name}");
        }
    }

    #[test]
    fn a_csv_path_is_a_manifest_and_anything_else_a_tree() {
        let m = SourceSpec::from_path(Path::new("x/list.CSV"), vec![], Layout::Person, false);
        assert!(matches!(m, SourceSpec::Manifest { .. }));
        let t = SourceSpec::from_path(Path::new("photos"), vec![], Layout::Person, false);
        assert!(matches!(t, SourceSpec::Tree { .. }));
    }
}
