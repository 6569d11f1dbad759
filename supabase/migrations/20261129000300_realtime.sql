-- Ruwād platform, migration 3 of 4: Realtime.
--
-- 1. postgres_changes: every table of the data model is in the `supabase_realtime`
--    publication (the client subscribes to chat, membership, challenges, submissions,
--    activities and documents; profiles for names and avatars). Realtime checks each change
--    against the subscriber's row-level security, so nobody receives rows they could not
--    select.
-- 2. Replica identity: an UPDATE event's `old_record` carries only the primary key unless the
--    table's replica identity is FULL. The client needs the previous values where it reacts to
--    a transition: a challenge's or a submission's status (toasts), a message edited or
--    soft-deleted, a member's role or read marker. Those four tables log full old rows; the
--    others (append-only or replaced wholesale) keep the default. DELETE events carry only
--    the key under row-level security either way.
-- 3. Private broadcast / presence channels `chat:<room_id>` and `doc:<document_id>` (joined
--    with `config.private: true`) are authorised by policies on `realtime.messages`: the
--    room's members, the document's members (creator, viewers, editors) may read (join,
--    receive) and write (send, track). Any other topic is refused to signed-in users.
--    service_role bypasses row security, as it does everywhere.
--    Same rule as the local backend's `policy::topic_sql`.

do $$
begin
    if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end;
$$;

do $$
declare
    t text;
begin
    foreach t in array array[
        'profiles', 'chat_rooms', 'room_members', 'chat_messages', 'message_reactions', 'challenges',
        'challenge_submissions', 'user_activities', 'collaborative_documents', 'document_members',
        'document_updates', 'document_snapshots'
    ] loop
        if not exists (
            select 1 from pg_catalog.pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'public' and tablename = t
        ) then
            execute pg_catalog.format('alter publication supabase_realtime add table public.%I', t);
        end if;
    end loop;
end;
$$;

alter table public.chat_messages replica identity full;
alter table public.room_members replica identity full;
alter table public.challenges replica identity full;
alter table public.challenge_submissions replica identity full;

-- Whether the current user may use the private topic: `chat:<room_id>` for the room's
-- members, `doc:<document_id>` for the document's members. The id must be a UUID in its
-- canonical 8-4-4-4-12 form (either case); anything else names nothing and is refused.
create function private.may_use_topic(topic text) returns boolean
language plpgsql stable security definer set search_path = ''
as $$
declare
    kind text;
    id text;
begin
    if topic is null or pg_catalog.strpos(topic, ':') = 0 then
        return false;
    end if;
    kind := pg_catalog.split_part(topic, ':', 1);
    id := pg_catalog.substr(topic, pg_catalog.length(kind) + 2);
    if id !~ '^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$' then
        return false;
    end if;
    return case kind
        when 'chat' then private.is_room_member(id::uuid)
        when 'doc' then private.is_document_member(id::uuid)
        else false
    end;
end;
$$;

revoke all on function private.may_use_topic(text) from public, anon, service_role;
grant execute on function private.may_use_topic(text) to authenticated;

create policy "realtime: members receive on chat and doc topics" on realtime.messages
    for select to authenticated
    using (private.may_use_topic((select realtime.topic())));
create policy "realtime: members send on chat and doc topics" on realtime.messages
    for insert to authenticated
    with check (private.may_use_topic((select realtime.topic())));
