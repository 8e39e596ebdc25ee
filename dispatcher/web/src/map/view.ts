// The map view: one MapLibre map on a plain background (our machines reach no tile server),
// with a raster basemap under the layers when the service is configured with one (`MAP_TILES`:
// an XYZ template of a self-hosted OpenStreetMap tile server, or `pmtiles://` of a raster
// PMTiles archive). Layers are separate modules that add their own sources and layers.

import maplibregl, { type Map as MlMap, type StyleSpecification } from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import type { WebConfig } from '../lib/types';

export const BACKGROUND = '#eef1f4';

let pmtilesReady: Promise<void> | null = null;

async function usePmtiles(): Promise<void> {
  pmtilesReady ??= import('pmtiles').then(({ Protocol }) => {
    const protocol = new Protocol();
    maplibregl.addProtocol('pmtiles', protocol.tile);
  });
  return pmtilesReady;
}

export async function loadWebConfig(): Promise<WebConfig> {
  try {
    const r = await fetch('/config.json', { headers: { Accept: 'application/json' } });
    if (r.ok) return (await r.json()) as WebConfig;
  } catch {
    /* the map still works without a basemap */
  }
  return { tiles: null, attribution: null };
}

function style(config: WebConfig): StyleSpecification {
  const s: StyleSpecification = {
    version: 8,
    sources: {},
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': BACKGROUND } }],
  };
  if (config.tiles) {
    const pm = config.tiles.startsWith('pmtiles://');
    s.sources.basemap = pm
      ? { type: 'raster', url: config.tiles, tileSize: 256, attribution: config.attribution ?? '' }
      : { type: 'raster', tiles: [config.tiles], tileSize: 256, maxzoom: 19, attribution: config.attribution ?? '' };
    s.layers.push({ id: 'basemap', type: 'raster', source: 'basemap', paint: { 'raster-opacity': 0.9 } });
  }
  return s;
}

export interface MapViewOptions {
  container: HTMLElement;
  config: WebConfig;
  center?: [number, number];
  zoom?: number;
  interactive?: boolean;
}

/** Creates the map and resolves once its style is loaded (layers can be added then). */
export async function createMapView(o: MapViewOptions): Promise<MlMap> {
  if (o.config.tiles?.startsWith('pmtiles://')) await usePmtiles();
  const map = new maplibregl.Map({
    container: o.container,
    style: style(o.config),
    center: o.center ?? [24.94, 60.17],
    zoom: o.zoom ?? 12,
    interactive: o.interactive ?? true,
    attributionControl: o.config.tiles ? { compact: true } : false,
    dragRotate: false,
    pitchWithRotate: false,
    fadeDuration: 0,
  });
  map.touchZoomRotate.disableRotation();
  if (o.interactive !== false) map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'bottom-right');
  await new Promise<void>((resolve) => map.once('load', () => resolve()));
  return map;
}

/** Fits the map to points (lon, lat) with padding; does nothing for none. */
export function fitTo(map: MlMap, points: [number, number][], padding = 60, maxZoom = 15): void {
  if (points.length === 0) return;
  const b = new maplibregl.LngLatBounds(points[0], points[0]);
  for (const p of points) b.extend(p);
  map.fitBounds(b, { padding, maxZoom, duration: 0 });
}
