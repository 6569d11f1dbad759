"""postgres_changes through the Python `realtime` client: the raw wire payload
(`ids`, `data.type/record/old_record/columns/commit_timestamp/errors`), which the client
validates strictly (a frame missing a field is dropped), and integer subscription ids."""

from __future__ import annotations

import os

import pytest

from conftest import Inbox, WaitTimeout, channel_params, subscribe, uniq


async def watch(rt, client, *bindings):
    """bindings: (name, event, table, filter). Returns (channel, inbox of (name, payload))."""
    inbox = Inbox("changes")
    system = Inbox("system")
    channel = client.channel(uniq("pypgc"), channel_params())
    for name, event, table, flt in bindings:
        channel.on_postgres_changes(event, lambda p, n=name: inbox.push((n, p)), table=table, schema="public", filter=flt)
    channel.on_system(system.push)
    await subscribe(channel)
    for cb in channel.postgres_changes_callbacks:
        assert isinstance(cb.id, int), "the join reply gave each binding an integer id"
    # Use the subscription once Realtime confirms it (system "postgres_changes ok"); a server
    # that sends no confirmation is given PG_READY_MS instead.
    ready_s = float(os.environ.get("PG_READY_MS", "1500" if rt.backend.local else "20000")) / 1000
    try:
        msg = await system.next(lambda m: m.extension == "postgres_changes", timeout=ready_s)
        assert msg.status == "ok", f"subscription failed: {msg.message}"
    except WaitTimeout:
        pass
    return channel, inbox


def check_envelope(payload, type_):
    data = payload["data"]
    assert data["schema"] == "public"
    assert data["type"] == type_
    assert isinstance(payload["ids"], list) and payload["ids"], "ids name the matching bindings"
    assert all(isinstance(i, int) for i in payload["ids"])
    assert isinstance(data["commit_timestamp"], str)
    assert data["errors"] is None
    names = [c["name"] for c in data["columns"]]
    assert "id" in names and all(isinstance(c["type"], str) for c in data["columns"])
    return data


async def test_member_receives_insert_update_delete(rt, api, backend):
    owner = await api.sign_up("pypg-owner")
    member = await api.sign_up("pypg-member")
    room = await api.new_room(owner, [member])
    flt = f"room_id=eq.{room['id']}"
    _, inbox = await watch(rt, await rt.client(owner), ("all", "*", "chat_messages", flt))

    msg = await api.post(member, room["id"], "from python")
    _, ins = await inbox.next(lambda e: e[1]["data"]["type"] == "INSERT", what="the INSERT")
    data = check_envelope(ins, "INSERT")
    assert data["table"] == "chat_messages"
    assert data["record"]["id"] == msg["id"]
    assert data["record"]["content"] == "from python"
    assert data["record"]["user_id"] == member.id
    types = {c["name"]: c["type"] for c in data["columns"]}
    assert types["id"] == "uuid" and types["content"] == "text" and types["created_at"] == "timestamptz"

    await api.update(member, "chat_messages", f"id=eq.{msg['id']}", {"content": "edited"})
    _, upd = await inbox.next(lambda e: e[1]["data"]["type"] == "UPDATE", what="the UPDATE")
    data = check_envelope(upd, "UPDATE")
    assert data["record"]["content"] == "edited"
    assert data["old_record"]["id"] == msg["id"]

    if backend.service_role_key:
        await api.delete_as_service("chat_messages", f"id=eq.{msg['id']}")
        _, dele = await inbox.next(lambda e: e[1]["data"]["type"] == "DELETE", what="the DELETE")
        data = check_envelope(dele, "DELETE")
        assert data["old_record"]["id"] == msg["id"]
        assert not data.get("record"), "a DELETE has no new record"


async def test_non_member_receives_nothing(rt, api):
    owner = await api.sign_up("pypg-o")
    outsider = await api.sign_up("pypg-x")
    room = await api.new_room(owner)
    flt = f"room_id=eq.{room['id']}"
    _, member_inbox = await watch(rt, await rt.client(owner), ("room", "INSERT", "chat_messages", flt))
    _, outsider_inbox = await watch(
        rt, await rt.client(outsider), ("room", "INSERT", "chat_messages", flt), ("table", "*", "chat_messages", None)
    )
    await api.post(owner, room["id"], "members only")
    await member_inbox.next(what="the member's INSERT")
    await outsider_inbox.quiet(0.5, why="a non-member gets no change of the room")


async def test_in_filter_and_event_kinds(rt, api):
    user = await api.sign_up("pypg-in")
    r1, r2, r3 = [await api.new_room(user) for _ in range(3)]
    _, inbox = await watch(
        rt,
        await rt.client(user),
        ("in", "INSERT", "chat_messages", f"room_id=in.({r1['id']},{r2['id']})"),
        ("updates", "UPDATE", "chat_messages", f"room_id=eq.{r3['id']}"),
    )
    m3 = await api.post(user, r3["id"], "r3")
    await api.post(user, r1["id"], "r1")
    await api.post(user, r2["id"], "r2")
    got = [await inbox.next(lambda e: e[0] == "in"), await inbox.next(lambda e: e[0] == "in")]
    assert [p["data"]["record"]["content"] for _, p in got] == ["r1", "r2"]
    await api.update(user, "chat_messages", f"id=eq.{m3['id']}", {"content": "r3!"})
    name, upd = await inbox.next(lambda e: e[0] == "updates", what="the UPDATE in r3")
    assert upd["data"]["record"]["content"] == "r3!"
    await inbox.quiet(0.3, why="no INSERT of r3 and nothing twice")


@pytest.mark.parametrize("op,expected", [("gt.5", [7, 10]), ("lte.3", [3]), ("neq.7", [3, 10])])
async def test_integer_filters(rt, api, op, expected):
    user = await api.sign_up("pypg-int")
    doc = await api.insert(user, "collaborative_documents", {"title": uniq("doc"), "created_by": user.id})
    _, inbox = await watch(rt, await rt.client(user), (op, "UPDATE", "collaborative_documents", f"version={op}"))
    for v in (3, 7, 10):
        await api.update(user, "collaborative_documents", f"id=eq.{doc['id']}", {"version": v})
    got = [(await inbox.next(what=f"change {i + 1}"))[1]["data"]["record"]["version"] for i in range(len(expected))]
    assert got == expected
    await inbox.quiet(0.3, why="no other version matches")
