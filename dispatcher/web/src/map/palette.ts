// The map's colours, shared by the layers and the legend.

export const STATUS_COLORS = {
  idle: '#1f9d55',
  to_pickup: '#2563eb',
  to_dropoff: '#9333ea',
  offline: '#94a3b8',
} as const;

export const LATE = '#dc2626';
export const AT_RISK = '#d97706';
export const UNASSIGNED = '#334155';
export const RESTAURANT = '#0f172a';

/** A MapLibre expression picking a colour by the feature's `status`. */
export const statusColor = [
  'match',
  ['get', 'status'],
  'idle',
  STATUS_COLORS.idle,
  'to_pickup',
  STATUS_COLORS.to_pickup,
  'to_dropoff',
  STATUS_COLORS.to_dropoff,
  STATUS_COLORS.offline,
] as unknown as string;
