// The one WebSocket client: connects with the token in the query (browsers cannot set headers
// on a socket), reconnects with exponential backoff and jitter, resumes with whatever `since`
// the owner gives for the next attempt, follows the browser's online/offline events, and
// reports its state. Views never open sockets themselves: a store owns one of these.

export type SocketState = 'connecting' | 'open' | 'offline' | 'waiting' | 'replaced' | 'stopped';

export interface SocketOptions {
  /** The URL for the next attempt (path and query, e.g. `/v1/courier/ws?since=4`). */
  url: () => string;
  onMessage: (data: unknown) => void;
  onOpen?: () => void;
  onState?: (state: SocketState, detail: string) => void;
  /** Close codes after which the client must not reconnect by itself. */
  finalCodes?: Record<number, SocketState>;
}

const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;

export class ReconnectingSocket {
  private ws: WebSocket | null = null;
  private attempt = 0;
  private timer: number | undefined;
  private stopped = false;
  state: SocketState = 'connecting';

  constructor(private readonly options: SocketOptions) {
    window.addEventListener('offline', this.goneOffline);
    window.addEventListener('online', this.backOnline);
    if (navigator.onLine) this.connect();
    else this.setState('offline', 'no network');
  }

  /** Sends a JSON frame; false when the socket is not open (the caller keeps it queued). */
  send(frame: unknown): boolean {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  get isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Reconnects now (e.g. after `replaced`, when the user takes the session back). */
  reconnectNow(): void {
    this.stopped = false;
    this.attempt = 0;
    window.clearTimeout(this.timer);
    this.drop();
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    window.removeEventListener('offline', this.goneOffline);
    window.removeEventListener('online', this.backOnline);
    this.drop();
    this.setState('stopped', '');
  }

  private goneOffline = (): void => {
    window.clearTimeout(this.timer);
    this.drop();
    this.setState('offline', 'no network');
  };

  private backOnline = (): void => {
    if (this.stopped || this.state === 'replaced') return;
    this.attempt = 0;
    window.clearTimeout(this.timer);
    this.connect();
  };

  private drop(): void {
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onmessage = ws.onerror = null;
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
  }

  private setState(state: SocketState, detail: string): void {
    this.state = state;
    this.options.onState?.(state, detail);
  }

  private connect(): void {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    this.setState('connecting', '');
    const ws = new WebSocket(`${scheme}//${location.host}${this.options.url()}`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setState('open', '');
      this.options.onOpen?.();
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let data: unknown;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.options.onMessage(data);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const final = this.options.finalCodes?.[event.code];
      if (final) {
        this.setState(final, event.reason);
        return;
      }
      if (!navigator.onLine) {
        this.setState('offline', 'no network');
        return;
      }
      this.schedule();
    };
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    this.attempt += 1;
    this.setState('waiting', `retrying in ${Math.ceil(delay / 1000)} s`);
    this.timer = window.setTimeout(() => this.connect(), delay);
  }
}
