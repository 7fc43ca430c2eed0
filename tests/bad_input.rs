//! A corpus of bad input, run through the binary as an operator would run it
//! (`faceenroll enroll SOURCE --emulator`): generated trees and manifests with every
//! defect the planner knows, and the ones a disk or an export produces by accident
//! (truncated images, zero-byte and huge files, deep and looping directories,
//! malformed CSV, names that are not UTF-8).
//!
//! For each: never a panic (exit code 0, 1 or 2, never 101, and no "panicked" on
//! stderr), and every input photo in the report with its status and a reason that
//! names it (its path, and for a manifest its line). A manifest row that names no
//! photo at all (no readable image field) is named by its line in the summary.

mod support;

use faceenroll::report::Row;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use support::{blank, faceenroll, photo, report_rows, write};

/// What a run of the binary left.
struct Run {
    code: Option<i32>,
    stderr: String,
    rows: Vec<Row>,
}

/// `faceenroll enroll SOURCE --emulator --state STATE --no-progress EXTRA...`:
/// asserts it did not panic and ended with a documented exit code.
fn enroll(source: &Path, state: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![
        "enroll".as_ref(),
        source.as_os_str(),
        "--emulator".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--no-progress".as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let out = faceenroll(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "panic on {}:\n{stderr}",
        source.display()
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?} on {}:\n{stdout}\n{stderr}",
        source.display()
    );
    Run {
        code,
        stderr,
        rows: report_rows(state),
    }
}

impl Run {
    /// The one report row of the photo at `path`.
    fn row(&self, path: &Path) -> &Row {
        let shown = path.to_string_lossy();
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.image == shown).collect();
        assert_eq!(rows.len(), 1, "{shown} in the report: {:#?}", self.rows);
        rows[0]
    }

    /// Asserts the tree photo at `path` has `status` and, unless enrolled, a
    /// reason that names it and says `why`.
    fn expect(&self, path: &Path, status: &str, why: &str) {
        let row = self.row(path);
        assert_eq!(row.status, status, "{row:#?}");
        if status != "enrolled" {
            let name = path.to_string_lossy();
            assert!(
                row.reason.contains(name.as_ref()),
                "reason names the photo: {row:#?}"
            );
            assert!(row.reason.contains(why), "reason says {why:?}: {row:#?}");
        }
    }

    /// Asserts the manifest photo at `path` (listed on `line`) has `status` and,
    /// unless enrolled, a reason that names its line and says `why`.
    fn expect_line(&self, path: &Path, line: u64, status: &str, why: &str) {
        let shown = path.to_string_lossy();
        let row = self
            .rows
            .iter()
            .find(|r| r.image == shown && r.line == Some(line))
            .unwrap_or_else(|| panic!("{shown} at line {line} in {:#?}", self.rows));
        assert_eq!(row.status, status, "{row:#?}");
        if status != "enrolled" {
            let place = format!("manifest.csv:{line}: ");
            assert!(
                row.reason.contains(&place),
                "reason names the line: {row:#?}"
            );
            assert!(row.reason.contains(why), "reason says {why:?}: {row:#?}");
        }
    }
}

/// A path under `dir` whose last component is the given raw bytes.
fn raw_name(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

#[test]
fn a_tree_with_every_defect() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    let p = root.join("alice");
    let good = write(&p.join("000.png"), &photo(1));
    let copy = write(&p.join("001-copy.png"), &photo(1));
    let empty = write(&p.join("002-empty.jpg"), b"");
    let text = write(&p.join("003-text.jpg"), b"Dear diary, today");
    let png = photo(2);
    let truncated = write(&p.join("004-truncated.png"), &png[..png.len() / 2]);
    let no_face = write(&p.join("005-blank.png"), &blank());
    let not_utf8 = raw_name(&p, b"006-\xff\xfe.png");
    write(&not_utf8, &photo(3));
    let stray = write(&p.join("notes.txt"), b"not a photo by its name");
    let mut deep = p.clone();
    for level in 0..60 {
        deep.push(format!("d{level}"));
    }
    let buried = write(&deep.join("buried.png"), &photo(4));
    let bad_id = write(&root.join("bad id").join("0.png"), &photo(5));
    let long_id = write(&root.join("a".repeat(65)).join("0.png"), &photo(6));
    let bad_folder = raw_name(&root, b"\xffperson").join("0.png");
    write(&bad_folder, &photo(7));
    let many: Vec<PathBuf> = (0..22)
        .map(|i| {
            write(
                &root.join("bob").join(format!("{i:02}.png")),
                &photo(100 + i),
            )
        })
        .collect();

    let state = tmp.path().join("state");
    let run = enroll(&root, &state, &["--group", "staff"]);
    assert_eq!(run.rows.len(), 9 + 3 + 22, "every file in the report once");
    assert_eq!(run.row(&good).status, "enrolled");
    run.expect(&copy, "duplicate", "same content as");
    run.expect(&empty, "failed", "empty");
    run.expect(&text, "failed", "not an image");
    run.expect(&truncated, "failed", "-1102");
    run.expect(&no_face, "failed", "-1101");
    run.expect(&not_utf8, "failed", "not valid UTF-8");
    run.expect(&stray, "skipped", "not a photo by its extension");
    run.expect(&buried, "skipped", "in a subfolder");
    run.expect(&bad_id, "failed", "' '");
    run.expect(&long_id, "failed", "over the service's limit of 64");
    run.expect(&bad_folder, "failed", "not valid UTF-8");
    for (i, path) in many.iter().enumerate() {
        if i < 20 {
            assert_eq!(run.row(path).status, "enrolled", "{}", path.display());
        } else {
            run.expect(path, "skipped", "limit of 20 faces");
        }
    }
}

#[test]
fn a_huge_sparse_file_and_a_symbolic_link_loop() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    let good = write(&root.join("carol").join("0.png"), &photo(1));
    // 7 MB, a PNG by its first bytes, with no resizing: over one request.
    let huge = write(&root.join("carol").join("1-huge.png"), &photo(2)[..64]);
    std::fs::File::options()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(7 * 1024 * 1024)
        .unwrap();
    // A link back to the root, followed: a loop.
    std::os::unix::fs::symlink(&root, root.join("carol").join("back")).unwrap();
    std::os::unix::fs::symlink(root.join("carol"), root.join("dave")).unwrap();
    let state = tmp.path().join("state");
    let run = enroll(
        &root,
        &state,
        &["--group", "staff", "--follow-symlinks", "--no-resize"],
    );
    assert_eq!(run.row(&good).status, "enrolled");
    run.expect(&huge, "failed", "resizing is off");
    // The loop names no photo: it is a failed row of the report, and the run says so.
    let back = root.join("carol").join("back");
    assert!(
        run.stderr
            .contains(&format!("{}: symbolic link loop", back.display())),
        "the loop is reported:\n{}",
        run.stderr
    );
    let row = run.row(&back);
    assert_eq!(row.status, "failed", "{row:#?}");
    assert!(row.reason.contains("symbolic link loop"), "{row:#?}");
    assert_eq!(run.code, Some(1));
    // The link to a person folder is followed: dave holds carol's photos.
    assert_eq!(run.row(&root.join("dave").join("0.png")).status, "enrolled");
}

#[test]
fn a_manifest_with_every_defect() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    let file = |name: &str| dir.join(name);
    for (i, name) in [
        "good0", "good1", "good2", "good3", "good4", "good5", "good6", "good7",
    ]
    .iter()
    .enumerate()
    {
        write(&file(&format!("{name}.png")), &photo(i as u32));
    }
    write(&file("empty.png"), b"");
    write(&file("text.png"), b"id,name\n1,2\n");
    write(&file("x1.png"), &photo(20));
    write(&file("x2.png"), &photo(21));
    for i in 0..22 {
        write(&file(&format!("d{i:02}.png")), &photo(100 + i));
    }
    let long = "a".repeat(65);
    let mut csv: Vec<u8> = b"person_id,image,group_ids,person_name,tag\n".to_vec();
    let mut line = |text: &[u8]| {
        csv.extend_from_slice(text);
        csv.push(b'\n');
    };
    line(b"alice,good0.png,staff,Alice,t1"); // 2
    line(b"alice,missing.png,staff,,"); // 3
    line(b"alice,empty.png,staff,,"); // 4
    line(b"alice,text.png,staff,,"); // 5
    line(b"alice,adir,staff,,"); // 6
    line(b"bad id,x1.png,staff,,"); // 7
    line(format!("{long},x2.png,staff,,").as_bytes()); // 8
    line(b"bob,good1.png,staff,Bob,"); // 9
    line(b"bob,good2.png,staff,Robert,"); // 10
    line(b"bob,good1.png,staff,Bob,"); // 11
    line(b"carol,ftp://example.com/c.jpg,staff,,"); // 12
    line(b"carol,good3.png,staff,,tagA"); // 13
    line(b"carol,good4.png,staff,,tagB"); // 14
    line(b"erin,good5.png,bad group,,"); // 15
    for i in 0..22 {
        line(format!("dave,d{i:02}.png,staff,,").as_bytes()); // 16..=37
    }
    line(b"eve,\xff\xfe.png,staff,,"); // 38
    line(b"frank,good6.png,,,"); // 39
    line(b"gina,good7.png,staff,Gina,t"); // 40
    line(b"hal,,staff,Hal,"); // 41
    let manifest = write(&file("manifest.csv"), &csv);

    let state = tmp.path().join("state");
    let run = enroll(&manifest, &state, &[]);
    assert_eq!(run.code, Some(1), "failed rows fail the run");
    // Every listed line once: 41 lines, the header aside; the repeated line is
    // ignored, naming the line it repeats.
    assert_eq!(run.rows.len(), 41 - 1, "{:#?}", run.rows);
    run.expect_line(&file("good1.png"), 11, "ignored", "first listed at");
    run.expect_line(&file("good0.png"), 2, "enrolled", "");
    run.expect_line(&file("missing.png"), 3, "failed", "not found");
    run.expect_line(&file("empty.png"), 4, "failed", "empty");
    run.expect_line(&file("text.png"), 5, "failed", "not an image");
    run.expect_line(&file("adir"), 6, "failed", "not a regular file");
    run.expect_line(&file("x1.png"), 7, "failed", "' '");
    run.expect_line(&file("x2.png"), 8, "failed", "limit of 64");
    run.expect_line(&file("good1.png"), 9, "enrolled", "");
    run.expect_line(&file("good2.png"), 10, "failed", "manifest.csv:9");
    run.expect_line(&file("good4.png"), 14, "failed", "manifest.csv:13");
    run.expect_line(&file("good5.png"), 15, "failed", "bad group");
    run.expect_line(&file("good6.png"), 39, "failed", "no group");
    run.expect_line(&file("good7.png"), 40, "enrolled", "");
    run.expect_line(
        Path::new("ftp://example.com/c.jpg"),
        12,
        "failed",
        "not http",
    );
    for i in 0..22 {
        let (status, why) = if i < 20 {
            ("enrolled", "")
        } else {
            ("skipped", "limit of 20")
        };
        run.expect_line(&file(&format!("d{i:02}.png")), 16 + i, status, why);
    }
    // A cell that is not UTF-8, or an empty image: the row as written, failed.
    let eve = run.rows.iter().find(|r| r.line == Some(38)).unwrap();
    assert_eq!(
        (
            eve.person_id.as_str(),
            eve.image.as_str(),
            eve.status.as_str()
        ),
        ("eve", "\u{fffd}\u{fffd}.png", "failed"),
        "{eve:#?}"
    );
    assert!(eve
        .reason
        .contains("manifest.csv:38: image is not valid UTF-8"));
    let hal = run.rows.iter().find(|r| r.line == Some(41)).unwrap();
    assert_eq!(
        (
            hal.person_id.as_str(),
            hal.group_ids.as_str(),
            hal.person_name.as_str(),
            hal.status.as_str()
        ),
        ("hal", "staff", "Hal", "failed"),
        "{hal:#?}"
    );
    assert!(hal.reason.contains("manifest.csv:41: image is empty"));
}

#[test]
fn a_row_with_the_wrong_number_of_fields_refuses_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    for i in 0..2 {
        write(&dir.join(format!("p{i}.png")), &photo(i));
    }
    for (bad, line) in [
        (&b"ben\n"[..], 3),
        (&b"cat,p1.png,staff,,,\n"[..], 3),
        // A quote left open in the middle: the row ends at the end of the file.
        (&b"dan,\"p1.png,staff\neli,p1.png,staff\n"[..], 3),
    ] {
        let mut text = b"person_id,image,group_ids\nann,p0.png,staff\n".to_vec();
        text.extend_from_slice(bad);
        text.extend_from_slice(b"fay,p1.png,staff\n");
        let manifest = write(&dir.join("manifest.csv"), &text);
        let state = tmp.path().join(format!("state-{line}-{}", bad.len()));
        let run = enroll(&manifest, &state, &[]);
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        let named = format!("{}:{line}: the row has ", manifest.display());
        assert!(run.stderr.contains(&named), "{named}:\n{}", run.stderr);
        assert!(run.rows.is_empty(), "nothing planned: {:#?}", run.rows);
    }
}

#[test]
fn a_quote_never_closed_refuses_the_manifest_naming_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("export");
    for i in 0..4 {
        write(&dir.join(format!("p{i}.png")), &photo(i));
    }
    // The quote opens the last cell of line 3: every later line would be Ann's name.
    let manifest = write(
        &dir.join("manifest.csv"),
        b"person_id,image,group_ids,person_name\n\
          ann,p0.png,staff,\"Ann \"\"A\"\"\"\n\
          ben,p1.png,staff,\"Ben\n\
          cat,p2.png,staff,Cat\n\
          dan,p3.png,staff,Dan\n",
    );
    let run = enroll(&manifest, &tmp.path().join("state"), &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let named = format!(
        "{}:3: a quote opened here is never closed",
        manifest.display()
    );
    assert!(run.stderr.contains(&named), "{named}:\n{}", run.stderr);
    assert!(run.rows.is_empty(), "nothing planned: {:#?}", run.rows);

    // Quoted cells that close, across lines and with doubled quotes, are fine.
    let manifest = write(
        &dir.join("manifest.csv"),
        b"person_id,image,group_ids,person_name\n\
          ann,p0.png,staff,\"Ann \"\"A\"\"\"\n\
          ben,p1.png,staff,\"Ben\nthe second\"\n\
          cat,p2.png,staff,Cat\n",
    );
    let run = enroll(&manifest, &tmp.path().join("state2"), &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.rows.len(), 3, "{:#?}", run.rows);
    let ben = run.rows.iter().find(|r| r.person_id == "ben").unwrap();
    assert_eq!(ben.person_name, "Ben\nthe second");
}

#[test]
fn a_duplicated_header_column_refuses_the_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write(
        &tmp.path().join("manifest.csv"),
        b"person_id,image,group_ids,Image\nann,p0.png,staff,p1.png\n",
    );
    let run = enroll(&manifest, &tmp.path().join("state"), &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("column \"image\" appears twice"),
        "{}",
        run.stderr
    );
}
