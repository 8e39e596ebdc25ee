// The counters panel and the connection pill, redrawn at most once per frame from the store.

import { byId, h, render } from '../lib/dom';
import { FrameBatch } from '../lib/frame';
import { clockSeconds, duration, humanize } from '../lib/format';
import type { MapStore } from './store';

const CONNECTION_TEXT: Record<string, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  offline: 'Offline',
  waiting: 'Reconnecting',
  replaced: 'Replaced',
  stopped: 'Stopped',
};

export function mountKpis(store: MapStore): void {
  const panel = byId('kpis');
  const pill = byId('connection');
  const draw = new FrameBatch(() => {
    const k = store.kpis;
    if (!k) {
      render(panel, h('p', { class: 'muted' }, 'Waiting for the first snapshot…'));
      return;
    }
    const tile = (id: string, label: string, value: string | number, tone = '') =>
      h('div', { class: `kpi ${tone}`, 'data-kpi': id }, h('div', { class: 'kpi-value' }, String(value)), h('div', { class: 'kpi-label' }, label));
    const reasons = Object.entries(k.unassigned_by_reason).sort((a, b) => b[1] - a[1]);
    render(
      panel,
      h(
        'div',
        { class: 'kpi-grid' },
        tile('open', 'Open orders', k.open_orders),
        tile('unassigned', 'Unassigned', k.unassigned, k.unassigned ? 'warn' : ''),
        tile('late', 'Late', k.late, k.late ? 'bad' : ''),
        tile('at_risk', 'At risk', k.at_risk, k.at_risk ? 'warn' : ''),
        tile('ctd', 'Click-to-door today', k.ctd_mean_s_today == null ? '—' : duration(k.ctd_mean_s_today)),
        tile('delivered', 'Delivered today', k.delivered_today),
        tile('idle', `Idle of ${k.couriers_on_shift} on shift`, k.couriers_idle),
        tile('connected', 'Couriers online', k.couriers_connected),
      ),
      reasons.length
        ? h('ul', { class: 'reasons', 'aria-label': 'Unassigned by reason' }, reasons.map(([r, n]) => h('li', {}, h('span', {}, humanize(r)), h('b', {}, n))))
        : null,
      h(
        'div',
        { class: 'replan', 'data-kpi': 'replan' },
        'Last replan ',
        h('b', {}, k.last_replan_at ? clockSeconds(k.last_replan_at) : '—'),
        k.last_replan_ms != null ? ` · solve ${Math.round(k.last_replan_ms)} ms` : '',
      ),
    );
  });
  const drawPill = () => {
    pill.dataset.state = store.connection;
    pill.textContent = CONNECTION_TEXT[store.connection] ?? store.connection;
    pill.title = store.connectionDetail;
  };
  store.on('kpis', () => draw.schedule());
  store.on('connection', drawPill);
  drawPill();
  draw.schedule();
}
