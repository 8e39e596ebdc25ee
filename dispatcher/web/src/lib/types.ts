// The service's wire shapes the pages read (see dispatcher/src/api/map_ws.rs, orders.rs,
// support.rs, courier_ws.rs and track.rs).

export type CourierStatus = 'offline' | 'idle' | 'to_pickup' | 'to_dropoff';
export type OrderStatus = 'created' | 'assigned' | 'picked_up' | 'delivered' | 'failed' | 'cancelled';
export type StopKind = 'pickup' | 'dropoff';

export interface Position {
  lat: number;
  lon: number;
  at: string;
  heading: number | null;
  speed_mps: number | null;
}

export interface MapStop {
  order_id: string;
  kind: StopKind;
  lat: number;
  lon: number;
  eta: string;
}

export interface MapCourier {
  id: string;
  name: string;
  vehicle: 'bike' | 'scooter' | 'car';
  on_shift: boolean;
  status: CourierStatus;
  position: Position | null;
  route: MapStop[];
}

export interface Point {
  lat: number;
  lon: number;
}

export interface MapOrder {
  id: string;
  status: OrderStatus;
  restaurant: Point;
  dropoff: Point;
  courier_id: string | null;
  pickup_eta: string | null;
  dropoff_eta: string | null;
  ready_at: string;
  deliver_by: string | null;
  late: boolean;
  at_risk: boolean;
  unassigned_reason: string | null;
}

export interface Kpis {
  open_orders: number;
  unassigned: number;
  unassigned_by_reason: Record<string, number>;
  late: number;
  at_risk: number;
  couriers_on_shift: number;
  couriers_idle: number;
  couriers_connected: number;
  delivered_today: number;
  ctd_mean_s_today: number | null;
  last_replan_at?: string | null;
  last_replan_ms?: number | null;
}

export interface SnapshotFrame {
  type: 'snapshot';
  version: number;
  now: string;
  couriers: MapCourier[];
  orders: MapOrder[];
  kpis: Kpis;
}

export interface DeltaFrame {
  type: 'delta';
  version: number;
  now: string;
  couriers: MapCourier[];
  orders: MapOrder[];
  removed_orders: string[];
  kpis: Kpis;
}

export interface OrderView {
  id: string;
  restaurant_id: string;
  restaurant: Point;
  dropoff: Point;
  status: OrderStatus;
  courier_id: string | null;
  pinned: boolean;
  size: number;
  placed_at: string;
  ready_at: string;
  deliver_by: string | null;
  pickup_eta: string | null;
  dropoff_eta: string | null;
  picked_up_at: string | null;
  delivered_at: string | null;
  late: boolean;
  unassigned_reason: string | null;
  failed_reason: string | null;
  tracking_id?: string;
}

export interface OrderPage {
  orders: OrderView[];
  next_cursor: string | null;
}

export interface TimelineEntry {
  at: string;
  kind: string;
  actor: string;
  detail: Record<string, unknown>;
}

export interface Timeline {
  order_id: string;
  entries: TimelineEntry[];
}

/** `GET /v1/orders/{id}/candidates` (the optimizer's explanation). */
export interface Candidates {
  order_id: string;
  status: OrderStatus;
  courier_id: string | null;
  unassigned_reason: string | null;
  candidates: {
    courier_id: string;
    name: string;
    cost: number;
    added_travel_s: number;
    pickup_eta: string;
    dropoff_eta: string;
    pickup_index: number;
    dropoff_index: number;
    current: boolean;
  }[];
  rejected: { courier_id: string; name: string; reason: string }[];
}

export interface StopFrame {
  order_id: string;
  kind: StopKind;
  lat: number;
  lon: number;
  eta: string;
  departs_at: string;
  ready_at: string | null;
  restaurant_id: string | null;
}

export interface TrackingView {
  status: OrderStatus;
  placed_at: string;
  dropoff_eta: string | null;
  delivered_at: string | null;
  dropoff: Point;
  courier: { lat: number; lon: number; heading: number | null; at: string } | null;
}

export interface WebConfig {
  tiles: string | null;
  attribution: string | null;
}
