// An order's card: its facts, the corrections staff may make (each through the API, shown on the
// map at once), why it waits or why it went to its courier (the optimizer's candidates), its
// timeline, and for a delivered order the courier's track from pickup to drop-off.

import { Api, ApiError, seg } from '../lib/api';
import { h, render } from '../lib/dom';
import { clock, clockSeconds, duration, humanize, parseTime, relative } from '../lib/format';
import type { Candidates, MapOrder, OrderView, Timeline, TimelineEntry } from '../lib/types';
import type { MapStore } from './store';

export interface CardHost {
  api: Api;
  store: MapStore;
  el: HTMLElement;
  openCourier: (id: string) => void;
  showTrack: (coordinates: [number, number][]) => void;
  clearTrack: () => void;
  close: () => void;
}

const OPEN = new Set(['created', 'assigned', 'picked_up']);

export class OrderCard {
  private order: OrderView | null = null;
  private shown: string = '';
  private reloadTimer: number | undefined;
  private readonly off: () => void;
  private message: { text: string; tone: 'ok' | 'bad' } | null = null;
  private candidatesLimit = 5;

  constructor(
    private readonly host: CardHost,
    readonly orderId: string,
  ) {
    this.off = host.store.on('orders', () => this.followMap());
    void this.load();
  }

  dispose(): void {
    this.off();
    window.clearTimeout(this.reloadTimer);
    this.host.clearTrack();
  }

  /** Reloads when the map shows this order changed (status, courier, ETAs) or closed. */
  private followMap(): void {
    const m = this.host.store.orders.get(this.orderId);
    const key = m ? signature(m) : 'closed';
    if (!this.order || key === this.shown) return;
    if (!m && !OPEN.has(this.order.status)) return;
    this.shown = key;
    window.clearTimeout(this.reloadTimer);
    this.reloadTimer = window.setTimeout(() => void this.load(), 300);
  }

  async load(): Promise<void> {
    const { api, el } = this.host;
    if (!this.order) render(el, header(this.orderId, null, () => this.host.close()), h('p', { class: 'muted pad' }, 'Loading…'));
    let order: OrderView;
    let timeline: Timeline;
    try {
      [order, timeline] = await Promise.all([
        api.get<OrderView>(`/v1/orders/${seg(this.orderId)}`),
        api.get<Timeline>(`/v1/orders/${seg(this.orderId)}/timeline`),
      ]);
    } catch (e) {
      render(el, header(this.orderId, null, () => this.host.close()), h('p', { class: 'error pad' }, errorText(e)));
      return;
    }
    this.order = order;
    const m = this.host.store.orders.get(order.id);
    this.shown = m ? signature(m) : 'closed';
    const open = OPEN.has(order.status);
    // What staff typed or chose survives the card being redrawn for a live change.
    const typed = ['assign-courier', 'fail-reason', 'deliver-by'].map((id) => [id, (document.getElementById(id) as HTMLInputElement | null)?.value] as const);
    const why = h('section', { class: 'why' }, h('h3', {}, open ? 'Why' : 'Outcome'));
    const track = h('section', { class: 'track' });
    render(
      el,
      header(order.id, order, () => this.host.close()),
      this.message ? h('p', { class: `flash ${this.message.tone}`, role: 'status' }, this.message.text) : null,
      facts(order, this.host.openCourier, m, this.host.store.now(), (id) => this.host.store.couriers.get(id)?.name ?? id),
      open ? this.actions(order) : null,
      why,
      order.status === 'delivered' ? track : null,
      timelineView(timeline.entries),
    );
    this.message = null;
    for (const [id, value] of typed) {
      const input = document.getElementById(id) as HTMLInputElement | null;
      if (input && value) input.value = value;
    }
    if (open) void this.why(why, order);
    else render(why, h('h3', {}, 'Outcome'), h('p', {}, outcome(order, this.courierNameOf(courierOf(order, timeline.entries)))));
    if (order.status === 'delivered') void this.track(track, order, timeline.entries);
    else this.host.clearTrack();
  }

  private courierNameOf(id: string | null): string | null {
    return id == null ? null : (this.host.store.couriers.get(id)?.name ?? id);
  }

  private actions(order: OrderView): HTMLElement {
    const beforePickup = order.status !== 'picked_up';
    const couriers = [...this.host.store.couriers.values()]
      .filter((c) => c.on_shift && c.id !== order.courier_id)
      .map((c) => ({ c, d: c.position ? dist(c.position, order.restaurant) : Infinity }))
      .sort((a, b) => a.d - b.d)
      .slice(0, 30);
    const select = h(
      'select',
      { id: 'assign-courier', 'aria-label': 'Courier to assign' },
      h('option', { value: '' }, 'Choose a courier…'),
      couriers.map(({ c, d }) =>
        h('option', { value: c.id }, `${c.name} (${c.id}) · ${humanize(c.status)}${Number.isFinite(d) ? ` · ${(d / 1000).toFixed(1)} km` : ''}`),
      ),
    );
    const reason = h('input', { id: 'fail-reason', type: 'text', placeholder: 'Reason', 'aria-label': 'Reason it failed', maxlength: 500 });
    const deliverBy = h('input', {
      id: 'deliver-by',
      type: 'time',
      'aria-label': 'New deliver-by time',
      value: order.deliver_by ? localTime(order.deliver_by) : '',
    });
    const act = (label: string, run: () => Promise<OrderView>, cls = '') =>
      h('button', { type: 'button', class: `btn ${cls}`, 'data-action': label, onclick: () => void this.correct(label, run) }, label);
    const path = `/v1/orders/${seg(order.id)}`;
    return h(
      'section',
      { class: 'actions' },
      h('h3', {}, 'Corrections'),
      beforePickup
        ? h(
            'div',
            { class: 'action-row' },
            select,
            act('Assign', () => {
              if (!select.value) return Promise.reject(new ApiError(0, 'choose', 'Choose a courier first.'));
              return this.host.api.post<OrderView>(`${path}/assign`, { courier_id: select.value });
            }, 'primary'),
          )
        : null,
      h(
        'div',
        { class: 'action-row' },
        order.courier_id
          ? order.pinned
            ? act('Unpin', () => this.host.api.post<OrderView>(`${path}/unpin`))
            : act('Pin', () => this.host.api.post<OrderView>(`${path}/pin`))
          : null,
        order.courier_id && beforePickup ? act('Unassign', () => this.host.api.post<OrderView>(`${path}/unassign`)) : null,
        beforePickup ? act('Cancel order', () => this.host.api.post<OrderView>(`${path}/cancel`), 'danger') : null,
      ),
      h(
        'div',
        { class: 'action-row' },
        deliverBy,
        act('Change deliver-by', () => {
          const iso = deliverBy.value ? isoAtLocalTime(deliverBy.value, order.deliver_by ?? order.placed_at) : null;
          if (!iso) return Promise.reject(new ApiError(0, 'choose', 'Enter a time first.'));
          return this.host.api.patch<OrderView>(path, { deliver_by: iso });
        }),
      ),
      h(
        'div',
        { class: 'action-row' },
        reason,
        act('Mark failed', () => {
          if (!reason.value.trim()) return Promise.reject(new ApiError(0, 'reason', 'Give a reason first.'));
          return this.host.api.post<OrderView>(`${path}/fail`, { reason: reason.value.trim() });
        }, 'danger'),
      ),
    );
  }

  private async correct(label: string, run: () => Promise<OrderView>): Promise<void> {
    try {
      const updated = await run();
      this.host.store.patchOrder(
        updated.id,
        OPEN.has(updated.status)
          ? { status: updated.status, courier_id: updated.courier_id, deliver_by: updated.deliver_by, late: updated.late, pickup_eta: updated.pickup_eta, dropoff_eta: updated.dropoff_eta }
          : null,
      );
      this.message = { text: `${label}: done. The order is ${humanize(updated.status)}${updated.courier_id ? ` with ${updated.courier_id}` : ''}.`, tone: 'ok' };
    } catch (e) {
      this.message = { text: `${label}: ${errorText(e)}`, tone: 'bad' };
    }
    await this.load();
  }

  private async why(el: HTMLElement, order: OrderView): Promise<void> {
    render(el, h('h3', {}, 'Why'), h('p', { class: 'muted' }, 'Asking the optimizer…'));
    let c: Candidates;
    try {
      c = await this.host.api.get<Candidates>(`/v1/orders/${seg(order.id)}/candidates?limit=${this.candidatesLimit}`);
    } catch (e) {
      const text =
        e instanceof ApiError && e.status === 404 && e.code === 'not_found' && /route/i.test(e.detail)
          ? 'Not available: this server does not explain assignments yet (GET /v1/orders/{id}/candidates).'
          : e instanceof ApiError && e.status === 409
            ? 'The order is no longer open.'
            : `Not available: ${errorText(e)}`;
      render(
        el,
        h('h3', {}, 'Why'),
        order.courier_id == null ? h('p', {}, 'Waiting: ', h('b', {}, humanize(order.unassigned_reason ?? 'not planned yet'))) : null,
        h('p', { class: 'muted', 'data-why': 'unavailable' }, text),
      );
      return;
    }
    const name = (id: string) => this.host.store.couriers.get(id)?.name ?? id;
    render(
      el,
      h('h3', {}, 'Why'),
      c.courier_id
        ? h('p', {}, 'Assigned to ', h('b', {}, name(c.courier_id)), '. The best couriers for it now:')
        : h('p', {}, 'Waiting: ', h('b', {}, humanize(c.unassigned_reason ?? 'not planned yet')), '. The best couriers for it now:'),
      c.candidates.length
        ? h(
            'table',
            { class: 'table', 'data-why': 'candidates' },
            h('thead', {}, h('tr', {}, h('th', {}, 'Courier'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, '+Travel'), h('th', {}, 'Pickup'), h('th', {}, 'Drop-off'))),
            h(
              'tbody',
              {},
              c.candidates.map((k) =>
                h(
                  'tr',
                  { class: k.current ? 'current' : '' },
                  h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => this.host.openCourier(k.courier_id) }, k.name || k.courier_id), k.current ? h('span', { class: 'badge ok' }, 'current') : null),
                  h('td', { class: 'num' }, k.cost.toFixed(1)),
                  h('td', { class: 'num' }, duration(k.added_travel_s)),
                  h('td', {}, clock(k.pickup_eta)),
                  h('td', {}, clock(k.dropoff_eta)),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No courier can take it now.'),
      c.rejected.length
        ? h(
            'details',
            {},
            h('summary', {}, `${c.rejected.length} others rejected`),
            h('ul', { class: 'rejected' }, c.rejected.map((r) => h('li', {}, h('span', {}, r.name || r.courier_id), h('span', { class: 'badge neutral' }, humanize(r.reason))))),
          )
        : null,
    );
  }

  private async track(el: HTMLElement, order: OrderView, entries: TimelineEntry[]): Promise<void> {
    render(el, h('h3', {}, 'Track'), h('p', { class: 'muted' }, 'Loading the courier’s positions…'));
    const courier = courierOf(order, entries);
    const from = order.picked_up_at;
    const to = order.delivered_at;
    if (!courier || !from || !to) {
      render(el, h('h3', {}, 'Track'), h('p', { class: 'muted' }, 'No pickup or courier recorded.'));
      return;
    }
    try {
      // A minute of margin on each side: the fixes around the taps.
      const pad = (t: string, s: number) => new Date((parseTime(t)?.getTime() ?? 0) + s * 1000).toISOString();
      // The tracker answers one Feature (a LineString, or a Point for a single fix).
      const geo = await this.host.api.get<GeoJSON.Feature | GeoJSON.FeatureCollection>(
        `/v1/couriers/${seg(courier)}/track?from=${encodeURIComponent(pad(from, -60))}&to=${encodeURIComponent(pad(to, 60))}&format=geojson`,
      );
      const coords: [number, number][] = [];
      const features = geo.type === 'FeatureCollection' ? geo.features : [geo];
      for (const f of features) {
        const g = f.geometry;
        if (g?.type === 'LineString') for (const p of g.coordinates) coords.push([p[0]!, p[1]!]);
        else if (g?.type === 'Point') coords.push([g.coordinates[0]!, g.coordinates[1]!]);
      }
      if (coords.length === 0) {
        render(el, h('h3', {}, 'Track'), h('p', { class: 'muted' }, 'No positions were stored between pickup and drop-off.'));
        this.host.clearTrack();
        return;
      }
      let meters = 0;
      for (let i = 1; i < coords.length; i++) meters += dist({ lat: coords[i - 1]![1], lon: coords[i - 1]![0] }, { lat: coords[i]![1], lon: coords[i]![0] });
      const secs = ((parseTime(to)?.getTime() ?? 0) - (parseTime(from)?.getTime() ?? 0)) / 1000;
      render(
        el,
        h('h3', {}, 'Track'),
        h('p', { 'data-track': String(coords.length) }, `${coords.length} positions, ${(meters / 1000).toFixed(2)} km in ${duration(secs)}, from pickup at ${clock(from)} to drop-off at ${clock(to)}.`),
      );
      this.host.showTrack(coords);
    } catch (e) {
      render(el, h('h3', {}, 'Track'), h('p', { class: 'error' }, errorText(e)));
    }
  }
}

/** Who carried the order: its courier, or (once finished) the one the timeline says delivered it. */
function courierOf(order: OrderView, entries: TimelineEntry[]): string | null {
  if (order.courier_id) return order.courier_id;
  for (const e of [...entries].reverse()) {
    const c = e.detail?.courier_id;
    if ((e.kind === 'delivered' || e.kind === 'picked_up') && typeof c === 'string') return c;
  }
  return null;
}

function signature(m: MapOrder): string {
  return [m.status, m.courier_id, m.pickup_eta, m.dropoff_eta, m.deliver_by, m.late, m.at_risk, m.unassigned_reason].join('|');
}

function header(id: string, order: OrderView | null, close: () => void): HTMLElement {
  return h(
    'header',
    { class: 'card-head' },
    h('div', {}, h('div', { class: 'eyebrow' }, 'Order'), h('h2', { 'data-order-title': id }, id)),
    h(
      'div',
      { class: 'card-badges' },
      order ? h('span', { class: `badge status-${order.status}`, 'data-status': order.status }, humanize(order.status)) : null,
      order?.late ? h('span', { class: 'badge bad' }, 'Late') : null,
      order?.pinned ? h('span', { class: 'badge neutral' }, 'Pinned') : null,
      h('button', { type: 'button', class: 'btn ghost icon', 'aria-label': 'Close', onclick: close }, '×'),
    ),
  );
}

function facts(o: OrderView, openCourier: (id: string) => void, m: MapOrder | undefined, now: Date, name: (id: string) => string): HTMLElement {
  const row = (k: string, v: Node | string) => [h('dt', {}, k), h('dd', {}, v)];
  return h(
    'dl',
    { class: 'facts' },
    row('Restaurant', o.restaurant_id),
    row('Courier', o.courier_id ? h('button', { type: 'button', class: 'link', 'data-courier-link': o.courier_id, onclick: () => openCourier(o.courier_id!) }, name(o.courier_id)) : 'none yet'),
    row('Placed', clock(o.placed_at)),
    row('Ready', clock(o.ready_at)),
    row('Deliver by', o.deliver_by ? `${clock(o.deliver_by)} (${relative(o.deliver_by, now)})` : '—'),
    o.pickup_eta && o.status === 'assigned' ? row('Pickup ETA', clock(o.pickup_eta)) : [],
    o.dropoff_eta && OPEN.has(o.status) ? row('Drop-off ETA', `${clock(o.dropoff_eta)}${m?.at_risk ? ' · at risk' : ''}`) : [],
    o.picked_up_at ? row('Picked up', clock(o.picked_up_at)) : [],
    o.delivered_at ? row('Delivered', `${clock(o.delivered_at)} · click-to-door ${duration(((parseTime(o.delivered_at)?.getTime() ?? 0) - (parseTime(o.placed_at)?.getTime() ?? 0)) / 1000)}`) : [],
    o.failed_reason ? row('Failed', o.failed_reason) : [],
    o.tracking_id ? row('Tracking', h('a', { href: `/t/${encodeURIComponent(o.tracking_id)}`, target: '_blank', rel: 'noopener' }, 'customer page ↗')) : [],
  );
}

function outcome(o: OrderView, courier: string | null): string {
  switch (o.status) {
    case 'delivered':
      return `Delivered by ${courier ?? 'its courier'} at ${clock(o.delivered_at)}.`;
    case 'failed':
      return `Failed: ${o.failed_reason ?? 'no reason given'}.`;
    case 'cancelled':
      return 'Cancelled.';
    default:
      return humanize(o.status);
  }
}

function timelineView(entries: TimelineEntry[]): HTMLElement {
  return h(
    'section',
    { class: 'timeline' },
    h('h3', {}, 'Timeline'),
    h(
      'ol',
      { class: 'tl', 'data-timeline': String(entries.length) },
      entries.map((e) =>
        h(
          'li',
          { 'data-kind': e.kind },
          h('time', { datetime: e.at }, clockSeconds(e.at)),
          h('div', {}, h('b', {}, humanize(e.kind)), ' ', h('span', { class: `actor ${e.actor.startsWith('staff') ? 'staff' : ''}` }, 'by ', e.actor), detailText(e)),
        ),
      ),
    ),
  );
}

function detailText(e: TimelineEntry): HTMLElement | null {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(e.detail ?? {})) {
    if (v == null || k === 'courier_id' && e.actor === `courier:${String(v)}`) continue;
    const text = typeof v === 'string' && /^\d{4}-\d\d-\d\dT/.test(v) ? clock(v) : typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(`${humanize(k)}: ${text}`);
  }
  return parts.length ? h('div', { class: 'muted small' }, parts.join(' · ')) : null;
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.detail || humanize(e.code);
  return e instanceof Error ? e.message : String(e);
}

/** Metres between two points (equirectangular; exact enough in a city). */
export function dist(a: { lat: number; lon: number }, b: { lat: number; lon: number }): number {
  const x = ((b.lon - a.lon) * Math.PI) / 180 * Math.cos((((a.lat + b.lat) / 2) * Math.PI) / 180);
  const y = ((b.lat - a.lat) * Math.PI) / 180;
  return Math.hypot(x, y) * 6_371_000;
}

/** `HH:MM` of an RFC 3339 time in the viewer's zone. */
function localTime(t: string): string {
  const d = parseTime(t);
  if (!d) return '';
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** The instant at local `HH:MM` on the day of `near` (the next day when that is over 12 h before it). */
function isoAtLocalTime(hhmm: string, near: string): string | null {
  const base = parseTime(near);
  const [hh, mm] = hhmm.split(':').map(Number);
  if (!base || hh == null || mm == null || Number.isNaN(hh) || Number.isNaN(mm)) return null;
  const d = new Date(base);
  d.setHours(hh, mm, 0, 0);
  if (d.getTime() < base.getTime() - 12 * 3600_000) d.setDate(d.getDate() + 1);
  return d.toISOString();
}
