// Conformance harness: where the backend comes from, how clients are made, and small
// bounded-wait helpers shared by every scenario file.
//
// Target selection (read once per test file / process):
// - SUPABASE_URL + SUPABASE_ANON_KEY (+ SUPABASE_SERVICE_ROLE_KEY): a real Supabase project.
//   Email confirmation must be off (sign-up has to return a session); rows persist between
//   runs, so every scenario makes its own users, rooms, challenges and documents with unique
//   names and never assumes a clean database.
// - otherwise: spawn `ruwad-server` (RUWAD_SERVER_BIN, default <repo>/target/debug/ruwad-server)
//   on 127.0.0.1:0 with a fresh temporary data dir, read its one JSON ready line, and stop it
//   with SIGTERM (then wait; SIGKILL after 10 s) when the file's tests are done. Its log goes
//   to RUWAD_CONFORMANCE_LOG_DIR/js-<file>.server.log when that is set, else into the data
//   dir, which is removed afterwards unless RUWAD_KEEP_DATA=1.
//
// Every wait is bounded; every realtime client made here is cleaned up after each test
// (removeAllChannels), and the server is stopped after the file.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { after, afterEach } from 'node:test'
import assert from 'node:assert/strict'

import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws'

const here = path.dirname(fileURLToPath(import.meta.url))
export const repoRoot = path.resolve(here, '..', '..', '..')

/** Unique per process, so names made by concurrent or repeated runs never collide. */
export const RUN = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
let counter = 0
/** A name unique to this run: `<label>-<run>-<n>`. */
export function uniq(label) {
  counter += 1
  return `${label}-${RUN}-${counter}`
}

const EMAIL_DOMAIN = process.env.CONFORMANCE_EMAIL_DOMAIN || 'example.com'

// ---------------------------------------------------------------------------------------------
// The target

async function startLocalServer(label) {
  const bin = process.env.RUWAD_SERVER_BIN
    ? path.resolve(process.env.RUWAD_SERVER_BIN)
    : path.join(repoRoot, 'target', 'debug', 'ruwad-server')
  if (!fs.existsSync(bin)) {
    throw new Error(
      `ruwad-server not found at ${bin}: build it (cargo build -p ruwad-server) or set RUWAD_SERVER_BIN, ` +
        'or point SUPABASE_URL / SUPABASE_ANON_KEY at a real project',
    )
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ruwad-conformance-'))
  const logDir = process.env.RUWAD_CONFORMANCE_LOG_DIR
  if (logDir) fs.mkdirSync(logDir, { recursive: true })
  const logPath = logDir ? path.join(logDir, `js-${label}.server.log`) : path.join(dataDir, 'server.log')
  const log = fs.openSync(logPath, 'w')
  const child = spawn(bin, ['--addr', '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', log],
    env: { RUST_LOG: 'info', ...process.env },
  })
  // If this process dies without running its hooks, do not leave the server behind.
  const killOnExit = () => child.kill('SIGKILL')
  process.on('exit', killOnExit)

  const ready = await new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => fail(new Error('ruwad-server printed no ready line within 30 s')), 30_000)
    function fail(err) {
      clearTimeout(timer)
      child.kill('SIGKILL')
      let tail = ''
      try {
        tail = fs.readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n')
      } catch {}
      reject(new Error(`${err.message}\n--- server log (${logPath}) ---\n${tail}`))
    }
    child.on('error', fail)
    child.on('exit', (code, sig) => fail(new Error(`ruwad-server exited early (code ${code}, signal ${sig})`)))
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      child.removeAllListeners('error')
      try {
        resolve(JSON.parse(buf.slice(0, nl)))
      } catch (e) {
        fail(new Error(`ruwad-server ready line is not JSON: ${buf.slice(0, nl)}`))
      }
    })
  })
  for (const k of ['url', 'anon_key', 'service_role_key']) {
    assert.equal(typeof ready[k], 'string', `the ready line carries "${k}"`)
  }

  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(t)
    }
    process.off('exit', killOnExit)
    fs.closeSync(log)
    if (process.env.RUWAD_KEEP_DATA !== '1') fs.rmSync(dataDir, { recursive: true, force: true })
  }

  return {
    local: true,
    url: ready.url,
    anonKey: ready.anon_key,
    serviceRoleKey: ready.service_role_key,
    logPath,
    stop,
  }
}

/**
 * Starts (or connects to) the backend for this test file and registers the teardown hooks:
 * after each test every client made through this harness has its realtime channels removed;
 * after the file the local server is stopped.
 */
export async function useBackend(label) {
  let target
  if (process.env.SUPABASE_URL) {
    if (!process.env.SUPABASE_ANON_KEY) throw new Error('SUPABASE_URL is set but SUPABASE_ANON_KEY is not')
    target = {
      local: false,
      url: process.env.SUPABASE_URL.replace(/\/+$/, ''),
      anonKey: process.env.SUPABASE_ANON_KEY,
      serviceRoleKey: process.env.SUPABASE_SERVICE_ROLE_KEY || null,
      stop: async () => {},
    }
  } else {
    target = await startLocalServer(label)
    // The server child's stdout pipe keeps this process's event loop alive until the final
    // `after` hook stops it, so no timer has to. Unref'ing them all lets the process end as
    // soon as the server is gone, instead of waiting out the 10 s push timeouts realtime-js
    // (2.109.0) leaves behind for broadcasts without ack and for access_token pushes.
    const setTimeoutOrig = globalThis.setTimeout
    globalThis.setTimeout = (...args) => {
      const t = setTimeoutOrig(...args)
      t?.unref?.()
      return t
    }
  }
  afterEach(async () => {
    await closeRealtime()
  })
  after(async () => {
    await closeRealtime()
    await target.stop()
  })
  current = target
  return target
}

let current = null
function target() {
  if (!current) throw new Error('call useBackend() first')
  return current
}

// ---------------------------------------------------------------------------------------------
// Clients

const liveClients = new Set()

// Every client stays listed for the whole file: clients made in a `before` hook are used by
// several tests, and each test's channels must be removed after it.
async function closeRealtime() {
  const clients = [...liveClients]
  await withUnrefTimers(() =>
    Promise.all(
      clients.map((c) =>
        within(5_000, c.removeAllChannels(), 'removeAllChannels').catch(() => c.realtime.disconnect()),
      ),
    ),
  )
}

/**
 * Runs `fn` (a removeChannel / removeAllChannels / disconnect) with the timers it starts unref'd.
 * realtime-js 2.109.0 starts a 10 s timer in every disconnect() and never clears it, which
 * would keep the test process alive 10 s after its last test; unref'd, such a timer cannot hold
 * the process (it still fires if something else keeps the process up).
 */
export async function withUnrefTimers(fn) {
  const setTimeoutOrig = globalThis.setTimeout
  // While `fn` runs, this one ref'd timer keeps the process up (realtime-js polls with timers
  // while a socket closes, and those are unref'd here).
  const keepAlive = setInterval(() => {}, 1_000)
  globalThis.setTimeout = (...args) => {
    const t = setTimeoutOrig(...args)
    t?.unref?.()
    return t
  }
  try {
    return await fn()
  } finally {
    globalThis.setTimeout = setTimeoutOrig
    clearInterval(keepAlive)
  }
}

/**
 * A supabase-js client as the desktop's webview or a Node script would make it: no session
 * persistence, no refresh timer, and `ws` as the WebSocket (Node 20 has none built in).
 * `realtime` options are merged in (e.g. `{ vsn: '1.0.0' }`).
 */
export function makeClient(key = target().anonKey, { realtime = {}, headers } = {}) {
  const client = createClient(target().url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime: { transport: WebSocket, ...realtime },
    ...(headers ? { global: { headers } } : {}),
  })
  liveClients.add(client)
  return client
}

export function anonClient(opts) {
  return makeClient(target().anonKey, opts)
}

/** A client with the service-role key, or null against a real project that did not give one. */
export function serviceClient(opts) {
  const key = target().serviceRoleKey
  return key ? makeClient(key, opts) : null
}

export function newPassword() {
  return `Pw-${randomBytes(9).toString('base64url')}!7`
}

export function newEmail(label = 'user') {
  return `${uniq(label)}@${EMAIL_DOMAIN}`.toLowerCase()
}

/**
 * Signs a new user up (unique email) and returns its signed-in client.
 * With `profile` (default) the user's `profiles` row is made sure of (an idempotent upsert,
 * a no-op when sign-up already made it), since rooms and challenges reference profiles.
 */
export async function newUser(label = 'user', { profile = true, realtime } = {}) {
  const client = makeClient(target().anonKey, { realtime })
  const email = newEmail(label)
  const password = newPassword()
  const { data, error } = await client.auth.signUp({ email, password })
  if (error) assert.fail(`sign-up of ${email} failed: ${error.status ?? ''} ${error.code ?? ''} ${error.message}`)
  assert.ok(
    data.session,
    'sign-up returns a session (on a real project, turn email confirmation off for conformance runs)',
  )
  // supabase-js hands the new token to Realtime from an auth event, asynchronously; set it
  // now so a channel joined right away carries the user's token, not the anon key.
  await client.realtime.setAuth(data.session.access_token)
  const user = { client, email, password, id: data.user.id, session: data.session, label }
  if (profile) {
    ok(
      await client.from('profiles').upsert({ id: user.id, display_name: label }, { onConflict: 'id', ignoreDuplicates: true }),
      `making sure of the profile of ${label}`,
    )
  }
  return user
}

// ---------------------------------------------------------------------------------------------
// Data-model helpers (each makes fresh rows; see DESIGN.md for the rules)

/** A room created by `owner` (who joins as admin); `members` join as members (public channel). */
export async function newRoom(owner, { kind = 'channel', members = [], name = uniq('room') } = {}) {
  const room = ok(
    await owner.client.from('chat_rooms').insert({ name, kind, created_by: owner.id }).select().single(),
    'create room',
  )
  ok(await owner.client.from('room_members').insert({ room_id: room.id, user_id: owner.id, role: 'admin' }), 'owner joins')
  for (const m of members) {
    if (kind === 'channel') {
      ok(await m.client.from('room_members').insert({ room_id: room.id, user_id: m.id, role: 'member' }), 'member joins')
    } else {
      ok(await owner.client.from('room_members').insert({ room_id: room.id, user_id: m.id, role: 'member' }), 'admin adds member')
    }
  }
  return room
}

export async function postMessage(user, roomId, content, extra = {}) {
  return ok(
    await user.client.from('chat_messages').insert({ room_id: roomId, user_id: user.id, content, ...extra }).select().single(),
    'post message',
  )
}

// ---------------------------------------------------------------------------------------------
// Assertions and bounded waits

/** Asserts a supabase-js result has no error and returns its data. */
export function ok(result, what = 'request') {
  const { error, data, status } = result
  if (error || !(status >= 200 && status < 300)) {
    assert.fail(`${what} failed: HTTP ${status} ${JSON.stringify(error)}`)
  }
  return data
}

/** Asserts that a supabase-js `error` is null, printing it compactly when it is not. */
export function noError(error, what = 'request') {
  if (error) {
    assert.fail(`${what} failed: ${error.status ?? ''} ${error.code ?? ''} ${error.message ?? JSON.stringify(error)}`)
  }
}

/** Asserts a PostgREST error: HTTP status and `code`. */
export function expectPgError(result, status, code, what = 'request') {
  assert.ok(result.error, `${what} should fail with ${status} ${code}, got data ${JSON.stringify(result.data)}`)
  assert.equal(result.status, status, `${what}: HTTP status (error ${JSON.stringify(result.error)})`)
  if (Array.isArray(code)) {
    assert.ok(code.includes(result.error.code), `${what}: code ${result.error.code} is one of ${code}`)
  } else {
    assert.equal(result.error.code, code, `${what}: error code (message: ${result.error.message})`)
  }
  assert.equal(result.data, null, `${what}: no data with an error`)
  return result.error
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

/** Resolves with `promise`'s value, or rejects naming `what` after `ms`. */
export async function within(ms, promise, what = 'operation') {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Subscribes and resolves on SUBSCRIBED; rejects on CHANNEL_ERROR / TIMED_OUT / CLOSED / time-out. */
export function subscribed(channel, ms = 15_000) {
  return within(
    ms,
    new Promise((resolve, reject) => {
      channel.subscribe((status, err) => {
        if (status === 'SUBSCRIBED') resolve(channel)
        else reject(new Error(`subscribe ${channel.topic}: ${status}${err ? `: ${err.message}` : ''}`))
      })
    }),
    `subscribe ${channel.topic}`,
  )
}

/**
 * Subscribes expecting a refusal; resolves with the CHANNEL_ERROR's Error. (The client would
 * retry the join after an error, so callers remove the channel afterwards; teardown does too.)
 */
export function refused(channel, ms = 15_000) {
  return within(
    ms,
    new Promise((resolve, reject) => {
      channel.subscribe((status, err) => {
        if (status === 'CHANNEL_ERROR') resolve(err ?? new Error('CHANNEL_ERROR'))
        else if (status === 'SUBSCRIBED') reject(new Error(`subscribe ${channel.topic} should be refused but succeeded`))
      })
    }),
    `refusal of ${channel.topic}`,
  )
}

/**
 * Collects events pushed to a callback. `next(pred, ms)` waits for the first not-yet-taken item
 * matching `pred`; `quiet(ms)` asserts nothing (matching) arrives for `ms`.
 */
export class Inbox {
  constructor(name = 'inbox') {
    this.name = name
    this.items = []
    this.taken = new Set()
    this.waiters = []
    this.push = this.push.bind(this)
  }

  push(item) {
    this.items.push(item)
    for (const w of [...this.waiters]) w()
  }

  next(pred = () => true, ms = 10_000, what = 'an event') {
    return within(
      ms,
      new Promise((resolve) => {
        const check = () => {
          const i = this.items.findIndex((x, idx) => !this.taken.has(idx) && pred(x))
          if (i >= 0) {
            this.taken.add(i)
            this.waiters = this.waiters.filter((w) => w !== check)
            resolve(this.items[i])
            return true
          }
          return false
        }
        if (!check()) this.waiters.push(check)
      }),
      `${this.name}: waiting for ${what} (have ${JSON.stringify(this.items).slice(0, 600)})`,
    )
  }

  async quiet(ms = 500, pred = () => true, why = 'nothing should arrive') {
    await sleep(ms)
    const got = this.items.filter((x, idx) => !this.taken.has(idx) && pred(x))
    assert.deepEqual(got, [], `${this.name}: ${why}`)
  }
}

/**
 * A `ws` WebSocket class that records every frame into `log` as
 * `{ dir: 'in' | 'out', binary, kind }` (`kind` = first byte of a binary frame), to check which
 * serializer path a message took (vsn 2.0.0: kind 3 out, kind 4 in).
 */
export function tappedTransport(log) {
  return class TappedWebSocket extends WebSocket {
    constructor(...args) {
      super(...args)
      this.on('message', (data, isBinary) => {
        log.push({ dir: 'in', binary: isBinary, kind: isBinary ? firstByte(data) : null })
      })
    }

    send(data, ...rest) {
      const binary = typeof data !== 'string'
      log.push({ dir: 'out', binary, kind: binary ? firstByte(data) : null })
      return super.send(data, ...rest)
    }
  }
}

function firstByte(data) {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)[0]
  if (ArrayBuffer.isView(data)) return data[0] ?? new Uint8Array(data.buffer, data.byteOffset, 1)[0]
  if (Array.isArray(data)) return firstByte(data[0])
  return null
}

/** Decodes a JWT's claims (no verification: the server's job). */
export function claims(jwt) {
  const [, body] = jwt.split('.')
  return JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
}

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
