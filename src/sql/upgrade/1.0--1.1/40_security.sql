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

CREATE OR REPLACE FUNCTION @extschema@.capacity_record(indicator text, value double precision,
                                            labels jsonb DEFAULT '{}',
                                            sampled_at timestamptz DEFAULT now())
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind text;
BEGIN
    SELECT i.source INTO kind FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    IF kind IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: indicator "%" does not exist', indicator
            USING ERRCODE = '42704', HINT = 'Declare it first with capacity_register_push(indicator, unit).';
    ELSIF kind <> 'push' THEN
        RAISE EXCEPTION 'matter_capacity: indicator % is a % indicator and cannot be pushed', indicator, kind
            USING ERRCODE = '42809', HINT = 'Only indicators declared with capacity_register_push() accept values.';
    END IF;
    IF value IS NULL OR value = 'NaN'::float8 OR value IN ('Infinity'::float8, '-Infinity'::float8) THEN
        RAISE EXCEPTION 'matter_capacity: value % for indicator % is not a finite number', value, indicator
            USING ERRCODE = '22023', HINT = 'Push finite numbers only; skip a measurement you do not have.';
    END IF;
    IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
        RAISE EXCEPTION 'matter_capacity: labels for indicator % must be a JSON object', indicator
            USING ERRCODE = '22023', HINT = 'Pass labels like ''{"region": "eu-west-1"}''::jsonb, or ''{}''.';
    END IF;
    IF octet_length(labels::text)
       > coalesce(nullif(current_setting('matter_capacity.max_label_bytes', true), '')::integer, 1024) THEN
        RAISE EXCEPTION 'matter_capacity: labels for indicator % are % bytes, more than matter_capacity.max_label_bytes (%)',
                        indicator, octet_length(labels::text),
                        coalesce(nullif(current_setting('matter_capacity.max_label_bytes', true), '')::integer, 1024)
            USING ERRCODE = '54000',
                  HINT = 'Labels name a series (region, endpoint ...): keep them short; values go in value.';
    END IF;
    IF sampled_at IS NULL OR NOT isfinite(sampled_at) THEN
        RAISE EXCEPTION 'matter_capacity: sampled_at for indicator % must be a finite time', indicator
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    INSERT INTO @extschema@.capacity_sample (indicator, labels, sampled_at, value)
    VALUES (indicator, labels, sampled_at, value);
    INSERT INTO @extschema@.capacity_latest_sample AS l (indicator, labels, sampled_at, value)
    VALUES (indicator, labels, sampled_at, value)
    ON CONFLICT ON CONSTRAINT capacity_latest_sample_pkey DO UPDATE
       SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value
     WHERE l.sampled_at <= EXCLUDED.sampled_at;
END
$$;

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;
