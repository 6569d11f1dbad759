//! The single sender task: drains the outbox to the server.
//!
//! Each round it claims the next batch of every ready stream ([`super::claim`]: up to
//! [`SenderOptions::limits`]), sends the batches concurrently (at most one per stream, so each
//! stream stays in order), then settles every outcome in the store:
//! - **confirmed** → the entries are deleted, server times recorded ([`super::confirm`]);
//! - **permanent refusal** of a single entry → it is kept as `failed` with the reason
//!   ([`super::fail`]); a multi-row insert that is refused is re-sent row by row, so the rows
//!   before the bad one are delivered and only the bad one fails (inserts are all-or-nothing
//!   per request on the server);
//! - **transient** (network, timeout, 5xx, 429) → the entries are released unsent and the task
//!   waits with [`Backoff`] (at least `Retry-After`), forever; [`Sender::network_back`] cuts
//!   the wait short;
//! - **unauthorized** (the token was refused) → the session is refreshed once, then the round
//!   is retried; refused again right after a refresh → backoff, never a tight loop. With no
//!   session at all nothing is sent (an anonymous request would be refused as permanent and
//!   wrongly fail the entries); the task waits for a sign-in.
//!
//! Inserts carry client-made keys and go with `ignore-duplicates`, updates and deletes are
//! idempotent, so a request whose answer was lost is simply sent again.
//!
//! Stopping: the task checks its cancellation token between rounds and while waiting; a
//! round in progress finishes (requests time out after 30 s), so claims are always settled.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ruwad_supabase::auth::Auth;
use ruwad_supabase::error::Retry;
use ruwad_supabase::rest::{Rest, RestError};
use ruwad_supabase::Project;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::backoff::Backoff;
use super::{Batch, ClaimLimits, Entry, Request};
use crate::events::{ConnectionState, Sink};
use crate::model::EntryError;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct SenderOptions {
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub limits: ClaimLimits,
}

impl Default for SenderOptions {
    fn default() -> SenderOptions {
        SenderOptions {
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            limits: ClaimLimits { streams: 8, rows: 500, bytes: 1024 * 1024 },
        }
    }
}

/// What wakes (or holds) the sender.
#[derive(Debug, Default)]
pub struct Signals {
    /// New entries were queued (or a failed one was retried).
    pub work: Notify,
    /// The network is back (OS signal, a realtime reconnect): retry now, reset the backoff.
    pub network_back: Notify,
    /// The OS says there is no network: attempt nothing until `network_back`. Changes made
    /// meanwhile stay unclaimed, so they keep folding into each other.
    pub offline: AtomicBool,
    /// The realtime socket is enabled and not connected. The connection shown is then the
    /// socket's state: a REST call that gets through must not show "online" while the socket
    /// is still reconnecting (the socket is what brings changes in).
    pub socket_down: AtomicBool,
}

impl Signals {
    pub fn set_offline(&self) {
        self.offline.store(true, Ordering::SeqCst);
    }

    pub fn set_online(&self) {
        self.offline.store(false, Ordering::SeqCst);
        self.network_back.notify_one();
    }
}

/// Everything the task needs.
pub struct Sender {
    pub store: Store,
    pub auth: Auth,
    pub project: Project,
    pub signals: Arc<Signals>,
    pub connection: watch::Sender<ConnectionState>,
    pub sink: Sink,
    pub options: SenderOptions,
}

/// Why a request did not go through.
#[derive(Debug, Clone, PartialEq)]
enum Trouble {
    Transient(Option<Duration>),
    Unauthorized,
}

/// The outcome of sending one batch.
#[derive(Debug, Default)]
struct Report {
    confirmed: Vec<Entry>,
    returned: BTreeMap<Uuid, String>,
    failed: Option<(Entry, EntryError)>,
    unsent: Vec<Entry>,
    trouble: Option<Trouble>,
}

#[derive(Deserialize)]
struct IdTime {
    id: Uuid,
    created_at: String,
}

/// Tables whose inserts ask the server for the rows' times.
fn returns_times(table: &str) -> bool {
    matches!(table, "chat_messages" | "challenge_submissions")
}

impl Sender {
    /// Runs until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        let mut backoff = Backoff::new(self.options.backoff_min, self.options.backoff_max);
        let mut refreshed = false;
        loop {
            if cancel.is_cancelled() {
                return;
            }
            if self.signals.offline.load(Ordering::SeqCst) {
                self.set_state(ConnectionState::Offline);
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.signals.network_back.notified() => {}
                }
                continue;
            }
            let Some(token) = self.auth.access_token().await else {
                self.set_state(ConnectionState::Offline);
                let mut sessions = self.auth.sessions();
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = sessions.changed() => {}
                    _ = self.signals.network_back.notified() => {}
                }
                continue;
            };
            let limits = self.options.limits;
            let batches = match self.store.write(move |tx, inflight| super::claim(tx, inflight, limits)).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the outbox; retrying in a second");
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    continue;
                }
            };
            if batches.is_empty() {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = self.signals.work.notified() => {}
                    _ = self.signals.network_back.notified() => {}
                }
                continue;
            }
            let rest = Rest::with_bearer(self.project.clone(), token);
            let mut set = tokio::task::JoinSet::new();
            for batch in batches {
                let rest = rest.clone();
                set.spawn(async move { send_batch(&rest, batch).await });
            }
            let mut trouble: Option<Trouble> = None;
            let mut delivered = false;
            while let Some(joined) = set.join_next().await {
                let report = match joined {
                    Ok(r) => r,
                    Err(e) => {
                        // A panic in a send: its claims stay in flight until the store closes,
                        // which holds only its stream back. Reported, never silent.
                        tracing::error!(error = %e, "a send task failed");
                        continue;
                    }
                };
                delivered |= !report.confirmed.is_empty();
                trouble = worst(trouble, report.trouble.clone());
                self.settle(report).await;
            }
            match trouble {
                None => {
                    if backoff.failures() > 0 || delivered {
                        backoff.reset();
                    }
                    refreshed = false;
                    if !self.signals.socket_down.load(Ordering::SeqCst) {
                        self.set_state(ConnectionState::Online);
                    }
                }
                Some(Trouble::Unauthorized) if !refreshed => {
                    refreshed = true;
                    match self.auth.refresh().await {
                        Ok(_) => {}
                        Err(e) if e.is_transient() => {
                            if !self.wait(&mut backoff, e.retry_after(), &cancel).await {
                                return;
                            }
                        }
                        // The session is gone: the next round waits for a sign-in.
                        Err(e) => tracing::info!(error = %e, "session ended; sending paused until sign-in"),
                    }
                }
                Some(Trouble::Unauthorized) => {
                    refreshed = false;
                    if !self.wait(&mut backoff, None, &cancel).await {
                        return;
                    }
                }
                Some(Trouble::Transient(after)) => {
                    if !self.wait(&mut backoff, after, &cancel).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits out one backoff step. False when cancelled.
    async fn wait(&self, backoff: &mut Backoff, after: Option<Duration>, cancel: &CancellationToken) -> bool {
        let delay = backoff.fail(after);
        self.set_state(ConnectionState::Connecting {
            attempt: backoff.failures(),
            retry_in_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        });
        tracing::debug!(?delay, failures = backoff.failures(), "outbox: transient failure, backing off");
        tokio::select! {
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
            _ = self.signals.network_back.notified() => {
                backoff.reset();
                true
            }
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.connection.send_if_modified(|s| {
            let changed = *s != state;
            *s = state;
            changed
        });
    }

    /// Records a report in the store. A store failure here leaves entries claimed until the
    /// store closes — they are sent again by the next run (idempotently).
    async fn settle(&self, report: Report) {
        let table = report.confirmed.first().map(|e| e.request.table().to_string());
        let missing = super::missing_times(&report.confirmed, &report.returned);
        let result = self
            .store
            .write(move |tx, inflight| {
                let mut changes = super::confirm(tx, inflight, &report.confirmed, &report.returned)?;
                if let Some((entry, error)) = &report.failed {
                    tracing::warn!(seq = entry.seq, kind = entry.kind.as_str(), error = %error.message, "outbox entry refused");
                    changes.merge(super::fail(tx, inflight, entry, error)?);
                }
                super::release(tx, inflight, &report.unsent, report.trouble.is_some())?;
                Ok(changes)
            })
            .await;
        match result {
            Ok(changes) => self.sink.send(changes),
            Err(e) => tracing::error!(error = %e, "cannot record what the server confirmed"),
        }
        if let (Some(table), false) = (table, missing.is_empty()) {
            self.fill_times(&table, missing).await;
        }
    }

    /// Best effort: the server times of rows a retried insert found already there.
    async fn fill_times(&self, table: &str, ids: Vec<Uuid>) {
        let Some(token) = self.auth.access_token().await else { return };
        let rest = Rest::with_bearer(self.project.clone(), token);
        let rows: Result<Vec<IdTime>, _> =
            rest.from(table).select("id,created_at").in_("id", ids.iter()).execute().await;
        let Ok(rows) = rows else { return };
        let times: BTreeMap<Uuid, String> = rows.into_iter().map(|r| (r.id, r.created_at)).collect();
        let table = table.to_string();
        match self.store.write(move |tx, _| super::set_times(tx, &table, &times)).await {
            Ok(changes) => self.sink.send(changes),
            Err(e) => tracing::warn!(error = %e, "cannot record server times"),
        }
    }
}

fn worst(a: Option<Trouble>, b: Option<Trouble>) -> Option<Trouble> {
    match (a, b) {
        (Some(Trouble::Unauthorized), _) | (_, Some(Trouble::Unauthorized)) => Some(Trouble::Unauthorized),
        (Some(Trouble::Transient(x)), Some(Trouble::Transient(y))) => Some(Trouble::Transient(x.max(y))),
        (a, None) => a,
        (None, b) => b,
    }
}

/// How a failed request should be treated.
enum Failure {
    Trouble(Trouble),
    Permanent(EntryError),
}

fn classify(e: &RestError) -> Failure {
    match e.retry() {
        Retry::Transient { after } => Failure::Trouble(Trouble::Transient(after)),
        Retry::Unauthorized => Failure::Trouble(Trouble::Unauthorized),
        // A 401 that is not a JWT error means the request went without a user (the session
        // ended under it): never a reason to fail the entry.
        Retry::Permanent if e.status() == Some(401) => Failure::Trouble(Trouble::Unauthorized),
        Retry::Permanent => Failure::Permanent(EntryError {
            status: e.status(),
            code: e.code().map(str::to_string),
            message: match e {
                RestError::Api(api) => api.message.clone(),
                other => other.to_string(),
            },
        }),
    }
}

/// Sends one batch; a refused multi-row insert is re-sent row by row.
async fn send_batch(rest: &Rest, batch: Batch) -> Report {
    let entries = batch.entries;
    let mut report = Report::default();
    if entries.len() > 1 {
        match send(rest, &entries).await {
            Ok(returned) => {
                report.returned = returned;
                report.confirmed = entries;
                return report;
            }
            Err(Failure::Trouble(t)) => {
                report.trouble = Some(t);
                report.unsent = entries;
                return report;
            }
            // One row (or more) is refused: find it.
            Err(Failure::Permanent(_)) => {}
        }
    }
    let mut rest_of = entries.into_iter();
    while let Some(entry) = rest_of.next() {
        match send(rest, std::slice::from_ref(&entry)).await {
            Ok(returned) => {
                report.returned.extend(returned);
                report.confirmed.push(entry);
            }
            Err(Failure::Trouble(t)) => {
                report.trouble = Some(t);
                report.unsent.push(entry);
                report.unsent.extend(rest_of);
                break;
            }
            Err(Failure::Permanent(e)) => {
                report.failed = Some((entry, e));
                // The rest of the stream waits behind the failed entry.
                report.unsent.extend(rest_of);
                break;
            }
        }
    }
    report
}

/// One request for `entries` (all inserts into one table, or a single entry).
async fn send(rest: &Rest, entries: &[Entry]) -> Result<BTreeMap<Uuid, String>, Failure> {
    let Some(first) = entries.first() else { return Ok(BTreeMap::new()) };
    match &first.request {
        Request::Insert { table, .. } => {
            let rows: Vec<&serde_json::Map<String, Value>> = entries
                .iter()
                .filter_map(|e| match &e.request {
                    Request::Insert { row, .. } => Some(row),
                    _ => None,
                })
                .collect();
            let q = rest.from(table.as_str()).insert(&rows).ignore_duplicates();
            if returns_times(table) {
                match q.select("id,created_at").execute::<Vec<IdTime>>().await {
                    Ok(rows) => Ok(rows.into_iter().map(|r| (r.id, r.created_at)).collect()),
                    // The write went through; only its answer is odd.
                    Err(RestError::Decode(_)) => Ok(BTreeMap::new()),
                    Err(e) => Err(classify(&e)),
                }
            } else {
                match q.execute::<Value>().await {
                    Ok(_) | Err(RestError::Decode(_)) => Ok(BTreeMap::new()),
                    Err(e) => Err(classify(&e)),
                }
            }
        }
        Request::Update { table, filter, patch, must_match } => {
            let mut q = rest.from(table.as_str()).update(patch);
            for (k, v) in filter {
                q = q.eq(k, v);
            }
            if *must_match {
                let key = filter.keys().next().map(String::as_str).unwrap_or("id");
                match q.select(key).execute::<Vec<Value>>().await {
                    Ok(rows) if rows.is_empty() => Err(Failure::Permanent(EntryError {
                        status: None,
                        code: Some("not_found".into()),
                        message: "the row is gone or may no longer be changed by this user".into(),
                    })),
                    Ok(_) | Err(RestError::Decode(_)) => Ok(BTreeMap::new()),
                    Err(e) => Err(classify(&e)),
                }
            } else {
                match q.execute::<Value>().await {
                    Ok(_) | Err(RestError::Decode(_)) => Ok(BTreeMap::new()),
                    Err(e) => Err(classify(&e)),
                }
            }
        }
        Request::Delete { table, filter } => {
            let mut q = rest.from(table.as_str()).delete();
            for (k, v) in filter {
                q = q.eq(k, v);
            }
            match q.execute::<Value>().await {
                Ok(_) | Err(RestError::Decode(_)) => Ok(BTreeMap::new()),
                Err(e) => Err(classify(&e)),
            }
        }
    }
}
