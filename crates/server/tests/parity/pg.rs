//! Evaluating a case on PostgreSQL the way Supabase would run it.
//!
//! Each case is one transaction, always rolled back, so every case starts from the fixture:
//! `SET LOCAL ROLE <anon|authenticated|service_role>` and the JWT claims in
//! `request.jwt.claims` (what PostgREST and Realtime do per request), then the statement
//! PostgREST would send for the REST request the local backend gets:
//! - reads `SELECT <key columns> FROM t`;
//! - inserts `INSERT INTO t (cols) SELECT cols FROM json_populate_record(NULL::t, body)`, with
//!   `ON CONFLICT … DO UPDATE SET c = EXCLUDED.c` over every payload column (as PostgREST) / `DO NOTHING` for upserts;
//! - updates `UPDATE t SET c = body.c FROM json_populate_record(…) body WHERE <key filter>`;
//! - deletes `DELETE FROM t WHERE <key filter>`;
//! - `SELECT get_live_metrics()`;
//! - private topics as Realtime authorises them: `realtime.topic()` set, probe rows in
//!   `realtime.messages` that the role must be able to SELECT (read), or an INSERT the role
//!   must be allowed (write).
//!
//! After a write that changed rows the whole state is read back, as the superuser, before the
//! rollback.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use tokio_postgres::Client;

use crate::matrix::{Action, Case, Observed, Outcome, Upsert};
use crate::world::{self, World};

pub struct Pg {
    pub client: Client,
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn columns(row: &Map<String, Value>) -> String {
    row.keys().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", ")
}

fn returning_clause(table: &str, returning: bool) -> String {
    if !returning {
        return String::new();
    }
    let cols: Vec<String> = world::key_columns(table).iter().map(|c| format!("t.\"{c}\"")).collect();
    format!(" RETURNING {}", cols.join(", "))
}

fn key_filter(key: &[(&str, String)], first_param: usize) -> String {
    key.iter()
        .enumerate()
        .map(|(i, (c, _))| format!("t.\"{c}\"::text = ${}", first_param + i))
        .collect::<Vec<_>>()
        .join(" AND ")
}

impl Pg {
    /// Loads the fixture (committed): the accounts in `auth.users`, then every row. The
    /// sign-up trigger's profiles are replaced by the fixture's own.
    pub async fn load(&self, w: &World) {
        let mut sql = String::from("BEGIN;");
        for (i, name) in world::USER_NAMES.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO auth.users (id, email) VALUES ('{}', '{name}@parity.ruwad.app');",
                world::user(i)
            ));
        }
        sql.push_str("DELETE FROM public.profiles;");
        self.client.batch_execute(&sql).await.expect("load accounts");
        for row in &w.rows {
            let cols = columns(&row.values);
            let stmt = format!(
                "INSERT INTO public.{t} ({cols}) SELECT {cols} FROM json_populate_record(NULL::public.{t}, $1::text::json)",
                t = row.table
            );
            let body = Value::Object(row.values.clone()).to_string();
            self.client.execute(&stmt, &[&body]).await.unwrap_or_else(|e| panic!("load {} {body}: {e}", row.table));
        }
        self.client.batch_execute("COMMIT").await.expect("commit fixture");
    }

    async fn begin_as(&self, case: &Case, topic: Option<&str>) {
        let mut sql = format!(
            "SET LOCAL ROLE {}; SELECT set_config('request.jwt.claims', {}, true);",
            case.actor.role(),
            quote_literal(&case.actor.claims())
        );
        if let Some(t) = topic {
            sql.push_str(&format!("SELECT set_config('realtime.topic', {}, true);", quote_literal(t)));
        }
        self.client.batch_execute(&sql).await.expect("become the case's role");
    }

    pub async fn run(&self, case: &Case) -> Observed {
        self.client.batch_execute("BEGIN").await.expect("begin");
        let observed = self.run_in_transaction(case).await;
        self.client.batch_execute("ROLLBACK").await.expect("rollback");
        observed
    }

    async fn run_in_transaction(&self, case: &Case) -> Observed {
        let result: Result<Outcome, tokio_postgres::Error> = match &case.action {
            Action::Select { table } => {
                self.begin_as(case, None).await;
                let cols = world::key_columns(table).iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
                let sql = format!("SELECT row_to_json(x)::text FROM (SELECT {cols} FROM public.{table}) x");
                self.client.query(&sql, &[]).await.map(|rows| {
                    Outcome::Rows(
                        rows.iter()
                            .map(|r| {
                                let text: String = r.get(0);
                                let obj: Map<String, Value> = serde_json::from_str(&text).expect("row json");
                                world::label(table, &obj)
                            })
                            .collect(),
                    )
                })
            }
            Action::Insert { table, row, upsert, returning } => {
                self.begin_as(case, None).await;
                let cols = columns(row);
                let conflict = match upsert {
                    None => String::new(),
                    Some(Upsert::Ignore(target)) => format!(" ON CONFLICT ({}) DO NOTHING", target.join(", ")),
                    Some(Upsert::Merge) => {
                        let t = ruwad_server::schema::table(table).expect("known table");
                        // As PostgREST builds it: every payload column, the conflict key
                        // included, so Postgres checks the UPDATE privilege of each.
                        let set: Vec<String> = row.keys().map(|k| format!("\"{k}\" = EXCLUDED.\"{k}\"")).collect();
                        format!(" ON CONFLICT ({}) DO UPDATE SET {}", t.primary_key.join(", "), set.join(", "))
                    }
                };
                let sql = format!(
                    "INSERT INTO public.{table} AS t ({cols}) SELECT {cols} FROM json_populate_record(NULL::public.{table}, $1::text::json){conflict}{}",
                    returning_clause(table, *returning)
                );
                let body = Value::Object(row.clone()).to_string();
                self.write(&sql, &[&body], *returning).await
            }
            Action::Update { table, key, set, returning } => {
                self.begin_as(case, None).await;
                let assignments = set.keys().map(|k| format!("\"{k}\" = body.\"{k}\"")).collect::<Vec<_>>().join(", ");
                let sql = format!(
                    "UPDATE public.{table} AS t SET {assignments} FROM json_populate_record(NULL::public.{table}, $1::text::json) AS body WHERE {}{}",
                    key_filter(key, 2),
                    returning_clause(table, *returning)
                );
                let body = Value::Object(set.clone()).to_string();
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&body];
                params.extend(key.iter().map(|(_, v)| v as &(dyn tokio_postgres::types::ToSql + Sync)));
                self.write(&sql, &params, *returning).await
            }
            Action::Delete { table, key } => {
                self.begin_as(case, None).await;
                let sql = format!("DELETE FROM public.{table} AS t WHERE {}", key_filter(key, 1));
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    key.iter().map(|(_, v)| v as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                self.client.execute(&sql, &params).await.map(Outcome::Wrote)
            }
            Action::LiveMetrics => {
                self.begin_as(case, None).await;
                self.client
                    .query_one("SELECT public.get_live_metrics()::text", &[])
                    .await
                    .map(|r| Outcome::Metrics(comparable_metrics(&r.get::<_, String>(0))))
            }
            Action::Topic { topic, write: false } => {
                // Realtime's probe rows, written before switching role (only reading is asked).
                self.client
                    .execute(
                        "INSERT INTO realtime.messages (topic, extension, private) VALUES ($1, 'broadcast', true), ($1, 'presence', true)",
                        &[topic],
                    )
                    .await
                    .expect("probe rows");
                self.begin_as(case, Some(topic)).await;
                self.client
                    .query_one("SELECT count(*) FROM realtime.messages WHERE topic = $1", &[topic])
                    .await
                    .map(|r| Outcome::Topic(r.get::<_, i64>(0) > 0))
            }
            Action::Topic { topic, write: true } => {
                self.begin_as(case, Some(topic)).await;
                match self
                    .client
                    .execute(
                        "INSERT INTO realtime.messages (topic, extension, payload, event, private) VALUES ($1, 'broadcast', '{}', 'probe', true)",
                        &[topic],
                    )
                    .await
                {
                    Ok(_) => Ok(Outcome::Topic(true)),
                    Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42501") => Ok(Outcome::Topic(false)),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(outcome) => {
                let state = match outcome {
                    Outcome::Wrote(n) if n > 0 => Some(self.state().await),
                    _ => None,
                };
                Observed { outcome, state, message: String::new() }
            }
            Err(e) => {
                let db = e.as_db_error().unwrap_or_else(|| panic!("postgres failed outside SQL: {e}"));
                Observed {
                    outcome: Outcome::Refused(db.code().code().to_string()),
                    state: None,
                    message: db.message().to_string(),
                }
            }
        }
    }

    /// Runs a write; with `RETURNING` the rows that come back are what counts.
    async fn write(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        returning: bool,
    ) -> Result<Outcome, tokio_postgres::Error> {
        if returning {
            self.client.query(sql, params).await.map(|rows| Outcome::Wrote(rows.len() as u64))
        } else {
            self.client.execute(sql, params).await.map(Outcome::Wrote)
        }
    }

    /// Every row, as the superuser (row security does not apply), inside the case's
    /// transaction.
    async fn state(&self) -> BTreeSet<String> {
        self.client.batch_execute("RESET ROLE").await.expect("reset role");
        let rows = self.client.query(&world::state_sql(), &[]).await.expect("read state");
        rows.iter().map(|r| r.get::<_, String>(0)).collect()
    }
}

/// The counts of `get_live_metrics()` that come from the tables (`online_users` is presence
/// in the local backend and recent activity in Postgres, so it is left out).
pub fn comparable_metrics(json: &str) -> String {
    let v: Value = serde_json::from_str(json).expect("metrics json");
    format!(
        "active_users={} total_challenges={} new_submissions={}",
        v["active_users"], v["total_challenges"], v["new_submissions"]
    )
}
