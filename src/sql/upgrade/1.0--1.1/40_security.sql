-- Issue 19 (security): see docs/security.md.  Each object below is
-- re-created exactly as the install pieces define it; when another change
-- edits one of them in src/sql, this piece (concatenated after lower-numbered
-- ones) must carry the merged definition:
--   60_convert.sql: capacity_run_as_owner
--   60_convert.sql: capacity_convert_sync
--   60_convert.sql: capacity_convert_backfill
--   20_drop_cleanup.sql: capacity_forget_dropped_tables
--   50_explain.sql: capacity_explain_register_defaults
--   60_convert.sql: capacity_convert_check
--   31_indicator_functions.sql: capacity_record

CREATE FUNCTION @extschema@.capacity_run_as_owner(tbl regclass, stmts text[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_as_owner';

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_sync()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_convert_sync';

CREATE OR REPLACE FUNCTION @extschema@.capacity_forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.capacity_policy p
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND p.table_name::pg_catalog.oid = d.objid;
    -- conversions (60_convert.sql) of dropped tables, and dropped old tables
    DELETE FROM @extschema@.capacity_conversion c
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.table_name::pg_catalog.oid = d.objid;
    -- the default EXPLAIN checks (50_explain.sql) of dropped tables
    DELETE FROM @extschema@.capacity_explain_check k
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND k.table_name::pg_catalog.oid = d.objid;
    UPDATE @extschema@.capacity_conversion c SET historical = NULL
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.historical::pg_catalog.oid = d.objid;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_explain_register_defaults(tbl regclass, owner regrole)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p @extschema@.capacity_policy;
    t text := tbl::text;
    tenant text;
    leaves integer;
    chk record;
BEGIN
    SELECT * INTO p FROM @extschema@.capacity_policy c WHERE c.table_name = tbl;
    leaves := coalesce(p.hash_partitions, 1);
    DELETE FROM @extschema@.capacity_explain_check c
     WHERE c.table_name = tbl
        OR (c.table_name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = c.table_name));
    IF p.hash_column IS NOT NULL THEN
        SELECT CASE WHEN typ.typcategory = 'N' THEN '1'
                    WHEN typ.oid = 'uuid'::regtype THEN '00000000-0000-0000-0000-000000000000'
                    ELSE 'tenant' END
          INTO tenant
          FROM pg_attribute a JOIN pg_type typ ON typ.oid = a.atttypid
         WHERE a.attrelid = tbl AND a.attname = p.hash_column;
    END IF;
    FOR chk IN
        SELECT t || ': one ' || p.granularity AS name,
               format('SELECT * FROM %s WHERE %I >= $1 AND %I < $2', t, p.time_column, p.time_column) AS query,
               leaves AS max_partitions, ARRAY['@period_start@', '@period_end@'] AS params
        UNION ALL
        SELECT t || ': tenant + one ' || p.granularity,
               format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
               1, ARRAY[tenant, '@period_start@', '@period_end@']
         WHERE p.hash_column IS NOT NULL
        UNION ALL
        SELECT t || ': tenant + one ' || p.granularity || ' across a boundary',
               format('SELECT * FROM %s WHERE %I = $1 AND %I >= $2 AND %I < $3', t, p.hash_column, p.time_column, p.time_column),
               2, ARRAY[tenant, '@mid_period@', '@mid_next_period@']
         WHERE p.hash_column IS NOT NULL
    LOOP
        INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
        VALUES (chk.name, chk.query, chk.max_partitions, chk.params, owner, NULL, tbl)
        ON CONFLICT (name) DO NOTHING;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.capacity_explain_check (name, query, max_partitions, params, owner, search_path, table_name)
            VALUES (chk.name || ' (' || tbl::oid || ')', chk.query, chk.max_partitions, chk.params, owner, NULL, tbl)
            ON CONFLICT (name) DO UPDATE
               SET query = EXCLUDED.query, max_partitions = EXCLUDED.max_partitions, params = EXCLUDED.params,
                   owner = EXCLUDED.owner, search_path = NULL, table_name = EXCLUDED.table_name;
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_check(tbl regclass, time_column name, granularity text,
                                                   hash_column name, hash_partitions integer, premake integer,
                                                   retention_action text)
RETURNS TABLE(qual text, nspname name, relname name, owner name, time_type regtype, key_columns name[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    bad text;
    tatt smallint;
    hatt smallint;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: the table to convert must not be NULL'
            USING ERRCODE = '22004', HINT = 'Pass the table, e.g. ''"Event"''.';
    END IF;
    SELECT c.relname, n.nspname, n.oid AS nsp, c.relkind, c.relpersistence, c.relispartition,
           c.relrowsecurity, c.relowner, pg_get_userbyid(c.relowner) AS owner
      INTO r FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    qual := format('%I.%I', r.nspname, r.relname);
    nspname := r.nspname;
    relname := r.relname;
    owner := r.owner;
    IF r.relkind = 'p' THEN
        RAISE EXCEPTION 'matter_capacity: table % is already partitioned', qual
            USING ERRCODE = '42809', HINT = 'Manage it with capacity_manage(); nothing to convert.';
    ELSIF r.relkind <> 'r' THEN
        RAISE EXCEPTION 'matter_capacity: % is not an ordinary table', qual
            USING ERRCODE = '42809', HINT = 'Only ordinary tables are converted.';
    ELSIF r.relpersistence = 't' THEN
        RAISE EXCEPTION 'matter_capacity: % is a temporary table', qual
            USING ERRCODE = '42809', HINT = 'Temporary tables live for one session; partition a permanent table.';
    ELSIF r.relpersistence = 'u' THEN
        RAISE EXCEPTION 'matter_capacity: % is unlogged', qual
            USING ERRCODE = '55000', HINT = 'Make it durable first: ALTER TABLE ... SET LOGGED (it rewrites the table).';
    ELSIF r.relispartition THEN
        RAISE EXCEPTION 'matter_capacity: % is already a partition', qual
            USING ERRCODE = '42809', HINT = 'Convert its parent instead.';
    END IF;
    IF NOT pg_has_role(current_user, r.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'matter_capacity: must be owner of table % to convert it', qual
            USING ERRCODE = '42501', HINT = format('Run it as %I or a member of that role.', r.owner);
    END IF;
    SELECT string_agg(x, ', ') INTO bad FROM (
        SELECT i.inhrelid::regclass::text AS x FROM pg_inherits i WHERE i.inhparent = tbl
        UNION ALL SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = tbl) s;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % takes part in table inheritance (%)', qual, bad
            USING ERRCODE = '55000', HINT = 'Detach the inheritance (ALTER TABLE ... NO INHERIT) first.';
    END IF;
    IF granularity IS NULL OR granularity NOT IN ('day', 'week', 'month') THEN
        RAISE EXCEPTION 'matter_capacity: granularity "%" for % is not day, week or month', granularity, qual
            USING ERRCODE = '22023', HINT = 'Use ''day'', ''week'' (ISO, Monday) or ''month''.';
    END IF;
    SELECT a.attnum, a.atttypid::regtype INTO tatt, time_type
      FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF tatt IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', time_column, qual
            USING ERRCODE = '42703', HINT = 'Name the column that holds the row''s time, e.g. "createdAt".';
    ELSIF time_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % is %, not a date or timestamp', time_column, qual, time_type
            USING ERRCODE = '42804', HINT = 'Partition by a timestamptz, timestamp or date column.';
    END IF;
    IF (hash_column IS NULL) <> (hash_partitions IS NULL) THEN
        RAISE EXCEPTION 'matter_capacity: hash_column and hash_partitions of % go together', qual
            USING ERRCODE = '22023', HINT = 'Pass both (e.g. ''orgId'', 16) or neither.';
    END IF;
    IF hash_column IS NOT NULL THEN
        IF hash_partitions NOT BETWEEN 2 AND 1024 THEN
            RAISE EXCEPTION 'matter_capacity: % hash partitions for % is out of range', hash_partitions, qual
                USING ERRCODE = '22023', HINT = 'Use 2 to 1024 hash partitions (16 is typical).';
        END IF;
        SELECT a.attnum INTO hatt FROM pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = hash_column AND a.attnum > 0 AND NOT a.attisdropped;
        IF hatt IS NULL THEN
            RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', hash_column, qual
                USING ERRCODE = '42703', HINT = 'Name the tenant column, e.g. "orgId".';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_opclass o ON o.opcintype = a.atttypid
                         JOIN pg_am am ON am.oid = o.opcmethod
                        WHERE a.attrelid = tbl AND a.attnum = hatt AND am.amname = 'hash' AND o.opcdefault) THEN
            RAISE EXCEPTION 'matter_capacity: column "%" of % has a type without a hash operator class', hash_column, qual
                USING ERRCODE = '42704', HINT = 'Hash-partition by a column of a hashable type (text, uuid, integer ...), or leave hash_column NULL.';
        END IF;
    END IF;
    IF premake IS NULL OR premake NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'matter_capacity: premake % for % is out of range', premake, qual
            USING ERRCODE = '22023', HINT = 'Create 1 to 1000 periods ahead (4 is typical).';
    END IF;
    IF (premake + 1)::bigint * coalesce(hash_partitions, 1)
       > coalesce(nullif(current_setting('matter_capacity.max_leaves_per_policy', true), '')::integer, 10000) THEN
        RAISE EXCEPTION 'matter_capacity: premake % with % hash partitions for % makes % leaf tables, more than matter_capacity.max_leaves_per_policy',
                        premake, coalesce(hash_partitions, 1), qual, (premake + 1)::bigint * coalesce(hash_partitions, 1)
            USING ERRCODE = '54000',
                  HINT = 'Use fewer periods ahead or fewer hash partitions; a superuser can raise matter_capacity.max_leaves_per_policy.';
    END IF;
    IF retention_action IS NULL OR retention_action NOT IN ('detach', 'drop') THEN
        RAISE EXCEPTION 'matter_capacity: retention_action "%" for % is not detach or drop', retention_action, qual
            USING ERRCODE = '22023', HINT = 'detach keeps old periods as tables; drop removes them.';
    END IF;
    -- what PostgreSQL refuses on a partitioned table, or what would not follow the rename
    SELECT string_agg(format('%I %s', i.relname, substring(pg_get_indexdef(x.indexrelid) FROM ' USING \w+ (.*)$')),
                      ', ' ORDER BY i.relname)
      INTO bad FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     WHERE x.indrelid = tbl AND x.indisunique
       AND NOT (tatt = ANY (x.indkey::smallint[]) AND (hatt IS NULL OR hatt = ANY (x.indkey::smallint[])));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: unique index % of % does not include the partition column(s) %', bad, qual,
                        concat_ws(', ', quote_ident(time_column), quote_ident(hash_column))
            USING ERRCODE = '0A000',
                  HINT = 'A partitioned table''s primary key and unique constraints must include the partition columns. '
                      || 'Build the wider index first (CREATE UNIQUE INDEX CONCURRENTLY ... (<key columns>, '
                      || concat_ws(', ', quote_ident(time_column), quote_ident(hash_column))
                      || ')), then swap it in: ALTER TABLE ... DROP CONSTRAINT ..., ADD PRIMARY KEY USING INDEX ...';
    END IF;
    SELECT string_agg(format('%I on %s', k.conname, k.conrelid::regclass), ', ' ORDER BY k.conname)
      INTO bad FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid = tbl;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: foreign keys point to %: %', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'Drop them, convert, then re-create them against a key that includes the partition columns.';
    END IF;
    SELECT string_agg(format('%I', k.conname), ', ') INTO bad FROM pg_constraint k
     WHERE k.conrelid = tbl AND k.contype = 'x';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has exclusion constraints (%), which partitioned tables do not support', qual, bad
            USING ERRCODE = '0A000', HINT = 'Drop them (enforce the rule in the application or per partition) before converting.';
    END IF;
    SELECT string_agg(format('%I', t.tgname), ', ' ORDER BY t.tgname) INTO bad
      FROM pg_trigger t WHERE t.tgrelid = tbl AND NOT t.tgisinternal;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has triggers: %', qual, bad
            USING ERRCODE = '0A000', HINT = 'Drop them, convert, and create them again on the partitioned table.';
    END IF;
    SELECT string_agg(format('%I', w.rulename), ', ') INTO bad FROM pg_rewrite w WHERE w.ev_class = tbl;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has rules: %', qual, bad
            USING ERRCODE = '0A000', HINT = 'Partitioned tables cannot carry rules; replace them with triggers after converting.';
    END IF;
    IF r.relrowsecurity OR EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = tbl) THEN
        RAISE EXCEPTION 'matter_capacity: % has row-level security', qual
            USING ERRCODE = '0A000', HINT = 'Disable it and drop its policies, convert, then enable and create them again.';
    END IF;
    SELECT string_agg(format('%I', p.pubname), ', ' ORDER BY p.pubname) INTO bad FROM pg_publication p
     WHERE p.puballtables
        OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = tbl)
        OR EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid AND pn.pnnspid = r.nsp);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % is published (%)', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'Take it out of the publications, convert, then publish the partitioned table (publish_via_partition_root).';
    END IF;
    SELECT string_agg(DISTINCT d, ', ') INTO bad FROM (
        SELECT w.ev_class::regclass::text AS d FROM pg_depend x JOIN pg_rewrite w ON w.oid = x.objid
         WHERE x.classid = 'pg_rewrite'::regclass AND x.refclassid = 'pg_class'::regclass
           AND x.refobjid = tbl AND w.ev_class <> tbl
        UNION ALL
        SELECT x.objid::regprocedure::text FROM pg_depend x
         WHERE x.classid = 'pg_proc'::regclass AND x.refclassid = 'pg_class'::regclass AND x.refobjid = tbl) s;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: views or functions depend on %: %', qual, bad
            USING ERRCODE = '0A000',
                  HINT = 'They would keep reading the old table. Drop them, convert, and create them again.';
    END IF;
    SELECT array_agg(a.attname ORDER BY k.n) INTO key_columns
      FROM pg_index x, unnest(x.indkey::smallint[]) WITH ORDINALITY k(att, n), pg_attribute a
     WHERE x.indrelid = tbl AND x.indisprimary AND a.attrelid = tbl AND a.attnum = k.att;
    RETURN NEXT;
END
$$;

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;
