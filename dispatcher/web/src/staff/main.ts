// The support staff's page at `/`: sign in with a staff token (kept in this browser), then the
// live map (couriers, routes, open orders) fed by the one map store, the counters, the list of
// orders needing attention, search, and the order and courier cards.

import '../styles/base.css';
import '../styles/staff.css';
import type { Map as MlMap } from 'maplibre-gl';
import { Api, ApiError } from '../lib/api';
import { byId } from '../lib/dom';
import { CourierLayer } from '../map/layers/couriers';
import { OrderLayer } from '../map/layers/orders';
import { RouteLayer } from '../map/layers/routes';
import { TrackLayer } from '../map/layers/track';
import { createMapView, fitTo, loadWebConfig } from '../map/view';
import { mountAttention } from './attention';
import { CourierCard } from './courierCard';
import { mountKpis } from './kpis';
import { OrderCard } from './orderCard';
import { mountSearch } from './search';
import { MapStore } from './store';

const TOKEN_KEY = 'dispatch.staffToken';

declare global {
  interface Window {
    /** The page's map and store, for the browser tests and the FPS benchmark. */
    dispatchMap?: { map: MlMap; store: MapStore; couriers: CourierLayer };
  }
}

async function checkStaff(token: string): Promise<void> {
  // Staff-only and cheap: the list of connected map clients.
  await new Api(token).get('/v1/map/clients');
}

function askToken(): Promise<string> {
  const overlay = byId('login');
  const form = byId<HTMLFormElement>('login-form');
  const input = byId<HTMLInputElement>('login-token');
  const error = byId('login-error');
  overlay.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      error.textContent = '';
      try {
        await checkStaff(token);
        localStorage.setItem(TOKEN_KEY, token);
        overlay.hidden = true;
        resolve(token);
      } catch (err) {
        error.textContent =
          err instanceof ApiError && err.status === 401
            ? 'This token is not valid.'
            : err instanceof ApiError && err.status === 403
              ? 'This is not a staff token.'
              : 'The service cannot be reached.';
      }
    });
  });
}

async function start(): Promise<void> {
  let token = localStorage.getItem(TOKEN_KEY);
  if (token) {
    try {
      await checkStaff(token);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) token = null;
    }
  }
  token ??= await askToken();
  byId('sign-out').addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  const api = new Api(token);
  const store = new MapStore();
  // The feed starts at once; the map draws what the store holds when its layers are ready.
  store.connect(token);
  mountKpis(store);
  const config = await loadWebConfig();
  const map = await createMapView({ container: byId('map'), config });
  const cardEl = byId('card');
  let track: TrackLayer | null = null;
  let card: { dispose(): void } | null = null;

  const routes = new RouteLayer(map);
  const orders = new OrderLayer(map, (id) => openOrder(id));
  const couriers = new CourierLayer(map, (id) => openCourier(id));
  window.dispatchMap = { map, store, couriers };

  const host = {
    api,
    store,
    el: cardEl,
    openCourier: (id: string) => openCourier(id),
    openOrder: (id: string) => openOrder(id),
    showTrack: (coordinates: [number, number][]) => {
      track ??= new TrackLayer(map);
      track.show(coordinates);
    },
    clearTrack: () => {
      track?.remove();
      track = null;
    },
    close: () => closeCard(),
  };

  /** Centres things in the part of the map the card leaves free. */
  function besideCard() {
    return { top: 0, bottom: 0, left: 0, right: cardEl.offsetWidth + 24 };
  }

  function closeCard(): void {
    card?.dispose();
    card = null;
    cardEl.hidden = true;
    map.setPadding({ top: 0, bottom: 0, left: 0, right: 0 });
    couriers.select(null);
    routes.select(null);
    orders.select(null);
    orders.update(store.orders.values());
  }

  function openOrder(id: string): void {
    card?.dispose();
    cardEl.hidden = false;
    couriers.select(null);
    orders.select(id);
    const o = store.orders.get(id);
    routes.select(o?.courier_id ?? null);
    orders.update(store.orders.values());
    if (o) map.easeTo({ center: [o.dropoff.lon, o.dropoff.lat], duration: 300, padding: besideCard() });
    card = new OrderCard(host, id);
  }

  function openCourier(id: string): void {
    card?.dispose();
    cardEl.hidden = false;
    orders.select(null);
    couriers.select(id);
    routes.select(id);
    const c = store.couriers.get(id);
    if (c?.position) map.easeTo({ center: [c.position.lon, c.position.lat], duration: 300, padding: besideCard() });
    card = new CourierCard(host, id);
  }

  let fitted = false;
  store.on('couriers', () => {
    couriers.update(store.couriers.values());
    routes.update(store.couriers.values());
    if (!fitted) {
      const points: [number, number][] = [];
      for (const c of store.couriers.values()) if (c.position) points.push([c.position.lon, c.position.lat]);
      if (points.length) {
        fitTo(map, points, 40, 14);
        fitted = true;
      }
    }
  });
  store.on('orders', () => orders.update(store.orders.values()));
  couriers.update(store.couriers.values());
  routes.update(store.couriers.values());
  orders.update(store.orders.values());
  mountAttention(store, openOrder);
  mountSearch(api, store, openOrder, openCourier);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && card) closeCard();
  });
}

void start();
