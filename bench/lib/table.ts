/**
 * Result tables: one per scenario, rendered as Markdown both to the terminal
 * and to bench/results/latest.md, so what a person sees and what is committed
 * are the same text.
 */

export interface Table {
  /** Heading of the table (`Round trip: publish → consume → ack`). */
  title: string;
  /** Sentences under the heading: what was measured and how. */
  notes: string[];
  columns: string[];
  rows: string[][];
}

export function renderTable(table: Table): string {
  const widths = table.columns.map((c, i) => Math.max(c.length, ...table.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (c ?? '').padEnd(widths[i])).join(' | ')} |`;
  const out = [`### ${table.title}`, ''];
  for (const note of table.notes) out.push(note, '');
  if (table.columns.length === 0) return out.join('\n').trimEnd();
  out.push(line(table.columns));
  out.push(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const row of table.rows) out.push(line(row));
  return out.join('\n');
}

/** `✓` / `✗` against a target; `–` when there is nothing to compare. */
export function verdict(ok: boolean | undefined): string {
  if (ok === undefined) return '–';
  return ok ? '✓' : '✗';
}

export function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  return Math.round(n).toLocaleString('en-US');
}

/** Three significant digits, thousands separated when large. */
export function fmtNum(n: number): string {
  if (!Number.isFinite(n)) return 'n/a';
  if (Math.abs(n) >= 1000) return fmtInt(n);
  return Number(n.toPrecision(3)).toString();
}

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${fmtInt(ms)} ms`;
}

export function fmtUs(us: number): string {
  if (!Number.isFinite(us)) return 'n/a';
  return `${us < 10 ? us.toFixed(1) : fmtInt(us)} µs`;
}

export function fmtBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'n/a';
  if (bytes < 10_000) return `${fmtInt(bytes)} B`;
  if (bytes < 10_000_000) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export function fmtPct(ratio: number): string {
  if (!Number.isFinite(ratio)) return 'n/a';
  return `${(ratio * 100).toFixed(1)}%`;
}

/** `median (min–max)` of a rate. */
export function fmtSpread(median: number, min: number, max: number): string {
  return `${fmtInt(median)} (${fmtInt(min)}–${fmtInt(max)})`;
}
