-- TEST ONLY. Never apply this to a Supabase project: a real project already has all of it.
--
-- A minimal stand-in for what a Supabase project provides before its own migrations run, so
-- that ../../../../supabase/migrations/*.sql apply unmodified to a plain PostgreSQL in the
-- parity test (crates/server/tests/parity). Written for this project from Supabase's
-- documented behaviour, not copied from Supabase:
-- * the API roles `anon`, `authenticated` (NOLOGIN; PostgREST switches to them) and
--   `service_role` (BYPASSRLS);
-- * Supabase's default privileges: new tables and functions in `public` are granted to all
--   three roles (which is why the migrations revoke before they grant);
-- * `auth.users` with the columns the migrations use, and `auth.jwt()`, `auth.uid()`,
--   `auth.role()` reading the request's JWT claims from the `request.jwt.claims` setting
--   (and the older per-claim `request.jwt.claim.sub` / `.role` settings), as PostgREST and
--   Realtime set them;
-- * the `realtime` schema: `realtime.messages` (row security on, no policies: the project
--   adds them) and `realtime.topic()`, the topic Realtime sets while it authorises a
--   private channel; and the empty `supabase_realtime` publication.

create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;

grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to anon, authenticated, service_role;

create schema auth;
grant usage on schema auth to anon, authenticated, service_role;

create table auth.users (
    id uuid primary key,
    email text,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
);

create function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb;
$$;

create function auth.uid() returns uuid
language sql stable
as $$
    select coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''), auth.jwt() ->> 'sub')::uuid;
$$;

create function auth.role() returns text
language sql stable
as $$
    select coalesce(nullif(current_setting('request.jwt.claim.role', true), ''), auth.jwt() ->> 'role');
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role() to anon, authenticated, service_role;

create schema realtime;
grant usage on schema realtime to anon, authenticated, service_role;

create table realtime.messages (
    topic text not null,
    extension text not null,
    payload jsonb,
    event text,
    private boolean default false,
    updated_at timestamp not null default now(),
    inserted_at timestamp not null default now(),
    id uuid not null default gen_random_uuid(),
    primary key (id, inserted_at)
);
alter table realtime.messages enable row level security;
grant select, insert, update on realtime.messages to anon, authenticated;
grant all on realtime.messages to service_role;

create function realtime.topic() returns text
language sql stable
as $$
    select nullif(current_setting('realtime.topic', true), '');
$$;

grant execute on function realtime.topic() to anon, authenticated, service_role;

create publication supabase_realtime;
