// A Yjs peer driven over stdin / stdout, one JSON object per line — the real Yjs a webview
// runs, for the Rust engine's interop tests and benchmarks (crates/core/tests/it/interop.rs,
// crates/core/examples/doc_bench.rs). Binary data is base64.
//
// Commands (answers are one line each: {"ok": ...} or {"error": "..."}):
//   {"cmd": "state_vector"}                  -> {"ok": sv}
//   {"cmd": "apply", "update": u}            -> {"ok": null}   (origin "engine": not reported back)
//   {"cmd": "edit", "pos": n, "del": n, "ins": s} -> {"ok": update}  (the update of this edit)
//   {"cmd": "text"}                          -> {"ok": string}
//   {"cmd": "diff", "state_vector": sv}      -> {"ok": update}
//   {"cmd": "awareness", "state": {...}}     -> {"ok": awareness update of the local client}
//   {"cmd": "apply_awareness", "update": u}  -> {"ok": {clientId: state, ...} of the others}
//   {"cmd": "bench_apply", "file": path}     -> {"ok": {"updates": n, "ms": t, "length": len}}
//       (a file of varint-length-prefixed v1 updates, applied one by one into a fresh doc)
import * as Y from 'yjs';
import * as awarenessProtocol from 'y-protocols/awareness';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

const doc = new Y.Doc();
const text = doc.getText('content');
const awareness = new awarenessProtocol.Awareness(doc);

const b64 = (bytes) => Buffer.from(bytes).toString('base64');
const unb64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

function unpack(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let len = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++];
      len += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    out.push(buf.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

function handle(msg) {
  switch (msg.cmd) {
    case 'state_vector':
      return b64(Y.encodeStateVector(doc));
    case 'apply':
      Y.applyUpdate(doc, unb64(msg.update), 'engine');
      return null;
    case 'edit': {
      let update = null;
      const capture = (u, origin) => {
        if (origin !== 'engine') update = u;
      };
      doc.on('update', capture);
      doc.transact(() => {
        if (msg.del > 0) text.delete(msg.pos, msg.del);
        if (msg.ins) text.insert(msg.pos, msg.ins);
      });
      doc.off('update', capture);
      return update ? b64(update) : null;
    }
    case 'text':
      return text.toString();
    case 'diff':
      return b64(Y.encodeStateAsUpdate(doc, unb64(msg.state_vector)));
    case 'awareness':
      awareness.setLocalState(msg.state);
      return b64(awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]));
    case 'apply_awareness': {
      awarenessProtocol.applyAwarenessUpdate(awareness, unb64(msg.update), 'engine');
      const others = {};
      for (const [id, state] of awareness.getStates()) if (id !== doc.clientID) others[id] = state;
      return others;
    }
    case 'bench_apply': {
      const updates = unpack(readFileSync(msg.file));
      const fresh = new Y.Doc();
      const t0 = performance.now();
      for (const u of updates) Y.applyUpdate(fresh, u);
      const ms = performance.now() - t0;
      return { updates: updates.length, ms, length: fresh.getText('content').length };
    }
    default:
      throw new Error(`unknown command ${msg.cmd}`);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let reply;
  try {
    reply = { ok: handle(JSON.parse(line)) };
  } catch (e) {
    reply = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
});
lines.on('close', () => {
  awareness.destroy();
  process.exit(0);
});
