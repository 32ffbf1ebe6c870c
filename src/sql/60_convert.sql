-- Online conversion of an ordinary table into a managed partitioned table
-- (the stage 3 migration).  docs/runbooks/stage-3-migration.md walks
-- through it.
--
-- capacity_convert: the old table gets a CHECK (time < bound) added NOT
-- VALID and validated online (no DML is blocked); a new partitioned table
-- of the same shape is prepared under another name; then, in one short
-- transaction under matter_capacity.lock_timeout (retried), the names are
-- swapped and the old table is attached as the historical partition
-- [MINVALUE, bound): the validated constraint proves its bounds, so nothing
-- is scanned under the lock.  bound is the start of the next period, so
-- from then on rows go to period partitions.
--
-- capacity_convert_backfill: copies the historical partition, a batch of
-- pages per transaction, into period tables gathered under a private
-- staging table, while a trigger on the historical partition replays every
-- write into the copy; queries keep reading the historical partition.  At
-- the end one short transaction (lock timeout, retried) detaches the
-- historical partition and attaches the period tables: catalog work only,
-- each proven by its CHECK constraint.  Resumable: the page watermark is
-- committed with each batch, copies are idempotent (ON CONFLICT DO
-- NOTHING on the primary key).
--
-- capacity_empty_default (at the end): a default partition too big for the
-- rollover's rescue becomes such a historical partition, [end of the last
-- partition, MAXVALUE), and the same backfill empties it.
--
-- These are procedures because they commit between steps; PostgreSQL
-- refuses COMMIT in a procedure with a SET clause, so each transaction
-- starts by pinning search_path with set_config(..., true).

CREATE TABLE @extschema@.capacity_conversion (
    table_name          regclass PRIMARY KEY,       -- the new partitioned table
    historical          regclass,                   -- the old table, its partition [MINVALUE, bound)
    staging             regclass,                   -- private copy target during the backfill
    time_column         name NOT NULL,
    granularity         text NOT NULL,
    hash_column         name,
    hash_partitions     integer,
    bound               timestamptz NOT NULL,
    key_columns         name[],
    state               text NOT NULL CHECK (state IN ('converted', 'backfilling', 'done')),
    pages_total         bigint,
    next_page           bigint NOT NULL DEFAULT 0,
    rows_copied         bigint NOT NULL DEFAULT 0,
    converted_at        timestamptz NOT NULL,
    convert_swap_ms     double precision,
    backfill_started_at timestamptz,
    updated_at          timestamptz,
    finished_at         timestamptz,
    backfill_swap_ms    double precision,
    stale               text                        -- why the copy missed a write (the replay failed): it is made again
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_conversion', '');

CREATE VIEW @extschema@.capacity_conversions AS
SELECT c.table_name, c.state, c.historical, c.bound,
       c.rows_copied AS rows_moved,
       CASE WHEN c.state = 'done' THEN 0
            WHEN c.next_page > 0 THEN round(c.rows_copied * greatest(c.pages_total - c.next_page, 0)::numeric / c.next_page)::bigint
            ELSE greatest((SELECT h.reltuples FROM pg_catalog.pg_class h WHERE h.oid = c.historical), 0)::bigint
       END AS rows_left,
       CASE WHEN c.state = 'done' THEN 100.0
            WHEN c.state = 'backfilling' AND c.pages_total > 0
                 THEN round(100.0 * least(c.next_page::numeric / c.pages_total, 1), 1) END AS pct_done,
       round((c.rows_copied / nullif(extract(epoch FROM c.updated_at - c.backfill_started_at), 0))::numeric)
           AS rows_per_second,
       CASE WHEN c.state = 'backfilling' AND c.next_page > 0 THEN
            (c.updated_at - c.backfill_started_at) * (greatest(c.pages_total - c.next_page, 0)::float8 / c.next_page)
       END AS time_left,
       c.convert_swap_ms, c.backfill_swap_ms, c.converted_at, c.backfill_started_at, c.finished_at
  FROM @extschema@.capacity_conversion c;
GRANT SELECT ON @extschema@.capacity_conversions TO pg_monitor;

-- Rows the conversion's backfill copied are not the application's: at its
-- switch (capacity_convert_backfill, under its locks) the copies join the table; this
-- records how many, so the sampler takes them out of table_rows_inserted
-- (see sampler.c).  Every insert into the staging leaves (copies, replayed
-- writes) the sampler has not already counted under the staging table,
-- including this session's not yet flushed statistics, plus the rows of the
-- staging default partition, which the switch inserts into the table; less
-- what the application wrote into the historical partition since the last
-- sample, which the switch detaches before a sampler could count it.
CREATE FUNCTION @extschema@.capacity_note_backfill_copies(tbl regclass)
RETURNS double precision
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    stg regclass;
    deflt oid;
    n double precision;
    d bigint := 0;
BEGIN
    SELECT c.staging INTO stg FROM @extschema@.capacity_conversion c
     WHERE c.table_name = tbl AND c.state = 'backfilling';
    IF stg IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: % is not being backfilled', coalesce(tbl::text, 'NULL')
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() calls this at its switch; nothing else needs to.';
    END IF;
    -- only the switch, which holds the table exclusively, records it
    IF NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.relation = tbl AND l.pid = pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted) THEN
        RAISE EXCEPTION 'matter_capacity: the backfill copies of % are recorded only at its switch', tbl
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() calls this at its switch; nothing else needs to.';
    END IF;
    SELECT p.partdefid INTO deflt FROM pg_partitioned_table p WHERE p.partrelid = stg;
    SELECT coalesce(sum(greatest(pg_stat_get_tuples_inserted(t.relid) + pg_stat_get_xact_tuples_inserted(t.relid)
                                 - coalesce(s.inserted, 0), 0)), 0)
      INTO n
      FROM pg_partition_tree(stg) t JOIN pg_class c ON c.oid = t.relid AND c.relkind = 'r'
      LEFT JOIN @extschema@.capacity_leaf_inserts s ON s.leaf = t.relid
     WHERE t.relid IS DISTINCT FROM deflt;
    IF deflt IS NOT NULL AND deflt <> 0 THEN
        EXECUTE format('SELECT count(*) FROM ONLY %s', deflt::regclass) INTO d;
    END IF;
    n := n + d;
    SELECT n - coalesce(greatest(pg_stat_get_tuples_inserted(c.historical) + pg_stat_get_xact_tuples_inserted(c.historical)
                                 - s.inserted, 0), 0)
      INTO n
      FROM @extschema@.capacity_conversion c
      LEFT JOIN @extschema@.capacity_leaf_inserts s ON s.leaf = c.historical
     WHERE c.table_name = tbl;
    IF n <> 0 THEN
        INSERT INTO @extschema@.capacity_counter AS e (name, labels, value, observed_at)
        VALUES ('engine_rows_inserted', jsonb_build_object('relid', tbl::oid::bigint), n, now())
        ON CONFLICT ON CONSTRAINT capacity_counter_pkey DO UPDATE
           SET value = e.value + EXCLUDED.value, observed_at = EXCLUDED.observed_at;
    END IF;
    RETURN n;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_note_backfill_copies(regclass) FROM PUBLIC;

-- Autovacuum gives way.  PostgreSQL cancels an autovacuum worker that
-- blocks a lock request for deadlock_timeout (1 s); our requests give up
-- after matter_capacity.lock_timeout (100 ms), so an autovacuum of a big
-- table (seconds, longer on a busy machine) outlasted every attempt and the
-- conversion failed.  So, after a lock timeout: an autovacuum worker holding
-- a lock on one of rels (or a partition of one) is cancelled, as PostgreSQL
-- would, when it does not run to prevent wraparound and the caller may
-- signal it (superuser or pg_signal_backend); else we wait for it to end,
-- queueing no lock meanwhile, so nobody waits behind us, at most 60 s.
-- Returns whether an autovacuum was in the way.
CREATE FUNCTION @extschema@.capacity_autovacuum_yield(rels regclass[], what text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    av record;
    seen boolean := false;
    may_cancel boolean := true;
    cancelled integer := 0;
    deadline timestamptz := clock_timestamp() + interval '60 seconds';
BEGIN
    LOOP
        SELECT a.pid, a.query, string_agg(DISTINCT l.relation::regclass::text, ', ') AS held INTO av
          FROM pg_stat_activity a
          JOIN pg_locks l ON l.pid = a.pid AND l.granted AND l.locktype = 'relation'
         WHERE a.backend_type = 'autovacuum worker' AND a.datname = current_database()
           AND l.relation IN (SELECT r FROM unnest(rels) r
                              UNION ALL SELECT t.relid FROM unnest(rels) r, pg_partition_tree(r) t)
         GROUP BY a.pid, a.query
         LIMIT 1;
        EXIT WHEN av.pid IS NULL;
        IF NOT seen THEN
            RAISE NOTICE 'matter_capacity: %: autovacuum worker % (%) holds %', what, av.pid,
                         coalesce(av.query, '?'), av.held;
        END IF;
        seen := true;
        IF may_cancel AND av.query LIKE 'autovacuum: %' AND av.query NOT LIKE '%to prevent wraparound%' THEN
            BEGIN
                IF pg_cancel_backend(av.pid) THEN
                    cancelled := cancelled + 1;
                    IF cancelled = 1 THEN
                        RAISE NOTICE 'matter_capacity: %: cancelled that autovacuum (it runs again later)', what;
                    END IF;
                END IF;
            EXCEPTION WHEN insufficient_privilege THEN
                may_cancel := false;
                RAISE NOTICE 'matter_capacity: %: waiting for that autovacuum to end', what;
            END;
        END IF;
        IF clock_timestamp() > deadline THEN
            RETURN false;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    IF cancelled > 1 THEN
        -- a cancelled worker goes on to its next table, maybe another of ours
        RAISE NOTICE 'matter_capacity: %: % autovacuum tasks cancelled in all', what, cancelled;
    END IF;
    RETURN seen;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_autovacuum_yield(regclass[], text) FROM PUBLIC;

-- Run statements in one subtransaction under matter_capacity.lock_timeout,
-- retried as the rollover retries (src/locks.c: the same loop, the same
-- pauses); returns the attempts used.  An autovacuum worker holding one of
-- yield_to is made to give way (above), and that attempt is not counted.
-- Locks still not available: error 55P03 naming what.
CREATE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text, yield_to regclass[])
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_bounded';
COMMENT ON FUNCTION @extschema@.capacity_run_bounded(text[], text, regclass[]) IS
    'Run statements under matter_capacity.lock_timeout, retried matter_capacity.lock_retries times (src/locks.c); returns the attempts; 55P03 when the locks stay unavailable.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text, regclass[]) FROM PUBLIC;

-- The same without yielding (1.0's form, kept for its callers).
CREATE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.capacity_run_bounded(stmts, what, NULL::regclass[]) $$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text) FROM PUBLIC;

-- Statements that write a user's rows (the backfill's copies), run as the
-- owner of tbl under SECURITY_RESTRICTED_OPERATION (src/convert.c): the
-- owner's triggers, constraints, defaults and policies on the tables it
-- owns never run with the rights of whoever runs the conversion.  The
-- caller must own tbl.  Returns the rows processed.
CREATE FUNCTION @extschema@.capacity_run_as_owner(tbl regclass, stmts text[])
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_run_as_owner';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;

-- The first value of a read-only query over a user's rows, as the owner of
-- tbl, restricted (src/convert.c); NULL when it returns no row.
CREATE FUNCTION @extschema@.capacity_owner_value(tbl regclass, query text)
RETURNS text
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_owner_value';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_owner_value(regclass, text) FROM PUBLIC;

-- Replays a write on the historical partition into the backfill copy,
-- as the copy's owner (src/convert.c); the application role needs no
-- right on the copy.  Its argument is checked against capacity_conversion.
CREATE FUNCTION @extschema@.capacity_convert_sync()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_convert_sync';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_sync() FROM PUBLIC;

-- What a backfill copy must share with the table for its period tables to
-- attach as catalog work only and for the replay to fit: columns (type,
-- NOT NULL, generation), constraints, indexes (by definition, not name).
-- A schema change during the backfill (ADD COLUMN, CREATE INDEX, ...)
-- shows as a difference; the backfill then makes its copy again.
CREATE FUNCTION @extschema@.capacity_convert_shape(rel regclass)
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT format('column %I %s%s%s', a.attname, format_type(a.atttypid, a.atttypmod),
              CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
              CASE WHEN a.attgenerated <> '' THEN ' GENERATED ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END)
  FROM pg_attribute a
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated <> ''
 WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || regexp_replace(pg_get_constraintdef(k.oid), ' NOT VALID$', '')
  FROM pg_constraint k WHERE k.conrelid = rel AND k.contype IN ('c', 'f', 'p', 'u')
UNION ALL
SELECT CASE WHEN x.indisunique THEN 'unique index' ELSE 'index' END
       || substring(pg_get_indexdef(x.indexrelid) FROM ' USING .*$')
  FROM pg_index x WHERE x.indrelid = rel
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_shape(regclass) IS
    'One line per column (type, NOT NULL, generation), constraint and index (by definition) of rel: what a conversion''s backfill copy must share with its table.';

-- How copy differs from tbl (NULL when it does not), as text for a message.
CREATE FUNCTION @extschema@.capacity_convert_drift(tbl regclass, copy regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT left(string_agg(d, '; ' ORDER BY d), 500) FROM (
    SELECT 'added ' || s FROM (SELECT @extschema@.capacity_convert_shape(tbl)
                               EXCEPT ALL SELECT @extschema@.capacity_convert_shape(copy)) a(s)
    UNION ALL
    SELECT 'removed ' || s FROM (SELECT @extschema@.capacity_convert_shape(copy)
                                 EXCEPT ALL SELECT @extschema@.capacity_convert_shape(tbl)) b(s)) x(d)
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_drift(regclass, regclass) IS
    'What the table tbl has that its backfill copy lacks (added ...) and the reverse (removed ...), from capacity_convert_shape; NULL when they agree.';

-- Run inside the backfill's switch, under its locks: a copy that missed a
-- write or no longer has the table's shape is not switched in (55000).
CREATE FUNCTION @extschema@.capacity_convert_verify(tbl regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    why text;
BEGIN
    SELECT coalesce(c.stale, @extschema@.capacity_convert_drift(c.table_name, c.staging)) INTO why
      FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state = 'backfilling';
    IF why IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: the backfill copy of % is out of date: %', tbl, why
            USING ERRCODE = '55000', HINT = 'capacity_convert_backfill() makes the copy again.';
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_verify(regclass) FROM PUBLIC;

-- One conversion step per table at a time: a session-level advisory lock
-- on (this key, the table's oid), held for the whole CALL across its
-- commits.  Another CALL on the same table is refused with 55P03 naming
-- the session; a CALL that ended with an error keeps it until its session
-- ends (or the same session calls again), so the hint says how to tell.
CREATE FUNCTION @extschema@.capacity_convert_claim(tbl regclass, what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k integer := (tbl::oid::bigint - CASE WHEN tbl::oid::bigint > 2147483647 THEN 4294967296 ELSE 0 END)::integer;
    h record;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2
                  AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())) THEN
        RETURN;     -- this session's, from a CALL that ended with an error
    END IF;
    IF pg_try_advisory_lock(1835230000, k) THEN
        RETURN;
    END IF;
    SELECT l.pid, a.state, a.application_name INTO h FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2
       AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
     LIMIT 1;
    RAISE EXCEPTION 'matter_capacity: %: a conversion step of % is already running in session %', what, tbl, coalesce(h.pid::text, '?')
        USING ERRCODE = '55P03',
              HINT = CASE WHEN h.state = 'active' OR h.state IS NULL
                          THEN 'Wait for it to end (capacity_conversions shows the progress); nothing was done.'
                          ELSE format('That session is %s: a CALL there ended with an error and it still holds the claim. '
                                      'Disconnect it (SELECT pg_terminate_backend(%s)), then call again; nothing was done.',
                                      h.state, h.pid) END;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_convert_claim(regclass, text) IS
    'Claims tbl for one conversion step (session advisory lock 1835230000, oid); 55P03 naming the session that holds it.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_claim(regclass, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_convert_unclaim(tbl regclass)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
SELECT FROM pg_advisory_unlock(1835230000, (tbl::oid::bigint - CASE WHEN tbl::oid::bigint > 2147483647 THEN 4294967296 ELSE 0 END)::integer)
 WHERE EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
                  AND l.classid = 1835230000::oid AND l.objid = tbl::oid AND l.objsubid = 2)
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_unclaim(regclass) FROM PUBLIC;

-- The publications that publish one of rels: by name, FOR ALL TABLES, or
-- through the schema it is in (a comma-separated list, NULL when none).
-- The backfill's copies go into tables a publication would see as new rows.
CREATE FUNCTION @extschema@.capacity_publications_of(rels regclass[])
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT string_agg(format('%I', p.pubname), ', ' ORDER BY p.pubname) FROM pg_publication p
 WHERE p.puballtables
    OR EXISTS (SELECT 1 FROM pg_publication_rel pr WHERE pr.prpubid = p.oid AND pr.prrelid = ANY (rels::oid[]))
    OR EXISTS (SELECT 1 FROM pg_publication_namespace pn JOIN pg_class c ON c.relnamespace = pn.pnnspid
                WHERE pn.pnpubid = p.oid AND c.oid = ANY (rels::oid[]))
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_publications_of(regclass[]) FROM PUBLIC;

-- Why tbl cannot be converted (raises), or its description.
CREATE FUNCTION @extschema@.capacity_convert_check(tbl regclass, time_column name, granularity text,
                                                   hash_column name, hash_partitions integer, premake integer,
                                                   retention_action text, retention interval)
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
        -- named without its schema: pg_temp_N differs from session to session
        RAISE EXCEPTION 'matter_capacity: % is a temporary table', quote_ident(r.relname)
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
    SELECT a.attnum, a.atttypid::regtype INTO tatt, time_type
      FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF tatt IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % does not exist', time_column, qual
            USING ERRCODE = '42703', HINT = 'Name the column that holds the row''s time, e.g. "createdAt".';
    ELSIF time_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'matter_capacity: column "%" of % is %, not a date or timestamp', time_column, qual, time_type
            USING ERRCODE = '42804', HINT = 'Partition by a timestamptz, timestamp or date column.';
    END IF;
    -- the policy's own checks, as capacity_manage makes them (src/manage.c)
    PERFORM @extschema@.capacity_check_policy(tbl, time_column, granularity, hash_column, hash_partitions,
                                              premake, retention, retention_action);
    IF hash_column IS NOT NULL THEN
        SELECT a.attnum INTO hatt FROM pg_attribute a
         WHERE a.attrelid = tbl AND a.attname = hash_column AND a.attnum > 0 AND NOT a.attisdropped;
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
    bad := @extschema@.capacity_publications_of(ARRAY[tbl]);
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text, interval) FROM PUBLIC;

-- The conversion procedures commit between steps: where their caller
-- cannot commit (a transaction block, several statements sent as one
-- query, a function) they refuse first with 25001, changing nothing.
-- C (catalog.c): only a procedure sees whether its CALL may commit.
CREATE PROCEDURE @extschema@.capacity_require_commit(what text)
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_require_commit';

-- The conversion procedures run as their caller (a table's owner may be
-- granted them) and call functions revoked from PUBLIC: a caller granted
-- only the procedure failed midway with a bare "permission denied for
-- function capacity_convert_check", or, with EXECUTE granted, swapped the
-- table and then could not record the conversion (review 4, F6). Checked
-- first, naming every grant that is missing.
CREATE FUNCTION @extschema@.capacity_require_grants(fn text, functions regprocedure[],
                                                    tables regclass[], privileges text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    fmissing text;
    tmissing text;
    tgrants text;
BEGIN
    SELECT string_agg(f::text, ', ' ORDER BY f::text) INTO fmissing
      FROM unnest(functions) AS f WHERE NOT has_function_privilege(f::oid, 'EXECUTE');
    SELECT string_agg(format('%s on %s', t.priv, t.tbl), ', ' ORDER BY t.tbl::text),
           string_agg(format('GRANT %s ON %s TO %I;', t.priv, t.tbl, current_user), ' ' ORDER BY t.tbl::text)
      INTO tmissing, tgrants
      FROM unnest(tables, privileges) AS t(tbl, priv) WHERE NOT has_table_privilege(t.tbl::oid, t.priv);
    IF fmissing IS NOT NULL OR tmissing IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % also needs %', fn, concat_ws('; ', 'EXECUTE on ' || fmissing, tmissing)
            USING ERRCODE = '42501',
                  HINT = concat_ws(' ', 'Nothing was done. An operator grants them with the procedure:',
                                   CASE WHEN fmissing IS NOT NULL
                                        THEN format('GRANT EXECUTE ON FUNCTION %s TO %I;', fmissing, current_user) END,
                                   tgrants);
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_require_grants(text, regprocedure[], regclass[], text[]) IS
    'Refuses (42501) a caller of procedure fn that lacks EXECUTE on one of functions or privileges[i] on tables[i], '
    'naming every one missing and the GRANT statements to run.';

CREATE PROCEDURE @extschema@.capacity_convert(tbl regclass, time_column name, granularity text,
                                              hash_column name DEFAULT NULL, hash_partitions integer DEFAULT NULL,
                                              premake integer DEFAULT 4, retention interval DEFAULT NULL,
                                              retention_action text DEFAULT 'detach',
                                              dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
LANGUAGE plpgsql
AS $$
DECLARE
    d record;
    bound timestamptz;
    bound_lit text;
    bound_label text;
    cname name;
    tmpname name;
    histname name;
    tmpqual text;
    histqual text;
    newrel regclass;
    plan text[] := '{}';
    prep text[] := '{}';
    swap text[] := '{}';
    x record;
    failed boolean := false;
    bad bigint;
    t0 timestamptz;
    swap_ms float8;
    step integer := 0;
    s text;
    state text;
    leftover_bound boolean;
    leftover_copy regclass;
    cleanup text[];
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_convert'::text, ARRAY[
        '@extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text, interval)',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean)',
        '@extschema@.capacity_rollover(regclass, timestamptz, boolean)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text)',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion']::regclass[], ARRAY['INSERT']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF dry_run IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert: dry_run must not be NULL'
            USING ERRCODE = '22004', HINT = 'Pass true to read the plan, or omit it (false) to convert.';
    END IF;
    SELECT * INTO d FROM @extschema@.capacity_convert_check(tbl, time_column, granularity, hash_column,
                                                            hash_partitions, premake, retention_action, retention);
    PERFORM @extschema@.capacity_check_time(format('capacity_convert of %s', d.qual), as_of);
    bound := @extschema@.capacity_period_start(as_of, granularity, 1);
    bound_lit := @extschema@.capacity_time_literal(bound, d.time_type);
    bound_label := to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
    cname := @extschema@.capacity_derived_name(d.relname::text, 'convert_bound');
    tmpname := @extschema@.capacity_derived_name(d.relname::text, 'converting');
    histname := @extschema@.capacity_derived_name(d.relname::text, 'historical');
    tmpqual := format('%I.%I', d.nspname, tmpname);
    histqual := format('%I.%I', d.nspname, histname);
    -- what a cancelled or killed conversion of this table left behind: its
    -- bound constraint (which refuses every row from the bound on) and its
    -- empty partitioned copy; removed below, once the table is claimed
    SELECT k.oid IS NOT NULL INTO leftover_bound FROM pg_constraint k
     WHERE k.conrelid = tbl AND k.conname = cname AND k.contype = 'c';
    leftover_bound := coalesce(leftover_bound, false);
    SELECT c.oid::regclass INTO leftover_copy FROM pg_class c
     WHERE c.oid = to_regclass(tmpqual) AND c.relkind = 'p' AND NOT c.relispartition AND c.relowner = (SELECT t.relowner FROM pg_class t WHERE t.oid = tbl)
       AND EXISTS (SELECT 1 FROM pg_partitioned_table pt WHERE pt.partrelid = c.oid AND pt.partdefid = to_regclass(format('%I.%I', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'))));
    IF to_regclass(histqual) IS NOT NULL OR (to_regclass(tmpqual) IS NOT NULL AND leftover_copy IS NULL) THEN
        RAISE EXCEPTION 'matter_capacity: % or % already exists', tmpqual, histqual
            USING ERRCODE = '42P07', HINT = 'A previous conversion left it or another object has its name; drop or rename it first.';
    END IF;

    -- the new parent: same columns, defaults, identity, storage, comments;
    -- constraints and indexes re-created with their definitions
    prep := prep || format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED '
                           'INCLUDING STORAGE INCLUDING COMMENTS INCLUDING COMPRESSION INCLUDING STATISTICS) '
                           'PARTITION BY RANGE (%I)', tmpqual, d.qual, time_column);
    FOR x IN SELECT k.conname, k.contype, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
              WHERE k.conrelid = tbl AND k.contype IN ('c', 'f', 'p', 'u') AND k.conname <> cname
              ORDER BY k.contype, k.conname LOOP
        -- index-backed constraints get a temporary name; the swap gives them theirs
        prep := prep || format('ALTER TABLE %s ADD CONSTRAINT %I %s', tmpqual,
                               CASE WHEN x.contype IN ('p', 'u') THEN @extschema@.capacity_derived_name(x.conname::text, 'conv') ELSE x.conname END,
                               x.def);
        IF x.contype IN ('p', 'u') THEN
            swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.conname, @extschema@.capacity_derived_name(x.conname::text, 'historical'))
                         || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.conname::text, 'conv'), x.conname);
        END IF;
    END LOOP;
    FOR x IN SELECT i.relname, pg_get_indexdef(ix.indexrelid) AS def FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = tbl AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
              ORDER BY i.relname LOOP
        prep := prep || replace(x.def, format('INDEX %I ON %s ', x.relname, d.qual),
                                format('INDEX %I ON %s ', @extschema@.capacity_derived_name(x.relname::text, 'conv'), tmpqual));
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.relname, @extschema@.capacity_derived_name(x.relname::text, 'historical'))
                     || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.relname::text, 'conv'), x.relname);
    END LOOP;
    FOR x IN SELECT a.privilege_type, a.is_grantable,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner LOOP
        prep := prep || format('GRANT %s ON %s TO %s%s', x.privilege_type, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    -- column privileges too: an application role granted columns only
    -- would lose its access at the swap
    FOR x IN SELECT a.attname, p.privilege_type, p.is_grantable,
                    CASE WHEN p.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(p.grantee)) END AS grantee
               FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped,
                    aclexplode(a.attacl) p
              WHERE c.oid = tbl AND p.grantee <> c.relowner ORDER BY a.attnum, 2, 4 LOOP
        prep := prep || format('GRANT %s (%I) ON %s TO %s%s', x.privilege_type, x.attname, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF obj_description(tbl, 'pg_class') IS NOT NULL THEN
        prep := prep || format('COMMENT ON TABLE %s IS %L', tmpqual, obj_description(tbl, 'pg_class'));
    END IF;
    prep := prep || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'), tmpqual);
    IF d.owner <> current_user THEN
        prep := prep || format('ALTER TABLE %s OWNER TO %I', tmpqual, d.owner)
                     || format('ALTER TABLE %I.%I OWNER TO %I', d.nspname, @extschema@.capacity_derived_name(d.relname::text, 'default'), d.owner);
    END IF;

    -- the swap: identity values carried over, serial sequences re-owned,
    -- names exchanged, the old table attached as the historical partition
    swap := ARRAY[format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', d.qual)] || swap;
    FOR x IN SELECT a.attname FROM pg_attribute a WHERE a.attrelid = tbl AND a.attidentity <> '' AND NOT a.attisdropped LOOP
        swap := swap || format('SELECT setval(pg_get_serial_sequence(%L, %L), v) FROM pg_sequence_last_value(pg_get_serial_sequence(%L, %L)) v WHERE v IS NOT NULL',
                               tmpqual, x.attname, d.qual, x.attname)
                     || format('ALTER TABLE %s ALTER COLUMN %I DROP IDENTITY', d.qual, x.attname);
    END LOOP;
    FOR x IN SELECT s.oid::regclass AS seq, a.attname FROM pg_depend dp JOIN pg_class s ON s.oid = dp.objid
               JOIN pg_attribute a ON a.attrelid = dp.refobjid AND a.attnum = dp.refobjsubid
              WHERE dp.classid = 'pg_class'::regclass AND dp.refobjid = tbl AND dp.deptype = 'a' AND s.relkind = 'S' LOOP
        swap := swap || format('ALTER SEQUENCE %s OWNED BY %s.%I', x.seq, tmpqual, x.attname);
    END LOOP;
    swap := swap || format('ALTER TABLE %s RENAME TO %I', d.qual, histname)
                 || format('ALTER TABLE %s RENAME TO %I', tmpqual, d.relname)
                 || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', histqual,
                           format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (MINVALUE) TO (%s)', d.qual, histqual, bound_lit));

    plan := ARRAY[format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I < %s) NOT VALID',
                         d.qual, cname, time_column, time_column, bound_lit),
                  format('ALTER TABLE %s VALIDATE CONSTRAINT %I', d.qual, cname)];
    -- the undo of steps 1 and 3, for a failure, a cancel, or a retry after a kill
    cleanup := ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', d.qual, cname),
                     format('DROP TABLE IF EXISTS %s', tmpqual)];
    IF dry_run THEN
        RAISE NOTICE 'capacity_convert(%): dry run, nothing changed', d.qual;
        IF leftover_bound OR leftover_copy IS NOT NULL THEN
            RAISE NOTICE '0. first removes what an interrupted conversion left: %',
                         concat_ws(', ', CASE WHEN leftover_bound THEN format('constraint %I', cname) END, leftover_copy::text);
        END IF;
        RAISE NOTICE '1. under the lock timeout: %', plan[1];
        RAISE NOTICE '2. online (reads the table, blocks no writer): %', plan[2];
        FOREACH s IN ARRAY prep LOOP
            step := step + 1;
            RAISE NOTICE '3.%. %', step, s;
        END LOOP;
        step := 0;
        FOREACH s IN ARRAY swap LOOP
            step := step + 1;
            RAISE NOTICE '4.%. in one transaction under the lock timeout: %', step, s;
        END LOOP;
        RAISE NOTICE '5. capacity_manage(%, %, %, ...), then capacity_rollover: periods from % on', d.qual,
                     quote_ident(time_column), granularity, bound_label;
        RETURN;
    END IF;

    CALL @extschema@.capacity_require_commit('capacity_convert');   -- before anything is changed
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_convert');
    IF leftover_bound OR leftover_copy IS NOT NULL THEN
        -- no conversion of this table runs (we hold its claim): these are an
        -- interrupted one's; the copy is empty, so nothing is lost
        IF leftover_copy IS NOT NULL AND @extschema@.capacity_owner_value(tbl, format('SELECT 1 FROM %s LIMIT 1', leftover_copy)) IS NOT NULL THEN
            PERFORM @extschema@.capacity_convert_unclaim(tbl);
            RAISE EXCEPTION 'matter_capacity: % already exists and holds rows', leftover_copy
                USING ERRCODE = '42P07', HINT = 'It is not an interrupted conversion''s empty copy: drop or rename it first.';
        END IF;
        -- named now: once dropped, the copy's regclass prints as a number
        s := concat_ws(', ', CASE WHEN leftover_bound THEN format('constraint %I', cname) END, leftover_copy::text);
        PERFORM @extschema@.capacity_run_bounded(CASE WHEN leftover_copy IS NULL THEN cleanup[1:1]
                                                      WHEN NOT leftover_bound THEN cleanup[2:2] ELSE cleanup END,
                                                 format('removing what an interrupted conversion of %s left', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        RAISE NOTICE 'capacity_convert: removed what an interrupted conversion of % left: %', d.qual, s;
    END IF;
    -- 1. the bound, enforced from now on; 2. proven for the old rows online
    -- Every statement that reads the user's rows or can evaluate the owner's
    -- code (the bound's validation, the count of bad rows, the ATTACH of the
    -- old table) runs as the table's owner under SECURITY_RESTRICTED_OPERATION
    -- through capacity_run_as_owner (issue 19, kind 3); capacity_run_bounded
    -- still bounds its locks.  Our own catalog rows are written as the caller.
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(
                    ARRAY[format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', d.qual, plan[1])],
                    format('adding the bound constraint to %s', d.qual), ARRAY[tbl]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE;
    END;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_as_owner(tbl, plan[2:2]);
    EXCEPTION WHEN check_violation THEN
        failed := true;
    WHEN query_canceled OR OTHERS THEN
        -- cancelled (statement_timeout, pg_cancel_backend, Ctrl-C) or failed:
        -- the bound must not stay, it would refuse every row from the bound on
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
        PERFORM @extschema@.capacity_run_bounded(cleanup[1:1], format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = state, HINT = 'The bound constraint was removed; nothing changed. Run it again.';
    END;
    IF failed THEN
        -- the rows a zero-column SELECT returns, counted as the owner
        bad := @extschema@.capacity_run_as_owner(tbl, ARRAY[format('SELECT FROM %s WHERE NOT (%I IS NOT NULL AND %I < %s)',
                                                                   d.qual, time_column, time_column, bound_lit)]);
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: % has % rows whose % is NULL or not before %; nothing was converted',
                        d.qual, bad, quote_ident(time_column), bound_label
            USING ERRCODE = '23514',
                  HINT = 'Every row must belong to a period: fill or remove NULL times, and move rows dated in future periods.';
    END IF;
    COMMIT;

    -- 3. the new parent, invisible under its temporary name
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        FOREACH s IN ARRAY prep LOOP
            EXECUTE s;
        END LOOP;
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(cleanup[1:1], format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: the partitioned copy of % could not be prepared: %; nothing was converted', d.qual, s
            USING ERRCODE = '55000', HINT = 'Fix the cause; the dry run (dry_run => true) lists every statement.';
    END IF;
    COMMIT;

    -- 4. the swap, short and bounded
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    -- with the policy and the conversion's row in the same transaction (about
    -- 2 ms more under the lock): a kill after the swap's commit can no longer
    -- leave a partitioned table that nothing manages or backfills
    t0 := clock_timestamp();
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(swap, format('swapping %s for its partitioned copy', d.qual), ARRAY[tbl]);
        -- the table is locked until the commit: what follows waits for no
        -- lock longer than the lock timeout either (a failure undoes the swap)
        PERFORM pg_catalog.set_config('lock_timeout', coalesce(current_setting('matter_capacity.lock_timeout', true), '100ms'), true);
        newrel := to_regclass(d.qual);
        PERFORM @extschema@.capacity_manage(newrel, time_column, granularity, hash_column, hash_partitions,
                                            premake, retention, retention_action, true);
        swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
        INSERT INTO @extschema@.capacity_conversion
            (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
             key_columns, state, converted_at, convert_swap_ms)
        VALUES (newrel, tbl, time_column, granularity, hash_column, hash_partitions, bound,
                d.key_columns, 'converted', clock_timestamp(), swap_ms);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(cleanup, format('removing the bound constraint from %s', d.qual), ARRAY[tbl]);
        COMMIT;
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = state, HINT = 'Nothing changed; run it again when the table is less busy.';
    END IF;
    COMMIT;

    -- 5. the periods from the bound on
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM count(*) FROM @extschema@.capacity_rollover(newrel, as_of);
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_convert: % is partitioned; % holds the rows before %; the swap held its lock % ms. Next: CALL capacity_convert_backfill(%::regclass)',
                 d.qual, histqual, bound_label, round(swap_ms::numeric, 1), quote_literal(d.qual);
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_convert IS
    'Turn an ordinary table into a managed partitioned table of the same name online; the old rows stay in a historical partition until capacity_convert_backfill.';
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert(regclass, name, text, name, integer, integer, interval, text, boolean, timestamptz) FROM PUBLIC;

CREATE PROCEDURE @extschema@.capacity_convert_backfill(tbl regclass, batch_rows integer DEFAULT 10000,
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
    stagedefault text;
    p timestamptz;
    starts timestamptz[];
    plist timestamptz[];
    gap timestamptz[];
    q timestamptz;
    texpr text;
    pname text;
    pqual text;
    stmt text;
    nblocks bigint;
    per_page float8;
    pages bigint;
    n bigint;
    batches integer := 0;
    made integer;
    remade integer := 0;
    cols text;
    why text;
    swap text[];
    x record;
    t0 timestamptz;
    failed boolean;
    outdated boolean;
    err text;
    blk integer := current_setting('block_size')::integer;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_convert_backfill'::text, ARRAY[
        '@extschema@.capacity_convert_sync()',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_convert_verify(regclass)',
        '@extschema@.capacity_note_backfill_copies(regclass)',
        '@extschema@.capacity_owner_value(regclass, text)',
        '@extschema@.capacity_period_ddl(regclass, name, text, timestamptz, name, integer)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text)',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion', '@extschema@.capacity_conversion']::regclass[], ARRAY['SELECT', 'UPDATE']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert_backfill cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    CALL @extschema@.capacity_require_commit('capacity_convert_backfill');
    IF batch_rows IS NULL OR batch_rows < 1 THEN
        RAISE EXCEPTION 'matter_capacity: batch_rows % must be a positive number', batch_rows
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical.';
    END IF;
    IF max_batches < 0 THEN
        RAISE EXCEPTION 'matter_capacity: max_batches % must not be negative', max_batches
            USING ERRCODE = '22023', HINT = 'Pass the number of batches this CALL may run, or NULL (the default) for all of them and the switch.';
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
    -- one backfill of a table at a time (the worker's slice and a manual CALL)
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_convert_backfill');
    SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype
      INTO nsp, rel, owner, typ
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = cv.time_column
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    stagename := @extschema@.capacity_derived_name(rel::text, 'backfill');
    stagequal := format('%I.%I', nsp, stagename);
    stagedefault := format('%I.%I', nsp, @extschema@.capacity_derived_name(stagename::text, 'default'));
    -- the time of a row as the periods count it (UTC)
    texpr := CASE WHEN typ = 'timestamptz'::regtype THEN quote_ident(cv.time_column)
                  ELSE format('(%I::pg_catalog.timestamp AT TIME ZONE ''UTC'')', cv.time_column) END;

    <<attempt>>
    LOOP
        IF cv.state = 'backfilling' THEN
            -- a copy that missed a write (its replay failed) or no longer has
            -- the table's shape (a column, constraint or index changed during
            -- the backfill) could not be switched in: it is made again
            why := coalesce(cv.stale, @extschema@.capacity_convert_drift(tbl, cv.staging));
            IF why IS NOT NULL THEN
                remade := remade + 1;
                IF remade > 3 THEN
                    PERFORM @extschema@.capacity_convert_unclaim(tbl);
                    RAISE EXCEPTION 'matter_capacity: the backfill copy of % went out of date % times in this CALL: %', qual, remade - 1, why
                        USING ERRCODE = '55000',
                              HINT = 'The table''s shape keeps changing; CALL capacity_convert_backfill again after the schema change is done. The historical partition serves every row meanwhile.';
                END IF;
                RAISE NOTICE 'capacity_convert_backfill: the copy of % is out of date (%); making it again', qual, why;
                PERFORM @extschema@.capacity_run_bounded(ARRAY[
                            format('DROP TRIGGER IF EXISTS capacity_convert_sync ON %s', cv.historical::text),
                            format('DROP TRIGGER IF EXISTS capacity_convert_truncate ON %s', cv.historical::text),
                            format('DROP TABLE IF EXISTS %s', cv.staging::text)],
                        format('discarding the out-of-date copy of %s', qual), ARRAY[cv.historical, cv.staging]);
                UPDATE @extschema@.capacity_conversion c
                   SET state = 'converted', staging = NULL, stale = NULL, next_page = 0, rows_copied = 0,
                       updated_at = clock_timestamp()
                 WHERE c.table_name = tbl
                RETURNING * INTO cv;
                COMMIT;
                PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            END IF;
        END IF;

        IF cv.state = 'converted' THEN
            -- a preparation cut short (killed) left its staging table: it is
            -- ours (our name, partitioned, our default partition) and no
            -- trigger feeds it yet, so it is dropped and made again
            IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
                        WHERE c.oid = to_regclass(stagequal) AND NOT c.relispartition
                          AND pt.partdefid = to_regclass(stagedefault)) THEN
                EXECUTE format('DROP TABLE %s', stagequal);
            END IF;
            -- the periods that hold rows, read as the owner; rows outside
            -- the years 1000 to 9998 (a stray 1970 row is a period of its own,
            -- -infinity is none) and rows of periods not made wait in the
            -- default partition, as the rollover keeps them.  (Rows older
            -- than the policy's retention get their periods too, and
            -- retention then retires those periods as the policy says: moving
            -- them back into the table at the switch would hold its lock
            -- for as long, and fire the owner's insert triggers on them.)
            starts := @extschema@.capacity_owner_value(tbl, format(
                          'SELECT pg_catalog.array_agg(DISTINCT @extschema@.capacity_period_start(%s, %L, 0) '
                          'ORDER BY @extschema@.capacity_period_start(%s, %L, 0))::pg_catalog.text FROM ONLY %s '
                          'WHERE %I >= %s AND %I < %s', texpr, cv.granularity, texpr, cv.granularity, cv.historical::text,
                          cv.time_column, @extschema@.capacity_time_literal('1000-01-01 00:00+00'::timestamptz, typ),
                          cv.time_column, @extschema@.capacity_time_literal(cv.bound, typ)))::timestamptz[];
            -- and the periods between them up to the bound, unless a gap is
            -- longer than 32 periods (a stray row years away)
            plist := '{}';
            FOREACH p IN ARRAY coalesce(starts, '{}') || cv.bound LOOP
                IF cardinality(plist) > 0 THEN
                    gap := '{}';
                    q := @extschema@.capacity_period_start(plist[cardinality(plist)], cv.granularity, 1);
                    WHILE q < p AND cardinality(gap) <= 32 LOOP
                        gap := gap || q;
                        q := @extschema@.capacity_period_start(q, cv.granularity, 1);
                    END LOOP;
                    IF q >= p THEN
                        plist := plist || gap;
                    END IF;
                END IF;
                IF p < cv.bound THEN
                    plist := plist || p;
                END IF;
            END LOOP;
            -- constraints, indexes and foreign keys as the parent has them, so the
            -- period tables attach later without building or validating anything
            EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING INDEXES '
                           'INCLUDING CONSTRAINTS INCLUDING STORAGE) PARTITION BY RANGE (%I)', stagequal, qual, cv.time_column);
            FOR x IN SELECT k.conname, pg_get_constraintdef(k.oid) AS def FROM pg_constraint k
                      WHERE k.conrelid = tbl AND k.contype = 'f' LOOP
                EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', stagequal, x.conname, x.def);
            END LOOP;
            EXECUTE format('CREATE TABLE %s PARTITION OF %s DEFAULT', stagedefault, stagequal);
            IF owner <> current_user THEN
                EXECUTE format('ALTER TABLE %s OWNER TO %I', stagequal, owner);
                EXECUTE format('ALTER TABLE %s OWNER TO %I', stagedefault, owner);
            END IF;
            made := 0;
            FOREACH p IN ARRAY plist LOOP
                pname := @extschema@.capacity_partition_name(rel::text, cv.granularity, p);
                pqual := format('%I.%I', nsp, pname);
                -- built as the rollover builds a period (src/partitions.c)
                FOREACH stmt IN ARRAY @extschema@.capacity_period_ddl(tbl, cv.time_column, cv.granularity, p,
                                                                      cv.hash_column, cv.hash_partitions) LOOP
                    EXECUTE stmt;
                END LOOP;
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', stagequal, pqual,
                               @extschema@.capacity_time_literal(p, typ),
                               @extschema@.capacity_time_literal(@extschema@.capacity_period_start(p, cv.granularity, 1), typ));
                IF owner <> current_user THEN
                    FOR x IN SELECT c.oid::regclass AS r FROM pg_partition_tree(pqual::regclass) t JOIN pg_class c ON c.oid = t.relid
                              WHERE c.relkind IN ('r', 'p') LOOP
                        EXECUTE format('ALTER TABLE %s OWNER TO %I', x.r, owner);
                    END LOOP;
                END IF;
                made := made + 1;
                -- many periods (years of days) would outgrow the lock table in
                -- one transaction: the copy is private, so commit as we go
                IF made % 20 = 0 THEN
                    COMMIT;
                    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
                END IF;
            END LOOP;
            UPDATE @extschema@.capacity_conversion c
               SET staging = stagequal::regclass, state = 'backfilling', next_page = 0, rows_copied = 0, stale = NULL,
                   pages_total = pg_relation_size(cv.historical) / blk,
                   backfill_started_at = coalesce(c.backfill_started_at, clock_timestamp()), updated_at = clock_timestamp()
             WHERE c.table_name = tbl;
            -- the write replay, as the owner; TRUNCATE empties the copy too
            PERFORM @extschema@.capacity_run_bounded(ARRAY[
                        format('CREATE TRIGGER capacity_convert_sync AFTER INSERT OR UPDATE OR DELETE ON %s '
                               'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                               cv.historical::text, stagequal),
                        format('CREATE TRIGGER capacity_convert_truncate AFTER TRUNCATE ON %s '
                               'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capacity_convert_sync(%L)',
                               cv.historical::text, stagequal)],
                    format('installing the write replay on %s', cv.historical::text), ARRAY[cv.historical]);
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
            RAISE NOTICE 'capacity_convert_backfill: % periods from % to % prepared; copying % pages of %',
                         (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = cv.staging) - 1,
                         coalesce(to_char(starts[1] AT TIME ZONE 'UTC', 'YYYY-MM-DD'), '-'),
                         to_char(cv.bound AT TIME ZONE 'UTC', 'YYYY-MM-DD'), cv.pages_total, cv.historical;
        END IF;

        -- the columns copied: generated columns are computed by the copy
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
          FROM pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';

        -- batches of pages, one transaction each; the watermark commits with them
        LOOP
            nblocks := pg_relation_size(cv.historical) / blk;
            EXIT WHEN cv.next_page >= nblocks;
            IF max_batches IS NOT NULL AND batches >= max_batches THEN
                PERFORM @extschema@.capacity_convert_unclaim(tbl);
                RAISE NOTICE 'capacity_convert_backfill: stopped after % batches at page % of %; CALL it again to go on',
                             batches, cv.next_page, nblocks;
                RETURN;
            END IF;
            IF cv.stale IS NOT NULL OR @extschema@.capacity_convert_drift(tbl, cv.staging) IS NOT NULL THEN
                CONTINUE attempt;
            END IF;
            SELECT CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages ELSE 100 END
              INTO per_page FROM pg_class c WHERE c.oid = cv.historical;
            pages := greatest(1, ceil(batch_rows / per_page))::bigint;
            n := @extschema@.capacity_run_as_owner(tbl, ARRAY[format(
                     'INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE ctid >= %L::tid AND ctid < %L::tid '
                     'FOR SHARE ON CONFLICT DO NOTHING', cv.staging::text, cols, cols, cv.historical::text,
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
        -- proven by constraints, so the lock is held for catalog work only.
        -- The parent first, under the lock timeout; once it is ours no
        -- application statement holds a partition, so every further lock is
        -- free unless another session holds a partition itself (a long reader
        -- of the historical table, autovacuum): then the attempt ends at once
        -- (10 ms) instead of keeping the application queued behind the parent
        -- for a second timeout.  Under the locks the copy is checked once
        -- more (no write missed, the same shape: nothing to build).
        swap := ARRAY[format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', qual),
                      'SELECT pg_catalog.set_config(''lock_timeout'', ''10ms'', true)',
                      format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', qual),
                      format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', cv.historical::text),
                      format('SELECT @extschema@.capacity_convert_verify(%L::pg_catalog.regclass)', qual),
                      format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                             format('INSERT INTO %s (%s) SELECT %s FROM ONLY %s WHERE ctid >= %L::tid ON CONFLICT DO NOTHING',
                                    cv.staging::text, cols, cols, cv.historical::text, format('(%s,0)', cv.next_page))),
                      format('SELECT @extschema@.capacity_note_backfill_copies(%L::pg_catalog.regclass)', qual),   -- copies are not growth
                      format('ALTER TABLE %s DETACH PARTITION %s', qual, cv.historical::text),
                      format('DROP TRIGGER capacity_convert_sync ON %s', cv.historical::text),
                      format('DROP TRIGGER IF EXISTS capacity_convert_truncate ON %s', cv.historical::text)];
        FOR x IN SELECT i.inhrelid::regclass AS part, pg_get_expr(c.relpartbound, c.oid) AS bnd
                   FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                  WHERE i.inhparent = cv.staging ORDER BY 2 LOOP
            IF x.bnd = 'DEFAULT' THEN
                CONTINUE;
            END IF;
            swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L, %L]::pg_catalog.text[])', qual,
                                   format('ALTER TABLE %s DETACH PARTITION %s', cv.staging::text, x.part),
                                   format('ALTER TABLE %s ATTACH PARTITION %s %s', qual, x.part, x.bnd));
        END LOOP;
        -- rows of no prepared period (written during the backfill, or outside
        -- the years periods are made for) go to the table: its default partition
        swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                               format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM %s', qual, cols, cols, stagedefault))
                     || format('DROP TABLE %s', cv.staging::text);
        -- Every row is copied and writes are replayed, so a switch that cannot
        -- get its locks loses nothing by waiting: three rounds, a second apart
        -- with nothing held, then a warning and a clean return; the next CALL
        -- (or the worker's next slice) switches.
        outdated := false;
        FOR rnd IN 1 .. 3 LOOP
            failed := false;
            t0 := clock_timestamp();
            BEGIN
                PERFORM @extschema@.capacity_run_bounded(swap, format('switching %s to its backfilled periods', qual),
                                                         ARRAY[tbl, cv.historical, cv.staging]);
            EXCEPTION WHEN lock_not_available THEN
                failed := true;
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
            WHEN object_not_in_prerequisite_state THEN
                -- capacity_convert_verify: the copy is out of date
                outdated := true;
            END;
            EXIT WHEN NOT failed;
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            IF rnd < 3 THEN
                PERFORM pg_sleep(1);
            END IF;
        END LOOP;
        IF outdated THEN
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            SELECT * INTO cv FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl;
            CONTINUE attempt;
        END IF;
        EXIT attempt;
    END LOOP;
    IF failed THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE WARNING 'capacity_convert_backfill: % is copied but not yet switched to its period partitions: %', qual, err
            USING HINT = format('Nothing is lost: %s stays attached and its writes are replayed into the copy. '
                                'CALL capacity_convert_backfill(%L) again when the table is less busy '
                                '(the background worker retries on its own); pg_locks shows who holds it.',
                                cv.historical, qual);
        RETURN;
    END IF;
    UPDATE @extschema@.capacity_conversion c
       SET state = 'done', staging = NULL, finished_at = clock_timestamp(), updated_at = clock_timestamp(),
           backfill_swap_ms = extract(epoch FROM clock_timestamp() - t0) * 1000
     WHERE c.table_name = tbl
    RETURNING * INTO cv;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_convert_backfill: % done: % rows in period partitions; the switch held its lock % ms. The old table % is detached: drop it once checked.',
                 qual, cv.rows_copied, round(cv.backfill_swap_ms::numeric, 1), cv.historical;
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_convert_backfill IS
    'Move the historical partition left by capacity_convert into period partitions, a batch per transaction; resumable; progress in capacity_conversions.';
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert_backfill(regclass, integer, integer) FROM PUBLIC;

-- A default partition too big for the rollover's rescue.  Each period the
-- rescue attaches makes PostgreSQL prove that the default partition holds
-- no row of it: a scan of all of it under ACCESS EXCLUSIVE (0.6-0.9 s at
-- 5,000,000 rows, writers waiting; docs/benchmarks.md).  When its rows all
-- lie after the table's last partition (a scheduler down for weeks) the
-- default partition becomes a historical partition [last bound, MAXVALUE)
-- instead, proven by a CHECK validated online, in one short transaction
-- that puts an empty default partition in its place; the conversion's
-- backfill then moves its rows into periods, a batch per transaction.
-- capacity_rollover_proc() and the worker do this on their own above
-- matter_capacity.rescue_backfill_rows rows (src/rollover.c).

-- The suffix the default partition of tbl and its indexes take when it
-- becomes the historical partition: historical, historical2, ... up to 9,
-- the first one no table or index name in its schema has yet (a detached
-- old one is kept until the DBA drops it); NULL when all are taken.
CREATE FUNCTION @extschema@.capacity_historical_suffix(tbl regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
SELECT s.suffix
  FROM pg_class t JOIN pg_partitioned_table pt ON pt.partrelid = t.oid,
       LATERAL (SELECT i, 'historical' || CASE WHEN i > 1 THEN i::text ELSE '' END AS suffix FROM generate_series(1, 9) i) s
 WHERE t.oid = tbl
   AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = t.relnamespace
                      AND c.relname = @extschema@.capacity_derived_name(t.relname::text, s.suffix))
   AND NOT EXISTS (SELECT 1 FROM pg_index x JOIN pg_class ix ON ix.oid = x.indexrelid
                    WHERE x.indrelid = pt.partdefid
                      AND EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = ix.relnamespace
                                     AND c.relname = @extschema@.capacity_derived_name(ix.relname::text, s.suffix)))
 ORDER BY s.i
 LIMIT 1
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_historical_suffix(regclass) FROM PUBLIC;

-- Why the default partition of tbl cannot be emptied this way (one row:
-- SQLSTATE, message, hint), or no row.  Reads as the owner; changes nothing.
CREATE FUNCTION @extschema@.capacity_empty_default_refusal(tbl regclass, as_of timestamptz)
RETURNS TABLE(code text, message text, hint text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pol @extschema@.capacity_policy;
    dflt regclass;
    typ regtype;
    last_to timestamptz;
    lower_lit text;
    n bigint;
    rel name;
    nsp name;
BEGIN
    IF tbl IS NULL OR as_of IS NULL THEN
        RETURN QUERY SELECT '22004', 'matter_capacity: capacity_empty_default: table and as_of must not be NULL',
                            'capacity_empty_default(''"Event"'')';
        RETURN;
    END IF;
    SELECT * INTO pol FROM @extschema@.capacity_policy p WHERE p.table_name = tbl;
    IF NOT FOUND THEN
        RETURN QUERY SELECT '42704', format('matter_capacity: table %s is not managed', tbl),
                            'Register it first with capacity_manage().';
        RETURN;
    END IF;
    SELECT c.relname, n2.nspname INTO rel, nsp FROM pg_class c JOIN pg_namespace n2 ON n2.oid = c.relnamespace WHERE c.oid = tbl;
    IF NOT pg_has_role(current_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = tbl), 'USAGE') THEN
        RETURN QUERY SELECT '42501', format('matter_capacity: must be owner of table %s to empty its default partition', tbl),
                            'Run it as the table''s owner.';
        RETURN;
    END IF;
    SELECT nullif(pt.partdefid, 0)::regclass INTO dflt FROM pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF dflt IS NULL THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: %s has no default partition', tbl),
                            'Nothing to empty.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state <> 'done') THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: a backfill of %s is under way', tbl),
                            format('CALL capacity_convert_backfill(%L) finishes it; capacity_conversions shows how far it is.', tbl::text);
        RETURN;
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = dflt) <> 'r' THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: the default partition %s of %s is not a plain table', dflt, tbl),
                            'Only a plain default partition can become the historical partition; CALL capacity_rollover_proc() moves its rows period by period.';
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = tbl AND x.indisprimary) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: %s has no primary key, so writes while its default partition is emptied could not be replayed', tbl),
                            'Add a primary key that includes the partition columns, or let CALL capacity_rollover_proc() move the rows period by period.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f' AND k.conparentid = 0 AND k.confrelid IN (tbl, dflt)) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: a foreign key references %s', tbl),
                            'Detaching the default partition would check every referencing row; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    IF @extschema@.capacity_publications_of(ARRAY[tbl, dflt]) IS NOT NULL THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: %s is published (%s)', tbl, @extschema@.capacity_publications_of(ARRAY[tbl, dflt])),
                            'The backfill''s copies would reach subscribers a second time; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = dflt AND NOT g.tgisinternal AND g.tgparentid = 0) THEN
        RETURN QUERY SELECT '0A000', format('matter_capacity: the default partition %s has triggers of its own', dflt),
                            'The backfill''s copies would not fire them; CALL capacity_rollover_proc() moves the rows period by period.';
        RETURN;
    END IF;
    -- every row after the last partition: the default partition can take
    -- the range [last bound, MAXVALUE), proven by a constraint
    SELECT max(t.range_to) INTO last_to FROM @extschema@.capacity_partition_tree(tbl) t
     WHERE t.level = 1 AND NOT t.is_default;
    IF last_to = 'infinity' THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: a partition of %s already reaches MAXVALUE', tbl),
                            'Its default partition holds rows no range can take; CALL capacity_rollover_proc() moves them period by period.';
        RETURN;
    END IF;
    IF last_to >= @extschema@.capacity_period_start(as_of, pol.granularity, pol.premake + 1) THEN
        RETURN QUERY SELECT '55000', format('matter_capacity: the partitions of %s reach past as_of plus premake periods', tbl),
                            'The rollover keeps rows beyond that in the default partition; nothing to empty.';
        RETURN;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = pol.time_column;
    lower_lit := CASE WHEN last_to IS NULL THEN NULL ELSE @extschema@.capacity_time_literal(last_to, typ) END;
    n := @extschema@.capacity_owner_value(tbl, format('SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY %s WHERE %I IS NULL%s LIMIT 1000000) s',
                                                      dflt, pol.time_column,
                                                      CASE WHEN lower_lit IS NULL THEN '' ELSE format(' OR %I < %s', pol.time_column, lower_lit) END))::bigint;
    IF n > 0 THEN
        RETURN QUERY SELECT '55000',
                            format('matter_capacity: %s rows of the default partition %s have no %I or one before %s, the end of the last partition',
                                   n, dflt, pol.time_column, to_char(last_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC'),
                            'Only a default partition whose rows all come after the last partition can become the historical partition; '
                            'CALL capacity_rollover_proc() moves such rows period by period (rows outside the policy stay).';
        RETURN;
    END IF;
    IF @extschema@.capacity_historical_suffix(tbl) IS NULL THEN
        RETURN QUERY SELECT '42P07', format('matter_capacity: the names %s to %s (or those of its indexes) are taken',
                                           @extschema@.capacity_derived_name(rel::text, 'historical'), @extschema@.capacity_derived_name(rel::text, 'historical9')),
                            'Earlier conversions left them: drop the detached old tables once checked.';
    END IF;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_empty_default_refusal(regclass, timestamptz) IS
    'Why CALL capacity_empty_default(tbl) would refuse (SQLSTATE, message, hint), or no row; changes nothing.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_empty_default_refusal(regclass, timestamptz) FROM PUBLIC;

-- A failed capacity_empty_default: its bound constraint removed (under the
-- lock timeout; when even that lock is not had, the next rollover removes
-- it: rollover.c drop_leftover_bound), the claim released, the error raised.
CREATE PROCEDURE @extschema@.capacity_empty_default_undo(tbl regclass, dflt regclass, cname name, qual text,
                                                         why text, state text)
LANGUAGE plpgsql
AS $$
DECLARE
    left_bound boolean := false;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', dflt, cname)],
                                                 format('removing the bound constraint from %s', dflt), ARRAY[dflt]);
    EXCEPTION WHEN lock_not_available OR query_canceled THEN
        -- (a second cancel: the claim is released all the same)
        left_bound := true;
    END;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE EXCEPTION 'matter_capacity: the default partition of % was not emptied: %', qual, why
        USING ERRCODE = coalesce(state, '55000'),
              HINT = CASE WHEN left_bound
                          THEN format('Nothing was moved. Its constraint %I could not be removed yet (the lock was not available): the next rollover removes it; until then a row before the last partition''s end is refused.', cname)
                          ELSE 'The bound constraint was removed; nothing changed. Run it again when the table is less busy.' END;
END
$$;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_empty_default_undo(regclass, regclass, name, text, text, text) FROM PUBLIC;

CREATE PROCEDURE @extschema@.capacity_empty_default(tbl regclass, batch_rows integer DEFAULT 10000,
                                                    max_batches integer DEFAULT NULL,
                                                    as_of timestamptz DEFAULT now())
LANGUAGE plpgsql
AS $$
DECLARE
    pol @extschema@.capacity_policy;
    refusal record;
    dflt regclass;
    dq text;
    qual text;
    nsp name;
    rel name;
    owner name;
    typ regtype;
    last_to timestamptz;
    lower_lit text;
    bound timestamptz;
    cname name;
    histname name;
    suffix text;
    defname name;
    keys name[];
    swap text[];
    x record;
    s text;
    state text;
    failed boolean := false;
    t0 timestamptz;
    swap_ms float8;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM @extschema@.capacity_require_grants('capacity_empty_default'::text, ARRAY[
        '@extschema@.capacity_empty_default_refusal(regclass, timestamptz)',
        '@extschema@.capacity_empty_default_undo(regclass, regclass, name, text, text, text)',
        '@extschema@.capacity_historical_suffix(regclass)',
        '@extschema@.capacity_publications_of(regclass[])',
        '@extschema@.capacity_owner_value(regclass, text)',
        '@extschema@.capacity_convert_claim(regclass, text)',
        '@extschema@.capacity_convert_unclaim(regclass)',
        '@extschema@.capacity_run_as_owner(regclass, text[])',
        '@extschema@.capacity_run_bounded(text[], text, regclass[])']::regprocedure[],
        ARRAY['@extschema@.capacity_conversion', '@extschema@.capacity_conversion']::regclass[], ARRAY['INSERT', 'UPDATE']::text[]);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_empty_default cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    IF batch_rows IS NULL OR batch_rows < 1 OR max_batches < 0 THEN
        RAISE EXCEPTION 'matter_capacity: capacity_empty_default: batch_rows % must be positive and max_batches % not negative', batch_rows, max_batches
            USING ERRCODE = '22023', HINT = 'Each batch is one transaction; 10000 rows is typical. max_batches => 0 only makes the default partition the historical partition.';
    END IF;
    CALL @extschema@.capacity_require_commit('capacity_empty_default');
    -- a backfill under way (this one's, interrupted, or a conversion's) goes on
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_conversion c WHERE c.table_name = tbl AND c.state <> 'done') THEN
        IF max_batches IS DISTINCT FROM 0 THEN
            CALL @extschema@.capacity_convert_backfill(tbl, batch_rows, max_batches);
        END IF;
        RETURN;
    END IF;
    -- the bound constraint an interrupted call left (cancelled or killed
    -- between adding it and the swap) refuses rows the default partition
    -- takes: it goes first, whatever is decided next
    SELECT k.conname, k.conrelid::regclass AS rel INTO x FROM pg_constraint k
     WHERE k.conrelid = (SELECT nullif(pt.partdefid, 0) FROM pg_partitioned_table pt WHERE pt.partrelid = tbl)
       AND k.conname = @extschema@.capacity_derived_name((SELECT c.relname FROM pg_class c WHERE c.oid = tbl)::text, 'default_bound')
       AND k.contype = 'c'
       AND obj_description(k.oid, 'pg_constraint') = 'matter_capacity: capacity_empty_default''s bound, removed once the default partition is the historical partition';
    IF FOUND THEN
        PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_empty_default');
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', x.rel, x.conname)],
                                                 format('removing the bound constraint an interrupted call left on %s', x.rel), ARRAY[x.rel]);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE NOTICE 'capacity_empty_default: removed the constraint % an interrupted call left on %', x.conname, x.rel;
    END IF;
    SELECT * INTO refusal FROM @extschema@.capacity_empty_default_refusal(tbl, as_of);
    IF FOUND THEN
        RAISE EXCEPTION '%', refusal.message USING ERRCODE = refusal.code, HINT = refusal.hint;
    END IF;
    PERFORM @extschema@.capacity_convert_claim(tbl, 'capacity_empty_default');
    SELECT * INTO pol FROM @extschema@.capacity_policy p WHERE p.table_name = tbl;
    SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), a.atttypid::regtype, nullif(pt.partdefid, 0)::regclass
      INTO nsp, rel, owner, typ, dflt
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = pol.time_column
      JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
     WHERE c.oid = tbl;
    qual := format('%I.%I', nsp, rel);
    dq := dflt::text;
    SELECT max(t.range_to) INTO last_to FROM @extschema@.capacity_partition_tree(tbl) t
     WHERE t.level = 1 AND NOT t.is_default;
    lower_lit := CASE WHEN last_to IS NULL THEN 'MINVALUE' ELSE @extschema@.capacity_time_literal(last_to, typ) END;
    -- the backfill makes periods up to the policy's horizon; later rows go
    -- to the default partition at its switch, and the rollover on from there
    bound := @extschema@.capacity_period_start(as_of, pol.granularity, pol.premake + 1);
    cname := @extschema@.capacity_derived_name(rel::text, 'default_bound');
    defname := (SELECT c.relname FROM pg_class c WHERE c.oid = dflt);
    suffix := @extschema@.capacity_historical_suffix(tbl);
    histname := @extschema@.capacity_derived_name(rel::text, suffix);
    SELECT array_agg(a.attname ORDER BY k.n) INTO keys
      FROM pg_index pk, unnest(pk.indkey::smallint[]) WITH ORDINALITY k(att, n), pg_attribute a
     WHERE pk.indrelid = tbl AND pk.indisprimary AND a.attrelid = tbl AND a.attnum = k.att;

    -- 1. the bound, enforced from now on (a brief ACCESS EXCLUSIVE on the
    -- default partition); until the swap a row with no time or one before
    -- the last partition's end, which would have gone to the default
    -- partition, is refused (23514).  2. proven for its rows online
    -- (SHARE UPDATE EXCLUSIVE: no writer waits), as the owner.
    BEGIN
        -- (its comment marks it ours: the rollover removes a leftover by it,
        -- src/rollover.c DEFAULT_BOUND_COMMENT)
        PERFORM @extschema@.capacity_run_bounded(ARRAY[
                    format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL%s) NOT VALID', dq, cname, pol.time_column,
                           CASE WHEN last_to IS NULL THEN '' ELSE format(' AND %I >= %s', pol.time_column, lower_lit) END),
                    format('COMMENT ON CONSTRAINT %I ON %s IS %L', cname, dq, 'matter_capacity: capacity_empty_default''s bound, removed once the default partition is the historical partition')],
                    format('adding the bound constraint to %s', dq), ARRAY[dflt]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        PERFORM @extschema@.capacity_convert_unclaim(tbl);
        RAISE;
    END;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[
                    format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                           format('ALTER TABLE %s VALIDATE CONSTRAINT %I', dq, cname))],
                    format('validating the bound constraint of %s', dq), ARRAY[dflt]);
    EXCEPTION WHEN query_canceled OR OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
    END;
    IF failed THEN
        -- a row that came in between the check and the constraint, a cancel:
        -- the bound must not stay, it refuses rows the default partition takes
        CALL @extschema@.capacity_empty_default_undo(tbl, dflt, cname, qual, s, state);
    END IF;
    COMMIT;

    -- 3. the swap, short and bounded: catalog work only (the constraint
    -- proves the bounds; the new default partition is empty)
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    swap := ARRAY[format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', qual),
                  'SELECT pg_catalog.set_config(''lock_timeout'', ''10ms'', true)',
                  format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', dq),
                  format('ALTER TABLE %s DETACH PARTITION %s', qual, dq),
                  format('ALTER TABLE %s RENAME TO %I', dq, histname)];
    FOR x IN SELECT i.relname FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = dflt ORDER BY 1 LOOP
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', nsp, x.relname, @extschema@.capacity_derived_name(x.relname::text, suffix));
    END LOOP;
    swap := swap || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, defname, qual);
    IF owner <> current_user THEN
        swap := swap || format('ALTER TABLE %I.%I OWNER TO %I', nsp, defname, owner);
    END IF;
    swap := swap || format('SELECT @extschema@.capacity_run_as_owner(%L::pg_catalog.regclass, ARRAY[%L]::pg_catalog.text[])', qual,
                           format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%s) TO (MAXVALUE)', qual, nsp, histname, lower_lit));
    t0 := clock_timestamp();
    FOR rnd IN 1 .. 3 LOOP
        failed := false;
        BEGIN
            PERFORM @extschema@.capacity_run_bounded(swap, format('making the default partition of %s its historical partition', qual),
                                                     ARRAY[tbl, dflt]);
            -- the conversion's row in the same transaction, under the lock
            -- timeout too (the table stays locked until the commit); a
            -- failure or a cancel here undoes the swap and then the bound
            PERFORM pg_catalog.set_config('lock_timeout', coalesce(current_setting('matter_capacity.lock_timeout', true), '100ms'), true);
            swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
            INSERT INTO @extschema@.capacity_conversion AS c
                (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
                 key_columns, state, converted_at, convert_swap_ms)
            VALUES (tbl, format('%I.%I', nsp, histname)::regclass, pol.time_column, pol.granularity, pol.hash_column,
                    pol.hash_partitions, bound, keys, 'converted', clock_timestamp(), swap_ms)
            ON CONFLICT (table_name) DO UPDATE
               SET historical = excluded.historical, staging = NULL, time_column = excluded.time_column,
                   granularity = excluded.granularity, hash_column = excluded.hash_column,
                   hash_partitions = excluded.hash_partitions, bound = excluded.bound, key_columns = excluded.key_columns,
                   state = 'converted', pages_total = NULL, next_page = 0, rows_copied = 0,
                   converted_at = excluded.converted_at, convert_swap_ms = excluded.convert_swap_ms,
                   backfill_started_at = NULL, updated_at = NULL, finished_at = NULL, backfill_swap_ms = NULL, stale = NULL;
        EXCEPTION WHEN query_canceled OR OTHERS THEN
            failed := true;
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
        END;
        EXIT WHEN NOT failed OR state <> '55P03';
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF rnd < 3 THEN
            BEGIN
                PERFORM pg_sleep(1);
            EXCEPTION WHEN query_canceled THEN
                -- cancelled between attempts: undone like a failed one
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, s = MESSAGE_TEXT;
                EXIT;
            END;
        END IF;
    END LOOP;
    IF failed THEN
        CALL @extschema@.capacity_empty_default_undo(tbl, dflt, cname, qual, s, state);
    END IF;
    COMMIT;
    PERFORM @extschema@.capacity_convert_unclaim(tbl);
    RAISE NOTICE 'capacity_empty_default: the default partition of % is now its historical partition %.% [%, MAXVALUE); the swap held its lock % ms',
                 qual, quote_ident(nsp), quote_ident(histname),
                 coalesce(to_char(last_to AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC', 'MINVALUE'), round(swap_ms::numeric, 1);
    -- 4. its rows into periods, a batch per transaction
    IF max_batches IS DISTINCT FROM 0 THEN
        CALL @extschema@.capacity_convert_backfill(tbl, batch_rows, max_batches);
    END IF;
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_empty_default IS
    'Empty a large default partition whose rows all follow the last partition: it becomes a historical partition (catalog work under the lock timeout), then capacity_convert_backfill moves its rows into periods, a batch per transaction; the application waits no longer than the lock timeout.';
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_empty_default(regclass, integer, integer, timestamptz) FROM PUBLIC;
