//! Supabase client for Ruwād (to be written with issue #4): `realtime`, `rest`, `auth`.
//!
//! - [`Project`]: where the project is (URL, API key) and the HTTP client REST and auth share.
//! - [`auth`]: GoTrue sign-up / sign-in / refresh / sign-out, the session in a [`auth::SecretStore`],
//!   observable through a `watch` channel (how Realtime gets its tokens: see [`auth`]).
//! - [`rest`]: PostgREST queries and writes, errors classified as transient or permanent.
//! - [`error`]: that classification ([`error::Retry`]), shared by REST and auth.

pub mod auth;
pub mod error;
mod project;
pub mod realtime;
pub mod rest;

pub use project::Project;
