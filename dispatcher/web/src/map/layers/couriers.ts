// Couriers: one GeoJSON source with every courier that has a position, as a dot coloured by
// status with a heading arrow, updated with setData at most once per animation frame however
// many deltas arrive. Clicking a courier selects it.

import type { GeoJSONSource, Map as MlMap, MapLayerMouseEvent } from 'maplibre-gl';
import { FrameBatch } from '../../lib/frame';
import type { MapCourier } from '../../lib/types';
import { addIcons } from '../icons';
import { statusColor } from '../palette';

const SOURCE = 'couriers';
export const COURIER_LAYER = 'couriers-dot';
const ARROWS = 'couriers-heading';
const SELECTED = 'couriers-selected';

export class CourierLayer {
  private readonly batch = new FrameBatch(() => this.flush());
  private couriers: Iterable<MapCourier> = [];
  private selected: string | null = null;
  /** setData calls so far (the FPS benchmark reports them). */
  updates = 0;

  constructor(
    private readonly map: MlMap,
    onSelect: (id: string) => void,
  ) {
    addIcons(map);
    map.addSource(SOURCE, { type: 'geojson', data: empty(), promoteId: 'id' });
    map.addLayer({
      id: SELECTED,
      type: 'circle',
      source: SOURCE,
      filter: ['==', ['get', 'id'], ''],
      paint: { 'circle-radius': 14, 'circle-color': 'rgba(37, 99, 235, 0.18)', 'circle-stroke-color': '#2563eb', 'circle-stroke-width': 2 },
    });
    map.addLayer({
      id: COURIER_LAYER,
      type: 'circle',
      source: SOURCE,
      paint: {
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 2.5, 12, 5, 15, 7],
        'circle-color': statusColor,
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 9, 0.5, 13, 1.5],
      },
    });
    map.addLayer({
      id: ARROWS,
      type: 'symbol',
      source: SOURCE,
      filter: ['has', 'heading'],
      // Street level only: a symbol layer costs far more than circles to lay out and place, and at
      // city scale the arrows of 2,000 couriers are too small to read anyway.
      minzoom: 14,
      layout: {
        'icon-image': 'heading-arrow',
        'icon-rotate': ['get', 'heading'],
        'icon-rotation-alignment': 'map',
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
        'icon-size': ['interpolate', ['linear'], ['zoom'], 14, 0.9, 17, 1.2],
      },
      paint: { 'icon-color': statusColor },
    });
    map.on('click', COURIER_LAYER, (e: MapLayerMouseEvent) => {
      const id = e.features?.[0]?.properties?.id;
      if (typeof id === 'string') onSelect(id);
    });
    map.on('mouseenter', COURIER_LAYER, () => (map.getCanvas().style.cursor = 'pointer'));
    map.on('mouseleave', COURIER_LAYER, () => (map.getCanvas().style.cursor = ''));
  }

  update(couriers: Iterable<MapCourier>): void {
    this.couriers = couriers;
    this.batch.schedule();
  }

  select(id: string | null): void {
    this.selected = id;
    this.map.setFilter(SELECTED, ['==', ['get', 'id'], id ?? '']);
  }

  get selectedId(): string | null {
    return this.selected;
  }

  private flush(): void {
    const features: GeoJSON.Feature[] = [];
    for (const c of this.couriers) {
      if (!c.position) continue;
      const properties: Record<string, unknown> = { id: c.id, status: c.status, name: c.name };
      if (c.position.heading != null) properties.heading = c.position.heading;
      features.push({
        type: 'Feature',
        id: c.id,
        geometry: { type: 'Point', coordinates: [c.position.lon, c.position.lat] },
        properties,
      });
    }
    (this.map.getSource(SOURCE) as GeoJSONSource).setData({ type: 'FeatureCollection', features });
    this.updates += 1;
  }

  remove(): void {
    for (const id of [ARROWS, COURIER_LAYER, SELECTED]) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource(SOURCE)) this.map.removeSource(SOURCE);
  }
}

export const empty = (): GeoJSON.FeatureCollection => ({ type: 'FeatureCollection', features: [] });
