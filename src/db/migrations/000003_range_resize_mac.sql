-- 000003 what oned changes behind the driver's back, and the size bound oned itself has.
--
-- * `onevnet updatear` can change an IPAM AR's SIZE without calling the driver. The operator then
--   resizes the range to match (`pgipam range resize`). Only the size may change, only by the
--   owner of the table (the operator's CLI; a platform role must not grow its range into space it
--   was never given), only where the transaction said it resizes that range (set_config
--   'pgipam.resize_range' to its id: a stray UPDATE is still refused), and only while no lease or
--   free extent lies at or beyond the new size (a shrink can never cut a lease out of its range).
--   Growing never moves an index.
-- * oned may choose an AR's MAC after register_address_range returned (an IPv6 or ETHER AR
--   registered without one gets a random MAC). The driver records it the first time an AR
--   carries it, so that MAC lookups keep naming the same lease: mac_first may go from null to a
--   value, once.
-- Everything else that places a range's addresses stays immutable.

create or replace function pgipam.address_range_immutable() returns trigger
  language plpgsql set search_path = pg_catalog, pgipam as $$
begin
  if (new.space_id, new.ar_type, new.ip4_first, new.ip6_first)
     is distinct from (old.space_id, old.ar_type, old.ip4_first, old.ip6_first)
     or (old.mac_first is not null and new.mac_first is distinct from old.mac_first) then
    raise exception 'the addresses of a range cannot change; unregister it and register a new one'
      using errcode = '23514', constraint = 'address_range_immutable';
  end if;
  if new.size <> old.size then
    if current_setting('pgipam.resize_range', true) is distinct from new.id::text then
      raise exception 'the size of a range changes only through "pgipam range resize"'
        using errcode = '23514', constraint = 'address_range_immutable';
    end if;
    if not pg_has_role(current_user, (select c.relowner from pg_class c where c.oid = 'pgipam.address_range'::regclass), 'USAGE') then
      raise exception 'only the owner of the pgipam schema may resize a range (pgipam range resize)'
        using errcode = '42501', constraint = 'address_range_immutable';
    end if;
    if exists (select 1 from pgipam.lease l where l.range_id = new.id and l.last_idx >= new.size)
       or exists (select 1 from pgipam.free_extent f where f.range_id = new.id and f.last_idx >= new.size) then
      raise exception 'range % still has leases or free extents at or beyond index %', new.id, new.size
        using errcode = '23514', constraint = 'address_range_immutable';
    end if;
  end if;
  return new;
end $$;

-- oned keeps SIZE in an unsigned int: 4294967296 addresses is an AR it refuses. The code has
-- refused it since it learnt that; NOT VALID keeps a database that registered one before then
-- migrating (`pgipam check` does not depend on it).
alter table pgipam.address_range drop constraint address_range_size;
alter table pgipam.address_range add constraint address_range_size check (size between 1 and 4294967295) not valid;
