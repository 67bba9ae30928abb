/** Durations, times and labels as people read them. */

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `0.4 ms`, `123 ms`, `12.3 s`, `12 m 5 s`, `3 h 12 m`, `2 d 4 h`. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  const sign = ms < 0 ? '−' : '';
  const abs = Math.abs(ms);
  if (abs < 1) return `${sign}${abs.toFixed(2)} ms`;
  if (abs < 10) return `${sign}${abs.toFixed(1)} ms`;
  if (abs < 1000) return `${sign}${Math.round(abs)} ms`;
  const s = abs / 1000;
  if (s < 10) return `${sign}${s.toFixed(2)} s`;
  if (s < 59.95) return `${sign}${s.toFixed(1)} s`;
  // Whole seconds first, so 3 m 59.7 s reads 4 m, never 3 m 60 s.
  const totalSeconds = Math.round(s);
  const m = Math.floor(totalSeconds / 60);
  if (m < 60) {
    const rest = totalSeconds - m * 60;
    return rest ? `${sign}${m} m ${rest} s` : `${sign}${m} m`;
  }
  const h = Math.floor(m / 60);
  if (h < 24) {
    const rest = m - h * 60;
    return rest ? `${sign}${h} h ${rest} m` : `${sign}${h} h`;
  }
  const d = Math.floor(h / 24);
  const rest = h - d * 24;
  return rest ? `${sign}${d} d ${rest} h` : `${sign}${d} d`;
}

/**
 * Time since the chain's start for the timeline gutter, precise at any scale:
 * `+0.40 ms`, `+123 ms`, `+12.345 s`, `+12:03.021`, `+1:12:03.021`.
 */
export function formatElapsed(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1000) return `+${formatDuration(ms)}`;
  if (ms < 60_000) return `+${(ms / 1000).toFixed(3)} s`;
  const totalMs = Math.round(ms);
  const h = Math.floor(totalMs / 3_600_000);
  const m = Math.floor((totalMs % 3_600_000) / 60_000);
  const s = Math.floor((totalMs % 60_000) / 1000);
  const rest = `${pad(s)}.${pad(totalMs % 1000, 3)}`;
  return h ? `+${h}:${pad(m)}:${rest}` : `+${m}:${rest}`;
}

/** A signed offset: `+340 ms`, `−1.20 s`. */
export function formatOffset(ms: number): string {
  if (ms === 0) return '±0 ms';
  return ms > 0 ? `+${formatDuration(ms)}` : formatDuration(ms);
}

/** Local wall-clock time with milliseconds: `14:03:12.345`. */
export function formatClock(ts: number): string {
  if (!Number.isFinite(ts)) return '–';
  const d = new Date(ts);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** Local date and time: `2025-03-14 14:03:12.345`. */
export function formatDateTime(ts: number): string {
  if (!Number.isFinite(ts)) return '–';
  const d = new Date(ts);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatClock(ts)}`;
}

/** ISO 8601 in UTC, keeping sub-millisecond digits when the record had them. */
export function formatIsoUtc(ts: number): string {
  if (!Number.isFinite(ts)) return '–';
  const iso = new Date(ts).toISOString();
  const fraction = ts - Math.floor(ts);
  if (fraction === 0) return iso;
  const micro = String(Math.round(fraction * 1000)).padStart(3, '0');
  return iso.replace('Z', `${micro}Z`);
}

/** `just now`, `42 s ago`, `5 m ago`, `3 h ago`, else the date. */
export function formatAgo(ts: number, now: number): string {
  const diff = now - ts;
  if (diff < 5_000) return 'just now';
  if (diff < 60_000) return `${Math.round(diff / 1000)} s ago`;
  if (diff < 3_600_000) return `${Math.round(diff / 60_000)} m ago`;
  if (diff < 86_400_000) return `${Math.round(diff / 3_600_000)} h ago`;
  return formatDateTime(ts).slice(0, 10);
}

export type RateUnit = 's' | 'min' | 'h';

const UNIT_SECONDS: Record<RateUnit, number> = { s: 1, min: 60, h: 3600 };

/** One unit for a set of rates: the largest that gives the busiest a number of at least 1. */
export function rateUnitFor(ratesPerSec: Iterable<number | undefined>): RateUnit {
  let max = 0;
  for (const r of ratesPerSec) if (r !== undefined && Number.isFinite(r) && r > max) max = r;
  if (max >= 1) return 's';
  if (max * 60 >= 1) return 'min';
  return 'h';
}

/** A rate in a given unit: `12/s`, `4.2/min`, `0.3/h`, `<0.1/min`. */
export function formatRate(perSec: number | undefined, unit: RateUnit = rateUnitFor([perSec])): string {
  if (perSec === undefined || !Number.isFinite(perSec)) return '';
  const value = perSec * UNIT_SECONDS[unit];
  if (value === 0) return `0/${unit}`;
  if (value >= 100) return `${Math.round(value)}/${unit}`;
  if (value >= 0.1) return `${value.toFixed(1)}/${unit}`;
  return `<0.1/${unit}`;
}

/** `1 message`, `2 messages`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `once`, `twice`, `3 times`. */
export function times(n: number): string {
  return n === 1 ? 'once' : n === 2 ? 'twice' : `${n} times`;
}

/** Exchange name as people say it: `""` is the default exchange. */
export function exchangeLabel(exchange: string | undefined): string {
  if (exchange === undefined) return '–';
  return exchange === '' ? '(default exchange)' : exchange;
}

/** Middle-truncate a name to `max` characters, keeping more of its end (where names differ). */
export function middleEllipsis(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 1) return '…';
  const tail = Math.ceil((max - 1) * 0.6);
  const head = max - 1 - tail;
  return `${text.slice(0, head)}…${text.slice(text.length - tail)}`;
}

/** Middle-truncate a long id for a cell; the full value goes in a title. */
export function shortId(id: string, keep = 10): string {
  if (id.length <= keep * 2 + 1) return id;
  return `${id.slice(0, keep)}…${id.slice(-keep + 2)}`;
}
