-- 000004 every platform confined by the database itself, even with hand-written SQL.
--
-- A platform's login role (a member of pgipam_driver) may change only what belongs to its own
-- ranges. What several platforms share -- the pools' free space and subnets, the operators'
-- reservations, the history -- changes only through the SECURITY DEFINER functions below, which
-- check who is asking. "Operators" are sessions whose login role is a member of the schema owner
-- (the CLI, and front-ends connected as the owner, whose platform the driver code checks).

-- Functions resolve names in pg_catalog and pgipam only: a function planted in a writable
-- "public" schema can never be picked instead of a catalog one.
alter function pgipam.lease_within_range() set search_path = pg_catalog, pgipam;
alter function pgipam.history_append_only() set search_path = pg_catalog, pgipam;

create function pgipam.is_operator() returns boolean
  language sql stable set search_path = pg_catalog, pgipam as $$
  select pg_catalog.pg_has_role(session_user, (select n.nspowner from pg_catalog.pg_namespace n where n.nspname = 'pgipam'), 'MEMBER')
$$;

-- ---------------------------------------------------------------------------------------------
-- Which pool holds a span, whatever row-level security hides from the caller: an explicit AR
-- inside a pool the platform may not use must be refused, not treated as "outside every pool".
create function pgipam.pool_covering(p_space_id bigint, p_family integer, p_first numeric, p_last numeric)
  returns table (pool_id bigint, pool_name text, allowed boolean, inside boolean)
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select x.pool_id, p.name, pgipam.is_operator() or pgipam.pool_allowed(p.id), x.span @> numrange(p_first, p_last, '[]')
    from pgipam.pool_prefix x join pgipam.pool p on p.id = x.pool_id
   where x.space_id = p_space_id and x.family = p_family and x.span && numrange(p_first, p_last, '[]')
   order by x.network limit 2
$$;

create function pgipam.pool_check_use(p_pool_id bigint) returns void
  language plpgsql stable security definer set search_path = pg_catalog, pgipam as $$
begin
  if not pgipam.is_operator() and not pgipam.pool_allowed(p_pool_id) then
    raise exception 'platform "%" may not use pool %', pgipam.current_platform(),
      coalesce((select '"' || p.name || '"' from pgipam.pool p where p.id = p_pool_id), '#' || p_pool_id)
      using errcode = 'PI002';
  end if;
end $$;

-- ---------------------------------------------------------------------------------------------
-- Pool free space (the buddy list in pool_free_block) and subnets (pool_allocation) change only
-- here. A subnet taken from a pool is "pending" until pool_assign gives it to a range of the same
-- transaction; a deferred check refuses the commit of a transaction that leaves one pending, so a
-- subnet can never fall out of the pool unaccounted.

alter table pgipam.pool_allocation alter column range_id drop not null;
alter table pgipam.pool_allocation add column pending_xid xid8;
alter table pgipam.pool_allocation add constraint pool_allocation_assigned_or_pending check ((range_id is null) = (pending_xid is not null));

create function pgipam.pool_allocation_assigned() returns trigger
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
begin
  if exists (select 1 from pgipam.pool_allocation a
              where a.pool_id = new.pool_id and a.family = new.family and a.network = new.network and a.range_id is null) then
    raise exception 'a subnet taken from pool % was not given to a range in the same transaction', new.pool_id
      using errcode = '23514', constraint = 'pool_allocation_assigned';
  end if;
  return null;
end $$;
create constraint trigger pool_allocation_assigned after insert on pgipam.pool_allocation
  deferrable initially deferred for each row when (new.range_id is null) execute function pgipam.pool_allocation_assigned();

-- Per-pool serialisation of carving: the same advisory lock the code takes (class 7046356).
create function pgipam.pool_lock(p_pool_id bigint) returns void
  language sql set search_path = pg_catalog, pgipam as $$
  select pg_catalog.pg_advisory_xact_lock(7046356, p_pool_id::integer)
$$;

-- The free block [p_net/p_len] was removed: put back every part of it except [p_target/p_target_len].
create function pgipam.pool_split(p_pool_id bigint, p_family integer, p_net numeric, p_len integer, p_target numeric, p_target_len integer) returns void
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  bits integer := case p_family when 4 then 32 else 128 end;
  net numeric(39, 0) := p_net;
  half numeric(39, 0);
begin
  for len in p_len + 1 .. p_target_len loop
    half := power(2::numeric, bits - len);
    if p_target >= net + half then
      insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) values (p_pool_id, p_family, net, len);
      net := net + half;
    else
      insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) values (p_pool_id, p_family, net + half, len);
    end if;
  end loop;
end $$;

create function pgipam.pool_pend(p_pool_id bigint, p_family integer, p_network numeric, p_len integer) returns void
  language sql set search_path = pg_catalog, pgipam as $$
  insert into pgipam.pool_allocation (range_id, pending_xid, pool_id, space_id, family, network, prefix_length, last)
  select null, pg_catalog.pg_current_xact_id(), p.id, p.space_id, p_family, p_network, p_len,
         p_network + power(2::numeric, (case p_family when 4 then 32 else 128 end) - p_len) - 1
    from pgipam.pool p where p.id = p_pool_id
$$;

-- Carves a /p_len: the smallest free block that holds it, lowest address first, split; returns
-- its network (null when the pool has no room), pending for pool_assign.
create function pgipam.pool_take_block(p_pool_id bigint, p_family integer, p_len integer) returns numeric
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  b record;
begin
  perform pgipam.pool_check_use(p_pool_id);
  perform pgipam.pool_lock(p_pool_id);
  delete from pgipam.pool_free_block f using (
      select network from pgipam.pool_free_block where pool_id = p_pool_id and family = p_family and prefix_length <= p_len
       order by prefix_length desc, network limit 1) c
   where f.pool_id = p_pool_id and f.family = p_family and f.network = c.network
   returning f.network, f.prefix_length into b;
  if not found then return null; end if;
  perform pgipam.pool_split(p_pool_id, p_family, b.network, b.prefix_length, b.network, p_len);
  perform pgipam.pool_pend(p_pool_id, p_family, b.network, p_len);
  return b.network;
end $$;

-- Takes exactly [p_first, p_last] out of the pool's free blocks as aligned CIDR blocks, pending
-- for pool_assign (operators may pass p_pending = false: a prefix being removed from its pool).
-- Refuses with PI001 (detail "network/length/holding range id or empty") when any part is taken.
create function pgipam.pool_take_span(p_pool_id bigint, p_family integer, p_first numeric, p_last numeric, p_pending boolean default true)
  returns table (network numeric, prefix_length integer)
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  bits integer := case p_family when 4 then 32 else 128 end;
  cur numeric(39, 0) := p_first;
  len integer;
  size numeric(39, 0);
  b record;
  holder text;
begin
  perform pgipam.pool_check_use(p_pool_id);
  if not p_pending and not pgipam.is_operator() then
    raise exception 'only operators take pool space without giving it to a range' using errcode = '42501';
  end if;
  perform pgipam.pool_lock(p_pool_id);
  while cur <= p_last loop
    len := bits;
    loop
      exit when len = 0;
      size := power(2::numeric, bits - len + 1);
      exit when mod(cur, size) <> 0 or cur + size - 1 > p_last;
      len := len - 1;
    end loop;
    size := power(2::numeric, bits - len);
    delete from pgipam.pool_free_block f using (
        select c.network, c.prefix_length from pgipam.pool_free_block c
         where c.pool_id = p_pool_id and c.family = p_family and c.network <= cur order by c.network desc limit 1) c
     where f.pool_id = p_pool_id and f.family = p_family and f.network = c.network
       and c.network + power(2::numeric, bits - c.prefix_length) >= cur + size
     returning f.network, f.prefix_length into b;
    if not found then
      select a.range_id::text into holder from pgipam.pool_allocation a
       where a.space_id = (select p.space_id from pgipam.pool p where p.id = p_pool_id) and a.family = p_family
         and a.span && numrange(cur, cur + size - 1, '[]') limit 1;
      raise exception 'subnet of pool % already taken', p_pool_id using errcode = 'PI001', detail = cur || '/' || len || '/' || coalesce(holder, '');
    end if;
    perform pgipam.pool_split(p_pool_id, p_family, b.network, b.prefix_length, cur, len);
    if p_pending then perform pgipam.pool_pend(p_pool_id, p_family, cur, len); end if;
    network := cur;
    prefix_length := len;
    return next;
    cur := cur + size;
  end loop;
end $$;

-- Gives the subnets this transaction took (pending) to a range of the caller's.
create function pgipam.pool_assign(p_range_id bigint) returns void
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
begin
  if not pgipam.is_operator() and not pgipam.range_owned(p_range_id) then
    raise exception 'range % is not a range of platform "%"', p_range_id, pgipam.current_platform() using errcode = '42501';
  end if;
  update pgipam.pool_allocation set range_id = p_range_id, pending_xid = null
   where range_id is null and pending_xid = pg_catalog.pg_current_xact_id();
end $$;

-- Puts a block back into a pool's free space, merged with its free buddy as far as possible.
create function pgipam.pool_merge(p_pool_id bigint, p_family integer, p_network numeric, p_len integer) returns void
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  bits integer := case p_family when 4 then 32 else 128 end;
  net numeric(39, 0) := p_network;
  len integer := p_len;
  size numeric(39, 0);
  buddy numeric(39, 0);
  n integer;
begin
  while len > 0 loop
    size := power(2::numeric, bits - len);
    buddy := case when mod(div(net, size), 2) = 0 then net + size else net - size end;
    delete from pgipam.pool_free_block where pool_id = p_pool_id and family = p_family and network = buddy and prefix_length = len;
    get diagnostics n = row_count;
    exit when n = 0;
    net := least(net, buddy);
    len := len - 1;
  end loop;
  insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) values (p_pool_id, p_family, net, len);
end $$;

-- Operators only: free space that belongs to no range (a prefix added to a pool).
create function pgipam.pool_give_back(p_pool_id bigint, p_family integer, p_network numeric, p_len integer) returns void
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
begin
  if not pgipam.is_operator() then
    raise exception 'only operators add free space to a pool' using errcode = '42501';
  end if;
  perform pgipam.pool_lock(p_pool_id);
  perform pgipam.pool_merge(p_pool_id, p_family, p_network, p_len);
end $$;

-- Returns a range's subnets to their pools (before the range is deleted). Works for the range's
-- platform whatever has become of its grants: a revoked or restricted pool must not lock a
-- platform out of removing what it holds.
create function pgipam.pool_release_range(p_range_id bigint)
  returns table (pool_id bigint, family integer, network numeric, prefix_length integer)
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  p bigint;
begin
  if not pgipam.is_operator() and not pgipam.range_owned(p_range_id) then
    raise exception 'range % is not a range of platform "%"', p_range_id, pgipam.current_platform() using errcode = '42501';
  end if;
  for p in select distinct a.pool_id from pgipam.pool_allocation a where a.range_id = p_range_id order by 1 loop
    perform pgipam.pool_lock(p);
  end loop;
  for pool_id, family, network, prefix_length in
      delete from pgipam.pool_allocation a where a.range_id = p_range_id returning a.pool_id, a.family::integer, a.network, a.prefix_length::integer loop
    perform pgipam.pool_merge(pool_id, family, network, prefix_length);
    return next;
  end loop;
end $$;

-- ---------------------------------------------------------------------------------------------
-- Operators' reservations inside ranges belong to operators: a platform reads them (its
-- allocations must stop at them) and cannot change or delete them.
alter table pgipam.lease add column operator boolean not null default false;

drop policy platform_leases on pgipam.lease;
create policy platform_leases_read on pgipam.lease for select using (pgipam.range_owned(range_id));
create policy platform_leases_insert on pgipam.lease for insert with check (pgipam.range_owned(range_id) and not operator);
create policy platform_leases_update on pgipam.lease for update using (pgipam.range_owned(range_id) and not operator)
  with check (pgipam.range_owned(range_id) and not operator);
create policy platform_leases_delete on pgipam.lease for delete using (pgipam.range_owned(range_id) and not operator);

-- A new (or grown) range inherits the pool reservations that fall inside [p_from, p_to] of it, as
-- operator-owned reservation leases over its free addresses: whatever pool row-level security
-- hides from the platform, the core router's address stays out of its allocations.
create function pgipam.range_reserve_pool_reservations(p_range_id bigint, p_from bigint, p_to bigint, p_request_id text) returns void
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  r record;
  s record;
  f record;
  base numeric;
  lo bigint;
  hi bigint;
begin
  if not pgipam.is_operator() and not pgipam.range_owned(p_range_id) then
    raise exception 'range % is not a range of platform "%"', p_range_id, pgipam.current_platform() using errcode = '42501';
  end if;
  select * into r from pgipam.address_range where id = p_range_id;
  for s in select x.family, x.first, x.last, x.reason from pgipam.pool_reservation x
            where x.space_id = r.space_id and (
              (x.family = 4 and r.ip4_first is not null and x.span && numrange(r.ip4_first + p_from, r.ip4_first + p_to, '[]'))
              or (x.family = 6 and r.ip6_first is not null and x.span && numrange(r.ip6_first + p_from, r.ip6_first + p_to, '[]')))
            order by x.family, x.first loop
    base := case s.family when 4 then r.ip4_first else r.ip6_first end;
    lo := greatest(s.first - base, p_from);
    hi := least(s.last - base, p_to);
    for f in delete from pgipam.free_extent e where e.range_id = p_range_id and e.last_idx >= lo and e.first_idx <= hi
             returning e.first_idx, e.last_idx loop
      if f.first_idx < lo then insert into pgipam.free_extent (range_id, first_idx, last_idx) values (p_range_id, f.first_idx, lo - 1); end if;
      if f.last_idx > hi then insert into pgipam.free_extent (range_id, first_idx, last_idx) values (p_range_id, hi + 1, f.last_idx); end if;
      insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, operator)
      values (p_range_id, greatest(f.first_idx, lo), least(f.last_idx, hi), 'reservation', p_request_id, s.reason, true);
    end loop;
  end loop;
end $$;

-- ---------------------------------------------------------------------------------------------
-- The history says who did what and when, and nobody can say otherwise: actor and time are the
-- database's, and a platform writes rows only about its own ranges.
create function pgipam.history_stamp() returns trigger
  language plpgsql set search_path = pg_catalog, pgipam as $$
begin
  new.actor := current_user;
  new.at := clock_timestamp();
  return new;
end $$;
create trigger history_stamp before insert on pgipam.history for each row execute function pgipam.history_stamp();

drop policy platform_history_write on pgipam.history;
create policy platform_history_write on pgipam.history for insert
  with check (platform = pgipam.current_platform() and (range_id is null or pgipam.range_owned(range_id)));

-- Platforms read only the subnets of their own ranges (and the free space of pools they may
-- use), and change pool bookkeeping only through the functions above.
drop policy platform_pool_allocations on pgipam.pool_allocation;
create policy platform_pool_allocations on pgipam.pool_allocation for select using (range_id is not null and pgipam.range_owned(range_id));
drop policy platform_pool_free on pgipam.pool_free_block;
create policy platform_pool_free on pgipam.pool_free_block for select using (pgipam.pool_allowed(pool_id));

revoke execute on function pgipam.pool_covering(bigint, integer, numeric, numeric), pgipam.pool_check_use(bigint),
  pgipam.pool_take_block(bigint, integer, integer), pgipam.pool_take_span(bigint, integer, numeric, numeric, boolean),
  pgipam.pool_assign(bigint), pgipam.pool_give_back(bigint, integer, numeric, integer), pgipam.pool_release_range(bigint),
  pgipam.range_reserve_pool_reservations(bigint, bigint, bigint, text), pgipam.pool_split(bigint, integer, numeric, integer, numeric, integer),
  pgipam.pool_pend(bigint, integer, numeric, integer), pgipam.pool_merge(bigint, integer, numeric, integer), pgipam.pool_lock(bigint),
  pgipam.pool_allocation_assigned() from public;
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'pgipam_driver') then
    revoke insert, update, delete on pgipam.pool_free_block, pgipam.pool_allocation from pgipam_driver;
  end if;
end $$;
