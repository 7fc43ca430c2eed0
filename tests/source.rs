//! The sources on their own: what a directory tree and a manifest yield, in order,
//! and how they name the place of each problem.

mod support;

use faceenroll::model::ImageRef;
use faceenroll::source::{Layout, ProblemKind, SourceError, SourceItem, SourceSpec};
use faceenroll::store::Origin;
use std::fs;
use std::path::Path;
use support::{jpeg, tree, write};

fn items(spec: &SourceSpec) -> Vec<SourceItem> {
    spec.open().expect("source opens").collect()
}

#[test]
fn a_tree_is_walked_in_sorted_order_leaving_hidden_entries() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("bob/2.jpg"), &jpeg("b2"));
    write(&root.join("alice/b.PNG"), &jpeg("ab"));
    write(&root.join("alice/a.jpeg"), &jpeg("aa"));
    write(&root.join("alice/.thumb.jpg"), &jpeg("hidden"));
    write(&root.join(".cache/x/1.jpg"), &jpeg("hidden"));
    let mut hidden = Vec::new();
    let got: Vec<(String, String, u64)> = items(&tree(root, &["staff"]))
        .into_iter()
        .filter_map(|item| match item {
            SourceItem::Problem(p) if p.class == "hidden" => {
                assert_eq!(p.kind, ProblemKind::Skip);
                hidden.push(p.message);
                None
            }
            other => Some(other),
        })
        .map(|item| match item {
            SourceItem::Photo(p) => {
                assert_eq!(p.groups, ["staff"]);
                let name = match &p.image {
                    ImageRef::File(f) => f.file_name().unwrap().to_string_lossy().into_owned(),
                    ImageRef::Url(u) => panic!("a tree yields files, got {u}"),
                };
                (p.person, name, p.seq)
            }
            SourceItem::Problem(p) => panic!("unexpected problem: {}", p.message),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("alice".to_owned(), "a.jpeg".to_owned(), 1),
            ("alice".to_owned(), "b.PNG".to_owned(), 2),
            ("bob".to_owned(), "2.jpg".to_owned(), 3),
        ]
    );
    // Each hidden entry named once; a hidden folder is not walked.
    assert_eq!(hidden.len(), 2, "{hidden:#?}");
    assert!(hidden[0].ends_with(".cache: hidden folder (its name starts with a dot); not walked"));
    assert!(hidden[1].ends_with(".thumb.jpg: hidden file (its name starts with a dot)"));
}

#[test]
fn files_that_are_not_photos_are_reported_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("alice/notes.txt"), b"hello");
    write(&root.join("alice/2019/old.jpg"), &jpeg("old"));
    write(&root.join("stray.jpg"), &jpeg("stray"));
    let items = items(&tree(root, &["staff"]));
    let problems: Vec<_> = items
        .iter()
        .map(|i| match i {
            SourceItem::Problem(p) => p,
            SourceItem::Photo(p) => panic!("unexpected photo {:?}", p.image),
        })
        .collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let old = &problems[0];
    assert!(
        old.message.contains("alice/2019/old.jpg: in a subfolder"),
        "{}",
        old.message
    );
    assert_eq!(old.kind, ProblemKind::Skip);
    assert_eq!(old.photo.as_ref().unwrap().person, "alice");
    let notes = &problems[1];
    assert!(
        notes
            .message
            .contains("alice/notes.txt: not a photo by its extension"),
        "{}",
        notes.message
    );
    assert!(notes.photo.is_some(), "recorded against alice");
    let stray = &problems[2];
    assert!(
        stray
            .message
            .contains("stray.jpg: photo not in a person folder"),
        "{}",
        stray.message
    );
    assert!(stray.photo.is_none());
    assert_eq!(
        stray.kind,
        ProblemKind::Invalid,
        "a photo the operator meant"
    );
}

#[test]
fn a_tree_without_a_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    match tree(dir.path(), &[]).open() {
        Err(err @ SourceError::NoGroup { .. }) => {
            assert!(err.to_string().contains("--group"), "{err}")
        }
        Err(other) => panic!("expected NoGroup, got {other}"),
        Ok(_) => panic!("expected NoGroup"),
    }
}

#[test]
fn a_missing_source_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let err = tree(&missing, &["g"]).open().err().expect("an error");
    assert!(err.to_string().contains("nowhere"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_reported_and_the_walk_ends() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("alice/a.jpg"), &jpeg("a"));
    std::os::unix::fs::symlink(root.join("alice"), root.join("alice/again")).unwrap();
    let spec = SourceSpec::Tree {
        root: root.to_owned(),
        groups: vec!["g".into()],
        layout: Layout::Person,
        follow_symlinks: true,
    };
    let items = items(&spec);
    let loops: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            SourceItem::Problem(p) if p.message.contains("symbolic link loop") => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(loops.len(), 1, "{items:#?}");
    assert!(
        loops[0].message.contains("alice/again"),
        "{}",
        loops[0].message
    );
    assert!(items
        .iter()
        .any(|i| matches!(i, SourceItem::Photo(p) if p.person == "alice")));

    // Not following links, the link is reported as such.
    let items = self::items(&tree(root, &["g"]));
    assert!(
        items.iter().any(|i| matches!(i,
            SourceItem::Problem(p) if p.message.contains("alice/again: symbolic link not followed"))),
        "{items:#?}"
    );
}

fn manifest(dir: &Path, text: &[u8]) -> SourceSpec {
    let path = dir.join("manifest.csv");
    fs::write(&path, text).unwrap();
    SourceSpec::from_path(&path, vec![], Layout::Person, false)
}

#[test]
fn a_manifest_handles_bom_crlf_quotes_blank_lines_and_extra_columns() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}image,note,person_id,group_ids,person_name\r\n\
                a.jpg,x,alice,staff;site1,\"Smith, Alice \"\"Al\"\"\"\r\n\
                \r\n\
                \"photos/b c.jpg\",\"multi\r\nline\",bob,staff,\r\n\
                https://example.com/c.jpg,,alice, staff ; ;site2 ,\r\n";
    let spec = manifest(dir.path(), text.as_bytes());
    let photos: Vec<_> = items(&spec)
        .into_iter()
        .map(|i| match i {
            SourceItem::Photo(p) => p,
            SourceItem::Problem(p) => panic!("unexpected problem {}", p.message),
        })
        .collect();
    assert_eq!(photos.len(), 3);
    assert_eq!(photos[0].person, "alice");
    assert_eq!(photos[0].image, ImageRef::File(dir.path().join("a.jpg")));
    assert_eq!(photos[0].groups, ["staff", "site1"]);
    assert_eq!(photos[0].name.as_deref(), Some("Smith, Alice \"Al\""));
    assert_eq!(
        photos[0].origin,
        Origin::Manifest {
            file: dir.path().join("manifest.csv"),
            line: 2
        }
    );
    assert_eq!(
        photos[1].image,
        ImageRef::File(dir.path().join("photos/b c.jpg"))
    );
    assert_eq!(photos[1].name, None, "an empty name is no name");
    // Line 3 is blank; the quoted field spans lines 4 and 5.
    assert_eq!(photos[1].seq, 4);
    assert_eq!(
        photos[2].image,
        ImageRef::Url("https://example.com/c.jpg".into())
    );
    assert_eq!(photos[2].groups, ["staff", "site2"]);
    assert_eq!(photos[2].seq, 6);
}

#[test]
fn a_manifest_without_a_required_column_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest(dir.path(), b"person_id,image,groups\nalice,a.jpg,staff\n");
    let err = spec.open().err().expect("an error");
    let text = err.to_string();
    assert!(text.contains("manifest.csv"), "{text}");
    assert!(text.contains("\"group_ids\""), "{text}");
}

#[test]
fn an_empty_manifest_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = manifest(dir.path(), b"").open().err().expect("an error");
    assert!(err.to_string().contains("manifest.csv"), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn a_url_that_is_not_http_is_a_problem_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest(
        dir.path(),
        b"person_id,image,group_ids\nalice,ftp://host/a.jpg,staff\nbob,,staff\n",
    );
    let items = items(&spec);
    let messages: Vec<&str> = items
        .iter()
        .map(|i| match i {
            SourceItem::Problem(p) => p.message.as_str(),
            SourceItem::Photo(p) => panic!("unexpected photo {:?}", p.image),
        })
        .collect();
    assert!(
        messages[0].contains(
            "manifest.csv:2: image \"ftp://host/a.jpg\" is a URL that is not http or https"
        ),
        "{}",
        messages[0]
    );
    assert!(
        messages[1].contains("manifest.csv:3: image is empty"),
        "{}",
        messages[1]
    );
}

#[test]
fn non_utf8_bytes_in_a_manifest_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let spec = manifest(
        dir.path(),
        b"person_id,image,group_ids\nal\xffice,a.jpg,staff\nbob,b.jpg,staff\n",
    );
    let items = items(&spec);
    assert_eq!(items.len(), 2);
    match &items[0] {
        SourceItem::Problem(p) => {
            assert!(
                p.message
                    .contains("manifest.csv:2: person_id is not valid UTF-8"),
                "{}",
                p.message
            )
        }
        other => panic!("expected a problem, got {other:?}"),
    }
    assert!(matches!(&items[1], SourceItem::Photo(p) if p.person == "bob"));
}
