-- 000009 VLAN pools (issue 12): a carved network gets its own layer-2 segment with its subnet.
--
-- A VLAN pool hands out IDs of one VLAN domain (a switch fabric: an ID is unique within it) from
-- its spans, lowest first. The database holds the rule that matters: one holder per VLAN ID per
-- domain (vlan_allocation's primary key), whichever pool, front-end or operator asks. The free IDs
-- of a pool are kept as extents (vlan_free_extent), like a range's free addresses: the lowest free
-- ID is one index probe however many are taken. Spans of two pools of one domain never overlap.
--
-- Platforms change VLAN allocations only through the SECURITY DEFINER functions below (as the
-- pools' free space in migration 4): vlan_take checks the platform's grant on a restricted VLAN
-- pool and that the range is the platform's; vlan_release_range returns a range's IDs.

create table pgipam.vlan_pool (
  id bigint generated always as identity primary key,
  name text not null constraint vlan_pool_name_unique unique
    constraint vlan_pool_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
  domain text not null default 'default' constraint vlan_pool_domain_format check (domain ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
  -- what a carved AR gets beside VLAN_ID; {vlan} is replaced by the ID (e.g. "br{vlan}")
  bridge text,
  phydev text,
  vn_mad text,
  restricted boolean not null default false,
  description text not null default '',
  created_at timestamptz not null default now(),
  constraint vlan_pool_id_domain unique (id, domain)
);

create table pgipam.vlan_pool_span (
  vlan_pool_id bigint not null,
  domain text not null,
  first integer not null,
  last integer not null,
  span int4range generated always as (int4range(first, last, '[]')) stored,
  constraint vlan_pool_span_pkey primary key (vlan_pool_id, first),
  constraint vlan_pool_span_pool foreign key (vlan_pool_id, domain) references pgipam.vlan_pool (id, domain) on delete cascade on update cascade,
  constraint vlan_pool_span_bounds check (first between 1 and 4094 and last between first and 4094),
  constraint vlan_pool_span_no_overlap exclude using gist (domain with =, span with &&)
);

create table pgipam.vlan_free_extent (
  vlan_pool_id bigint not null references pgipam.vlan_pool (id) on delete cascade,
  first integer not null,
  last integer not null,
  constraint vlan_free_extent_pkey primary key (vlan_pool_id, first),
  constraint vlan_free_extent_bounds check (first between 1 and 4094 and last between first and 4094)
);

create table pgipam.vlan_allocation (
  domain text not null,
  vlan_id integer not null constraint vlan_allocation_id check (vlan_id between 1 and 4094),
  -- the pool whose span holds the ID (null: an ID an AR named outside every pool of the domain)
  vlan_pool_id bigint references pgipam.vlan_pool (id) on delete restrict,
  -- the network holding it; null for an operator's reservation
  range_id bigint references pgipam.address_range (id) on delete restrict,
  reason text,
  platform text not null,
  created_at timestamptz not null default now(),
  constraint vlan_allocation_pkey primary key (domain, vlan_id),
  constraint vlan_allocation_holder check ((range_id is null) = (reason is not null))
);
create index vlan_allocation_range on pgipam.vlan_allocation (range_id) where range_id is not null;

create table pgipam.vlan_pool_grant (
  vlan_pool_id bigint not null references pgipam.vlan_pool (id) on delete cascade,
  platform text not null references pgipam.platform (name) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (vlan_pool_id, platform)
);

-- an address pool names a VLAN pool, or a fixed VLAN_ID, or neither
alter table pgipam.pool add column vlan_pool_id bigint references pgipam.vlan_pool (id) on delete restrict;
alter table pgipam.pool add constraint pool_one_vlan_source check (vlan_id is null or vlan_pool_id is null);

create function pgipam.vlan_pool_allowed(p_vlan_pool_id bigint) returns boolean
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select pgipam.is_operator() or coalesce((select not v.restricted or exists (
      select 1 from pgipam.vlan_pool_grant g where g.vlan_pool_id = v.id and g.platform = pgipam.current_platform())
    from pgipam.vlan_pool v where v.id = p_vlan_pool_id), false)
$$;

alter table pgipam.vlan_pool enable row level security;
alter table pgipam.vlan_pool_span enable row level security;
alter table pgipam.vlan_free_extent enable row level security;
alter table pgipam.vlan_allocation enable row level security;
alter table pgipam.vlan_pool_grant enable row level security;
create policy platform_vlan_pools on pgipam.vlan_pool for select using (pgipam.vlan_pool_allowed(id));
create policy platform_vlan_spans on pgipam.vlan_pool_span for select using (pgipam.vlan_pool_allowed(vlan_pool_id));
create policy platform_vlan_allocations on pgipam.vlan_allocation for select using (platform = pgipam.current_platform());
create policy platform_vlan_grants on pgipam.vlan_pool_grant for select using (platform = pgipam.current_platform());

-- Per-VLAN-pool serialisation of takes and returns (class 7046357, key the VLAN pool id), taken
-- after the address pool's lock and before the range's (allocator/locks.ts).
create function pgipam.vlan_pool_lock(p_vlan_pool_id bigint) returns void
  language sql set search_path = pg_catalog, pgipam as $$
  select pg_catalog.pg_advisory_xact_lock(7046357, p_vlan_pool_id::integer)
$$;

-- Removes one ID from a pool's free extents; false when it is not free there.
create function pgipam.vlan_take_free(p_vlan_pool_id bigint, p_id integer) returns boolean
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  e record;
begin
  select f.first, f.last into e from pgipam.vlan_free_extent f
   where f.vlan_pool_id = p_vlan_pool_id and f.first <= p_id order by f.first desc limit 1;
  if not found or e.last < p_id then return false; end if;
  delete from pgipam.vlan_free_extent where vlan_pool_id = p_vlan_pool_id and first = e.first;
  if e.first < p_id then insert into pgipam.vlan_free_extent values (p_vlan_pool_id, e.first, p_id - 1); end if;
  if p_id < e.last then insert into pgipam.vlan_free_extent values (p_vlan_pool_id, p_id + 1, e.last); end if;
  return true;
end $$;

-- Returns one ID to a pool's free extents, merged with its free neighbours.
create function pgipam.vlan_give_free(p_vlan_pool_id bigint, p_id integer) returns void
  language plpgsql set search_path = pg_catalog, pgipam as $$
declare
  lo integer;
  hi integer;
begin
  delete from pgipam.vlan_free_extent where vlan_pool_id = p_vlan_pool_id and last = p_id - 1 returning first into lo;
  delete from pgipam.vlan_free_extent where vlan_pool_id = p_vlan_pool_id and first = p_id + 1 returning last into hi;
  insert into pgipam.vlan_free_extent values (p_vlan_pool_id, coalesce(lo, p_id), coalesce(hi, p_id));
end $$;

-- The VLAN ID for a range: p_wanted, when free in the domain (refused naming its holder when
-- not), else the lowest free ID of the pool (refused when there is none).
create function pgipam.vlan_take(p_vlan_pool_id bigint, p_wanted integer, p_range_id bigint) returns integer
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  v record;
  holder record;
  owner_pool bigint;
  chosen integer;
begin
  select * into v from pgipam.vlan_pool where id = p_vlan_pool_id;
  if not found then raise exception 'VLAN pool #% does not exist', p_vlan_pool_id using errcode = 'PI003'; end if;
  if not pgipam.is_operator() and not pgipam.range_owned(p_range_id) then
    raise exception 'range % is not a range of platform "%"', p_range_id, pgipam.current_platform() using errcode = '42501';
  end if;
  if not pgipam.vlan_pool_allowed(v.id) then
    raise exception 'platform "%" may not use VLAN pool "%": grant it with "pgipam vlan-pool grant % %"',
      pgipam.current_platform(), v.name, v.name, pgipam.current_platform() using errcode = 'PI002';
  end if;
  if p_wanted is null then
    perform pgipam.vlan_pool_lock(v.id);
    select f.first into chosen from pgipam.vlan_free_extent f where f.vlan_pool_id = v.id order by f.first limit 1;
    if chosen is null then
      raise exception 'VLAN pool "%" (domain %) has no free VLAN ID', v.name, v.domain using errcode = 'PI003';
    end if;
    perform pgipam.vlan_take_free(v.id, chosen);
    owner_pool := v.id;
  else
    if p_wanted < 1 or p_wanted > 4094 then
      raise exception 'VLAN_ID % is not between 1 and 4094', p_wanted using errcode = '22023';
    end if;
    chosen := p_wanted;
    select s.vlan_pool_id into owner_pool from pgipam.vlan_pool_span s where s.domain = v.domain and s.span @> chosen;
    if owner_pool is not null then perform pgipam.vlan_pool_lock(owner_pool); end if;
    select a.range_id, a.reason, a.platform into holder from pgipam.vlan_allocation a where a.domain = v.domain and a.vlan_id = chosen;
    -- FOUND, not "holder is not null": a record with a null field is not "not null"
    if found then
      raise exception 'VLAN_ID % of domain % is taken: %', chosen, v.domain,
        case when holder.range_id is null then 'reserved (' || holder.reason || ')' else 'by range ' || holder.range_id || ' of platform "' || holder.platform || '"' end
        using errcode = 'PI004';
    end if;
    if owner_pool is not null and not pgipam.vlan_take_free(owner_pool, chosen) then
      raise exception 'VLAN_ID % of domain % is not free in its pool', chosen, v.domain using errcode = 'PI004';
    end if;
  end if;
  insert into pgipam.vlan_allocation (domain, vlan_id, vlan_pool_id, range_id, platform)
  values (v.domain, chosen, owner_pool, p_range_id, pgipam.current_platform());
  return chosen;
end $$;

-- Gives a range's VLAN IDs back to their pools; returns them.
create function pgipam.vlan_release_range(p_range_id bigint) returns table (domain text, vlan_id integer)
  language plpgsql security definer set search_path = pg_catalog, pgipam as $$
declare
  a record;
begin
  if not pgipam.is_operator() and not pgipam.range_owned(p_range_id) then
    raise exception 'range % is not a range of platform "%"', p_range_id, pgipam.current_platform() using errcode = '42501';
  end if;
  for a in select x.domain, x.vlan_id, x.vlan_pool_id from pgipam.vlan_allocation x where x.range_id = p_range_id order by x.vlan_pool_id loop
    if a.vlan_pool_id is not null then
      perform pgipam.vlan_pool_lock(a.vlan_pool_id);
      perform pgipam.vlan_give_free(a.vlan_pool_id, a.vlan_id);
    end if;
    delete from pgipam.vlan_allocation x where x.domain = a.domain and x.vlan_id = a.vlan_id;
    domain := a.domain;
    vlan_id := a.vlan_id;
    return next;
  end loop;
end $$;

revoke execute on function pgipam.vlan_take(bigint, integer, bigint), pgipam.vlan_release_range(bigint), pgipam.vlan_take_free(bigint, integer),
  pgipam.vlan_give_free(bigint, integer), pgipam.vlan_pool_lock(bigint), pgipam.vlan_pool_allowed(bigint) from public;
