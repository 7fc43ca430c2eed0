//! What the job commands do, apart from the command line that asks for them.

pub mod enroll;
pub mod faces;
pub mod mirror;
pub mod mirror_restore;
pub mod paced;
pub mod rollback;
pub mod verify;

use crate::service::client::Client;
use crate::store::{Account, BindError, Store};

/// Checks, before any call, that the job's state belongs to the account `client`
/// calls, binding a state that belongs to none yet; `rebind` (`--rebind-account`)
/// moves it to this account on purpose. See [`Store::bind_account`].
pub fn bind_account(store: &Store, client: &Client, rebind: bool) -> Result<(), BindError> {
    let account = Account::service(client.endpoint(), client.appid(), client.bucket());
    store.bind_account(&account, rebind)
}
