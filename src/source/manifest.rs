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

use super::{Cells, PhotoRecord, Problem, ProblemKind, SourceError, SourceItem};
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

/// The columns a report adds to a manifest's (`status` and `face_id`), if `path`'s
/// header can be read and holds them both.
pub fn report_columns(path: &Path) -> Option<Vec<String>> {
    let file = File::open(path).ok()?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(BufReader::new(file));
    let mut header = csv::ByteRecord::new();
    reader.read_byte_record(&mut header).ok()?;
    let found: Vec<String> = header
        .iter()
        .map(|f| String::from_utf8_lossy(f).to_lowercase())
        .filter(|n| REPORT_ONLY_COLUMNS.contains(&n.as_str()))
        .collect();
    (found.len() == REPORT_ONLY_COLUMNS.len()).then_some(found)
}

/// Columns of `faceenroll report` that a manifest of an archive is not expected to
/// carry together: they say a photo's outcome in a job (an HR export may well have
/// a `status` column of its own).
const REPORT_ONLY_COLUMNS: [&str; 2] = ["status", "face_id"];

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
    for (i, name) in names.iter().enumerate() {
        if let Some(j) = names[i + 1..].iter().position(|n| n == name) {
            return Err(SourceError::Header {
                path: path.to_owned(),
                message: format!(
                    "column {name:?} appears twice (columns {} and {}); which one to read \
                     is not clear",
                    i + 1,
                    i + j + 2
                ),
            });
        }
    }
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
        width: names.len(),
        lines: LineCounter {
            reader: BufReader::with_capacity(256 * 1024, lines),
            offset: 0,
            line: 1,
            quote: Quote::FieldStart,
            last: None,
        },
        record: csv::ByteRecord::new(),
        columns,
        file: path.to_owned(),
        dir: super::real_path(path)
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default(),
        done: false,
    })
}

/// The rows of a manifest, in line order.
pub struct ManifestRows {
    reader: csv::Reader<BufReader<File>>,
    /// Fields of the header: every row must have as many.
    width: usize,
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
                    Ok(line) if self.record.len() != self.width => {
                        self.done = true;
                        Some(self.refused(
                            line,
                            format!(
                                "the row has {} fields where the header has {}: a quote \
                                 left open, or a comma in a cell that is not quoted, starts \
                                 here or above",
                                self.record.len(),
                                self.width
                            ),
                        ))
                    }
                    Ok(line) => Some(self.row(line)),
                    Err(err) => {
                        self.done = true;
                        let line = self.lines.line;
                        Some(self.refused(line, format!("cannot read the manifest further: {err}")))
                    }
                }
            }
            Ok(false) => {
                self.done = true;
                match self.lines.finish() {
                    Ok(None) => None,
                    Ok(Some(Unended::Line(line))) => Some(
                        self.refused(
                            line,
                            "the last line has no line break at its end, so the file looks cut \
                         short (an export still being written, or a copy that stopped) and \
                         this row may be cut inside a cell; nothing of the manifest is taken. \
                         Once the file is whole, end it with a line break"
                                .into(),
                        ),
                    ),
                    Ok(Some(Unended::Quote(opened))) => Some(
                        self.refused(
                            opened,
                            "a quote opened here is never closed, so every line after it would \
                         be read as one cell; close the quote (a quote inside a quoted cell \
                         is written twice: \"\")"
                                .into(),
                        ),
                    ),
                    Err(err) => {
                        let line = self.lines.line;
                        Some(self.refused(line, format!("cannot read the manifest further: {err}")))
                    }
                }
            }
            Err(err) => {
                // The reader cannot go on after an I/O error; report it and stop.
                self.done = true;
                let byte = err.position().map_or(self.lines.offset, |p| p.byte());
                let line = self.lines.line_at(byte).unwrap_or(self.lines.line);
                Some(self.refused(line, format!("cannot read the manifest further: {err}")))
            }
        }
    }
}

/// Where the quoting of the manifest stands, as the CSV reader sees it: a quote opens
/// a quoted cell only as its first character; inside one, a doubled quote is a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    FieldStart,
    Unquoted,
    /// In a quoted cell opened on this line.
    Quoted(u64),
    /// A quote inside a quoted cell opened on this line: it closes the cell unless
    /// another follows.
    MaybeClosed(u64),
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
    /// The quoting at `offset`.
    quote: Quote,
    /// The last byte read, if any.
    last: Option<u8>,
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
            let bytes = buf[..take].to_vec();
            self.feed(&bytes);
            self.reader.consume(take);
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
            let bytes = buf[..ends].to_vec();
            self.feed(&bytes);
            self.reader.consume(ends);
        }
        Ok(self.line)
    }

    /// Reads the rest of the file: how it ends, when not as a whole manifest does.
    fn finish(&mut self) -> std::io::Result<Option<Unended>> {
        self.line_at(u64::MAX)?;
        Ok(match (self.quote, self.last) {
            (Quote::Quoted(line), _) => Some(Unended::Quote(line)),
            (_, Some(b'\n') | None) => None,
            (_, Some(_)) => Some(Unended::Line(self.line)),
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut bytes = bytes;
        if self.offset == 0 && bytes.starts_with(b"\xEF\xBB\xBF") {
            bytes = &bytes[3..];
            self.offset += 3;
        }
        for &b in bytes {
            self.quote = match (self.quote, b) {
                (Quote::FieldStart, b'"') => Quote::Quoted(self.line),
                (Quote::FieldStart | Quote::Unquoted, b',' | b'\n' | b'\r') => Quote::FieldStart,
                (Quote::FieldStart | Quote::Unquoted, _) => Quote::Unquoted,
                (Quote::Quoted(l), b'"') => Quote::MaybeClosed(l),
                (q @ Quote::Quoted(_), _) => q,
                (Quote::MaybeClosed(l), b'"') => Quote::Quoted(l),
                (Quote::MaybeClosed(_), b',' | b'\n' | b'\r') => Quote::FieldStart,
                (Quote::MaybeClosed(_), _) => Quote::Unquoted,
            };
            if b == b'\n' {
                self.line += 1;
            }
        }
        if let Some(&b) = bytes.last() {
            self.last = Some(b);
        }
        self.offset += bytes.len() as u64;
    }
}

/// How a manifest ends when it is not whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unended {
    /// A quote opened on this line is never closed.
    Quote(u64),
    /// The last line, this one, has no line break at its end: the file was cut short
    /// (an export still being written, a copy that stopped), maybe inside a cell.
    Line(u64),
}

impl ManifestRows {
    /// A problem that refuses the whole manifest, naming the line.
    fn refused(&self, line: u64, message: String) -> SourceItem {
        let origin = Origin::Manifest {
            file: self.file.clone(),
            line,
        };
        SourceItem::Problem(Problem {
            message: format!("{origin}: {message}"),
            origin,
            photo: None,
            kind: ProblemKind::Refused,
            class: "malformed manifest",
            cells: None,
        })
    }

    /// A cell as text: lossily decoded, with whether it was valid UTF-8.
    fn cell(&self, index: Option<usize>) -> (String, bool) {
        let bytes = index.and_then(|i| self.record.get(i)).unwrap_or_default();
        match std::str::from_utf8(bytes) {
            Ok(s) => (s.to_owned(), true),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), false),
        }
    }

    fn row(&self, line: u64) -> SourceItem {
        let origin = Origin::Manifest {
            file: self.file.clone(),
            line,
        };
        let c = &self.columns;
        let columns = [
            ("person_id", Some(c.person)),
            ("image", Some(c.image)),
            ("group_ids", Some(c.groups)),
            ("person_name", c.name),
            ("tag", c.tag),
        ];
        let mut not_utf8 = Vec::new();
        let [person, image, groups, name, tag] = columns.map(|(column, index)| {
            let (text, utf8) = self.cell(index);
            if !utf8 {
                not_utf8.push(column);
            }
            text
        });
        let cells = Cells {
            person_id: person.clone(),
            image: image.clone(),
            group_ids: groups.clone(),
            person_name: name.clone(),
            tag: tag.clone(),
        };
        let not_taken = |class: &'static str, message: String| {
            SourceItem::Problem(Problem {
                message: format!("{origin}: {message}"),
                origin: origin.clone(),
                photo: None,
                kind: ProblemKind::Invalid,
                class,
                cells: Some(cells.clone()),
            })
        };
        if !not_utf8.is_empty() {
            return not_taken(
                "cell not UTF-8",
                format!(
                    "{} not valid UTF-8; save the manifest as UTF-8",
                    match not_utf8.as_slice() {
                        [one] => format!("{one} is"),
                        many => format!("{} are", many.join(", ")),
                    }
                ),
            );
        }
        if image.is_empty() {
            return not_taken(
                "image empty",
                "image is empty; give a path or an http(s) URL".into(),
            );
        }
        let (person, written) = super::nfc(person);
        let groups: Vec<String> = groups
            .split(GROUP_SEPARATOR)
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| super::nfc(g.to_owned()).0)
            .collect();
        let optional = |s: String| (!s.is_empty()).then_some(s);
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
            written,
            image: image_ref,
            groups,
            name: optional(name),
            tag: optional(tag),
            origin: origin.clone(),
            seq: line,
        };
        if bad_scheme {
            return SourceItem::Problem(Problem {
                message: format!("{origin}: image {image:?} is a URL that is not http or https"),
                origin,
                photo: Some(record),
                kind: ProblemKind::Invalid,
                class: "not an http(s) URL",
                cells: None,
            });
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
