// Where reconcile and import get oned's view from: XML files, stdin, or `onevnet` itself. What is
// read must be all of oned's view or say that it is not: a range that no AR points at is removed
// by `reconcile --fix` only when the input included `onevnet list -x`, and every listed network
// was shown with its leases. Anything else that cannot be read is refused with one line.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { badRequest, IpamError } from '../errors';
import { type OnedNetwork, parseOnevnetList, parseOnevnetShow } from '../oned-view';

export interface OnedView {
  networks: OnedNetwork[];
  // the input included onevnet list -x and a show of every network it lists
  complete: boolean;
  // when oned's view was read (earliest of the inputs): leases pgipam made after this minus the
  // grace period may still be on their way into oned's map
  readAt: Date;
}

export interface OnedDocument {
  text: string;
  source: string;
  readAt: Date;
}

// The XML documents of one input, in order: `onevnet show -x` run once per network and piped
// into one stream gives several documents back to back. Only VNET and VNET_POOL elements are
// counted (CDATA skipped, where a template value may hold anything); what follows the last
// complete document is returned as a document of its own, for the parser to refuse as truncated.
export function splitDocuments(text: string): string[] {
  const docs: string[] = [];
  const tag = /<!\[CDATA\[[\s\S]*?\]\]>|<!--[\s\S]*?-->|<(\/?)(VNET_POOL|VNET)(?=[\s/>])[^>]*?(\/?)>/g;
  let depth = 0;
  let start = 0;
  for (let m = tag.exec(text); m !== null; m = tag.exec(text)) {
    if (m[2] === undefined) continue;
    if (m[3] === '/') {
      if (depth === 0) {
        docs.push(text.slice(start, m.index + m[0].length));
        start = m.index + m[0].length;
      }
      continue;
    }
    depth += m[1] === '/' ? -1 : 1;
    if (depth === 0) {
      docs.push(text.slice(start, m.index + m[0].length));
      start = m.index + m[0].length;
    }
  }
  const rest = text.slice(start);
  if (rest.trim() !== '' || docs.length === 0) docs.push(rest);
  return docs;
}

// Files (or "-" for stdin) holding onevnet list -x and onevnet show -x output, in any order.
export function readOnedFiles(paths: readonly string[]): OnedDocument[] {
  if (!paths.length) throw badRequest('give the XML of onevnet list -x and onevnet show -x <id> (files, or - for stdin), or --onevnet');
  const docs: OnedDocument[] = [];
  for (const p of paths) {
    const stdin = p === '-' || p === '/dev/stdin';
    const name = stdin ? 'stdin' : p;
    const readAt = stdin ? new Date() : fileTime(p);
    let text: string;
    try {
      text = fs.readFileSync(stdin ? 0 : p, 'utf8');
    } catch (e) {
      throw badRequest(`cannot read ${name}: ${(e as Error).message}`);
    }
    const parts = splitDocuments(text);
    parts.forEach((part, i) => docs.push({ text: part, source: `${name}${parts.length > 1 ? ` (document ${i + 1})` : ''}`, readAt }));
  }
  return docs;
}

function fileTime(p: string): Date {
  try {
    return fs.statSync(p).mtime;
  } catch (e) {
    throw badRequest(`cannot read ${p}: ${(e as Error).message}`);
  }
}

export interface OnevnetOptions {
  command: string; // the onevnet executable (PATH is searched)
  concurrency: number;
  timeoutMs: number;
}

// Runs `onevnet list -x`, then `onevnet show -x <id>` for every listed network. A network that
// vanishes between the two (deleted meanwhile) makes the whole read fail: reconcile must compare
// one moment of oned's view, and a missing network would look like ranges nobody points at.
export async function readOnevnet(o: OnevnetOptions): Promise<OnedDocument[]> {
  const readAt = new Date();
  const list = await runOnevnet(o, ['list', '-x']);
  const ids = parseOnevnetList(list, 'onevnet list -x').map((n) => n.id);
  const docs: OnedDocument[] = [{ text: list, source: 'onevnet list -x', readAt }];
  const shows: string[] = ids.map(() => '');
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      shows[i] = await runOnevnet(o, ['show', '-x', String(ids[i])]).catch((e: unknown) => {
        throw badRequest(
          `network ${ids[i]} was listed but onevnet show -x ${ids[i]} failed (deleted since onevnet list? run again): ${(e as Error).message}`,
        );
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, ids.length)) }, worker));
  ids.forEach((id, i) => docs.push({ text: shows[i]!, source: `onevnet show -x ${id}`, readAt }));
  return docs;
}

function runOnevnet(o: OnevnetOptions, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(o.command, args, { maxBuffer: 256 * 1024 * 1024, timeout: o.timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
      if (e.code === 'ENOENT')
        return reject(
          badRequest(`${o.command} not found: run on the OpenNebula front-end as oneadmin, or give the XML of onevnet as files`),
        );
      if (e.killed) return reject(badRequest(`${o.command} ${args.join(' ')} did not finish within ${o.timeoutMs} ms`));
      const line = (stderr || stdout).split('\n').find((l) => l.trim() !== '') ?? '';
      reject(badRequest(`${o.command} ${args.join(' ')} failed (exit ${String(e.code)}): ${line.trim().slice(0, 300)}`));
    });
  });
}

// One view of oned from its documents: every show at most once, and with a list every listed
// network shown and nothing shown that is not listed.
export function onedViewFrom(docs: readonly OnedDocument[]): OnedView {
  let list: { networks: OnedNetwork[]; source: string } | undefined;
  const shown = new Map<number, { network: OnedNetwork; source: string }>();
  for (const d of docs) {
    const root = /^\s*(?:<\?xml[^>]*\?>\s*)?<([A-Z_]+)/.exec(d.text)?.[1];
    if (root === 'VNET_POOL') {
      if (list) throw badRequest(`${d.source}: a second onevnet list -x (the first was ${list.source}); give one`);
      list = { networks: parseOnevnetList(d.text, d.source), source: d.source };
    } else {
      // parseOnevnetShow refuses anything that is not a VNET, with the reason
      const network = parseOnevnetShow(d.text, d.source);
      const before = shown.get(network.id);
      if (before) throw badRequest(`${d.source}: network ${network.id} was already shown in ${before.source}`);
      shown.set(network.id, { network, source: d.source });
    }
  }
  if (list) {
    const listed = new Set(list.networks.map((n) => n.id));
    for (const n of list.networks) {
      if (!shown.has(n.id))
        throw badRequest(`network ${n.id} (${n.name}) is in ${list.source} but was not shown: add onevnet show -x ${n.id}`);
    }
    for (const [id, s] of shown) {
      if (!listed.has(id))
        throw badRequest(`${s.source}: network ${id} is not in ${list.source} (created or deleted between them): read both again`);
    }
  }
  if (!shown.size && !list) throw new IpamError('BAD_REQUEST', 'no onevnet output in the input');
  return {
    networks: [...shown.values()].map((s) => s.network).sort((a, b) => a.id - b.id),
    complete: list !== undefined,
    readAt: new Date(Math.min(...docs.map((d) => d.readAt.getTime()))),
  };
}
