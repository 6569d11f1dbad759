// PostgREST (/rest/v1) as supabase-js uses it, on the platform data model (DESIGN.md):
// every filter and modifier the desktop app may send, writes with their representations,
// PostgREST error codes and HTTP statuses, and the row-level rules.
//
// Every query is scoped to rows this run made (a fresh user's challenges, fresh rooms), so the
// file also runs against a real project whose tables already hold rows.

import { test, describe, before } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'

import {
  useBackend,
  noError,
  anonClient,
  serviceClient,
  newUser,
  newRoom,
  postMessage,
  ok,
  expectPgError,
  uniq,
} from './harness.mjs'

await useBackend('rest')

// ---------------------------------------------------------------------------------------------
// Filters and modifiers, on five challenges of one fresh user

describe('filters and modifiers on challenges', () => {
  let a
  let tag
  const byName = {}
  const short = (rows) => rows.map((r) => r.title.slice(tag.length + 1))
  const sorted = (rows) => short(rows).sort()
  const mine = (q) => q.eq('created_by', a.id)

  before(async () => {
    a = await newUser('filters')
    tag = uniq('ch')
    const rows = [
      { title: `${tag} alpha`, status: 'open', deadline: '2030-01-01T00:00:00Z', description: 'Solar' },
      { title: `${tag} beta`, status: 'judging', deadline: null, description: 'solar panels' },
      { title: `${tag} gamma`, status: 'closed', deadline: '2029-06-01T00:00:00Z', description: 'wind' },
      { title: `${tag} delta`, status: 'draft', deadline: '2031-01-01T00:00:00Z', description: 'Water, (clean)' },
      { title: `${tag} epsilon`, status: 'open', deadline: null, description: 'geo "thermal"' },
    ].map((r) => ({ ...r, created_by: a.id }))
    const res = await a.client.from('challenges').insert(rows).select()
    assert.equal(res.status, 201, 'insert of many returns 201')
    const data = ok(res, 'insert challenges')
    assert.equal(data.length, 5, 'representation has every inserted row')
    for (const r of data) byName[r.title.slice(tag.length + 1)] = r
  })

  const q = () => mine(a.client.from('challenges').select('*'))

  test('eq and neq', async () => {
    assert.deepEqual(sorted(ok(await q().eq('status', 'open'))), ['alpha', 'epsilon'])
    assert.deepEqual(sorted(ok(await q().neq('status', 'open'))), ['beta', 'delta', 'gamma'])
  })

  test('gt gte lt lte on a timestamptz (NULLs never match)', async () => {
    assert.deepEqual(sorted(ok(await q().gt('deadline', '2030-01-01T00:00:00Z'))), ['delta'])
    assert.deepEqual(sorted(ok(await q().gte('deadline', '2030-01-01T00:00:00Z'))), ['alpha', 'delta'])
    // `+00:00` travels as %2B: it must not be read as a space.
    assert.deepEqual(sorted(ok(await q().lt('deadline', '2030-01-01T00:00:00+00:00'))), ['gamma'])
    assert.deepEqual(sorted(ok(await q().lte('deadline', '2030-01-01 00:00:00+00'))), ['alpha', 'gamma'])
  })

  test('like is case-sensitive, ilike is not; * works as the wildcard too', async () => {
    assert.deepEqual(sorted(ok(await q().like('description', 'Solar%'))), ['alpha'])
    assert.deepEqual(sorted(ok(await q().ilike('description', 'SOLAR%'))), ['alpha', 'beta'])
    assert.deepEqual(sorted(ok(await q().like('title', `${tag} *ta`))), ['beta', 'delta'])
    assert.deepEqual(sorted(ok(await q().like('title', `${tag} %a`))), ['alpha', 'beta', 'delta', 'gamma'])
  })

  test('in, with values that need quoting', async () => {
    assert.deepEqual(sorted(ok(await q().in('status', ['open', 'closed']))), ['alpha', 'epsilon', 'gamma'])
    assert.deepEqual(sorted(ok(await q().in('description', ['Water, (clean)', 'wind']))), ['delta', 'gamma'])
    assert.deepEqual(ok(await q().in('status', [])), [], 'an empty list matches nothing')
  })

  test('is null / not is null', async () => {
    assert.deepEqual(sorted(ok(await q().is('deadline', null))), ['beta', 'epsilon'])
    assert.deepEqual(sorted(ok(await q().not('deadline', 'is', null))), ['alpha', 'delta', 'gamma'])
  })

  test('not with eq, in and like', async () => {
    assert.deepEqual(sorted(ok(await q().not('status', 'eq', 'open'))), ['beta', 'delta', 'gamma'])
    assert.deepEqual(sorted(ok(await q().not('status', 'in', '(open,closed)'))), ['beta', 'delta'])
    assert.deepEqual(sorted(ok(await q().not('description', 'ilike', '%solar%'))), ['delta', 'epsilon', 'gamma'])
  })

  test('or, including nested and/or', async () => {
    assert.deepEqual(sorted(ok(await q().or('status.eq.draft,deadline.is.null'))), ['beta', 'delta', 'epsilon'])
    assert.deepEqual(
      sorted(ok(await q().or('status.eq.closed,and(status.eq.open,deadline.is.null)'))),
      ['epsilon', 'gamma'],
    )
    assert.deepEqual(
      sorted(ok(await q().or('and(status.eq.open,or(deadline.is.null,description.eq.Solar)),status.eq.judging'))),
      ['alpha', 'beta', 'epsilon'],
    )
    assert.deepEqual(sorted(ok(await q().or('status.in.(draft,judging),description.like.wi*'))), ['beta', 'delta', 'gamma'])
    // or combined with a plain filter is an AND of both.
    assert.deepEqual(sorted(ok(await q().eq('status', 'open').or('deadline.is.null,description.eq.wind'))), ['epsilon'])
    assert.deepEqual(sorted(ok(await q().or('status.not.eq.open,deadline.is.null'))), ['beta', 'delta', 'epsilon', 'gamma'])
  })

  test('match and filter', async () => {
    assert.deepEqual(sorted(ok(await q().match({ status: 'open', description: 'Solar' }))), ['alpha'])
    assert.deepEqual(sorted(ok(await q().filter('status', 'in', '(judging,draft)'))), ['beta', 'delta'])
  })

  test('order by several columns, NULL placement', async () => {
    assert.deepEqual(
      short(ok(await q().order('status').order('title', { ascending: false }))),
      ['gamma', 'delta', 'beta', 'epsilon', 'alpha'],
    )
    // ascending puts NULLs last by default, descending puts them first (as Postgres does)
    assert.deepEqual(short(ok(await q().order('deadline').order('title'))), ['gamma', 'alpha', 'delta', 'beta', 'epsilon'])
    assert.deepEqual(
      short(ok(await q().order('deadline', { ascending: false }).order('title'))),
      ['beta', 'epsilon', 'delta', 'alpha', 'gamma'],
    )
    assert.deepEqual(
      short(ok(await q().order('deadline', { ascending: true, nullsFirst: true }).order('title'))),
      ['beta', 'epsilon', 'gamma', 'alpha', 'delta'],
    )
    assert.deepEqual(
      short(ok(await q().order('deadline', { ascending: false, nullsFirst: false }).order('title'))),
      ['delta', 'alpha', 'gamma', 'beta', 'epsilon'],
    )
  })

  test('limit and range', async () => {
    assert.deepEqual(short(ok(await q().order('title').limit(2))), ['alpha', 'beta'])
    const r = await q().order('title').range(1, 3)
    assert.deepEqual(short(ok(r)), ['beta', 'delta', 'epsilon'])
    assert.deepEqual(short(ok(await q().order('title').range(4, 10))), ['gamma'])
    assert.deepEqual(ok(await q().order('title').range(5, 9)), [], 'a range past the end is empty')
  })

  test('select a subset of columns, with an alias', async () => {
    const rows = ok(await mine(a.client.from('challenges').select('id,title')).eq('status', 'closed'))
    assert.deepEqual(rows, [{ id: byName.gamma.id, title: `${tag} gamma` }])
    const aliased = ok(await mine(a.client.from('challenges').select('name:title')).eq('status', 'closed'))
    assert.deepEqual(aliased, [{ name: `${tag} gamma` }])
  })

  test('count exact, with and without head', async () => {
    const r = await mine(a.client.from('challenges').select('*', { count: 'exact' })).order('title').limit(2)
    noError(r.error)
    assert.equal(r.count, 5, 'count is the total, not the page')
    assert.equal(r.data.length, 2)
    const h = await mine(a.client.from('challenges').select('*', { count: 'exact', head: true })).eq('status', 'open')
    noError(h.error)
    assert.equal(h.status, 200)
    assert.equal(h.count, 2)
    assert.equal(h.data, null, 'HEAD has no body')
  })

  test('single and maybeSingle', async () => {
    const one = await q().eq('title', `${tag} alpha`).single()
    noError(one.error)
    assert.equal(one.data.id, byName.alpha.id, 'single returns the object, not an array')
    const none = await q().eq('title', `${tag} zeta`).single()
    expectPgError(none, 406, 'PGRST116', 'single() of no row')
    const many = await q().eq('status', 'open').single()
    expectPgError(many, 406, 'PGRST116', 'single() of two rows')
    const maybeNone = await q().eq('title', `${tag} zeta`).maybeSingle()
    noError(maybeNone.error)
    assert.equal(maybeNone.data, null)
    const maybeOne = await q().eq('title', `${tag} beta`).maybeSingle()
    noError(maybeOne.error)
    assert.equal(maybeOne.data.id, byName.beta.id)
  })

  test('rows come back with their types: timestamps, nulls, server defaults', async () => {
    const row = ok(await q().eq('title', `${tag} alpha`).single())
    assert.equal(new Date(row.deadline).toISOString(), '2030-01-01T00:00:00.000Z')
    assert.equal(row.created_by, a.id)
    assert.ok(!Number.isNaN(Date.parse(row.created_at)), 'created_at is a timestamp')
    assert.ok(!Number.isNaN(Date.parse(row.updated_at)), 'updated_at is a timestamp')
    const beta = ok(await q().eq('title', `${tag} beta`).single())
    assert.equal(beta.deadline, null)
  })
})

// ---------------------------------------------------------------------------------------------
// Writes

describe('writes and their representations', () => {
  let a

  before(async () => {
    a = await newUser('writes')
  })

  test('insert one without select returns 201 and no body; server fills defaults', async () => {
    const id = randomUUID()
    const r = await a.client.from('challenges').insert({ id, title: uniq('plain'), created_by: a.id })
    noError(r.error)
    assert.equal(r.status, 201)
    assert.equal(r.data, null, 'return=minimal has no body')
    const row = ok(await a.client.from('challenges').select().eq('id', id).single())
    assert.equal(row.status, 'draft', 'status defaults to draft')
    assert.equal(row.description, '', 'description defaults to empty')
  })

  test('insert with select returns the stored row, with client-made and server-made ids', async () => {
    const id = randomUUID()
    const row = ok(await a.client.from('challenges').insert({ id, title: 'x', created_by: a.id }).select().single())
    assert.equal(row.id, id, 'a client-made id is kept')
    const auto = ok(await a.client.from('challenges').insert({ title: 'y', created_by: a.id }).select('id,title').single())
    assert.match(auto.id, /^[0-9a-f-]{36}$/, 'the server makes an id when none is sent')
    assert.deepEqual(Object.keys(auto).sort(), ['id', 'title'])
  })

  test('insert many returns every row in order', async () => {
    const t = uniq('many')
    const rows = ok(
      await a.client
        .from('challenges')
        .insert([1, 2, 3].map((n) => ({ title: `${t}-${n}`, created_by: a.id, status: 'open' })))
        .select('title,status'),
    )
    assert.deepEqual(rows, [1, 2, 3].map((n) => ({ title: `${t}-${n}`, status: 'open' })))
  })

  test('merge-upsert is refused (42501) whenever its SET would touch a column without UPDATE grant', async () => {
    // PostgREST's ON CONFLICT DO UPDATE sets every column of the payload, the conflict keys
    // included (`SET id = EXCLUDED.id, ...`), and Postgres checks the UPDATE privilege of each
    // SET column even when no row conflicts. The data model grants UPDATE on no key column (to
    // users: only their editable columns; to service_role: every non-key column), so a
    // merge-upsert is refused for everyone; clients retry with ignore-duplicates instead.
    const id = randomUUID()
    ok(await a.client.from('challenges').insert({ id, title: 'keep', created_by: a.id }), 'first insert')
    expectPgError(
      await a.client.from('challenges').upsert({ id, title: 'changed', created_by: a.id }, { onConflict: 'id' }).select(),
      403,
      '42501',
      'merge-upsert of an existing challenge',
    )
    expectPgError(
      await a.client.from('challenges').upsert({ id: randomUUID(), title: 'new', created_by: a.id }).select(),
      403,
      '42501',
      'merge-upsert of a new challenge',
    )
    const room = await newRoom(a)
    expectPgError(
      await a.client
        .from('room_members')
        .upsert({ room_id: room.id, user_id: a.id, role: 'admin', last_read_at: '2030-01-01T00:00:00Z' }, { onConflict: 'room_id,user_id' }),
      403,
      '42501',
      'merge-upsert on a composite key (the key columns are in the SET)',
    )
    const svc = serviceClient()
    if (svc) {
      expectPgError(
        await svc.from('challenges').upsert({ id, title: 'svc', created_by: a.id }, { onConflict: 'id' }).select(),
        403,
        '42501',
        'merge-upsert by the service role (no UPDATE grant on id either)',
      )
    }
    assert.equal(ok(await a.client.from('challenges').select('title').eq('id', id).single()).title, 'keep', 'nothing changed')
    const fresh = randomUUID()
    const inserted = ok(
      await a.client.from('challenges').upsert({ id: fresh, title: 'new', created_by: a.id }, { ignoreDuplicates: true }).select(),
    )
    assert.deepEqual(inserted.map((r) => r.id), [fresh], 'an ignore-duplicates upsert of a new key inserts')
  })

  test('upsert with ignoreDuplicates makes a retried insert idempotent', async () => {
    const room = await newRoom(a)
    const msg = { id: randomUUID(), room_id: room.id, user_id: a.id, content: 'once' }
    const first = ok(await a.client.from('chat_messages').upsert(msg, { onConflict: 'id', ignoreDuplicates: true }).select())
    assert.equal(first.length, 1, 'first send inserts')
    const retry = ok(
      await a.client.from('chat_messages').upsert({ ...msg, content: 'changed' }, { onConflict: 'id', ignoreDuplicates: true }).select(),
    )
    assert.deepEqual(retry, [], 'the retry inserts nothing and returns no row')
    const rows = ok(await a.client.from('chat_messages').select('id,content').eq('room_id', room.id))
    assert.deepEqual(rows, [{ id: msg.id, content: 'once' }], 'still one message, unchanged')
    const batch = ok(
      await a.client
        .from('chat_messages')
        .upsert(
          [msg, { id: randomUUID(), room_id: room.id, user_id: a.id, content: 'twice' }],
          { onConflict: 'id', ignoreDuplicates: true },
        )
        .select('content'),
    )
    assert.deepEqual(batch, [{ content: 'twice' }], 'only the new row of a batch is inserted')
  })

  test('update: 204 without select, the changed rows with select, updated_at moves', async () => {
    const row = ok(await a.client.from('challenges').insert({ title: 'u0', created_by: a.id }).select().single())
    const plain = await a.client.from('challenges').update({ title: 'u1' }).eq('id', row.id)
    noError(plain.error)
    assert.equal(plain.status, 204)
    await new Promise((r) => setTimeout(r, 5))
    const changed = ok(await a.client.from('challenges').update({ title: 'u2', status: 'open' }).eq('id', row.id).select())
    assert.equal(changed.length, 1)
    assert.equal(changed[0].title, 'u2')
    assert.equal(changed[0].status, 'open')
    assert.ok(Date.parse(changed[0].updated_at) > Date.parse(row.updated_at), 'updated_at is touched')
    assert.equal(changed[0].created_at, row.created_at, 'created_at is not')
    const nothing = ok(await a.client.from('challenges').update({ title: 'u3' }).eq('id', randomUUID()).select())
    assert.deepEqual(nothing, [], 'an update matching no row returns an empty list')
  })

  test('delete: 204 without select, the deleted rows with select', async () => {
    const t = uniq('del')
    const rows = ok(
      await a.client.from('challenges').insert([{ title: `${t}-1`, created_by: a.id }, { title: `${t}-2`, created_by: a.id }]).select(),
    )
    const plain = await a.client.from('challenges').delete().eq('id', rows[0].id)
    noError(plain.error)
    assert.equal(plain.status, 204)
    const gone = ok(await a.client.from('challenges').delete().eq('id', rows[1].id).select('id,title'))
    assert.deepEqual(gone, [{ id: rows[1].id, title: `${t}-2` }])
    assert.deepEqual(ok(await a.client.from('challenges').select('id').like('title', `${t}-%`)), [])
  })

  test('rpc get_live_metrics returns the four counters', async () => {
    const r = await a.client.rpc('get_live_metrics')
    noError(r.error)
    assert.equal(r.status, 200)
    const m = Array.isArray(r.data) ? r.data[0] : r.data
    for (const k of ['active_users', 'total_challenges', 'new_submissions', 'online_users']) {
      assert.equal(typeof m[k], 'number', `${k} is a number`)
      assert.ok(m[k] >= 0, `${k} is not negative`)
    }
    assert.ok(m.total_challenges >= 1, 'this run made challenges')
  })
})

// ---------------------------------------------------------------------------------------------
// Errors

describe('errors carry PostgREST codes and statuses', () => {
  let a
  let b

  before(async () => {
    ;[a, b] = await Promise.all([newUser('err-a'), newUser('err-b')])
  })

  test('duplicate key: 23505 / 409', async () => {
    const id = randomUUID()
    ok(await a.client.from('challenges').insert({ id, title: 'one', created_by: a.id }))
    const r = await a.client.from('challenges').insert({ id, title: 'two', created_by: a.id }).select()
    expectPgError(r, 409, '23505', 'duplicate id')
    const row = ok(await a.client.from('challenges').select('title').eq('id', id).single())
    assert.equal(row.title, 'one', 'the failed insert changed nothing')
  })

  test('a batch with one bad row writes nothing', async () => {
    const t = uniq('atomic')
    const r = await a.client
      .from('challenges')
      .insert([{ title: `${t}-ok`, created_by: a.id, status: 'open' }, { title: `${t}-bad`, created_by: a.id, status: 'bogus' }])
    expectPgError(r, 400, '23514', 'check violation in a batch')
    // A key missing from one row of a batch is NULL there, not its default (PostgREST's
    // `columns` are the union of the rows' keys).
    const r2 = await a.client.from('challenges').insert([{ title: `${t}-a`, created_by: a.id }, { title: `${t}-b`, created_by: a.id, status: 'open' }])
    expectPgError(r2, 400, '23502', 'a missing status in a batch is NULL')
    assert.deepEqual(ok(await a.client.from('challenges').select('id').like('title', `${t}%`)), [])
  })

  test('row-level security on insert: 42501 / 403 for a user, 401 for anon', async () => {
    const r = await a.client.from('challenges').insert({ title: 'forged', created_by: b.id })
    expectPgError(r, 403, '42501', 'insert as someone else')
    const anon = await anonClient().from('challenges').insert({ title: 'anon', created_by: a.id })
    expectPgError(anon, 401, '42501', 'anonymous insert')
  })

  test('invalid input syntax: 22P02 / 400', async () => {
    expectPgError(await a.client.from('challenges').select().eq('id', 'not-a-uuid'), 400, '22P02', 'uuid filter')
    expectPgError(
      await a.client.from('challenges').insert({ title: 'x', created_by: a.id, deadline: 'someday' }),
      400,
      '22007',
      'bad timestamp',
    )
  })

  test('check, not-null and foreign-key violations: 23514 / 23502 / 23503', async () => {
    expectPgError(await a.client.from('challenges').insert({ title: 'x', created_by: a.id, status: 'bogus' }), 400, '23514', 'status check')
    expectPgError(await a.client.from('challenges').insert({ created_by: a.id }), 400, '23502', 'missing title')
    expectPgError(
      await a.client.from('chat_rooms').insert({ name: 'x', created_by: a.id, challenge_id: randomUUID() }),
      409,
      '23503',
      'unknown challenge',
    )
  })

  test('unknown column, table, function and operator', async () => {
    expectPgError(await a.client.from('challenges').select('nope'), 400, '42703', 'unknown column')
    expectPgError(await a.client.from('no_such_table').select(), 404, ['PGRST205', '42P01'], 'unknown table')
    expectPgError(await a.client.rpc('no_such_function'), 404, 'PGRST202', 'unknown function')
    expectPgError(await a.client.from('challenges').select().filter('status', 'bogusop', 'x'), 400, 'PGRST100', 'unknown operator')
  })

  test('a column users may not change: 42501', async () => {
    const room = await newRoom(a)
    const other = await newRoom(a)
    const msg = await postMessage(a, room.id, 'stay')
    const r = await a.client.from('chat_messages').update({ room_id: other.id }).eq('id', msg.id)
    expectPgError(r, 403, '42501', 'moving a message to another room')
  })
})

// ---------------------------------------------------------------------------------------------
// Row-level rules

describe('row-level rules', () => {
  let a
  let b
  let c

  before(async () => {
    ;[a, b, c] = await Promise.all([newUser('rls-a'), newUser('rls-b'), newUser('rls-c')])
  })

  test("a user cannot read another's direct room or its messages until added", async () => {
    const room = await newRoom(a, { kind: 'direct' })
    const msg = await postMessage(a, room.id, 'private words')
    assert.deepEqual(ok(await b.client.from('chat_rooms').select('id').eq('id', room.id)), [], 'the direct room is hidden')
    assert.deepEqual(ok(await b.client.from('chat_messages').select('id').eq('room_id', room.id)), [], 'its messages are hidden')
    assert.deepEqual(ok(await b.client.from('room_members').select('user_id').eq('room_id', room.id)), [], 'its members are hidden')
    expectPgError(
      await b.client.from('chat_messages').insert({ room_id: room.id, user_id: b.id, content: 'intrude' }),
      403,
      '42501',
      'posting into a room one is not in',
    )
    expectPgError(
      await b.client.from('room_members').insert({ room_id: room.id, user_id: b.id, role: 'member' }),
      403,
      '42501',
      'joining a direct room oneself',
    )
    const edit = ok(await b.client.from('chat_messages').update({ content: 'hacked' }).eq('id', msg.id).select())
    assert.deepEqual(edit, [], "another user's message cannot be edited (no row matches)")

    ok(await a.client.from('room_members').insert({ room_id: room.id, user_id: b.id }), 'the admin adds b')
    const seen = ok(await b.client.from('chat_messages').select('id,content').eq('room_id', room.id))
    assert.deepEqual(seen, [{ id: msg.id, content: 'private words' }], 'a member reads the messages')
    assert.deepEqual(ok(await c.client.from('chat_messages').select('id').eq('room_id', room.id)), [], 'c still sees nothing')
  })

  test('public channels: visible to all, messages only to members, self-join only as member', async () => {
    const room = await newRoom(a)
    await postMessage(a, room.id, 'hello channel')
    assert.equal(ok(await b.client.from('chat_rooms').select('id').eq('id', room.id)).length, 1, 'a channel is listed')
    assert.deepEqual(ok(await b.client.from('chat_messages').select('id').eq('room_id', room.id)), [])
    expectPgError(
      await b.client.from('room_members').insert({ room_id: room.id, user_id: b.id, role: 'admin' }),
      403,
      '42501',
      'self-join as admin',
    )
    expectPgError(
      await b.client.from('room_members').insert({ room_id: room.id, user_id: c.id }),
      403,
      '42501',
      'adding someone else without being admin',
    )
    ok(await b.client.from('room_members').insert({ room_id: room.id, user_id: b.id, role: 'member' }), 'self-join as member')
    assert.equal(ok(await b.client.from('chat_messages').select('id').eq('room_id', room.id)).length, 1)
    const mine = await postMessage(b, room.id, 'hi from b')
    const edited = ok(
      await b.client.from('chat_messages').update({ content: 'hi from b (edited)', edited_at: new Date().toISOString() }).eq('id', mine.id).select(),
    )
    assert.equal(edited[0].content, 'hi from b (edited)', 'own message can be edited')
    expectPgError(
      await b.client.from('chat_messages').insert({ room_id: room.id, user_id: a.id, content: 'as a' }),
      403,
      '42501',
      'posting as someone else',
    )
  })

  test('reactions: members react once per emoji; non-members see none', async () => {
    const room = await newRoom(a, { members: [b] })
    const msg = await postMessage(a, room.id, 'react to me')
    ok(await b.client.from('message_reactions').insert({ message_id: msg.id, user_id: b.id, emoji: '👍' }), 'react')
    expectPgError(
      await b.client.from('message_reactions').insert({ message_id: msg.id, user_id: b.id, emoji: '👍' }),
      409,
      '23505',
      'the same reaction twice',
    )
    expectPgError(
      await c.client.from('message_reactions').insert({ message_id: msg.id, user_id: c.id, emoji: '👍' }),
      403,
      '42501',
      'a non-member reacting',
    )
    assert.equal(ok(await a.client.from('message_reactions').select('emoji').eq('message_id', msg.id)).length, 1)
    assert.deepEqual(ok(await c.client.from('message_reactions').select('emoji').eq('message_id', msg.id)), [])
    const removed = ok(await b.client.from('message_reactions').delete().eq('message_id', msg.id).eq('user_id', b.id).select())
    assert.equal(removed.length, 1, 'own reaction removed')
  })

  test('drafts are visible only to their creator; anon sees nothing', async () => {
    const t = uniq('vis')
    const [draft, open] = ok(
      await a.client
        .from('challenges')
        .insert([
          { title: `${t}-draft`, created_by: a.id, status: 'draft' },
          { title: `${t}-open`, created_by: a.id, status: 'open' },
        ])
        .select(),
    )
    assert.deepEqual(ok(await a.client.from('challenges').select('id').eq('id', draft.id)), [{ id: draft.id }])
    assert.deepEqual(ok(await b.client.from('challenges').select('id').eq('id', draft.id)), [], "b cannot see a's draft")
    assert.deepEqual(ok(await b.client.from('challenges').select('id').eq('id', open.id)), [{ id: open.id }])
    assert.deepEqual(ok(await b.client.from('challenges').update({ title: 'mine now' }).eq('id', open.id).select()), [])
    assert.deepEqual(ok(await b.client.from('challenges').delete().eq('id', open.id).select()), [])
    const anon = anonClient()
    assert.deepEqual(ok(await anon.from('challenges').select('id').like('title', `${t}%`)), [], 'anon sees no challenge')
    assert.deepEqual(ok(await anon.from('profiles').select('id').eq('id', a.id)), [], 'anon sees no profile')
    const head = await anon.from('challenges').select('*', { count: 'exact', head: true })
    assert.equal(head.count, 0, 'anon counts nothing')
    const svc = serviceClient()
    if (svc) {
      assert.deepEqual(ok(await svc.from('challenges').select('id').eq('id', draft.id)), [{ id: draft.id }], 'service role bypasses')
    }
  })

  test('submissions: submitter and challenge creator read them; only the creator sets status', async () => {
    const [open, closed] = ok(
      await a.client
        .from('challenges')
        .insert([
          { title: uniq('sub-open'), created_by: a.id, status: 'open' },
          { title: uniq('sub-closed'), created_by: a.id, status: 'closed' },
        ])
        .select(),
    )
    const sub = ok(
      await b.client.from('challenge_submissions').insert({ challenge_id: open.id, user_id: b.id, title: 'my idea' }).select().single(),
    )
    assert.equal(sub.status, 'submitted')
    expectPgError(
      await b.client.from('challenge_submissions').insert({ challenge_id: closed.id, user_id: b.id, title: 'late' }),
      403,
      '42501',
      'submitting to a closed challenge',
    )
    assert.equal(ok(await a.client.from('challenge_submissions').select('id').eq('id', sub.id)).length, 1, 'creator sees it')
    assert.deepEqual(ok(await c.client.from('challenge_submissions').select('id').eq('id', sub.id)), [], 'others do not')
    assert.deepEqual(
      ok(await b.client.from('challenge_submissions').update({ status: 'accepted' }).eq('id', sub.id).select()),
      [],
      'the submitter cannot accept itself',
    )
    const accepted = ok(await a.client.from('challenge_submissions').update({ status: 'accepted' }).eq('id', sub.id).select())
    assert.equal(accepted[0].status, 'accepted')
  })

  test('documents: members read, editors write updates, viewers do not', async () => {
    const doc = ok(await a.client.from('collaborative_documents').insert({ title: uniq('doc'), created_by: a.id }).select().single())
    assert.equal(doc.version, 0, 'version starts at 0 (an integer)')
    assert.deepEqual(ok(await b.client.from('collaborative_documents').select('id').eq('id', doc.id)), [])
    ok(await a.client.from('document_members').insert({ document_id: doc.id, user_id: b.id, role: 'viewer' }), 'add viewer')
    assert.equal(ok(await b.client.from('collaborative_documents').select('id').eq('id', doc.id)).length, 1, 'viewer reads')
    const update = { id: randomUUID(), document_id: doc.id, user_id: b.id, update: 'AQID' }
    expectPgError(await b.client.from('document_updates').insert(update), 403, '42501', 'viewer writing an update')
    ok(await a.client.from('document_members').update({ role: 'editor' }).eq('document_id', doc.id).eq('user_id', b.id), 'promote')
    const u1 = ok(await b.client.from('document_updates').insert(update).select().single())
    const u2 = ok(
      await a.client.from('document_updates').insert({ id: randomUUID(), document_id: doc.id, user_id: a.id, update: 'BAUG' }).select().single(),
    )
    assert.equal(typeof u1.seq, 'number', 'seq is a number')
    assert.ok(u2.seq > u1.seq, 'seq grows')
    const after = ok(await b.client.from('document_updates').select('seq,id').eq('document_id', doc.id).gt('seq', u1.seq))
    assert.deepEqual(after, [{ seq: u2.seq, id: u2.id }], 'catch-up by seq > last seen')
    assert.deepEqual(ok(await c.client.from('document_updates').select('seq').eq('document_id', doc.id)), [], 'non-members see none')
    const bumped = ok(await b.client.from('collaborative_documents').update({ version: 7, last_modified_by: b.id }).eq('id', doc.id).select())
    assert.equal(bumped[0].version, 7)
    assert.equal(ok(await b.client.from('collaborative_documents').select('id').eq('id', doc.id).gt('version', 5)).length, 1)
    assert.deepEqual(ok(await b.client.from('collaborative_documents').select('id').eq('id', doc.id).lt('version', 5)), [])
  })
})
