-- Ruwād platform, migration 1 of 4: the tables of the data model (schema `public`).
--
-- The same tables, columns (in the same order), types, keys, defaults and checks as the local
-- backend (crates/server/migrations/0001_platform.sql, described column by column in
-- crates/server/src/schema.rs); the parity test (crates/server/tests/parity) checks the two
-- against each other. Ids are UUIDs made by the client unless noted; times are timestamptz.
--
-- Server-owned columns are never taken from the client: `created_at` / `joined_at` are the
-- insert time whatever was sent, `updated_at` the time of the last write (triggers below);
-- `user_activities.id` and `document_updates.seq` are identities the server assigns (a
-- client-sent value is refused, 428C9).
--
-- Needs what every Supabase project has: `auth.users` and Postgres 13+ (`gen_random_uuid()`).
-- Trigger functions and the row-rule helpers of migration 2 live in schema `private`, which
-- the Data API does not expose.

create schema if not exists private;

-- ---------------------------------------------------------------------------------------
-- Tables

create table public.profiles (
    id uuid primary key references auth.users (id) on delete cascade,
    display_name text not null default '',
    avatar_url text,
    locale text not null default 'ar',
    created_at timestamptz not null default now()
);

create table public.challenges (
    id uuid primary key default gen_random_uuid(),
    title text not null,
    description text not null default '',
    status text not null default 'draft' check (status in ('draft', 'open', 'judging', 'closed')),
    deadline timestamptz,
    created_by uuid not null references public.profiles (id) on delete cascade,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.chat_rooms (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    kind text not null default 'channel' check (kind in ('channel', 'direct', 'challenge')),
    challenge_id uuid references public.challenges (id) on delete set null,
    created_by uuid not null references public.profiles (id) on delete cascade,
    created_at timestamptz not null default now()
);

create table public.room_members (
    room_id uuid not null references public.chat_rooms (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    role text not null default 'member' check (role in ('member', 'admin')),
    joined_at timestamptz not null default now(),
    last_read_at timestamptz,
    primary key (room_id, user_id)
);

create table public.chat_messages (
    id uuid primary key default gen_random_uuid(),
    room_id uuid not null references public.chat_rooms (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    content text not null,
    type text not null default 'text' check (type in ('text', 'file')),
    reply_to uuid references public.chat_messages (id) on delete set null,
    edited_at timestamptz,
    deleted_at timestamptz,
    created_at timestamptz not null default now()
);

create table public.message_reactions (
    message_id uuid not null references public.chat_messages (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    emoji text not null check (char_length(emoji) between 1 and 64),
    created_at timestamptz not null default now(),
    primary key (message_id, user_id, emoji)
);

create table public.challenge_submissions (
    id uuid primary key default gen_random_uuid(),
    challenge_id uuid not null references public.challenges (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    title text not null,
    content text not null default '',
    status text not null default 'submitted' check (status in ('submitted', 'accepted', 'rejected')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table public.user_activities (
    id bigint generated always as identity primary key,
    user_id uuid not null references public.profiles (id) on delete cascade,
    kind text not null,
    ref_id uuid,
    created_at timestamptz not null default now()
);

create table public.collaborative_documents (
    id uuid primary key default gen_random_uuid(),
    title text not null,
    challenge_id uuid references public.challenges (id) on delete set null,
    created_by uuid not null references public.profiles (id) on delete cascade,
    content text not null default '',
    version integer not null default 0,
    last_modified_by uuid references public.profiles (id) on delete set null,
    updated_at timestamptz not null default now()
);

create table public.document_members (
    document_id uuid not null references public.collaborative_documents (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    role text not null default 'editor' check (role in ('viewer', 'editor')),
    primary key (document_id, user_id)
);

create table public.document_updates (
    seq bigint generated always as identity primary key,
    id uuid not null unique,
    document_id uuid not null references public.collaborative_documents (id) on delete cascade,
    user_id uuid not null references public.profiles (id) on delete cascade,
    "update" text not null,
    created_at timestamptz not null default now()
);

create table public.document_snapshots (
    document_id uuid primary key references public.collaborative_documents (id) on delete cascade,
    upto_seq bigint not null,
    state text not null,
    updated_at timestamptz not null default now()
);

comment on table public.document_updates is
    'Append-only yrs v1 updates (base64) of a document; seq is the server''s order. Never updated or deleted, except with the document or its author.';
comment on column public.document_snapshots.upto_seq is
    'Highest document_updates.seq the snapshot state covers; only moves forward.';

-- ---------------------------------------------------------------------------------------
-- Indexes for the queries the client makes (primary keys and unique keys cover lookups by
-- id, by room + user, by document + user and by message).

-- Chat history paged by room and time (keyset on created_at, id), newest first or last.
create index chat_messages_room_time_idx on public.chat_messages (room_id, created_at, id);
-- Catch-up after a reconnect: everything since the last-seen time, across rooms.
create index chat_messages_time_idx on public.chat_messages (created_at);
-- "My rooms" and the membership checks of the row rules.
create index room_members_user_idx on public.room_members (user_id);
-- A challenge's room.
create index chat_rooms_challenge_idx on public.chat_rooms (challenge_id) where challenge_id is not null;
-- Challenge list catch-up by time.
create index challenges_updated_idx on public.challenges (updated_at);
-- A challenge's submissions in time order; "my submissions"; catch-up by time.
create index challenge_submissions_challenge_idx on public.challenge_submissions (challenge_id, created_at);
create index challenge_submissions_user_idx on public.challenge_submissions (user_id);
create index challenge_submissions_updated_idx on public.challenge_submissions (updated_at);
-- Activity feed and live metrics (last 24 hours).
create index user_activities_time_idx on public.user_activities (created_at);
-- Document list catch-up by time; "my documents"; membership checks.
create index collaborative_documents_updated_idx on public.collaborative_documents (updated_at);
create index collaborative_documents_creator_idx on public.collaborative_documents (created_by);
create index document_members_user_idx on public.document_members (user_id);
-- A document's updates after a known seq (load and catch-up).
create index document_updates_doc_seq_idx on public.document_updates (document_id, seq);

-- ---------------------------------------------------------------------------------------
-- Triggers: server-owned columns and history rules. They hold for every role, service_role
-- and the table owner included.

-- Sets the column named by the trigger's argument to the insert time (server time, whatever
-- the client sent).
create function private.stamp_insert_time() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new := pg_catalog.jsonb_populate_record(new, pg_catalog.jsonb_build_object(tg_argv[0], pg_catalog.now()));
    return new;
end;
$$;

-- Keeps `updated_at` at the time of the last insert or update.
create function private.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := pg_catalog.now();
    return new;
end;
$$;

create trigger stamp_created_at before insert on public.profiles
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.challenges
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.chat_rooms
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_joined_at before insert on public.room_members
    for each row execute function private.stamp_insert_time('joined_at');
create trigger stamp_created_at before insert on public.chat_messages
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.message_reactions
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.challenge_submissions
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.user_activities
    for each row execute function private.stamp_insert_time('created_at');
create trigger stamp_created_at before insert on public.document_updates
    for each row execute function private.stamp_insert_time('created_at');

create trigger touch_updated_at before insert or update on public.challenges
    for each row execute function private.touch_updated_at();
create trigger touch_updated_at before insert or update on public.challenge_submissions
    for each row execute function private.touch_updated_at();
create trigger touch_updated_at before insert or update on public.collaborative_documents
    for each row execute function private.touch_updated_at();
create trigger touch_updated_at before insert or update on public.document_snapshots
    for each row execute function private.touch_updated_at();

-- A snapshot only moves forward: it replaces an older one, never a newer one (an upsert that
-- lands on an existing snapshot is an update and is refused the same way).
create function private.refuse_snapshot_rewind() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.upto_seq < old.upto_seq then
        raise exception 'document snapshot upto_seq cannot move backwards'
            using detail = pg_catalog.format('upto_seq %s would go back to %s', old.upto_seq, new.upto_seq);
    end if;
    return new;
end;
$$;

create trigger refuse_snapshot_rewind before update on public.document_snapshots
    for each row execute function private.refuse_snapshot_rewind();

-- Document updates are append-only for everyone. The signed-in roles hold no UPDATE or
-- DELETE privilege on the table at all (migration 2); this trigger also stops service_role
-- and the owner. The one way rows go is a cascade, when their document or their author is
-- deleted: a cascade runs from the foreign key's own trigger, so it arrives here at trigger
-- depth 2 or more, while a direct UPDATE/DELETE statement arrives at depth 1.
create function private.refuse_document_update_change() returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if tg_op = 'DELETE' and pg_catalog.pg_trigger_depth() > 1 then
        return old;
    end if;
    raise exception 'document_updates is append-only';
end;
$$;

create trigger append_only before update or delete on public.document_updates
    for each row execute function private.refuse_document_update_change();

-- A profile for every new account, as the local backend's sign-up creates it: the display
-- name from the sign-up metadata (`display_name`, else `full_name`, else the email's local
-- part), the locale `en` when asked for, else `ar`.
create function private.create_profile_for_new_user() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    meta jsonb := coalesce(new.raw_user_meta_data, '{}'::jsonb);
    name text;
begin
    name := coalesce(
        nullif(pg_catalog.btrim(case when pg_catalog.jsonb_typeof(meta -> 'display_name') = 'string' then meta ->> 'display_name' end), ''),
        nullif(pg_catalog.btrim(case when pg_catalog.jsonb_typeof(meta -> 'full_name') = 'string' then meta ->> 'full_name' end), ''),
        pg_catalog.split_part(coalesce(new.email, ''), '@', 1)
    );
    insert into public.profiles (id, display_name, locale)
    values (new.id, name, case when pg_catalog.btrim(meta ->> 'locale') = 'en' then 'en' else 'ar' end)
    on conflict (id) do nothing;
    return new;
end;
$$;

create trigger create_profile_for_new_user after insert on auth.users
    for each row execute function private.create_profile_for_new_user();
