//! Everything that speaks to the face service: the code table, the signature, the
//! wire types and the HTTP client.

pub mod api;
pub mod client;
pub mod codes;
pub mod multipart;
pub mod network;
pub mod sign;
pub mod signer;
