-- 000007 the database's own default search_path: pg_catalog and pgipam only. pgipam's connections
-- pin it at start-up, but a transaction pooler (PgBouncer) refuses start-up settings, and its
-- server connections then start with the database's default; pgipam's transactions set it again
-- (SET LOCAL) and this covers the statements outside them. Only the database's owner (or a
-- superuser) may change it: a schema owner that is neither leaves it, and "pgipam doctor" says so.
do $$
begin
  if pg_catalog.pg_has_role(current_user, (select d.datdba from pg_catalog.pg_database d where d.datname = pg_catalog.current_database()), 'MEMBER') then
    execute pg_catalog.format('alter database %I set search_path = pg_catalog, pgipam', pg_catalog.current_database());
  end if;
end $$;
