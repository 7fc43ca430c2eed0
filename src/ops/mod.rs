//! What the job commands do, apart from the command line that asks for them.

pub mod enroll;
