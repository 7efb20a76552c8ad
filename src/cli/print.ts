// Plain-text tables and bars for people; scripts use --json.
export function printTable(headers: string[], rows: string[][], stream: NodeJS.WritableStream = process.stdout): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n';
  stream.write(line(headers));
  for (const r of rows) stream.write(line(r));
  if (!rows.length) stream.write('(none)\n');
}

export function utilisationBar(used: number, size: number, width: number): string {
  const frac = size > 0 ? used / size : 0;
  const filled = Math.min(width, Math.round(frac * width));
  const pct = frac * 100;
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct < 10 && pct > 0 ? pct.toFixed(1) : Math.round(pct)}%`;
}
