//! faceenroll enrolls whole photo archives into the face recognition service's
//! person/group API, resumably and at the highest rate the service allows.
//!
//! # How the pieces fit
//!
//! Data flows one way:
//!
//! ```text
//! source ──▶ plan ──▶ engine (pool, pacer, retries) ──▶ service client ──▶ store ──▶ report
//! ```
//!
//! - [`limits`] holds every limit of the service; [`model`] the ids, image
//!   references and content hashes everything else speaks of.
//! - [`source`] reads a directory tree or a CSV manifest as one stream of photo
//!   records; [`plan`] checks them, decides each photo's state and writes the plan
//!   into the progress [`store`], and cuts a person's photos into calls.
//! - [`service`] speaks to the service: the code table and its retry classes
//!   ([`service::codes`]), the signature ([`service::sign`]) and the shared renewing
//!   signature ([`service::signer`]), the wire types ([`service::api`]), the request
//!   bodies ([`service::multipart`]) and the typed blocking client
//!   ([`service::client`]).
//! - [`emulator`] is a local stand-in of the service, faithful to the contract, which
//!   tests, benchmarks and operators' rehearsals run against.
//! - [`config`] resolves the service settings from flags, environment and file.
//! - [`metrics`] writes a run's figures for monitoring (Prometheus text) and its
//!   summary as JSON; [`ping`] tells a monitoring URL when a run starts and ends.
//! - [`faces`] finds faces locally and sizes the crop `--crop-faces` sends in place
//!   of a photo; the normalizer cuts it.
//! - [`redact`] shows URLs without their passwords or tokens.
//! - [`memory`] sets the allocator up (mimalloc; why is there).
//! - [`deletion`] decides what a rollback or a mirror (`enroll --mirror`) may take back
//!   from a person, from the job's records and the person as the service holds it
//!   just before, and whether a mirror run may delete at all (its guards).
//! - [`output_file`] writes the report, the summary and the metrics file whole or not
//!   at all (a temporary file renamed over the old one).
//! - [`cli`] defines the command line; `main.rs` only parses, runs and exits.

pub mod chunk;
pub mod cli;
pub mod config;
pub mod deletion;
pub mod emulator;
pub mod engine;
pub mod exit;
pub mod faces;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod ops;
pub mod output_file;
pub mod photo_file;
pub mod ping;
pub mod plan;
pub mod redact;
pub mod report;
pub mod service;
pub mod shard;
pub mod source;
pub mod state_dir;
pub mod store;
