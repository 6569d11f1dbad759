//! PostgREST client for the subset Ruwād uses: reads with filters, order, range and counts;
//! insert (one or many), upsert (`on_conflict`, ignore- or merge-duplicates), update, delete;
//! `rpc`. Requests are the ones postgrest-js makes (`../shared/protocol/supabase-wire.md` §6),
//! so the same calls work against a Supabase project and against the local `ruwad-server`.
//!
//! ```no_run
//! # async fn demo(rest: ruwad_supabase::rest::Rest, room: uuid::Uuid) -> Result<(), ruwad_supabase::rest::RestError> {
//! use ruwad_supabase::rest::{Cond, Order};
//! #[derive(serde::Deserialize)]
//! struct Message { id: uuid::Uuid, content: String }
//! let page: Vec<Message> = rest
//!     .from("chat_messages")
//!     .select("id,content")
//!     .eq("room_id", room)
//!     .is_null("deleted_at")
//!     .or([Cond::eq("type", "text"), Cond::eq("type", "file")])
//!     .order("created_at", Order::Desc.nulls_last())
//!     .range(0, 49)
//!     .execute()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! Why not the `postgrest` crate (postgrest-rs 1.6, the one on crates.io): it is built on
//! reqwest 0.11 (a second HTTP stack beside the workspace's reqwest 0.12 / hyper 1), takes
//! bodies as pre-serialised strings, hard-codes `Prefer: return=representation` on writes,
//! has no `resolution=ignore-duplicates` (which the outbound queue's idempotent retries rest
//! on), does not quote `in` values that contain `,()`, hands back a raw `reqwest::Response`
//! with no error decoding or classification, and panics (`unwrap`) on header values it cannot
//! encode. The builder here is small: [`query`] holds it, [`filter`] the conditions and their
//! quoting, [`error`] the decoding and classification of failures.
//!
//! Authentication: every request carries `apikey: <anon key>` and `Authorization: Bearer` with
//! the signed-in user's access token when the client was given an [`Auth`] handle (else the
//! anon key). An access token that is due for refresh is refreshed first (coalesced with the
//! auth handle's own refresh), as supabase-js does; if that refresh fails for a transient
//! reason the current token is used anyway. A token the server refuses comes back as
//! [`Retry::Unauthorized`](crate::error::Retry::Unauthorized).
//!
//! Failure modes: nothing is retried here. Every failure is a [`RestError`] classified by
//! [`RestError::retry`]; the caller (the engine's outbound queue) owns retry policy. A
//! transport failure after a write was sent may or may not have applied it: writes that may
//! be retried use client-made ids with [`Query::ignore_duplicates`], so a repeat is a no-op.

pub mod error;
pub mod filter;
pub mod query;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub use error::{ApiError, RestError};
pub use filter::{Cond, Is};
pub use query::{Order, Query, Reply, Returning, Sort, Table};

use crate::auth::Auth;
use crate::project::Project;

/// Which token goes in `Authorization: Bearer`.
#[derive(Clone)]
enum Bearer {
    /// The project's API key (anonymous access).
    Key,
    /// A fixed token (a service key in tools, a made-up token in tests).
    Token(Arc<str>),
    /// The current session's access token, else the API key.
    Session(Auth),
}

/// A PostgREST client for one project. Cheap to clone.
#[derive(Clone)]
pub struct Rest {
    project: Project,
    bearer: Bearer,
}

impl fmt::Debug for Rest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bearer = match self.bearer {
            Bearer::Key => "api key",
            Bearer::Token(_) => "fixed token",
            Bearer::Session(_) => "session",
        };
        f.debug_struct("Rest").field("project", &self.project).field("bearer", &bearer).finish()
    }
}

impl Rest {
    /// An anonymous client: the API key is the bearer.
    pub fn new(project: Project) -> Rest {
        Rest { project, bearer: Bearer::Key }
    }

    /// A client that sends the signed-in user's access token (the API key when signed out),
    /// over `auth`'s project and HTTP client.
    pub fn with_auth(auth: &Auth) -> Rest {
        Rest { project: auth.project().clone(), bearer: Bearer::Session(auth.clone()) }
    }

    /// A client that always sends `token` as the bearer.
    pub fn with_bearer(project: Project, token: impl Into<String>) -> Rest {
        Rest { project, bearer: Bearer::Token(token.into().into()) }
    }

    /// Starts a request on `table` of schema `public`.
    pub fn from(&self, table: impl Into<String>) -> Table {
        Table::new(self.clone(), table.into())
    }

    /// Calls the function `name` with `args` (a JSON object; `()` or `json!({})` for none):
    /// `POST /rest/v1/rpc/<name>`. Filters and transforms apply to a function that returns rows.
    pub fn rpc(&self, name: impl Into<String>, args: impl Serialize) -> Query {
        Query::rpc(self.clone(), name.into(), args)
    }

    pub(crate) fn project(&self) -> &Project {
        &self.project
    }

    /// The token for `Authorization: Bearer`.
    pub(crate) async fn bearer(&self) -> String {
        match &self.bearer {
            Bearer::Key => self.project.anon_key().to_string(),
            Bearer::Token(t) => t.to_string(),
            Bearer::Session(auth) => match auth.access_token().await {
                Some(token) => token,
                None => self.project.anon_key().to_string(),
            },
        }
    }
}
