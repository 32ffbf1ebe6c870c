-- Issue 19 (security): see docs/security.md.  Each object below is
-- re-created exactly as the install pieces define it.

CREATE FUNCTION @extschema@.capacity_run_as_owner(tbl regclass, stmts text[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_as_owner';

CREATE OR REPLACE FUNCTION @extschema@.capacity_convert_sync()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_convert_sync';

CREATE OR REPLACE PROCEDURE @extschema@.capacity_convert_backfill(tbl regclass, batch_rows integer DEFAULT 10000,
                                                       max_batches integer DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
    cv @extschema@.capacity_conversion;
    qual text;
    nsp name;
    rel name;
    owner name;
    typ regtype;
    stagename name;
    stagequal text;
    lo timestamptz;
    p timestamptz;
    pname text;
    pqual text;
    nblocks bigint;
    per_page float8;
    pages bigint;
    n bigint;
    batches integer := 0;
    swap text[];
    x record;
    t0 timestamptz;
    blk integer := current_setting('block_size')::integer;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert_backfill cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'matter_capacity: batch_rows % must be a positive number', batch_rows
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical.';
    END IF;
    SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'matter_capacity: % was not converted by capacity_convert', coalesce(tbl::text, 'NULL')
            USING ERRCODE = '42704', HINT = 'SELECT * FROM capacity_conversions lists the conversions.';
    END IF;
    IF cv.state = 'done' THEN
        RAISE NOTICE 'capacity_convert_backfill: % is already backfilled', tbl;
        RETURN;
    END IF;
    IF cv.key_columns IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: % has no primary key, so writes during the backfill cannot be replayed', tbl
            USING ERRCODE = '0A000',
                  HINT = 'Add a primary key that includes the partition columns, then run the backfill again.';
    END IF;
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'matter_capacity: must be owner of table % to backfill it', tbl
            USING ERRCODE = '42501', HINT = 'Run it as the table''s owner.';
    END IF;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype
      INTO nsp, rel, owner, typ
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = cv.time_column
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    stagename := left(rel, 54) || '_backfill';
    stagequal := format('%I.%I', nsp, stagename);

    IF cv.state = 'converted' THEN
        -- the period tables, gathered under a private staging table, and
        -- the trigger that replays writes on the historical partition
        EXECUTE format('SELECT min(%I) FROM ONLY %s', cv.time_column, cv.historical::text) INTO lo;
        lo := coalesce(lo, cv.bound - interval '1 day');
        -- constraints, indexes and foreign keys as the parent has them, so the
        -- period tables attach later without building or validating anything
        EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES '
                       'INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (%I)', stagequal, qual, cv.time_column);
        FOR x IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
                  WHERE k.conrelid = tbl AND k.contype = 'f' LOOP
            EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', stagequal, x.conname, x.def);
        END LOOP;
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, left(stagename, 55) || '_default', stagequal);
        p := @extschema@.capacity_period_start(lo, cv.granularity, 0);
        WHILE p < cv.bound LOOP
            pname := @extschema@.capacity_partition_name(rel, cv.granularity, p);
            pqual := format('%I.%I', nsp, pname);
            EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING CONSTRAINTS '
                           'INCLUDING STORAGE, '
                           'CONSTRAINT matter_capacity_bounds CHECK (%I IS NOT NULL AND %I >= %s AND %I < %s))%s',
                           pqual, qual, cv.time_column, cv.time_column,
                           @extschema@.capacity_time_literal(p, typ), cv.time_column,
                           @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ),
                           CASE WHEN cv.hash_column IS NULL THEN ''
                                ELSE format(' PARTITION BY HASH (%I)', cv.hash_column) END);
            FOR r IN 0 .. coalesce(cv.hash_partitions, 0) - 1 LOOP
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s)', nsp,
                               @extschema@.capacity_partition_name(rel, cv.granularity, p, r, cv.hash_partitions),
                               pqual, cv.hash_partitions, r);
            END LOOP;
            EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', stagequal, pqual,
                           @extschema@.capacity_time_literal(p, typ),
                           @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ));
            p := @extschema@.capacity_period_start(p, cv.granularity, 1);
        END LOOP;
        FOR x IN SELECT c.oid::regclass AS r FROM pg_partition_tree(stagequal::regclass) t JOIN pg_class c ON c.oid = t.relid
                  WHERE c.relkind IN ('r', 'p') LOOP
            IF owner <> current_user THEN
                EXECUTE format('ALTER TABLE %s OWNER TO %I', x.r, owner);
            END IF;
        END LOOP;
        UPDATE @extschema@.capacity_conversion c
           SET staging = stagequal::regclass, state = 'backfilling', next_page = 0, rows_copied = 0,
               pages_total = pg_relation_size(cv.historical) / blk,
               backfill_started_at = clock_timestamp(), updated_at = clock_timestamp()
         WHERE c.table_name = tbl;
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format(
                    'CREATE TRIGGER capacity_convert_sync AFTER INSERT OR UPDATE OR DELETE ON %s '
                    'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                    cv.historical::text, stagequal)],
                format('installing the write replay on %s', cv.historical::text));
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
        RAISE NOTICE 'capacity_convert_backfill: % periods from % to % prepared; copying % pages of %',
                     (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = cv.staging) - 1,
                     to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD'), to_char(cv.bound AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                     cv.pages_total, cv.historical;
    END IF;

    -- batches of pages, one transaction each; the watermark commits with them
    LOOP
        nblocks := pg_relation_size(cv.historical) / blk;
        EXIT WHEN cv.next_page >= nblocks;
        IF max_batches IS NOT NULL AND batches >= max_batches THEN
            RAISE NOTICE 'capacity_convert_backfill: stopped after % batches at page % of %; CALL it again to go on',
                         batches, cv.next_page, nblocks;
            RETURN;
        END IF;
        SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 100 END
          INTO per_page FROM pg_class c WHERE c.oid = cv.historical;
        pages := greatest(1, ceil(batch_rows / per_page))::bigint;
        n := @extschema@.capacity_run_as_owner(tbl, ARRAY[format(
                 'INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid AND ctid < %L::tid '
                 'FOR SHARE ON CONFLICT DO NOTHING', cv.staging::text, cv.historical::text,
                 format('(%s,0)', cv.next_page), format('(%s,0)', cv.next_page + pages))]);
        UPDATE @extschema@.capacity_conversion c
           SET next_page = cv.next_page + pages, rows_copied = c.rows_copied + n,
               pages_total = greatest(c.pages_total, nblocks), updated_at = clock_timestamp()
         WHERE c.table_name = tbl
        RETURNING * INTO cv;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        batches := batches + 1;
        IF batches % 50 = 0 THEN
            RAISE NOTICE 'capacity_convert_backfill: % rows copied, page % of %', cv.rows_copied, cv.next_page, nblocks;
        END IF;
    END LOOP;

    -- the switch: the historical partition out, the period tables in; all
    -- proven by constraints, so the lock is held for catalog work only
    swap := ARRAY[format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', qual),
                  format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', cv.historical::text),
                  format('SELECT @extschema@.capacity_run_as_owner(%L, ARRAY[%L])', qual,
                         format('INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid ON CONFLICT DO NOTHING',
                                cv.staging::text, cv.historical::text, format('(%s,0)', cv.next_page))),
                  format('ALTER TABLE %s DETACH PARTITION %s', qual, cv.historical::text),
                  format('DROP TRIGGER capacity_convert_sync ON %s', cv.historical::text)];
    FOR x IN SELECT i.inhrelid::regclass AS part, pg_get_expr(c.relpartbound, c.oid) AS bnd
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = cv.staging ORDER BY 2 LOOP
        IF x.bnd = 'DEFAULT' THEN
            CONTINUE;
        END IF;
        swap := swap || format('ALTER TABLE %s DETACH PARTITION %s', cv.staging::text, x.part)
                     || format('ALTER TABLE %s ATTACH PARTITION %s %s', qual, x.part, x.bnd);
    END LOOP;
    -- rows older than the first period (written during the backfill) go to the default partition
    swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L, ARRAY[%L])', qual,
                           format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I', qual, nsp, left(stagename, 55) || '_default'))
                 || format('DROP TABLE %s', cv.staging::text);
    t0 := clock_timestamp();
    PERFORM @extschema@.capacity_run_bounded(swap, format('switching %s to its backfilled periods', qual));
    UPDATE @extschema@.capacity_conversion c
       SET state = 'done', staging = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
           backfill_swap_ms = extract(epoch FROM clock_timestamp() - t0) * 1000
     WHERE c.table_name = tbl
    RETURNING * INTO cv;
    COMMIT;
    RAISE NOTICE 'capacity_convert_backfill: % done: % rows in period partitions; the switch held its lock % ms. The old table % is detached: drop it once checked.',
                 qual, cv.rows_copied, round(cv.backfill_swap_ms::numeric, 1), cv.historical;
END
$$;

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

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;
