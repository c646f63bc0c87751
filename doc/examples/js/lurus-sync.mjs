// Lurus Switch live sync client for browsers and Node.js (no dependencies).
//
// Browser:  import { LurusSync } from './lurus-sync.mjs';
//           const sync = new LurusSync({ baseUrl: 'https://ai.lurus.cn', apiKey, deviceId: 'web-1',
//                                        onEvent: e => render(e), onState: s => renderAll(s) });
//           sync.start();
// Node 20:  LURUS_SYNC_URL=http://127.0.0.1:18104 LURUS_API_KEY=sk-lurus-... DEVICE_ID=cli-1 \
//           ORIGIN=http://localhost:5173 node --experimental-websocket lurus-sync.mjs
//           (Node 22+ has WebSocket without the flag.)
//
// The same code runs in both: it asks POST /api/v1/sync/ticket for a
// single-use ticket with the API key, then opens /ws/sync?ticket=... (a
// browser cannot put the key in a WebSocket header). A browser sends its
// Origin itself; in Node the `origin` option sends one (it must be in the
// server's allow-list). It reconnects with exponential backoff and resumes
// with last_event_id, so no event is lost or repeated across reconnects.

const CLOSE_CREDENTIALS_CHANGED = 4001;
const CLOSE_SLOW_CONSUMER = 4008;

export class LurusSync {
  constructor({ baseUrl, apiKey, deviceId, types = [], origin, lastEventId = '',
                onEvent = () => {}, onState = () => {}, onStatus = () => {}, onError = () => {} }) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    Object.assign(this, { apiKey, deviceId, types, origin, lastEventId, onEvent, onState, onStatus, onError });
    this.attempt = 0;
    this.stopped = false;
    this.ws = null;
    this.pingTimer = null;
    this.pongDeadline = null;
  }

  start() { this.stopped = false; this.connect(); }

  stop() {
    this.stopped = true;
    clearInterval(this.pingTimer);
    if (this.ws) this.ws.close(1000, 'bye');
  }

  // Ask billing-service's state: answered by a sync_state message.
  requestState() { this.send({ type: 'sync_request', id: 'state-' + Date.now() }); }

  send(msg) { if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg)); }

  async connect() {
    if (this.stopped) return;
    let ticket;
    try {
      const res = await fetch(this.baseUrl + '/api/v1/sync/ticket', {
        method: 'POST',
        headers: { 'x-api-key': this.apiKey, ...(this.origin ? { Origin: this.origin } : {}) },
      });
      const body = await res.json();
      if (res.status === 401 || res.status === 403) {
        // A refused key will not get better by retrying.
        this.onError(body.error);
        this.stopped = true;
        this.onStatus({ kind: 'stopped', reason: body.error && body.error.reason });
        return;
      }
      if (!res.ok) throw new Error(`ticket: HTTP ${res.status}`);
      ticket = body.ticket;
    } catch (err) {
      this.onError({ reason: 'NETWORK', message: String(err) });
      return this.retry();
    }
    const q = new URLSearchParams({ ticket, device_id: this.deviceId });
    if (this.lastEventId) q.set('last_event_id', this.lastEventId);
    if (this.types.length) q.set('types', this.types.join(','));
    const url = this.baseUrl.replace(/^http/, 'ws') + '/ws/sync?' + q;
    // Browsers ignore the second argument's headers; Node's WebSocket
    // sends them (it sends no Origin of its own).
    const ws = typeof window === 'undefined' && this.origin
      ? new WebSocket(url, { headers: { Origin: this.origin } })
      : new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.onStatus({ kind: 'open', resumed_from: this.lastEventId || null });
      // Application ping: detects a dead connection from this side too.
      this.pingTimer = setInterval(() => {
        if (this.pongDeadline && Date.now() > this.pongDeadline) return ws.close(4000, 'pong timeout');
        this.pongDeadline = Date.now() + 10_000;
        this.send({ type: 'ping' });
      }, 25_000);
    };
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      switch (msg.type) {
        case 'event':
          this.lastEventId = msg.event.id; // resume point (persist it, e.g. localStorage)
          this.onEvent(msg.event);
          break;
        case 'sync_state':
          // The full state; events already in it sort at or before last_event_id.
          if (msg.state.last_event_id) this.lastEventId = msg.state.last_event_id;
          this.onState(msg.state, msg.reason);
          break;
        case 'pong':
          this.pongDeadline = null;
          break;
        case 'error':
          this.onError(msg);
          break;
      }
    };
    ws.onclose = (e) => {
      clearInterval(this.pingTimer);
      this.pongDeadline = null;
      this.onStatus({ kind: 'close', code: e.code, reason: e.reason });
      if (e.code === CLOSE_SLOW_CONSUMER || e.code === CLOSE_CREDENTIALS_CHANGED) this.attempt = 0;
      this.retry();
    };
    ws.onerror = () => {}; // onclose follows
  }

  retry() {
    if (this.stopped) return;
    // Exponential backoff with full jitter: 0.5 s, 1 s, 2 s … capped at 30 s.
    const cap = Math.min(30_000, 500 * 2 ** this.attempt++);
    setTimeout(() => this.connect(), Math.random() * cap);
  }
}

// Command-line use (Node): prints one JSON line per event, state and status;
// exits after MAX_EVENTS events when set.
const isMain = typeof process !== 'undefined' && process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop());
if (isMain) {
  const max = Number(process.env.MAX_EVENTS || 0);
  let n = 0;
  const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
  const sync = new LurusSync({
    baseUrl: process.env.LURUS_SYNC_URL || 'http://127.0.0.1:18104',
    apiKey: process.env.LURUS_API_KEY,
    deviceId: process.env.DEVICE_ID || 'node-cli',
    origin: process.env.ORIGIN,
    lastEventId: process.env.LAST_EVENT_ID || '',
    onEvent: (e) => {
      out({ kind: 'event', id: e.id, type: e.type, data: e.data });
      if (max && ++n >= max) { sync.stop(); process.exit(0); }
    },
    onState: (s, reason) => out({ kind: 'state', reason, state: s }),
    onStatus: (s) => { out(s); if (s.kind === 'stopped') process.exit(2); },
    onError: (e) => out({ kind: 'error', ...e }),
  });
  sync.start();
}
