// "Needs attention": the late orders first, then those at risk, then the longest-waiting
// unassigned ones; each opens its order card.

import { byId, h, render } from '../lib/dom';
import { relative, humanize } from '../lib/format';
import type { MapOrder } from '../lib/types';
import type { MapStore } from './store';

const MAX = 8;

export function mountAttention(store: MapStore, open: (orderId: string) => void): void {
  const list = byId('attention');
  let last = 0;
  let timer: number | undefined;
  const draw = () => {
    last = Date.now();
    const now = store.now();
    const orders = [...store.orders.values()];
    const score = (o: MapOrder) => (o.late ? 0 : o.at_risk ? 1 : 2);
    const picked = orders
      .filter((o) => o.late || o.at_risk || o.courier_id == null)
      .sort((a, b) => score(a) - score(b) || (a.deliver_by ?? '').localeCompare(b.deliver_by ?? ''));
    if (picked.length === 0) {
      render(list, h('p', { class: 'muted' }, 'Nothing late, at risk or waiting.'));
      return;
    }
    render(
      list,
      h(
        'ul',
        { class: 'list' },
        picked.slice(0, MAX).map((o) =>
          h(
            'li',
            {},
            h(
              'button',
              { class: 'row', type: 'button', 'data-order': o.id, onclick: () => open(o.id) },
              h('span', { class: `badge ${o.late ? 'bad' : o.at_risk ? 'warn' : 'neutral'}` }, o.late ? 'Late' : o.at_risk ? 'At risk' : 'Waiting'),
              h('span', { class: 'row-main' }, o.id),
              h('span', { class: 'row-side muted' }, o.courier_id == null ? humanize(o.unassigned_reason ?? 'planning') : `due ${relative(o.deliver_by, now)}`),
            ),
          ),
        ),
      ),
      picked.length > MAX ? h('p', { class: 'muted small' }, `and ${picked.length - MAX} more`) : null,
    );
  };
  // The list reads every order: at most twice a second.
  store.on('orders', () => {
    if (timer !== undefined) return;
    timer = window.setTimeout(() => {
      timer = undefined;
      draw();
    }, Math.max(0, 500 - (Date.now() - last)));
  });
  draw();
}
