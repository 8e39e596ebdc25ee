// Planned routes: one line per courier from its position through its stops, in its status
// colour; the selected courier's route drawn on top, wider. One source, setData once per frame.

import type { GeoJSONSource, Map as MlMap } from 'maplibre-gl';
import { FrameBatch } from '../../lib/frame';
import type { MapCourier } from '../../lib/types';
import { statusColor } from '../palette';
import { empty } from './couriers';

const SOURCE = 'routes';
const LINES = 'routes-line';
const SELECTED = 'routes-selected';

export class RouteLayer {
  private readonly batch = new FrameBatch(() => this.flush());
  private couriers: Iterable<MapCourier> = [];

  constructor(
    private readonly map: MlMap,
    before?: string,
  ) {
    map.addSource(SOURCE, { type: 'geojson', data: empty() });
    map.addLayer(
      {
        id: LINES,
        type: 'line',
        source: SOURCE,
        layout: { 'line-join': 'round', 'line-cap': 'round' },
        paint: { 'line-color': statusColor, 'line-width': 1.5, 'line-opacity': 0.45 },
      },
      before,
    );
    map.addLayer(
      {
        id: SELECTED,
        type: 'line',
        source: SOURCE,
        filter: ['==', ['get', 'courier_id'], ''],
        layout: { 'line-join': 'round', 'line-cap': 'round' },
        paint: { 'line-color': statusColor, 'line-width': 4, 'line-opacity': 0.9 },
      },
      before,
    );
  }

  update(couriers: Iterable<MapCourier>): void {
    this.couriers = couriers;
    this.batch.schedule();
  }

  select(courierId: string | null): void {
    this.map.setFilter(SELECTED, ['==', ['get', 'courier_id'], courierId ?? '']);
  }

  private flush(): void {
    const features: GeoJSON.Feature[] = [];
    for (const c of this.couriers) {
      if (c.route.length === 0) continue;
      const coordinates: [number, number][] = [];
      if (c.position) coordinates.push([c.position.lon, c.position.lat]);
      for (const s of c.route) coordinates.push([s.lon, s.lat]);
      if (coordinates.length < 2) continue;
      features.push({
        type: 'Feature',
        geometry: { type: 'LineString', coordinates },
        properties: { courier_id: c.id, status: c.status },
      });
    }
    (this.map.getSource(SOURCE) as GeoJSONSource).setData({ type: 'FeatureCollection', features });
  }

  remove(): void {
    for (const id of [SELECTED, LINES]) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource(SOURCE)) this.map.removeSource(SOURCE);
  }
}
