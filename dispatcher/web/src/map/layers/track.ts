// A delivered order's track: the courier's positions from pickup to drop-off, as a line with its
// two ends marked. Added while an order card shows it, removed when the card closes.

import type { GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { fitTo } from '../view';

const SOURCE = 'track';
const LINE = 'track-line';
const ENDS = 'track-ends';

export class TrackLayer {
  constructor(private readonly map: MlMap) {
    map.addSource(SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    map.addLayer({
      id: LINE,
      type: 'line',
      source: SOURCE,
      filter: ['==', ['geometry-type'], 'LineString'],
      layout: { 'line-join': 'round', 'line-cap': 'round' },
      paint: { 'line-color': '#0ea5e9', 'line-width': 4, 'line-opacity': 0.9 },
    });
    map.addLayer({
      id: ENDS,
      type: 'circle',
      source: SOURCE,
      filter: ['==', ['geometry-type'], 'Point'],
      paint: {
        'circle-radius': 6,
        'circle-color': ['match', ['get', 'end'], 'start', '#0f172a', '#0ea5e9'] as unknown as string,
        'circle-stroke-color': '#fff',
        'circle-stroke-width': 2,
      },
    });
  }

  /** Shows `coordinates` (lon, lat), fitting the map to them. */
  show(coordinates: [number, number][]): void {
    const features: GeoJSON.Feature[] = [];
    if (coordinates.length >= 2) features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates }, properties: {} });
    const first = coordinates[0];
    const last = coordinates[coordinates.length - 1];
    if (first) features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: first }, properties: { end: 'start' } });
    if (last && coordinates.length > 1) features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: last }, properties: { end: 'end' } });
    (this.map.getSource(SOURCE) as GeoJSONSource).setData({ type: 'FeatureCollection', features });
    fitTo(this.map, coordinates, 80, 16);
  }

  remove(): void {
    for (const id of [ENDS, LINE]) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource(SOURCE)) this.map.removeSource(SOURCE);
  }
}
