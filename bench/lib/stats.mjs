// Percentiles and the summary every bench reports.

/** Nearest-rank percentile of an already sorted array. */
export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** {n, min, p10, p25, p50, p75, p90, p99, max, mean} of a list of numbers (ms). */
export function summarize(values) {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const r = (x) => Math.round(x * 1000) / 1000;
  return {
    n: sorted.length,
    min: r(sorted[0]),
    p10: r(percentile(sorted, 10)),
    p25: r(percentile(sorted, 25)),
    p50: r(percentile(sorted, 50)),
    p75: r(percentile(sorted, 75)),
    p90: r(percentile(sorted, 90)),
    p99: r(percentile(sorted, 99)),
    max: r(sorted[sorted.length - 1]),
    mean: r(mean),
  };
}

export function fmtMs(x) {
  if (x == null || !Number.isFinite(x)) return '-';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

/** A plain-text table: rows of cells, first row is the header; numbers right-aligned. */
export function table(rows) {
  const widths = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, String(cell).length)));
  const line = (row) =>
    row
      .map((cell, i) => {
        const s = String(cell);
        return i > 0 && /^[-+~]?[\d.,]+( ?[a-zA-Z%/]*)?$|^-$/.test(s) ? s.padStart(widths[i]) : s.padEnd(widths[i]);
      })
      .join('  ')
      .trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of rows.slice(1)) out.push(line(row));
  return out.join('\n');
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
