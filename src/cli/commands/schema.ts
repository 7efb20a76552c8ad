// pgipam migrate, check, status: the schema and its consistency.
import type { Argv } from 'yargs';
import { connect } from '../../db/client';
import { migrate, pendingSql, schemaVersion, SCHEMA_VERSION } from '../../db/migrate';
import { IpamError } from '../../errors';
import { applyDriverGrants } from '../../admin/platforms';
import { PUBLIC_SCHEMA_PROBLEM, checkDatabase, publicSchemaWritable } from '../../admin/check';
import { cliConfig, out, withDb, write } from '../common';

export function schemaCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'migrate',
      'create or upgrade the pgipam schema (safe to run twice, or from two hosts at once)',
      (y) => y.option('dry-run', { type: 'boolean', default: false, describe: 'print the SQL that would run' }),
      async (args) => {
        const db = await connect(cliConfig(), { applicationName: 'pgipam/migrate', skipSchemaCheck: true });
        try {
          if (args.dryRun) {
            const v = await schemaVersion(db);
            write(pendingSql(v) || `-- schema is at version ${v}; nothing to do\n`);
            return;
          }
          const r = await migrate(db);
          const grants = await applyDriverGrants(db, false);
          if (await publicSchemaWritable(db)) process.stderr.write(`pgipam: warning: ${PUBLIC_SCHEMA_PROBLEM}\n`);
          out(args, { ...r, driver_grants_applied: grants }, () =>
            write(
              r.applied.length
                ? `migrated schema from version ${r.from} to ${r.to}: ${r.applied.join(', ')}\n`
                : `schema is up to date (version ${r.to})\n`,
            ),
          );
        } finally {
          await db.end().catch(() => {});
        }
      },
    )
    .command('check', 'check that leases, free space and pools agree (read-only); exit 1 on a problem', {}, async (args) => {
      const r = await withDb(checkDatabase);
      out(args, r, () =>
        write(
          r.problems.length
            ? `${r.problems.length} problems:\n${r.problems.map((p) => `  ${p}`).join('\n')}\n`
            : `ok: ${r.ranges} ranges and ${r.pools} pools are consistent\n`,
        ),
      );
      if (r.problems.length) throw new IpamError('CONFLICT', `${r.problems.length} consistency problems found`);
    })
    .command('status', 'show the schema version', {}, async (args) => {
      const v = await withDb((db) => schemaVersion(db), true);
      out(args, { schema_version: v, code_version: SCHEMA_VERSION }, () =>
        write(`schema version ${v} (this pgipam expects ${SCHEMA_VERSION})${v < SCHEMA_VERSION ? ': run "pgipam migrate"' : ''}\n`),
      );
    });
}
