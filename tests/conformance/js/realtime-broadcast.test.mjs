// Realtime broadcast as supabase-js (realtime-js 2.109.0) speaks it: vsn 2.0.0 with binary
// kind-3/kind-4 frames by default, vsn 1.0.0 JSON objects on request, `self`, `ack`, the REST
// endpoints, and private channels authorised by room membership (protocol notes §1, §2, §5.4).
//
// Public-channel scenarios use anonymous clients, so they depend on Realtime alone.

import { test, describe, before } from 'node:test'
import assert from 'node:assert/strict'

import {
  useBackend,
  noError,
  anonClient,
  newUser,
  newRoom,
  subscribed,
  refused,
  Inbox,
  tappedTransport,
  uniq,
  within,
  withUnrefTimers,
} from './harness.mjs'

const target = await useBackend('realtime-broadcast')

const PAYLOAD = { text: 'مرحبا يا رواد', n: 1.5, nested: { arr: [1, 'x', null, true], empty: {} } }

/** Subscribes a channel on `client` that collects broadcasts of `event` (or '*'). */
async function listener(client, topic, { event = '*', config = {} } = {}) {
  const inbox = new Inbox(`${topic}/${event}`)
  const channel = client.channel(topic, { config }).on('broadcast', { event }, inbox.push)
  await subscribed(channel)
  return { channel, inbox }
}

describe('public broadcast', () => {
  test('self:false (default): the other client receives, the sender does not', async () => {
    const topic = uniq('bc')
    const frames = []
    const sender = anonClient({ realtime: { transport: tappedTransport(frames) } })
    const receiverFrames = []
    const receiver = anonClient({ realtime: { transport: tappedTransport(receiverFrames) } })
    assert.equal(sender.realtime.vsn, '2.0.0', 'supabase-js 2.109 defaults to vsn 2.0.0')
    const r = await listener(receiver, topic)
    const s = await listener(sender, topic)
    const status = await s.channel.send({ type: 'broadcast', event: 'cursor', payload: PAYLOAD })
    assert.equal(status, 'ok')
    const got = await r.inbox.next()
    assert.deepEqual(got, { type: 'broadcast', event: 'cursor', payload: PAYLOAD })
    await s.inbox.quiet(400, () => true, 'without self the sender gets no echo')
    assert.ok(
      frames.some((f) => f.dir === 'out' && f.binary && f.kind === 3),
      'the push left as a binary kind-3 frame',
    )
    assert.ok(
      receiverFrames.some((f) => f.dir === 'in' && f.binary && f.kind === 4),
      'a binary push arrives at a vsn 2.0.0 receiver as a kind-4 user broadcast',
    )
    assert.ok(
      receiverFrames.every((f) => f.dir === 'out' || !f.binary || f.kind === 4),
      'the server sends no binary frame of another kind (realtime-js cannot decode them)',
    )
  })

  test('event names are kept and listeners only get the events they asked for', async () => {
    const topic = uniq('bc-events')
    const receiver = anonClient()
    const inboxA = new Inbox('event a')
    const inboxAll = new Inbox('all')
    const ch = receiver
      .channel(topic)
      .on('broadcast', { event: 'a' }, inboxA.push)
      .on('broadcast', { event: '*' }, inboxAll.push)
    await subscribed(ch)
    const s = await listener(anonClient(), topic)
    await s.channel.send({ type: 'broadcast', event: 'b', payload: { i: 1 } })
    await s.channel.send({ type: 'broadcast', event: 'a', payload: { i: 2 } })
    assert.deepEqual((await inboxA.next()).payload, { i: 2 })
    const all = [await inboxAll.next(), await inboxAll.next()]
    assert.deepEqual(all.map((m) => m.event), ['b', 'a'], 'in the order sent')
    await inboxA.quiet(300, () => true, "the 'a' listener got nothing else")
  })

  test('self:true: the sender receives its own broadcast', async () => {
    const topic = uniq('bc-self')
    const s = await listener(anonClient(), topic, { config: { broadcast: { self: true } } })
    await s.channel.send({ type: 'broadcast', event: 'echo', payload: { me: 1 } })
    assert.deepEqual(await s.inbox.next(), { type: 'broadcast', event: 'echo', payload: { me: 1 } })
  })

  test('ack:true: send resolves ok once the server acknowledged', async () => {
    const topic = uniq('bc-ack')
    const r = await listener(anonClient(), topic)
    const s = await listener(anonClient(), topic, { config: { broadcast: { ack: true } } })
    const status = await within(12_000, s.channel.send({ type: 'broadcast', event: 'acked', payload: { k: 'v' } }), 'acked send')
    assert.equal(status, 'ok', 'the server replied ok to the binary push (a missing reply gives "timed out")')
    assert.deepEqual((await r.inbox.next()).payload, { k: 'v' })
    const v1 = await listener(anonClient({ realtime: { vsn: '1.0.0' } }), topic, { config: { broadcast: { ack: true } } })
    assert.equal(await v1.channel.send({ type: 'broadcast', event: 'acked', payload: { k: 'v1' } }), 'ok', 'vsn 1.0.0 ack')
    assert.deepEqual((await r.inbox.next()).payload, { k: 'v1' })
  })

  test('binary payloads travel as raw bytes between vsn 2.0.0 clients', async () => {
    const topic = uniq('bc-bin')
    const r = await listener(anonClient(), topic)
    const s = await listener(anonClient(), topic)
    const bytes = new Uint8Array([0, 1, 2, 250, 255, 128])
    await s.channel.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer })
    const got = await r.inbox.next()
    assert.equal(got.event, 'blob')
    assert.ok(got.payload instanceof ArrayBuffer, 'an ArrayBuffer arrives')
    assert.deepEqual([...new Uint8Array(got.payload)], [...bytes])
  })

  test('vsn 1.0.0 and vsn 2.0.0 clients exchange broadcasts both ways', async () => {
    const topic = uniq('bc-vsn')
    const v1frames = []
    const v1 = anonClient({ realtime: { vsn: '1.0.0', transport: tappedTransport(v1frames) } })
    assert.equal(v1.realtime.vsn, '1.0.0')
    const a = await listener(v1, topic)
    const b = await listener(anonClient(), topic)
    await a.channel.send({ type: 'broadcast', event: 'from-v1', payload: PAYLOAD })
    assert.deepEqual(await b.inbox.next(), { type: 'broadcast', event: 'from-v1', payload: PAYLOAD })
    await b.channel.send({ type: 'broadcast', event: 'from-v2', payload: PAYLOAD })
    assert.deepEqual(await a.inbox.next(), { type: 'broadcast', event: 'from-v2', payload: PAYLOAD })
    assert.ok(v1frames.every((f) => !f.binary), 'a vsn 1.0.0 socket carries text frames only')
    // Two vsn 1.0.0 clients.
    const c = await listener(anonClient({ realtime: { vsn: '1.0.0' } }), topic)
    await a.channel.send({ type: 'broadcast', event: 'v1-v1', payload: { ok: true } })
    assert.deepEqual((await c.inbox.next((m) => m.event === 'v1-v1')).payload, { ok: true })
  })

  test('httpSend (REST, per event) reaches vsn 2.0.0 and 1.0.0 subscribers', async () => {
    const topic = uniq('bc-http')
    const v2 = await listener(anonClient(), topic)
    const v1 = await listener(anonClient({ realtime: { vsn: '1.0.0' } }), topic)
    const sender = anonClient()
    const ch = sender.channel(topic)
    const res = await ch.httpSend('via-rest', { hello: 'rest', list: [1, 2] })
    assert.deepEqual(res, { success: true }, 'the endpoint answered 202')
    for (const inbox of [v2.inbox, v1.inbox]) {
      assert.deepEqual(await inbox.next(), { type: 'broadcast', event: 'via-rest', payload: { hello: 'rest', list: [1, 2] } })
    }
  })

  test('the batch endpoint POST /realtime/v1/api/broadcast delivers and answers 202', async () => {
    const topic = uniq('bc-batch')
    const other = uniq('bc-batch-other')
    const r = await listener(anonClient(), topic)
    const o = await listener(anonClient(), other)
    const res = await fetch(`${target.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: target.anonKey, Authorization: `Bearer ${target.anonKey}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        messages: [
          { topic, event: 'one', payload: { n: 1 } },
          { topic: other, event: 'two', payload: { n: 2 } },
        ],
      }),
    })
    assert.equal(res.status, 202)
    const one = await r.inbox.next()
    assert.equal(one.event, 'one')
    assert.deepEqual(one.payload, { n: 1 })
    assert.deepEqual((await o.inbox.next()).payload, { n: 2 })
    await r.inbox.quiet(300, () => true, 'each message goes to its own topic only')
  })

  test('the REST endpoints refuse a request without a valid key', async () => {
    const topic = uniq('bc-nokey')
    const none = await fetch(`${target.url}/realtime/v1/api/broadcast/${topic}/events/x`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    })
    assert.equal(none.status, 401)
    const bad = await fetch(`${target.url}/realtime/v1/api/broadcast`, {
      method: 'POST',
      headers: { apikey: 'not-a-key', Authorization: 'Bearer not-a-key', 'Content-Type': 'application/json' },
      body: JSON.stringify({ messages: [{ topic, event: 'x', payload: {} }] }),
    })
    assert.equal(bad.status, 401)
  })
})

describe('private broadcast (topics chat:<room_id>)', () => {
  let a
  let b
  let c
  let room

  before(async () => {
    ;[a, b, c] = await Promise.all([newUser('rt-a'), newUser('rt-b'), newUser('rt-c')])
    room = await newRoom(a, { members: [b] })
  })

  const topicOf = (r) => `chat:${r.id}`
  const priv = { private: true }

  test('members join and exchange broadcasts; a non-member is refused', async () => {
    const ra = await listener(a.client, topicOf(room), { config: priv })
    const rb = await listener(b.client, topicOf(room), { config: priv })
    await ra.channel.send({ type: 'broadcast', event: 'typing', payload: { user: a.id } })
    assert.deepEqual((await rb.inbox.next()).payload, { user: a.id })

    const err = await refused(c.client.channel(topicOf(room), { config: priv }))
    assert.match(err.message, /^Unauthorized/, `refusal reason names the code (got "${err.message}")`)
    await withUnrefTimers(() => c.client.removeAllChannels())

    // The same topic as a public channel is a different channel: it does not see private traffic.
    const pub = await listener(c.client, topicOf(room))
    await ra.channel.send({ type: 'broadcast', event: 'typing', payload: { again: true } })
    assert.deepEqual((await rb.inbox.next()).payload, { again: true })
    await pub.inbox.quiet(300, () => true, 'a public channel of the same name gets no private broadcast')
  })

  test('an anonymous client is refused a private channel', async () => {
    const err = await refused(anonClient().channel(topicOf(room), { config: priv }))
    assert.match(err.message, /^Unauthorized/)
  })

  test('joining the room grants the private channel', async () => {
    const r2 = await newRoom(a)
    const first = await refused(c.client.channel(topicOf(r2), { config: priv }))
    assert.match(first.message, /^Unauthorized/)
    await withUnrefTimers(() => c.client.removeAllChannels())
    const { error } = await c.client.from('room_members').insert({ room_id: r2.id, user_id: c.id, role: 'member' })
    noError(error)
    const rc = await listener(c.client, topicOf(r2), { config: priv })
    const ra = await listener(a.client, topicOf(r2), { config: { ...priv, broadcast: { ack: true } } })
    assert.equal(await ra.channel.send({ type: 'broadcast', event: 'welcome', payload: { to: c.id } }), 'ok')
    assert.deepEqual((await rc.inbox.next()).payload, { to: c.id })
  })

  test('httpSend to a private topic by a member reaches the members', async () => {
    const rb = await listener(b.client, topicOf(room), { config: priv })
    const res = await a.client.channel(topicOf(room), { config: priv }).httpSend('notice', { from: 'rest' })
    assert.deepEqual(res, { success: true })
    assert.deepEqual((await rb.inbox.next()).payload, { from: 'rest' })
  })
})
