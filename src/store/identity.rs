//! What a state directory is bound to: the account its calls went to, and the shard
//! of the job it holds.
//!
//! A state directory records what the job did on one account; pointed at another, a
//! resume would believe persons exist that do not, and a rollback would delete
//! persons the job never made. So the first command that calls the service with a
//! state (`enroll`, `verify`, `rollback`) records its [`Account`] (the endpoint, the
//! AppID and the bucket; never the credentials), and every later one compares before
//! any call: another account is refused, naming both, unless the operator re-binds
//! on purpose (`--rebind-account`, a migrated endpoint). A rehearsal's in-process
//! emulator (`--emulator`) is an account of its own. State directories written before
//! this record existed are bound by their next call. A state that holds nothing of
//! its account yet (its first run never got a call through: a mistyped endpoint, a
//! refused credential) follows the account given, with a note: there is nothing of
//! the other account in it to mistake.
//!
//! Likewise the first plan records the state's shard (`--shard I/N`, `0/1` for a job
//! not split), and a plan with another one is refused: two shards in one state
//! directory would replace each other's plans.
//!
//! [`check_account`] and [`check_shard`] are the pure comparisons; the `Store`
//! methods below read and record the bindings, and [`Store::bind_account`] is the one
//! call a command makes once its store is open.

use super::{decode, encode, PersonState, PhotoState, Result, Store};
use crate::shard::Shard;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The metadata key of the account the state is bound to.
const ACCOUNT_KEY: &[u8] = b"account";
/// The metadata key of the shard the state holds.
const SHARD_KEY: &[u8] = b"shard";

/// Where a job's calls go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// The emulator a rehearsal starts in its own process (`--emulator`): a new port
    /// each run, one account.
    Rehearsal,
    /// A service at this base URL (scheme, host, port and prefix, as the client
    /// normalizes it).
    Url(String),
}

/// The account a state directory's calls go to. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub endpoint: Endpoint,
    pub appid: String,
    pub bucket: String,
}

impl Account {
    /// A service at `endpoint` (as the client normalizes it).
    pub fn service(endpoint: &str, appid: &str, bucket: &str) -> Account {
        Account {
            endpoint: Endpoint::Url(endpoint.to_owned()),
            appid: appid.to_owned(),
            bucket: bucket.to_owned(),
        }
    }

    /// The in-process emulator of a rehearsal.
    pub fn rehearsal(appid: &str) -> Account {
        Account {
            endpoint: Endpoint::Rehearsal,
            appid: appid.to_owned(),
            bucket: String::new(),
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.endpoint {
            Endpoint::Rehearsal => write!(f, "the rehearsal emulator (--emulator)")?,
            Endpoint::Url(url) => write!(f, "{url}")?,
        }
        write!(f, " AppID {}", self.appid)?;
        if !self.bucket.is_empty() {
            write!(f, " bucket {}", self.bucket)?;
        }
        Ok(())
    }
}

/// What to do with a state's account before the first call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCheck {
    /// The state is bound to the given account already.
    Same,
    /// The state has no account yet (new, or written before the record existed):
    /// bind it to the given one.
    Bind,
    /// The state is bound to another account, and the operator re-binds it.
    Rebind,
    /// The state is bound to another account: refused.
    Other,
}

/// Why a state directory refuses to be used as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "the state directory {dir} belongs to another account: its job called {recorded}, \
         this command would call {given}. A state directory records what its job did on one \
         account; use the --state of this account's job (or a new one). If the account is \
         the same and only its endpoint moved, pass --rebind-account; nothing was sent"
    )]
    OtherAccount {
        dir: String,
        recorded: Account,
        given: Account,
    },
    #[error(
        "the state directory {dir} holds {recorded}, not {given}: {}; \
         nothing was planned or sent",
        shard_advice(.recorded, .given)
    )]
    OtherShard {
        dir: String,
        recorded: ShardWords,
        given: ShardWords,
    },
}

/// A shard as the messages name it: `shard I/N`, or `the whole job` for `0/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardWords(pub Shard);

impl fmt::Display for ShardWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_split() {
            write!(f, "shard {}", self.0)
        } else {
            write!(f, "the whole job (no --shard)")
        }
    }
}

fn shard_advice(recorded: &ShardWords, given: &ShardWords) -> String {
    let keep = if recorded.0.is_split() {
        format!("run it with --shard {}", recorded.0)
    } else {
        "run it without --shard".to_owned()
    };
    let other = if given.0.is_split() {
        format!("give shard {} its own --state", given.0)
    } else {
        "give the whole job its own --state".to_owned()
    };
    format!("{keep}, or {other}")
}

/// Compares the account a state recorded with the one a command is given.
pub fn check_account(recorded: Option<&Account>, given: &Account, rebind: bool) -> AccountCheck {
    match recorded {
        None => AccountCheck::Bind,
        Some(r) if r == given => AccountCheck::Same,
        Some(_) if rebind => AccountCheck::Rebind,
        Some(_) => AccountCheck::Other,
    }
}

/// Compares the shard a state recorded with the one a plan is given: `Ok(true)` when
/// it is to be recorded (the state has none yet).
pub fn check_shard(
    recorded: Option<Shard>,
    given: Shard,
) -> std::result::Result<bool, (Shard, Shard)> {
    match recorded {
        None => Ok(true),
        Some(r) if r == given => Ok(false),
        Some(r) => Err((r, given)),
    }
}

/// A failure to bind: the state's own error, or the store's.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Identity(Box<IdentityError>),
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

impl From<IdentityError> for BindError {
    fn from(e: IdentityError) -> BindError {
        BindError::Identity(Box::new(e))
    }
}

impl From<sled::Error> for BindError {
    fn from(e: sled::Error) -> BindError {
        BindError::Store(e.into())
    }
}

impl Store {
    /// The account the state is bound to, if any.
    pub fn account(&self) -> Result<Option<Account>> {
        self.meta
            .get(ACCOUNT_KEY)?
            .map(|v| decode(&v, "account"))
            .transpose()
    }

    /// The shard the state holds, if its plan recorded one.
    pub fn shard(&self) -> Result<Option<Shard>> {
        let Some(value) = self.meta.get(SHARD_KEY)? else {
            return Ok(None);
        };
        let (index, count): (u32, u32) = decode(&value, "shard")?;
        Shard::new(index, count)
            .map(Some)
            .map_err(|e| super::StoreError::Corrupt {
                what: "shard".to_owned(),
                detail: e.to_string(),
            })
    }

    /// Checks, before any call, that the state belongs to `given`, and binds it when
    /// it belongs to none yet (or `rebind` says the account moved). Refuses another
    /// account, naming both.
    pub fn bind_account(
        &self,
        given: &Account,
        rebind: bool,
    ) -> std::result::Result<(), BindError> {
        let recorded = self.account()?;
        match (check_account(recorded.as_ref(), given, rebind), recorded) {
            (AccountCheck::Same, _) => return Ok(()),
            (AccountCheck::Bind, _) => {}
            (AccountCheck::Rebind, Some(from)) => tracing::warn!(
                "the state directory {} is re-bound from {from} to {given} (--rebind-account)",
                self.shown.display()
            ),
            (AccountCheck::Other, Some(from)) if !self.holds_account_facts()? => tracing::warn!(
                "the state directory {} was bound to {from}, but no call of its job changed \
                 anything there: it is bound to {given} now",
                self.shown.display()
            ),
            (AccountCheck::Rebind | AccountCheck::Other, recorded) => {
                return Err(IdentityError::OtherAccount {
                    dir: self.shown.display().to_string(),
                    recorded: recorded.expect("another account is a recorded one"),
                    given: given.clone(),
                }
                .into())
            }
        }
        self.meta.insert(ACCOUNT_KEY, encode(given))?;
        self.flush()?;
        Ok(())
    }

    /// Whether the state holds anything the job did, or may have done, on its account:
    /// a person created, found or brought in line, a face enrolled or in doubt. Read
    /// only when the account given is another one.
    fn holds_account_facts(&self) -> Result<bool> {
        if !self.created.is_empty() || !self.before.is_empty() {
            return Ok(true);
        }
        for person in self.persons() {
            if matches!(
                person?.state,
                PersonState::Ready { .. } | PersonState::Stale
            ) {
                return Ok(true);
            }
        }
        for item in self.photos() {
            let (_, photo) = item?;
            if matches!(
                photo.state,
                PhotoState::Enrolled { .. } | PhotoState::InDoubt
            ) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Checks that a plan of `given` may go into this state, and records it when the
    /// state holds no shard yet. Refuses another shard, naming both.
    pub fn bind_shard(&self, given: Shard) -> std::result::Result<(), BindError> {
        match check_shard(self.shard()?, given) {
            Ok(false) => Ok(()),
            Ok(true) => {
                self.meta
                    .insert(SHARD_KEY, encode(&(given.index(), given.count())))?;
                Ok(())
            }
            Err((recorded, given)) => Err(IdentityError::OtherShard {
                dir: self.shown.display().to_string(),
                recorded: ShardWords(recorded),
                given: ShardWords(given),
            }
            .into()),
        }
    }
}

/// What is wrong with a set of state directories given as one job's shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardSet {
    /// The number of shards, when every state recorded the same.
    pub count: Option<u32>,
    /// Shards of that count no state directory was given for.
    pub missing: Vec<Shard>,
}

/// Why states cannot be one job's shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardSetError {
    #[error(
        "{first} and {second} are not shards of one job: {first} is {first_shard}, \
         {second} is {second_shard}"
    )]
    Counts {
        first: String,
        first_shard: ShardWords,
        second: String,
        second_shard: ShardWords,
    },
    #[error(
        "{first} and {second} both hold {}: two runs of one shard, or a copied state?",
        ShardWords(*.shard)
    )]
    Twice {
        first: String,
        second: String,
        shard: Shard,
    },
}

/// Checks that `states` (a name and the shard it recorded, if any) are shards of one
/// job: one count, no index twice. A state that recorded no shard (written before
/// the record existed) is not checked. Answers the shards missing.
pub fn check_shard_set(
    states: &[(String, Option<Shard>)],
) -> std::result::Result<ShardSet, ShardSetError> {
    let known: Vec<(&String, Shard)> = states
        .iter()
        .filter_map(|(name, shard)| shard.map(|s| (name, s)))
        .collect();
    let Some(&(first, first_shard)) = known.first() else {
        return Ok(ShardSet::default());
    };
    let mut seen: Vec<(&String, Shard)> = Vec::new();
    for &(name, shard) in &known {
        if shard.count() != first_shard.count() {
            return Err(ShardSetError::Counts {
                first: first.clone(),
                first_shard: ShardWords(first_shard),
                second: name.clone(),
                second_shard: ShardWords(shard),
            });
        }
        if let Some((other, _)) = seen.iter().find(|(_, s)| *s == shard) {
            return Err(ShardSetError::Twice {
                first: (*other).clone(),
                second: name.clone(),
                shard,
            });
        }
        seen.push((name, shard));
    }
    let count = first_shard.count();
    let missing = (0..count)
        .filter(|i| !seen.iter().any(|(_, s)| s.index() == *i))
        .map(|i| Shard::new(i, count).expect("an index below the count"))
        .collect();
    Ok(ShardSet {
        count: Some(count),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real() -> Account {
        Account::service("https://recognition.image.myqcloud.com", "1250000000", "")
    }

    #[test]
    fn a_state_binds_once_and_refuses_another_account() {
        let given = real();
        assert_eq!(check_account(None, &given, false), AccountCheck::Bind);
        assert_eq!(
            check_account(Some(&given), &given, false),
            AccountCheck::Same
        );
        for other in [
            Account::service("https://other.example", "1250000000", ""),
            Account::service("https://recognition.image.myqcloud.com", "1250000001", ""),
            Account::service("https://recognition.image.myqcloud.com", "1250000000", "b"),
            Account::rehearsal("1250000000"),
        ] {
            assert_eq!(
                check_account(Some(&given), &other, false),
                AccountCheck::Other,
                "{other}"
            );
            assert_eq!(
                check_account(Some(&given), &other, true),
                AccountCheck::Rebind
            );
        }
    }

    #[test]
    fn the_refusal_names_both_accounts_and_the_way_out() {
        let e = IdentityError::OtherAccount {
            dir: "faceenroll-state".into(),
            recorded: Account::rehearsal("1250000000"),
            given: Account::service("https://face.example", "1250000000", ""),
        }
        .to_string();
        for words in [
            "faceenroll-state",
            "the rehearsal emulator (--emulator) AppID 1250000000",
            "https://face.example AppID 1250000000",
            "--rebind-account",
            "nothing was sent",
        ] {
            assert!(e.contains(words), "{words}: {e}");
        }
    }

    #[test]
    fn a_shard_is_recorded_once_and_another_refused() {
        let s = |i, n| Shard::new(i, n).unwrap();
        assert_eq!(check_shard(None, s(0, 3)), Ok(true));
        assert_eq!(check_shard(Some(s(0, 3)), s(0, 3)), Ok(false));
        assert_eq!(check_shard(Some(s(0, 3)), s(1, 3)), Err((s(0, 3), s(1, 3))));
        assert_eq!(
            check_shard(Some(s(0, 3)), Shard::WHOLE),
            Err((s(0, 3), Shard::WHOLE))
        );
        let e = IdentityError::OtherShard {
            dir: "sh/shard-0".into(),
            recorded: ShardWords(s(0, 3)),
            given: ShardWords(Shard::WHOLE),
        }
        .to_string();
        assert!(
            e.contains("holds shard 0/3, not the whole job (no --shard)")
                && e.contains("--shard 0/3"),
            "{e}"
        );
    }

    #[test]
    fn a_set_of_shards_names_the_missing_and_refuses_a_mix() {
        let s = |i, n| Some(Shard::new(i, n).unwrap());
        let set = |list: &[(&str, Option<Shard>)]| {
            check_shard_set(
                &list
                    .iter()
                    .map(|(n, s)| (n.to_string(), *s))
                    .collect::<Vec<_>>(),
            )
        };
        let found = set(&[("a", s(0, 3)), ("c", s(2, 3))]).unwrap();
        assert_eq!(found.count, Some(3));
        assert_eq!(found.missing, [Shard::new(1, 3).unwrap()]);
        assert!(set(&[("a", s(0, 2)), ("b", s(1, 2))])
            .unwrap()
            .missing
            .is_empty());
        assert!(matches!(
            set(&[("a", s(0, 3)), ("b", s(1, 4))]),
            Err(ShardSetError::Counts { .. })
        ));
        let e = set(&[("a", s(1, 3)), ("b", s(1, 3))]).unwrap_err();
        assert_eq!(
            e,
            ShardSetError::Twice {
                first: "a".into(),
                second: "b".into(),
                shard: Shard::new(1, 3).unwrap()
            }
        );
        // States without a record are not checked.
        assert_eq!(
            set(&[("a", None), ("b", None)]).unwrap(),
            ShardSet::default()
        );
    }

    #[test]
    fn the_bindings_are_kept_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.account().unwrap(), None);
        // Bound, but nothing done there yet: it follows the account given.
        let typo = Account::service("https://recognition.image.myqcloud.co", "1250000000", "");
        store.bind_account(&typo, false).unwrap();
        store.bind_account(&real(), false).unwrap();
        assert_eq!(store.account().unwrap(), Some(real()));
        store.mark_created("alice").unwrap();
        let other = Account::rehearsal("1250000000");
        assert!(matches!(
            store.bind_account(&other, false),
            Err(BindError::Identity(e)) if matches!(*e, IdentityError::OtherAccount { .. })
        ));
        assert_eq!(store.account().unwrap(), Some(real()));
        store.bind_account(&other, true).unwrap();
        assert_eq!(store.account().unwrap(), Some(other));

        let shard = Shard::new(1, 3).unwrap();
        store.bind_shard(shard).unwrap();
        assert_eq!(store.shard().unwrap(), Some(shard));
        assert!(store.bind_shard(Shard::WHOLE).is_err());
        assert_eq!(store.shard().unwrap(), Some(shard));
    }
}
