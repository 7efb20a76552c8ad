import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isIpamError } from '../../src/errors';
import { parseOnevnetList, parseOnevnetShow } from '../../src/oned-view';

// What a real oned 7.5.80 printed while driving pgipam (test/fixtures/oned/README.md)
const fixture = (name: string) => readFileSync(join(__dirname, '../fixtures/oned', name), 'utf8');

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (e) {
    if (isIpamError(e, 'BAD_REQUEST')) return e.message;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe("oned's view of its networks", () => {
  it('reads every lease of a pgipam network with the owners oned writes: VM, reservation VNET, hold', () => {
    const net = parseOnevnetShow(fixture('snapshot-1/onevnet-show-34.xml'), 'show-34');
    expect(net).toMatchObject({ id: 34, name: 'prod-ipam', withLeases: true });
    expect(net.parentNetworkId).toBeUndefined();
    expect(net.addressRanges.map((a) => [a.arId, a.type, a.size, a.ipamMad, a.pgipamRangeId])).toEqual([
      [0, 'IP4', 50, 'pgipam', 50],
      [1, 'IP6_STATIC', 32, 'pgipam', 51],
      [2, 'IP4_6', 20, 'pgipam', 52],
    ]);
    const leases = net.addressRanges[0]!.leases!;
    expect(leases).toHaveLength(10);
    expect(leases[0]).toEqual({ ip: '10.70.0.10', mac: '02:00:0a:46:00:0a', owner: { kind: 'VM', id: 23 } });
    expect(leases.filter((l) => l.owner.kind === 'VNET').map((l) => l.ip)).toEqual([
      '10.70.0.14',
      '10.70.0.15',
      '10.70.0.16',
      '10.70.0.17',
    ]);
    expect(leases.find((l) => l.ip === '10.70.0.45')!.owner).toEqual({ kind: 'VM', id: -1 });
    expect(net.addressRanges[1]!.attributes['IP6']).toBe('2001:db8:70::100');
    expect(net.addressRanges[1]!.leases).toEqual([]);
  });

  it('tells a reservation vnet, an internal-IPAM network and a carved range apart', () => {
    const resv = parseOnevnetShow(fixture('snapshot-1/onevnet-show-36.xml'), 'show-36');
    expect(resv.parentNetworkId).toBe(34);
    expect(resv.addressRanges[0]).toMatchObject({ parentArId: 0, size: 4, pgipamRangeId: 50 });
    expect(resv.addressRanges[0]!.ipamMad).toBeUndefined();
    const internal = parseOnevnetShow(fixture('snapshot-1/onevnet-show-35.xml'), 'show-35');
    expect(internal.addressRanges[0]!.ipamMad).toBeUndefined();
    expect(internal.addressRanges[0]!.leases).toHaveLength(1);
    const carved = parseOnevnetShow(fixture('snapshot-1/onevnet-show-37.xml'), 'show-37');
    expect(carved.addressRanges[0]!.attributes).toMatchObject({ PGIPAM_POOL: 'samples', PGIPAM_SUBNET: '10.80.0.0/26' });
  });

  it('reads onevnet list -x as networks without leases, and sees what changed between snapshots', () => {
    const before = parseOnevnetList(fixture('snapshot-1/onevnet-list.xml'), 'list-1');
    const after = parseOnevnetList(fixture('snapshot-2/onevnet-list.xml'), 'list-2');
    expect(before.map((n) => n.id).sort()).toEqual([34, 35, 36, 37]);
    expect(after.map((n) => n.id).sort()).toEqual([34, 35]);
    expect(before.every((n) => !n.withLeases && n.addressRanges.every((a) => a.leases === undefined))).toBe(true);
    expect(after.find((n) => n.id === 34)!.addressRanges.map((a) => a.arId)).toEqual([0, 1]); // rmar 2
    const one = `<VNET_POOL>${fixture('snapshot-1/onevnet-show-37.xml')}</VNET_POOL>`;
    expect(parseOnevnetList(one, 'one').map((n) => [n.id, n.addressRanges.length])).toEqual([[37, 1]]);
    expect(parseOnevnetList('<VNET_POOL/>', 'none')).toEqual([]);
  });

  it('refuses, with one line, what would otherwise read as "oned has no leases"', () => {
    const show = fixture('snapshot-1/onevnet-show-34.xml');
    expect(refusal(() => parseOnevnetShow(show.slice(0, show.length / 2), 'cut.xml'))).toMatch(/^cut\.xml: malformed XML at line \d+/);
    expect(refusal(() => parseOnevnetShow('', 'empty.xml'))).toMatch(/empty/);
    expect(refusal(() => parseOnevnetShow(fixture('snapshot-1/onevm-list.xml'), 'vm.xml'))).toMatch(/not the output of onevnet show -x/);
    expect(refusal(() => parseOnevnetList(show, 'show.xml'))).toMatch(/not the output of onevnet list -x/);
    // a whole lease element removed: the count oned wrote no longer matches
    const lessOne = show.replace(/<LEASE>\s*<IP><!\[CDATA\[10\.70\.0\.11\]\]>[\s\S]*?<\/LEASE>/, '');
    expect(refusal(() => parseOnevnetShow(lessOne, 'edited.xml'))).toMatch(
      /AR 0 of network 34 \(prod-ipam\) says USED_LEASES 10 but lists 9 leases/,
    );
    const twoOwners = show.replace('<VM><![CDATA[23]]></VM>', '<VM><![CDATA[23]]></VM><VNET>36</VNET>');
    expect(refusal(() => parseOnevnetShow(twoOwners, 'x.xml'))).toMatch(/lease 1 of AR 0 .* names VM and VNET/);
    const badId = show.replace('<PGIPAM_RANGE_ID><![CDATA[50]]>', '<PGIPAM_RANGE_ID><![CDATA[fifty]]>');
    expect(refusal(() => parseOnevnetShow(badId, 'x.xml'))).toMatch(/PGIPAM_RANGE_ID "fifty" is not an integer/);
    const wrongOwner = show.replace('<VM><![CDATA[24]]></VM>', '<VM><![CDATA[-2]]></VM>');
    expect(refusal(() => parseOnevnetShow(wrongOwner, 'x.xml'))).toMatch(/lease 2 of AR 0 .* VM "-2" is not an integer of at least -1/);
  });
});
