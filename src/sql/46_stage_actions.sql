-- Stage actions: declare the stage, declared flags, SLO thresholds, table
-- bindings, and the weekly decision.  Each validates first and changes
-- nothing on bad input.

CREATE FUNCTION @extschema@.capacity_set_stage(stage integer, note text)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_stage(integer, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_declare(flag text, note text, active boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('declare a flag');
    IF flag IS NULL OR NOT (EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t WHERE t.declared_flag = flag)
                            OR EXISTS (SELECT 1 FROM @extschema@.capacity_plan_condition c WHERE c.declared_flag = flag)) THEN
        SELECT string_agg(DISTINCT f.flag, ', ' ORDER BY f.flag) INTO known
          FROM (SELECT t.declared_flag FROM @extschema@.capacity_trigger t
                UNION ALL
                SELECT c.declared_flag FROM @extschema@.capacity_plan_condition c) f(flag)
         WHERE f.flag IS NOT NULL;
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_declare(text, text, boolean) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_set_threshold(setting text, value double precision)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_threshold(text, double precision) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_bind_table(logical_name text, tbl regclass)
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_bind_table(text, regclass) FROM PUBLIC;

-- The weekly review: record the decision with the evidence of this moment,
-- for the six-stage ladder or a plan (plan_name resolved by the caller),
-- with the caller's references to the gate artifacts it rests on.
CREATE FUNCTION @extschema@.capacity_decide_at(decision text, note text, as_of timestamptz, bindings jsonb,
                                               plan_name text, evidence_refs text[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
    br jsonb;
    p text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('record a decision');
    IF decision IS NULL OR decision NOT IN ('stay', 'promote', 'rollback') THEN
        RAISE EXCEPTION 'matter_capacity: decision "%" is not one of stay, promote, rollback', coalesce(decision, 'NULL')
            USING ERRCODE = '22023', HINT = 'Record stay, promote or rollback; set the new stage with capacity_set_stage().';
    END IF;
    PERFORM @extschema@.capacity_check_time('capacity_decide'::text, as_of);
    IF evidence_refs IS NOT NULL AND (array_position(evidence_refs, NULL) IS NOT NULL
                                      OR EXISTS (SELECT 1 FROM unnest(evidence_refs) r WHERE btrim(r) = '')) THEN
        RAISE EXCEPTION 'matter_capacity: evidence_refs of the decision must not hold NULL or empty references'
            USING ERRCODE = '22004', HINT = 'Pass the paths or run ids of the gate artifacts, e.g. ARRAY[''ci/run/4711/plan-check.tap''].';
    END IF;
    p := @extschema@.capacity_plan_resolve(plan_name);
    SELECT * INTO s FROM @extschema@.capacity_plan_stage(as_of, bindings, interval '6 months', p);
    SELECT coalesce(jsonb_agg(jsonb_build_object('trigger', e.trigger_name, 'stage', e.stage,
                        'labels', e.labels, 'value', e.value, 'threshold', e.threshold,
                        'since', e.window_start) ORDER BY e.stage, e.trigger_name), '[]')
      INTO br
      FROM @extschema@.capacity_trigger_eval(as_of, bindings, CASE WHEN p = 'matter-six-stage' THEN NULL ELSE p END) e
     WHERE e.status = 'firing';
    INSERT INTO @extschema@.capacity_decision
        (decided_at, decision, note, current_stage, recommended_stage, evaluation, firing, breaches, evidence, decided_by,
         plan, current_tier, evidence_refs)
    VALUES (as_of, decision, note, s.current_stage, s.recommended_stage, s.decision, s.firing, br, s.evidence, session_user,
            p, s.current_name, coalesce(evidence_refs, '{}'));
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) FROM PUBLIC;

CREATE FUNCTION @extschema@.capacity_decide(decision text, note text, as_of timestamptz DEFAULT now(),
                                            plan text DEFAULT NULL, evidence_refs text[] DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    -- runs as the caller, to resolve the hot tables on the caller's search
    -- path (capacity_bindings reads capacity_table_binding); the recording
    -- is capacity_decide_at's.  A role granted capacity_decide alone lacks
    -- both: say what to grant, not "permission denied"
    IF NOT pg_catalog.has_function_privilege(
             '@extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[])', 'EXECUTE')
       OR NOT pg_catalog.has_table_privilege('@extschema@.capacity_table_binding', 'SELECT') THEN
        RAISE EXCEPTION 'matter_capacity: role % may not record decisions: capacity_decide also needs EXECUTE on capacity_decide_at and SELECT on capacity_table_binding', current_user
            USING ERRCODE = '42501',
                  HINT = 'GRANT pg_monitor TO the reviewer''s role (it reads capacity_table_binding) and '
                         'GRANT EXECUTE ON FUNCTION capacity_decide(text, text, timestamptz, text, text[]), '
                         'capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) TO it.';
    END IF;
    PERFORM @extschema@.capacity_decide_at(decision, note, as_of, @extschema@.capacity_bindings(), plan, evidence_refs);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_decide IS
    'Record the review''s decision (stay, promote, rollback) with the evaluation and evidence of as_of for a plan '
    '(NULL: the active one) and evidence_refs, the paths or run ids of the artifacts it rests on. '
    'Errors: 22023 unknown decision, 42704 plan not installed, 22004 NULL or empty reference, '
    '42501 the role lacks EXECUTE on capacity_decide_at or SELECT on capacity_table_binding (grant pg_monitor and both functions: '
    'capacity_decide resolves the hot tables as the caller, capacity_decide_at records).';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide(text, text, timestamptz, text, text[]) FROM PUBLIC;

CREATE VIEW @extschema@.capacity_trigger_status AS
SELECT e.trigger_name, e.stage, e.indicator, e.labels, e.value, e.threshold,
       e.threshold_is_default, e.comparator, e.sustain AS "window", e.samples,
       e.status = 'firing' AS fired, e.status, e.description
  FROM @extschema@.capacity_trigger_eval(now(), @extschema@.capacity_bindings()) e;
GRANT SELECT ON @extschema@.capacity_trigger_status TO pg_monitor;

CREATE VIEW @extschema@.capacity_stages AS
WITH s AS (SELECT * FROM @extschema@.capacity_stage(plan => 'matter-six-stage'))
SELECT d.stage, d.name,
       CASE WHEN d.stage = s.current_stage THEN 'current'
            WHEN d.stage < s.current_stage THEN 'passed'
            WHEN d.stage = s.recommended_stage AND s.decision = 'plan' THEN 'plan'
            WHEN d.stage = s.recommended_stage THEN 'recommended'
            ELSE 'ahead' END AS status,
       (SELECT array_agg(t.name ORDER BY t.name) FROM @extschema@.capacity_trigger t WHERE t.stage = d.stage) AS triggers,
       (SELECT array_agg(f ORDER BY f) FROM unnest(s.firing) f
         WHERE s.decision <> 'plan'
           AND f IN (SELECT t.name FROM @extschema@.capacity_trigger t WHERE t.stage = d.stage)) AS firing,
       (SELECT array_agg(f ->> 'trigger' ORDER BY f ->> 'trigger') FROM jsonb_array_elements(s.evidence -> 'forecasts') f
         WHERE (f ->> 'stage')::integer = d.stage) AS forecast,
       d.summary, d.ceiling, d.runbook, d.slo_impact
  FROM @extschema@.capacity_stage_def d CROSS JOIN s
 ORDER BY d.stage;
GRANT SELECT ON @extschema@.capacity_stages TO pg_monitor;

CREATE VIEW @extschema@.capacity_decisions AS
SELECT id, decided_at, decision, note, current_stage, recommended_stage, evaluation,
       firing, breaches, evidence, decided_by, plan, current_tier, evidence_refs
  FROM @extschema@.capacity_decision;
GRANT SELECT ON @extschema@.capacity_decisions TO pg_monitor;
