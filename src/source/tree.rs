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
//!
//! A job's state directory inside the tree (`faceenroll enroll . --group staff` run
//! from the archive puts `./faceenroll-state` there) is never walked as a person or
//! a group: a folder that holds a progress database and a job lock
//! ([`StateDir::holds_job`]), whatever its name, is listed once as ignored, with
//! that reason. So `plan` and every shard leave it out as `enroll` does.

use super::{
    has_image_extension, lossy, Layout, PhotoRecord, Problem, ProblemKind, SourceError, SourceItem,
};
use crate::model::ImageRef;
use crate::state_dir::StateDir;
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
    // Photos are known by their real path, as the report writes them: a report
    // fed back as a manifest names the same photos, and the tree named another way
    // (`tree/`, `../x/tree`, a link to it) lists the same photos.
    let root = super::real_path(root);
    let walker = WalkDir::new(&root)
        .follow_links(follow_symlinks)
        .sort_by_file_name()
        .into_iter();
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

/// Hidden files and folders (names starting with `.`) are left, each listed once (a
/// hidden folder is not walked); the root is walked whatever its name.
fn is_hidden(entry: &DirEntry) -> bool {
    entry.depth() > 0 && entry.file_name().as_encoded_bytes().first() == Some(&b'.')
}

/// An entry the walker leaves, and why.
fn left(path: &Path, kind: ProblemKind, class: &'static str, what: &str) -> SourceItem {
    SourceItem::Problem(Problem {
        origin: Origin::Tree {
            path: path.to_owned(),
        },
        photo: None,
        kind,
        class,
        message: format!("{}: {what}", path.display()),
        cells: None,
    })
}

/// The items of a directory tree, in sorted walk order.
pub struct TreeWalk {
    walker: walkdir::IntoIter,
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
    let (class, message) = match err.loop_ancestor() {
        Some(ancestor) => (
            "symbolic link loop",
            format!(
                "{}: symbolic link loop (leads back to {}); not followed",
                path.display(),
                ancestor.display()
            ),
        ),
        None => match err.io_error() {
            Some(io) if io.kind() == std::io::ErrorKind::NotFound => (
                "dangling symbolic link",
                format!(
                    "{}: symbolic link to nothing (its target does not exist)",
                    path.display()
                ),
            ),
            Some(io) => (
                "unreadable",
                format!("{}: cannot read: {io}", path.display()),
            ),
            None => ("unreadable", format!("{}: {err}", path.display())),
        },
    };
    SourceItem::Problem(Problem {
        origin: Origin::Tree { path },
        photo: None,
        kind: ProblemKind::Invalid,
        class,
        message,
        cells: None,
    })
}

impl TreeWalk {
    fn entry(&mut self, entry: DirEntry) -> Option<SourceItem> {
        let depth = entry.depth();
        if depth == 0 {
            return None;
        }
        let file_type = entry.file_type();
        let path = lossy(entry.path());
        if is_hidden(&entry) {
            if file_type.is_dir() {
                self.walker.skip_current_dir();
                return Some(left(
                    &path,
                    ProblemKind::Skip,
                    "hidden",
                    "hidden folder (its name starts with a dot); not walked",
                ));
            }
            return Some(left(
                &path,
                ProblemKind::Skip,
                "hidden",
                "hidden file (its name starts with a dot)",
            ));
        }
        if file_type.is_dir() && StateDir::new(entry.path()).holds_job() {
            self.walker.skip_current_dir();
            return Some(left(
                &path,
                ProblemKind::Skip,
                "the job's state directory",
                "a faceenroll state directory (its progress database and report), not a \
                 person; not walked",
            ));
        }
        if file_type.is_dir() {
            // Group and person folders hold photos; folders inside a person folder are
            // walked so their files are reported. An empty person folder is listed.
            let empty = depth + 1 == self.photo_depth
                && std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_none());
            return empty.then(|| {
                left(
                    &path,
                    ProblemKind::Skip,
                    "empty person folder",
                    "empty person folder",
                )
            });
        }
        let origin = Origin::Tree { path: path.clone() };
        self.seq += 1;
        let seq = self.seq;
        if depth < self.photo_depth {
            let expected = match self.layout {
                Layout::Person => "ROOT/<person_id>/<photo>",
                Layout::GroupPerson => "ROOT/<group_id>/<person_id>/<photo>",
            };
            // A photo in the wrong place is one the operator meant to enroll: it
            // fails, so the run does not end as if every photo were taken.
            let (kind, class, what) = if file_type.is_symlink() {
                (
                    ProblemKind::Skip,
                    "symbolic link not followed",
                    "symbolic link not followed (use --follow-symlinks)",
                )
            } else if has_image_extension(entry.path()) {
                (
                    ProblemKind::Invalid,
                    "photo not in a person folder",
                    "photo not in a person folder",
                )
            } else {
                (
                    ProblemKind::Skip,
                    "not in a person folder",
                    "not in a person folder",
                )
            };
            return Some(left(
                &path,
                kind,
                class,
                &format!("{what}; expected {expected}"),
            ));
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
        let (person, written) = super::nfc(person_os.to_string_lossy().into_owned());
        let mut groups = self.groups.clone();
        if self.layout == Layout::GroupPerson {
            let group = super::nfc(components[0].to_string_lossy().into_owned()).0;
            if !groups.contains(&group) {
                groups.insert(0, group);
            }
        }
        let record = PhotoRecord {
            person,
            written,
            image: ImageRef::File(path.clone()),
            groups,
            name: None,
            tag: None,
            origin: origin.clone(),
            seq,
        };
        let problem = |kind, class, message: String| {
            Some(SourceItem::Problem(Problem {
                origin: origin.clone(),
                photo: Some(record.clone()),
                kind,
                class,
                message: format!("{}: {message}", path.display()),
                cells: None,
            }))
        };

        if person_os.to_str().is_none() {
            return problem(
                ProblemKind::InvalidPerson,
                "name not UTF-8",
                "the person folder's name is not valid UTF-8; rename the folder".into(),
            );
        }
        if components.iter().any(|c| c.to_str().is_none()) {
            return problem(
                ProblemKind::Invalid,
                "name not UTF-8",
                "the name is not valid UTF-8; rename it".into(),
            );
        }
        if file_type.is_symlink() {
            return problem(
                ProblemKind::Skip,
                "symbolic link not followed",
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
                "in a subfolder",
                format!(
                    "in a subfolder; photos must be directly in the person folder {}",
                    folder.display()
                ),
            );
        }
        if !file_type.is_file() {
            return problem(
                ProblemKind::Skip,
                "not a regular file",
                "not a regular file; not opened".into(),
            );
        }
        if !has_image_extension(entry.path()) {
            return problem(
                ProblemKind::Skip,
                "not a photo by its extension",
                format!(
                    "not a photo by its extension (photos end in .{})",
                    super::IMAGE_EXTENSIONS.join(", .")
                ),
            );
        }
        Some(SourceItem::Photo(record))
    }
}
