-- Issue 13, sections 4 and 5 (branch wip/C): growth that means growth,
-- forecasts of the net change, refusals on a standby and in a transaction
-- block, the newest values kept by pg_dump.  Each object below is
-- replaced whole, as src/sql/ defines it.

-- Mutating functions refuse on a standby (31_indicator_functions.sql,
-- 42_stage_actions.sql, 50_explain.sql).
CREATE OR REPLACE FUNCTION @extschema@.capacity_refuse_in_recovery(what text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: cannot % while the server is in recovery', what
            USING ERRCODE = '25006',
                  HINT = 'Run it on the primary; views, capacity_stage() and capacity_forecast() work on a standby.';
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_register_push(indicator text, unit text DEFAULT NULL,
                                                   description text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    existing text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('register a pushed indicator');
    IF indicator IS NULL OR indicator !~ '^[a-z][a-z0-9_]*$' OR length(indicator) > 63 THEN
        RAISE EXCEPTION 'matter_capacity: indicator name "%" is not valid', indicator
            USING ERRCODE = '42602',
                  HINT = 'Use lower-case letters, digits and underscores, starting with a letter, e.g. webhook_p99_ms.';
    END IF;
    SELECT i.source INTO existing FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    IF existing IS NOT NULL AND existing <> 'push' THEN
        RAISE EXCEPTION 'matter_capacity: indicator % already exists as a % indicator', indicator, existing
            USING ERRCODE = '42710', HINT = 'Choose another name for the pushed indicator.';
    END IF;
    -- unit and description are kept when not given; spelled out before the
    -- INSERT because a shipped row is replaced by it (80_dump.sql)
    IF existing IS NOT NULL THEN
        SELECT coalesce(capacity_register_push.unit, i.unit), coalesce(capacity_register_push.description, i.description)
          INTO unit, description
          FROM @extschema@.capacity_indicator i WHERE i.name = indicator;
    END IF;
    INSERT INTO @extschema@.capacity_indicator AS i (name, unit, source, description, owner)
    VALUES (indicator, unit, 'push', description, current_user::regrole)
    ON CONFLICT (name) DO UPDATE
       SET unit = coalesce(EXCLUDED.unit, i.unit),
           description = coalesce(EXCLUDED.description, i.description);
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
    PERFORM @extschema@.capacity_refuse_in_recovery('record a value');
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
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_pool_size(role_name regrole, pool_size integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a pool size');
    IF role_name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: role must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name the role whose pool size you set.';
    END IF;
    IF pool_size IS NULL THEN
        DELETE FROM @extschema@.capacity_pool_size p WHERE p.role_name = capacity_set_pool_size.role_name;
    ELSIF pool_size < 1 THEN
        RAISE EXCEPTION 'matter_capacity: pool size % for role % must be positive', pool_size, role_name
            USING ERRCODE = '22023', HINT = 'Pass the number of server connections the role''s pool may open.';
    ELSE
        INSERT INTO @extschema@.capacity_pool_size AS p VALUES (role_name, pool_size)
        ON CONFLICT ON CONSTRAINT capacity_pool_size_pkey DO UPDATE SET pool_size = EXCLUDED.pool_size;
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_stage(stage integer, note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set the stage');
    IF stage IS NULL OR stage NOT BETWEEN 1 AND 6 THEN
        RAISE EXCEPTION 'matter_capacity: stage % is not on the ladder', coalesce(stage::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Stages are 1 to 6; see SELECT * FROM capacity_stages.';
    END IF;
    INSERT INTO @extschema@.capacity_stage_history (stage, note, set_at, set_by)
    VALUES (stage, note, now(), session_user);
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_declare(flag text, note text, active boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('declare a flag');
    IF flag IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t WHERE t.declared_flag = flag) THEN
        SELECT string_agg(DISTINCT t.declared_flag, ', ' ORDER BY t.declared_flag) INTO known
          FROM @extschema@.capacity_trigger t WHERE t.declared_flag IS NOT NULL;
        RAISE EXCEPTION 'matter_capacity: flag "%" is not a declared trigger', coalesce(flag, 'NULL')
            USING ERRCODE = '22023', HINT = 'Known flags: ' || known || '.';
    END IF;
    IF active IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: active for flag % must not be NULL', flag
            USING ERRCODE = '22004', HINT = 'true declares it, false withdraws it.';
    END IF;
    INSERT INTO @extschema@.capacity_declaration AS d (flag, active, note, changed_at, changed_by)
    VALUES (flag, active, note, now(), session_user)
    ON CONFLICT ON CONSTRAINT capacity_declaration_pkey DO UPDATE
       SET active = EXCLUDED.active, note = EXCLUDED.note,
           changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by;
    INSERT INTO @extschema@.capacity_declaration_history (flag, active, note, changed_at, changed_by)
    VALUES (flag, active, note, now(), session_user);
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_set_threshold(setting text, value double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a threshold');
    IF setting IS NULL OR NOT EXISTS (SELECT 1 FROM @extschema@.capacity_setting s WHERE s.name = setting) THEN
        SELECT string_agg(s.name, ', ' ORDER BY s.name) INTO known FROM @extschema@.capacity_setting s;
        RAISE EXCEPTION 'matter_capacity: threshold setting "%" does not exist', coalesce(setting, 'NULL')
            USING ERRCODE = '42704', HINT = 'Settings: ' || known || '.';
    END IF;
    IF value IS NULL OR value = 'NaN'::float8 OR value IN ('Infinity'::float8, '-Infinity'::float8) OR value <= 0 THEN
        RAISE EXCEPTION 'matter_capacity: value % for threshold setting % must be a positive finite number', value, setting
            USING ERRCODE = '22023', HINT = 'Pass the SLO figure in the setting''s unit (see capacity_setting).';
    END IF;
    UPDATE @extschema@.capacity_setting s SET value = capacity_set_threshold.value WHERE s.name = setting;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_bind_table(logical_name text, tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('bind a table');
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_table_binding b WHERE b.logical_name = capacity_bind_table.logical_name) THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a logical hot table', logical_name
            USING ERRCODE = '42704', HINT = 'The plan knows Event and AuditEntry.';
    END IF;
    UPDATE @extschema@.capacity_table_binding b SET table_name = tbl
     WHERE b.logical_name = capacity_bind_table.logical_name;
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_decide_at(decision text, note text, as_of timestamptz, bindings jsonb)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    br jsonb;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('record a decision');
    IF decision IS NULL OR decision NOT IN ('stay', 'promote', 'rollback') THEN
        RAISE EXCEPTION 'matter_capacity: decision "%" is not one of stay, promote, rollback', coalesce(decision, 'NULL')
            USING ERRCODE = '22023', HINT = 'Record stay, promote or rollback; set the new stage with capacity_set_stage().';
    END IF;
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the decision must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    SELECT * INTO s FROM @extschema@.capacity_stage_eval(as_of, bindings);
    SELECT coalesce(jsonb_agg(jsonb_build_object('trigger', e.trigger_name, 'stage', e.stage,
                        'labels', e.labels, 'value', e.value, 'threshold', e.threshold,
                        'since', e.window_start) ORDER BY e.stage, e.trigger_name), '[]')
      INTO br
      FROM @extschema@.capacity_trigger_eval(as_of, bindings) e WHERE e.status = 'firing';
    INSERT INTO @extschema@.capacity_decision
        (decided_at, decision, note, current_stage, recommended_stage, evaluation, firing, breaches, evidence, decided_by)
    VALUES (as_of, decision, note, s.current_stage, s.recommended_stage, s.decision, s.firing, br, s.evidence, session_user);
END
$$;
CREATE OR REPLACE FUNCTION @extschema@.capacity_explain_run(as_of timestamptz DEFAULT now())
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
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
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
        INSERT INTO @extschema@.capacity_sample (indicator, labels, sampled_at, value)
        VALUES ('explain_failures', '{}', as_of, failures);
        INSERT INTO @extschema@.capacity_latest_sample AS l (indicator, labels, sampled_at, value)
        VALUES ('explain_failures', '{}', as_of, failures)
        ON CONFLICT ON CONSTRAINT capacity_latest_sample_pkey DO UPDATE
           SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value
         WHERE l.sampled_at <= EXCLUDED.sampled_at;
    END IF;
END
$$;

-- The newest value of each series is dumped (30_indicators.sql).
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_latest_sample', '');

-- The conversion procedures refuse where they cannot commit (60_convert.sql).
CREATE OR REPLACE PROCEDURE @extschema@.capacity_require_commit(what text)
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_require_commit';
CREATE OR REPLACE PROCEDURE @extschema@.capacity_convert(tbl regclass, time_column name, granularity text,
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
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'matter_capacity: capacity_convert cannot run while the server is in recovery'
            USING ERRCODE = '25006', HINT = 'Run it on the primary.';
    END IF;
    SELECT * INTO d FROM @extschema@.capacity_convert_check(tbl, time_column, granularity, hash_column,
                                                            hash_partitions, premake, retention_action);
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the conversion of % must be a finite time', d.qual
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    bound := @extschema@.capacity_period_start(as_of, granularity, 1);
    bound_lit := @extschema@.capacity_time_literal(bound, d.time_type);
    bound_label := to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || ' UTC';
    cname := @extschema@.capacity_derived_name(d.relname, 'convert_bound');
    tmpname := @extschema@.capacity_derived_name(d.relname, 'converting');
    histname := @extschema@.capacity_derived_name(d.relname, 'historical');
    tmpqual := format('%I.%I', d.nspname, tmpname);
    histqual := format('%I.%I', d.nspname, histname);
    IF to_regclass(tmpqual) IS NOT NULL OR to_regclass(histqual) IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: % or % already exists', tmpqual, histqual
            USING ERRCODE = '42P07', HINT = 'A previous conversion left it; drop or rename it first.';
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
                               CASE WHEN x.contype IN ('p', 'u') THEN @extschema@.capacity_derived_name(x.conname, 'conv') ELSE x.conname END,
                               x.def);
        IF x.contype IN ('p', 'u') THEN
            swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.conname, @extschema@.capacity_derived_name(x.conname, 'historical'))
                         || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.conname, 'conv'), x.conname);
        END IF;
    END LOOP;
    FOR x IN SELECT i.relname, pg_get_indexdef(ix.indexrelid) AS def FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid
              WHERE ix.indrelid = tbl AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
              ORDER BY i.relname LOOP
        prep := prep || replace(x.def, format('INDEX %I ON %s ', x.relname, d.qual),
                                format('INDEX %I ON %s ', @extschema@.capacity_derived_name(x.relname, 'conv'), tmpqual));
        swap := swap || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, x.relname, @extschema@.capacity_derived_name(x.relname, 'historical'))
                     || format('ALTER INDEX %I.%I RENAME TO %I', d.nspname, @extschema@.capacity_derived_name(x.relname, 'conv'), x.relname);
    END LOOP;
    FOR x IN SELECT a.privilege_type, a.is_grantable,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS grantee
               FROM pg_class c, aclexplode(c.relacl) a WHERE c.oid = tbl AND a.grantee <> c.relowner LOOP
        prep := prep || format('GRANT %s ON %s TO %s%s', x.privilege_type, tmpqual, x.grantee,
                               CASE WHEN x.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    IF obj_description(tbl, 'pg_class') IS NOT NULL THEN
        prep := prep || format('COMMENT ON TABLE %s IS %L', tmpqual, obj_description(tbl, 'pg_class'));
    END IF;
    prep := prep || format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', d.nspname, @extschema@.capacity_derived_name(d.relname, 'default'), tmpqual);
    IF d.owner <> current_user THEN
        prep := prep || format('ALTER TABLE %s OWNER TO %I', tmpqual, d.owner)
                     || format('ALTER TABLE %I.%I OWNER TO %I', d.nspname, @extschema@.capacity_derived_name(d.relname, 'default'), d.owner);
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
                 || format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (MINVALUE) TO (%s)', d.qual, histqual, bound_lit);

    plan := ARRAY[format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I < %s) NOT VALID',
                         d.qual, cname, time_column, time_column, bound_lit),
                  format('ALTER TABLE %s VALIDATE CONSTRAINT %I', d.qual, cname)];
    IF dry_run THEN
        RAISE NOTICE 'capacity_convert(%): dry run, nothing changed', d.qual;
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
    -- 1. the bound, enforced from now on; 2. proven for the old rows online
    PERFORM @extschema@.capacity_run_bounded(plan[1:1], format('adding the bound constraint to %s', d.qual));
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    BEGIN
        EXECUTE plan[2];
    EXCEPTION WHEN check_violation THEN
        failed := true;
    END;
    IF failed THEN
        EXECUTE format('SELECT count(*) FROM %s WHERE NOT (%I IS NOT NULL AND %I < %s)',
                       d.qual, time_column, time_column, bound_lit) INTO bad;
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
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
    EXCEPTION WHEN OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
        RAISE EXCEPTION 'matter_capacity: the partitioned copy of % could not be prepared: %; nothing was converted', d.qual, s
            USING ERRCODE = '55000', HINT = 'Fix the cause; the dry run (dry_run => true) lists every statement.';
    END IF;
    COMMIT;

    -- 4. the swap, short and bounded
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    t0 := clock_timestamp();
    BEGIN
        PERFORM @extschema@.capacity_run_bounded(swap, format('swapping %s for its partitioned copy', d.qual));
    EXCEPTION WHEN OTHERS THEN
        failed := true;
        GET STACKED DIAGNOSTICS s = MESSAGE_TEXT;
    END;
    IF failed THEN
        EXECUTE format('DROP TABLE %s', tmpqual);
        PERFORM @extschema@.capacity_run_bounded(ARRAY[format('ALTER TABLE %s DROP CONSTRAINT %I', d.qual, cname)],
                                                 format('removing the bound constraint from %s', d.qual));
        COMMIT;
        RAISE EXCEPTION 'matter_capacity: % was not converted: %', d.qual, s
            USING ERRCODE = '55P03', HINT = 'Nothing changed; run it again when the table is less busy.';
    END IF;
    swap_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    COMMIT;

    -- 5. the policy, and the periods from the bound on
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    newrel := to_regclass(d.qual);
    PERFORM @extschema@.capacity_manage(newrel, time_column, granularity, hash_column, hash_partitions,
                                        premake, retention, retention_action, true);
    INSERT INTO @extschema@.capacity_conversion
        (table_name, historical, time_column, granularity, hash_column, hash_partitions, bound,
         key_columns, state, converted_at, convert_swap_ms)
    VALUES (newrel, tbl, time_column, granularity, hash_column, hash_partitions, bound,
            d.key_columns, 'converted', clock_timestamp(), swap_ms);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM count(*) FROM @extschema@.capacity_rollover(newrel, as_of);
    COMMIT;
    RAISE NOTICE 'capacity_convert: % is partitioned; % holds the rows before %; the swap held its lock % ms. Next: CALL capacity_convert_backfill(%)',
                 d.qual, histqual, bound_label, round(swap_ms::numeric, 1), quote_literal(d.qual);
END
$$;
COMMENT ON PROCEDURE @extschema@.capacity_convert IS
    'Turn an ordinary table into a managed partitioned table of the same name online; the old rows stay in a historical partition until capacity_convert_backfill.';
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
    CALL @extschema@.capacity_require_commit('capacity_convert_backfill');
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
    stagename := @extschema@.capacity_derived_name(rel, 'backfill');
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
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, @extschema@.capacity_derived_name(stagename, 'default'), stagequal);
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
        EXECUTE format('INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid AND ctid < %L::tid '
                       'FOR SHARE ON CONFLICT DO NOTHING', cv.staging::text, cv.historical::text,
                       format('(%s,0)', cv.next_page), format('(%s,0)', cv.next_page + pages));
        GET DIAGNOSTICS n = ROW_COUNT;
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
                  format('INSERT INTO %s SELECT * FROM ONLY %s WHERE ctid >= %L::tid ON CONFLICT DO NOTHING',
                         cv.staging::text, cv.historical::text, format('(%s,0)', cv.next_page)),
                  format('SELECT @extschema@.capacity_note_backfill_copies(%L)', qual),   -- copies are not growth
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
    swap := swap || format('INSERT INTO %s OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I', qual, nsp, @extschema@.capacity_derived_name(stagename, 'default'))
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
COMMENT ON PROCEDURE @extschema@.capacity_convert_backfill IS
    'Move the historical partition left by capacity_convert into period partitions, a batch per transaction; resumable; progress in capacity_conversions.';

-- table_rows_inserted: rows the application wrote, as a counter that only
-- grows (sampler.c, 30_indicators.sql, 31_indicator_functions.sql,
-- 60_convert.sql).  Each leaf's insert count at the previous sample:
CREATE TABLE @extschema@.capacity_leaf_inserts (
    leaf        oid PRIMARY KEY,
    inserted    double precision NOT NULL,
    observed_at timestamptz NOT NULL,
    reset       boolean NOT NULL DEFAULT false  -- its statistics were reset, no ANALYZE or VACUUM since
);
CREATE OR REPLACE FUNCTION @extschema@.capacity_note_backfill_copies(tbl regclass)
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
ALTER TABLE @extschema@.capacity_indicator DISABLE TRIGGER capacity_shipped_row_edited;
UPDATE @extschema@.capacity_indicator
   SET description = 'Rows the application inserted into each partitioned table (cumulative counter), labels {table}'
 WHERE name = 'table_rows_inserted' AND shipped;
ALTER TABLE @extschema@.capacity_indicator ENABLE TRIGGER capacity_shipped_row_edited;

-- The history a 1.0 sampler wrote summed the insert counts of the leaves
-- of the moment, so it fell whenever retention dropped or detached a
-- partition (or statistics were reset).  Each fall is taken out of the
-- series from there on (that interval counts no growth), in the raw
-- samples, the hourly and daily rollups (by their last values) and the
-- newest values; the sampler then goes on from the newest value.
UPDATE @extschema@.capacity_sample s SET value = s.value + r.fall
  FROM (SELECT x.labels, x.sampled_at,
               sum(greatest(coalesce(x.prev - x.value, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.sampled_at) AS fall
          FROM (SELECT labels, sampled_at, value, lag(value) OVER (PARTITION BY labels ORDER BY sampled_at) AS prev
                  FROM @extschema@.capacity_sample WHERE indicator = 'table_rows_inserted' AND value IS NOT NULL) x) r
 WHERE s.indicator = 'table_rows_inserted' AND s.labels = r.labels AND s.sampled_at = r.sampled_at AND r.fall > 0;
UPDATE @extschema@.capacity_sample_hourly h
   SET min = h.min + r.fall, max = h.max + r.fall, avg = h.avg + r.fall, last = h.last + r.fall
  FROM (SELECT x.labels, x.hour,
               sum(greatest(coalesce(x.prev - x.last, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.hour) AS fall
          FROM (SELECT labels, hour, last, lag(last) OVER (PARTITION BY labels ORDER BY hour) AS prev
                  FROM @extschema@.capacity_sample_hourly WHERE indicator = 'table_rows_inserted') x) r
 WHERE h.indicator = 'table_rows_inserted' AND h.labels = r.labels AND h.hour = r.hour AND r.fall > 0;
UPDATE @extschema@.capacity_sample_daily d
   SET min = d.min + r.fall, max = d.max + r.fall, avg = d.avg + r.fall, last = d.last + r.fall,
       peak_hour_min = d.peak_hour_min + r.fall, trough_hour_max = d.trough_hour_max + r.fall,
       peak_hour_avg = d.peak_hour_avg + r.fall, trough_hour_avg = d.trough_hour_avg + r.fall
  FROM (SELECT x.labels, x.day,
               sum(greatest(coalesce(x.prev - x.last, 0), 0)) OVER (PARTITION BY x.labels ORDER BY x.day) AS fall
          FROM (SELECT labels, day, last, lag(last) OVER (PARTITION BY labels ORDER BY day) AS prev
                  FROM @extschema@.capacity_sample_daily WHERE indicator = 'table_rows_inserted') x) r
 WHERE d.indicator = 'table_rows_inserted' AND d.labels = r.labels AND d.day = r.day AND r.fall > 0;
UPDATE @extschema@.capacity_latest_sample l SET value = s.value
  FROM (SELECT DISTINCT ON (labels) labels, sampled_at, value FROM @extschema@.capacity_sample
         WHERE indicator = 'table_rows_inserted' ORDER BY labels, sampled_at DESC) s
 WHERE l.indicator = 'table_rows_inserted' AND l.labels = s.labels AND l.sampled_at = s.sampled_at;

-- Forecasts of row counts follow the net change (44_forecast.sql).
CREATE OR REPLACE FUNCTION @extschema@.capacity_forecast_eval(as_of timestamptz, horizon interval, bindings jsonb,
                                                   evals @extschema@.capacity_trigger_row[],
                                                   min_stage integer DEFAULT NULL)
RETURNS SETOF @extschema@.capacity_forecast_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    lookback integer := coalesce(nullif(current_setting('matter_capacity.forecast_lookback_days', true), '')::integer, 30);
    origin constant timestamptz := '2000-01-01 00:00+00';
    today timestamptz;
    first_day timestamptz;
    inds text[];
    counters text[];
    recent @extschema@.capacity_sample[];
BEGIN
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the forecast must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
    IF horizon IS NULL OR horizon <= interval '0' OR NOT isfinite(as_of + horizon) THEN
        RAISE EXCEPTION 'matter_capacity: forecast horizon % must be a positive interval', coalesce(horizon::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'The capacity plan looks ahead 6 months: pass interval ''6 months''.';
    END IF;
    today := date_bin('1 day', as_of, origin);
    first_day := today - make_interval(days => lookback);

    SELECT array_agg(DISTINCT t.indicator),
           array_agg(DISTINCT t.indicator) FILTER (WHERE t.aggregate = 'growth')
      INTO inds, counters
      FROM @extschema@.capacity_trigger t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage);
    inds := inds || '{table_rows_inserted}';
    counters := coalesce(counters, '{}') || '{table_rows, table_rows_inserted}';
    -- the newest sample of each row count and counter in the last day: kept
    -- in capacity_latest_sample, unless as_of is in the past of it; then
    -- from the raw samples, planned with the bounds to read one or two days
    recent := ARRAY(SELECT ROW(l.indicator, l.labels, l.sampled_at, l.value)::@extschema@.capacity_sample
                      FROM @extschema@.capacity_latest_sample l
                     WHERE l.indicator = ANY (counters) AND l.value IS NOT NULL
                       AND l.sampled_at > as_of - interval '1 day' AND l.sampled_at <= as_of);
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l
                WHERE l.indicator = ANY (counters) AND l.sampled_at > as_of) THEN
        EXECUTE 'SELECT array_agg(s) FROM (
                     SELECT DISTINCT ON (s.indicator, s.labels) s.*
                       FROM @extschema@.capacity_sample s
                      WHERE s.indicator = ANY ($1) AND s.sampled_at > $2 AND s.sampled_at <= $3
                        AND s.value IS NOT NULL
                      ORDER BY s.indicator, s.labels, s.sampled_at DESC) s'
           INTO recent USING counters, as_of - interval '1 day', as_of;
    END IF;

    RETURN QUERY
WITH days AS MATERIALIZED (   -- each series on each complete day of the lookback
    SELECT d.* FROM @extschema@.capacity_sample_daily d
     WHERE d.indicator = ANY (inds) AND d.day >= first_day AND d.day < today
),
now_s AS MATERIALIZED (SELECT * FROM unnest(coalesce(recent, '{}'))),
trig AS (
    SELECT t.*, CASE WHEN t.comparator IN ('>', '>=') THEN 1 ELSE -1 END AS dir,
           (t.indicator = 'table_rows' AND t.aggregate = 'latest') AS rowcount
      FROM @extschema@.capacity_trigger_resolved(bindings) t
     WHERE t.indicator IS NOT NULL AND (min_stage IS NULL OR t.stage >= min_stage)
),
series AS (   -- every series a trigger looks at; a ratio trigger is one series
    SELECT t.name, x.labels
      FROM trig t
      JOIN (SELECT DISTINCT d.indicator, d.labels FROM days d
            UNION SELECT n.indicator, n.labels FROM now_s n
            UNION SELECT l.indicator, l.labels FROM @extschema@.capacity_latest_sample l) x
        ON x.indicator = t.indicator AND x.labels @> t.filter
     WHERE t.aggregate <> 'ratio' AND NOT t.unbound
    UNION ALL
    SELECT t.name, t.label_filter FROM trig t WHERE t.aggregate = 'ratio'
),
day_stats AS (   -- the days of every series a level trigger looks at
    SELECT x.name, x.labels, d.day, d.peak_hour_min, d.trough_hour_max, d.peak_hour_avg, d.trough_hour_avg,
           d.max, d.min, d.last
      FROM series x JOIN trig t ON t.name = x.name
      JOIN days d ON d.indicator = t.indicator AND d.labels = x.labels
     WHERE t.aggregate IN ('all', 'latest')
),
level_points AS (
    -- all: the best hour of the day (the hourly minimum when the window is
    -- an hour or more, else the hourly average); latest: the day's extreme
    SELECT d.name, d.labels, 'level'::text AS basis,
           extract(epoch FROM d.day + interval '12 hours' - as_of)::float8 / 86400 AS t,
           CASE WHEN t.aggregate = 'all' AND t.sustain >= interval '1 hour' THEN
                     CASE WHEN t.dir > 0 THEN d.peak_hour_min ELSE d.trough_hour_max END
                WHEN t.aggregate = 'all' THEN
                     CASE WHEN t.dir > 0 THEN d.peak_hour_avg ELSE d.trough_hour_avg END
                ELSE CASE WHEN t.dir > 0 THEN d.max ELSE d.min END END AS y
      FROM day_stats d JOIN trig t ON t.name = d.name
     WHERE NOT t.rowcount
    UNION ALL
    -- ratio: the day's average of the series over that of the reference
    SELECT t.name, t.label_filter, 'level',
           extract(epoch FROM d.day + interval '12 hours' - as_of)::float8 / 86400,
           avg(d.avg) FILTER (WHERE d.labels @> t.label_filter)
             / nullif(avg(d.avg) FILTER (WHERE d.labels @> t.ratio_filter), 0)
      FROM trig t JOIN days d ON d.indicator = t.indicator
     WHERE t.aggregate = 'ratio'
     GROUP BY t.name, t.label_filter, d.day
),
rows_now AS (   -- the row count a table_rows trigger starts from
    SELECT x.name, x.labels, n.value
      FROM series x JOIN trig t ON t.name = x.name AND t.rowcount
      JOIN now_s n ON n.indicator = 'table_rows' AND n.labels = x.labels
),
counter_series AS (   -- cumulative series: growth triggers, and inserts behind row counts
    SELECT x.name, x.labels, CASE WHEN t.rowcount THEN 'table_rows_inserted' ELSE t.indicator END AS counter
      FROM series x JOIN trig t ON t.name = x.name
     WHERE t.aggregate = 'growth' OR t.rowcount
),
counter_values AS (   -- end of each day, and the newest raw value of today
    SELECT c.name, c.labels, d.day + interval '1 day' AS at, d.last AS v
      FROM counter_series c JOIN days d ON d.indicator = c.counter AND d.labels = c.labels
    UNION ALL
    SELECT c.name, c.labels, n.sampled_at, n.value
      FROM counter_series c JOIN now_s n ON n.indicator = c.counter AND n.labels = c.labels
     WHERE n.sampled_at > today
),
counter_steps AS (   -- increments; after a reset the counter restarted from zero
    SELECT v.*, v.v - lag(v.v) OVER w AS dv,
           extract(epoch FROM v.at - lag(v.at) OVER w)::float8 / 86400 AS dt
      FROM counter_values v
    WINDOW w AS (PARTITION BY v.name, v.labels ORDER BY v.at)
),
counter_sums AS (
    SELECT s.*, sum(CASE WHEN s.dv IS NULL THEN 0 WHEN s.dv >= 0 THEN s.dv ELSE s.v END)
                    OVER (PARTITION BY s.name, s.labels ORDER BY s.at) AS cum
      FROM counter_steps s
),
counter_points AS (
    -- growth: the rate between two consecutive values, in the trigger's
    -- per_period units, placed in the middle of its interval
    SELECT c.name, c.labels, 'rate'::text AS basis,
           extract(epoch FROM c.at - as_of)::float8 / 86400 - c.dt / 2 AS t,
           c.dv / c.dt * extract(epoch FROM t.per_period)::float8 / 86400 AS y
      FROM counter_sums c JOIN trig t ON t.name = c.name
     WHERE t.aggregate = 'growth' AND c.dv >= 0 AND c.dt > 0
    UNION ALL
    -- row counts, where the counts are stale or too few: the current count
    -- less the rows inserted since each day (retention is not seen)
    SELECT c.name, c.labels, 'inserts',
           extract(epoch FROM c.at - as_of)::float8 / 86400,
           r.value - (max(c.cum) OVER (PARTITION BY c.name, c.labels) - c.cum)
      FROM counter_sums c JOIN rows_now r ON r.name = c.name AND r.labels = c.labels
    UNION ALL
    -- row counts: the counts themselves, i.e. the net change (inserts less
    -- deletes and retention)
    SELECT d.name, d.labels, 'rows',
           extract(epoch FROM d.day + interval '1 day' - as_of)::float8 / 86400, d.last
      FROM day_stats d JOIN trig t ON t.name = d.name AND t.rowcount
    UNION ALL
    SELECT r.name, r.labels, 'rows', 0::float8, r.value FROM rows_now r
),
points AS (
    SELECT * FROM level_points WHERE y IS NOT NULL
    UNION ALL
    SELECT * FROM counter_points WHERE y IS NOT NULL
),
stale AS (   -- row counts not refreshed: unmoved through the last three days, sampled
             -- more than once a day, while the insert counter rose
    SELECT x.name, x.labels
      FROM series x JOIN trig t ON t.name = x.name AND t.rowcount
      JOIN days r ON r.indicator = 'table_rows' AND r.labels = x.labels AND r.day >= today - interval '3 days'
      JOIN days c ON c.indicator = 'table_rows_inserted' AND c.labels = x.labels AND c.day = r.day
     GROUP BY x.name, x.labels
    HAVING count(*) = 3 AND min(r.count) >= 2 AND min(r.min) = max(r.max) AND min(r.min) > 0
       AND max(c.max) > min(c.min)
),
basis AS (   -- row counts: their net change, unless they are stale or too few;
             -- then the current count moved back by the inserts
    SELECT DISTINCT ON (p.name, p.labels) p.name, p.labels, p.basis
      FROM points p
      LEFT JOIN stale s ON s.name = p.name AND s.labels = p.labels
     GROUP BY p.name, p.labels, p.basis, s.name
     ORDER BY p.name, p.labels, count(*) >= 7 DESC, (p.basis = 'inserts') = (s.name IS NOT NULL) DESC
),
fits AS (
    SELECT b.name, b.labels, b.basis,
           @extschema@.capacity_fit_trend(array_agg(p.t ORDER BY p.t), array_agg(p.y ORDER BY p.t),
                                          t.eff_threshold, t.comparator,
                                          CASE WHEN t.rowcount THEN min(r.value) END, 7) AS f
      FROM basis b
      JOIN points p ON p.name = b.name AND p.labels = b.labels AND p.basis = b.basis
      JOIN trig t ON t.name = b.name
      LEFT JOIN rows_now r ON r.name = b.name AND r.labels = b.labels
     GROUP BY b.name, b.labels, b.basis, t.eff_threshold, t.comparator, t.rowcount
),
every AS (   -- every series, and a row for triggers that have none
    SELECT x.name, x.labels FROM series x
    UNION ALL
    SELECT t.name, t.filter FROM trig t
     WHERE NOT EXISTS (SELECT 1 FROM series x WHERE x.name = t.name)
),
judged AS (
    SELECT t.stage, t.name, t.indicator, e.labels, t.eff_threshold, t.comparator, t.aggregate,
           t.rowcount, t.unbound, t.sustain, f.basis, (f.f).*,
           CASE WHEN t.rowcount THEN r.value ELSE (f.f).level END AS cur,
           -- a growth trigger averages its window: it follows the daily rate by half of it
           CASE WHEN t.aggregate = 'growth' THEN t.sustain / 2 ELSE interval '0' END AS lag_by,
           EXISTS (SELECT 1 FROM stale z WHERE z.name = t.name AND z.labels = e.labels) AS stale,
           EXISTS (SELECT 1 FROM unnest(evals) v
                    WHERE v.trigger_name = t.name AND v.labels = e.labels AND v.status = 'firing') AS firing
      FROM every e JOIN trig t ON t.name = e.name
      LEFT JOIN fits f ON f.name = e.name AND f.labels = e.labels
      LEFT JOIN rows_now r ON r.name = e.name AND r.labels = e.labels
),
dated AS (
    SELECT j.*,
           as_of + j.days * interval '1 day' + j.lag_by AS eta_at,
           as_of + j.days_earliest * interval '1 day' + j.lag_by AS early_at,
           as_of + j.days_latest * interval '1 day' + j.lag_by AS late_at
      FROM judged j
)
SELECT d.stage, d.name, d.indicator, d.labels, d.cur, d.eff_threshold, d.comparator,
       CASE WHEN d.method = 'multiplicative' THEN d.cur * (exp(d.slope) - 1) ELSE d.slope END,
       CASE WHEN d.method = 'multiplicative' THEN 100 * (exp(d.slope) - 1) END,
       d.method,
       CASE WHEN d.firing THEN as_of ELSE d.eta_at END,
       CASE WHEN d.firing THEN 0 ELSE round((extract(epoch FROM d.eta_at - as_of) / 86400)::numeric, 1) END,
       CASE WHEN d.firing THEN as_of ELSE d.early_at END,
       CASE WHEN d.firing THEN as_of ELSE d.late_at END,
       CASE WHEN d.firing THEN 'firing'
            WHEN d.verdict IS NULL OR d.verdict = 'insufficient data' OR (d.rowcount AND d.cur IS NULL)
                 THEN 'insufficient data'
            WHEN d.verdict IN ('trend', 'reached') AND d.eta_at IS NOT NULL THEN
                 CASE WHEN d.eta_at <= as_of + horizon THEN 'forecast' ELSE 'beyond horizon' END
            ELSE 'no trend' END,
       coalesce(d.points, 0),
       concat_ws('; ',
           CASE WHEN d.unbound THEN 'table not bound (capacity_bind_table)' END,
           CASE WHEN d.rowcount AND d.cur IS NULL AND d.verdict IS NOT NULL THEN 'no row count in the last day' END,
           CASE WHEN d.verdict IN ('moving away', 'flat or too noisy') THEN d.verdict END,
           CASE WHEN d.verdict = 'reached' THEN 'the fitted level is already past the threshold' END,
           CASE WHEN d.other_days IS NOT NULL THEN
                'the ' || CASE WHEN d.method = 'linear' THEN 'multiplicative' ELSE 'linear' END
                || ' fit is nearly as good (' || round(d.other_days::numeric) || ' days): the band includes it' END,
           CASE WHEN d.verdict <> 'insufficient data' THEN
                CASE d.basis WHEN 'inserts' THEN
                                  CASE WHEN d.stale THEN 'current rows + insert trend: the row counts did not move while rows were inserted'
                                       ELSE 'current rows + insert trend: too few row counts' END
                             WHEN 'rows' THEN 'row counts: the net change'
                             WHEN 'rate' THEN 'daily rate; the trigger''s window average follows'
                             ELSE NULL END END)
  FROM dated d
UNION ALL
-- partition runway: if rollover stopped now, rows for times after the
-- newest partition's upper bound would land in the default partition
SELECT NULL::integer, 'partition_runway'::text, 'partition_runway_days'::text,
       jsonb_build_object('table', p.table_name::text),
       extract(epoch FROM coalesce(h.range_to, as_of) - as_of)::float8 / 86400, 0::float8, '<='::text,
       -1::float8, NULL::float8, 'partition bounds'::text,
       coalesce(h.range_to, as_of),
       round((extract(epoch FROM coalesce(h.range_to, as_of) - as_of) / 86400)::numeric, 1),
       coalesce(h.range_to, as_of), coalesce(h.range_to, as_of),
       CASE WHEN coalesce(h.range_to, as_of) <= as_of THEN 'firing'
            WHEN h.range_to <= as_of + horizon THEN 'forecast'
            ELSE 'beyond horizon' END,
       NULL::integer,
       CASE WHEN p.default_partition THEN 'if rollover stopped, later rows would go to the default partition'
            ELSE 'if rollover stopped, later rows would fail: no default partition' END
  FROM @extschema@.capacity_policy p
  LEFT JOIN @extschema@.capacity_partition_horizon() h ON h.table_name = p.table_name
 WHERE min_stage IS NULL
 ORDER BY 1 NULLS LAST, 2, 4;
END
$fn$;
