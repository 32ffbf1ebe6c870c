-- Conversion under a busy machine (issue 13): an autovacuum worker holding
-- the table outlasted every lock attempt of the conversion, and a switch
-- that could not get its locks ended the backfill with an error.
-- Mirrors src/sql/60_convert.sql.

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

CREATE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text, yield_to regclass[])
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    attempt integer := 0;
    yields integer := 0;
    s text;
    retries integer := coalesce(nullif(current_setting('matter_capacity.lock_retries', true), '')::integer, 3);
    timeout text := coalesce(nullif(current_setting('matter_capacity.lock_timeout', true), ''), '100');
    saved text := current_setting('lock_timeout');
BEGIN
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM set_config('lock_timeout', timeout, true);
            FOREACH s IN ARRAY stmts LOOP
                EXECUTE s;
            END LOOP;
            PERFORM set_config('lock_timeout', saved, true);
            RETURN attempt;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM set_config('lock_timeout', saved, true);
            IF yield_to IS NOT NULL AND yields < 10
               AND @extschema@.capacity_autovacuum_yield(yield_to, what) THEN
                yields := yields + 1;
                attempt := attempt - 1;
                CONTINUE;
            END IF;
            IF attempt > retries THEN
                RAISE EXCEPTION 'matter_capacity: % skipped: lock not available after % attempts of %',
                                what, attempt, timeout
                    USING ERRCODE = '55P03',
                          HINT = 'Long transactions hold the table; run it again later, or raise matter_capacity.lock_retries.';
            END IF;
            PERFORM pg_sleep(least(0.1 * attempt, 1));
        END;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text, regclass[]) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @extschema@.capacity_run_bounded(stmts text[], what text)
RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT @extschema@.capacity_run_bounded(stmts, what, NULL::regclass[]) $$;

