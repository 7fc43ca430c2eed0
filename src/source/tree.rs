//! A directory tree of photos: `ROOT/<person_id>/<photo>`, or
//! `ROOT/<group_id>/<person_id>/<photo>` with [`Layout::GroupPerson`].
//!
//! The walk is sorted by file name at every level, so the order (and with it which
//! photos of an over-full person are planned) is the same on every run. Hidden files
//! and folders (names starting with `.`) are skipped. Every other file is accounted
//! for: a photo, or a [`Problem`] saying why it is not one (not an image by its
//! extension, outside a person folder, in a subfolder, a link not followed, a name
//! that is not UTF-8). Symbolic links are followed only when asked; a link that
//! leads back to one of its own ancestors is reported as a loop and not entered.

use super::{
    has_image_extension, lossy, Layout, PhotoRecord, Problem, ProblemKind, SourceError, SourceItem,
};
use crate::model::ImageRef;
use crate::store::Origin;
use std::path::{Path, PathBuf};
use walkdir::{DirEntry, WalkDir};

/// Starts walking `root`. Fails only when the root itself cannot be used.
pub fn walk(
    root: &Path,
    groups: &[String],
    layout: Layout,
    follow_symlinks: bool,
) -> Result<TreeWalk, SourceError> {
    let meta = std::fs::metadata(root).map_err(|source| SourceError::Unreadable {
        path: root.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(SourceError::NotADirectory {
            path: root.to_owned(),
        });
    }
    if layout == Layout::Person && groups.is_empty() {
        return Err(SourceError::NoGroup {
            root: root.to_owned(),
        });
    }
    let walker = WalkDir::new(root)
        .follow_links(follow_symlinks)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(is_visible as fn(&DirEntry) -> bool);
    Ok(TreeWalk {
        walker,
        groups: groups.to_vec(),
        photo_depth: match layout {
            Layout::Person => 2,
            Layout::GroupPerson => 3,
        },
        layout,
        seq: 0,
    })
}

/// Hidden files and folders (names starting with `.`) are skipped; the root is
/// walked whatever its name.
fn is_visible(entry: &DirEntry) -> bool {
    entry.depth() == 0 || entry.file_name().as_encoded_bytes().first() != Some(&b'.')
}

/// The items of a directory tree, in sorted walk order.
pub struct TreeWalk {
    walker: walkdir::FilterEntry<walkdir::IntoIter, fn(&DirEntry) -> bool>,
    groups: Vec<String>,
    layout: Layout,
    /// Depth of a photo below the root: 2 for `person/photo`, 3 for
    /// `group/person/photo`.
    photo_depth: usize,
    seq: u64,
}

impl Iterator for TreeWalk {
    type Item = SourceItem;

    fn next(&mut self) -> Option<SourceItem> {
        loop {
            let item = match self.walker.next()? {
                Ok(entry) => self.entry(entry),
                Err(err) => Some(walk_error(err)),
            };
            if let Some(item) = item {
                return Some(item);
            }
        }
    }
}

fn walk_error(err: walkdir::Error) -> SourceItem {
    let path = err.path().map(lossy).unwrap_or_default();
    let message = match err.loop_ancestor() {
        Some(ancestor) => format!(
            "{}: symbolic link loop (leads back to {}); not followed",
            path.display(),
            ancestor.display()
        ),
        None => match err.io_error() {
            Some(io) => format!("{}: cannot read: {io}", path.display()),
            None => format!("{}: {err}", path.display()),
        },
    };
    SourceItem::Problem(Problem {
        origin: Origin::Tree { path },
        photo: None,
        kind: ProblemKind::Invalid,
        message,
    })
}

impl TreeWalk {
    fn entry(&mut self, entry: DirEntry) -> Option<SourceItem> {
        let depth = entry.depth();
        if depth == 0 {
            return None;
        }
        let file_type = entry.file_type();
        if file_type.is_dir() {
            // Group and person folders hold photos; folders inside a person folder are
            // walked so their files are reported.
            return None;
        }
        let path = lossy(entry.path());
        let origin = Origin::Tree { path: path.clone() };
        self.seq += 1;
        let seq = self.seq;
        if depth < self.photo_depth {
            let expected = match self.layout {
                Layout::Person => "ROOT/<person_id>/<photo>",
                Layout::GroupPerson => "ROOT/<group_id>/<person_id>/<photo>",
            };
            let what = if file_type.is_symlink() {
                "symbolic link not followed (use --follow-symlinks)"
            } else {
                "not in a person folder"
            };
            return Some(SourceItem::Problem(Problem {
                message: format!("{}: {what}; expected {expected}", path.display()),
                origin,
                photo: None,
                kind: ProblemKind::Skip,
            }));
        }

        // The folders above the photo, relative to the root.
        let components: Vec<&std::ffi::OsStr> = entry
            .path()
            .components()
            .rev()
            .take(depth)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .map(|c| c.as_os_str())
            .collect();
        let person_os = components[self.photo_depth - 2];
        let person = person_os.to_string_lossy().into_owned();
        let mut groups = self.groups.clone();
        if self.layout == Layout::GroupPerson {
            let group = components[0].to_string_lossy().into_owned();
            if !groups.contains(&group) {
                groups.insert(0, group);
            }
        }
        let record = PhotoRecord {
            person,
            image: ImageRef::File(path.clone()),
            groups,
            name: None,
            tag: None,
            origin: origin.clone(),
            seq,
        };
        let problem = |kind, message: String| {
            Some(SourceItem::Problem(Problem {
                origin: origin.clone(),
                photo: Some(record.clone()),
                kind,
                message: format!("{}: {message}", path.display()),
            }))
        };

        if person_os.to_str().is_none() {
            return problem(
                ProblemKind::InvalidPerson,
                "the person folder's name is not valid UTF-8; rename the folder".into(),
            );
        }
        if components.iter().any(|c| c.to_str().is_none()) {
            return problem(
                ProblemKind::Invalid,
                "the name is not valid UTF-8; rename it".into(),
            );
        }
        if file_type.is_symlink() {
            return problem(
                ProblemKind::Skip,
                "symbolic link not followed (use --follow-symlinks)".into(),
            );
        }
        if depth > self.photo_depth {
            let folder: PathBuf = entry
                .path()
                .ancestors()
                .nth(depth + 1 - self.photo_depth)
                .map(lossy)
                .unwrap_or_default();
            return problem(
                ProblemKind::Skip,
                format!(
                    "in a subfolder; photos must be directly in the person folder {}",
                    folder.display()
                ),
            );
        }
        if !file_type.is_file() {
            return problem(ProblemKind::Skip, "not a regular file".into());
        }
        if !has_image_extension(entry.path()) {
            return problem(
                ProblemKind::Skip,
                format!(
                    "not a photo by its extension (photos end in .{})",
                    super::IMAGE_EXTENSIONS.join(", .")
                ),
            );
        }
        Some(SourceItem::Photo(record))
    }
}
