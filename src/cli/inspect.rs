//! The inspection commands: look at what the service holds (`groups`, `persons`,
//! `person`, `faces`, `face`) and remove what should not be there (`delete-person`,
//! `delete-faces`).
//!
//! They read the same service settings as the job ([`ServiceArgs`]), print for
//! people by default and JSON with `--json`. A delete asks for confirmation on the
//! terminal unless `--yes` is given, and refuses when there is no terminal to ask on.

use super::settings::ServiceArgs;
use super::Exit;
use crate::config;
use crate::model::{GroupId, PersonId};
use crate::service::api::{FaceInfo, GetInfoData};
use crate::service::client::{CallError, Client};
use crate::service::codes::Class;
use anyhow::{bail, Context};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};

/// Flags every inspection command takes.
#[derive(Debug, clap::Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// Print the service's answer as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `faceenroll groups`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct GroupsArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `faceenroll persons GROUP`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct PersonsArgs {
    /// The group whose persons to list.
    pub group: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `faceenroll person ID` and `faceenroll faces PERSON`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct PersonArgs {
    /// The person's id.
    pub person: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `faceenroll face FACE_ID`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct FaceArgs {
    /// The face's id.
    pub face_id: String,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `faceenroll delete-person ID`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct DeletePersonArgs {
    /// The person to delete, with all its faces.
    pub person: String,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `faceenroll delete-faces PERSON FACE_ID...`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct DeleteFacesArgs {
    /// The person the faces belong to.
    pub person: String,
    /// The faces to delete.
    #[arg(required = true)]
    pub face_ids: Vec<String>,
    /// Delete without asking.
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

fn connect(common: &CommonArgs) -> anyhow::Result<Client> {
    Ok(Client::new(config::client_config_from_args(
        &common.service,
    )?)?)
}

fn person_id(arg: &str) -> anyhow::Result<PersonId> {
    PersonId::new(arg).with_context(|| format!("person id {arg:?}"))
}

/// Prints a failed call and says how the process ends.
fn failed(err: &CallError) -> Exit {
    eprintln!("error: {err}");
    if err.class() == Class::Fatal {
        eprintln!("To go on: {}.", err.remedy());
    }
    match err.class() {
        Class::Permanent | Class::Request | Class::Outcome(_) => Exit::Failures,
        Class::Ok | Class::Transient | Class::RateLimited | Class::Fatal | Class::Unknown => {
            Exit::Fatal
        }
    }
}

/// Prints `data` as JSON or as `human` renders it.
fn print<T: Serialize>(json: bool, data: &T, human: impl FnOnce(&T) -> String) -> Exit {
    let text = if json {
        serde_json::to_string_pretty(data).expect("answers serialize")
    } else {
        human(data)
    };
    let text = text.trim_end();
    if !text.is_empty() {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`| head`) is not an error of the command.
        let _ = writeln!(out, "{text}");
    }
    Exit::Ok
}

fn lines(items: &[String]) -> String {
    items.join("\n")
}

pub fn groups(args: GroupsArgs) -> anyhow::Result<Exit> {
    let client = connect(&args.common)?;
    Ok(match client.get_group_ids() {
        Ok(data) => print(args.common.json, &data, |d| lines(&d.group_ids)),
        Err(e) => failed(&e),
    })
}

pub fn persons(args: PersonsArgs) -> anyhow::Result<Exit> {
    let group = GroupId::new(&args.group).with_context(|| format!("group id {:?}", args.group))?;
    let client = connect(&args.common)?;
    Ok(match client.get_person_ids(&group) {
        Ok(data) => print(args.common.json, &data, |d| lines(&d.person_ids)),
        Err(e) => failed(&e),
    })
}

pub fn person(args: PersonArgs) -> anyhow::Result<Exit> {
    let person = person_id(&args.person)?;
    let client = connect(&args.common)?;
    Ok(match client.get_info(&person) {
        Ok(data) => print(args.common.json, &data, render_person),
        Err(e) => failed(&e),
    })
}

pub fn faces(args: PersonArgs) -> anyhow::Result<Exit> {
    let person = person_id(&args.person)?;
    let client = connect(&args.common)?;
    Ok(match client.get_face_ids(&person) {
        Ok(data) => print(args.common.json, &data, |d| lines(&d.face_ids)),
        Err(e) => failed(&e),
    })
}

pub fn face(args: FaceArgs) -> anyhow::Result<Exit> {
    if args.face_id.is_empty() {
        bail!("the face id is empty");
    }
    let client = connect(&args.common)?;
    Ok(match client.get_face_info(&args.face_id) {
        Ok(data) => print(args.common.json, &data, |d| render_face(&d.face_info)),
        Err(e) => failed(&e),
    })
}

pub fn delete_person(args: DeletePersonArgs) -> anyhow::Result<Exit> {
    let person = person_id(&args.person)?;
    let client = connect(&args.common)?;
    if !confirm(
        &format!("Delete person {person} and all its faces?"),
        args.yes,
    )? {
        eprintln!("not confirmed; nothing deleted");
        return Ok(Exit::Failures);
    }
    Ok(match client.del_person(&person) {
        Ok(data) => print(args.common.json, &data, |d| {
            format!("deleted person {} ({} deleted)", d.person_id, d.deleted)
        }),
        Err(e) => failed(&e),
    })
}

pub fn delete_faces(args: DeleteFacesArgs) -> anyhow::Result<Exit> {
    let person = person_id(&args.person)?;
    if let Some(empty) = args.face_ids.iter().position(String::is_empty) {
        bail!("face id #{} is empty", empty + 1);
    }
    let client = connect(&args.common)?;
    let question = format!(
        "Delete {} face(s) of person {person}: {}?",
        args.face_ids.len(),
        args.face_ids.join(", ")
    );
    if !confirm(&question, args.yes)? {
        eprintln!("not confirmed; nothing deleted");
        return Ok(Exit::Failures);
    }
    Ok(match client.del_faces(&person, &args.face_ids) {
        Ok(data) => {
            let asked = args.face_ids.len();
            print(args.common.json, &data, |d| {
                let mut text = format!(
                    "deleted {} of {asked} face(s) of person {person}",
                    d.deleted
                );
                for id in &d.face_ids {
                    text.push_str("\n  ");
                    text.push_str(id);
                }
                text
            });
            if usize::try_from(data.deleted).is_ok_and(|n| n == asked) {
                Exit::Ok
            } else {
                Exit::Failures
            }
        }
        Err(e) => failed(&e),
    })
}

/// Asks `question` on the terminal; `yes` answers it in advance.
pub(super) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        // Not confirmed, as the help says (exit 1), not a usage error.
        eprintln!("no --yes, and standard input is not a terminal to confirm on");
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the confirmation")?;
    let answer = answer.trim();
    Ok(answer.eq_ignore_ascii_case("y") || answer.eq_ignore_ascii_case("yes"))
}

fn render_person(d: &GetInfoData) -> String {
    let mut text = format!(
        "person  {}\nname    {}\ntag     {}\ngroups  {}\nfaces   {}",
        d.person_id,
        d.person_name,
        d.tag,
        d.group_ids.join(" "),
        d.face_ids.len()
    );
    for id in &d.face_ids {
        text.push_str("\n  ");
        text.push_str(id);
    }
    text
}

fn render_face(f: &FaceInfo) -> String {
    format!(
        "face        {}\nposition    x {} y {}, {} x {}\ngender      {}\nage         {}\n\
         expression  {}\nglasses     {}\npose        pitch {} yaw {} roll {}",
        f.face_id,
        f.x,
        f.y,
        f.width,
        f.height,
        f.gender,
        f.age,
        f.expression,
        if f.glass { "yes" } else { "no" },
        f.pitch,
        f.yaw,
        f.roll
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_reads_as_a_short_table() {
        let d = GetInfoData {
            person_id: "alice".into(),
            person_name: "Alice".into(),
            face_ids: vec!["f1".into(), "f2".into()],
            group_ids: vec!["g1".into(), "g2".into()],
            tag: "t".into(),
            session_id: String::new(),
        };
        assert_eq!(
            render_person(&d),
            "person  alice\nname    Alice\ntag     t\ngroups  g1 g2\nfaces   2\n  f1\n  f2"
        );
    }

    #[test]
    fn service_refusals_exit_1_and_fatal_errors_exit_3() {
        let service = |code| CallError::Service {
            call: crate::service::api::Call::GetInfo,
            code,
            message: String::new(),
        };
        assert_eq!(failed(&service(-1303)), Exit::Failures);
        assert_eq!(failed(&service(-1305)), Exit::Failures);
        assert_eq!(failed(&service(14)), Exit::Fatal);
        assert_eq!(failed(&service(-4242)), Exit::Fatal);
    }
}
