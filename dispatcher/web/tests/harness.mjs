// @ts-check
// What the browser stories share: a real `dispatcher demo` process (started on free ports, its
// printed `map:` and token lines read), Debian's Chromium driven by playwright-core (no browser
// download), the API for setting scenes up, and screenshots under target/screenshots/.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '../../..');
export const SCREENSHOTS = resolve(REPO, 'target/screenshots');
export const CENTER = { lat: 60.1699, lon: 24.9384 };

/**
 * Starts `dispatcher demo` with `args`; resolves once it printed its address and tokens.
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
export async function startDemo(args, env = {}) {
  const bin = process.env.DISPATCHER_BIN ?? resolve(REPO, 'target/debug/dispatcher');
  /** @type {Record<string, string | undefined>} */
  const childEnv = { ...process.env, HTTP_ADDR: '127.0.0.1:0', OSMAND_ADDR: '127.0.0.1:0', RUST_LOG: process.env.RUST_LOG ?? 'warn', LOG_FORMAT: 'text', ...env };
  // The demo keeps everything in memory.
  delete childEnv.DATABASE_URL;
  delete childEnv.AMQP_URL;
  const child = spawn(bin, ['demo', ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  /** @type {string[]} */
  const log = [];
  child.stderr.on('data', (d) => {
    log.push(String(d));
    if (log.length > 200) log.shift();
  });
  const lines = createInterface({ input: child.stdout });
  /** @type {Record<string, string>} */
  const printed = {};
  await new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo printed no address within 60 s:\n${log.join('')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}):\n${log.join('')}`)));
    lines.on('line', (line) => {
      const m = /^(map|staff token|courier token): (.*)$/.exec(line);
      if (m) printed[m[1]] = m[2].trim();
      if (printed.map && printed['staff token'] && printed['courier token']) {
        clearTimeout(timer);
        resolveStart(undefined);
      }
    });
  });
  const base = printed.map.replace(/\/$/, '');
  return {
    base,
    staff: printed['staff token'],
    courier: printed['courier token'],
    log,
    async stop() {
      if (child.exitCode != null) return;
      child.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => (child.kill('SIGKILL'), r(undefined)), 10_000);
        child.once('exit', () => (clearTimeout(t), r(undefined)));
      });
    },
  };
}

/** Debian's Chromium, headless, with software WebGL for MapLibre and no background traffic. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--enable-unsafe-swiftshader',
      '--use-angle=swiftshader',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Calls the API as `token`; throws on a non-2xx answer with its body.
 * @param {string} base @param {string} token @param {string} method @param {string} path @param {unknown} [body]
 */
export async function api(base, token, method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

let seq = 0;
/** A unique suffix for ids made by one run. */
export const unique = (/** @type {string} */ prefix) => `${prefix}-${process.pid}-${Date.now().toString(36)}-${++seq}`;

/**
 * A courier registered through the API, with a sign-in token issued by staff.
 * @param {{ base: string, staff: string }} demo @param {string} name
 */
export async function newCourier(demo, name) {
  const c = await api(demo.base, demo.staff, 'POST', '/v1/couriers', { name, vehicle: 'car', device_id: unique('phone'), capacity: 1 });
  const t = await api(demo.base, demo.staff, 'POST', `/v1/couriers/${c.id}/tokens`);
  return { id: /** @type {string} */ (c.id), token: /** @type {string} */ (t.token) };
}

/**
 * Places an order through the API, timed on the service's clock `now`.
 * @param {{ base: string, staff: string }} demo @param {Date} now
 * @param {{ lat: number, lon: number }} restaurant @param {{ lat: number, lon: number }} dropoff
 */
export async function newOrder(demo, now, restaurant, dropoff) {
  const id = unique('o');
  const at = (/** @type {number} */ min) => new Date(now.getTime() + min * 60_000).toISOString();
  await api(demo.base, demo.staff, 'POST', '/v1/orders', {
    order_id: id,
    restaurant: { id: 'r-test', ...restaurant },
    dropoff,
    placed_at: at(0),
    ready_at: at(2),
    deliver_by: at(45),
  });
  return id;
}

/** Metres east and north of `p`. @param {{lat:number, lon:number}} p @param {number} east @param {number} north */
export function offset(p, east, north) {
  return { lat: p.lat + north / 111_320, lon: p.lon + east / (111_320 * Math.cos((p.lat * Math.PI) / 180)) };
}

/** Saves a screenshot of `page` as target/screenshots/NAME.png. @param {import('playwright-core').Page} page @param {string} name */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`) });
}
