//! RLS parity: the Supabase migrations (`supabase/migrations/*.sql`) applied to a real
//! PostgreSQL enforce exactly the rules the local backend enforces (`policy.rs`, `schema.rs`,
//! REST), and describe the same tables.
//!
//! Each test makes a throwaway cluster (`cluster`: Debian's `postgresql` binaries, `initdb`
//! in a temp dir, a unix socket, stopped on drop), installs the test-only stand-in for what a
//! Supabase project provides (`supabase-stand-in.sql`: roles, `auth.users`, `auth.uid()`,
//! `realtime.messages`…), then the migrations unmodified, in file-name order.
//!
//! The access matrix (`matrix`) runs every case on both sides: Postgres as Supabase would
//! (`pg`: role + JWT claims, rolled back), the local backend over REST with real tokens
//! (`local`: fixture restored after every write). Outcomes must be equal — rows returned,
//! rows written, SQLSTATE of a refusal, state after a write, topic decisions — and every
//! disagreement is printed with its case. Every policy Postgres has must have been seen
//! allowing and refusing.
//!
//! Without PostgreSQL server binaries these tests fail (saying what to install); CI installs
//! them.

#[path = "../it/common.rs"]
mod common;

mod cluster;
mod local;
mod matrix;
mod pg;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::Cluster;
use matrix::{Action, Actor, Describe, Observed, Outcome};
use tokio_postgres::Client;

const STAND_IN: &str = include_str!("supabase-stand-in.sql");

fn migrations_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../supabase/migrations")
}

/// The migrations, in the order the Supabase CLI applies them (by file name).
fn migrations() -> Vec<(String, String)> {
    let dir = migrations_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no migrations in {}", dir.display());
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("file name").to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (name, sql)
        })
        .collect()
}

/// A fresh cluster with the stand-in and every migration applied, and a superuser client.
async fn migrated_postgres() -> (Cluster, Client) {
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await
        .expect("cluster start task")
        .unwrap_or_else(|e| panic!("cannot start a PostgreSQL cluster for the parity test:\n{e}"));
    let client = cluster.connect().await;
    client.batch_execute(STAND_IN).await.expect("the Supabase stand-in applies");
    for (name, sql) in migrations() {
        // One transaction per file, as `supabase db push` and `psql -1 -f` apply them.
        client
            .batch_execute(&format!("BEGIN;\n{sql}\nCOMMIT;"))
            .await
            .unwrap_or_else(|e| panic!("migration {name} does not apply: {e:?}"));
    }
    (cluster, client)
}

/// Whether an outcome shows the rule letting the actor through (`Some(true)`), stopping it
/// (`Some(false)`), or neither (a privilege, a constraint, a trigger decided).
fn policy_verdict(observed: &Observed) -> Option<bool> {
    match &observed.outcome {
        Outcome::Wrote(n) => Some(*n > 0),
        Outcome::Topic(ok) => Some(*ok),
        Outcome::Refused(code) if code == "42501" && observed.message.contains("row-level security") => Some(false),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_matrix_agrees_between_postgres_and_the_local_backend() {
    let started = Instant::now();
    let (_cluster, client) = migrated_postgres().await;
    let world = Arc::new(world::World::new());
    let pg = pg::Pg { client };
    pg.load(&world).await;
    let local = local::Local::start(Arc::clone(&world)).await;
    let cases = matrix::cases(&world);
    let names = world.names();

    let mut disagreements: Vec<String> = Vec::new();
    let mut counted = 0usize;
    // (table, command) → (seen allowed, seen refused), from signed-in users' cases; anon's
    // refusals apart (they show the other side of an unconditional policy).
    let mut seen: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut anon_refused: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let run_all = async {
        for case in &cases {
            let (p, l) = tokio::join!(pg.run(case), local.run(case));
            let (table, command) = case.action.policy_target();
            let mut note = |verdict: Option<bool>| {
                let target = (table.to_string(), command.to_string());
                match (case.actor, verdict) {
                    (Actor::User(_), Some(true)) => seen.entry(target).or_default().0 += 1,
                    (Actor::User(_), Some(false)) => seen.entry(target).or_default().1 += 1,
                    (Actor::Anon, Some(false)) => *anon_refused.entry(target).or_default() += 1,
                    _ => {}
                }
            };
            match (&case.action, &p.outcome, &l.outcome) {
                // A read is one case per fixture row of the table: returned or not.
                (Action::Select { table }, Outcome::Rows(pr), Outcome::Rows(lr)) => {
                    let all: BTreeSet<String> = world.rows_of(table).map(|r| world::label(table, &r.values)).collect();
                    for label in all.union(pr).chain(lr.difference(pr)) {
                        counted += 1;
                        let (in_pg, in_local) = (pr.contains(label), lr.contains(label));
                        note(Some(in_pg));
                        if in_pg != in_local {
                            disagreements.push(format!(
                                "{} row {}: postgres {}, local backend {}",
                                Describe(case, &names),
                                short(label, &names),
                                shown(in_pg),
                                shown(in_local)
                            ));
                        }
                    }
                    *tally.entry(format!("{table} select-row")).or_default() += all.len();
                }
                _ => {
                    counted += 1;
                    note(policy_verdict(&p));
                    let kind = match &p.outcome {
                        Outcome::Wrote(0) => "wrote no row".to_string(),
                        Outcome::Wrote(_) => "wrote rows".to_string(),
                        Outcome::Refused(code) => format!("refused {code}"),
                        Outcome::Topic(ok) => format!("topic {}", if *ok { "allowed" } else { "refused" }),
                        Outcome::Metrics(_) => "metrics".to_string(),
                        Outcome::Rows(_) => "rows".to_string(),
                    };
                    *outcomes.entry(kind).or_default() += 1;
                    let what = match &case.action {
                        Action::Topic { write, .. } => {
                            format!("private topic {}", if *write { "write" } else { "read" })
                        }
                        _ => format!("{table} {}", command.to_lowercase()),
                    };
                    *tally.entry(what).or_default() += 1;
                    if p.outcome != l.outcome {
                        disagreements.push(format!(
                            "{}: postgres {} {}, local backend {} {}",
                            Describe(case, &names),
                            p.outcome,
                            p.message,
                            l.outcome,
                            l.message
                        ));
                    } else if p.state != l.state {
                        let (ps, ls) = (p.state.clone().unwrap_or_default(), l.state.clone().unwrap_or_default());
                        let only_pg: Vec<String> = ps.difference(&ls).map(|s| short(s, &names)).collect();
                        let only_local: Vec<String> = ls.difference(&ps).map(|s| short(s, &names)).collect();
                        disagreements.push(format!(
                            "{}: both {}, but afterwards only postgres has {only_pg:?} and only the local backend has {only_local:?}",
                            Describe(case, &names),
                            p.outcome
                        ));
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(600), run_all).await.expect("the matrix runs within 10 minutes");

    // Every policy must have been seen both ways. One whose condition is `true` refuses only
    // the roles it does not name: anon.
    let policies = pg
        .client
        .query(
            "SELECT schemaname, tablename, policyname, cmd, coalesce(qual, with_check) = 'true'
             FROM pg_policies WHERE schemaname IN ('public', 'realtime') ORDER BY 1, 2, 3",
            &[],
        )
        .await
        .expect("list policies");
    let mut uncovered = Vec::new();
    for p in &policies {
        let (table, name, cmd, unconditional): (String, String, String, bool) =
            (p.get(1), p.get(2), p.get(3), p.get(4));
        let target = (table.clone(), cmd.clone());
        let (allowed, mut refused) = seen.get(&target).copied().unwrap_or_default();
        if unconditional {
            refused += anon_refused.get(&target).copied().unwrap_or_default();
        }
        if allowed == 0 || refused == 0 {
            uncovered.push(format!("{table} {cmd} policy {name:?}: allowed {allowed} times, refused {refused} times"));
        }
    }

    println!("access matrix: {counted} cases ({} requests per backend) in {:.1?}", cases.len(), started.elapsed());
    for (what, n) in &tally {
        println!("  {n:5}  {what}");
    }
    println!("  outcomes of the cases that are not row reads:");
    for (what, n) in &outcomes {
        println!("  {n:5}  {what}");
    }
    println!("  {} policies, each seen allowing and refusing", policies.len());
    for d in &disagreements {
        println!("DISAGREEMENT: {d}");
    }
    for u in &uncovered {
        println!("NOT COVERED BOTH WAYS: {u}");
    }
    assert!(
        disagreements.is_empty(),
        "{} cases disagree between postgres and the local backend (printed above)",
        disagreements.len()
    );
    assert!(uncovered.is_empty(), "{} policies were not exercised both ways (printed above)", uncovered.len());
    assert!(counted >= 300, "the matrix must have at least 300 cases, has {counted}");
    assert!(policies.len() >= 30, "every table's policies are there: found {}", policies.len());
    local.ts.shutdown().await;
}

fn shown(yes: bool) -> &'static str {
    if yes {
        "returns it"
    } else {
        "hides it"
    }
}

fn short(s: &str, names: &std::collections::HashMap<String, String>) -> String {
    let mut out = s.to_string();
    for (id, name) in names {
        out = out.replace(id.as_str(), name);
    }
    out
}

#[tokio::test]
async fn postgres_schema_matches_the_local_schema_and_its_privileges() {
    let (_cluster, client) = migrated_postgres().await;
    let public: BTreeSet<String> = client
        .query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'", &[])
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let local: BTreeSet<String> = ruwad_server::schema::TABLES.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(public, local, "schema public has exactly the tables of the data model");
    let published: BTreeSet<String> = client
        .query("SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'supabase_realtime' AND schemaname = 'public'", &[])
        .await
        .expect("publication")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(published, local, "every table is in the supabase_realtime publication");

    for t in ruwad_server::schema::TABLES {
        let cols = client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, NULL), t.typname::text, NOT a.attnotnull, a.attidentity::text,
                        has_column_privilege('authenticated', a.attrelid, a.attname, 'UPDATE'),
                        has_column_privilege('anon', a.attrelid, a.attname, 'UPDATE'),
                        has_column_privilege('service_role', a.attrelid, a.attname, 'UPDATE'),
                        pg_get_expr(d.adbin, d.adrelid)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = ('public.' || $1)::regclass AND a.attnum > 0 AND NOT a.attisdropped
                 ORDER BY a.attnum",
                &[&t.name],
            )
            .await
            .expect("columns");
        let names: Vec<String> = cols.iter().map(|r| r.get(0)).collect();
        let want: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        assert_eq!(names, want, "{}: same columns in the same order (Realtime lists them by attnum)", t.name);
        for (row, c) in cols.iter().zip(t.columns) {
            let what = format!("{}.{}", t.name, c.name);
            assert_eq!(row.get::<_, String>(2), c.ty.pg_name(), "{what}: type");
            assert_eq!(row.get::<_, bool>(3), c.nullable, "{what}: nullability");
            let identity: String = row.get(4);
            assert_eq!(
                identity == "a",
                c.fill == ruwad_server::schema::Fill::Serial,
                "{what}: GENERATED ALWAYS identity"
            );
            let user_may = t.updatable.contains(&c.name);
            assert_eq!(row.get::<_, bool>(5), user_may, "{what}: authenticated UPDATE privilege");
            assert_eq!(row.get::<_, bool>(6), user_may, "{what}: anon UPDATE privilege (same grants, no policies)");
            let service_may = !t.is_key(c.name) && c.fill != ruwad_server::schema::Fill::Serial;
            assert_eq!(
                row.get::<_, bool>(7),
                service_may,
                "{what}: service_role UPDATE privilege (any non-key column)"
            );
            let default: Option<String> = row.get(8);
            match c.fill {
                ruwad_server::schema::Fill::Const(k) => {
                    let d = default.unwrap_or_else(|| panic!("{what}: default {k:?} missing"));
                    assert!(d.starts_with(&format!("'{k}'")) || d == k, "{what}: default {d} is not {k:?}");
                }
                ruwad_server::schema::Fill::RandomUuid => {
                    assert_eq!(default.as_deref(), Some("gen_random_uuid()"), "{what}: random default")
                }
                _ => {}
            }
            if let Some(values) = c.one_of {
                let check: Option<String> = client
                    .query_opt(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = ('public.' || $1)::regclass AND conname = $2",
                        &[&t.name, &format!("{}_{}_check", t.name, c.name)],
                    )
                    .await
                    .expect("check constraint")
                    .map(|r| r.get(0));
                let check = check.unwrap_or_else(|| panic!("{what}: no check constraint {}_{}_check", t.name, c.name));
                for v in values {
                    assert!(check.contains(&format!("'{v}'")), "{what}: {check} allows {v:?}");
                }
                assert_eq!(check.matches("::text").count(), values.len(), "{what}: {check} allows only {values:?}");
            }
        }
        let pk: Vec<String> = client
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indrelid = ('public.' || $1)::regclass AND i.indisprimary ORDER BY k.n",
                &[&t.name],
            )
            .await
            .expect("primary key")
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(pk, t.primary_key, "{}: primary key", t.name);
        let rls: bool = client
            .query_one("SELECT relrowsecurity FROM pg_class WHERE oid = ('public.' || $1)::regclass", &[&t.name])
            .await
            .expect("rls flag")
            .get(0);
        assert!(rls, "{}: row-level security is enabled", t.name);
        let user_delete: bool = client
            .query_one("SELECT has_table_privilege('authenticated', ('public.' || $1)::regclass, 'DELETE')", &[&t.name])
            .await
            .expect("delete privilege")
            .get(0);
        assert_eq!(
            user_delete, !t.append_only,
            "{}: signed-in users may DELETE unless the table is append-only",
            t.name
        );
    }
}

#[tokio::test]
async fn postgres_triggers_keep_server_columns_and_document_history() {
    let (_cluster, client) = migrated_postgres().await;
    let pg = pg::Pg { client };
    pg.load(&world::World::new()).await;
    let client = &pg.client;
    let one =
        |sql: &'static str| async move { client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:?}")) };
    let refused = |sql: &'static str| async move {
        let e = client.batch_execute(sql).await.expect_err(sql);
        let db = e.as_db_error().expect("an SQL error");
        (db.code().code().to_string(), db.message().to_string())
    };

    // Sign-up makes a profile from the metadata, named as the local backend's sign-up names it.
    let signups = [
        ("hala@x.test", serde_json::json!({"display_name": "هالة", "locale": "en"})),
        ("sami@x.test", serde_json::json!({"full_name": " Sami ", "locale": "fr"})),
        ("zaid@x.test", serde_json::json!({})),
        ("noor@x.test", serde_json::json!({"display_name": "  ", "full_name": "Noor", "locale": " en "})),
        ("badr@x.test", serde_json::json!({"display_name": 7, "locale": true})),
    ];
    for (i, (email, meta)) in signups.iter().enumerate() {
        let id = format!("00000000-0000-4000-8000-{i:012}");
        client
            .execute(
                "INSERT INTO auth.users (id, email, raw_user_meta_data) VALUES ($1::text::uuid, $2, $3::text::jsonb)",
                &[&id, email, &meta.to_string()],
            )
            .await
            .expect("sign-up");
        let profile = client
            .query_one("SELECT display_name, locale FROM public.profiles WHERE id = $1::text::uuid", &[&id])
            .await
            .expect("a profile for the new account");
        let serde_json::Value::Object(meta) = meta else { unreachable!("metadata is an object") };
        let (name, locale) = ruwad_server::auth::account::profile_of(email, meta);
        assert_eq!(
            (profile.get::<_, String>(0), profile.get::<_, String>(1)),
            (name, locale.to_string()),
            "profile of {email} {meta:?}"
        );
    }

    // Server time, whatever the client sends.
    let stamped = one("INSERT INTO public.chat_messages (room_id, user_id, content, created_at)
         VALUES ('b0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'x', '2000-01-01')
         RETURNING created_at > now() - interval '1 hour'")
    .await;
    assert!(stamped.get::<_, bool>(0), "created_at is the insert time, not the client's");
    let touched = one("WITH u AS (
           UPDATE public.challenges SET title = 'later', updated_at = '2000-01-01'
           WHERE id = 'd0000000-0000-4000-8000-000000000001' RETURNING updated_at)
         SELECT (SELECT updated_at FROM public.challenges WHERE id = 'd0000000-0000-4000-8000-000000000001')
                < (SELECT updated_at FROM u)")
    .await;
    assert!(touched.get::<_, bool>(0), "updated_at moves to the update's time whatever was sent");

    // Snapshots only move forward; document updates are append-only, even for the owner.
    let (code, message) = refused(
        "UPDATE public.document_snapshots SET upto_seq = 1 WHERE document_id = 'f0000000-0000-4000-8000-000000000004'",
    )
    .await;
    assert_eq!((code.as_str(), message.as_str()), ("P0001", "document snapshot upto_seq cannot move backwards"));
    let (code, message) = refused("UPDATE public.document_updates SET \"update\" = 'AA=='").await;
    assert_eq!((code.as_str(), message.as_str()), ("P0001", "document_updates is append-only"));
    let (code, _) = refused("DELETE FROM public.document_updates").await;
    assert_eq!(code, "P0001", "no one deletes document updates directly");
    let (code, _) = refused(
        "INSERT INTO public.document_updates (seq, id, document_id, user_id, \"update\")
         VALUES (99, gen_random_uuid(), 'f0000000-0000-4000-8000-000000000001', 'a0000000-0000-4000-8000-000000000001', 'AQ==')",
    )
    .await;
    assert_eq!(code, "428C9", "seq is assigned by the server");

    // …but they go with their document, and with their author's account.
    let left = one(
        "WITH gone AS (DELETE FROM public.collaborative_documents WHERE id = 'f0000000-0000-4000-8000-000000000001' RETURNING id)
         SELECT count(*) FROM gone",
    )
    .await;
    assert_eq!(left.get::<_, i64>(0), 1);
    let remaining =
        one("SELECT count(*) FROM public.document_updates WHERE document_id = 'f0000000-0000-4000-8000-000000000001'")
            .await;
    assert_eq!(remaining.get::<_, i64>(0), 0, "deleting a document cascades to its updates");
    client
        .batch_execute("DELETE FROM auth.users WHERE id = 'a0000000-0000-4000-8000-000000000005'")
        .await
        .expect("deleting an account cascades through its profile to its document updates");
    let remaining =
        one("SELECT count(*) FROM public.document_updates WHERE user_id = 'a0000000-0000-4000-8000-000000000005'")
            .await;
    assert_eq!(remaining.get::<_, i64>(0), 0);

    // Replica identity for useful old records on the tables whose transitions the client shows.
    let full: BTreeSet<String> = client
        .query(
            "SELECT relname::text FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relreplident = 'f'",
            &[],
        )
        .await
        .expect("replica identities")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: BTreeSet<String> = ["chat_messages", "room_members", "challenges", "challenge_submissions"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(full, want);

    // The metrics function: numbers for signed-in users, nothing for anon.
    let metrics = one(
        "SELECT public.get_live_metrics()::jsonb ?& array['active_users', 'total_challenges', 'new_submissions', 'online_users']",
    )
    .await;
    assert!(metrics.get::<_, bool>(0), "get_live_metrics() has the four numbers");
    let (code, _) = refused("BEGIN; SET LOCAL ROLE anon; SELECT public.get_live_metrics();").await;
    client.batch_execute("ROLLBACK").await.expect("rollback");
    assert_eq!(code, "42501", "anon may not call get_live_metrics()");

    // Topic names that are not a UUID never raise (a join must get a refusal, not an error).
    let odd = one(
        "SELECT bool_or(private.may_use_topic(t)) FROM unnest(array['chat:', 'chat:x', 'doc:zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', ':', '', 'chat::']) t",
    )
    .await;
    assert!(!odd.get::<_, bool>(0));
}
