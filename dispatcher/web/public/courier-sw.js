// The courier app's service worker: the app starts with no network. On install it caches the
// page and the bundles the page names; afterwards the page is fetched from the network first
// (a new build replaces the cached one) and bundles, whose names carry a content hash, from
// the cache first. The API and the sockets are never cached: the app queues its taps itself.
const CACHE = 'courier-v1';
const SHELL = ['/courier', '/courier.webmanifest', '/icons/icon.svg', '/icons/icon-192.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll(SHELL);
      const page = await (await cache.match('/courier')).text();
      const assets = [...page.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
      await cache.addAll([...new Set(assets)]);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/v1/') || url.pathname === '/config.json') return;
  if (url.pathname === '/courier' || event.request.mode === 'navigate') {
    event.respondWith(
      (async () => {
        try {
          const fresh = await fetch(event.request);
          if (fresh.ok) (await caches.open(CACHE)).put('/courier', fresh.clone());
          return fresh;
        } catch {
          return (await caches.match('/courier')) ?? Response.error();
        }
      })(),
    );
    return;
  }
  if (url.pathname.startsWith('/assets/') || url.pathname.startsWith('/icons/')) {
    event.respondWith(
      (async () => {
        const hit = await caches.match(event.request);
        if (hit) return hit;
        const fresh = await fetch(event.request);
        if (fresh.ok) (await caches.open(CACHE)).put(event.request, fresh.clone());
        return fresh;
      })(),
    );
  }
});
