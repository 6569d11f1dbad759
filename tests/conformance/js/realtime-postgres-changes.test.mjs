// Realtime postgres_changes as supabase-js uses it: bindings with filters, the ids in the join
// reply, row-level rules applied to every delivered change, token refresh while subscribed,
// and unsubscribe (protocol notes §1.8, §1.9, §4).
//
// A subscription is used once Realtime confirms it with a `system` "postgres_changes ok"
// message; a server that never sends one is given PG_READY_MS (default 1.5 s locally, 20 s on
// a real project) instead.

import { test, describe, before } from 'node:test'
import assert from 'node:assert/strict'

import {
  useBackend,
  noError,
  serviceClient,
  newUser,
  newRoom,
  postMessage,
  subscribed,
  Inbox,
  ok,
  uniq,
  within,
  withUnrefTimers,
} from './harness.mjs'

const target = await useBackend('realtime-postgres-changes')
const PG_READY_MS = Number(process.env.PG_READY_MS ?? (target.local ? 1_500 : 20_000))

/**
 * Subscribes `user` to `bindings` ({ name, event?, table, filter? }) on one channel. Each
 * delivered change lands in `inbox` tagged with the binding's name.
 */
async function watch(user, bindings, topic = uniq('pgc')) {
  const inbox = new Inbox(`${user.label}:${topic}`)
  const system = new Inbox('system')
  const channel = user.client.channel(topic)
  for (const b of bindings) {
    const filter = { event: b.event ?? '*', schema: 'public', table: b.table }
    if (b.filter) filter.filter = b.filter
    channel.on('postgres_changes', filter, (p) => inbox.push({ binding: b.name, ...p }))
  }
  channel.on('system', {}, system.push)
  await subscribed(channel)
  try {
    const msg = await system.next((m) => m.extension === 'postgres_changes', PG_READY_MS, 'subscription confirmed')
    assert.equal(msg.status, 'ok', `postgres_changes subscription failed: ${msg.message}`)
  } catch (e) {
    if (!/no result within/.test(e.message)) throw e
  }
  return { channel, inbox }
}

const ofType = (type, binding) => (e) => e.eventType === type && (!binding || e.binding === binding)

describe('chat_messages changes in one room', () => {
  let a
  let b
  let c
  let room

  before(async () => {
    ;[a, b, c] = await Promise.all([newUser('pg-a'), newUser('pg-b'), newUser('pg-c')])
    room = await newRoom(a, { members: [b] })
  })

  test('a member receives INSERT, UPDATE and DELETE with a room_id=eq filter', async () => {
    const w = await watch(a, [
      { name: 'all', table: 'chat_messages', filter: `room_id=eq.${room.id}` },
      { name: 'inserts', event: 'INSERT', table: 'chat_messages', filter: `room_id=eq.${room.id}` },
    ])
    const msg = await postMessage(b, room.id, 'hello realtime')

    const ins = await w.inbox.next(ofType('INSERT', 'all'), 10_000, 'the INSERT')
    assert.equal(ins.schema, 'public')
    assert.equal(ins.table, 'chat_messages')
    assert.ok(!Number.isNaN(Date.parse(ins.commit_timestamp)), 'commit_timestamp is a time')
    assert.equal(ins.errors, null)
    assert.deepEqual(ins.old, {})
    assert.equal(ins.new.id, msg.id)
    assert.equal(ins.new.room_id, room.id)
    assert.equal(ins.new.user_id, b.id)
    assert.equal(ins.new.content, 'hello realtime')
    assert.equal(ins.new.type, 'text')
    assert.equal(ins.new.reply_to, null)
    assert.equal(Date.parse(ins.new.created_at), Date.parse(msg.created_at), 'the stored row, server time included')
    await w.inbox.next(ofType('INSERT', 'inserts'), 10_000, 'the INSERT on the INSERT-only binding')

    ok(await b.client.from('chat_messages').update({ content: 'edited', edited_at: new Date().toISOString() }).eq('id', msg.id))
    const upd = await w.inbox.next(ofType('UPDATE', 'all'), 10_000, 'the UPDATE')
    assert.equal(upd.new.id, msg.id)
    assert.equal(upd.new.content, 'edited')
    assert.ok(upd.new.edited_at, 'edited_at is set')
    assert.equal(upd.old.id, msg.id, 'old carries at least the primary key')

    const svc = serviceClient()
    if (svc) {
      ok(await svc.from('chat_messages').delete().eq('id', msg.id))
      const del = await w.inbox.next(ofType('DELETE', 'all'), 10_000, 'the DELETE')
      assert.equal(del.old.id, msg.id)
      assert.deepEqual(del.new, {})
    }
    await w.inbox.quiet(300, (e) => e.binding === 'inserts', 'the INSERT-only binding got nothing else')
  })

  test('a subscriber who is not a member of the room receives nothing', async () => {
    const member = await watch(a, [{ name: 'room', table: 'chat_messages', filter: `room_id=eq.${room.id}` }])
    const outsider = await watch(c, [
      { name: 'room', table: 'chat_messages', filter: `room_id=eq.${room.id}` },
      { name: 'table', table: 'chat_messages' },
    ])
    const msg = await postMessage(b, room.id, 'members only')
    const got = await member.inbox.next(ofType('INSERT'), 10_000, 'the member gets it')
    assert.equal(got.new.id, msg.id)
    ok(await b.client.from('chat_messages').update({ content: 'members only!' }).eq('id', msg.id))
    await member.inbox.next(ofType('UPDATE'), 10_000, 'the member gets the UPDATE')
    await outsider.inbox.quiet(500, () => true, 'a non-member receives no change of the room')
  })

  test('joining the room starts the delivery (rules are applied per change)', async () => {
    const r2 = await newRoom(a)
    const w = await watch(c, [{ name: 'r2', table: 'chat_messages', filter: `room_id=eq.${r2.id}` }])
    const barrier = await watch(a, [{ name: 'r2', table: 'chat_messages', filter: `room_id=eq.${r2.id}` }])
    await postMessage(a, r2.id, 'before c joined')
    await barrier.inbox.next(ofType('INSERT'), 10_000, 'barrier')
    await w.inbox.quiet(300, () => true, 'c is not a member yet')
    ok(await c.client.from('room_members').insert({ room_id: r2.id, user_id: c.id, role: 'member' }))
    const msg = await postMessage(a, r2.id, 'after c joined')
    const got = await w.inbox.next(ofType('INSERT'), 10_000, 'c now receives')
    assert.equal(got.new.id, msg.id)
  })

  test('after a token refresh (realtime.setAuth) the subscriber keeps receiving', async () => {
    const w = await watch(a, [{ name: 'room', table: 'chat_messages', filter: `room_id=eq.${room.id}` }])
    await postMessage(b, room.id, 'before refresh')
    await w.inbox.next(ofType('INSERT'), 10_000, 'before refresh')
    const { data, error } = await a.client.auth.refreshSession()
    noError(error)
    assert.notEqual(data.session.access_token, a.session.access_token, 'a new access token')
    await within(5_000, a.client.realtime.setAuth(data.session.access_token), 'setAuth')
    a.session = data.session
    const msg = await postMessage(b, room.id, 'after refresh')
    const got = await w.inbox.next((e) => e.eventType === 'INSERT' && e.new.id === msg.id, 10_000, 'after refresh')
    assert.equal(got.new.content, 'after refresh')
    assert.equal(w.channel.state, 'joined', 'the channel stayed joined')
  })

  test('unsubscribe stops delivery', async () => {
    const w = await watch(a, [{ name: 'room', table: 'chat_messages', filter: `room_id=eq.${room.id}` }])
    const barrier = await watch(b, [{ name: 'room', table: 'chat_messages', filter: `room_id=eq.${room.id}` }])
    await postMessage(b, room.id, 'while subscribed')
    await w.inbox.next(ofType('INSERT'), 10_000, 'while subscribed')
    await barrier.inbox.next(ofType('INSERT'), 10_000, 'barrier while subscribed')
    assert.equal(await withUnrefTimers(() => a.client.removeChannel(w.channel)), 'ok')
    await postMessage(b, room.id, 'after unsubscribe')
    await barrier.inbox.next(ofType('INSERT'), 10_000, 'the other subscriber still gets it')
    await w.inbox.quiet(300, () => true, 'nothing after unsubscribe')
  })
})

describe('filter operators', () => {
  let a
  before(async () => {
    a = await newUser('pg-ops')
  })

  test('in on a uuid column', async () => {
    const [r1, r2, r3] = await Promise.all([newRoom(a), newRoom(a), newRoom(a)])
    const w = await watch(a, [{ name: 'in', event: 'INSERT', table: 'chat_messages', filter: `room_id=in.(${r1.id},${r2.id})` }])
    await postMessage(a, r3.id, 'r3')
    await postMessage(a, r1.id, 'r1')
    await postMessage(a, r2.id, 'r2')
    const got = [await w.inbox.next(), await w.inbox.next()].map((e) => e.new.content)
    assert.deepEqual(got, ['r1', 'r2'], 'in order, without r3')
    await w.inbox.quiet(300, () => true, 'nothing from the third room')
  })

  test('neq on a text column', async () => {
    const room = await newRoom(a)
    const w = await watch(a, [{ name: 'neq', event: 'INSERT', table: 'chat_messages', filter: 'content=neq.skip' }])
    await postMessage(a, room.id, 'skip')
    await postMessage(a, room.id, 'keep')
    assert.equal((await w.inbox.next()).new.content, 'keep')
    await w.inbox.quiet(300, () => true, "'skip' was filtered out")
  })

  test('eq neq gt gte lt lte in on an integer column, several bindings on one channel', async () => {
    const doc = ok(
      await a.client.from('collaborative_documents').insert({ title: uniq('doc'), created_by: a.id }).select().single(),
    )
    const ops = ['eq.7', 'neq.7', 'gt.5', 'gte.7', 'lt.5', 'lte.3', 'in.(3,10)']
    const w = await watch(
      a,
      ops.map((op) => ({ name: op, event: 'UPDATE', table: 'collaborative_documents', filter: `version=${op}` })),
    )
    for (const v of [3, 7, 10]) {
      ok(await a.client.from('collaborative_documents').update({ version: v }).eq('id', doc.id))
    }
    const expected = {
      'eq.7': [7],
      'neq.7': [3, 10],
      'gt.5': [7, 10],
      'gte.7': [7, 10],
      'lt.5': [3],
      'lte.3': [3],
      'in.(3,10)': [3, 10],
    }
    const total = Object.values(expected).reduce((n, l) => n + l.length, 0)
    for (let i = 0; i < total; i++) await w.inbox.next(() => true, 10_000, `change ${i + 1} of ${total}`)
    await w.inbox.quiet(300, () => true, 'no extra deliveries')
    for (const op of ops) {
      const got = w.inbox.items.filter((e) => e.binding === op).map((e) => e.new.version)
      assert.deepEqual(got, expected[op], `version=${op} (numeric comparison, values typed as numbers)`)
    }
    for (const e of w.inbox.items) assert.equal(e.new.id, doc.id)
  })

  test("drafts of others are not delivered; an open challenge is", async () => {
    const b = await newUser('pg-ops-b')
    const w = await watch(b, [{ name: 'by-a', event: 'INSERT', table: 'challenges', filter: `created_by=eq.${a.id}` }])
    const self = await watch(a, [{ name: 'mine', event: 'INSERT', table: 'challenges', filter: `created_by=eq.${a.id}` }])
    const t = uniq('pgch')
    ok(await a.client.from('challenges').insert({ title: `${t}-draft`, created_by: a.id, status: 'draft' }))
    ok(await a.client.from('challenges').insert({ title: `${t}-open`, created_by: a.id, status: 'open' }))
    assert.equal((await w.inbox.next()).new.title, `${t}-open`)
    const own = [await self.inbox.next(), await self.inbox.next()].map((e) => e.new.title)
    assert.deepEqual(own, [`${t}-draft`, `${t}-open`], 'the creator sees both')
    await w.inbox.quiet(300, () => true, 'the draft never reached b')
  })
})
