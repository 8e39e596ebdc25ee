// The staff page's one store: the map's couriers, open orders and counters, kept from the map
// socket's snapshot and deltas (`/v1/map/ws`). The socket lives here; views subscribe and read.

import { ReconnectingSocket, type SocketState } from '../lib/socket';
import type { DeltaFrame, Kpis, MapCourier, MapOrder, SnapshotFrame } from '../lib/types';

export type StoreEvent = 'couriers' | 'orders' | 'kpis' | 'connection';

export class MapStore {
  readonly couriers = new Map<string, MapCourier>();
  readonly orders = new Map<string, MapOrder>();
  kpis: Kpis | null = null;
  version = 0;
  connection: SocketState = 'connecting';
  connectionDetail = '';
  /** When the last frame arrived (for the "updated" note). */
  lastFrameAt: Date | null = null;
  /** Frames received (snapshots and deltas). */
  frames = 0;
  /** The service's clock minus ours (the demo's clock is simulated). */
  private clockOffsetMs = 0;
  private socket: ReconnectingSocket | null = null;
  private readonly listeners = new Map<StoreEvent, Set<() => void>>();

  connect(token: string): void {
    this.socket?.stop();
    this.socket = new ReconnectingSocket({
      url: () => `/v1/map/ws?token=${encodeURIComponent(token)}`,
      onMessage: (data) => this.receive(data as SnapshotFrame | DeltaFrame),
      onState: (state, detail) => {
        this.connection = state;
        this.connectionDetail = detail;
        this.emit('connection');
      },
    });
  }

  disconnect(): void {
    this.socket?.stop();
    this.socket = null;
  }

  /** The service's clock now. */
  now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  on(event: StoreEvent, listener: () => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  private emit(event: StoreEvent): void {
    for (const l of this.listeners.get(event) ?? []) l();
  }

  /** Applies a frame: a snapshot replaces everything; a delta not newer than the view is ignored. */
  receive(frame: SnapshotFrame | DeltaFrame): void {
    if (frame.type === 'snapshot') {
      this.couriers.clear();
      this.orders.clear();
      for (const c of frame.couriers) this.couriers.set(c.id, c);
      for (const o of frame.orders) this.orders.set(o.id, o);
    } else if (frame.type === 'delta') {
      if (frame.version <= this.version) return;
      for (const c of frame.couriers) this.couriers.set(c.id, c);
      for (const o of frame.orders) this.orders.set(o.id, o);
      for (const id of frame.removed_orders) this.orders.delete(id);
    } else {
      return;
    }
    this.version = frame.version;
    this.kpis = frame.kpis;
    const serverNow = Date.parse(frame.now);
    if (Number.isFinite(serverNow)) this.clockOffsetMs = serverNow - Date.now();
    this.lastFrameAt = new Date();
    this.frames += 1;
    if (frame.type === 'snapshot' || frame.couriers.length) this.emit('couriers');
    if (frame.type === 'snapshot' || frame.orders.length || frame.removed_orders.length) this.emit('orders');
    this.emit('kpis');
  }

  /** An order the API just answered with (a correction): shown at once, before the next delta. */
  patchOrder(id: string, patch: Partial<MapOrder> | null): void {
    if (patch === null) {
      if (this.orders.delete(id)) this.emit('orders');
      return;
    }
    const o = this.orders.get(id);
    if (!o) return;
    this.orders.set(id, { ...o, ...patch });
    this.emit('orders');
  }
}
