/** Occurrences over time as small bars: one per bin, oldest first, scaled to the largest. */
export function Sparkline({ bins, title, width = 120, height = 22 }: { bins: readonly number[]; title?: string; width?: number; height?: number }) {
  const max = Math.max(1, ...bins);
  const w = width / Math.max(1, bins.length);
  return (
    <svg class="sparkline" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={title ?? `${bins.reduce((a, b) => a + b, 0)} over time`} data-testid="sparkline">
      {title && <title>{title}</title>}
      <line x1={0} x2={width} y1={height - 0.5} y2={height - 0.5} class="sparkline-base" />
      {bins.map((n, i) =>
        n > 0 ? <rect key={i} x={i * w + 0.5} width={Math.max(1, w - 1)} y={height - 1 - Math.max(2, (n / max) * (height - 2))} height={Math.max(2, (n / max) * (height - 2))} class="sparkline-bar" /> : null,
      )}
    </svg>
  );
}
