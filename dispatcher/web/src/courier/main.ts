// The courier's phone app at `/courier`: sign in with a courier token, start and end the shift,
// share the phone's position while on shift, and work the route: the next stop up front with a
// navigation link and large buttons, the other stops below, a small map. Taps and positions go
// through the store's queue, so they survive a dead network and a reload.

import '../styles/base.css';
import '../styles/courier.css';
import type { GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { Api, ApiError, seg } from '../lib/api';
import { byId, h, render } from '../lib/dom';
import { clock } from '../lib/format';
import type { StopFrame } from '../lib/types';
import { addIcons } from '../map/icons';
import { STATUS_COLORS } from '../map/palette';
import { createMapView, fitTo, loadWebConfig } from '../map/view';
import { CourierStore, type EventName } from './store';

const FAIL_REASONS = ['Customer not reachable', 'Wrong address', 'Customer refused', 'Damaged food'];

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/courier-sw.js', { scope: '/courier' }).catch(() => {
    /* the app works without offline start */
  });
}

function askToken(): Promise<string> {
  const overlay = byId('login');
  const form = byId<HTMLFormElement>('login-form');
  const input = byId<HTMLInputElement>('login-token');
  const error = byId('login-error');
  overlay.hidden = false;
  return new Promise((resolve) => {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      try {
        await new Api(token).get('/v1/orders?limit=1');
        CourierStore.saveToken(token);
        overlay.hidden = true;
        resolve(token);
      } catch (err) {
        error.textContent = err instanceof ApiError && err.status === 401 ? 'This token is not valid.' : 'The service cannot be reached; try again.';
      }
    });
  });
}

async function start(): Promise<void> {
  // A sign-in link from the dispatcher: /courier#token=…
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromLink) {
    CourierStore.signOut();
    CourierStore.saveToken(fromLink);
    history.replaceState(null, '', '/courier');
  }
  const token = CourierStore.token() ?? (await askToken());
  const api = new Api(token);
  const store = new CourierStore();
  const app = byId('app');
  const pill = byId('connection');
  let focus: string | null = null;
  let failing: StopFrame | null = null;
  let watch: number | null = null;
  let geoError = '';
  let map: MlMap | null = null;

  const key = (s: StopFrame) => `${s.order_id}:${s.kind}`;

  function startWatching(): void {
    if (watch != null || !('geolocation' in navigator)) return;
    watch = navigator.geolocation.watchPosition(
      (p) => {
        geoError = '';
        const c = p.coords;
        store.position(
          {
            lat: c.latitude,
            lon: c.longitude,
            ...(c.speed != null && Number.isFinite(c.speed) ? { speed_mps: c.speed } : {}),
            ...(c.heading != null && Number.isFinite(c.heading) ? { heading: c.heading } : {}),
            ...(Number.isFinite(c.accuracy) ? { accuracy_m: c.accuracy } : {}),
          },
          new Date(p.timestamp),
        );
        lastFix = [c.longitude, c.latitude];
        drawMap();
      },
      (e) => {
        geoError = e.code === e.PERMISSION_DENIED ? 'Location is blocked: allow it for this site to share your position.' : 'No location yet.';
        draw();
      },
      { enableHighAccuracy: true, maximumAge: 1000, timeout: 20000 },
    );
  }

  function stopWatching(): void {
    if (watch != null) navigator.geolocation.clearWatch(watch);
    watch = null;
  }

  async function shift(on: boolean): Promise<void> {
    if (!store.courierId) return;
    try {
      await api.post(`/v1/couriers/${seg(store.courierId)}/shift`, { state: on ? 'on' : 'off' });
      store.setShift(on);
      if (on) startWatching();
      else stopWatching();
    } catch (e) {
      store.notice = { text: e instanceof ApiError ? e.detail : 'The service cannot be reached.', tone: 'bad' };
      draw();
    }
  }

  function tap(stop: StopFrame, event: EventName, reason?: string): void {
    store.tap(stop.order_id, stop.kind, event, reason);
    if (event !== 'arrived') focus = null;
    failing = null;
  }

  let lastFix: [number, number] | null = null;

  function drawMap(): void {
    if (!map) return;
    const stops = store.remaining;
    const features: GeoJSON.Feature[] = stops.map((s, i) => ({
      type: 'Feature',
      geometry: { type: 'Point', coordinates: [s.lon, s.lat] },
      properties: { kind: s.kind, next: i === 0 },
    }));
    const line: [number, number][] = [...(lastFix ? [lastFix] : []), ...stops.map((s): [number, number] => [s.lon, s.lat])];
    if (line.length >= 2) features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: line }, properties: { kind: 'line' } });
    if (lastFix) features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: lastFix }, properties: { kind: 'me' } });
    (map.getSource('route') as GeoJSONSource | undefined)?.setData({ type: 'FeatureCollection', features });
    fitTo(map, line.length ? line : [], 30, 15);
  }

  async function mountMap(el: HTMLElement): Promise<void> {
    const config = await loadWebConfig();
    map = await createMapView({ container: el, config, interactive: false, zoom: 13 });
    addIcons(map);
    map.addSource('route', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({ id: 'route-line', type: 'line', source: 'route', filter: ['==', ['get', 'kind'], 'line'], paint: { 'line-color': STATUS_COLORS.to_pickup, 'line-width': 3, 'line-opacity': 0.7 } });
    map.addLayer({
      id: 'route-stops',
      type: 'circle',
      source: 'route',
      filter: ['in', ['get', 'kind'], ['literal', ['pickup', 'dropoff']]],
      paint: {
        'circle-radius': ['case', ['get', 'next'], 8, 5] as unknown as number,
        'circle-color': ['match', ['get', 'kind'], 'pickup', '#0f172a', '#ffffff'] as unknown as string,
        'circle-stroke-color': ['match', ['get', 'kind'], 'pickup', '#ffffff', STATUS_COLORS.to_dropoff] as unknown as string,
        'circle-stroke-width': 2.5,
      },
    });
    map.addLayer({ id: 'me', type: 'circle', source: 'route', filter: ['==', ['get', 'kind'], 'me'], paint: { 'circle-radius': 7, 'circle-color': STATUS_COLORS.to_pickup, 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
    drawMap();
  }

  const mapEl = h('div', { class: 'c-map', 'aria-label': 'Route map' });

  let shown = '';

  function draw(): void {
    const offline = store.connection !== 'open';
    const sig = JSON.stringify([
      store.connection, store.courierId, store.seq, store.stops, store.done, store.pendingTaps,
      offline ? store.pendingFixes : 0, store.onShift, store.notice, geoError, watch != null, focus, failing && key(failing),
    ]);
    // The reason form keeps what is typed: it is not redrawn for other changes.
    if (sig === shown || (failing && document.activeElement?.id === 'fail-reason')) return;
    shown = sig;
    pill.dataset.state = store.connection;
    pill.textContent = { connecting: 'Connecting…', open: 'Online', offline: 'Offline', waiting: 'Reconnecting', replaced: 'Open elsewhere', stopped: 'Stopped' }[store.connection];
    byId('who').textContent = store.courierId ? `Courier ${store.courierId}` : 'Courier';
    const stops = store.remaining;
    const current = stops.find((s) => key(s) === focus) ?? stops[0] ?? null;
    const pending = store.pendingTaps;
    const fixes = store.pendingFixes;
    const notice = store.notice;
    store.notice = null;
    render(
      app,
      store.connection === 'replaced'
        ? h('div', { class: 'c-banner bad' }, 'This app was opened on another phone or tab. ', h('button', { class: 'btn', type: 'button', onclick: () => store.useHere() }, 'Use it here'))
        : null,
      notice ? h('div', { class: `c-banner ${notice.tone}`, role: 'status' }, notice.text) : null,
      h(
        'section',
        { class: 'c-shift' },
        h('div', {}, h('b', {}, store.onShift ? 'On shift' : 'Off shift'), h('div', { class: 'muted small' }, store.onShift ? (geoError || (watch != null ? 'Sharing your location' : 'Location off')) : 'Start your shift to get orders')),
        h('button', { type: 'button', class: `btn ${store.onShift ? '' : 'primary'}`, id: 'shift', disabled: !store.courierId, onclick: () => void shift(!store.onShift) }, store.onShift ? 'End shift' : 'Start shift'),
      ),
      current ? nextStop(current) : h('section', { class: 'c-next empty' }, h('h2', {}, 'No stops'), h('p', { class: 'muted' }, store.onShift ? 'Wait here; new orders come in by themselves.' : 'You are off shift.')),
      mapEl,
      stops.length > 1
        ? h(
            'section',
            { class: 'c-stops' },
            h('h3', {}, `Route · ${stops.length} stops`),
            h(
              'ol',
              {},
              stops.map((s) =>
                h(
                  'li',
                  {},
                  h(
                    'button',
                    { type: 'button', class: `c-stop ${current && key(current) === key(s) ? 'active' : ''}`, 'data-stop': key(s), onclick: () => ((focus = key(s)), draw()) },
                    h('time', {}, clock(s.eta)),
                    h('span', { class: `c-kind ${s.kind}` }, s.kind === 'pickup' ? 'Pick up' : 'Drop off'),
                    h('span', { class: 'c-order' }, s.order_id),
                  ),
                ),
              ),
            ),
          )
        : null,
      h(
        'footer',
        { class: 'c-foot' },
        h('span', { id: 'queue', 'data-pending': String(pending) }, pending || fixes ? `Waiting to send: ${pending} tap${pending === 1 ? '' : 's'}, ${fixes} position${fixes === 1 ? '' : 's'}` : 'Everything sent'),
        h('button', { type: 'button', class: 'btn ghost', onclick: () => (CourierStore.signOut(), location.reload()) }, 'Sign out'),
      ),
    );
    drawMap();
  }

  function nextStop(s: StopFrame): HTMLElement {
    const arrived = store.done[key(s)] === 'arrived';
    const geo = `geo:${s.lat.toFixed(6)},${s.lon.toFixed(6)}?q=${s.lat.toFixed(6)},${s.lon.toFixed(6)}(${encodeURIComponent(s.kind === 'pickup' ? 'Restaurant' : 'Customer')})`;
    if (failing && key(failing) === key(s)) {
      const input = h('input', { type: 'text', id: 'fail-reason', placeholder: 'Other reason', maxlength: 500, 'aria-label': 'Reason' });
      return h(
        'section',
        { class: 'c-next' },
        h('h2', {}, 'Why can’t you deliver?'),
        h('div', { class: 'c-reasons' }, FAIL_REASONS.map((r) => h('button', { type: 'button', class: 'btn big', onclick: () => (tap(s, 'failed', r), draw()) }, r))),
        h('div', { class: 'c-other' }, input, h('button', { type: 'button', class: 'btn big danger', onclick: () => input.value.trim() && (tap(s, 'failed', input.value.trim()), draw()) }, 'Send')),
        h('button', { type: 'button', class: 'btn big ghost', onclick: () => ((failing = null), draw()) }, 'Back'),
      );
    }
    return h(
      'section',
      { class: `c-next ${s.kind}`, 'data-next': key(s) },
      h('div', { class: 'c-eyebrow' }, s.kind === 'pickup' ? 'Next: pick up' : 'Next: deliver'),
      h('h2', { class: 'c-order-id' }, s.order_id),
      h('div', { class: 'c-eta' }, 'ETA ', h('b', {}, clock(s.eta)), s.kind === 'pickup' && s.ready_at ? h('span', { class: 'muted' }, ` · food ready ${clock(s.ready_at)}`) : null),
      s.restaurant_id ? h('div', { class: 'muted' }, `Restaurant ${s.restaurant_id}`) : null,
      h('a', { class: 'btn big nav', href: geo }, 'Navigate'),
      h(
        'div',
        { class: 'c-actions' },
        h('button', { type: 'button', class: `btn big ${arrived ? 'done' : ''}`, disabled: arrived, onclick: () => (tap(s, 'arrived'), draw()) }, arrived ? 'Arrived ✓' : 'Arrived'),
        s.kind === 'pickup'
          ? h('button', { type: 'button', class: 'btn big primary', onclick: () => (tap(s, 'picked_up'), draw()) }, 'Picked up')
          : h('button', { type: 'button', class: 'btn big primary', onclick: () => (tap(s, 'delivered'), draw()) }, 'Delivered'),
        s.kind === 'dropoff' ? h('button', { type: 'button', class: 'btn big danger wide', onclick: () => ((failing = s), draw()) }, 'Cannot deliver') : null,
      ),
    );
  }

  store.subscribe(draw);
  draw();
  store.connect(token);
  void mountMap(mapEl);
  if (store.onShift) startWatching();
}

void start();
