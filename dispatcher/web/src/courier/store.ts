// The courier app's one store: the route pushed over `/v1/courier/ws`, the taps and GPS fixes
// waiting to be sent, and the connection. Everything the phone must not lose (token, route and
// its version, the queue) is kept in localStorage, so a reload or a dead network loses nothing:
// queued frames are sent again on every (re)connection with the same client ids, and the
// service applies each once. The socket resumes with `since` (the route version held).

import { ReconnectingSocket, type SocketState } from '../lib/socket';
import type { StopFrame } from '../lib/types';

export type EventName = 'arrived' | 'picked_up' | 'delivered' | 'failed';

export interface Fix {
  lat: number;
  lon: number;
  at: string;
  speed_mps?: number;
  heading?: number;
  accuracy_m?: number;
}

export type Pending =
  | { type: 'event'; client_id: string; order_id: string; event: EventName; reason?: string }
  | { type: 'positions'; client_id: string; fixes: Fix[] };

interface Saved {
  courierId: string | null;
  seq: number;
  stops: StopFrame[];
  queue: Pending[];
  /** Taps made on stops, `order_id:kind` → the event (so the next stop moves on at once). */
  done: Record<string, EventName>;
  onShift: boolean;
}

const KEY = 'courier.state.v1';
const TOKEN_KEY = 'courier.token';
const MAX_FIXES = 100;

export type Listener = () => void;

export class CourierStore {
  courierId: string | null = null;
  seq = 0;
  stops: StopFrame[] = [];
  queue: Pending[] = [];
  done: Record<string, EventName> = {};
  onShift = false;
  connection: SocketState = 'connecting';
  /** A refusal or note to show once. */
  notice: { text: string; tone: 'ok' | 'bad' } | null = null;
  /** The service's clock minus ours, from the welcome frame. */
  private clockOffsetMs = 0;
  private socket: ReconnectingSocket | null = null;
  private readonly listeners = new Set<Listener>();

  constructor() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Saved | null;
      if (saved) {
        this.courierId = saved.courierId;
        this.seq = saved.seq;
        this.stops = saved.stops;
        this.queue = saved.queue;
        this.done = saved.done ?? {};
        this.onShift = saved.onShift;
      }
    } catch {
      localStorage.removeItem(KEY);
    }
  }

  static token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  }

  static saveToken(token: string): void {
    localStorage.setItem(TOKEN_KEY, token);
  }

  static signOut(): void {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(KEY);
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private changed(): void {
    const saved: Saved = { courierId: this.courierId, seq: this.seq, stops: this.stops, queue: this.queue, done: this.done, onShift: this.onShift };
    localStorage.setItem(KEY, JSON.stringify(saved));
    for (const l of this.listeners) l();
  }

  now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  connect(token: string): void {
    this.socket = new ReconnectingSocket({
      url: () => `/v1/courier/ws?token=${encodeURIComponent(token)}${this.seq > 0 ? `&since=${this.seq}` : ''}`,
      onMessage: (data) => this.receive(data as Record<string, unknown>),
      onState: (state) => {
        this.connection = state;
        this.changed();
      },
      finalCodes: { 4000: 'replaced' },
    });
  }

  /** Takes the session back from another tab or phone. */
  useHere(): void {
    this.socket?.reconnectNow();
  }

  /** The stops still to do: the route, less those tapped but not yet in a new route version. */
  get remaining(): StopFrame[] {
    return this.stops.filter((s) => {
      const tap = this.done[`${s.order_id}:${s.kind}`];
      return !(tap === 'picked_up' || tap === 'delivered' || tap === 'failed');
    });
  }

  /** A status tap: queued, sent now if connected, and sent again on reconnect until answered. */
  tap(orderId: string, kind: StopFrame['kind'], event: EventName, reason?: string): void {
    const frame: Pending = { type: 'event', client_id: uuid(), order_id: orderId, event, ...(reason ? { reason } : {}) };
    this.queue.push(frame);
    this.done[`${orderId}:${kind}`] = event;
    this.changed();
    this.socket?.send(frame);
  }

  /** A GPS fix, timed on the service's clock; joins the last unsent positions frame. */
  position(fix: Omit<Fix, 'at'>, at: Date): void {
    const timed: Fix = { ...fix, at: new Date(at.getTime() + this.clockOffsetMs).toISOString() };
    const last = this.queue[this.queue.length - 1];
    if (!this.socket?.isOpen && last?.type === 'positions' && last.fixes.length < MAX_FIXES) {
      last.fixes.push(timed);
      this.changed();
      return;
    }
    const frame: Pending = { type: 'positions', client_id: uuid(), fixes: [timed] };
    this.queue.push(frame);
    this.changed();
    this.socket?.send(frame);
  }

  setShift(on: boolean): void {
    this.onShift = on;
    this.changed();
  }

  private receive(f: Record<string, unknown>): void {
    switch (f.type) {
      case 'welcome': {
        this.courierId = String(f.courier_id);
        const now = Date.parse(String(f.now));
        if (Number.isFinite(now)) this.clockOffsetMs = now - Date.now();
        // Everything not yet answered goes again, in order; the service applies each once.
        for (const p of this.queue) this.socket?.send(p);
        break;
      }
      case 'route': {
        this.seq = Number(f.seq);
        this.stops = (f.stops as StopFrame[]) ?? [];
        // Taps the new version already reflects are forgotten.
        const keys = new Set(this.stops.map((s) => `${s.order_id}:${s.kind}`));
        for (const k of Object.keys(this.done)) if (!keys.has(k) && !this.queue.some((p) => p.type === 'event' && k.startsWith(`${p.order_id}:`))) delete this.done[k];
        this.socket?.send({ type: 'ack', seq: this.seq });
        break;
      }
      case 'in_sync':
        break;
      case 'event_ok':
        this.answered(String(f.client_id));
        if (f.duplicate) this.notice = { text: `Already recorded: ${String(f.order_id)} is ${String(f.status).replace(/_/g, ' ')}.`, tone: 'ok' };
        break;
      case 'positions_ok':
        this.answered(String(f.client_id));
        break;
      case 'error': {
        const id = f.client_id == null ? null : String(f.client_id);
        const refused = id ? this.queue.find((p) => p.client_id === id) : undefined;
        if (id) this.answered(id);
        if (refused?.type === 'event') {
          delete this.done[`${refused.order_id}:${refused.event === 'picked_up' ? 'pickup' : 'dropoff'}`];
          this.notice = { text: `Not recorded: ${String(f.detail)}`, tone: 'bad' };
        } else if (!refused) {
          this.notice = { text: String(f.detail), tone: 'bad' };
        }
        break;
      }
      default:
        return;
    }
    this.changed();
  }

  private answered(clientId: string): void {
    this.queue = this.queue.filter((p) => p.client_id !== clientId);
  }

  get pendingTaps(): number {
    return this.queue.filter((p) => p.type === 'event').length;
  }

  get pendingFixes(): number {
    return this.queue.reduce((n, p) => n + (p.type === 'positions' ? p.fixes.length : 0), 0);
  }
}

function uuid(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}
