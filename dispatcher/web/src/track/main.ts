// The customer's tracking page at `/t/{tracking_id}`: status, ETA, and the courier on a small map
// only while the courier is on the way (the service decides: it sends a position only then).
// Live from the tracking link's server-sent events, with the one-off GET as the first view.

import '../styles/base.css';
import '../styles/track.css';
import type { GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { Api, ApiError, seg } from '../lib/api';
import { byId, h, render } from '../lib/dom';
import { clock } from '../lib/format';
import type { TrackingView } from '../lib/types';
import { addIcons } from '../map/icons';
import { STATUS_COLORS } from '../map/palette';
import { createMapView, fitTo, loadWebConfig } from '../map/view';

const TITLES: Record<string, string> = {
  created: 'Order received',
  assigned: 'A courier is picking up your order',
  picked_up: 'Your order is on its way',
  delivered: 'Delivered',
  failed: 'We could not deliver your order',
  cancelled: 'Your order was cancelled',
};

const STEPS = [
  ['created', 'Received'],
  ['assigned', 'Courier assigned'],
  ['picked_up', 'On its way'],
  ['delivered', 'Delivered'],
] as const;

async function start(): Promise<void> {
  const id = decodeURIComponent(location.pathname.replace(/^\/t\//, '').replace(/\/$/, ''));
  const status = byId('status');
  let view: TrackingView;
  try {
    view = await new Api(null).get<TrackingView>(`/v1/track/${seg(id)}`);
  } catch (e) {
    status.textContent = e instanceof ApiError && e.status === 404 ? 'No order has this tracking link' : 'The tracking service cannot be reached';
    byId('map').hidden = true;
    return;
  }
  const map: MlMap = await createMapView({ container: byId('map'), config: await loadWebConfig(), zoom: 14, center: [view.dropoff.lon, view.dropoff.lat] });
  addIcons(map);
  map.addSource('t', { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
  map.addLayer({ id: 't-home', type: 'circle', source: 't', filter: ['==', ['get', 'kind'], 'home'], paint: { 'circle-radius': 8, 'circle-color': '#fff', 'circle-stroke-color': STATUS_COLORS.to_dropoff, 'circle-stroke-width': 3 } });
  map.addLayer({ id: 't-courier', type: 'circle', source: 't', filter: ['==', ['get', 'kind'], 'courier'], paint: { 'circle-radius': 9, 'circle-color': STATUS_COLORS.to_dropoff, 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 } });
  map.addLayer({
    id: 't-heading',
    type: 'symbol',
    source: 't',
    filter: ['all', ['==', ['get', 'kind'], 'courier'], ['has', 'heading']],
    layout: { 'icon-image': 'heading-arrow', 'icon-rotate': ['get', 'heading'], 'icon-rotation-alignment': 'map', 'icon-allow-overlap': true, 'icon-size': 1.3 },
    paint: { 'icon-color': STATUS_COLORS.to_dropoff },
  });

  const show = (v: TrackingView) => {
    status.textContent = TITLES[v.status] ?? v.status;
    status.dataset.status = v.status;
    byId('eta').textContent =
      v.status === 'delivered' ? `Delivered at ${clock(v.delivered_at)}` : v.dropoff_eta ? `Expected at ${clock(v.dropoff_eta)}` : v.status === 'created' ? 'We are finding a courier.' : '';
    const reached = STEPS.findIndex(([s]) => s === v.status);
    const bad = v.status === 'failed' || v.status === 'cancelled';
    render(byId('steps'), STEPS.map(([, label], i) => h('li', { class: bad && i === STEPS.length - 1 ? 'bad' : i <= reached ? 'done' : '' }, bad && i === STEPS.length - 1 ? (v.status === 'failed' ? 'Not delivered' : 'Cancelled') : label)));
    const home: [number, number] = [v.dropoff.lon, v.dropoff.lat];
    const features: GeoJSON.Feature[] = [{ type: 'Feature', geometry: { type: 'Point', coordinates: home }, properties: { kind: 'home' } }];
    const note = byId('note');
    note.removeAttribute('data-courier');
    if (v.courier) {
      const c: [number, number] = [v.courier.lon, v.courier.lat];
      features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: { kind: 'courier', ...(v.courier.heading != null ? { heading: v.courier.heading } : {}) } });
      fitTo(map, [home, c], 50, 16);
      note.textContent = `The filled dot is your courier (seen at ${clock(v.courier.at)}); the ring is your address.`;
      note.dataset.courier = `${v.courier.lat.toFixed(5)},${v.courier.lon.toFixed(5)}`;
    } else {
      map.jumpTo({ center: home, zoom: 14 });
      note.textContent = v.status === 'assigned' || v.status === 'created' ? 'You will see your courier here once your order is on its way.' : 'The ring is your address.';
    }
    (map.getSource('t') as GeoJSONSource).setData({ type: 'FeatureCollection', features });
  };
  show(view);
  if (['delivered', 'failed', 'cancelled'].includes(view.status)) return;
  const events = new EventSource(`/v1/track/${seg(id)}/events`);
  events.addEventListener('update', (e) => {
    try {
      const v = JSON.parse((e as MessageEvent<string>).data) as TrackingView;
      show(v);
      // A finished order gets no more updates: stop the browser from reconnecting.
      if (['delivered', 'failed', 'cancelled'].includes(v.status)) events.close();
    } catch {
      /* the next update replaces it */
    }
  });
}

void start();
