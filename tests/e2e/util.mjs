// Helpers shared by e2e.mjs and bench-desktop.mjs: waiting for a condition and loopback ports.

import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** Polls `fn` until it returns a truthy value; throws `what` after `ms`. */
export async function until(what, fn, ms = 20_000, every = 250) {
  const end = Date.now() + ms
  let last
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`)
    await sleep(every)
  }
}

/** A loopback port nobody listens on right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Whether something accepts connections on loopback `port`. */
export function portOpen(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1')
    c.on('connect', () => {
      c.destroy()
      resolve(true)
    })
    c.on('error', () => resolve(false))
  })
}
