-- 000002 pools that carve networks, platforms (OpenNebula front-ends) and their grants, pool
-- reservations, and row-level security so that a platform's credentials reach only what it may.
--
-- A pool's free space is a buddy list of aligned free CIDR blocks (pool_free_block): carving takes
-- the smallest free block that fits (one index probe) and splits it; returning a subnet merges it
-- with its free buddy. No operation reads the pool's existing subnets.

create table pgipam.platform (
  name text primary key constraint platform_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
  -- the PostgreSQL login role of this platform's front-ends, if it has its own
  role_name text unique,
  description text not null default '',
  created_at timestamptz not null default now()
);
insert into pgipam.platform (name, description) values ('default', 'front-ends that connect as the schema owner');

create table pgipam.pool (
  id bigint generated always as identity primary key,
  name text not null constraint pool_name_unique unique
    constraint pool_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
  space_id bigint not null references pgipam.space (id),
  is_default boolean not null default false,
  -- where the gateway of a carved IPv4 subnet is: first or last usable address, none, or an offset
  gateway text not null default 'first' constraint pool_gateway check (gateway ~ '^(first|last|none|[0-9]{1,9})$'),
  dns text not null default '',
  search_domain text not null default '',
  mtu integer constraint pool_mtu check (mtu between 68 and 65535),
  vlan_id integer constraint pool_vlan check (vlan_id between 0 and 4095),
  hold_seconds integer not null default 0 constraint pool_hold check (hold_seconds >= 0),
  -- restricted pools are usable only by the platforms granted in pool_grant
  restricted boolean not null default false,
  extra jsonb not null default '{}',
  description text not null default '',
  created_at timestamptz not null default now(),
  constraint pool_id_space unique (id, space_id)
);
create unique index pool_one_default on pgipam.pool ((true)) where is_default;

create table pgipam.pool_grant (
  pool_id bigint not null references pgipam.pool (id) on delete cascade,
  platform text not null references pgipam.platform (name) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (pool_id, platform)
);

create table pgipam.pool_prefix (
  pool_id bigint not null,
  space_id bigint not null,
  family smallint not null constraint pool_prefix_family check (family in (4, 6)),
  network numeric(39, 0) not null,
  prefix_length smallint not null,
  last numeric(39, 0) not null,
  span numrange generated always as (numrange(network, last, '[]')) stored,
  constraint pool_prefix_pkey primary key (pool_id, family, network),
  constraint pool_prefix_pool foreign key (pool_id, space_id) references pgipam.pool (id, space_id) on delete cascade,
  constraint pool_prefix_length check ((family = 4 and prefix_length between 0 and 32) or (family = 6 and prefix_length between 0 and 128)),
  constraint pool_prefix_no_overlap exclude using gist (space_id with =, family with =, span with &&)
);

create table pgipam.pool_free_block (
  pool_id bigint not null references pgipam.pool (id) on delete cascade,
  family smallint not null,
  network numeric(39, 0) not null,
  prefix_length smallint not null,
  constraint pool_free_block_pkey primary key (pool_id, family, network)
);
-- best fit: the longest prefix that still holds the request, lowest address first
create index pool_free_block_fit on pgipam.pool_free_block (pool_id, family, prefix_length desc, network);

-- CIDR blocks of a pool that belong to a range (carved for it, or taken by an explicit AR).
-- A range cannot be deleted while it still holds blocks: they must go back to the pool first.
create table pgipam.pool_allocation (
  range_id bigint not null references pgipam.address_range (id) on delete restrict,
  pool_id bigint not null references pgipam.pool (id) on delete restrict,
  space_id bigint not null,
  family smallint not null,
  network numeric(39, 0) not null,
  prefix_length smallint not null,
  last numeric(39, 0) not null,
  span numrange generated always as (numrange(network, last, '[]')) stored,
  constraint pool_allocation_pkey primary key (pool_id, family, network),
  constraint pool_allocation_no_overlap exclude using gist (space_id with =, family with =, span with &&)
);
create index pool_allocation_range on pgipam.pool_allocation (range_id);

-- Addresses an operator keeps out of allocation, pool-wide (ranges carved over them reserve them).
create table pgipam.pool_reservation (
  id bigint generated always as identity primary key,
  pool_id bigint not null references pgipam.pool (id) on delete cascade,
  space_id bigint not null,
  family smallint not null,
  first numeric(39, 0) not null,
  last numeric(39, 0) not null,
  span numrange generated always as (numrange(first, last, '[]')) stored,
  reason text not null,
  created_at timestamptz not null default now(),
  created_by text not null default current_user,
  constraint pool_reservation_bounds check (last >= first),
  constraint pool_reservation_no_overlap exclude using gist (space_id with =, family with =, span with &&)
);

alter table pgipam.address_range
  add column pool_id bigint references pgipam.pool (id) on delete restrict,
  add column platform text not null default 'default' references pgipam.platform (name);
create index address_range_pool on pgipam.address_range (pool_id) where pool_id is not null;

-- ---------------------------------------------------------------------------------------------
-- Access control. Platform front-ends connect as their own login role, a member of the group role
-- pgipam_driver (created by `pgipam platform add`, which also grants it DML on these tables and no
-- DDL). Row-level security then limits each platform to its own ranges and to the pools it may
-- use, even for hand-written SQL. The schema owner (the operator's CLI) is not subject to it.

-- The platform of the session's login role; 'default' for roles that are not a platform's.
create function pgipam.current_platform() returns text
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select coalesce((select name from pgipam.platform where role_name = session_user), 'default')
$$;

create function pgipam.pool_allowed(p_pool_id bigint) returns boolean
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select coalesce((select not p.restricted or exists (
      select 1 from pgipam.pool_grant g where g.pool_id = p.id and g.platform = pgipam.current_platform())
    from pgipam.pool p where p.id = p_pool_id), false)
$$;

create function pgipam.range_owned(p_range_id bigint) returns boolean
  language sql stable security definer set search_path = pg_catalog, pgipam as $$
  select exists (select 1 from pgipam.address_range r where r.id = p_range_id and r.platform = pgipam.current_platform())
$$;

alter table pgipam.address_range enable row level security;
alter table pgipam.lease enable row level security;
alter table pgipam.free_extent enable row level security;
alter table pgipam.history enable row level security;
alter table pgipam.pool enable row level security;
alter table pgipam.pool_grant enable row level security;
alter table pgipam.pool_prefix enable row level security;
alter table pgipam.pool_free_block enable row level security;
alter table pgipam.pool_allocation enable row level security;
alter table pgipam.pool_reservation enable row level security;

create policy platform_ranges on pgipam.address_range
  using (platform = pgipam.current_platform())
  with check (platform = pgipam.current_platform() and (pool_id is null or pgipam.pool_allowed(pool_id)));
create policy platform_leases on pgipam.lease using (pgipam.range_owned(range_id)) with check (pgipam.range_owned(range_id));
create policy platform_free_extents on pgipam.free_extent using (pgipam.range_owned(range_id)) with check (pgipam.range_owned(range_id));
create policy platform_history_read on pgipam.history for select using (platform = pgipam.current_platform());
create policy platform_history_write on pgipam.history for insert with check (platform = pgipam.current_platform());
create policy platform_pools on pgipam.pool for select using (pgipam.pool_allowed(id));
create policy platform_pool_grants on pgipam.pool_grant for select using (platform = pgipam.current_platform());
create policy platform_pool_prefixes on pgipam.pool_prefix for select using (pgipam.pool_allowed(pool_id));
create policy platform_pool_free on pgipam.pool_free_block using (pgipam.pool_allowed(pool_id)) with check (pgipam.pool_allowed(pool_id));
create policy platform_pool_allocations on pgipam.pool_allocation using (pgipam.pool_allowed(pool_id)) with check (pgipam.pool_allowed(pool_id));
create policy platform_pool_reservations on pgipam.pool_reservation for select using (pgipam.pool_allowed(pool_id));
