-- Ruwād platform, migration 2 of 4: who may read and write what (privileges and row-level
-- security), the rules of the data model in ../../shared/DESIGN.md.
--
-- These are the same rules the local backend enforces (crates/server/src/policy.rs, as SQLite
-- predicates); the parity test (crates/server/tests/parity) checks both against one access
-- matrix. Keep the two in step: a change here is a change there.
--
-- The model:
-- * `authenticated` (a signed-in user, `auth.uid()`) gets rows through the policies below;
-- * `anon` holds the same table privileges but no policy names it, so it reads nothing and
--   writes nothing (row security refuses, as for a user without a matching policy);
-- * `service_role` bypasses row security (Supabase gives it BYPASSRLS) but still meets the
--   privileges and the triggers;
-- * UPDATE is granted per column: only the columns a user may change (schema.rs
--   `Table::updatable`); keys are never updatable, not even by service_role;
-- * document_updates is append-only: no UPDATE or DELETE privilege for the API roles (and a
--   trigger for everyone else, migration 1).
--
-- Policies that need to look at other tables (membership, who created a room / challenge /
-- document) call the SECURITY DEFINER helpers in schema `private`: a policy on room_members
-- that selected from room_members would recurse, and the helpers answer for the current
-- user (`auth.uid()`) only, so they tell nobody about anyone else. They are STABLE, so within
-- one statement they see the tables as they were when it started: a member's own pending
-- "make me admin" row does not count as the admin row that would allow it.

-- ---------------------------------------------------------------------------------------
-- Helpers

create function private.is_room_member(room uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.room_members m where m.room_id = room and m.user_id = auth.uid()
    );
$$;

create function private.is_room_admin(room uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.room_members m
        where m.room_id = room and m.user_id = auth.uid() and m.role = 'admin'
    );
$$;

create function private.is_room_creator(room uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (select 1 from public.chat_rooms r where r.id = room and r.created_by = auth.uid());
$$;

-- Whether the room is a public channel (anyone signed in may join it).
create function private.is_channel(room uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (select 1 from public.chat_rooms r where r.id = room and r.kind = 'channel');
$$;

-- Whether the current user is a member of the room the message is in.
create function private.can_read_message(message uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.chat_messages msg
        join public.room_members m on m.room_id = msg.room_id
        where msg.id = message and m.user_id = auth.uid()
    );
$$;

create function private.is_challenge_creator(challenge uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (select 1 from public.challenges c where c.id = challenge and c.created_by = auth.uid());
$$;

create function private.is_challenge_open(challenge uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (select 1 from public.challenges c where c.id = challenge and c.status = 'open');
$$;

create function private.is_document_creator(doc uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.collaborative_documents d where d.id = doc and d.created_by = auth.uid()
    );
$$;

-- Members of a document: its creator and everyone in document_members (viewer or editor).
create function private.is_document_member(doc uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.collaborative_documents d where d.id = doc and d.created_by = auth.uid()
    ) or exists (
        select 1 from public.document_members m where m.document_id = doc and m.user_id = auth.uid()
    );
$$;

-- Editors of a document: its creator and its document_members with role editor.
create function private.is_document_editor(doc uuid) returns boolean
language sql stable security definer set search_path = ''
as $$
    select exists (
        select 1 from public.collaborative_documents d where d.id = doc and d.created_by = auth.uid()
    ) or exists (
        select 1 from public.document_members m
        where m.document_id = doc and m.user_id = auth.uid() and m.role = 'editor'
    );
$$;

revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;
revoke all on all functions in schema private from public, anon, authenticated, service_role;
grant execute on function
    private.is_room_member(uuid), private.is_room_admin(uuid), private.is_room_creator(uuid),
    private.is_channel(uuid), private.can_read_message(uuid), private.is_challenge_creator(uuid),
    private.is_challenge_open(uuid), private.is_document_creator(uuid),
    private.is_document_member(uuid), private.is_document_editor(uuid)
    to authenticated;

-- ---------------------------------------------------------------------------------------
-- Privileges. Supabase's default privileges grant everything on new tables to anon,
-- authenticated and service_role; start from nothing and grant what the rules need.

revoke all on table
    public.profiles, public.chat_rooms, public.room_members, public.chat_messages,
    public.message_reactions, public.challenges, public.challenge_submissions,
    public.user_activities, public.collaborative_documents, public.document_members,
    public.document_updates, public.document_snapshots
    from anon, authenticated, service_role;

grant select, insert, delete on table
    public.profiles, public.chat_rooms, public.room_members, public.chat_messages,
    public.message_reactions, public.challenges, public.challenge_submissions,
    public.user_activities, public.collaborative_documents, public.document_members,
    public.document_snapshots
    to anon, authenticated, service_role;
grant select, insert on table public.document_updates to anon, authenticated;
grant select, insert, delete on table public.document_updates to service_role;

-- The columns a signed-in user may change (schema.rs `updatable`); none for
-- message_reactions, user_activities and document_updates.
grant update (display_name, avatar_url, locale) on public.profiles to anon, authenticated;
grant update (name) on public.chat_rooms to anon, authenticated;
grant update (last_read_at, role) on public.room_members to anon, authenticated;
grant update (content, edited_at, deleted_at) on public.chat_messages to anon, authenticated;
grant update (title, description, status, deadline) on public.challenges to anon, authenticated;
grant update (status) on public.challenge_submissions to anon, authenticated;
grant update (title, content, version, last_modified_by) on public.collaborative_documents to anon, authenticated;
grant update (role) on public.document_members to anon, authenticated;
grant update (upto_seq, state) on public.document_snapshots to anon, authenticated;

-- service_role may change every column but the keys.
grant update (display_name, avatar_url, locale, created_at) on public.profiles to service_role;
grant update (name, kind, challenge_id, created_by, created_at) on public.chat_rooms to service_role;
grant update (role, joined_at, last_read_at) on public.room_members to service_role;
grant update (room_id, user_id, content, type, reply_to, edited_at, deleted_at, created_at)
    on public.chat_messages to service_role;
grant update (created_at) on public.message_reactions to service_role;
grant update (title, description, status, deadline, created_by, created_at, updated_at)
    on public.challenges to service_role;
grant update (challenge_id, user_id, title, content, status, created_at, updated_at)
    on public.challenge_submissions to service_role;
grant update (user_id, kind, ref_id, created_at) on public.user_activities to service_role;
grant update (title, challenge_id, created_by, content, version, last_modified_by, updated_at)
    on public.collaborative_documents to service_role;
grant update (role) on public.document_members to service_role;
grant update (id, document_id, user_id, "update", created_at) on public.document_updates to service_role;
grant update (upto_seq, state, updated_at) on public.document_snapshots to service_role;

-- ---------------------------------------------------------------------------------------
-- Row-level security: on for every table; a command with no policy for a role matches no
-- row (reads and writes see nothing, inserts are refused with 42501).

alter table public.profiles enable row level security;
alter table public.chat_rooms enable row level security;
alter table public.room_members enable row level security;
alter table public.chat_messages enable row level security;
alter table public.message_reactions enable row level security;
alter table public.challenges enable row level security;
alter table public.challenge_submissions enable row level security;
alter table public.user_activities enable row level security;
alter table public.collaborative_documents enable row level security;
alter table public.document_members enable row level security;
alter table public.document_updates enable row level security;
alter table public.document_snapshots enable row level security;

-- profiles: read by any signed-in user; written by its owner (no deletes: the account's
-- deletion removes it).
create policy "profiles: signed-in users read" on public.profiles
    for select to authenticated using (true);
create policy "profiles: create own" on public.profiles
    for insert to authenticated with check (id = (select auth.uid()));
create policy "profiles: update own" on public.profiles
    for update to authenticated
    using (id = (select auth.uid()))
    with check (id = (select auth.uid()));

-- chat_rooms: public channels are read by everyone signed in, other rooms by their members
-- and creator; anyone creates rooms as themselves; the creator and the room's admins rename
-- and delete.
create policy "chat_rooms: channels, members and creator read" on public.chat_rooms
    for select to authenticated
    using (kind = 'channel' or created_by = (select auth.uid()) or private.is_room_member(id));
create policy "chat_rooms: create as yourself" on public.chat_rooms
    for insert to authenticated with check (created_by = (select auth.uid()));
create policy "chat_rooms: creator and admins change" on public.chat_rooms
    for update to authenticated
    using (created_by = (select auth.uid()) or private.is_room_admin(id))
    with check (created_by = (select auth.uid()) or private.is_room_admin(id));
create policy "chat_rooms: creator and admins delete" on public.chat_rooms
    for delete to authenticated
    using (created_by = (select auth.uid()) or private.is_room_admin(id));

-- room_members: members see the room's members (and everyone their own rows); you join a
-- public channel yourself as a member, or a room you created in any role; admins add,
-- change and remove others; you change your own row (not to admin) and leave.
create policy "room_members: members read" on public.room_members
    for select to authenticated
    using (user_id = (select auth.uid()) or private.is_room_member(room_id));
create policy "room_members: join channels, own rooms; admins add" on public.room_members
    for insert to authenticated
    with check (
        (user_id = (select auth.uid()) and role = 'member' and private.is_channel(room_id))
        or (user_id = (select auth.uid()) and private.is_room_creator(room_id))
        or private.is_room_admin(room_id)
    );
create policy "room_members: own row or admins change" on public.room_members
    for update to authenticated
    using (user_id = (select auth.uid()) or private.is_room_admin(room_id))
    with check (private.is_room_admin(room_id) or (user_id = (select auth.uid()) and role = 'member'));
create policy "room_members: leave, or admins remove" on public.room_members
    for delete to authenticated
    using (user_id = (select auth.uid()) or private.is_room_admin(room_id));

-- chat_messages: members read and post (as themselves); authors edit and soft-delete
-- (deleted_at) their own; nobody hard-deletes.
create policy "chat_messages: members read" on public.chat_messages
    for select to authenticated using (private.is_room_member(room_id));
create policy "chat_messages: members post as themselves" on public.chat_messages
    for insert to authenticated
    with check (user_id = (select auth.uid()) and private.is_room_member(room_id));
create policy "chat_messages: authors edit own" on public.chat_messages
    for update to authenticated
    using (user_id = (select auth.uid()))
    with check (user_id = (select auth.uid()));

-- message_reactions: read by the room's members; added by members as themselves; removed by
-- their author.
create policy "message_reactions: members read" on public.message_reactions
    for select to authenticated using (private.can_read_message(message_id));
create policy "message_reactions: members react as themselves" on public.message_reactions
    for insert to authenticated
    with check (user_id = (select auth.uid()) and private.can_read_message(message_id));
create policy "message_reactions: remove own" on public.message_reactions
    for delete to authenticated using (user_id = (select auth.uid()));

-- challenges: everyone signed in reads all but drafts, which only their creator sees; the
-- creator writes.
create policy "challenges: read all but others' drafts" on public.challenges
    for select to authenticated using (status <> 'draft' or created_by = (select auth.uid()));
create policy "challenges: create as yourself" on public.challenges
    for insert to authenticated with check (created_by = (select auth.uid()));
create policy "challenges: creator changes" on public.challenges
    for update to authenticated
    using (created_by = (select auth.uid()))
    with check (created_by = (select auth.uid()));
create policy "challenges: creator deletes" on public.challenges
    for delete to authenticated using (created_by = (select auth.uid()));

-- challenge_submissions: read by the submitter and the challenge's creator; submitted as
-- yourself while the challenge is open (and withdrawn while it is open); the status is set
-- by the challenge's creator.
create policy "challenge_submissions: submitter and challenge creator read" on public.challenge_submissions
    for select to authenticated
    using (user_id = (select auth.uid()) or private.is_challenge_creator(challenge_id));
create policy "challenge_submissions: submit while open" on public.challenge_submissions
    for insert to authenticated
    with check (user_id = (select auth.uid()) and private.is_challenge_open(challenge_id));
create policy "challenge_submissions: challenge creator judges" on public.challenge_submissions
    for update to authenticated
    using (private.is_challenge_creator(challenge_id))
    with check (private.is_challenge_creator(challenge_id));
create policy "challenge_submissions: withdraw own while open" on public.challenge_submissions
    for delete to authenticated
    using (user_id = (select auth.uid()) and private.is_challenge_open(challenge_id));

-- user_activities: the activity feed, read by everyone signed in, written as yourself.
create policy "user_activities: signed-in users read" on public.user_activities
    for select to authenticated using (true);
create policy "user_activities: record as yourself" on public.user_activities
    for insert to authenticated with check (user_id = (select auth.uid()));

-- collaborative_documents: read by members (creator included); edited by editors; created
-- as yourself; deleted by the creator.
create policy "collaborative_documents: members read" on public.collaborative_documents
    for select to authenticated
    using (created_by = (select auth.uid()) or private.is_document_member(id));
create policy "collaborative_documents: create as yourself" on public.collaborative_documents
    for insert to authenticated with check (created_by = (select auth.uid()));
create policy "collaborative_documents: editors change" on public.collaborative_documents
    for update to authenticated
    using (created_by = (select auth.uid()) or private.is_document_editor(id))
    with check (created_by = (select auth.uid()) or private.is_document_editor(id));
create policy "collaborative_documents: creator deletes" on public.collaborative_documents
    for delete to authenticated using (created_by = (select auth.uid()));

-- document_members: read by the document's members; managed by its creator.
create policy "document_members: members read" on public.document_members
    for select to authenticated using (private.is_document_member(document_id));
create policy "document_members: creator adds" on public.document_members
    for insert to authenticated with check (private.is_document_creator(document_id));
create policy "document_members: creator changes" on public.document_members
    for update to authenticated
    using (private.is_document_creator(document_id))
    with check (private.is_document_creator(document_id));
create policy "document_members: creator removes" on public.document_members
    for delete to authenticated using (private.is_document_creator(document_id));

-- document_updates: read by members; appended by editors as themselves; never changed.
create policy "document_updates: members read" on public.document_updates
    for select to authenticated using (private.is_document_member(document_id));
create policy "document_updates: editors append as themselves" on public.document_updates
    for insert to authenticated
    with check (user_id = (select auth.uid()) and private.is_document_editor(document_id));

-- document_snapshots: read by members; written by editors (forward only, migration 1).
create policy "document_snapshots: members read" on public.document_snapshots
    for select to authenticated using (private.is_document_member(document_id));
create policy "document_snapshots: editors write" on public.document_snapshots
    for insert to authenticated with check (private.is_document_editor(document_id));
create policy "document_snapshots: editors replace" on public.document_snapshots
    for update to authenticated
    using (private.is_document_editor(document_id))
    with check (private.is_document_editor(document_id));
