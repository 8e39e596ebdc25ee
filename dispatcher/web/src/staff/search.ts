// Search: an order by its id, a restaurant's orders, or a courier by name or id (with the
// courier's orders). Couriers come from the store; orders from the API.

import { Api, ApiError, seg } from '../lib/api';
import { byId, h, render } from '../lib/dom';
import { clock, humanize } from '../lib/format';
import type { MapCourier, OrderPage, OrderView } from '../lib/types';
import type { MapStore } from './store';
import { errorText } from './orderCard';

export function mountSearch(api: Api, store: MapStore, openOrder: (id: string) => void, openCourier: (id: string) => void): void {
  const form = byId<HTMLFormElement>('search');
  const input = byId<HTMLInputElement>('search-input');
  const panel = byId('results-panel');
  const results = byId('results');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run(input.value.trim());
  });
  input.addEventListener('search', () => {
    if (!input.value) panel.hidden = true;
  });

  async function run(q: string): Promise<void> {
    if (!q) {
      panel.hidden = true;
      return;
    }
    panel.hidden = false;
    render(results, h('p', { class: 'muted' }, `Searching for “${q}”…`));
    const lower = q.toLowerCase();
    const couriers: MapCourier[] = [...store.couriers.values()]
      .filter((c) => c.id.toLowerCase() === lower || c.name.toLowerCase().includes(lower) || c.id.toLowerCase().includes(lower))
      .slice(0, 8);
    const safe = <T,>(p: Promise<T>): Promise<T | null> =>
      p.catch((e: unknown) => {
        if (e instanceof ApiError && (e.status === 404 || e.status === 400)) return null;
        throw e;
      });
    try {
      const exactCourier = couriers.find((c) => c.id.toLowerCase() === lower) ?? (couriers.length === 1 ? couriers[0] : undefined);
      const [order, byRestaurant, byCourier] = await Promise.all([
        safe(api.get<OrderView>(`/v1/orders/${seg(q)}`)),
        safe(api.get<OrderPage>(`/v1/orders?restaurant=${encodeURIComponent(q)}&limit=10`)),
        exactCourier ? safe(api.get<OrderPage>(`/v1/orders?courier=${encodeURIComponent(exactCourier.id)}&limit=10`)) : Promise.resolve(null),
      ]);
      if (order && couriers.length === 0 && !byRestaurant?.orders.length) {
        panel.hidden = true;
        openOrder(order.id);
        return;
      }
      const orderRow = (o: OrderView) =>
        h(
          'li',
          {},
          h(
            'button',
            { type: 'button', class: 'row', 'data-order': o.id, onclick: () => openOrder(o.id) },
            h('span', { class: `badge status-${o.status}` }, humanize(o.status)),
            h('span', { class: 'row-main' }, o.id),
            h('span', { class: 'row-side muted' }, `${o.restaurant_id} · ${clock(o.placed_at)}`),
          ),
        );
      const sections = [
        order ? h('div', {}, h('h4', {}, 'Order'), h('ul', { class: 'list' }, orderRow(order))) : null,
        couriers.length
          ? h(
              'div',
              {},
              h('h4', {}, 'Couriers'),
              h(
                'ul',
                { class: 'list' },
                couriers.map((c) =>
                  h(
                    'li',
                    {},
                    h(
                      'button',
                      { type: 'button', class: 'row', 'data-courier': c.id, onclick: () => openCourier(c.id) },
                      h('i', { class: `dot ${c.status}` }),
                      h('span', { class: 'row-main' }, c.name),
                      h('span', { class: 'row-side muted' }, `${c.id} · ${humanize(c.status)}`),
                    ),
                  ),
                ),
              ),
            )
          : null,
        byCourier?.orders.length ? h('div', {}, h('h4', {}, `Orders of ${exactCourier?.name ?? ''}`), h('ul', { class: 'list' }, byCourier.orders.map(orderRow))) : null,
        byRestaurant?.orders.length ? h('div', {}, h('h4', {}, `Orders of restaurant ${q}`), h('ul', { class: 'list' }, byRestaurant.orders.map(orderRow))) : null,
      ].filter(Boolean);
      render(results, sections.length ? sections : h('p', { class: 'muted' }, `Nothing matches “${q}”.`));
    } catch (e) {
      render(results, h('p', { class: 'error' }, errorText(e)));
    }
  }
}
