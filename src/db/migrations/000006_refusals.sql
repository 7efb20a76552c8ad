-- 000006 refusals: every action the driver refused (a full range, a taken address, a bad request,
-- a platform without a grant), one row each, so that monitoring sees them (`pgipam metrics`).
-- The history records what changed; a refusal changes nothing, so it is recorded here, after the
-- action's transaction rolled back. Pruned with the history.
create table pgipam.refusal (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  action text not null,
  code text not null,
  platform text not null default pgipam.current_platform(),
  request_id text
);
create index refusal_at on pgipam.refusal (at);

alter table pgipam.refusal enable row level security;
create policy platform_refusals_read on pgipam.refusal for select using (platform = pgipam.current_platform());
create policy platform_refusals_write on pgipam.refusal for insert with check (platform = pgipam.current_platform());
