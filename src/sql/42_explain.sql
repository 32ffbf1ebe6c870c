-- EXPLAIN-stability: how many partitions a query would scan.

CREATE FUNCTION @extschema@.capacity_explain_partitions(query text, params text[] DEFAULT NULL)
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_partitions';
COMMENT ON FUNCTION @extschema@.capacity_explain_partitions IS
    'Leaf partitions a single SELECT would scan after plan-time and start-up pruning (the worse of custom and generic plan when params are given); never executes it.';

CREATE FUNCTION @extschema@.capacity_explain_detail(query text, params text[] DEFAULT NULL)
RETURNS TABLE(partitions integer, custom_partitions integer, generic_partitions integer, signature text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_detail';

CREATE FUNCTION @extschema@.capacity_explain_as(owner oid, search_path text, query text, params text[])
RETURNS TABLE(partitions integer, custom_partitions integer, generic_partitions integer, signature text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_as';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_as(oid, text, text, text[]) FROM PUBLIC;

CREATE TABLE @extschema@.capacity_explain_check (
    name            text PRIMARY KEY CHECK (name <> ''),
    query           text NOT NULL,
    max_partitions  integer NOT NULL CHECK (max_partitions >= 0),
    params          text[],
    owner           regrole NOT NULL,
    search_path     text,
    table_name      regclass,          -- set for the default checks of a managed table
    registered_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE @extschema@.capacity_explain_check IS
    'Registered EXPLAIN-stability checks.  In params, @period_start@, @period_end@, @mid_period@ and '
    '@mid_next_period@ are replaced at each run by the table''s period boundaries around as_of.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_check', '');

CREATE TABLE @extschema@.capacity_explain_result (
    id                 bigserial PRIMARY KEY,
    name               text NOT NULL,
    run_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    as_of              timestamptz NOT NULL,
    partitions_scanned integer,
    custom_partitions  integer,
    generic_partitions integer,
    max_partitions     integer NOT NULL,
    passed             boolean NOT NULL,
    signature          text,
    plan_changed       boolean NOT NULL,
    error              text
);
GRANT SELECT ON @extschema@.capacity_explain_result TO pg_monitor;
CREATE INDEX ON @extschema@.capacity_explain_result (name, id);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_result', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_explain_result_id_seq', '');

INSERT INTO @extschema@.capacity_indicator (name, unit, source, description) VALUES
 ('explain_failures', 'count', 'builtin', 'EXPLAIN-stability checks that failed in the last capacity_explain_run()');
-- and a leading-indicator alert on it, shown by capacity_trigger_status and the report
INSERT INTO @extschema@.capacity_trigger (name, stage, indicator, aggregate, comparator, threshold, sustain, description)
VALUES ('explain_checks', NULL, 'explain_failures', 'latest', '>', 0, '0',
        'EXPLAIN-stability checks failing (partition pruning regressed)');

-- Register (or replace) a check owned by the calling role; it is tried
-- once now, as that role.
CREATE FUNCTION @extschema@.capacity_explain_register(name text, query text, max_partitions integer,
                                                      params text[] DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_register';
COMMENT ON FUNCTION @extschema@.capacity_explain_register IS
    'Register a query the application runs and the most leaf partitions it may scan; checked by capacity_explain_run() as the registering role.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register(text, text, integer, text[]) FROM PUBLIC;

-- @period_start@ ... in params, in UTC: the bounds of the managed table's
-- partition holding as_of (after a change of granularity the period at
-- the seam is shorter than the grid's), else of the policy's grid period;
-- the next period likewise.
CREATE FUNCTION @extschema@.capacity_explain_expand(params text[], tbl regclass, as_of timestamptz)
RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH parts AS (
        SELECT t.range_from, t.range_to FROM @extschema@.capacity_partition_tree(tbl) t
         WHERE t.level = 1 AND NOT t.is_default
    ), cur AS (
        SELECT p.granularity AS gran,
               coalesce((SELECT range_from FROM parts WHERE range_from <= as_of AND range_to > as_of),
                        @extschema@.capacity_period_start(as_of, p.granularity)) AS s,
               coalesce((SELECT range_to FROM parts WHERE range_from <= as_of AND range_to > as_of),
                        @extschema@.capacity_period_start(as_of, p.granularity, 1)) AS e
          FROM @extschema@.capacity_policy p WHERE p.table_name = tbl
    ), g AS (
        SELECT s, e, coalesce((SELECT range_to FROM parts WHERE range_from = e),
                              @extschema@.capacity_period_start(e, gran, 1)) AS e2
          FROM cur
    )
    SELECT CASE WHEN params IS NULL THEN NULL ELSE ARRAY(
        SELECT CASE v
                 WHEN '@period_start@' THEN (SELECT s FROM g)::text
                 WHEN '@period_end@' THEN (SELECT e FROM g)::text
                 WHEN '@mid_period@' THEN (SELECT s + (e - s) / 2 FROM g)::text
                 WHEN '@mid_next_period@' THEN (SELECT e + (e2 - e) / 2 FROM g)::text
                 ELSE v END
          FROM unnest(params) WITH ORDINALITY AS u(v, i) ORDER BY i) END
$$;

-- The default checks of a managed table (called by capacity_manage).
-- Check names are global and any role allowed to register checks may
-- have taken "<table>: one week" first: such a name is left to it and the
-- default check gets the table's OID appended.  Default checks left by a
-- dropped table (from before the drop event trigger forgot them) go.
CREATE FUNCTION @extschema@.capacity_explain_register_defaults(tbl regclass, owner regrole)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register_defaults(regclass, regrole) FROM PUBLIC;

-- Run every check at as_of: count, compare with the bound and with the
-- previous signature, keep the result, record explain_failures.
CREATE FUNCTION @extschema@.capacity_explain_run(as_of timestamptz DEFAULT now())
RETURNS TABLE(name text, partitions_scanned integer, max_partitions integer,
              passed boolean, signature text, plan_changed boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c record;
    n_parts integer;
    n_custom integer;
    n_generic integer;
    sig text;
    prev text;
    err text;
    failures integer := 0;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('run EXPLAIN checks');
    PERFORM @extschema@.capacity_check_time('capacity_explain_run'::text, as_of);
    FOR c IN SELECT * FROM @extschema@.capacity_explain_check k
              WHERE k.table_name IS NULL OR pg_catalog.to_regclass(k.table_name::text) IS NOT NULL
              ORDER BY k.name LOOP
        n_parts := NULL; n_custom := NULL; n_generic := NULL; sig := NULL;
        err := NULL;
        BEGIN
            SELECT e.partitions, e.custom_partitions, e.generic_partitions, e.signature
              INTO n_parts, n_custom, n_generic, sig
              FROM @extschema@.capacity_explain_as(c.owner, c.search_path, c.query,
                       @extschema@.capacity_explain_expand(c.params, c.table_name, as_of)) e;
        EXCEPTION WHEN OTHERS THEN
            err := SQLERRM;
        END;
        SELECT x.signature INTO prev FROM @extschema@.capacity_explain_result x
         WHERE x.name = c.name AND x.signature IS NOT NULL ORDER BY x.id DESC LIMIT 1;
        name := c.name;
        partitions_scanned := n_parts;
        max_partitions := c.max_partitions;
        passed := err IS NULL AND n_parts <= c.max_partitions;
        signature := sig;
        plan_changed := prev IS NOT NULL AND sig IS NOT NULL AND sig IS DISTINCT FROM prev;
        IF NOT passed THEN
            failures := failures + 1;
        END IF;
        INSERT INTO @extschema@.capacity_explain_result
            (name, as_of, partitions_scanned, custom_partitions, generic_partitions, max_partitions,
             passed, signature, plan_changed, error)
        VALUES (c.name, as_of, n_parts, n_custom, n_generic, c.max_partitions,
                passed, sig, plan_changed, err);
        RETURN NEXT;
    END LOOP;
    IF NOT pg_is_in_recovery() THEN
        PERFORM @extschema@.capacity_write_sample('explain_failures'::text, '{}'::jsonb, as_of, failures::float8);
    END IF;
END
$$;

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_run(timestamptz) FROM PUBLIC;