import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findDrift, type PgipamRangeSnapshot } from '../../src/oned-drift';
import { parseOnevnetShow } from '../../src/oned-view';

const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures/oned', name), 'utf8');
// snapshot-1 as a real oned 7.5.80 printed it: vnet 34 (ranges 50-52), internal 35, reservation 36, carved 37 (range 53)
const networks = [34, 35, 36, 37].map((id) => parseOnevnetShow(fixture(`snapshot-1/onevnet-show-${id}.xml`), `show-${id}`));

const t0 = new Date('2026-11-23T05:22:00Z');
type Span = PgipamRangeSnapshot['spans'][number];
const span = (first: number, last: number, kind: Span['kind'] = 'lease'): Span => ({ first, last, kind, createdAt: t0 });
// the AR types of snapshot-1's ranges; addresses left out (null) are not compared
const TYPES: Record<number, string> = { 50: 'IP4', 51: 'IP6_STATIC', 52: 'IP4_6', 53: 'IP4' };
const range = (rangeId: number, size: number, spans: Span[], at: Partial<PgipamRangeSnapshot> = {}): PgipamRangeSnapshot => ({
  rangeId,
  size,
  createdAt: t0,
  spans,
  type: TYPES[rangeId] ?? 'IP4',
  ip4First: null,
  ip6First: null,
  macFirst: null,
  ...at,
});

// What pgipam held at that moment: VMs 23-25 and 27 (0-3), the reservation's block (4-7),
// VM 26 asked for 10.70.0.40 (30), the hold on 10.70.0.45 (35), VM 28 on the carved range.
const agreeing = () => [
  range(50, 50, [span(0, 0), span(1, 1), span(2, 2), span(3, 3), span(4, 7), span(30, 30, 'allocation'), span(35, 35, 'allocation')]),
  range(51, 32, []),
  range(52, 20, []),
  range(53, 30, [span(0, 0)]),
];

describe('drift between oned and pgipam', () => {
  it('finds none when pgipam holds exactly what oned lists (reservation vnet and internal IPAM left aside)', () => {
    expect(findDrift(networks, agreeing(), 'pgipam')).toEqual([]);
  });

  it('names every kind of drift with the range, position and oned ids an operator needs', () => {
    const ranges = agreeing();
    ranges[0] = range(50, 50, [
      span(0, 0),
      span(1, 1, 'hold'), // freed in pgipam, still VM 24's in oned
      span(2, 2),
      span(3, 3),
      span(4, 7),
      span(10, 11), // a get_address oned gave up waiting for
      span(35, 35, 'allocation'),
    ]); // 30 (VM 26) forgotten, as after an asynchronous failover
    ranges[1] = range(51, 30, []); // onevnet updatear SIZE 32 behind pgipam's back
    ranges.splice(2, 1); // range 52 lost with a restored backup
    ranges.push(range(99, 8, [])); // a registration oned refused
    expect(findDrift(networks, ranges, 'pgipam')).toEqual([
      { kind: 'unknown', rangeId: 50, index: 1, owner: { kind: 'VM', id: 24 }, networkId: 34, arId: 0, pgipam: 'hold' },
      { kind: 'leaked', rangeId: 50, first: 10, last: 11, since: t0, networkId: 34, arId: 0 },
      { kind: 'unknown', rangeId: 50, index: 30, owner: { kind: 'VM', id: 26 }, networkId: 34, arId: 0, pgipam: 'free' },
      { kind: 'resized', rangeId: 51, networkId: 34, arId: 1, onedSize: 32, pgipamSize: 30 },
      { kind: 'missing-range', rangeId: 52, networkId: 34, arId: 2 },
      { kind: 'orphan-range', rangeId: 99, since: t0 },
    ]);
  });

  it('reports the part of a block oned freed address by address, and the reservation vnet frees of snapshot-2', () => {
    const ranges = agreeing();
    ranges[0] = range(50, 50, [span(0, 3), span(4, 9), span(30, 30), span(35, 35)]);
    expect(findDrift(networks, ranges, 'pgipam')).toEqual([
      { kind: 'leaked', rangeId: 50, first: 8, last: 9, since: t0, networkId: 34, arId: 0 },
    ]);
    // snapshot-2: VM 25 terminated, the hold released, reservation 36 deleted, AR 2 removed, carved vnet deleted;
    // a pgipam that still held all of snapshot-1 has leaked exactly those
    const after = [34, 35].map((id) => parseOnevnetShow(fixture(`snapshot-2/onevnet-show-${id}.xml`), `show2-${id}`));
    const stale = agreeing().filter((r) => r.rangeId !== 52);
    expect(findDrift(after, stale, 'pgipam').map((d) => [d.kind, d.rangeId, 'first' in d ? `${d.first}-${d.last}` : ''])).toEqual([
      ['leaked', 50, '2-2'],
      ['leaked', 50, '4-7'],
      ['leaked', 50, '35-35'],
      ['orphan-range', 53, ''],
    ]);
  });

  it('compares the addresses too: an AR naming a range at other addresses is mismatched, its leases left alone', async () => {
    const { parseIPv4, parseIPv6, parseMac } = await import('../../src/address');
    const ranges = agreeing();
    ranges[0] = range(50, 50, [], { ip4First: parseIPv4('10.70.0.10'), macFirst: parseMac('02:00:0a:46:00:0a') });
    ranges[1] = range(51, 32, [], { ip6First: parseIPv6('2001:db8:70::1:100') });
    expect(findDrift(networks, ranges, 'pgipam')).toEqual([
      // range 50 lies where AR 0 says; its leases are compared (all of them unknown here)
      ...[0, 1, 2, 3, 4, 5, 6, 7, 30, 35].map((index) => expect.objectContaining({ kind: 'unknown', rangeId: 50, index })),
      { kind: 'mismatched', rangeId: 51, networkId: 34, arId: 1, problems: ['IP6 2001:db8:70::100 is not 2001:db8:70::1:100'] },
    ]);
  });

  it('looks only at ARs of the named driver', () => {
    expect(findDrift(networks, [], 'otheripam')).toEqual([]);
  });
});

describe('drift input that cannot be compared', () => {
  it('refuses networks read without leases and a lease outside its AR, as BAD_REQUEST', async () => {
    const { parseOnevnetList } = await import('../../src/oned-view');
    const listed = parseOnevnetList(fixture('snapshot-1/onevnet-list.xml'), 'list');
    expect(() => findDrift(listed, agreeing(), 'pgipam')).toThrow(/read without its leases .* read onevnet show -x/);
    const moved = fixture('snapshot-1/onevnet-show-37.xml').replace(
      '<MAC><![CDATA[02:00:0a:50:00:02]]></MAC>\n          <VM>',
      '<MAC><![CDATA[02:00:0a:51:00:02]]></MAC>\n          <VM>',
    );
    expect(() => findDrift([parseOnevnetShow(moved, 'moved')], agreeing(), 'pgipam')).toThrow(
      expect.objectContaining({
        code: 'BAD_REQUEST',
        message: expect.stringMatching(/02:00:0a:51:00:02 of AR 0 of network 37 is outside the AR/),
      }),
    );
  });
});
