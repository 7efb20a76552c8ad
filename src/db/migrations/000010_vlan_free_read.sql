-- 000010 a platform's role may read the free VLAN IDs of the VLAN pools it may use, as it reads
-- the pools' free blocks: "pgipam check" and "pgipam doctor" run as a platform's role on its
-- front-end (migration 9 left vlan_free_extent without a policy, so those reads were refused).
create policy platform_vlan_free on pgipam.vlan_free_extent for select using (pgipam.vlan_pool_allowed(vlan_pool_id));
