-- 000011 one round trip per lease action (issue 13): get_address, allocate_address and
-- free_address as one function call each, in autocommit, instead of BEGIN, the range's lock, the
-- work and COMMIT as four or five round trips from a process that lives for one action.
--
-- What these functions do and do not do
--   They do the common, successful case of each action, with the same locks, checks and writes as
--   the library's transactional path (src/allocator/*.ts). Anything else (no such range, an AR
--   that does not describe its range, a pool not granted, a full range, an address taken, a hold
--   to override, a SLAAC AR, a MAC to record, a reservation in the way, a schema of another
--   version) makes them decline with SQLSTATE PI100, before or after work that the failed
--   statement then rolls back: the caller runs the transactional path, which decides and words
--   every refusal. So these functions need only be at least as strict as that path, never as
--   eloquent, and a refusal is worded in one place.
--
-- Locking (allocator/locks.ts): the range's row FOR NO KEY UPDATE, as the transactional path
-- takes it, and before it a transaction-scoped advisory lock on the action's token (one bigint
-- key: a lock space of its own, apart from the pools' two-key locks). Each statement of a plpgsql
-- function takes a new snapshot at READ COMMITTED, so what is read after the range's lock is
-- what the previous holder of that lock committed.
--
-- Commit fate: the action's token (a random 62-bit number per action process) is written into
-- every history row the call writes. An action whose connection is lost before the reply arrives
-- calls again with the same token and p_retry: the advisory lock makes the second call wait for
-- the first to finish wherever it was; then a history row with the token means the first call
-- committed (its result is returned again), and none means it did not (the work is done now).
-- Unlike a transaction id, a token means the same on a promoted standby: found there, the first
-- call's commit was replicated; not found, the new primary never had it, and doing the work there
-- is right.
--
-- Platforms: SECURITY INVOKER (and executable by every role, as functions are), so row-level
-- security confines a platform's role here exactly as in the transactional path.

alter table pgipam.history add column action_token bigint;
create index history_action_token on pgipam.history (action_token) where action_token is not null;

-- Free extents: the two changes every path makes, in one place (allocator/lease-queries.ts calls
-- these too). Returns [p_first, p_last] to the free extents, merged with its free neighbours.
create function pgipam.free_extent_give(p_range_id bigint, p_first bigint, p_last bigint) returns void
  language sql set search_path = pg_catalog, pgipam as $$
  with lo as (delete from pgipam.free_extent where range_id = p_range_id and last_idx = p_first - 1 returning first_idx),
       hi as (delete from pgipam.free_extent where range_id = p_range_id and first_idx = p_last + 1 returning last_idx)
  insert into pgipam.free_extent (range_id, first_idx, last_idx)
  values (p_range_id, coalesce((select first_idx from lo), p_first), coalesce((select last_idx from hi), p_last))
$$;

-- Removes [p_first, p_last] from the free extents; false (and nothing changed) when it is not
-- entirely free.
create function pgipam.free_extent_take(p_range_id bigint, p_first bigint, p_last bigint) returns boolean
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  e record;
begin
  delete from pgipam.free_extent f using (
      select x.first_idx from pgipam.free_extent x where x.range_id = p_range_id and x.first_idx <= p_first
       order by x.first_idx desc limit 1) c
    where f.range_id = p_range_id and f.first_idx = c.first_idx and f.last_idx >= p_last
    returning f.first_idx, f.last_idx into e;
  if not found then
    return false;
  end if;
  if e.first_idx < p_first then
    insert into pgipam.free_extent (range_id, first_idx, last_idx) values (p_range_id, e.first_idx, p_first - 1);
  end if;
  if p_last < e.last_idx then
    insert into pgipam.free_extent (range_id, first_idx, last_idx) values (p_range_id, p_last + 1, e.last_idx);
  end if;
  return true;
end $$;

-- Holds whose time is over become free again (before free space is looked for).
create function pgipam.release_expired_holds(p_range_id bigint) returns void
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  h record;
begin
  for h in delete from pgipam.lease where range_id = p_range_id and kind = 'hold' and held_until <= now()
           returning first_idx, last_idx loop
    perform pgipam.free_extent_give(p_range_id, h.first_idx, h.last_idx);
  end loop;
end $$;

create function pgipam.one_trip_decline(p_why text) returns void
  language plpgsql set search_path = pg_catalog, pgipam as $$
begin
  raise exception 'pgipam: the one-trip path declines (%): the transactional path decides', p_why using errcode = 'PI100';
end $$;

-- The range the AR names, locked FOR NO KEY UPDATE, when the AR describes it plainly and the
-- platform may lease from it; declines otherwise. p_ar holds what the caller parsed from the AR:
-- range_id, or space and one of find_ip4 / find_ip6 / find_mac (the first address to find it by);
-- type (upper case), ip4, ip6, mac, space_given and size, each only when the AR has it.
create function pgipam.one_trip_range(p_schema integer, p_platform text, p_ar jsonb) returns pgipam.address_range
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  v_session text := pgipam.current_platform();
  v_platform text;
  v_id bigint;
  v_space bigint;
  r pgipam.address_range;
  p pgipam.pool;
begin
  if (select max(id) from pgipam.migration) is distinct from p_schema then
    perform pgipam.one_trip_decline('schema version');
  end if;
  -- as db/migrate.ts checkSchemaAndPlatform: the role's own platform, else the configured one
  if v_session <> 'default' then
    if p_platform <> 'default' and p_platform <> v_session then
      perform pgipam.one_trip_decline('platform');
    end if;
    v_platform := v_session;
  else
    if not exists (select 1 from pgipam.platform where name = p_platform) then
      perform pgipam.one_trip_decline('platform');
    end if;
    v_platform := p_platform;
  end if;
  if p_ar ? 'range_id' then
    v_id := (p_ar ->> 'range_id')::bigint;
  else
    select s.id into v_space from pgipam.space s where s.name = p_ar ->> 'space';
    if not found then
      perform pgipam.one_trip_decline('space');
    end if;
    select a.id into v_id from pgipam.address_range a
     where a.space_id = v_space
       and case when p_ar ? 'find_ip4' then a.ip4_first = (p_ar ->> 'find_ip4')::bigint
                when p_ar ? 'find_ip6' then a.ip6_first = (p_ar ->> 'find_ip6')::numeric
                else a.mac_first = (p_ar ->> 'find_mac')::bigint end;
    if not found then
      perform pgipam.one_trip_decline('range');
    end if;
  end if;
  select * into r from pgipam.address_range a where a.id = v_id for no key update;
  if not found or r.platform <> v_platform or r.observed then
    perform pgipam.one_trip_decline('range');
  end if;
  -- the AR must describe the range (allocator/range-resolution.ts verifyArMatches); SLAAC
  -- prefixes and a MAC still to record are left to the transactional path
  if r.ar_type in ('IP6', 'IP4_6')
     or (p_ar ? 'type' and p_ar ->> 'type' <> r.ar_type)
     or (r.ip4_first is not null and p_ar ? 'ip4' and (p_ar ->> 'ip4')::bigint <> r.ip4_first)
     or (r.ip6_first is not null and p_ar ? 'ip6' and (p_ar ->> 'ip6')::numeric <> r.ip6_first)
     or (p_ar ? 'mac' and (r.mac_first is null or (p_ar ->> 'mac')::bigint <> r.mac_first))
     or (p_ar ? 'space_given' and (select s.name from pgipam.space s where s.id = r.space_id) <> p_ar ->> 'space') then
    perform pgipam.one_trip_decline('AR');
  end if;
  if r.pool_id is not null then
    select * into p from pgipam.pool x where x.id = r.pool_id;
    if not found or (p.restricted and not exists (
        select 1 from pgipam.pool_grant g where g.pool_id = r.pool_id and g.platform = v_platform)) then
      perform pgipam.one_trip_decline('pool');
    end if;
  end if;
  return r;
end $$;

-- The index of the range an ADDRESS names (allocator/requested-address.ts): IP, IP6 and MAC as
-- oned sends them, each counted from the range's first address; null unless they all agree.
-- p_address: ip4, ip6 (only when it is a valid IPv6 address), mac.
create function pgipam.one_trip_index(r pgipam.address_range, p_address jsonb) returns bigint
  language plpgsql immutable set search_path = pg_catalog, pgipam as $$
declare
  two32 constant numeric := 4294967296;
  v_found bigint[] := '{}';
  v numeric;
begin
  if r.ip4_first is not null and p_address ? 'ip4' then
    v := (p_address ->> 'ip4')::bigint - r.ip4_first;
    if v < 0 then
      return null;
    end if;
    v_found := v_found || v::bigint;
  end if;
  if r.ip6_first is not null and p_address ? 'ip6' then
    v := (p_address ->> 'ip6')::numeric;
    if div(v, two32) <> div(r.ip6_first, two32) then
      return null;
    end if;
    v_found := v_found || mod(mod(v, two32) - mod(r.ip6_first, two32) + two32, two32)::bigint;
  end if;
  if r.mac_first is not null and p_address ? 'mac' then
    v := (p_address ->> 'mac')::bigint;
    if div(v, two32) <> div(r.mac_first, two32) then
      return null;
    end if;
    v_found := v_found || mod(mod(v, two32) - mod(r.mac_first, two32) + two32, two32)::bigint;
  end if;
  if cardinality(v_found) = 0 or exists (select 1 from unnest(v_found) x where x <> v_found[1]) then
    return null;
  end if;
  return v_found[1];
end $$;

-- get_address: the lowest free block of p_count addresses below the AR's SIZE.
create function pgipam.one_trip_get_address(p_schema integer, p_platform text, p_request_id text, p_token bigint, p_retry boolean,
    p_version text, p_ar jsonb, p_count bigint)
  returns table (range_id bigint, first_idx bigint, address text)
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  r pgipam.address_range;
  v_limit bigint;
  v_first bigint;
begin
  perform pg_catalog.pg_advisory_xact_lock(p_token);
  if p_retry then
    return query select h.range_id, h.first_idx, h.address from pgipam.history h
      where h.action_token = p_token and h.event = 'address_leased';
    if found then
      return;
    end if;
  end if;
  r := pgipam.one_trip_range(p_schema, p_platform, p_ar);
  v_limit := least(r.size, coalesce((p_ar ->> 'size')::bigint, r.size));
  if r.ip4_first is null or p_count > v_limit then
    perform pgipam.one_trip_decline('get_address');
  end if;
  if r.hold_seconds > 0 then
    perform pgipam.release_expired_holds(r.id);
  end if;
  -- first fit: the primary key index in address order, stopping at the first extent that holds
  -- p_count addresses below the limit (lease-queries.ts leaseFirstFit does the same)
  select f.first_idx into v_first from pgipam.free_extent f
   where f.range_id = r.id and f.last_idx - f.first_idx + 1 >= p_count and f.first_idx + p_count <= v_limit
   order by f.first_idx limit 1;
  if not found then
    perform pgipam.one_trip_decline('no free block');
  end if;
  if not pgipam.free_extent_take(r.id, v_first, v_first + p_count - 1) then
    raise exception 'free space of range % is inconsistent', r.id;
  end if;
  insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id) values (r.id, v_first, v_first + p_count - 1, 'lease', p_request_id);
  insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, pgipam_version, action_token)
  values ('address_leased', r.space_id, r.id, v_first, p_count, host('0.0.0.0'::inet + (r.ip4_first + v_first)), r.platform,
          p_request_id, p_version, p_token);
  return query select r.id, v_first, host('0.0.0.0'::inet + (r.ip4_first + v_first));
end $$;

-- allocate_address: the block oned names in an IPv4-bearing range, when all of it is free (a hold
-- in the way, or anything taken, is the transactional path's to decide).
create function pgipam.one_trip_allocate_address(p_schema integer, p_platform text, p_request_id text, p_token bigint, p_retry boolean,
    p_version text, p_ar jsonb, p_address jsonb, p_count bigint)
  returns table (range_id bigint, first_idx bigint, address text)
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  r pgipam.address_range;
  v_limit bigint;
  v_first bigint;
begin
  perform pg_catalog.pg_advisory_xact_lock(p_token);
  if p_retry then
    return query select h.range_id, h.first_idx, h.address from pgipam.history h
      where h.action_token = p_token and h.event = 'address_allocated';
    if found then
      return;
    end if;
  end if;
  r := pgipam.one_trip_range(p_schema, p_platform, p_ar);
  v_limit := least(r.size, coalesce((p_ar ->> 'size')::bigint, r.size));
  v_first := pgipam.one_trip_index(r, p_address);
  if r.ip4_first is null or v_first is null or v_first + p_count > v_limit then
    perform pgipam.one_trip_decline('address');
  end if;
  if r.hold_seconds > 0 then
    perform pgipam.release_expired_holds(r.id);
  end if;
  if not pgipam.free_extent_take(r.id, v_first, v_first + p_count - 1) then
    perform pgipam.one_trip_decline('not free');
  end if;
  insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id)
  values (r.id, v_first, v_first + p_count - 1, 'allocation', p_request_id);
  insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, detail, pgipam_version, action_token)
  values ('address_allocated', r.space_id, r.id, v_first, p_count, host('0.0.0.0'::inet + (r.ip4_first + v_first)), r.platform, p_request_id, '{}',
          p_version, p_token);
  return query select r.id, v_first, host('0.0.0.0'::inet + (r.ip4_first + v_first));
end $$;

-- free_address: frees the leases and allocations inside the block oned names in an IPv4-bearing
-- range (IPv6-only and ETHER ranges take the transactional path), on hold for the range's hold
-- time or back to the free extents, one history row per part. Returns the parts, or one row
-- without a part when the block was free already. A reservation in the block, or a block past
-- the range's end, is the transactional path's to report.
create function pgipam.one_trip_free_address(p_schema integer, p_platform text, p_request_id text, p_token bigint, p_retry boolean,
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
  if exists (select 1 from pgipam.lease x where x.range_id = r.id and x.span && int8range(v_first, v_last, '[]') and x.kind = 'reservation') then
    perform pgipam.one_trip_decline('reservation');
  end if;
  -- in address order, as the transactional path writes its history rows
  for l in select x.* from pgipam.lease x where x.range_id = r.id and x.span && int8range(v_first, v_last, '[]') and x.kind in ('lease', 'allocation')
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
