//! Phase 1 of a pass, one record at a time: the checks that can be told from a record
//! and its file alone, and the file's size and content hash.

use super::PlanOptions;
use crate::limits::{MAX_NAME_BYTES, MAX_TAG_BYTES};
use crate::model::{check_id, ContentHash, ImageKind, ImageRef};
use crate::normalize;
use crate::source::{PhotoRecord, Problem, ProblemKind, SourceItem};
use crate::store::{Origin, PhotoEntry, PhotoKey};
use serde::{Deserialize, Serialize};
use std::io::Read as _;
use std::path::Path;

/// One listed photo after its checks, as sorted by person on its way to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Row {
    pub(super) person: String,
    /// The person as written, when that was not NFC.
    #[serde(default)]
    pub(super) written: Option<String>,
    pub(super) image: ImageRef,
    pub(super) origin: Origin,
    pub(super) seq: u64,
    pub(super) groups: Vec<String>,
    pub(super) name: Option<String>,
    pub(super) tag: Option<String>,
    pub(super) hash: Option<ContentHash>,
    pub(super) size: Option<u64>,
    /// The file's modification time, when it can vouch for the hash (see [`inspect`]).
    #[serde(default)]
    pub(super) modified: Option<u64>,
    /// The photo will be re-encoded to fit before it is sent.
    #[serde(default)]
    pub(super) normalize: bool,
    /// The listed file is not there (`file not found`): for a photo enrolled before,
    /// a file gone, not a file the source could not read.
    #[serde(default)]
    pub(super) gone: bool,
    pub(super) verdict: Verdict,
}

/// What the checks of one row found; the gravest problem wins, in the order below
/// from the last.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Verdict {
    Ok,
    /// Not a photo to send (not a photo by its name, a link not followed).
    Skip(String),
    /// The photo itself is unusable (its file, content or URL).
    Invalid(String),
    /// A group, name or tag of this line is unusable: the line fails and gives the
    /// person nothing.
    Field(String),
    /// The person cannot be planned (bad id, folder name not UTF-8): every photo of
    /// the person fails.
    Person(String),
}

impl Verdict {
    pub(super) fn person_error(&self) -> Option<&str> {
        match self {
            Verdict::Person(e) => Some(e),
            _ => None,
        }
    }
}

impl Row {
    pub(super) fn key(&self) -> PhotoKey {
        PhotoKey::new(&self.person, &self.image)
    }
}
/// What an earlier run recorded of a photo, by its key.
pub(super) type Previous<'a> = dyn Fn(&PhotoKey) -> Option<PhotoEntry> + Sync + 'a;

/// Checks one record: everything that can be told from the record and its file
/// alone (and from what an earlier run recorded of that file). `Err` is a problem of
/// the source with no photo to record.
pub(super) fn check(
    item: SourceItem,
    options: &PlanOptions,
    previous: &Previous<'_>,
) -> Result<Row, Box<Problem>> {
    let (record, verdict, person_error) = match item {
        SourceItem::Photo(record) => (record, Verdict::Ok, None),
        SourceItem::Problem(mut problem) => match (problem.photo.take(), problem.kind) {
            (None, _) | (_, ProblemKind::Refused) => return Err(Box::new(problem)),
            (Some(r), ProblemKind::Skip) => (r, Verdict::Skip(problem.message), None),
            (Some(r), ProblemKind::Invalid) => (r, Verdict::Invalid(problem.message), None),
            (Some(r), ProblemKind::InvalidPerson) => (
                r,
                Verdict::Invalid(problem.message.clone()),
                Some(problem.message),
            ),
        },
    };
    let PhotoRecord {
        person,
        written,
        image,
        groups,
        name,
        tag,
        origin,
        seq,
    } = record;
    let is_manifest = matches!(origin, Origin::Manifest { .. });
    let person_error = person_error.or_else(|| {
        check_id(&person).err().map(|e| {
            let field = if is_manifest {
                "person_id"
            } else {
                "person folder"
            };
            format!("{origin}: {field} {person:?} {e}")
        })
    });
    let field_error = groups
        .iter()
        .find_map(|g| {
            let field = if is_manifest {
                "group_ids: group"
            } else {
                "group folder"
            };
            if g.contains(',') {
                return Some(format!(
                    "{origin}: {field} {g:?} holds a comma; separate groups with \"{}\"",
                    crate::source::manifest::GROUP_SEPARATOR
                ));
            }
            check_id(g)
                .err()
                .map(|e| format!("{origin}: {field} {g:?} {e}"))
        })
        .or_else(|| too_long(&origin, "person_name", name.as_deref(), MAX_NAME_BYTES))
        .or_else(|| too_long(&origin, "tag", tag.as_deref(), MAX_TAG_BYTES));
    let mut row = Row {
        person,
        written,
        image,
        origin,
        seq,
        groups,
        name,
        tag,
        hash: None,
        size: None,
        modified: None,
        normalize: false,
        gone: false,
        verdict,
    };
    if !options.check_content && matches!(row.verdict, Verdict::Ok) {
        // No file is read, but its size and modification time (one `stat`, never
        // an open) still tell a photo changed in place, and its type one that is
        // not a file at all (a FIFO would hang the open that reads it).
        if let ImageRef::File(path) = &row.image {
            if let Ok(meta) = std::fs::metadata(path) {
                row.size = Some(meta.len());
                row.modified = nanos(meta.modified().ok());
                if !meta.is_file() {
                    let reason = if meta.is_dir() {
                        "not a regular file (a folder)"
                    } else {
                        crate::photo_file::NOT_A_REGULAR_FILE
                    };
                    let place = place_of(&row.origin);
                    row.verdict = Verdict::Invalid(format!("{place}{}: {reason}", path.display()));
                }
            }
        }
    }
    if options.check_content && matches!(row.verdict, Verdict::Ok) {
        if let ImageRef::File(path) = &row.image {
            let before = previous(&row.key());
            match inspect(path, options, before.as_ref()) {
                Ok(inspected) => {
                    row.size = Some(inspected.size);
                    row.hash = Some(inspected.hash);
                    row.modified = inspected.modified;
                    // A photo already settled by an earlier run is not sent again: no
                    // need to read its header to count it.
                    let settled = inspected.reused && before.is_some_and(|b| b.state.is_final());
                    if options.normalize.enabled && !settled {
                        match normalize::decide(path, &options.normalize) {
                            Ok(decision) => row.normalize = decision != normalize::Decision::AsIs,
                            // Refused from its header, before any call: never decoded.
                            Err(normalize::NormalizeError::TooManyPixels { dims, .. }) => {
                                row.verdict = Verdict::Invalid(format!(
                                    "{}{}: {}",
                                    place_of(&row.origin),
                                    path.display(),
                                    normalize::over_pixel_limit(dims)
                                ));
                            }
                            Err(e @ normalize::NormalizeError::OverMemory { .. }) => {
                                row.verdict =
                                    Verdict::Invalid(format!("{}{e}", place_of(&row.origin)));
                            }
                            // Any other header trouble is the photo's when it is sent.
                            Err(_) => {}
                        }
                    }
                }
                Err(message) => {
                    row.gone = message == FILE_NOT_FOUND;
                    let place = place_of(&row.origin);
                    row.verdict = Verdict::Invalid(format!("{place}{}: {message}", path.display()));
                }
            }
        }
    }
    if let Some(e) = person_error {
        row.verdict = Verdict::Person(e);
    } else if let Some(e) = field_error {
        row.verdict = Verdict::Field(e);
    }
    Ok(row)
}

/// Where a row came from, as a message about its photo begins: nothing for a file of a
/// tree (its path says it), `manifest.csv:LINE: ` for a manifest row.
fn place_of(origin: &Origin) -> String {
    match origin {
        Origin::Tree { .. } => String::new(),
        o @ Origin::Manifest { .. } => format!("{o}: "),
    }
}

pub(super) fn too_long(
    origin: &Origin,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let len = value?.len();
    (len > max).then(|| {
        format!("{origin}: {field} is {len} bytes long, over the service's limit of {max}")
    })
}

/// A local photo as the planner found it.
pub(super) struct Inspected {
    pub(super) size: u64,
    pub(super) hash: ContentHash,
    /// The modification time to record with the hash, when it can vouch for it.
    pub(super) modified: Option<u64>,
    /// The hash is an earlier run's, not read again.
    pub(super) reused: bool,
}

/// How long after its last change a file's modification time is trusted to tell a
/// later run that its content is unchanged. A file changed again within the same
/// tick of the file system's clock could keep its time; one older than this when it
/// was hashed cannot have been changed in that tick unnoticed.
pub(super) const SETTLED_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Why a listed file cannot be sent when it is not there.
const FILE_NOT_FOUND: &str = "file not found";

/// Reads a local photo: its size and content hash, or why it cannot be sent.
///
/// A file whose size and modification time are those an earlier run recorded with
/// its hash is not read again (as `make` and `rsync` judge files): a nightly run over
/// a large archive then costs one `stat` per unchanged photo, not a read of every
/// byte. The time is recorded only when the file had settled before it was hashed
/// (see [`SETTLED_AFTER`]); otherwise the next run reads the file again.
pub(super) fn inspect(
    path: &Path,
    options: &PlanOptions,
    before: Option<&PhotoEntry>,
) -> Result<Inspected, String> {
    // Looked at before it is opened: opening a FIFO would wait for a writer forever.
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FILE_NOT_FOUND.to_owned(),
        _ => format!("cannot read: {e}"),
    })?;
    if !meta.is_file() {
        return Err(if meta.is_dir() {
            "not a regular file (a folder)".into()
        } else {
            crate::photo_file::NOT_A_REGULAR_FILE.into()
        });
    }
    check_size(meta.len(), options)?;
    // An unchanged file its permissions let us read is not opened: one `stat`.
    if let Some(reused) = reuse(before, &meta).filter(|_| readable_by_mode(&meta)) {
        return Ok(reused);
    }
    let mut file = crate::photo_file::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    let size = meta.len();
    check_size(size, options)?;
    if let Some(reused) = reuse(before, &meta) {
        return Ok(reused);
    }
    let modified = meta.modified().ok();
    let modified_nanos = nanos(modified);
    let mut head = [0u8; normalize::SNIFF_BYTES];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    if ImageKind::sniff(&head[..got]).is_none() {
        // HEIC, WebP and TIFF photos travel as JPEG copies, so only with resizing on.
        match normalize::foreign_format(&head[..got]) {
            Some(format) if !options.normalize.enabled => {
                return Err(format!(
                    "a {format} photo, which the service does not take; it is sent as a \
                     JPEG copy, and resizing is off"
                ));
            }
            Some(_) => {}
            None => {
                return Err(
                    "not an image (content is not JPEG, PNG, BMP, GIF, HEIC/HEIF, \
                     WebP or TIFF)"
                        .into(),
                )
            }
        }
    }
    let hash = ContentHash::of_reader((&head[..got]).chain(file))
        .map_err(|e| format!("cannot read: {e}"))?;
    let settled = modified.is_some_and(|m| {
        std::time::SystemTime::now()
            .duration_since(m)
            .is_ok_and(|age| age >= SETTLED_AFTER)
    });
    Ok(Inspected {
        size,
        hash,
        modified: modified_nanos.filter(|_| settled),
        reused: false,
    })
}

/// Refuses an empty file, and one too large for a request when resizing is off.
fn check_size(size: u64, options: &PlanOptions) -> Result<(), String> {
    if size == 0 {
        return Err("the file is empty".into());
    }
    // Refused from its size: never hashed nor read.
    if let Err(e) = crate::photo_file::check_size(size, options.normalize.max_file_bytes) {
        return Err(e.to_string());
    }
    if !options.normalize.enabled && size > options.image_budget() {
        return Err(format!(
            "{}, over the {} one request can carry (resizing is off)",
            crate::report::bytes(size),
            crate::report::bytes(options.image_budget())
        ));
    }
    Ok(())
}

/// A modification time as the store records it: nanoseconds since the epoch.
fn nanos(time: Option<std::time::SystemTime>) -> Option<u64> {
    time.and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
}

/// The earlier run's hash of the file, when its size and modification time are
/// those recorded with it.
fn reuse(before: Option<&PhotoEntry>, meta: &std::fs::Metadata) -> Option<Inspected> {
    let before = before?;
    let (hash, recorded) = (before.hash?, before.modified?);
    let modified = nanos(meta.modified().ok())?;
    (before.size == Some(meta.len()) && recorded == modified).then_some(Inspected {
        size: meta.len(),
        hash,
        modified: Some(modified),
        reused: true,
    })
}

/// Whether the file's permission bits let this process read it, so an unchanged
/// photo need not be opened to tell. Errs on the side of `false` (the file is then
/// opened, and an unreadable one reported by the plan): a file of another owner
/// counts only when both its group and everyone may read it, since a group this
/// process is in may be denied what others are allowed. Access control lists and
/// security modules are not read; a photo they make unreadable fails when it is
/// sent, with the reason.
fn readable_by_mode(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let mode = meta.mode();
        // Asked once, not once a photo.
        static EUID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = *EUID.get_or_init(|| unsafe { libc::geteuid() });
        if euid == 0 {
            return true;
        }
        if meta.uid() == euid {
            return mode & 0o400 != 0;
        }
        mode & 0o044 == 0o044
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_file_counted_readable_by_its_permission_bits_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.jpg");
        std::fs::write(&path, b"\xff\xd8\xff").unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        for (mode, owner_reads) in [(0o644, true), (0o400, true), (0o244, false), (0o000, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let readable = readable_by_mode(&std::fs::metadata(&path).unwrap());
            assert_eq!(readable, root || owner_reads, "mode {mode:o}");
            if readable {
                std::fs::File::open(&path).unwrap();
            }
        }
    }
}
