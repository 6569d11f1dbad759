-- Ruwād platform, migration 4 of 4: `get_live_metrics()`, the numbers of the live analytics
-- view (`POST /rest/v1/rpc/get_live_metrics`).
--
-- Counts across all rows, whatever the caller may read (definer rights), like the local
-- backend's `rpc/get_live_metrics`: distinct users with an activity in the last 24 hours,
-- challenges that are not drafts, submissions created in the last 24 hours, and online
-- users. Presence lives in the Realtime cluster, which Postgres cannot see, so here
-- `online_users` counts users with an activity in the last 5 minutes; the local backend
-- counts users present on Realtime. Signed-in users and service_role may call it; anon may
-- not (42501).

create function public.get_live_metrics() returns json
language sql stable security definer set search_path = ''
as $$
    select pg_catalog.json_build_object(
        'active_users', (
            select count(distinct a.user_id) from public.user_activities a
            where a.created_at >= pg_catalog.now() - interval '24 hours'
        ),
        'total_challenges', (select count(*) from public.challenges c where c.status <> 'draft'),
        'new_submissions', (
            select count(*) from public.challenge_submissions s
            where s.created_at >= pg_catalog.now() - interval '24 hours'
        ),
        'online_users', (
            select count(distinct a.user_id) from public.user_activities a
            where a.created_at >= pg_catalog.now() - interval '5 minutes'
        )
    );
$$;

revoke all on function public.get_live_metrics() from public, anon, authenticated, service_role;
grant execute on function public.get_live_metrics() to authenticated, service_role;
