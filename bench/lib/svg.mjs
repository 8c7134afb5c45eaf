// Hand-written SVG: latency distributions side by side, one row per configuration or peer, on a
// log-scale time axis. Per row: a thin line min..max, a thick line p10..p90, a box p25..p75, a
// tick at the median and a dot at p99 — client-observed in blue, server-side (Server-Timing
// total, where the server reports it) as a thinner orange box beneath.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/**
 * panels: [{title, rows: [{label, client: summary, server?: summary, highlight?: bool}]}]
 * targets: vertical dashed lines [{ms, label}]
 */
export function latencyPlot({ title, subtitle, panels, targets = [], minMs = 0.05, maxMs = 1000 }) {
  const width = 1100;
  const labelW = 250;
  const statsW = 200;
  const plotX0 = labelW + 10;
  const plotX1 = width - statsW - 10;
  const rowH = 36;
  const panelGap = 46;
  const lo = Math.log10(minMs);
  const hi = Math.log10(maxMs);
  const x = (ms) => plotX0 + ((Math.log10(Math.min(Math.max(ms, minMs), maxMs)) - lo) / (hi - lo)) * (plotX1 - plotX0);

  let y = 86;
  const parts = [];
  const ticks = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= minMs && v <= maxMs) ticks.push(v);
    }
  }

  for (const panel of panels) {
    const top = y;
    const h = panel.rows.length * rowH + 10;
    parts.push(`<text x="10" y="${top - 12}" class="panel">${esc(panel.title)}</text>`);
    parts.push(`<rect x="${plotX0}" y="${top}" width="${plotX1 - plotX0}" height="${h}" class="frame"/>`);
    for (const t of ticks) {
      const major = Math.log10(t) % 1 === 0;
      parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${top}" y2="${top + h}" class="${major ? 'grid-major' : 'grid'}"/>`);
      parts.push(`<text x="${x(t)}" y="${top + h + 14}" class="tick">${t >= 1 ? t : t.toFixed(t < 0.1 ? 2 : 1)}</text>`);
    }
    for (const target of panel.targets ?? targets) {
      parts.push(`<line x1="${x(target.ms)}" x2="${x(target.ms)}" y1="${top}" y2="${top + h}" class="target"/>`);
      parts.push(`<text x="${x(target.ms) + 3}" y="${top + 10}" class="target-label">${esc(target.label)}</text>`);
    }
    panel.rows.forEach((row, i) => {
      const cy = top + 8 + i * rowH + rowH / 2 - 4;
      if (i % 2 === 1) parts.push(`<rect x="0" y="${cy - rowH / 2 + 2}" width="${plotX0 - 2}" height="${rowH}" class="zebra"/>`);
      parts.push(`<text x="${labelW}" y="${cy + 4}" class="label${row.highlight ? ' strong' : ''}">${esc(row.label)}</text>`);
      const drawBox = (s, dy, bh, cls) => {
        if (!s) return;
        parts.push(`<line x1="${x(s.min)}" x2="${x(s.max)}" y1="${cy + dy}" y2="${cy + dy}" class="${cls}-range"/>`);
        parts.push(`<line x1="${x(s.p10)}" x2="${x(s.p90)}" y1="${cy + dy}" y2="${cy + dy}" class="${cls}-whisker"/>`);
        parts.push(`<rect x="${x(s.p25)}" y="${cy + dy - bh / 2}" width="${Math.max(1, x(s.p75) - x(s.p25))}" height="${bh}" class="${cls}-box"/>`);
        parts.push(`<line x1="${x(s.p50)}" x2="${x(s.p50)}" y1="${cy + dy - bh / 2 - 1}" y2="${cy + dy + bh / 2 + 1}" class="median"/>`);
        parts.push(`<circle cx="${x(s.p99)}" cy="${cy + dy}" r="2.6" class="${cls}-p99"/>`);
      };
      drawBox(row.client, -4, 12, 'client');
      drawBox(row.server, 8, 6, 'server');
      const stats = row.client ? `p50 ${fmt(row.client.p50)}  p99 ${fmt(row.client.p99)} ms` : 'no data';
      parts.push(`<text x="${plotX1 + 10}" y="${cy}" class="stats">${esc(stats)}</text>`);
      if (row.server) parts.push(`<text x="${plotX1 + 10}" y="${cy + 12}" class="stats server-text">server p50 ${fmt(row.server.p50)}  p99 ${fmt(row.server.p99)}</text>`);
    });
    parts.push(`<text x="${(plotX0 + plotX1) / 2}" y="${top + h + 30}" class="axis">milliseconds (log scale)</text>`);
    y = top + h + panelGap + 12;
  }

  const legendY = y - 8;
  const legend = [
    `<rect x="${plotX0}" y="${legendY - 9}" width="26" height="10" class="client-box"/><text x="${plotX0 + 32}" y="${legendY}" class="legend">client-observed (raw socket, kept-alive connection, loopback)</text>`,
    `<rect x="${plotX0 + 380}" y="${legendY - 7}" width="26" height="6" class="server-box"/><text x="${plotX0 + 412}" y="${legendY}" class="legend">server-side (Server-Timing total, where reported)</text>`,
    `<text x="${plotX0}" y="${legendY + 18}" class="legend">box p25–p75 · black tick p50 · thick line p10–p90 · thin line min–max · dot p99</text>`,
  ];
  const height = legendY + 32;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
<style>
  .title { font-size: 18px; font-weight: bold; }
  .subtitle { font-size: 12px; fill: #555; }
  .panel { font-size: 14px; font-weight: bold; }
  .frame { fill: #fcfcfc; stroke: #bbb; }
  .grid { stroke: #eee; }
  .grid-major { stroke: #ccc; }
  .tick { font-size: 10px; fill: #555; text-anchor: middle; }
  .axis { font-size: 11px; fill: #555; text-anchor: middle; }
  .label { font-size: 12px; text-anchor: end; }
  .strong { font-weight: bold; }
  .zebra { fill: #f4f4f4; }
  .stats { font-size: 11px; fill: #222; }
  .server-text { fill: #b45309; font-size: 10px; }
  .legend { font-size: 11px; fill: #333; }
  .client-range { stroke: #93c5fd; stroke-width: 1; }
  .client-whisker { stroke: #2563eb; stroke-width: 2.5; }
  .client-box { fill: #bfdbfe; stroke: #1d4ed8; }
  .client-p99 { fill: #1d4ed8; }
  .server-range { stroke: #fcd34d; stroke-width: 1; }
  .server-whisker { stroke: #d97706; stroke-width: 2; }
  .server-box { fill: #fde68a; stroke: #b45309; }
  .server-p99 { fill: #b45309; }
  .median { stroke: #111; stroke-width: 2; }
  .target { stroke: #16a34a; stroke-dasharray: 4 3; stroke-width: 1.2; }
  .target-label { font-size: 10px; fill: #16a34a; }
</style>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" class="title">${esc(title)}</text>
<text x="10" y="42" class="subtitle">${esc(subtitle ?? '')}</text>
${parts.join('\n')}
${legend.join('\n')}
</svg>
`;
}
