//! A CSV manifest: one photo per row.
//!
//! The first row is the header. Columns, found by name (case-insensitive, in any
//! order, extra columns ignored):
//!
//! | column | required | meaning |
//! | --- | --- | --- |
//! | `person_id` | yes | the person the photo belongs to |
//! | `image` | yes | a path relative to the manifest's folder, an absolute path, or an http(s) URL |
//! | `group_ids` | yes | the person's groups, separated by `;` |
//! | `person_name` | no | the person's name |
//! | `tag` | no | the person's tag |
//!
//! Rows of one person need not be adjacent; the planner gathers them. Fields are
//! trimmed of surrounding whitespace; an empty `person_name` or `tag` means "not
//! given". Quoting, a UTF-8 byte order mark, CRLF line ends and blank lines are
//! handled. Every message names the manifest and the line, counted in the file as
//! an editor shows it (the header is line 1).

use super::{PhotoRecord, Problem, ProblemKind, SourceError, SourceItem};
use crate::model::ImageRef;
use crate::store::Origin;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The required columns, in the order messages list them.
pub const REQUIRED_COLUMNS: [&str; 3] = ["person_id", "image", "group_ids"];

/// Separator between the group ids of the `group_ids` column.
pub const GROUP_SEPARATOR: char = ';';

struct Columns {
    person: usize,
    image: usize,
    groups: usize,
    name: Option<usize>,
    tag: Option<usize>,
}

/// Opens a manifest and reads its header. Fails when the file cannot be read, is
/// empty, or lacks a required column.
pub fn read(path: &Path) -> Result<ManifestRows, SourceError> {
    let file = File::open(path).map_err(|source| SourceError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::with_capacity(256 * 1024, file));
    let mut header = csv::ByteRecord::new();
    let found = reader
        .read_byte_record(&mut header)
        .map_err(|e| SourceError::Header {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if !found {
        return Err(SourceError::Header {
            path: path.to_owned(),
            message: format!(
                "the manifest is empty; its first line must name the columns {}",
                REQUIRED_COLUMNS.join(", ")
            ),
        });
    }
    let names: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).to_lowercase())
        .collect();
    let find = |column: &str| names.iter().position(|n| n == column);
    let require = |column: &'static str| {
        find(column).ok_or_else(|| SourceError::MissingColumn {
            path: path.to_owned(),
            column,
            found: names.join(", "),
        })
    };
    let columns = Columns {
        person: require("person_id")?,
        image: require("image")?,
        groups: require("group_ids")?,
        name: find("person_name"),
        tag: find("tag"),
    };
    let lines = File::open(path).map_err(|source| SourceError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    Ok(ManifestRows {
        reader,
        lines: LineCounter {
            reader: BufReader::with_capacity(256 * 1024, lines),
            offset: 0,
            line: 1,
        },
        record: csv::ByteRecord::new(),
        columns,
        file: path.to_owned(),
        dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        done: false,
    })
}

/// The rows of a manifest, in line order.
pub struct ManifestRows {
    reader: csv::Reader<BufReader<File>>,
    lines: LineCounter,
    record: csv::ByteRecord,
    columns: Columns,
    file: PathBuf,
    /// The folder relative image paths are resolved against.
    dir: PathBuf,
    done: bool,
}

impl Iterator for ManifestRows {
    type Item = SourceItem;

    fn next(&mut self) -> Option<SourceItem> {
        if self.done {
            return None;
        }
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {
                let byte = self.record.position().map_or(0, |p| p.byte());
                match self.lines.line_at(byte) {
                    Ok(line) => Some(self.row(line)),
                    Err(err) => {
                        self.done = true;
                        let origin = Origin::Manifest {
                            file: self.file.clone(),
                            line: self.lines.line,
                        };
                        Some(SourceItem::Problem(Problem {
                            message: format!("{origin}: cannot read the manifest further: {err}"),
                            origin,
                            photo: None,
                            kind: ProblemKind::Invalid,
                        }))
                    }
                }
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(err) => {
                // The reader cannot go on after an I/O error; report it and stop.
                self.done = true;
                let byte = err.position().map_or(self.lines.offset, |p| p.byte());
                let line = self.lines.line_at(byte).unwrap_or(self.lines.line);
                let origin = Origin::Manifest {
                    file: self.file.clone(),
                    line,
                };
                Some(SourceItem::Problem(Problem {
                    message: format!("{origin}: cannot read the manifest further: {err}"),
                    origin,
                    photo: None,
                    kind: ProblemKind::Invalid,
                }))
            }
        }
    }
}

/// Turns the byte offsets the CSV reader reports into line numbers as an editor
/// counts them (the reader's own line count skips blank lines and miscounts CRLF),
/// by reading the file a second time, forward only, alongside the parser.
struct LineCounter {
    reader: BufReader<File>,
    /// Bytes read so far.
    offset: u64,
    /// The line (1-based) `offset` is on.
    line: u64,
}

impl LineCounter {
    /// The line of the record starting at `byte`, which is never before the last one
    /// asked.
    fn line_at(&mut self, byte: u64) -> std::io::Result<u64> {
        use std::io::BufRead as _;
        while self.offset < byte {
            let buf = self.reader.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min((byte - self.offset) as usize);
            self.line += buf[..take].iter().filter(|&&b| b == b'\n').count() as u64;
            self.reader.consume(take);
            self.offset += take as u64;
        }
        // The reader may place a record at the line end before it (after CRLF, or
        // blank lines); the record itself starts at its first other byte.
        loop {
            let buf = self.reader.fill_buf()?;
            let ends = buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if ends == 0 {
                break;
            }
            self.line += buf[..ends].iter().filter(|&&b| b == b'\n').count() as u64;
            self.reader.consume(ends);
            self.offset += ends as u64;
        }
        Ok(self.line)
    }
}

impl ManifestRows {
    fn field(&self, index: usize) -> Result<&str, &'static str> {
        let bytes = self.record.get(index).unwrap_or_default();
        std::str::from_utf8(bytes).map_err(|_| "is not valid UTF-8")
    }

    fn row(&self, line: u64) -> SourceItem {
        let origin = Origin::Manifest {
            file: self.file.clone(),
            line,
        };
        let problem = |photo: Option<PhotoRecord>, message: String| {
            SourceItem::Problem(Problem {
                message: format!("{origin}: {message}"),
                origin: origin.clone(),
                photo,
                kind: ProblemKind::Invalid,
            })
        };
        let c = &self.columns;
        let text = |index: usize, column: &str| -> Result<String, String> {
            self.field(index)
                .map(str::to_owned)
                .map_err(|e| format!("{column} {e}"))
        };
        let optional = |index: Option<usize>, column: &str| -> Result<Option<String>, String> {
            match index {
                None => Ok(None),
                Some(i) => self
                    .field(i)
                    .map(|s| (!s.is_empty()).then(|| s.to_owned()))
                    .map_err(|e| format!("{column} {e}")),
            }
        };
        let fields = (|| {
            Ok::<_, String>((
                text(c.person, "person_id")?,
                text(c.image, "image")?,
                text(c.groups, "group_ids")?,
                optional(c.name, "person_name")?,
                optional(c.tag, "tag")?,
            ))
        })();
        let (person, image, groups, name, tag) = match fields {
            Ok(f) => f,
            Err(message) => return problem(None, message),
        };
        if image.is_empty() {
            return problem(None, "image is empty; give a path or an http(s) URL".into());
        }
        let groups: Vec<String> = groups
            .split(GROUP_SEPARATOR)
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect();
        let (image_ref, bad_scheme) = match url_scheme(&image) {
            Some(scheme)
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                (ImageRef::Url(image.clone()), false)
            }
            Some(_) => (ImageRef::Url(image.clone()), true),
            None => {
                let p = Path::new(&image);
                let path = if p.is_absolute() {
                    p.to_owned()
                } else {
                    self.dir.join(p)
                };
                (ImageRef::File(path), false)
            }
        };
        let record = PhotoRecord {
            person,
            image: image_ref,
            groups,
            name,
            tag,
            origin: origin.clone(),
            seq: line,
        };
        if bad_scheme {
            return problem(
                Some(record),
                format!("image {image:?} is a URL that is not http or https"),
            );
        }
        SourceItem::Photo(record)
    }
}

/// The scheme of a URL-looking string (`scheme://...`), or `None` for a path.
fn url_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_are_told_from_paths() {
        assert_eq!(url_scheme("https://x/y.jpg"), Some("https"));
        assert_eq!(url_scheme("ftp://x/y.jpg"), Some("ftp"));
        assert_eq!(url_scheme("photos/a.jpg"), None);
        assert_eq!(url_scheme("/abs/a.jpg"), None);
        assert_eq!(url_scheme("odd dir://a.jpg"), None);
    }
}
