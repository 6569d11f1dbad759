//! Supabase Realtime client: one WebSocket per client that never gives up, Phoenix channels
//! with broadcast, presence and postgres_changes, spoken as realtime-js speaks them
//! (`shared/protocol/supabase-wire.md` §1–5).
//!
//! ```no_run
//! # async fn demo(token: String) -> Result<(), Box<dyn std::error::Error>> {
//! use ruwad_supabase::realtime::*;
//! let client = RealtimeClient::connect(RealtimeConfig::new("http://127.0.0.1:54321", "anon-key"))?;
//! client.set_auth(Some(token));
//! let room = client.channel("room:1", ChannelConfig { presence_key: Some("me".into()), ..Default::default() });
//! let mut inserts = room.subscribe_changes(
//!     PostgresChangesFilter::table(ChangeEvent::Insert, "chat_messages").filter("room_id=eq.1"),
//! );
//! let mut typing = room.broadcasts("typing");
//! room.track(serde_json::json!({"name": "me"})).await?;
//! while let Some(change) = inserts.recv().await {
//!     println!("{:?}", change.record);
//! }
//! # let _ = typing.recv().await;
//! # Ok(()) }
//! ```
//!
//! Map (one file per concept):
//! - [`client`]: [`RealtimeClient`] (the clonable handle; owns the task) and [`RealtimeConfig`];
//! - `socket`: the task that owns the WebSocket — connect, heartbeat, reconnect, writer;
//! - `transport`: plain TCP or TLS (rustls) under it;
//! - `session`: the protocol state without I/O — channels, refs, replies, rejoin, dispatch;
//! - [`channel`]: [`Channel`] (refcounted handle), [`ChannelConfig`], [`ChannelEvent`],
//!   [`Subscription`] streams;
//! - [`serializer`]: vsn 1.0.0 objects, 2.0.0 arrays, binary kinds 3 (out) and 4 (in);
//! - [`postgres_changes`], [`broadcast`], [`presence`]: each extension's types and rules;
//! - [`backoff`], [`state`], [`error`]: retry schedule, observable states, typed errors.
//!
//! Guarantees:
//! - **Reconnects forever**: exponential backoff with jitter (first retry ≤ 1 s, cap 30 s by
//!   default), reset after a healthy connection; an immediate attempt on
//!   [`RealtimeClient::network_back`]. State: [`ConnectionState`].
//! - **Notices dead links**: heartbeats every half interval (25 s interval by default), each to
//!   be answered before the next is due, so a half-open (black-holed) link is noticed within
//!   one interval of its last sign of life; `network_back` / `network_lost` probe at once.
//! - **Rejoins everything**: after a reconnect every channel joins again with a new join_ref,
//!   postgres_changes ids are re-read from the new join reply, presence is tracked again with
//!   the last meta, and `ChannelEvent::Subscribed` tells the app to catch up through REST.
//!   Subscriptions are never duplicated: equal filters share one server subscription, old
//!   incarnations' frames are dropped, and each subscription gets each delivery once.
//! - **Classifies errors** ([`error`]): limits are typed and never retried in a loop; a refused
//!   or expired token waits for [`RealtimeClient::set_auth`]; the rest backs off.
//! - **Never blocks on a slow consumer**: subscription queues are bounded; overflow is counted
//!   per subscription ([`Subscription::missed`]).
//!
//! Failure modes are documented in each module; the short list: transport errors, server
//! closes and heartbeat timeouts reconnect; malformed frames are dropped; join errors, server
//! closes (`system` + `phx_close`) and channel crashes rejoin as classified; pushes fail with
//! [`SendError`].

pub mod backoff;
pub mod broadcast;
pub mod channel;
pub mod client;
pub mod error;
pub mod postgres_changes;
pub mod presence;
pub mod serializer;
mod session;
mod socket;
pub mod state;
mod transport;

pub use backoff::Backoff;
pub use broadcast::{Broadcast, BroadcastPayload};
pub use channel::{Channel, ChannelConfig, ChannelEvent, Subscription, SystemMessage};
pub use client::{RealtimeClient, RealtimeConfig};
pub use error::{ChannelError, ConfigError, ConnectError, LimitError, SendError};
pub use postgres_changes::{ChangeEvent, ChangeKind, Column, PostgresChange, PostgresChangesFilter};
pub use presence::{Presence, PresenceEvent, PresenceState};
pub use serializer::Vsn;
pub use session::bench_support;
pub use state::{ChannelStatus, ConnectionState};
