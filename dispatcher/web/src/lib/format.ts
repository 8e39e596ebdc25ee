// Times and durations as people read them.

export function parseTime(t: string | null | undefined): Date | null {
  if (!t) return null;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** `14:05` in the viewer's time zone (or UTC when asked). */
export function clock(t: string | Date | null | undefined, utc = false): string {
  const d = t instanceof Date ? t : parseTime(t);
  if (!d) return '—';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false, ...(utc ? { timeZone: 'UTC' } : {}) });
}

/** `14:05:09`. */
export function clockSeconds(t: string | Date | null | undefined): string {
  const d = t instanceof Date ? t : parseTime(t);
  if (!d) return '—';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** `25 min`, `1 h 05 min`, `40 s`. */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return '—';
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

/** Minutes from `now` to `t`, as `in 5 min` or `3 min ago`. */
export function relative(t: string | null | undefined, now: Date): string {
  const d = parseTime(t);
  if (!d) return '—';
  const s = (d.getTime() - now.getTime()) / 1000;
  if (Math.abs(s) < 30) return 'now';
  return s > 0 ? `in ${duration(s)}` : `${duration(-s)} ago`;
}

export const humanize = (code: string): string => code.replace(/_/g, ' ');
