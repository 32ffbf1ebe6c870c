-- Seeded hostile-input generator for test/integration/fuzz.sh.  Lives in
-- the schema fuzz, which the state fingerprint leaves out.
CREATE SCHEMA fuzz;

-- Values by kind of argument: adversarial strings, extreme dates and
-- numbers, plus a few valid ones so calls also get past the first checks.
CREATE TABLE fuzz.pool (kind text, v text);
INSERT INTO fuzz.pool
SELECT 'text', v FROM unnest(ARRAY[
    '', 'Event', '"Event"', 'public."Event"', 'a''b', 'x"; DROP TABLE "Event"; --',
    'Robert''); DROP TABLE ledger;--', E'tab\there\nnewline\r\x01\x1f', repeat('x', 10000),
    'day', 'week', 'month', 'hour', 'drop', 'detach', 'stay', 'promote', 'rollback', 'review',
    '"', '\', E'\\x00', 'ÿé漢字', 'capacity_stage', 'SELECT 1', 'SELECT pg_sleep(10)',
    'SELECT 1; DROP TABLE ledger', 'SELECT * FROM "Event" WHERE "orgId" = $1',
    'createdAt', 'orgId', 'id', 'NaN', 'webhook_p99_ms', 'open_orders', 'pg_catalog', '%s%s%n',
    'event_rows', 'write_slo_ms', 'dedicated_infrastructure', 'Plain', 'at']) v
UNION ALL SELECT 'regclass', v FROM unnest(ARRAY[
    '"Event"', '"Plain"', 'ledger', 'pg_class', 'capacity_policy', 'pg_catalog.pg_proc',
    'fuzz.pool', '"Event_default"', 'capacity_sample']) v
UNION ALL SELECT 'timestamptz', v FROM unnest(ARRAY[
    'infinity', '-infinity', '4713-01-01 00:00+00 BC', '294276-12-31 23:00+00',
    '2026-11-22 00:00+00', '1970-01-01 00:00+00', '2000-02-29 12:00+14', '2026-11-22 12:34:56.789+05:30']) v
UNION ALL SELECT 'interval', v FROM unnest(ARRAY[
    '0', '-1 day', '1 microsecond', '178000000 years', '-178000000 years', '6 months', '1 day',
    '100 years', '-6 months']) v
UNION ALL SELECT 'integer', v FROM unnest(ARRAY[
    '-2147483648', '-1', '0', '1', '2', '3', '7', '2147483647', '1025']) v
UNION ALL SELECT 'float', v FROM unnest(ARRAY[
    'NaN', 'Infinity', '-Infinity', '-1e308', '0', '1e308', '5e-324', '42', '-0']) v
UNION ALL SELECT 'boolean', v FROM unnest(ARRAY['true', 'false']) v
UNION ALL SELECT 'jsonb', v FROM unnest(ARRAY[
    '{}', '[]', 'null', '{"a": 1}', '{"table": "\"Event\""}', '"str"', '{"region": 1}',
    repeat('[', 2000) || repeat(']', 2000), '{"k": "' || repeat('x', 10000) || '"}',
    '{"endpoint": "a''b; --"}', '{"x": NaN}']) v
UNION ALL SELECT 'text[]', v FROM unnest(ARRAY[
    '{}', '{NULL}', '{"a''b"}', '{"$1", "''; DROP TABLE ledger; --"}',
    (SELECT '{' || string_agg('v' || g, ',') || '}' FROM generate_series(1, 1000) g)]) v
UNION ALL SELECT 'regrole', v FROM unnest(ARRAY['postgres', 'pg_monitor', 'fuzz_app', 'public']) v;

CREATE FUNCTION fuzz.kind(t regtype) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN t IN ('text'::regtype, 'name'::regtype, 'character varying'::regtype) THEN 'text'
        WHEN t = 'regclass'::regtype THEN 'regclass'
        WHEN t = 'timestamptz'::regtype THEN 'timestamptz'
        WHEN t = 'interval'::regtype THEN 'interval'
        WHEN t IN ('integer'::regtype, 'bigint'::regtype, 'smallint'::regtype, 'oid'::regtype) THEN 'integer'
        WHEN t IN ('double precision'::regtype, 'numeric'::regtype, 'real'::regtype) THEN 'float'
        WHEN t = 'boolean'::regtype THEN 'boolean'
        WHEN t = 'jsonb'::regtype THEN 'jsonb'
        WHEN t IN ('text[]'::regtype, 'double precision[]'::regtype) THEN 'text[]'
        WHEN t = 'regrole'::regtype THEN 'regrole'
    END
$$;

-- n calls of every function and procedure of the extension, as SQL text.
CREATE FUNCTION fuzz.calls(seed double precision, n integer)
RETURNS TABLE(i integer, fn text, sql text) LANGUAGE plpgsql AS $$
DECLARE
    f record;
    k integer := 0;
    args text[];
    a integer;
    v text;
    t regtype;
BEGIN
    PERFORM setseed(seed);
    FOR f IN SELECT p.oid, p.proname, p.prokind,
                    ARRAY(SELECT u::regtype FROM unnest(p.proargtypes::oid[]) u) AS types
               FROM pg_proc p
               JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
               JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'matter_capacity'
              ORDER BY p.oid::regprocedure::text
    LOOP
        FOR c IN 1..n LOOP
            args := '{}';
            FOR a IN 1..coalesce(array_length(f.types, 1), 0) LOOP
                t := f.types[a];
                IF random() < 0.12 THEN
                    v := 'NULL';
                ELSE
                    SELECT quote_literal(p.v) INTO v FROM fuzz.pool p
                     WHERE p.kind = coalesce(fuzz.kind(t), 'text')
                     ORDER BY random() LIMIT 1;
                END IF;
                args := args || (v || '::' || format_type(t, NULL));
            END LOOP;
            k := k + 1;
            i := k;
            fn := f.proname;
            sql := CASE WHEN f.prokind = 'p' THEN 'CALL ' ELSE 'SELECT ' END
                   || 'public.' || quote_ident(f.proname) || '(' || array_to_string(args, ', ') || ')';
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;

-- Fingerprint of everything a call could change: the extension's tables
-- and the relations of the fixture schema.
CREATE FUNCTION fuzz.state() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    acc text := '';
    x text;
BEGIN
    FOR r IN SELECT c.oid::regclass AS rel
               FROM pg_class c
               JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
               JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'matter_capacity'
              WHERE c.relkind IN ('r', 'p') AND c.relname NOT IN ('capacity_indicator_run')
              ORDER BY 1
    LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(t::text, ''|'' ORDER BY t::text), '''')) FROM %s t', r.rel) INTO x;
        acc := acc || x;
    END LOOP;
    SELECT md5(coalesce(string_agg(c.relname::text || c.relkind::text || c.relispartition::text, ',' ORDER BY c.relname), ''))
      INTO x FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace;
    RETURN md5(acc || x);
END
$$;

CREATE TABLE fuzz.log (i integer, fn text, sqlstate text, message text, changed boolean);
