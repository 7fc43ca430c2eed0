//! What a job checks before it spends a call, through the binary against a separate
//! emulator: a photo whose header claims too many pixels, outputs that cannot be
//! written, a config file with a table or key the job does not know, and a service
//! whose request limit is small.

mod support;

use support::bin::{output, s, Run};
use support::{enroll_command, photo, report_rows, EmulatorProcess};

use std::path::Path;

/// A person's photos: (file name, bytes).
type Photos<'a> = Vec<(&'a str, Vec<u8>)>;

/// A tree of `persons`, each with its photos, under `dir/photos`.
fn tree(dir: &Path, persons: &[(&str, Photos<'_>)]) -> std::path::PathBuf {
    let root = dir.join("photos");
    for (person, photos) in persons {
        std::fs::create_dir_all(root.join(person)).unwrap();
        for (name, bytes) in photos {
            std::fs::write(root.join(person).join(name), bytes).unwrap();
        }
    }
    root
}

fn emulator(dir: &Path, args: &[&str]) -> EmulatorProcess {
    EmulatorProcess::start(args, &dir.join("emulator.log"))
}

fn enroll(root: &Path, emulator: &EmulatorProcess, state: &Path, extra: &[&str]) -> Run {
    output(
        enroll_command(root, &emulator.endpoint, state)
            .args(["--group", "staff"])
            .args(extra),
    )
}

#[test]
fn a_photo_whose_header_claims_65500_by_65500_pixels_fails_unread_and_unsent() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = support::jpeg_bomb(65_500, 65_500);
    let root = tree(
        tmp.path(),
        &[
            ("ann", vec![("1.png", photo(1)), ("2.jpg", bomb.clone())]),
            ("bob", vec![("1.jpg", bomb)]),
        ],
    );
    let em = emulator(tmp.path(), &[]);
    let state = tmp.path().join("state");

    let plan = output(support::faceenroll(&[]).args(["plan", s(&root), "--group", "staff"]));
    assert!(
        plan.stdout.contains("65500×65500 pixels"),
        "the plan names it: {plan:?}"
    );

    let run = enroll(&root, &em, &state, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let rows = report_rows(&state);
    for path in [root.join("ann/2.jpg"), root.join("bob/1.jpg")] {
        let row = rows
            .iter()
            .find(|r| Path::new(&r.image) == path)
            .unwrap_or_else(|| panic!("{} in {rows:#?}", path.display()));
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.reason.contains("65500×65500 pixels"), "{row:?}");
        assert!(row.reason.contains("not decoded"), "{row:?}");
    }
    // The service holds ann's face alone; bob, whose only photo is the bomb, was
    // never created.
    let held = em.state();
    assert_eq!(held.persons.keys().collect::<Vec<_>>(), ["ann"]);
    assert_eq!(held.persons["ann"].faces.len(), 1);
}
