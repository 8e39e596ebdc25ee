// Three pages, one entry each, sharing src/lib (API and socket client) and src/map (the map
// view and its layers). MapLibre goes to a chunk of its own, so its file (and hash) only changes
// when its version does.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        courier: resolve(import.meta.dirname, 'courier.html'),
        track: resolve(import.meta.dirname, 'track.html'),
      },
      output: {
        manualChunks(id) {
          if (id.includes('node_modules/maplibre-gl')) return 'maplibre';
          if (id.includes('node_modules/pmtiles')) return 'pmtiles';
          return undefined;
        },
      },
    },
  },
});
