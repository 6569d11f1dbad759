"""Broadcast through the Python `realtime` client (vsn 1.0.0 JSON object frames)."""

from __future__ import annotations

import httpx

from conftest import Inbox, channel_params, refused, subscribe, uniq
from realtime.types import ChannelEvents, RealtimeAcknowledgementStatus

PAYLOAD = {"text": "مرحبا", "n": 2.5, "nested": {"list": [1, "two", None, False]}}


async def listen(client, topic, event="*", **params):
    inbox = Inbox(f"{topic}/{event}")
    channel = client.channel(topic, channel_params(**params))
    channel.on_broadcast(event, inbox.push)
    await subscribe(channel)
    return channel, inbox


async def test_broadcast_reaches_the_other_client_but_not_the_sender(rt):
    topic = uniq("pybc")
    _, received = await listen(await rt.client(), topic)
    sender, echo = await listen(await rt.client(), topic)
    await sender.send_broadcast("cursor", PAYLOAD)
    got = await received.next()
    assert got["event"] == "cursor"
    assert got["payload"] == PAYLOAD
    await echo.quiet(0.4, why="self is false by default")


async def test_self_true_echoes_to_the_sender(rt):
    topic = uniq("pybc-self")
    sender, echo = await listen(await rt.client(), topic, self_=True)
    await sender.send_broadcast("echo", {"me": True})
    got = await echo.next()
    assert got["payload"] == {"me": True}


async def test_ack_true_gets_an_ok_reply(rt):
    topic = uniq("pybc-ack")
    _, received = await listen(await rt.client(), topic)
    sender, _ = await listen(await rt.client(), topic, ack=True)
    replies = Inbox("replies")
    push = await sender.push(ChannelEvents.broadcast, {"type": "broadcast", "event": "acked", "payload": {"k": 1}})
    push.receive(RealtimeAcknowledgementStatus.Ok, lambda resp: replies.push(("ok", resp)))
    push.receive(RealtimeAcknowledgementStatus.Error, lambda resp: replies.push(("error", resp)))
    push.receive(RealtimeAcknowledgementStatus.Timeout, lambda: replies.push(("timeout", None)))
    status, _ = await replies.next(timeout=12, what="the ack")
    assert status == "ok"
    assert (await received.next())["payload"] == {"k": 1}


async def test_listeners_get_only_their_event(rt):
    topic = uniq("pybc-ev")
    _, only_a = await listen(await rt.client(), topic, event="a")
    sender, _ = await listen(await rt.client(), topic)
    await sender.send_broadcast("b", {"i": 1})
    await sender.send_broadcast("a", {"i": 2})
    assert (await only_a.next())["payload"] == {"i": 2}
    await only_a.quiet(0.3, why="event b is not for this listener")


async def test_http_send_reaches_python_subscribers(rt):
    topic = uniq("pybc-http")
    _, received = await listen(await rt.client(), topic)
    sender = (await rt.client()).channel(topic, channel_params())
    await sender.http_send("via-rest", {"hello": "rest"})
    got = await received.next()
    assert got["event"] == "via-rest"
    assert got["payload"] == {"hello": "rest"}


async def test_batch_endpoint_reaches_python_subscribers(rt, backend):
    topic = uniq("pybc-batch")
    _, received = await listen(await rt.client(), topic)
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{backend.url}/realtime/v1/api/broadcast",
            headers={"apikey": backend.anon_key, "Authorization": f"Bearer {backend.anon_key}"},
            json={"messages": [{"topic": topic, "event": "batched", "payload": {"n": 1}}]},
        )
    assert r.status_code == 202, r.text
    got = await received.next()
    assert (got["event"], got["payload"]) == ("batched", {"n": 1})


async def test_private_room_channel_members_only(rt, api):
    owner = await api.sign_up("pyrt-owner")
    member = await api.sign_up("pyrt-member")
    outsider = await api.sign_up("pyrt-out")
    room = await api.new_room(owner, [member])
    topic = f"chat:{room['id']}"
    o, _ = await listen(await rt.client(owner), topic, private=True)
    _, m_inbox = await listen(await rt.client(member), topic, private=True)
    await o.send_broadcast("typing", {"who": owner.id})
    assert (await m_inbox.next())["payload"] == {"who": owner.id}
    out_channel = (await rt.client(outsider)).channel(topic, channel_params(private=True))
    err = await refused(out_channel)
    assert "Unauthorized" in str(err), f"refusal names the reason: {err}"
    await out_channel.unsubscribe()
