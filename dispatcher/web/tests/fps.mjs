// @ts-check
// Frames per second of the support map with 2,000 simulated couriers moving at 1 Hz: starts
// `dispatcher demo --couriers 2000`, opens the map in headless Chromium (software WebGL), waits
// until every courier is drawn, then counts animation frames (requestAnimationFrame callbacks:
// what the page can paint), MapLibre repaints and courier-source updates over a window, while
// the map pans back and forth so every frame is a real repaint. Repeats, reports the median.
//
//   node tests/fps.mjs [--couriers 2000] [--runs 3] [--seconds 20] [--out ../WEB.md]

import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { relative, resolve } from 'node:path';
import { launchBrowser, REPO, screenshot, startDemo } from './harness.mjs';

/**
 * Measures one window of `seconds` on `page` (the staff map, loaded).
 * @param {import('playwright-core').Page} page @param {number} seconds @param {boolean} [pan]
 */
export async function measureWindow(page, seconds, pan = true) {
  return page.evaluate(async ([seconds, pan]) => {
    const d = window.dispatchMap;
    if (!d) throw new Error('the map is not there');
    const { map, couriers } = d;
    let frames = 0;
    let renders = 0;
    let worst = 0;
    let last = performance.now();
    const onRender = () => renders++;
    map.on('render', onRender);
    const updates0 = couriers.updates;
    const start = performance.now();
    await new Promise((done) => {
      const tick = (/** @type {number} */ t) => {
        frames++;
        worst = Math.max(worst, t - last);
        last = t;
        // Pan slowly, so the map repaints every frame as a person dragging it would make it.
        const phase = ((t - start) / 4000) * Math.PI * 2;
        if (pan) map.jumpTo({ center: [24.9384 + 0.01 * Math.sin(phase), 60.1699 + 0.004 * Math.cos(phase)] });
        if (t - start < seconds * 1000) requestAnimationFrame(tick);
        else done(undefined);
      };
      requestAnimationFrame(tick);
    });
    map.off('render', onRender);
    const elapsed = (performance.now() - start) / 1000;
    return {
      fps: frames / elapsed,
      map_renders_per_s: renders / elapsed,
      worst_frame_ms: worst,
      courier_updates_per_s: (couriers.updates - updates0) / elapsed,
      drawn: new Set(map.querySourceFeatures('couriers').map((f) => f.properties?.id)).size,
    };
  }, /** @type {[number, boolean]} */ ([seconds, pan]));
}

/** Opens the staff map on `demo` and waits for `couriers` couriers on it. @param {any} browser @param {{base: string, staff: string}} demo @param {number} couriers */
export async function openLoadedMap(browser, demo, couriers) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  await context.addInitScript((/** @type {string} */ token) => localStorage.setItem('dispatch.staffToken', token), demo.staff);
  const page = await context.newPage();
  await page.goto(`${demo.base}/`);
  await page.waitForFunction((/** @type {number} */ n) => (window.dispatchMap?.store.couriers.size ?? 0) >= n, couriers, { timeout: 180_000 });
  await page.waitForFunction(
    (/** @type {number} */ n) => [...(window.dispatchMap?.store.couriers.values() ?? [])].filter((c) => c.position).length >= n,
    couriers,
    { timeout: 180_000 },
  );
  await page.evaluate(() => window.dispatchMap?.map.jumpTo({ center: [24.9384, 60.1699], zoom: 12 }));
  return { page, context };
}

const median = (/** @type {number[]} */ xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main() {
  const arg = (/** @type {string} */ name, /** @type {string} */ fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] ?? fallback : fallback;
  };
  const couriers = Number(arg('couriers', '2000'));
  const runs = Number(arg('runs', '3'));
  const seconds = Number(arg('seconds', '20'));
  const out = arg('out', '');
  const demo = await startDemo(['--couriers', String(couriers), '--speedup', '1']);
  const browser = await launchBrowser();
  try {
    const { page } = await openLoadedMap(browser, demo, couriers);
    const loadBefore = os.loadavg()[0];
    /** @type {Awaited<ReturnType<typeof measureWindow>>[]} */
    const results = [];
    /** @type {Awaited<ReturnType<typeof measureWindow>>[]} */
    const still = [];
    for (let i = 0; i < runs; i++) {
      const r = await measureWindow(page, seconds);
      console.log(JSON.stringify({ run: i + 1, pan: true, ...r }));
      results.push(r);
      const q = await measureWindow(page, seconds, false);
      console.log(JSON.stringify({ run: i + 1, pan: false, ...q }));
      still.push(q);
    }
    await screenshot(page, `map-${couriers}`);
    const summary = {
      couriers,
      runs,
      seconds,
      fps_median: median(results.map((r) => r.fps)),
      fps_runs: results.map((r) => Number(r.fps.toFixed(1))),
      map_renders_per_s_median: median(results.map((r) => r.map_renders_per_s)),
      worst_frame_ms_median: median(results.map((r) => r.worst_frame_ms)),
      courier_updates_per_s_median: median(results.map((r) => r.courier_updates_per_s)),
      drawn: results[results.length - 1]?.drawn,
      still_fps_median: median(still.map((r) => r.fps)),
      still_fps_runs: still.map((r) => Number(r.fps.toFixed(1))),
      still_renders_per_s_median: median(still.map((r) => r.map_renders_per_s)),
      still_worst_frame_ms_median: median(still.map((r) => r.worst_frame_ms)),
      binary: relative(REPO, process.env.DISPATCHER_BIN ?? resolve(REPO, 'target/debug/dispatcher')),
      load: `${loadBefore.toFixed(1)} at the start and ${os.loadavg()[0].toFixed(1)} at the end (1-minute load average, 2 cores shared with other builds)`,
    };
    console.log(JSON.stringify(summary));
    if (out) writeReport(resolve(out), summary);
  } finally {
    await browser.close();
    await demo.stop();
  }
}

/** @param {string} path @param {Record<string, any>} s */
function writeReport(path, s) {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const text = `# Web pages: measurements

Written by \`dispatcher/web/tests/fps.mjs\` (\`cd dispatcher/web && npm run fps -- --out ../WEB.md\`)
on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${cpu}), against
\`${s.binary} demo --couriers ${s.couriers} --speedup 1\` on the same machine (its planner and
simulated city share the cores with the browser), in headless Chromium
with software WebGL (SwiftShader: no GPU here). Each run is a ${s.seconds} s window in which the
map pans every frame (every frame a full repaint, as while a person drags the map), followed by
a window with the map still; all the while ${s.couriers} simulated couriers send positions at
1 Hz and the page updates the couriers' GeoJSON source at most once per animation frame.

| figure | median of ${s.runs} runs |
|---|---|
| frames per second while panning (requestAnimationFrame) | **${s.fps_median.toFixed(1)}** (runs: ${s.fps_runs.join(', ')}) |
| MapLibre repaints per second while panning | ${s.map_renders_per_s_median.toFixed(1)} |
| worst frame while panning, ms | ${s.worst_frame_ms_median.toFixed(0)} |
| frames per second with the map still (only the couriers move) | **${s.still_fps_median.toFixed(1)}** (runs: ${s.still_fps_runs.join(', ')}) |
| MapLibre repaints per second with the map still | ${s.still_renders_per_s_median.toFixed(1)} |
| worst frame with the map still, ms | ${s.still_worst_frame_ms_median.toFixed(0)} |
| courier source updates per second (setData) | ${s.courier_updates_per_s_median.toFixed(1)} |
| couriers drawn | ${s.drawn} |

Software rendering on two shared cores is the worst case: a phone or laptop with a GPU draws
the same layers in a fraction of the time. The map draws at city zoom (12), where couriers are
dots coloured by status; heading arrows (a symbol layer, far costlier to lay out than circles)
appear from street zoom (14). The machine's load average during the runs was ${s.load}.
`;
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
