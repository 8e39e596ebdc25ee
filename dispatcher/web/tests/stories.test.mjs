// @ts-check
// The web pages as people use them, in headless Chromium against one running `dispatcher demo`:
// each test is a user story and waits for what that person would see (a count on the panel, a
// badge, a stop on the phone, a dot on the map), never for a fixed time.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { api, CENTER, launchBrowser, newCourier, newOrder, offset, screenshot, startDemo } from './harness.mjs';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').Browser} Browser */

/** @type {Awaited<ReturnType<typeof startDemo>>} */
let demo;
/** @type {Browser} */
let browser;
/** @type {Page} */
let map;

const WAIT = { timeout: 30_000 };
// The phones' reported accuracy, metres: the tracker grants it as slack when it judges whether a
// move is a plausible ride, so the stories may move a courier a couple of hundred metres at once.
const ACCURACY = 100;

before(async () => {
  demo = await startDemo(['--couriers', '20', '--speedup', '1', '--seed', '7'], { PLANNER_INTERVAL_MS: '1000' });
  browser = await launchBrowser();
  map = await staffPage();
});

after(async () => {
  await browser?.close();
  await demo?.stop();
});

/** The staff page, signed in (the token was entered once before and kept). */
async function staffPage() {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript((token) => localStorage.setItem('dispatch.staffToken', token), demo.staff);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('staff page error:', e));
  await page.goto(`${demo.base}/`);
  await page.locator('#connection[data-state="open"]').waitFor(WAIT);
  return page;
}

/**
 * A courier's phone: the courier app opened from a staff sign-in link, at `where`.
 * @param {{ id: string, token: string }} courier @param {{ lat: number, lon: number }} where
 */
async function courierPhone(courier, where) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    permissions: ['geolocation'],
    geolocation: { latitude: where.lat, longitude: where.lon, accuracy: ACCURACY },
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error('courier page error:', e));
  await page.goto(`${demo.base}/courier#token=${courier.token}`);
  await page.locator('#connection[data-state="open"]').waitFor(WAIT);
  await page.getByRole('button', { name: 'Start shift' }).click();
  await page.getByText('Sharing your location').waitFor(WAIT);
  return { page, context };
}

/** The service's clock, as the staff page knows it. */
async function serviceNow() {
  return new Date(await map.evaluate(() => window.dispatchMap?.store.now().toISOString() ?? new Date().toISOString()));
}

/** Where the map draws courier `id` (lon, lat), or null. @param {Page} page @param {string} id */
async function drawnCourier(page, id) {
  return page.evaluate((id) => {
    const m = window.dispatchMap?.map;
    const f = m?.querySourceFeatures('couriers').find((f) => f.properties?.id === id);
    return f && f.geometry.type === 'Point' ? /** @type {[number, number]} */ (f.geometry.coordinates) : null;
  }, id);
}

/** Opens order `id` from the search box. @param {Page} page @param {string} id */
async function searchOrder(page, id) {
  await page.getByRole('searchbox').fill(id);
  await page.getByRole('searchbox').press('Enter');
  await page.locator(`[data-order-title="${id}"]`).waitFor(WAIT);
}

test('the map shows the simulated couriers and they move', async () => {
  await map.waitForFunction(() => (window.dispatchMap?.map.queryRenderedFeatures({ layers: ['couriers-dot'] }).length ?? 0) >= 20, null, WAIT);
  await map.locator('[data-kpi="idle"] .kpi-value').waitFor(WAIT);
  const first = await map.evaluate(() =>
    Object.fromEntries((window.dispatchMap?.map.querySourceFeatures('couriers') ?? []).map((f) => [f.properties?.id, JSON.stringify(/** @type {any} */ (f.geometry).coordinates)])),
  );
  await map.waitForFunction(
    (first) =>
      (window.dispatchMap?.map.querySourceFeatures('couriers') ?? []).some((f) => {
        const was = first[f.properties?.id];
        return was && was !== JSON.stringify(/** @type {any} */ (f.geometry).coordinates);
      }),
    first,
    WAIT,
  );
  const onShift = await map.locator('[data-kpi="idle"] .kpi-label').textContent();
  assert.match(onShift ?? '', /of (2\d|\d\d\d?) on shift/, 'the panel counts the couriers on shift');
  await screenshot(map, 'map');
});

test("an order's timeline opens from a search", async () => {
  const now = await serviceNow();
  const id = await newOrder(demo, now, offset(CENTER, 300, 200), offset(CENTER, 900, -400));
  await searchOrder(map, id);
  await map.locator('.timeline li[data-kind="placed"]').waitFor(WAIT);
  assert.match((await map.locator('.timeline').textContent()) ?? '', /placed\s*by staff/i);
  await map.locator('[data-why]').waitFor(WAIT);
  await screenshot(map, 'order-card');
});

test('the why panel lists the best couriers with their costs and the reasons others were rejected', async () => {
  const id = await newOrder(demo, await serviceNow(), offset(CENTER, -300, 200), offset(CENTER, -900, 400));
  // Until the optimizer's explanation is served, the panel says so.
  const explained = await fetch(`${demo.base}/v1/orders/${id}/candidates?limit=5`, { headers: { Authorization: `Bearer ${demo.staff}` } });
  if (explained.status === 404) {
    await searchOrder(map, id);
    await map.locator('[data-why="unavailable"]').waitFor(WAIT);
    assert.match((await map.locator('[data-why="unavailable"]').textContent()) ?? '', /not available/i);
  }
  // The panel reads the contract's shape of GET /v1/orders/{id}/candidates.
  const now = await serviceNow();
  const at = (/** @type {number} */ m) => new Date(now.getTime() + m * 60_000).toISOString();
  const body = {
    order_id: id, status: 'created', courier_id: null, unassigned_reason: 'no_courier_position',
    candidates: [
      { courier_id: 'c-ada', name: 'Ada', cost: 123.4, added_travel_s: 240, pickup_eta: at(6), dropoff_eta: at(19), pickup_index: 0, dropoff_index: 1, current: false },
      { courier_id: 'c-bea', name: 'Bea', cost: 150.2, added_travel_s: 420, pickup_eta: at(9), dropoff_eta: at(24), pickup_index: 2, dropoff_index: 3, current: false },
    ],
    rejected: [{ courier_id: 'c-bob', name: 'Bob', reason: 'capacity' }, { courier_id: 'c-cy', name: 'Cy', reason: 'shift_end' }],
  };
  await map.route('**/v1/orders/*/candidates*', (r) => r.fulfill({ json: body }));
  await map.locator('.card .btn.icon').first().click().catch(() => {});
  await searchOrder(map, id);
  const table = map.locator('[data-why="candidates"]');
  await table.waitFor(WAIT);
  assert.match((await table.textContent()) ?? '', /Ada.*123\.4.*4 min.*Bea.*150\.2/s);
  await map.getByText('2 others rejected').click();
  assert.match((await map.locator('.rejected').textContent()) ?? '', /Bob\s*capacity.*Cy\s*shift end/s);
  await screenshot(map, 'order-why');
  await map.unroute('**/v1/orders/*/candidates*');
});

test('a staff assignment made on the map reaches the courier page', async () => {
  const courier = await newCourier(demo, 'Assigned Ada');
  const phone = await courierPhone(courier, offset(CENTER, -5000, 3000));
  const id = await newOrder(demo, await serviceNow(), offset(CENTER, 200, 100), offset(CENTER, 800, 600));
  await searchOrder(map, id);
  await map.locator('#assign-courier').selectOption(courier.id);
  await map.getByRole('button', { name: 'Assign', exact: true }).click();
  await map.getByText('Assign: done').waitFor(WAIT);
  await map.locator(`[data-courier-link="${courier.id}"]`).waitFor(WAIT);
  await phone.page.locator(`[data-next="${id}:pickup"], [data-stop="${id}:pickup"]`).first().waitFor(WAIT);
  const timeline = await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}/timeline`);
  assert.ok(timeline.entries.some((/** @type {any} */ e) => e.actor.startsWith('staff') && /assign/.test(e.kind)), JSON.stringify(timeline.entries));
  await screenshot(phone.page, 'courier-app');
  await phone.context.close();
});

test("the courier page's picked-up and delivered buttons change the order's status on the map", async () => {
  const start = offset(CENTER, -4000, -2000);
  const courier = await newCourier(demo, 'Tapping Tove');
  const phone = await courierPhone(courier, start);
  const id = await newOrder(demo, await serviceNow(), offset(start, 100, 0), offset(start, 600, 300));
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/assign`, { courier_id: courier.id });
  await searchOrder(map, id);
  await openStop(phone.page, `${id}:pickup`);
  await phone.page.getByRole('button', { name: 'Picked up' }).click();
  await map.locator('.card-head [data-status="picked_up"]').waitFor(WAIT);
  // On the way: the phone reports positions towards the customer.
  for (const step of [150, 300, 450]) {
    await phone.context.setGeolocation({ ...toGeo(offset(start, step, step / 2)), accuracy: ACCURACY });
    await map.waitForFunction(([id, lon]) => Math.abs((window.dispatchMap?.store.couriers.get(id)?.position?.lon ?? 0) - lon) < 1e-6, /** @type {[string, number]} */ ([courier.id, offset(start, step, step / 2).lon]), WAIT);
  }
  await openStop(phone.page, `${id}:dropoff`);
  await phone.page.getByRole('button', { name: 'Delivered' }).click();
  await map.locator('.card-head [data-status="delivered"]').waitFor(WAIT);
  // A delivered order's card draws the courier's track from pickup to drop-off.
  await map
    .locator('[data-track]')
    .waitFor(WAIT)
    .catch(async (e) => assert.fail(`no track drawn: ${await map.locator('.card .track').textContent().catch(() => '')} (${e})`));
  const points = Number(await map.locator('[data-track]').getAttribute('data-track'));
  assert.ok(points >= 2, `the track has ${points} positions`);
  await screenshot(map, 'delivered-track');
  await phone.context.close();
});

test('staff corrections on the order card apply at once: pin, unpin, deliver-by, unassign, fail, cancel', async () => {
  const start = offset(CENTER, 1500, -3500);
  const courier = await newCourier(demo, 'Corrected Cai');
  const phone = await courierPhone(courier, start);
  const id = await newOrder(demo, await serviceNow(), offset(start, 100, 0), offset(start, 400, 200));
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/assign`, { courier_id: courier.id });
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/unpin`);
  await searchOrder(map, id);
  const card = map.locator('.card');
  await card.getByRole('button', { name: 'Pin', exact: true }).click();
  await card.locator('.card-head').getByText('Pinned').waitFor(WAIT);
  await card.getByRole('button', { name: 'Unpin', exact: true }).click();
  await card.getByText('Unpin: done').waitFor(WAIT);
  assert.equal(await card.locator('.card-head').getByText('Pinned').count(), 0);
  // A new promise half an hour later.
  const later = await map.evaluate(() => {
    const input = /** @type {HTMLInputElement} */ (document.getElementById('deliver-by'));
    const [h, m] = input.value.split(':').map(Number);
    const t = ((h ?? 0) * 60 + (m ?? 0) + 30) % (24 * 60);
    return `${String(Math.floor(t / 60)).padStart(2, '0')}:${String(t % 60).padStart(2, '0')}`;
  });
  await map.locator('#deliver-by').fill(later);
  await card.getByRole('button', { name: 'Change deliver-by' }).click();
  await card.getByText('Change deliver-by: done').waitFor(WAIT);
  await card.locator('.facts').getByText(later).waitFor(WAIT);
  await card.getByRole('button', { name: 'Unassign', exact: true }).click();
  await card.getByText('Unassign: done').waitFor(WAIT);
  await map.locator('#fail-reason').fill('Restaurant closed early');
  await card.getByRole('button', { name: 'Mark failed' }).click();
  await card.locator('.card-head [data-status="failed"]').waitFor(WAIT);
  await map.waitForFunction((id) => !window.dispatchMap?.store.orders.has(id), id, WAIT);
  const kinds = (await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}/timeline`)).entries
    .filter((/** @type {any} */ e) => e.actor.startsWith('staff'))
    .map((/** @type {any} */ e) => e.kind);
  for (const kind of ['pinned', 'unpinned', 'unassigned', 'failed']) assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
  const other = await newOrder(demo, await serviceNow(), offset(start, -100, 0), offset(start, -400, 200));
  await searchOrder(map, other);
  await card.getByRole('button', { name: 'Cancel order' }).click();
  await card.locator('.card-head [data-status="cancelled"]').waitFor(WAIT);
  assert.equal((await api(demo.base, demo.staff, 'GET', `/v1/orders/${other}`)).status, 'cancelled');
  await phone.context.close();
});

test('a courier who cannot deliver says why, and the order fails with that reason', async () => {
  const start = offset(CENTER, -1500, -3500);
  const courier = await newCourier(demo, 'Failing Fen');
  const phone = await courierPhone(courier, start);
  const id = await newOrder(demo, await serviceNow(), offset(start, 100, 0), offset(start, 400, 200));
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/assign`, { courier_id: courier.id });
  await openStop(phone.page, `${id}:pickup`);
  await phone.page.getByRole('button', { name: 'Arrived' }).click();
  await phone.page.getByRole('button', { name: 'Arrived ✓' }).waitFor(WAIT);
  await phone.page.getByRole('button', { name: 'Picked up' }).click();
  await openStop(phone.page, `${id}:dropoff`);
  await phone.page.getByRole('button', { name: 'Cannot deliver' }).click();
  await phone.page.getByRole('button', { name: 'Customer not reachable' }).click();
  await phone.page.locator('#queue[data-pending="0"]').waitFor(WAIT);
  const order = await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}`);
  assert.equal(order.status, 'failed');
  assert.equal(order.failed_reason, 'Customer not reachable');
  await phone.context.close();
});

test('emulated geolocation moves the courier on the map', async () => {
  const here = offset(CENTER, 2500, 2500);
  const courier = await newCourier(demo, 'Moving Mo');
  const phone = await courierPhone(courier, here);
  await map.waitForFunction((id) => !!window.dispatchMap?.store.couriers.get(id)?.position, courier.id, WAIT);
  // Staff find the courier: the map centres on it.
  await map.getByRole('searchbox').fill(courier.id);
  await map.getByRole('searchbox').press('Enter');
  await map.locator(`[data-courier="${courier.id}"]`).click();
  await map.locator(`[data-courier-title="${courier.id}"]`).waitFor(WAIT);
  await map.waitForFunction((id) => !!window.dispatchMap?.map.querySourceFeatures('couriers').some((f) => f.properties?.id === id), courier.id, WAIT);
  const there = offset(here, 150, -60);
  await phone.context.setGeolocation({ ...toGeo(there), accuracy: ACCURACY });
  await map.waitForFunction(
    ([id, lat, lon]) => {
      const f = window.dispatchMap?.map.querySourceFeatures('couriers').find((f) => f.properties?.id === id);
      const c = f && /** @type {any} */ (f.geometry).coordinates;
      return !!c && Math.abs(c[0] - lon) < 1e-5 && Math.abs(c[1] - lat) < 1e-5;
    },
    /** @type {[string, number, number]} */ ([courier.id, there.lat, there.lon]),
    WAIT,
  );
  assert.ok(await drawnCourier(map, courier.id));
  await map.locator(`[data-position="${there.lat.toFixed(5)},${there.lon.toFixed(5)}"]`).waitFor(WAIT);
  // And a person sees it: the dot is drawn in the part of the map beside the card.
  await map.waitForFunction((id) => !!window.dispatchMap?.map.queryRenderedFeatures({ layers: ['couriers-dot'] }).some((f) => f.properties?.id === id), courier.id, WAIT);
  await screenshot(map, 'courier-card');
  await phone.context.close();
});

test("an offline courier's taps are applied once after reconnecting", async () => {
  const start = offset(CENTER, 3000, -3000);
  const courier = await newCourier(demo, 'Offline Olli');
  const phone = await courierPhone(courier, start);
  const id = await newOrder(demo, await serviceNow(), offset(start, 100, 50), offset(start, 500, 300));
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/assign`, { courier_id: courier.id });
  await openStop(phone.page, `${id}:pickup`);
  await phone.page.waitForFunction(() => navigator.serviceWorker.controller != null, null, WAIT);
  await phone.context.setOffline(true);
  await phone.page.locator('#connection[data-state="offline"]').waitFor(WAIT);
  await phone.page.getByRole('button', { name: 'Picked up' }).click();
  await phone.page.locator('#queue[data-pending="1"]').waitFor(WAIT);
  // The phone is reloaded with no network: the app starts from its service worker and keeps the tap.
  await phone.page.reload();
  await phone.page.locator('#queue[data-pending="1"]').waitFor(WAIT);
  assert.equal((await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}`)).status, 'assigned');
  await phone.context.setOffline(false);
  await phone.page.locator('#queue[data-pending="0"]').waitFor(WAIT);
  const order = await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}`);
  assert.equal(order.status, 'picked_up');
  const timeline = await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}/timeline`);
  assert.equal(timeline.entries.filter((/** @type {any} */ e) => e.kind === 'picked_up').length, 1, JSON.stringify(timeline.entries));
  await phone.context.close();
});

test('the tracking page shows the courier only while the order is on its way', async () => {
  const start = offset(CENTER, -2500, 3500);
  const courier = await newCourier(demo, 'Tracked Tea');
  const phone = await courierPhone(courier, start);
  const id = await newOrder(demo, await serviceNow(), offset(start, 100, 100), offset(start, 700, 400));
  await api(demo.base, demo.staff, 'POST', `/v1/orders/${id}/assign`, { courier_id: courier.id });
  const { tracking_id } = await api(demo.base, demo.staff, 'GET', `/v1/orders/${id}`);
  const customer = await browser.newContext({ viewport: { width: 420, height: 800 } });
  const page = await customer.newPage();
  await page.goto(`${demo.base}/t/${tracking_id}`);
  await page.locator('#status[data-status="assigned"]').waitFor(WAIT);
  assert.equal(await page.locator('#note').getAttribute('data-courier'), null, 'no courier before pickup');
  await openStop(phone.page, `${id}:pickup`);
  await phone.page.getByRole('button', { name: 'Picked up' }).click();
  await page.locator('#status[data-status="picked_up"]').waitFor(WAIT);
  await page.locator('#note[data-courier]').waitFor(WAIT);
  await screenshot(page, 'tracking');
  await openStop(phone.page, `${id}:dropoff`);
  await phone.page.getByRole('button', { name: 'Delivered' }).click();
  await page.locator('#status[data-status="delivered"]').waitFor(WAIT);
  assert.equal(await page.locator('#note').getAttribute('data-courier'), null, 'no courier after delivery');
  await customer.close();
  await phone.context.close();
});

test('with a tile URL configured, the map draws a basemap under its layers', async () => {
  const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  await context.addInitScript((token) => localStorage.setItem('dispatch.staffToken', token), demo.staff);
  const page = await context.newPage();
  /** @type {string[]} */
  const tiles = [];
  // A self-hosted tile server, as configured by MAP_TILES; here the browser answers for it.
  await page.route('**/config.json', (r) => r.fulfill({ json: { tiles: 'http://tiles.invalid/{z}/{x}/{y}.png', attribution: '© OpenStreetMap contributors' } }));
  await page.route('http://tiles.invalid/**', (r) => {
    tiles.push(r.request().url());
    return r.fulfill({ contentType: 'image/png', body: TILE_PNG });
  });
  await page.goto(`${demo.base}/`);
  await page.locator('#connection[data-state="open"]').waitFor(WAIT);
  await page.waitForFunction(() => window.dispatchMap?.map.getLayer('basemap') != null && window.dispatchMap.map.isSourceLoaded('basemap'), null, WAIT);
  assert.ok(tiles.length > 0, 'tiles were requested');
  assert.match((await page.locator('.maplibregl-ctrl-attrib').textContent()) ?? '', /OpenStreetMap/);
  const order = await page.evaluate(() => window.dispatchMap?.map.getStyle().layers.map((l) => l.id) ?? []);
  assert.ok(order.indexOf('basemap') < order.indexOf('couriers-dot'), 'the basemap is under the couriers');
  await context.close();
});

test('the courier app is installable: a manifest and a service worker', async () => {
  const manifest = await (await fetch(`${demo.base}/courier.webmanifest`)).json();
  assert.equal(manifest.start_url, '/courier');
  assert.ok(manifest.icons.some((/** @type {any} */ i) => i.sizes === '512x512'));
  const courier = await newCourier(demo, 'Installing Ines');
  const phone = await courierPhone(courier, CENTER);
  const scope = await phone.page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
  assert.ok(scope.endsWith('/courier'), scope);
  await phone.context.close();
});

/** Makes `key` (`order:kind`) the phone's current stop. @param {Page} page @param {string} key */
async function openStop(page, key) {
  const next = page.locator(`[data-next="${key}"]`);
  const listed = page.locator(`[data-stop="${key}"]`);
  await next.or(listed).first().waitFor(WAIT);
  if (!(await next.isVisible())) await listed.click();
  await next.waitFor(WAIT);
}

/** @param {{ lat: number, lon: number }} p */
const toGeo = (p) => ({ latitude: p.lat, longitude: p.lon });

// Every tile of the fake basemap: a PNG the app ships anyway.
const TILE_PNG = readFileSync(new URL('../public/icons/icon-192.png', import.meta.url));
