// The Realtime socket itself, below the channel API: upgrade refusal without a key, heartbeat
// replies in both serializers, the WebSocket close handshake, and a push to a topic that was
// never joined (protocol notes §1.1, §1.5, §1.9). Raw `ws` connections, so each check sees the
// exact frames.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'

import WebSocket from 'ws'

import { useBackend, within } from './harness.mjs'

const target = await useBackend('realtime-socket')

function socketUrl(vsn, key = target.anonKey) {
  const base = target.url.replace(/^http/, 'ws')
  const q = new URLSearchParams()
  if (key !== null) q.set('apikey', key)
  q.set('vsn', vsn)
  return `${base}/realtime/v1/websocket?${q}`
}

async function open(vsn) {
  const ws = new WebSocket(socketUrl(vsn))
  await within(10_000, once(ws, 'open'), 'socket open')
  return ws
}

/** The next text frame, parsed. */
async function nextFrame(ws, what) {
  const [data, isBinary] = await within(10_000, once(ws, 'message'), what)
  assert.equal(isBinary, false, `${what} is a text frame`)
  return JSON.parse(data.toString('utf8'))
}

test('an upgrade without an API key is refused with 401', async () => {
  const ws = new WebSocket(socketUrl('2.0.0', null))
  ws.on('error', () => {}) // ws reports the refused upgrade once more as an error
  const [, res] = await within(10_000, once(ws, 'unexpected-response'), 'the refusal')
  assert.equal(res.statusCode, 401)
  res.resume()
  ws.terminate()
})

test('heartbeats are answered with the same ref (vsn 2.0.0 arrays, vsn 1.0.0 objects)', async () => {
  const v2 = await open('2.0.0')
  v2.send(JSON.stringify([null, '42', 'phoenix', 'heartbeat', {}]))
  assert.deepEqual(await nextFrame(v2, 'v2 heartbeat reply'), [null, '42', 'phoenix', 'phx_reply', { status: 'ok', response: {} }])
  v2.close(1000)

  const v1 = await open('1.0.0')
  v1.send(JSON.stringify({ topic: 'phoenix', event: 'heartbeat', payload: {}, ref: '7' }))
  const reply = await nextFrame(v1, 'v1 heartbeat reply')
  assert.equal(reply.topic, 'phoenix')
  assert.equal(reply.event, 'phx_reply')
  assert.equal(reply.ref, '7')
  assert.deepEqual(reply.payload, { status: 'ok', response: {} })
  v1.close(1000)
})

test('a push to a topic that was never joined gets "unmatched topic"', async () => {
  const ws = await open('2.0.0')
  ws.send(JSON.stringify([null, '3', 'realtime:never-joined', 'broadcast', { type: 'broadcast', event: 'x', payload: {} }]))
  const [joinRef, ref, topic, event, payload] = await nextFrame(ws, 'the error reply')
  assert.deepEqual([joinRef, ref, topic, event], [null, '3', 'realtime:never-joined', 'phx_reply'])
  assert.deepEqual(payload, { status: 'error', response: { reason: 'unmatched topic' } })
  ws.close(1000)
})

test('the server answers a close frame with a close frame (code 1000, not a dropped connection)', async () => {
  for (const vsn of ['2.0.0', '1.0.0']) {
    const ws = await open(vsn)
    // A joined channel, so the server has per-channel state to tear down as well.
    const join = vsn === '2.0.0'
      ? JSON.stringify(['1', '1', 'realtime:close-check', 'phx_join', { config: { broadcast: { self: false, ack: false }, presence: { key: '', enabled: true }, postgres_changes: [], private: false } }])
      : JSON.stringify({ topic: 'realtime:close-check', event: 'phx_join', payload: { config: { broadcast: { self: false, ack: false }, presence: { key: '', enabled: true }, postgres_changes: [], private: false } }, ref: '1', join_ref: '1' })
    ws.send(join)
    await nextFrame(ws, 'join reply')
    const closed = once(ws, 'close')
    ws.close(1000, 'bye')
    const [code] = await within(10_000, closed, `vsn ${vsn} close`)
    assert.equal(code, 1000, `vsn ${vsn}: 1006 means the server dropped the TCP connection without its close frame`)
  }
})
