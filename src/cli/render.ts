// What people see: tables, bars, maps, a pool drawn as text. Scripts use --json.
import type { PoolCell, PoolInfo } from '../admin/pool-admin';
import type { RangeCell, RangeInfo } from '../admin/range-admin';
import { write } from './common';

export function printTable(headers: string[], rows: string[][], stream: NodeJS.WritableStream = process.stdout): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd() + '\n';
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

export function rangeJson(r: RangeInfo) {
  return {
    id: r.range.id,
    space: r.range.spaceName,
    type: r.range.type,
    first: r.first,
    last: r.last,
    size: r.range.size,
    used: r.used,
    by_kind: r.byKind,
    pool_id: r.range.poolId,
    platform: r.range.platform,
    // recorded by pgipam import for addresses oned manages itself: never leased from
    observed: r.range.observed,
    hold_seconds: r.range.holdSeconds,
    attrs: r.range.attrs,
    created_at: r.range.createdAt,
  };
}

export function poolJson(p: PoolInfo) {
  return {
    ...p.pool,
    prefixes: p.prefixes.map(({ cells, ...x }) => ({
      ...x,
      size: x.size.toString(),
      carved: x.carved.toString(),
      reserved: x.reserved.toString(),
      free: x.free.toString(),
      map: poolMapText(cells),
    })),
    ranges: p.ranges,
    grants: p.grants,
    reservations: p.reservations,
  };
}

export function pct(part: bigint, whole: bigint): number {
  return whole === 0n ? 0 : Number((part * 10000n) / whole) / 100;
}

export function printPool(p: PoolInfo): void {
  const o = p.pool;
  write(
    `pool ${o.name}  space ${o.spaceName}${o.isDefault ? '  (default)' : ''}${o.restricted ? `  restricted to: ${p.grants.join(', ') || 'nobody'}` : ''}\n`,
  );
  write(
    `gateway ${o.gateway}  dns ${o.dns || '-'}  search ${o.searchDomain || '-'}  mtu ${o.mtu ?? '-'}  vlan ${o.vlanId ?? '-'}  hold ${o.holdSeconds}s  ranges ${p.ranges}\n`,
  );
  if (p.vlan)
    write(
      `vlan pool ${p.vlan.pool} (domain ${p.vlan.domain}): ${p.vlan.used} held by networks, ${p.vlan.reserved} reserved, ${p.vlan.free} free of ${p.vlan.size}\n`,
    );
  for (const [k, v] of Object.entries(o.extra)) write(`  ${k} = ${v}\n`);
  for (const x of p.prefixes) {
    const used = x.carved + x.reserved;
    write(`\n${x.prefix}: ${x.carved} carved, ${x.reserved} reserved, ${x.free} free of ${x.size} (${pct(used, x.size)}% used)\n`);
    write(`  ${utilisationBar(Number((used * 1000n) / (x.size || 1n)), 1000, 40)}\n`);
    write(`  ${poolMapText(x.cells)}\n`);
  }
  if (p.prefixes.length) write('  map: # carved  R reserved  : mixed  . free (each character 1/64th of the prefix)\n');
  if (p.reservations.length) {
    write('\nreserved:\n');
    printTable(
      ['FIRST', 'LAST', 'REASON'],
      p.reservations.map((r) => [r.first, r.last, r.reason]),
    );
  }
}

// A compact map of a range, one character per cell:
//   # leased or allocated   R reserved   h on hold   . free   : mixed
export function rangeMapText(cells: RangeCell[]): string {
  return cells
    .map((b) => {
      const total = b.used + b.reservation + b.hold;
      if (total === 0) return '.';
      if (b.reservation * 2 >= b.width) return 'R';
      if (b.hold * 2 >= b.width) return 'h';
      if (total >= b.width) return '#';
      return ':';
    })
    .join('');
}

// A compact map of a pool prefix, one character per cell:
//   # carved for ranges   R reserved   . free   : mixed
export function poolMapText(cells: PoolCell[]): string {
  return cells
    .map((c) => {
      if (c.carved + c.reserved === 0n) return '.';
      if (c.reserved * 2n >= c.size) return 'R';
      if (c.carved + c.reserved >= c.size) return '#';
      return ':';
    })
    .join('');
}
