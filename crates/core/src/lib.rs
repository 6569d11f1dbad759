//! Ruwād's app engine: everything the desktop shell does that is not drawing — session, the
//! SQLite cache, the persistent outbound queue, catch-up through REST, chat, challenges and
//! analytics — with no Tauri dependency, fully testable headless against the local backend.
//!
//! Map (one file per concept; each module's doc explains its design and failure modes):
//! - [`engine`]: [`Engine`], the API the shell calls, and the tasks it owns;
//! - [`docs`]: collaborative documents (yrs), their local log, sync and awareness;
//! - [`store`]: the SQLite database on its own thread, migrations, cached rows ([`store::cache`]);
//! - [`queue`]: the outbound queue — actions, folding, claim / confirm / fail, and
//!   [`queue::sender`], the single task that drains it;
//! - [`sync`]: catch-up per stream from cursors with an overlap window; the entry point for
//!   Realtime's row changes;
//! - [`events`]: the typed event stream and how bursts are coalesced;
//! - [`notify`]: which changes deserve a notification (preferences, mutes, grouping);
//! - [`model`]: the shapes handed to the shell;
//! - [`time`]: the server's timestamp form.
//!
//! The principles it implements are `../shared/DESIGN.md`'s "Principles that keep data safe":
//! client-made UUID v7 ids, queue first / send second, transient vs permanent failures,
//! Realtime as a hint and REST as the record.

pub mod docs;
pub mod engine;
pub mod events;
pub mod live;
pub mod model;
pub mod notify;
pub mod queue;
pub mod store;
pub mod sync;
pub mod time;

pub use engine::{Engine, EngineConfig, EngineError, ErrorCode};
pub use events::{ConnectionState, Event};
