"""Presence through the Python `realtime` client (vsn 1.0.0)."""

from __future__ import annotations

from conftest import Inbox, channel_params, subscribe, uniq


async def presence_channel(client, topic, key):
    events = Inbox(f"{topic}/{key}")
    channel = client.channel(topic, channel_params(key=key, presence=True))
    channel.on_presence_sync(lambda: events.push(("sync", {k: list(v) for k, v in channel.presence_state().items()})))
    channel.on_presence_join(lambda k, cur, new: events.push(("join", k, list(new))))
    channel.on_presence_leave(lambda k, cur, left: events.push(("leave", k, list(left))))
    await subscribe(channel)
    return channel, events


def payloads(state, key):
    return [{k: v for k, v in p.items() if k != "presence_ref"} for p in state.get(key, [])]


async def test_sync_join_and_state(rt):
    topic = uniq("pypr")
    a, a_events = await presence_channel(await rt.client(), topic, "alice")
    first = await a_events.next(lambda e: e[0] == "sync", what="the initial sync")
    assert first[1] == {}, "nobody is present yet"
    await a.track({"name": "Alice"})
    await a_events.next(lambda e: e[0] == "join" and e[1] == "alice", what="own join")

    b, b_events = await presence_channel(await rt.client(), topic, "bob")
    b_sync = await b_events.next(lambda e: e[0] == "sync", what="b's initial sync")
    assert payloads(b_sync[1], "alice") == [{"name": "Alice"}], "presence_state after join holds alice"
    await b.track({"name": "Bob"})
    join = await a_events.next(lambda e: e[0] == "join" and e[1] == "bob", what="a sees bob")
    assert join[2][0]["name"] == "Bob"
    assert isinstance(join[2][0]["presence_ref"], str)

    state = a.presence_state()
    assert sorted(state) == ["alice", "bob"]
    assert payloads(state, "bob") == [{"name": "Bob"}]
    for metas in state.values():
        for meta in metas:
            assert "phx_ref" not in meta and "phx_ref_prev" not in meta


async def test_untrack_and_unsubscribe_make_leaves(rt):
    topic = uniq("pypr-leave")
    a, a_events = await presence_channel(await rt.client(), topic, "a")
    b, _ = await presence_channel(await rt.client(), topic, "b")
    c_client = await rt.client()
    c, _ = await presence_channel(c_client, topic, "c")
    await b.track({"s": "b"})
    await c.track({"s": "c"})
    await a_events.next(lambda e: e[0] == "join" and e[1] == "b", what="b joins")
    await a_events.next(lambda e: e[0] == "join" and e[1] == "c", what="c joins")

    await b.untrack()
    leave = await a_events.next(lambda e: e[0] == "leave" and e[1] == "b", what="b untracks")
    assert leave[2][0]["s"] == "b"

    await c_client.remove_channel(c)
    await a_events.next(lambda e: e[0] == "leave" and e[1] == "c", what="c unsubscribes")
    assert a.presence_state() == {}
