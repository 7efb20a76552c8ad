-- 000012 the address space shared with what is not OpenNebula (issue 14): leases with an owner,
-- the HTTP API's tokens, the events other systems follow, and the webhooks that deliver them.
--
-- * lease.owner: "kind/name" (baremetal/srv-42, vip/web) for a lease made through `pgipam lease`
--   or the API; null for OpenNebula's own. The same exclusion constraint and history cover both.
--   The driver's free_address never frees an owned lease, and reconcile treats one as it treats a
--   reservation: oned does not know it, so it is neither a leak nor oned's to take.
-- * api_token: a bearer token maps to a platform that has a database role of its own; the API
--   runs each request under that role (SET LOCAL ROLE), so row-level security decides what the
--   request sees and may change, exactly as for that platform's front-ends. Only the SHA-256 of a
--   token is kept (a 256-bit random token needs no key stretching: nobody can guess it).
-- * current_platform(): the platform whose role the session has taken with SET ROLE (the API),
--   else the one whose role it logged in as. A role can SET ROLE only to roles it is a member of,
--   and platform roles are members of none but pgipam_driver, so a front-end cannot claim
--   another platform this way.
-- * Every history row is an event: a statement-level trigger NOTIFYs pgipam_history (one
--   notification per statement, not per row; listeners page through GET /events?after=).
-- * webhook: where `pgipam serve` delivers the events of one platform, at least once and in order
--   of id; `delivered_id` (the last history id delivered) and the retry state are kept here, so a
--   restart of the server loses nothing.

alter table pgipam.lease add column owner text
  constraint lease_owner_format check (owner is null or owner ~ '^[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$');
create index lease_owner on pgipam.lease (owner) where owner is not null;

create table pgipam.api_token (
  id bigint generated always as identity primary key,
  name text not null constraint api_token_name_unique unique
    constraint api_token_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
  platform text not null references pgipam.platform (name) on delete cascade,
  token_sha256 bytea not null constraint api_token_hash_unique unique,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  last_used_at timestamptz
);

create table pgipam.webhook (
  id bigint generated always as identity primary key,
  platform text not null references pgipam.platform (name) on delete cascade,
  url text not null constraint webhook_url_format check (url ~ '^https?://'),
  secret text not null,
  created_at timestamptz not null default now(),
  -- the last history id delivered (acknowledged with a 2xx); the next delivery is the next event
  delivered_id bigint not null default 0,
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text,
  constraint webhook_unique unique (platform, url)
);

-- free_address frees OpenNebula's leases only: an owned lease in the block goes to the
-- transactional path, which keeps it and says so (migration 11's function, with that rule)
create or replace function pgipam.one_trip_free_address(p_schema integer, p_platform text, p_request_id text, p_token bigint, p_retry boolean,
    p_version text, p_ar jsonb, p_address jsonb, p_count bigint)
  returns table (range_id bigint, hold_seconds integer, first_idx bigint, last_idx bigint, first_address text, last_address text)
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  r pgipam.address_range;
  v_first bigint;
  v_last bigint;
  l record;
  f bigint;
  la bigint;
  v_parts integer := 0;
begin
  perform pg_catalog.pg_advisory_xact_lock(p_token);
  if p_retry then
    return query select h.range_id, (h.detail ->> 'hold_seconds')::integer, h.first_idx, h.first_idx + h.size - 1,
        h.address, host(h.address::inet + (h.size - 1)) from pgipam.history h
      where h.action_token = p_token and h.event = 'address_freed' order by h.first_idx;
    if found then
      return;
    end if;
  end if;
  r := pgipam.one_trip_range(p_schema, p_platform, p_ar);
  v_first := pgipam.one_trip_index(r, p_address);
  v_last := v_first + p_count - 1;
  if r.ip4_first is null or v_first is null or v_last >= r.size then
    perform pgipam.one_trip_decline('address');
  end if;
  if exists (select 1 from pgipam.lease x where x.range_id = r.id and x.span && int8range(v_first, v_last, '[]')
             and (x.kind = 'reservation' or x.owner is not null)) then
    perform pgipam.one_trip_decline('reservation or owned lease');
  end if;
  -- in address order, as the transactional path writes its history rows
  for l in select x.* from pgipam.lease x where x.range_id = r.id and x.span && int8range(v_first, v_last, '[]') and x.kind in ('lease', 'allocation')
             and x.owner is null
           order by x.first_idx loop
    delete from pgipam.lease x where x.range_id = r.id and x.first_idx = l.first_idx;
    -- the parts of the lease outside the block stay leased as they were
    if l.first_idx < v_first then
      insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, created_at, operator)
      values (r.id, l.first_idx, v_first - 1, l.kind, l.request_id, l.note, l.held_until, l.created_at, l.operator);
    end if;
    if l.last_idx > v_last then
      insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, created_at, operator)
      values (r.id, v_last + 1, l.last_idx, l.kind, l.request_id, l.note, l.held_until, l.created_at, l.operator);
    end if;
    f := greatest(l.first_idx, v_first);
    la := least(l.last_idx, v_last);
    if r.hold_seconds > 0 then
      insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until)
      values (r.id, f, la, 'hold', p_request_id, 'freed from ' || l.kind, now() + r.hold_seconds * interval '1 second');
    else
      perform pgipam.free_extent_give(r.id, f, la);
    end if;
    insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, detail, pgipam_version, action_token)
    values ('address_freed', r.space_id, r.id, f, la - f + 1, host('0.0.0.0'::inet + (r.ip4_first + f)), r.platform, p_request_id,
            jsonb_build_object('was', l.kind, 'hold_seconds', r.hold_seconds), p_version, p_token);
    range_id := r.id;
    hold_seconds := r.hold_seconds;
    first_idx := f;
    last_idx := la;
    first_address := host('0.0.0.0'::inet + (r.ip4_first + f));
    last_address := host('0.0.0.0'::inet + (r.ip4_first + la));
    v_parts := v_parts + 1;
    return next;
  end loop;
  if v_parts = 0 then
    range_id := r.id;
    hold_seconds := r.hold_seconds;
    first_idx := null;
    last_idx := null;
    first_address := null;
    last_address := null;
    return next;
  end if;
end $$;

create or replace function pgipam.current_platform() returns text
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select coalesce(
    (select name from pgipam.platform where role_name = nullif(pg_catalog.current_setting('role'), 'none')),
    (select name from pgipam.platform where role_name = session_user),
    'default')
$$;

create function pgipam.history_notify() returns trigger
  language plpgsql set search_path = pg_catalog, pgipam as $$
begin
  perform pg_catalog.pg_notify('pgipam_history', '');
  return null;
end $$;
create trigger history_notify after insert on pgipam.history for each statement execute function pgipam.history_notify();

-- Tokens and webhooks are the operators' (pgipam token, pgipam webhook): platforms' roles neither
-- read nor change them. The API reads tokens before it takes a platform's role.
alter table pgipam.api_token enable row level security;
alter table pgipam.webhook enable row level security;
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'pgipam_driver') then
    revoke all on pgipam.api_token, pgipam.webhook from pgipam_driver;
  end if;
end $$;
