// The desktop benchmark: cold start to the chat screen filled from the cache, and the resident
// memory of the app with its WebKit processes after idling on the chat screen. Run by
// scripts/bench-desktop, which builds the release app and provides the session (Xvfb, a private
// D-Bus session with an unlocked gnome-keyring, so the signed-in session survives restarts).
//
// 1. Sign in once: the release app through tauri-driver + WebDriver, with its own profile
//    (RUWAD_DATA_DIR) and the real default backend (the embedded one with its demo data: no
//    RUWAD_BACKEND_URL), as Layla through the sign-in screen; open a room; let it sync; close.
// 2. Cold starts: spawn the binary directly (no driver), time from spawn to the `ui ready` log
//    line (the UI calls `ui_ready` once the chat screen shows its room list from the cache; the
//    line carries the shell's own `ms_since_start`, from the first thing in `main`), kill the app
//    and its WebKit processes. BENCH_RUNS runs with the OS page cache warm, then BENCH_RUNS with
//    it dropped before each (`sync; echo 3 > /proc/sys/vm/drop_caches`, when writable).
// 3. Idle memory: start once more, stay on the chat screen BENCH_IDLE_SECS (300), then sum RSS
//    and PSS (/proc/PID/smaps_rollup) over the app process and all its descendants, listing each
//    (also sampled right after `ui ready`, for comparison).
// The figures go to stdout and, with the method, into docs/benchmarks.md between
// `<!-- ruwad-desktop:bench:start -->` and `<!-- ruwad-desktop:bench:end -->`.
//
// Environment: BENCH_APP (release ruwad-desktop), BENCH_TAURI_DRIVER, BENCH_WORK (scratch dir),
// BENCH_DOC (docs/benchmarks.md), BENCH_RUNS (default 7), BENCH_IDLE_SECS (default 300).

import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import { freePort, portOpen, until } from './util.mjs'

import { remote } from 'webdriverio'

const env = (name) => {
  const v = process.env[name]
  if (!v) throw new Error(`bench-desktop.mjs: ${name} is not set (run scripts/bench-desktop)`)
  return v
}
const APP = fs.realpathSync(env('BENCH_APP'))
const DRIVER = path.resolve(env('BENCH_TAURI_DRIVER'))
const WORK = path.resolve(env('BENCH_WORK'))
const DOC = path.resolve(env('BENCH_DOC'))
const RUNS = Number(process.env.BENCH_RUNS || 7)
const IDLE_SECS = Number(process.env.BENCH_IDLE_SECS || 300)
const PROFILE = path.join(WORK, 'profile')
const EMAIL = 'layla@demo.ruwad.app'
const PASSWORD = 'ruwad-demo'
const START = '<!-- ruwad-desktop:bench:start -->'
const END = '<!-- ruwad-desktop:bench:end -->'

const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...a)
const tid = (id) => `[data-testid="${id}"]`

// The app's environment: its own profile, the embedded backend (no RUWAD_BACKEND_URL).
const appEnv = () => {
  const e = { ...process.env, RUWAD_DATA_DIR: PROFILE, RUST_LOG: 'info', NO_COLOR: '1' }
  delete e.RUWAD_BACKEND_URL
  delete e.RUWAD_ANON_KEY
  return e
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Every process: pid → { ppid, comm }. */
function processTable() {
  const table = new Map()
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      const comm = stat.slice(stat.indexOf('(') + 1, close)
      const ppid = Number(stat.slice(close + 2).split(' ')[1])
      table.set(Number(name), { ppid, comm })
    } catch {
      // gone meanwhile
    }
  }
  return table
}

/** `pid` and all its descendants. */
function tree(pid) {
  const table = processTable()
  const out = [pid]
  for (let i = 0; i < out.length; i++) for (const [p, info] of table) if (info.ppid === out[i]) out.push(p)
  return out.filter((p) => table.has(p)).map((p) => ({ pid: p, comm: table.get(p).comm }))
}

/** Processes running the app binary (leftovers from a session). */
function appProcesses() {
  const out = []
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (fs.readlinkSync(`/proc/${name}/exe`) === APP) out.push(Number(name))
    } catch {
      // not ours, or gone
    }
  }
  return out
}

/** RSS and PSS in KiB from smaps_rollup. */
function memoryOf(pid) {
  const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN)
  return { rss: field('Rss'), pss: field('Pss') }
}

function memorySnapshot(pid) {
  const rows = []
  for (const p of tree(pid)) {
    try {
      const cmd = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0')[0]
      rows.push({ ...p, exe: path.basename(cmd || p.comm), ...memoryOf(p.pid) })
    } catch {
      // exited between the listing and the read
    }
  }
  return rows
}

/** Stops the app started as `child` and every process under it; waits for all of them. */
async function stopApp(child) {
  const all = tree(child.pid).map((p) => p.pid)
  for (const p of all) {
    try {
      process.kill(p, 'SIGTERM')
    } catch {
      // already gone
    }
  }
  const end = Date.now() + 10_000
  while (Date.now() < end && all.some((p) => fs.existsSync(`/proc/${p}`) && !isZombie(p))) await sleep(50)
  for (const p of all) {
    try {
      if (fs.existsSync(`/proc/${p}`) && !isZombie(p)) process.kill(p, 'SIGKILL')
    } catch {
      // gone
    }
  }
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
}

function isZombie(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/** Spawns the app directly and resolves at its `ui ready` line: { child, wallMs, inAppMs, items }. */
async function startApp(label) {
  if (appProcesses().length) throw new Error(`an app process is still running before ${label}: ${appProcesses()}`)
  const logFile = fs.createWriteStream(path.join(WORK, `app-${label}.log`))
  const t0 = performance.now()
  const child = spawn(APP, [], { env: appEnv(), stdio: ['ignore', 'ignore', 'pipe'] })
  const ready = await new Promise((resolve, reject) => {
    let buf = ''
    const timer = setTimeout(() => reject(new Error(`${label}: no "ui ready" line within 60 s (see ${WORK}/app-${label}.log)`)), 60_000)
    child.on('exit', (code, sig) => reject(new Error(`${label}: the app exited (code ${code}, signal ${sig}) before "ui ready"`)))
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (chunk) => {
      const t = performance.now()
      logFile.write(chunk)
      if (buf === null) return // ready already; the rest only goes to the log file
      buf += chunk
      const m = /ui ready ms_since_start=(\d+) screen=(\w+) items=(\d+)/.exec(buf.replace(/\x1b\[[0-9;]*m/g, ''))
      if (m) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        buf = null
        resolve({ wallMs: t - t0, inAppMs: Number(m[1]), screen: m[2], items: Number(m[3]) })
      }
    })
  })
  child.on('exit', () => logFile.end())
  return { child, ...ready }
}

// ---------------------------------------------------------------------------------------------
// 1. Sign in once through the window

async function signInOnce() {
  const driverLog = fs.openSync(path.join(WORK, 'tauri-driver.log'), 'w')
  const port = await freePort()
  const nativePort = await freePort()
  const driver = spawn(DRIVER, ['--port', String(port), '--native-port', String(nativePort)], { stdio: ['ignore', driverLog, driverLog], env: appEnv() })
  let browser
  try {
    await until(`tauri-driver on ${port}`, () => portOpen(port), 30_000)
    browser = await remote({
      hostname: '127.0.0.1',
      port,
      logLevel: 'warn',
      connectionRetryTimeout: 120_000,
      capabilities: { browserName: 'wry', 'wdio:enforceWebDriverClassic': true, 'tauri:options': { application: APP } },
    })
    const email = await browser.$(tid('signin-email'))
    await email.waitForDisplayed({ timeout: 60_000 })
    await email.setValue(EMAIL)
    await (await browser.$(tid('signin-password'))).setValue(PASSWORD)
    await (await browser.$(tid('signin-submit'))).click()
    await (await browser.$(tid('workspace'))).waitForDisplayed({ timeout: 60_000 })
    const state = () => browser.execute((s) => document.querySelector(s)?.getAttribute('data-state') ?? '', tid('connection-bar'))
    await until('online', async () => (await state()) === 'online', 60_000)
    // Open a room, so that its messages are in the cache too; then let the sync settle.
    const room = await browser.$(tid('room'))
    await room.waitForClickable({ timeout: 30_000 })
    await room.click()
    await until('messages', () => browser.execute(() => document.querySelectorAll('[data-testid="message"]').length > 5), 30_000)
    await sleep(10_000)
    log('signed in as', EMAIL, 'and synced')
  } finally {
    await browser?.deleteSession().catch(() => {})
    driver.kill('SIGTERM')
    await Promise.race([once(driver, 'exit'), sleep(5_000)])
  }
  // The driver's app must be gone before the direct starts (one instance per profile).
  await until('the signed-in app to exit', () => appProcesses().length === 0, 20_000).catch(() => {
    for (const p of appProcesses()) process.kill(p, 'SIGKILL')
  })
  await sleep(1_000)
}

// ---------------------------------------------------------------------------------------------
// 2. Cold starts

function dropCaches() {
  try {
    execFileSync('sync')
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n')
    return true
  } catch {
    return false
  }
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1], n: s.length }
}

async function coldStarts(kind) {
  const runs = []
  for (let i = 1; i <= RUNS; i++) {
    if (kind === 'dropped' && !dropCaches()) return null
    await sleep(kind === 'dropped' ? 2_000 : 1_000)
    const r = await startApp(`${kind}-${i}`)
    if (r.screen !== 'Chat') throw new Error(`the first screen reported is ${r.screen}, not the chat screen`)
    if (r.items < 1) throw new Error(`the chat screen showed ${r.items} rooms: the profile is not signed in / synced`)
    runs.push(r)
    log(`${kind} start ${i}: ${r.wallMs.toFixed(0)} ms from spawn to "ui ready" (${r.inAppMs} ms in the app), ${r.items} rooms`)
    await sleep(2_000) // the engine settles; then the app is stopped as a user would quit it
    await stopApp(r.child)
  }
  return { wall: stats(runs.map((r) => r.wallMs)), inApp: stats(runs.map((r) => r.inAppMs)) }
}

// ---------------------------------------------------------------------------------------------
// The report

function cpuName() {
  const m = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))
  return `${m ? m[1].trim() : os.arch()}, ${os.cpus().length} cores`
}

function packageVersion(name) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

const mb = (kib) => (kib / 1024).toFixed(1)
const ms = (x) => `${Math.round(x)} ms`

function writeSection(body) {
  let text = fs.existsSync(DOC) ? fs.readFileSync(DOC, 'utf8') : '# Benchmarks\n'
  const section = `${START}\n${body.trim()}\n\n${END}`
  const a = text.indexOf(START)
  const b = text.indexOf(END)
  if (a >= 0 && b > a) text = text.slice(0, a) + section + text.slice(b + END.length)
  else text = `${text.trimEnd()}\n\n${section}\n`
  fs.writeFileSync(DOC, text)
}

function summary(rows) {
  const app = rows.filter((r) => r.pid === rows[0]?.pid)
  const webkit = rows.filter((r) => r.pid !== rows[0]?.pid)
  const sum = (xs, k) => xs.reduce((s, r) => s + r[k], 0)
  return { rss: sum(rows, 'rss'), pss: sum(rows, 'pss'), appRss: sum(app, 'rss'), appPss: sum(app, 'pss'), wkRss: sum(webkit, 'rss'), wkPss: sum(webkit, 'pss') }
}

async function main() {
  fs.mkdirSync(WORK, { recursive: true })
  log(`app ${APP}; profile ${PROFILE}; ${RUNS} runs per kind; idle ${IDLE_SECS} s`)
  await signInOnce()

  const warm = await coldStarts('warm')
  const dropped = await coldStarts('dropped')
  if (!dropped) log('cannot drop the page cache here (/proc/sys/vm/drop_caches is not writable): warm starts only')

  const r = await startApp('idle')
  await sleep(3_000)
  const atStart = memorySnapshot(r.child.pid)
  log(`started for the idle run in ${ms(r.wallMs)}; idling ${IDLE_SECS} s on the chat screen`)
  await sleep(IDLE_SECS * 1000)
  const idle = memorySnapshot(r.child.pid)
  await stopApp(r.child)
  if (!idle.length) throw new Error('the app was gone at the end of the idle period')

  const s0 = summary(atStart)
  const s1 = summary(idle)
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ')
  const load = os.loadavg()[0].toFixed(2)
  const target = (ok) => (ok ? 'met' : 'not met')
  const lines = []
  lines.push('## Desktop app: cold start and idle memory (`scripts/bench-desktop`)')
  lines.push('')
  lines.push(`Run on ${when} UTC (${cpuName()}, load average ${load} when the run ended; Xvfb, no GPU), release \`ruwad-desktop\` (embedded UI and backend), WebKitGTK ${packageVersion('libwebkit2gtk-4.1-0')}, signed in as Layla on the demo data.`)
  lines.push('')
  lines.push('| measurement | median | min | max | target |')
  lines.push('|---|---|---|---|---|')
  lines.push(`| cold start to the chat screen filled from the cache, page cache warm (spawn → \`ui ready\`, ${warm.wall.n} runs) | ${ms(warm.wall.median)} | ${ms(warm.wall.min)} | ${ms(warm.wall.max)} | ≤ 1 s: ${target(warm.wall.median <= 1000)} |`)
  lines.push(`| the same, the app's own count (\`ms_since_start\`: from \`main\`) | ${ms(warm.inApp.median)} | ${ms(warm.inApp.min)} | ${ms(warm.inApp.max)} | |`)
  if (dropped) {
    lines.push(`| cold start, OS page cache dropped before each run (${dropped.wall.n} runs) | ${ms(dropped.wall.median)} | ${ms(dropped.wall.min)} | ${ms(dropped.wall.max)} | ≤ 1 s: ${target(dropped.wall.median <= 1000)} |`)
    lines.push(`| the same, the app's own count | ${ms(dropped.inApp.median)} | ${ms(dropped.inApp.min)} | ${ms(dropped.inApp.max)} | |`)
  }
  lines.push('')
  lines.push(`| resident memory, app + WebKit processes | 3 s after \`ui ready\` | after ${IDLE_SECS >= 60 ? `${IDLE_SECS / 60} min` : `${IDLE_SECS} s`} idle on the chat screen | target |`)
  lines.push('|---|---|---|---|')
  lines.push(`| total RSS | ${mb(s0.rss)} MB | ${mb(s1.rss)} MB | ≤ 150 MB: ${target(s1.rss <= 150 * 1024)} |`)
  lines.push(`| total PSS (shared pages split between processes) | ${mb(s0.pss)} MB | ${mb(s1.pss)} MB | ≤ 150 MB: ${target(s1.pss <= 150 * 1024)} |`)
  lines.push(`| of which the app process (shell, engine, embedded backend), RSS / PSS | ${mb(s0.appRss)} / ${mb(s0.appPss)} MB | ${mb(s1.appRss)} / ${mb(s1.appPss)} MB | |`)
  lines.push(`| of which WebKit's processes, RSS / PSS | ${mb(s0.wkRss)} / ${mb(s0.wkPss)} MB | ${mb(s1.wkRss)} / ${mb(s1.wkPss)} MB | |`)
  lines.push('')
  lines.push(`Processes after the idle period: ${idle.map((p) => `\`${p.exe}\` (pid ${p.pid}) RSS ${mb(p.rss)} MB / PSS ${mb(p.pss)} MB`).join('; ')}.`)
  lines.push('')
  lines.push(
    `**Method.** \`scripts/bench-desktop\` builds the UI and \`cargo build --release -p ruwad-desktop\` (the embedded UI; not the .deb), then runs \`tests/e2e/bench-desktop.mjs\` under \`xvfb-run\` (1280×800×24) inside \`dbus-run-session\` with an unlocked gnome-keyring in a throwaway HOME, so the session the app keeps in the keychain survives restarts. The app has its own profile (\`RUWAD_DATA_DIR\`) and the real default backend: the embedded local backend with its demo data (no \`RUWAD_BACKEND_URL\`). First it signs in once through the sign-in screen over WebDriver (tauri-driver), opens a room and lets the sync settle, and quits. *Cold start*: the binary is spawned directly (no driver) ${RUNS} times; each time is from just before \`spawn\` to the \`ui ready\` line on its stderr, which the shell logs when the UI reports (command \`ui_ready\`, once per process) that the chat screen shows its room list read from the engine's local cache; the line also carries the shell's own \`ms_since_start\`, counted from the first statement of \`main\` (so the difference is exec, dynamic linking and reading the log pipe). Every start restores the session from the keychain, starts the embedded backend and the engine, creates the window and the WebKit processes, loads the UI and reads the rooms. After each start the app idles 2 s and is stopped (SIGTERM to it and its descendants). Warm runs first (the binary and the profile in the OS page cache after the sign-in run); then${dropped ? '' : ' (not possible here)'} runs with \`sync; echo 3 > /proc/sys/vm/drop_caches\` before each, which also evicts the WebKitGTK libraries. *Memory*: one more start, 3 s after \`ui ready\` a first sample, then ${IDLE_SECS} s idle on the chat screen (the engine connected to the embedded backend, nothing typed), then RSS and PSS from \`/proc/PID/smaps_rollup\` for the app process and every descendant (WebKitWebProcess, WebKitNetworkProcess and any sandbox helper), summed. RSS counts shared libraries in every process that maps them, so the RSS total over-counts; PSS splits each shared page between its users and is the fairer sum. The machine's two cores are shared with other work, so start times move between runs.`,
  )
  const body = lines.join('\n')
  console.log(`\n${body}\n`)
  writeSection(body)
  log(`written to ${DOC}`)
}

try {
  await main()
} catch (e) {
  log(`FAILED: ${e.stack || e.message}`)
  for (const p of appProcesses()) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      // gone
    }
  }
  process.exit(1)
}
