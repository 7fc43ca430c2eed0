//! What the job commands do, apart from the command line that asks for them.

pub mod enroll;
pub mod faces;
pub mod paced;
pub mod rollback;
pub mod verify;
