-- 000008 agreement with oned (issue 11): observed ranges and the record of reconcile runs.
--
-- * An observed range records addresses that oned manages itself (its internal IPAM, or another
--   IPAM driver) so that nothing of pgipam's collides with them: it takes part in the exclusion
--   constraints and takes its span out of the pool it lies in like any explicit range, shows in
--   find, range list and the pool maps, and its leases are oned's as `pgipam import` read them.
--   The driver never leases from it (allocator/range-resolution.ts refuses it) and reconcile
--   does not compare it with oned's leases.
-- * reconcile_run: one row per `pgipam reconcile`, what it found and repaired per kind of drift,
--   for `pgipam metrics` and `pgipam doctor`. Each repair itself is a history row.

alter table pgipam.address_range add column observed boolean not null default false;

create table pgipam.reconcile_run (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  platform text not null default pgipam.current_platform(),
  -- when oned's view was read: leases younger than this minus the grace period are never judged
  oned_read_at timestamptz not null,
  networks integer not null,
  oned_leases integer not null,
  -- drift found per kind ({"leaked": 2, "unknown": 1, ...}) and repaired per kind
  found jsonb not null,
  repaired jsonb not null,
  fix boolean not null,
  grace_seconds integer not null,
  duration_ms integer not null,
  actor text not null default current_user,
  pgipam_version text
);
create index reconcile_run_platform_at on pgipam.reconcile_run (platform, at);

alter table pgipam.reconcile_run enable row level security;
create policy platform_reconcile_read on pgipam.reconcile_run for select using (platform = pgipam.current_platform());
create policy platform_reconcile_write on pgipam.reconcile_run for insert with check (platform = pgipam.current_platform());
