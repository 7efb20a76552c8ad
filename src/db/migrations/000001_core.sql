-- 000001 core: address spaces, address ranges, leases, free extents, and the history of changes.
--
-- The invariants live in the database, not only in the code:
--   * no two ranges of one space overlap (exclusion constraints per address family);
--   * a lease lies inside its range (trigger) and no two leases of a range overlap (exclusion);
-- together: no address of a space is ever leased twice.
-- free_extent is the index of free space that makes first-fit allocation independent of how many
-- leases a range holds; it is kept in step with lease by the same transactions.

create extension if not exists btree_gist;

create table pgipam.space (
  id bigint generated always as identity primary key,
  name text not null constraint space_name_unique unique
    constraint space_name_format check (name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$'),
  description text not null default '',
  created_at timestamptz not null default now()
);
insert into pgipam.space (name, description) values ('default', 'the global address space');

create table pgipam.address_range (
  id bigint generated always as identity primary key,
  space_id bigint not null references pgipam.space (id),
  ar_type text not null constraint address_range_type
    check (ar_type in ('ETHER', 'IP4', 'IP6', 'IP6_STATIC', 'IP4_6', 'IP4_6_STATIC')),
  size bigint not null constraint address_range_size check (size between 1 and 4294967296),
  -- first IPv4 address as an integer (IP4, IP4_6, IP4_6_STATIC)
  ip4_first bigint,
  -- first static IPv6 address as an integer (IP6_STATIC, IP4_6_STATIC)
  ip6_first numeric(39, 0),
  prefix_length integer,
  -- first MAC as an integer, when the AR named one at registration
  mac_first bigint,
  ip4_span int8range generated always as
    (case when ip4_first is null then null else int8range(ip4_first, ip4_first + size) end) stored,
  ip6_span numrange generated always as
    (case when ip6_first is null then null else numrange(ip6_first, ip6_first + size) end) stored,
  mac_span int8range generated always as
    (case when mac_first is null then null else int8range(mac_first, mac_first + size) end) stored,
  -- seconds a freed address stays on hold before it can be handed out again (0: at once)
  hold_seconds integer not null default 0 constraint address_range_hold check (hold_seconds >= 0),
  -- the AR as pgipam replied it to oned
  attrs jsonb not null default '{}',
  created_at timestamptz not null default now(),
  request_id text,
  constraint address_range_ip4_needed check ((ip4_first is not null) = (ar_type in ('IP4', 'IP4_6', 'IP4_6_STATIC'))),
  constraint address_range_ip6_needed check ((ip6_first is not null) = (ar_type in ('IP6_STATIC', 'IP4_6_STATIC'))),
  constraint address_range_ip4_bounds check (ip4_first is null or (ip4_first >= 0 and ip4_first + size <= 4294967296)),
  -- oned adds the index to the low 32 bits without carry: a range may not wrap them
  constraint address_range_ip6_bounds check (ip6_first is null or (ip6_first >= 0
    and ip6_first < 340282366920938463463374607431768211456
    and mod(ip6_first, 4294967296) + size <= 4294967296)),
  constraint address_range_mac_bounds check (mac_first is null or (mac_first >= 0
    and mac_first < 281474976710656 and mod(mac_first, 4294967296) + size <= 4294967296)),
  constraint address_range_ip4_no_overlap exclude using gist (space_id with =, ip4_span with &&) where (ip4_first is not null),
  constraint address_range_ip6_no_overlap exclude using gist (space_id with =, ip6_span with &&) where (ip6_first is not null),
  constraint address_range_mac_no_overlap exclude using gist (space_id with =, mac_span with &&) where (mac_first is not null)
);

-- Leases and free extents are stored as indexes into the range; the range's position may never
-- change under them.
create function pgipam.address_range_immutable() returns trigger language plpgsql as $$
begin
  if (new.space_id, new.ar_type, new.size, new.ip4_first, new.ip6_first, new.mac_first)
     is distinct from (old.space_id, old.ar_type, old.size, old.ip4_first, old.ip6_first, old.mac_first) then
    raise exception 'the addresses of a range cannot change; unregister it and register a new one'
      using errcode = '23514', constraint = 'address_range_immutable';
  end if;
  return new;
end $$;
create trigger address_range_immutable before update on pgipam.address_range
  for each row execute function pgipam.address_range_immutable();

create table pgipam.lease (
  range_id bigint not null references pgipam.address_range (id) on delete cascade,
  first_idx bigint not null,
  last_idx bigint not null,
  span int8range generated always as (int8range(first_idx, last_idx, '[]')) stored,
  -- lease: handed out by get_address; allocation: asked for by allocate_address;
  -- reservation: kept out by an operator; hold: freed, not handed out again until held_until.
  kind text not null constraint lease_kind check (kind in ('lease', 'allocation', 'reservation', 'hold')),
  created_at timestamptz not null default now(),
  request_id text,
  note text,
  held_until timestamptz,
  constraint lease_pkey primary key (range_id, first_idx),
  constraint lease_bounds check (first_idx >= 0 and last_idx >= first_idx),
  constraint lease_hold_until check ((kind = 'hold') = (held_until is not null)),
  constraint lease_no_overlap exclude using gist (range_id with =, span with &&)
);

-- expired holds of a range are found without reading its other leases
create index lease_hold_expiry on pgipam.lease (range_id, held_until) where kind = 'hold';

create function pgipam.lease_within_range() returns trigger language plpgsql as $$
declare
  range_size bigint;
begin
  select size into range_size from pgipam.address_range where id = new.range_id;
  if range_size is not null and new.last_idx >= range_size then
    raise exception 'lease [%, %] lies outside range % of size %', new.first_idx, new.last_idx, new.range_id, range_size
      using errcode = '23514', constraint = 'lease_within_range';
  end if;
  return new;
end $$;
create trigger lease_within_range before insert or update on pgipam.lease
  for each row execute function pgipam.lease_within_range();

create table pgipam.free_extent (
  range_id bigint not null references pgipam.address_range (id) on delete cascade,
  first_idx bigint not null,
  last_idx bigint not null,
  constraint free_extent_pkey primary key (range_id, first_idx),
  constraint free_extent_last_unique unique (range_id, last_idx),
  constraint free_extent_bounds check (first_idx >= 0 and last_idx >= first_idx)
);

-- Append-only: one row per change. range_id and space_id carry no foreign key because history
-- outlives the ranges it describes.
create table pgipam.history (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  event text not null,
  space_id bigint,
  range_id bigint,
  first_idx bigint,
  size bigint,
  address text,
  platform text,
  request_id text,
  actor text not null default current_user,
  detail jsonb not null default '{}'
);
create index history_range_at on pgipam.history (range_id, at);
create index history_at on pgipam.history (at);
create index history_address on pgipam.history (address) where address is not null;

create function pgipam.history_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'pgipam.history is append-only' using errcode = '42501';
end $$;
create trigger history_append_only before update or delete on pgipam.history
  for each statement execute function pgipam.history_append_only();
