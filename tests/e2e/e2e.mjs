// End-to-end scenarios of the desktop app in its real window, driven over WebDriver
// (tauri-driver → WebKitWebDriver → the WebKitGTK webview of `ruwad-desktop`).
//
// Run by scripts/e2e, which builds everything and provides the session: an X display (Xvfb), a
// private D-Bus session with an unlocked gnome-keyring and dunst, and a log of the
// `org.freedesktop.Notifications.Notify` calls (dbus-monitor) in E2E_NOTIFY_LOG.
//
// This file owns the processes of the run:
// - ONE `ruwad-server --demo` on a fixed loopback port with a fresh data dir. The app talks to it
//   (RUWAD_BACKEND_URL / RUWAD_ANON_KEY, handed to tauri-driver's environment, which the app
//   inherits) and so does the "other user" (supabase-js signed in as a second demo account). The
//   outage scenario stops it and starts it again on the same port and data dir.
// - tauri-driver (E2E_TAURI_DRIVER) and its WebKitWebDriver, each on a free loopback port (not the
//   fixed 4444 / 4445), so that a run never collides with another one on a shared machine.
// - For the two-window document scenario, a SECOND app instance: its own tauri-driver +
//   WebKitWebDriver on other free ports and its own webdriverio session, with its own profile
//   (RUWAD_DATA_DIR, so its own single-instance lock, keychain entry and database), signed in as
//   the second demo user against the same ruwad-server.
//
// Every scenario is an assertion that can fail; a failed scenario is reported and the next one
// runs (later ones may fail with it when the window is left somewhere unexpected). Each screen
// is saved to E2E_ARTIFACTS/*.png. The last line is `e2e: N passed, M failed`; the exit status
// is non-zero when anything failed.
//
// Environment: E2E_APP (the ruwad-desktop binary), E2E_SERVER (ruwad-server), E2E_TAURI_DRIVER,
// E2E_WORK (a scratch dir: server data, app profile, logs), E2E_ARTIFACTS, E2E_NOTIFY_LOG.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'

import { freePort, portOpen, until } from './util.mjs'

import { createClient } from '@supabase/supabase-js'
import { remote } from 'webdriverio'
import WebSocket from 'ws'
import * as Y from 'yjs'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`e2e.mjs: ${name} is not set (run scripts/e2e)`)
  return v
}
const APP = path.resolve(env('E2E_APP'))
const SERVER = path.resolve(env('E2E_SERVER'))
const DRIVER = path.resolve(env('E2E_TAURI_DRIVER'))
const WORK = path.resolve(env('E2E_WORK'))
const ARTIFACTS = path.resolve(env('E2E_ARTIFACTS'))
const NOTIFY_LOG = process.env.E2E_NOTIFY_LOG

const PASSWORD = 'ruwad-demo'
const ME = { email: 'layla@demo.ruwad.app', name: 'ليلى حسن' }
const OTHER = { email: 'omar@demo.ruwad.app', name: 'عمر خالد' }
const GENERAL_ROOM = 'عام'
// Always with a double letter, so that typing one twice in a row is exercised every run.
const RUN = `${Date.now().toString(36)}zz`

fs.mkdirSync(ARTIFACTS, { recursive: true })
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a)

// ---------------------------------------------------------------------------------------------
// Small helpers

// ---------------------------------------------------------------------------------------------
// The backend: one ruwad-server, stoppable and restartable on the same port and data dir

const serverData = path.join(WORK, 'server-data')
let server = null
let serverStarts = 0

async function startServer(port) {
  serverStarts += 1
  const logFile = fs.openSync(path.join(WORK, `server-${serverStarts}.log`), 'w')
  const child = spawn(SERVER, ['--addr', `127.0.0.1:${port}`, '--data-dir', serverData, '--demo'], {
    stdio: ['ignore', 'pipe', logFile],
    env: { RUST_LOG: 'info', ...process.env },
  })
  const ready = await new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error('ruwad-server printed no ready line within 60 s')), 60_000)
    child.on('exit', (code, sig) => reject(new Error(`ruwad-server exited early (code ${code}, signal ${sig}); see ${WORK}/server-${serverStarts}.log`)))
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      try {
        resolve(JSON.parse(buf.slice(0, nl)))
      } catch {
        reject(new Error(`ruwad-server's ready line is not JSON: ${buf.slice(0, nl)}`))
      }
    })
  })
  server = { child, ready, logFile }
  return ready
}

async function stopServer() {
  if (!server) return
  const { child, logFile } = server
  server = null
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(t)
  }
  fs.closeSync(logFile)
}

// ---------------------------------------------------------------------------------------------
// The run

const results = []
/** The app windows open now (the main one, and the second while the two-window scenario runs). */
const windows = []
let browser // the main window's session (signed in as ME)
let backend // { url, anon_key, port }
let other // supabase-js client signed in as OTHER
let otherId
let generalId

/** One scenario: runs `fn`, records pass / fail, never throws. */
async function scenario(name, fn) {
  const start = Date.now()
  log(`---- ${name}`)
  try {
    await fn()
    results.push({ name, ok: true, ms: Date.now() - start })
    log(`PASS ${name} (${((Date.now() - start) / 1000).toFixed(1)} s)`)
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - start, error: e })
    log(`FAIL ${name}: ${e.stack || e.message}`)
    await shot(`FAILED-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`).catch(() => {})
  }
}

async function shot(name, b = browser) {
  if (!b) return
  const file = path.join(ARTIFACTS, `${name}.png`)
  await b.saveScreenshot(file)
  log(`screenshot ${path.relative(process.cwd(), file)}`)
}

const $ = (sel) => browser.$(sel)
const tid = (id) => `[data-testid="${id}"]`
/** Text of the first match, or '' when there is none. */
const textOf = (sel, b = browser) => b.execute((s) => document.querySelector(s)?.textContent ?? '', sel)

async function nav(screen, b = browser) {
  const button = await b.$(tid(`nav-${screen}`))
  await button.waitForClickable({ timeout: 15_000 })
  await button.click()
  await until(`the ${screen} screen`, () => b.execute((s) => document.querySelector(s)?.getAttribute('aria-current') === 'page', tid(`nav-${screen}`)), 10_000)
}

async function connectionState(b = browser) {
  return b.execute((s) => document.querySelector(s)?.getAttribute('data-state') ?? '', tid('connection-bar'))
}

/** Starts an app window: its own tauri-driver (and so WebKitWebDriver and app instance) on free
 * ports with the app's environment (the app inherits it; `profile` is its RUWAD_DATA_DIR), and a
 * webdriverio session on it. Recorded in `windows` so that the run's end closes it. */
async function openWindow(label, profile) {
  const driverLog = fs.openSync(path.join(WORK, label === 'main' ? 'tauri-driver.log' : `tauri-driver-${label}.log`), 'w')
  const driverPort = await freePort()
  const nativePort = await freePort()
  const child = spawn(DRIVER, ['--port', String(driverPort), '--native-port', String(nativePort)], {
    stdio: ['ignore', driverLog, driverLog],
    env: {
      ...process.env,
      RUWAD_DATA_DIR: path.join(WORK, profile),
      RUWAD_BACKEND_URL: backend.url,
      RUWAD_ANON_KEY: backend.anon_key,
      RUST_LOG: process.env.RUST_LOG || 'info',
    },
  })
  const win = { label, driver: child, browser: null }
  windows.push(win)
  await until(`tauri-driver (${label}) to listen on ${driverPort}`, () => portOpen(driverPort), 30_000)
  win.browser = await remote({
    hostname: '127.0.0.1',
    port: driverPort,
    logLevel: 'warn',
    connectionRetryTimeout: 120_000,
    capabilities: {
      browserName: 'wry',
      'wdio:enforceWebDriverClassic': true,
      'tauri:options': { application: APP },
    },
  })
  log(`window ${label} up (profile ${profile})`)
  return win
}

/** Ends a window's session and its tauri-driver (and so the app instance). */
async function closeWindow(win) {
  await win.browser?.deleteSession().catch(() => {})
  win.browser = null
  if (win.driver.exitCode === null && win.driver.signalCode === null) {
    win.driver.kill('SIGTERM')
    await Promise.race([once(win.driver, 'exit'), sleep(5_000)])
  }
  windows.splice(windows.indexOf(win), 1)
}

/** Signs `who` in through the sign-in screen of window `b` and waits for the workspace, online.
 * `shotName`: a screenshot of the empty sign-in screen first. */
async function signIn(b, who, shotName) {
  const email = await b.$(tid('signin-email'))
  await email.waitForDisplayed({ timeout: 30_000 })
  if (shotName) {
    // Displayed is not yet painted: wait for the form's text, and a frame or two.
    await until('the sign-in form painted', async () => (await textOf('form', b)).trim().length > 10, 10_000)
    await sleep(500)
    await shot(shotName, b)
  }
  await email.setValue(who.email)
  await (await b.$(tid('signin-password'))).setValue(PASSWORD)
  await (await b.$(tid('signin-submit'))).click()
  await (await b.$(tid('workspace'))).waitForDisplayed({ timeout: 30_000, timeoutMsg: `the workspace did not appear after signing in as ${who.email}` })
  await until(`the connection bar to say online (${who.email})`, async () => (await connectionState(b)) === 'online', 30_000)
}

// The document editor of a window.
const EDITOR = `${tid('doc-editor')} .ProseMirror`

/** Opens document `id` in window `b` (from the list, unless it is open already) and waits until
 * it is editable. */
async function openDocument(b, id) {
  if (!(await b.execute((s) => !!document.querySelector(s), EDITOR))) {
    await nav('documents', b)
    const card = await b.$(`[data-testid="document-card"][data-id="${id}"]`)
    await card.waitForClickable({ timeout: 20_000 })
    await card.click()
  }
  const editable = await b.$(EDITOR)
  await editable.waitForDisplayed({ timeout: 30_000 })
  await until('the editor to be editable', async () => (await editable.getAttribute('contenteditable')) === 'true', 15_000)
  return editable
}

/** The editor's text blocks (paragraphs and headings, list items' paragraphs included), one
 * string each: the same lines the engine's plain-text rendering (`collaborative_documents.
 * content`) has. Co-editors' carets (inline widgets carrying a name label) are left out. */
function editorLines(b) {
  return b.execute((s) => {
    const root = document.querySelector(s)
    if (!root) return null
    return [...root.querySelectorAll('p, h1, h2, h3, h4, h5, h6')].map((block) => {
      const copy = block.cloneNode(true)
      copy.querySelectorAll('.collaboration-cursor__caret').forEach((c) => c.remove())
      return copy.textContent
    })
  }, EDITOR)
}

/** Co-editors' carets in the editor of window `b`: [{ name, color }]. */
function carets(b) {
  return b.execute((s) =>
    [...document.querySelectorAll(`${s} .collaboration-cursor__caret`)].map((c) => ({
      name: c.querySelector('.collaboration-cursor__label')?.textContent ?? '',
      color: c.style.borderColor,
    })),
  EDITOR)
}

/** Types `text` as a new paragraph at the end of the editor of window `b`. */
async function typeAtEnd(b, editable, text) {
  await editable.click()
  await b.keys(['Control', 'End'])
  await b.keys(['Enter'])
  // One key action per character: in one action WebKitWebDriver drops a character typed twice
  // in a row ("uu" arrived as "u"), which made this flaky whenever RUN had a double letter.
  for (const ch of text) await b.keys([ch])
  await until(`"${text}" in the editor`, async () => (await editorLines(b))?.includes(text), 10_000)
}

/** Plain text of a Yjs XmlFragment by the engine's rule (crates/core/src/docs/text.rs): an
 * element holding elements puts each on its own line; inline text runs together, formatting
 * dropped. */
function renderFragment(node) {
  if (node instanceof Y.XmlText) return node.toDelta().map((d) => (typeof d.insert === 'string' ? d.insert : '')).join('')
  const children = node.toArray()
  const blocks = children.some((c) => !(c instanceof Y.XmlText))
  return children.map(renderFragment).join(blocks ? '\n' : '')
}

/** The messages in the window: [{content, state}]. */
function windowMessages() {
  return browser.execute(() =>
    [...document.querySelectorAll('[data-testid="message"]')].map((li) => ({
      content: li.querySelector('.content')?.textContent ?? '',
      state: li.getAttribute('data-state'),
      sending: !!li.querySelector('[data-testid="sending"]'),
    })),
  )
}

async function sendInWindow(text) {
  const box = await $(tid('composer'))
  await box.waitForDisplayed({ timeout: 10_000 })
  await box.click()
  await box.setValue(text)
  await until('the composer to hold the text', async () => (await box.getValue()) === text, 5_000)
  await browser.keys('Enter')
}

async function otherMessageCount(text) {
  const { count, error } = await other.from('chat_messages').select('id', { count: 'exact', head: true }).eq('room_id', generalId).eq('content', text)
  if (error) throw new Error(`REST count of chat_messages: ${error.message}`)
  return count
}

/** The document's update log over REST (as the other user), replayed into a fresh Yjs doc as a
 * web client would. */
async function replay(docId) {
  const { data: rows, error } = await other.from('document_updates').select('seq,update').eq('document_id', docId).order('seq')
  if (error) throw new Error(`REST document_updates: ${error.message}`)
  const ydoc = new Y.Doc()
  for (const r of rows) Y.applyUpdate(ydoc, new Uint8Array(Buffer.from(r.update, 'base64')))
  return ydoc
}

/** The document's sync state shown in window `b` (`synced`, `local`, `offline`, `failed`). */
const docSync = (b) => b.execute((s) => document.querySelector(s)?.getAttribute('data-state'), tid('doc-sync'))

async function main() {
  const port = await freePort()
  const ready = await startServer(port)
  backend = { url: ready.url, anon_key: ready.anon_key, port }
  log(`ruwad-server at ${backend.url} (data ${serverData})`)

  // The other user.
  other = createClient(backend.url, backend.anon_key, {
    auth: { persistSession: false, autoRefreshToken: true },
    realtime: { transport: WebSocket },
  })
  const { data: signed, error: signErr } = await other.auth.signInWithPassword({ email: OTHER.email, password: PASSWORD })
  if (signErr) throw new Error(`the second client could not sign in as ${OTHER.email}: ${signErr.message}`)
  otherId = signed.user.id
  const { data: rooms, error: roomErr } = await other.from('chat_rooms').select('id,name').eq('name', GENERAL_ROOM)
  if (roomErr || !rooms?.length) throw new Error(`the demo room ${GENERAL_ROOM} was not found: ${roomErr?.message}`)
  generalId = rooms[0].id

  // The main window, with the app's environment (the app inherits tauri-driver's).
  browser = (await openWindow('main', 'profile')).browser

  // ---- 1. sign in ----------------------------------------------------------------------------
  await scenario('sign in as a demo user', async () => {
    await signIn(browser, ME, '01-sign-in')
  })

  // ---- 2. chat both ways ---------------------------------------------------------------------
  const toOther = `e2e from the window ${RUN}`
  await scenario('chat: a message from the window reaches the other client, and back', async () => {
    await nav('chat')
    const room = await $(`[data-testid="room"][data-room-id="${generalId}"]`)
    await room.waitForClickable({ timeout: 20_000 })
    await room.click()
    await sendInWindow(toOther)
    await until('the sent message in the window', async () => (await windowMessages()).some((m) => m.content === toOther), 10_000)
    await until('the message at the other client (REST)', async () => (await otherMessageCount(toOther)) === 1, 20_000)
    const back = `e2e from the other client ${RUN}`
    const { error } = await other.from('chat_messages').insert({ room_id: generalId, user_id: otherId, content: back })
    if (error) throw new Error(`the other client could not send: ${error.message}`)
    await until('the other client\'s message in the window', async () => (await windowMessages()).some((m) => m.content === back), 20_000)
    await until('the window\'s message to be delivered (not sending)', async () => (await windowMessages()).some((m) => m.content === toOther && !m.sending && m.state !== 'pending'), 15_000)
    await shot('02-chat')
  })

  // ---- 3. typing indicator -------------------------------------------------------------------
  await scenario('chat: the typing indicator shows the other user typing', async () => {
    const ch = other.channel(`chat:${generalId}`, { config: { private: true, broadcast: { self: false } } })
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the other client could not join the chat channel')), 15_000)
      ch.subscribe((status, err) => {
        if (status === 'SUBSCRIBED') {
          clearTimeout(t)
          resolve()
        } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
          clearTimeout(t)
          reject(new Error(`chat channel: ${status} ${err?.message ?? ''}`))
        }
      })
    })
    try {
      // Broadcast until the window shows it (the receiver drops a typer 5 s after the last one).
      if ((await textOf(tid('typing'))).trim()) throw new Error(`the typing line is not empty before anyone types: "${await textOf(tid('typing'))}"`)
      const line = await until('a typing line in the window', async () => {
        await ch.send({ type: 'broadcast', event: 'typing', payload: { user_id: otherId, typing: true } })
        return (await textOf(tid('typing'))).trim()
      }, 20_000, 1_000)
      // The line names the typer when the app knows their profile name; today it may say
      // "Someone" (see the report), so only the presence of the line is asserted.
      if (!line.includes(OTHER.name)) log(`note: the typing line says "${line}", not ${OTHER.name}'s name`)
      await shot('03-chat-typing')
      await ch.send({ type: 'broadcast', event: 'typing', payload: { user_id: otherId, typing: false } })
      await until('the typing line to clear after typing:false', async () => !(await textOf(tid('typing'))).trim(), 10_000, 500)
    } finally {
      await other.removeChannel(ch)
    }
  })

  // ---- 4. outage: offline, sending, delivered exactly once -----------------------------------
  await scenario('outage: offline bar, "sending" while down, delivered exactly once after restart', async () => {
    await nav('chat')
    await stopServer()
    log('backend stopped')
    const downState = await until('the connection bar to leave "online"', async () => {
      const s = await connectionState()
      return s && s !== 'online' ? s : null
    }, 30_000)
    const barText = await textOf(tid('connection-bar'))
    if (!/offline|reconnect/i.test(barText)) throw new Error(`the connection bar says "${barText}" (state ${downState}), not offline / reconnecting`)
    const queued = `e2e sent while offline ${RUN}`
    await sendInWindow(queued)
    await until('the offline message shown as "sending"', async () => (await windowMessages()).some((m) => m.content === queued && m.sending), 10_000)
    await shot('04-chat-offline-sending')
    await sleep(2_000) // let the engine retry against the closed port at least once
    // The same port: a bind can fail for a moment after the stop, so a few tries.
    for (let attempt = 1; ; attempt++) {
      try {
        const again = await startServer(backend.port)
        if (again.url !== backend.url || again.anon_key !== backend.anon_key) throw new Error(`the restarted server is at ${again.url} with another key`)
        break
      } catch (e) {
        if (attempt >= 5) throw new Error(`could not restart the backend on port ${backend.port}: ${e.message}`)
        log(`restart attempt ${attempt} failed (${e.message}); retrying`)
        await stopServer().catch(() => {})
        await sleep(1_000)
      }
    }
    log('backend restarted on the same port and data dir')
    await until('the connection bar to say online again', async () => (await connectionState()) === 'online', 60_000, 500)
    await until('the offline message to be delivered (no longer "sending")', async () => (await windowMessages()).some((m) => m.content === queued && !m.sending), 60_000, 500)
    await until('the offline message on the server', async () => (await otherMessageCount(queued)) >= 1, 20_000)
    await sleep(3_000) // a duplicate would come from a second drain right after the first
    const n = await otherMessageCount(queued)
    if (n !== 1) throw new Error(`the offline message is on the server ${n} times, expected exactly once`)
    const inWindow = (await windowMessages()).filter((m) => m.content === queued).length
    if (inWindow !== 1) throw new Error(`the offline message shows ${inWindow} times in the window`)
    await shot('04-chat-back-online')
  })

  // ---- 5. documents both ways ----------------------------------------------------------------
  let doc
  await scenario('documents: the demo document shows; typing reaches the server, an edit from the other side shows in the editor', async () => {
    const { data: docs, error } = await other.from('collaborative_documents').select('id,title')
    if (error || !docs?.length) throw new Error(`the demo document was not found: ${error?.message}`)
    doc = docs[0]
    await nav('documents')
    await (await $(`[data-testid="document-card"][data-id="${doc.id}"]`)).waitForClickable({ timeout: 20_000 })
    await shot('05-documents')
    const editable = await openDocument(browser, doc.id)
    // The seeded rich text (crates/server/src/demo.rs): a heading, paragraphs, a bullet list.
    await until('the demo text in the editor', async () => (await editorLines(browser))?.includes('Ruwād team plan — smart irrigation challenge'), 15_000)
    const shape = await browser.execute((s) => ['h1', 'h2', 'ul li p'].map((t) => document.querySelectorAll(`${s} ${t}`).length), EDITOR)
    if (shape.some((n) => n === 0)) throw new Error(`the demo document does not render as heading / subheadings / bullet list: ${shape}`)
    const typed = `e2e-typed-${RUN}`
    await typeAtEnd(browser, editable, typed)

    // The other side: the document's update log, replayed into a Yjs doc as the web client would.
    await until('the typed text in the document_updates log (seen by the other client)', async () => renderFragment((await replay(doc.id)).getXmlFragment('default')).includes(typed), 30_000, 500)

    // An edit from the other side: a paragraph appended to the editor's fragment.
    const ydoc = await replay(doc.id)
    const before = Y.encodeStateVector(ydoc)
    const fromOther = `e2e-from-the-other-side-${RUN}`
    const para = new Y.XmlElement('paragraph')
    para.insert(0, [new Y.XmlText(fromOther)])
    const frag = ydoc.getXmlFragment('default')
    frag.insert(frag.length, [para])
    const update = Y.encodeStateAsUpdate(ydoc, before)
    const { error: insErr } = await other
      .from('document_updates')
      .insert({ id: randomUUID(), document_id: doc.id, user_id: otherId, update: Buffer.from(update).toString('base64') })
    if (insErr) throw new Error(`the other side could not write a document update: ${insErr.message}`)
    await until('the other side\'s edit in the editor', async () => (await editorLines(browser))?.includes(fromOther), 30_000, 500)
    await until('the document to say synced', async () => (await docSync(browser)) === 'synced', 20_000, 500)
    await shot('05-document-editor')
  })

  // ---- 5b. two app windows edit one document -------------------------------------------------
  await scenario('documents in two app windows: each sees the other\'s text and caret; both and the server converge', async () => {
    if (!doc) throw new Error('no demo document (the scenario before failed to find it)')
    const second = await openWindow('omar', 'profile-omar')
    try {
      const b = second.browser
      await signIn(b, OTHER)
      const [editA, editB] = [await openDocument(browser, doc.id), await openDocument(b, doc.id)]
      // Both start from the same text (window A's edits of the scenario before included).
      await until('both editors to show the same text', async () => JSON.stringify(await editorLines(browser)) === JSON.stringify(await editorLines(b)), 30_000, 500)

      const fromA = `e2e-window-A-${RUN}`
      await typeAtEnd(browser, editA, fromA)
      await until('A\'s text in window B', async () => (await editorLines(b))?.includes(fromA), 30_000, 250)
      const fromB = `e2e-window-B-${RUN}`
      await typeAtEnd(b, editB, fromB)
      await until('B\'s text in window A', async () => (await editorLines(browser))?.includes(fromB), 30_000, 250)

      // Each sees the other's caret, labelled with the other's name (the name each window takes
      // from its own session) and drawn in that user's colour.
      const caretOf = async (viewer, name) => (await carets(viewer)).find((c) => c.name === name)
      const inA = await until(`${OTHER.name}'s caret in window A`, () => caretOf(browser, OTHER.name), 20_000, 250)
      // Window B last typed, so A's caret may need A's selection to be announced again.
      await editA.click()
      const inB = await until(`${ME.name}'s caret in window B`, () => caretOf(b, ME.name), 20_000, 250)
      if (!inA.color || !inB.color) throw new Error(`a caret without a colour: A sees ${JSON.stringify(inA)}, B sees ${JSON.stringify(inB)}`)
      await until(`${OTHER.name}'s caret still in window A`, () => caretOf(browser, OTHER.name), 10_000, 250)
      await shot('05-document-two-windows-A')
      await shot('05-document-two-windows-B', b)

      // Both editors end with the same text, and so does the server: the update log replayed by
      // a third client, and the plain-text rendering the engines write into
      // collaborative_documents.content (throttled, so polled).
      const lines = await until('identical text in both windows', async () => {
        const [la, lb] = [await editorLines(browser), await editorLines(b)]
        return la && la.includes(fromA) && la.includes(fromB) && JSON.stringify(la) === JSON.stringify(lb) ? la : null
      }, 30_000, 500)
      const want = lines.join('\n')
      await until('the document_updates log to render the windows\' text', async () => renderFragment((await replay(doc.id)).getXmlFragment('default')) === want, 30_000, 500)
      await until('collaborative_documents.content to equal the windows\' text', async () => {
        const { data, error } = await other.from('collaborative_documents').select('content').eq('id', doc.id)
        if (error) throw new Error(`REST collaborative_documents: ${error.message}`)
        return data?.[0]?.content === want
      }, 40_000, 1_000)
      await until('both windows to say synced', async () => (await docSync(browser)) === 'synced' && (await docSync(b)) === 'synced', 20_000, 500)
    } finally {
      await closeWindow(second)
    }
  })

  // ---- 6. a new challenge raises a notification ----------------------------------------------
  await scenario('challenges: a new challenge by another user raises a desktop notification', async () => {
    await nav('challenges')
    await (await $(tid('challenge-card'))).waitForDisplayed({ timeout: 20_000 })
    const title = `e2e challenge ${RUN}`
    const { data: ins, error } = await other
      .from('challenges')
      .insert({ title, description: 'made by the end-to-end test', status: 'open', created_by: otherId })
      .select('id')
    if (error) throw new Error(`the other user could not create a challenge: ${error.message}`)
    await (await $(`[data-testid="challenge-card"][data-id="${ins[0].id}"]`)).waitForDisplayed({ timeout: 20_000, timeoutMsg: 'the new challenge did not appear in the list' })
    await shot('06-challenges')
    if (!NOTIFY_LOG) throw new Error('E2E_NOTIFY_LOG is not set: no way to observe notifications')
    await until(`a Notify call on the session bus naming "${title}"`, () => fs.readFileSync(NOTIFY_LOG, 'utf8').includes(title), 20_000, 500)
  })

  // ---- a challenge's detail (a screenshot of the seeded open challenge with its submissions) ---
  await scenario('challenges: a challenge opens with its submissions', async () => {
    await nav('challenges')
    const card = await until('the seeded open challenge in the list', async () => {
      for (const c of await browser.$$(tid('challenge-card'))) if ((await c.getText()).includes('Smart irrigation')) return c
    }, 20_000)
    await card.click()
    await until('its submissions on screen', async () => (await textOf('main')).includes('Drip scheduling from weather data'), 15_000)
    await sleep(300)
    await shot('06-challenge-detail')
  })

  // ---- analytics (a screenshot of a rendered screen) -----------------------------------------
  await scenario('analytics: the screen renders', async () => {
    await nav('analytics')
    await until('the analytics screen to have content', async () => (await textOf('main')).trim().length > 20, 15_000)
    await sleep(500)
    await shot('07-analytics')
  })

  // ---- 7. Arabic → right-to-left -------------------------------------------------------------
  await scenario('settings: switching to Arabic makes the document right-to-left', async () => {
    await nav('settings')
    const ar = await $(tid('language-ar'))
    await ar.waitForClickable({ timeout: 10_000 })
    await shot('08-settings')
    await ar.click()
    await until('document.documentElement.dir === "rtl"', () => browser.execute(() => document.documentElement.dir === 'rtl'), 10_000)
    const lang = await browser.execute(() => document.documentElement.lang)
    if (lang !== 'ar') throw new Error(`<html lang> is "${lang}", expected "ar"`)
    await shot('09-settings-arabic')
    await nav('chat')
    const room = await $(`[data-testid="room"][data-room-id="${generalId}"]`)
    await room.waitForClickable({ timeout: 10_000 })
    await room.click()
    await until('the room\'s messages', async () => (await windowMessages()).length > 5, 10_000)
    await sleep(500)
    await shot('10-chat-arabic')
    // Back to English so that a kept profile starts as it was.
    await nav('settings')
    await (await $(tid('language-en'))).click()
    await until('dir back to ltr', () => browser.execute(() => document.documentElement.dir !== 'rtl'), 10_000)
  })
}

let fatal
try {
  await main()
} catch (e) {
  fatal = e
  log(`FATAL: ${e.stack || e.message}`)
  await shot('FATAL').catch(() => {})
} finally {
  for (const win of [...windows].reverse()) await closeWindow(win)
  await other?.removeAllChannels().catch(() => {})
  await stopServer().catch(() => {})
}

const passed = results.filter((r) => r.ok).length
const failed = results.length - passed + (fatal ? 1 : 0)
console.log('\n======== e2e results')
for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.name}${r.ok ? '' : `\n       ${r.error.message}`}`)
if (fatal) console.log(`FAIL  setup: ${fatal.message}`)
console.log(`e2e: ${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
