-- The stage: where the database stands on its plan.  After the pieces it
-- builds on: trigger evaluation (41_stage_functions.sql), forecasts
-- (44_forecast.sql) and plans (45_plans.sql); the stage actions
-- (46_stage_actions.sql) and the reports (46_report.sql,
-- 47_report_html.sql) come after it.

-- The evaluation behind capacity_stage().
CREATE FUNCTION @extschema@.capacity_stage_eval(as_of timestamptz, bindings jsonb,
                                                horizon interval DEFAULT '6 months')
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cur integer;
    rec integer;
    fired text[];
    contradictions text[] := '{}';
    insufficient text[];
    ev jsonb;
    rows @extschema@.capacity_trigger_row[];
    fc @extschema@.capacity_forecast_row[];
    planned text[];
    plan_stage integer;
    event_rel oid := (bindings ->> 'Event')::oid;
    audit_rel oid := (bindings ->> 'AuditEntry')::oid;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of, horizon, true);
    SELECT h.stage INTO cur FROM @extschema@.capacity_stage_history h
     WHERE h.set_at <= as_of ORDER BY h.set_at DESC, h.id DESC LIMIT 1;
    cur := coalesce(cur, 1);

    rows := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings) e
                   WHERE e.stage IS NOT NULL);
    -- entry triggers of the stages ahead projected to fire within the horizon
    fc := ARRAY(SELECT f FROM @extschema@.capacity_forecast_eval(as_of, horizon, bindings, rows, cur + 1) f
                 WHERE f.status = 'forecast');

    -- per trigger: firing if any series fires; insufficient if none fires
    -- and none has enough data
    SELECT array_agg(t.trigger_name ORDER BY t.stage, t.trigger_name), max(t.stage)
      INTO fired, rec
      FROM (SELECT e.trigger_name, e.stage FROM unnest(rows) e
             WHERE e.stage > cur GROUP BY 1, 2 HAVING bool_or(e.status = 'firing')) t;

    SELECT array_agg(t.trigger_name ORDER BY t.trigger_name) INTO insufficient
      FROM (SELECT e.trigger_name FROM unnest(rows) e
             WHERE e.stage = cur + 1 GROUP BY 1
            HAVING NOT bool_or(e.status IN ('firing', 'ok', 'not declared'))) t;

    -- what the database shows against what was declared
    IF cur >= 2 AND NOT EXISTS (SELECT 1 FROM pg_stat_replication r WHERE r.state = 'streaming') THEN
        contradictions := contradictions || 'stage 2+ declared but no streaming standby is connected'::text;
    END IF;
    IF cur >= 3 THEN
        IF event_rel IS NULL OR NOT EXISTS (
               SELECT 1 FROM pg_class c JOIN @extschema@.capacity_policy p ON p.table_name::oid = c.oid
                WHERE c.oid = event_rel AND c.relkind = 'p') THEN
            contradictions := contradictions || 'stage 3+ declared but Event is not a managed partitioned table'::text;
        END IF;
        IF audit_rel IS NULL OR NOT EXISTS (
               SELECT 1 FROM pg_class c JOIN @extschema@.capacity_policy p ON p.table_name::oid = c.oid
                WHERE c.oid = audit_rel AND c.relkind = 'p') THEN
            contradictions := contradictions || 'stage 3+ declared but AuditEntry is not a managed partitioned table'::text;
        END IF;
    END IF;

    -- per trigger, its earliest series; the plan is for the stage due first
    SELECT array_agg(f.trigger_name ORDER BY f.eta, f.stage, f.trigger_name),
           (array_agg(f.stage ORDER BY f.eta, f.stage))[1]
      INTO planned, plan_stage
      FROM (SELECT DISTINCT ON (x.trigger_name) x.* FROM unnest(fc) x
             ORDER BY x.trigger_name, x.eta) f;

    SELECT jsonb_build_object(
             'triggers', coalesce(jsonb_object_agg(x.trigger_name, x.detail), '{}'),
             'contradictions', to_jsonb(contradictions),
             'insufficient_data', to_jsonb(coalesce(insufficient, '{}'::text[])),
             'forecasts', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                 'trigger', f.trigger_name, 'stage', f.stage, 'labels', f.labels,
                                 'eta', f.eta, 'days_left', f.days_left,
                                 'eta_earliest', f.eta_earliest, 'eta_latest', f.eta_latest,
                                 'method', f.method, 'value', f.current_value,
                                 'threshold', f.threshold)) ORDER BY f.eta, f.trigger_name), '[]')
                             FROM unnest(fc) f),
             'horizon_end', as_of + horizon,
             -- stage 4 carried out: the tenants moved to their tier (capacity_tenant_move_cutover)
             'tenant_tiers', (SELECT coalesce(jsonb_object_agg(t.tenant, jsonb_build_object(
                                  'tier', t.tier, 'member', t.member, 'moved_at', t.moved_at)), '{}')
                                FROM @extschema@.capacity_tenant_tier t))
      INTO ev
      FROM (SELECT e.trigger_name,
                   jsonb_build_object('stage', min(e.stage),
                     'status', CASE WHEN bool_or(e.status = 'firing') THEN 'firing'
                                    WHEN bool_or(e.status = 'ok') THEN 'ok'
                                    ELSE min(e.status) END,
                     'series', jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                         'labels', e.labels, 'value', e.value, 'deciding_value', e.deciding_value,
                         'threshold', e.threshold, 'threshold_is_default', e.threshold_is_default,
                         'window', e.sustain::text, 'samples', e.samples,
                         'window_start', e.window_start, 'status', e.status))
                       ORDER BY e.labels::text)) AS detail
              FROM unnest(rows) e WHERE e.stage > cur
             GROUP BY e.trigger_name) x;

    current_stage := cur;
    SELECT d.name INTO current_name FROM @extschema@.capacity_stage_def d WHERE d.stage = cur;
    -- promote (a trigger fires) > plan (one is forecast within the
    -- horizon: recommended is the stage to plan for) > review > stay
    recommended_stage := CASE WHEN rec IS NOT NULL AND rec > cur THEN rec
                              WHEN plan_stage IS NOT NULL THEN plan_stage
                              ELSE cur END;
    SELECT d.name, d.runbook INTO recommended_name, runbook
      FROM @extschema@.capacity_stage_def d WHERE d.stage = recommended_stage;
    decision := CASE WHEN rec IS NOT NULL AND rec > cur THEN 'promote'
                     WHEN plan_stage IS NOT NULL THEN 'plan'
                     WHEN cardinality(contradictions) > 0 OR insufficient IS NOT NULL THEN 'review'
                     ELSE 'stay' END;
    firing := CASE WHEN decision = 'plan' THEN planned ELSE coalesce(fired, '{}') END;
    evidence := ev;
    evaluated_at := as_of;
    RETURN NEXT;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage_eval(timestamptz, jsonb, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage_eval(timestamptz, jsonb, interval) TO pg_monitor;

-- capacity_stage() for any plan: the six-stage ladder's evaluation or a
-- plan's (capacity_plan_eval, 45_plans.sql), to which two checks are added
-- here, as the ladder has them:
--   contradictions: the current tier's enter rule needs a flag declared
--     (capacity_declare) and no group of it has its flags declared: the
--     tier set contradicts what entering it required (review);
--   forecast (plan): when the plan would stay (or review only for lack of
--     data), a tier above or a closed gate whose enter rule is projected to
--     hold within the horizon: a group holds by the latest eta of its
--     conditions (firing ones now; declared ones only when declared); the
--     step due first is recommended, firing lists that group's conditions.
--     A violated guardrail or a gate waiting for its checklist stays review.
CREATE FUNCTION @extschema@.capacity_plan_stage(as_of timestamptz, bindings jsonb, horizon interval, plan_name text)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan_name);
    e record;
    fc @extschema@.capacity_forecast_row[];
    contra text[];
    due record;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of, horizon, true);
    IF p = 'matter-six-stage' THEN
        RETURN QUERY SELECT * FROM @extschema@.capacity_stage_eval(as_of, bindings, horizon);
        RETURN;
    END IF;
    SELECT * INTO e FROM @extschema@.capacity_plan_eval(as_of, bindings, p);

    -- contradictions: flags the current tier's entry needs, not declared
    SELECT array_agg(DISTINCT format('tier %s is set but %s is not declared', c.step, c.declared_flag)
                     ORDER BY format('tier %s is set but %s is not declared', c.step, c.declared_flag))
      INTO contra
      FROM @extschema@.capacity_plan_condition c
     WHERE c.plan = p AND c.step = e.current_name AND c.rule = 'enter' AND c.declared_flag IS NOT NULL
       AND coalesce(e.evidence #>> ARRAY['conditions', c.name, 'status'], '') <> 'firing'
       AND NOT EXISTS (   -- a group of the rule whose flags are all declared
             SELECT 1 FROM @extschema@.capacity_plan_condition g
              WHERE g.plan = p AND g.step = c.step AND g.rule = 'enter'
              GROUP BY g.grp
             HAVING bool_and(g.declared_flag IS NULL
                             OR e.evidence #>> ARRAY['conditions', g.name, 'status'] = 'firing'));

    -- forecasts of the conditions of the moves ahead
    IF e.decision IN ('stay', 'review')
       AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                        WHERE st ->> 'status' IN ('violated', 'evidence met, checklist incomplete')) THEN
        -- only the metric conditions of the moves ahead are fitted
        fc := ARRAY(SELECT f FROM @extschema@.capacity_plan_forecast_eval(as_of, horizon, bindings,
                        '{}'::@extschema@.capacity_trigger_row[], NULL::integer, p,
                        ARRAY(SELECT c.name FROM @extschema@.capacity_plan_condition c
                                JOIN @extschema@.capacity_plan_step s ON s.plan = c.plan AND s.name = c.step
                               WHERE c.plan = p AND c.rule = 'enter' AND c.indicator IS NOT NULL
                                 AND ((s.kind = 'tier' AND s.ordinal > e.current_stage)
                                      OR (s.kind = 'gate' AND NOT EXISTS (
                                            SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                                             WHERE st ->> 'name' = s.name AND st ->> 'status' = 'open'))))) f
                     WHERE f.status = 'forecast');
        WITH steps AS (
            SELECT s.* FROM @extschema@.capacity_plan_step s
             WHERE s.plan = p
               AND ((s.kind = 'tier' AND s.ordinal > e.current_stage)
                    OR (s.kind = 'gate' AND NOT EXISTS (
                          SELECT 1 FROM jsonb_array_elements(e.evidence -> 'steps') st
                           WHERE st ->> 'name' = s.name AND st ->> 'status' = 'open')))
        ), cond AS (
            SELECT c.step, c.grp, c.name,
                   CASE WHEN e.evidence #>> ARRAY['conditions', c.name, 'status'] = 'firing' THEN as_of
                        WHEN c.declared_flag IS NULL THEN (SELECT min(f.eta) FROM unnest(fc) f WHERE f.trigger_name = c.name)
                   END AS eta
              FROM @extschema@.capacity_plan_condition c JOIN steps s ON s.name = c.step
             WHERE c.plan = p AND c.rule = 'enter'
        ), grp AS (
            SELECT c.step, c.grp, max(c.eta) AS eta,
                   array_agg(c.name ORDER BY c.name) FILTER (WHERE c.eta > as_of) AS forecast,
                   array_agg(c.name ORDER BY c.name) AS conds
              FROM cond c GROUP BY 1, 2
            HAVING bool_and(c.eta IS NOT NULL) AND max(c.eta) > as_of
        )
        SELECT g.step, g.eta, g.conds, s.kind, s.ordinal, s.runbook INTO due
          FROM grp g JOIN steps s ON s.name = g.step
         ORDER BY g.eta, s.kind <> 'tier', s.ordinal DESC, g.grp LIMIT 1;
        IF due.step IS NOT NULL THEN
            e.decision := 'plan';
            IF due.kind = 'tier' THEN
                e.recommended_stage := due.ordinal;
                e.recommended_name := due.step;
            END IF;
            e.runbook := coalesce(due.runbook, e.runbook);
            e.firing := due.conds;
        END IF;
        e.evidence := e.evidence || jsonb_build_object(
            'forecasts', (SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                                'condition', f.trigger_name, 'stage', f.stage, 'labels', f.labels,
                                'eta', f.eta, 'days_left', f.days_left,
                                'eta_earliest', f.eta_earliest, 'eta_latest', f.eta_latest,
                                'method', f.method, 'value', f.current_value,
                                'threshold', f.threshold)) ORDER BY f.eta, f.trigger_name), '[]')
                            FROM unnest(fc) f),
            'plan', CASE WHEN due.step IS NOT NULL THEN jsonb_build_object('step', due.step, 'by', due.eta) END,
            'horizon_end', as_of + horizon);
    END IF;
    e.evidence := e.evidence || jsonb_build_object('contradictions', to_jsonb(coalesce(contra, '{}'::text[])));
    IF contra IS NOT NULL AND e.decision = 'stay' THEN
        e.decision := 'review';
    END IF;
    RETURN QUERY SELECT e.current_stage, e.current_name, e.recommended_stage, e.recommended_name, e.decision,
                        e.firing, e.evidence, e.runbook, e.evaluated_at;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text) TO pg_monitor;

CREATE FUNCTION @extschema@.capacity_stage(as_of timestamptz DEFAULT now(),
                                           horizon interval DEFAULT '6 months',
                                           plan text DEFAULT NULL)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_plan_stage(as_of, @extschema@.capacity_bindings(), horizon, plan) $$;
COMMENT ON FUNCTION @extschema@.capacity_stage IS
    'Where the database stands on a plan (plan: an installed plan''s name; NULL: the active one, matter-six-stage after install): '
    'whether a trigger says to move (promote), move back (rollback, plans with exit rules) or will within the horizon (plan), and the evidence. '
    'Error 42704 for a plan that is not installed.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) TO pg_monitor;
