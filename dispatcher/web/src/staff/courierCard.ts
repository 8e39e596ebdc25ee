// A courier's card: status, vehicle, last fix, and the route as a timeline of stops with ETAs,
// live from the store; staff can issue a sign-in token for the courier's phone.

import { seg } from '../lib/api';
import { h, render } from '../lib/dom';
import { FrameBatch } from '../lib/frame';
import { clock, clockSeconds, humanize, relative } from '../lib/format';
import type { MapCourier } from '../lib/types';
import { errorText, type CardHost } from './orderCard';

export class CourierCard {
  private readonly off: () => void;
  private readonly draw = new FrameBatch(() => this.render());
  private token: { token: string } | null = null;
  private tokenError = '';
  private lastKey = '';

  constructor(
    private readonly host: CardHost & { openOrder: (id: string) => void },
    readonly courierId: string,
  ) {
    this.off = host.store.on('couriers', () => this.draw.schedule());
    this.render();
  }

  dispose(): void {
    this.off();
  }

  private render(): void {
    const c = this.host.store.couriers.get(this.courierId);
    const key = c ? JSON.stringify([c.status, c.on_shift, c.position?.at, c.route]) + (this.token ? 't' : '') + this.tokenError : 'none';
    if (key === this.lastKey) return;
    this.lastKey = key;
    const close = h('button', { type: 'button', class: 'btn ghost icon', 'aria-label': 'Close', onclick: () => this.host.close() }, '×');
    if (!c) {
      render(this.host.el, h('header', { class: 'card-head' }, h('div', {}, h('div', { class: 'eyebrow' }, 'Courier'), h('h2', {}, this.courierId)), close), h('p', { class: 'muted pad' }, 'Not on the map.'));
      return;
    }
    const now = this.host.store.now();
    render(
      this.host.el,
      h(
        'header',
        { class: 'card-head' },
        h('div', {}, h('div', { class: 'eyebrow' }, 'Courier'), h('h2', { 'data-courier-title': c.id }, c.name)),
        h('div', { class: 'card-badges' }, h('span', { class: `badge courier-${c.status}`, 'data-status': c.status }, humanize(c.status)), close),
      ),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Id'),
        h('dd', {}, c.id),
        h('dt', {}, 'Vehicle'),
        h('dd', {}, c.vehicle),
        h('dt', {}, 'Shift'),
        h('dd', {}, c.on_shift ? 'on shift' : 'off shift'),
        h('dt', {}, 'Last fix'),
        h(
          'dd',
          { 'data-position': c.position ? `${c.position.lat.toFixed(5)},${c.position.lon.toFixed(5)}` : '' },
          c.position ? `${clockSeconds(c.position.at)} (${relative(c.position.at, now)}) · ${c.position.lat.toFixed(5)}, ${c.position.lon.toFixed(5)}` : 'none',
        ),
      ),
      h(
        'section',
        { class: 'timeline' },
        h('h3', {}, `Route · ${c.route.length} stop${c.route.length === 1 ? '' : 's'}`),
        c.route.length
          ? h(
              'ol',
              { class: 'tl route', 'data-route': String(c.route.length) },
              c.route.map((s) =>
                h(
                  'li',
                  { 'data-kind': s.kind, 'data-order': s.order_id },
                  h('time', { datetime: s.eta }, clock(s.eta)),
                  h(
                    'div',
                    {},
                    h('b', {}, s.kind === 'pickup' ? 'Pick up' : 'Drop off'),
                    ' ',
                    h('button', { type: 'button', class: 'link', onclick: () => this.host.openOrder(s.order_id) }, s.order_id),
                    h('div', { class: 'muted small' }, `ETA ${relative(s.eta, now)}`),
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, 'No stops planned.'),
      ),
      h(
        'section',
        { class: 'actions' },
        h('h3', {}, 'Phone'),
        this.token
          ? h(
              'div',
              { class: 'token' },
              h('p', {}, 'Open this link on the courier’s phone (shown once):'),
              h('code', { 'data-token': this.token.token }, `${location.origin}/courier#token=${this.token.token}`),
            )
          : h('button', { type: 'button', class: 'btn', onclick: () => void this.issueToken() }, 'Issue a sign-in link'),
        this.tokenError ? h('p', { class: 'error' }, this.tokenError) : null,
      ),
    );
  }

  private async issueToken(): Promise<void> {
    try {
      this.token = await this.host.api.post<{ token: string }>(`/v1/couriers/${seg(this.courierId)}/tokens`);
      this.tokenError = '';
    } catch (e) {
      this.tokenError = errorText(e);
    }
    this.render();
  }
}

export type { MapCourier };
