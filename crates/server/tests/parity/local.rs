//! Evaluating a case on the local backend: a real server in-process, asked over REST with the
//! actor's token (a user JWT signed with the server's secret, or the anon / service_role key),
//! exactly as supabase-js would ask; private topics through `policy::topic_sql`, the check
//! Realtime runs when a private channel is joined.
//!
//! The fixture is written straight into SQLite. After a write that changed rows, the whole
//! state is read back and the fixture written again (in one transaction), so every case
//! starts from the same rows.

use std::collections::BTreeSet;

use reqwest::Method;
use rusqlite::types::Value as Sql;
use serde_json::{Map, Value};

use crate::common::TestServer;
use crate::matrix::{Action, Actor, Case, Observed, Outcome, Upsert};
use crate::world::{self, World};
use ruwad_server::db::DbError;
use ruwad_server::policy::{self, Role};
use ruwad_server::schema::{self, ColType, Fill};

pub struct Local {
    pub ts: TestServer,
    tokens: Vec<String>,
    world: std::sync::Arc<World>,
}

/// The SQLite statements that put the fixture in place, after clearing every table.
fn fixture_statements(w: &World) -> Vec<(String, Vec<Sql>)> {
    let now = schema::now_text();
    let mut out: Vec<(String, Vec<Sql>)> = Vec::new();
    for t in schema::TABLES.iter().rev() {
        out.push((format!("DELETE FROM \"{}\"", t.name), Vec::new()));
    }
    out.push(("DELETE FROM sqlite_sequence".into(), Vec::new()));
    for row in &w.rows {
        let table = schema::table(row.table).expect("fixture table");
        let mut cols = Vec::new();
        let mut values = Vec::new();
        for c in table.columns {
            let v = match (row.values.get(c.name), c.fill) {
                (_, Fill::Serial) => continue,
                (_, Fill::ServerNow | Fill::Touch) => Sql::Text(now.clone()),
                (Some(Value::String(s)), _) if c.ty == ColType::Timestamptz => {
                    Sql::Text(schema::normalize_ts(s).expect("fixture timestamp"))
                }
                (Some(Value::String(s)), _) => Sql::Text(s.clone()),
                (Some(Value::Number(n)), _) => Sql::Integer(n.as_i64().expect("integer")),
                (Some(Value::Null) | None, Fill::Const(k)) if c.ty.is_integer() => {
                    Sql::Integer(k.parse().expect("int"))
                }
                (Some(Value::Null) | None, Fill::Const(k)) => Sql::Text(k.to_string()),
                (Some(Value::Null) | None, _) => Sql::Null,
                (Some(other), _) => panic!("fixture value {other} for {}.{}", row.table, c.name),
            };
            cols.push(format!("\"{}\"", c.name));
            values.push(v);
        }
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        out.push((
            format!("INSERT INTO \"{}\" ({}) VALUES ({})", row.table, cols.join(", "), marks.join(", ")),
            values,
        ));
    }
    out
}

impl Local {
    pub async fn start(world: std::sync::Arc<World>) -> Local {
        let ts = TestServer::start().await;
        let mut tokens = Vec::new();
        for (i, name) in world::USER_NAMES.iter().enumerate() {
            let user = ts.user_with_id(&world::user(i), name).await;
            tokens.push(user.token);
        }
        let local = Local { ts, tokens, world };
        local.reset().await;
        local
    }

    /// Clears every platform table and writes the fixture again.
    pub async fn reset(&self) {
        let statements = fixture_statements(&self.world);
        self.ts
            .server
            .state
            .db
            .write(move |tx| -> Result<(), DbError> {
                for (sql, params) in &statements {
                    tx.execute(sql, rusqlite::params_from_iter(params.iter()))?;
                }
                Ok(())
            })
            .await
            .expect("write the fixture");
    }

    async fn state(&self) -> BTreeSet<String> {
        self.ts
            .server
            .state
            .db
            .read(|conn| -> Result<BTreeSet<String>, DbError> {
                let mut stmt = conn.prepare(&world::state_sql())?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .expect("read state")
    }

    fn bearer(&self, actor: Actor) -> &str {
        match actor {
            Actor::Anon => &self.ts.server.anon_key,
            Actor::Service => &self.ts.server.service_role_key,
            Actor::User(i) => &self.tokens[i],
        }
    }

    fn role(actor: Actor) -> Role {
        match actor {
            Actor::Anon => Role::Anon,
            Actor::Service => Role::ServiceRole,
            Actor::User(i) => Role::User(world::user(i)),
        }
    }

    pub async fn run(&self, case: &Case) -> Observed {
        let observed = match &case.action {
            Action::Topic { topic, .. } => Observed::plain(Outcome::Topic(self.topic_allowed(topic, case.actor).await)),
            action => self.rest(case.actor, action).await,
        };
        if matches!(observed.outcome, Outcome::Wrote(n) if n > 0) {
            let state = self.state().await;
            self.reset().await;
            return Observed { state: Some(state), ..observed };
        }
        observed
    }

    /// What Realtime decides when `actor` joins the private `topic`.
    async fn topic_allowed(&self, topic: &str, actor: Actor) -> bool {
        let sql = match policy::topic_sql(topic, &Self::role(actor)) {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some(sql)) => sql,
        };
        self.ts
            .server
            .state
            .db
            .read(move |conn| -> Result<bool, DbError> { Ok(conn.query_row(&sql, [], |r| r.get::<_, i64>(0))? != 0) })
            .await
            .expect("topic check")
    }

    async fn rest(&self, actor: Actor, action: &Action) -> Observed {
        let filter = |key: &[(&str, String)]| {
            key.iter().map(|(c, v)| format!("{c}=eq.{}", encode(v))).collect::<Vec<_>>().join("&")
        };
        let (method, path, body, prefer): (Method, String, Option<Value>, String) = match action {
            Action::Select { table } => {
                (Method::GET, format!("{table}?select={}", world::key_columns(table).join(",")), None, String::new())
            }
            Action::Insert { table, row, upsert, returning } => {
                let mut query = vec![format!("select={}", world::key_columns(table).join(","))];
                let resolution = match upsert {
                    None => "",
                    Some(Upsert::Merge) => ", resolution=merge-duplicates",
                    Some(Upsert::Ignore(cols)) => {
                        query.push(format!("on_conflict={}", cols.join(",")));
                        ", resolution=ignore-duplicates"
                    }
                };
                (
                    Method::POST,
                    format!("{table}?{}", query.join("&")),
                    Some(Value::Object(row.clone())),
                    format!("{}, count=exact{resolution}", return_pref(*returning)),
                )
            }
            Action::Update { table, key, set, returning } => (
                Method::PATCH,
                format!("{table}?{}&select={}", filter(key), world::key_columns(table).join(",")),
                Some(Value::Object(set.clone())),
                format!("{}, count=exact", return_pref(*returning)),
            ),
            Action::Delete { table, key } => {
                (Method::DELETE, format!("{table}?{}", filter(key)), None, "return=minimal, count=exact".into())
            }
            Action::LiveMetrics => {
                (Method::POST, "rpc/get_live_metrics".into(), Some(Value::Object(Map::new())), String::new())
            }
            Action::Topic { .. } => unreachable!("topics are not REST"),
        };
        let mut req = self.ts.rest(method, &path, self.bearer(actor));
        if !prefer.is_empty() {
            req = req.header("Prefer", prefer);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.expect("REST request");
        let status = resp.status();
        let range = resp.headers().get("content-range").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = resp.text().await.expect("REST body");
        if !status.is_success() {
            let err: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body {status}: {text}"));
            let code = err["code"].as_str().unwrap_or_else(|| panic!("error without code {status}: {text}"));
            return Observed {
                outcome: Outcome::Refused(code.to_string()),
                state: None,
                message: err["message"].as_str().unwrap_or_default().to_string(),
            };
        }
        let outcome = match action {
            Action::Select { table } => {
                let rows: Vec<Map<String, Value>> = serde_json::from_str(&text).expect("rows");
                Outcome::Rows(rows.iter().map(|r| world::label(table, r)).collect())
            }
            Action::LiveMetrics => Outcome::Metrics(crate::pg::comparable_metrics(&text)),
            _ => {
                let range = range.unwrap_or_else(|| panic!("no Content-Range on a counted write ({status})"));
                let total = range.rsplit('/').next().and_then(|n| n.parse().ok());
                Outcome::Wrote(total.unwrap_or_else(|| panic!("Content-Range {range} has no count")))
            }
        };
        Observed::plain(outcome)
    }
}

fn return_pref(returning: bool) -> &'static str {
    if returning {
        "return=representation"
    } else {
        "return=minimal"
    }
}

/// Percent-encodes a filter value (UUIDs and plain words need none, emoji do).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
