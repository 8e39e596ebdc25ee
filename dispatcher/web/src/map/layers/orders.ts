// Open orders: each order's restaurant (a dark square) and drop-off (a ring), with a red halo
// when late and an amber one when at risk; unassigned drop-offs are dark. Clicking either
// selects the order. One source, setData once per frame.

import type { GeoJSONSource, Map as MlMap, MapLayerMouseEvent } from 'maplibre-gl';
import { FrameBatch } from '../../lib/frame';
import type { MapOrder } from '../../lib/types';
import { AT_RISK, LATE, RESTAURANT, STATUS_COLORS, UNASSIGNED } from '../palette';
import { empty } from './couriers';

const SOURCE = 'orders';
const HALO = 'orders-halo';
export const DROPOFF_LAYER = 'orders-dropoff';
export const RESTAURANT_LAYER = 'orders-restaurant';
const SELECTED = 'orders-selected';
const LINK = 'orders-selected-link';

const ringColor = [
  'case',
  ['get', 'late'],
  LATE,
  ['get', 'at_risk'],
  AT_RISK,
  ['==', ['get', 'status'], 'created'],
  UNASSIGNED,
  ['==', ['get', 'status'], 'picked_up'],
  STATUS_COLORS.to_dropoff,
  STATUS_COLORS.to_pickup,
] as unknown as string;

export class OrderLayer {
  private readonly batch = new FrameBatch(() => this.flush());
  private orders: Iterable<MapOrder> = [];
  private selected: string | null = null;

  constructor(
    private readonly map: MlMap,
    onSelect: (id: string) => void,
  ) {
    map.addSource(SOURCE, { type: 'geojson', data: empty() });
    map.addLayer({
      id: HALO,
      type: 'circle',
      source: SOURCE,
      filter: ['all', ['==', ['get', 'kind'], 'dropoff'], ['any', ['get', 'late'], ['get', 'at_risk']]],
      paint: {
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 5, 14, 13],
        'circle-color': ['case', ['get', 'late'], LATE, AT_RISK] as unknown as string,
        'circle-opacity': 0.22,
      },
    });
    map.addLayer({
      id: LINK,
      type: 'line',
      source: SOURCE,
      filter: ['all', ['==', ['get', 'kind'], 'link'], ['==', ['get', 'id'], '']],
      paint: { 'line-color': RESTAURANT, 'line-width': 2, 'line-dasharray': [2, 2] },
    });
    map.addLayer({
      id: RESTAURANT_LAYER,
      type: 'symbol',
      source: SOURCE,
      filter: ['==', ['get', 'kind'], 'restaurant'],
      layout: {
        'icon-image': 'restaurant',
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
        'icon-size': ['interpolate', ['linear'], ['zoom'], 9, 0.4, 14, 0.8],
      },
      paint: { 'icon-color': RESTAURANT },
    });
    map.addLayer({
      id: DROPOFF_LAYER,
      type: 'circle',
      source: SOURCE,
      filter: ['==', ['get', 'kind'], 'dropoff'],
      paint: {
        'circle-radius': ['interpolate', ['linear'], ['zoom'], 9, 2, 14, 5],
        'circle-color': '#ffffff',
        'circle-stroke-color': ringColor,
        'circle-stroke-width': ['interpolate', ['linear'], ['zoom'], 9, 1, 14, 2.5],
      },
    });
    map.addLayer({
      id: SELECTED,
      type: 'circle',
      source: SOURCE,
      filter: ['all', ['!=', ['get', 'kind'], 'link'], ['==', ['get', 'id'], '']],
      paint: { 'circle-radius': 12, 'circle-color': 'rgba(15, 23, 42, 0.08)', 'circle-stroke-color': RESTAURANT, 'circle-stroke-width': 2 },
    });
    const click = (e: MapLayerMouseEvent) => {
      const id = e.features?.[0]?.properties?.id;
      if (typeof id === 'string') onSelect(id);
    };
    for (const layer of [DROPOFF_LAYER, RESTAURANT_LAYER]) {
      map.on('click', layer, click);
      map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
      map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
    }
  }

  update(orders: Iterable<MapOrder>): void {
    this.orders = orders;
    this.batch.schedule();
  }

  select(id: string | null): void {
    this.selected = id;
    this.map.setFilter(SELECTED, ['all', ['!=', ['get', 'kind'], 'link'], ['==', ['get', 'id'], id ?? '']]);
    this.map.setFilter(LINK, ['all', ['==', ['get', 'kind'], 'link'], ['==', ['get', 'id'], id ?? '']]);
  }

  get selectedId(): string | null {
    return this.selected;
  }

  private flush(): void {
    const features: GeoJSON.Feature[] = [];
    for (const o of this.orders) {
      const props = { id: o.id, status: o.status, late: o.late, at_risk: o.at_risk };
      const r: [number, number] = [o.restaurant.lon, o.restaurant.lat];
      const d: [number, number] = [o.dropoff.lon, o.dropoff.lat];
      if (o.status !== 'picked_up') {
        features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: r }, properties: { ...props, kind: 'restaurant' } });
      }
      features.push({ type: 'Feature', geometry: { type: 'Point', coordinates: d }, properties: { ...props, kind: 'dropoff' } });
      if (o.id === this.selected) {
        features.push({ type: 'Feature', geometry: { type: 'LineString', coordinates: [r, d] }, properties: { ...props, kind: 'link' } });
      }
    }
    (this.map.getSource(SOURCE) as GeoJSONSource).setData({ type: 'FeatureCollection', features });
  }

  remove(): void {
    for (const id of [SELECTED, DROPOFF_LAYER, RESTAURANT_LAYER, LINK, HALO]) if (this.map.getLayer(id)) this.map.removeLayer(id);
    if (this.map.getSource(SOURCE)) this.map.removeSource(SOURCE);
  }
}
