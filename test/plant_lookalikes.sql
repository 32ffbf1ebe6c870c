-- Plants look-alikes of every function of the extension in its schema, as
-- the current role (which needs CREATE there and USAGE on the sequence
-- public.mc_lookalike_ran).  For each function and argument position one
-- look-alike takes, at that position only, text (what an untyped literal
-- or NULL prefers) or a type that casts implicitly to ours (int4 for
-- float8, timestamp for timestamptz, name or varchar for text ...); same
-- names, same result type, defaults like ours after that position (a
-- default there would only make a call that omits it ambiguous: an error,
-- not a hijack).  Each bumps the sequence (not rolled back by a caller's
-- exception handler) and names itself in a WARNING.  Used by
-- test/pgtap/security_overload_all.sql and test/integration/lookalikes.sh.
DO $plant$
DECLARE
    f record;
    i integer;
    src oid;
    args text;
    n integer := 0;
BEGIN
    FOR f IN
        SELECT p.oid, p.proname, p.pronamespace::regnamespace AS nsp, ARRAY(SELECT unnest(p.proargtypes::oid[])) AS t, p.pronargs,
               p.pronargdefaults, p.proargnames, p.proretset, p.prorettype, pg_get_function_result(p.oid) AS res
          FROM pg_proc p
          JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                          AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'matter_capacity'
         WHERE p.prokind = 'f' AND p.pronargs > 0 AND p.provariadic = 0
           AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype, 'internal'::regtype)
           AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) a
                            WHERE a IN ('internal'::regtype, 'anyelement'::regtype, 'anyarray'::regtype, '"any"'::regtype))
           AND (p.proargmodes IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(p.proargmodes[1:p.pronargs]) m WHERE m <> 'i'))
    LOOP
        FOR i IN 1 .. f.pronargs LOOP
            FOR src IN
                SELECT 'text'::regtype::oid WHERE f.t[i] <> 'text'::regtype
                UNION
                SELECT c.castsource FROM pg_cast c
                 WHERE c.casttarget = f.t[i] AND c.castcontext = 'i'
                   AND c.castsource IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'numeric'::regtype,
                                        'float4'::regtype, 'timestamp'::regtype, 'date'::regtype,
                                        'varchar'::regtype, 'name'::regtype, 'bpchar'::regtype, 'json'::regtype)
            LOOP
                SELECT string_agg(format('%s %s%s',
                                         coalesce(quote_ident(nullif(f.proargnames[k], '')), ''),
                                         CASE WHEN k = i THEN src::regtype ELSE f.t[k]::regtype END,
                                         CASE WHEN k > f.pronargs - f.pronargdefaults AND k > i THEN ' DEFAULT NULL' ELSE '' END),
                                  ', ' ORDER BY k)
                  INTO args FROM generate_series(1, f.pronargs) k;
                BEGIN
                    EXECUTE format($f$CREATE FUNCTION %s.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$
                                     BEGIN
                                         PERFORM pg_catalog.nextval('public.mc_lookalike_ran');
                                         RAISE WARNING 'look-alike %s(%s) ran as %%', current_user;
                                         RETURN%s;
                                     END $b$$f$,
                                   f.nsp, f.proname, args, f.res, f.proname, replace(args, '''', ''),
                                   CASE WHEN f.proretset OR f.prorettype = 'void'::regtype THEN '' ELSE ' NULL' END);
                    n := n + 1;
                EXCEPTION WHEN duplicate_function OR ambiguous_function OR invalid_function_definition
                               OR feature_not_supported OR invalid_parameter_value THEN
                    NULL;   -- a position whose look-alike would be ours, or not a valid signature
                END;
            END LOOP;
        END LOOP;
    END LOOP;
    RAISE NOTICE '% look-alikes planted', n;
    IF n < 200 THEN
        RAISE EXCEPTION 'only % look-alikes planted', n;
    END IF;
END
$plant$;
