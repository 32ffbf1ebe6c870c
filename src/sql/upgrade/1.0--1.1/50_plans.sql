-- Plans (issue 14): the pieces of 40_stages.sql, 41_stage_functions.sql,
-- 42_stage_actions.sql, 45_plans.sql, 46_plan_presets.sql, 80_dump.sql and
-- 90_privileges.sql that 1.1 adds or changes.  capacity_stage,
-- capacity_decide and capacity_decide_at change signature (a plan
-- argument, evidence references): they are dropped with the view that
-- depends on capacity_stage and made again.

-- the decision record gains its plan, tier and evidence references (at the end)
-- (evidence_refs is filled before it gets its default and NOT NULL, so the
-- column carries no "missing value" a fresh install's does not)
ALTER TABLE @extschema@.capacity_decision
    ADD COLUMN plan text,
    ADD COLUMN current_tier text,
    ADD COLUMN evidence_refs text[];
UPDATE @extschema@.capacity_decision SET evidence_refs = '{}';
ALTER TABLE @extschema@.capacity_decision
    ALTER COLUMN evidence_refs SET DEFAULT '{}',
    ALTER COLUMN evidence_refs SET NOT NULL;

-- Plans (1.1): a plan is a named set of tiers (an ordered ladder), gates
-- (independent decisions), guardrails and alerts, each with conditions.
-- The shipped six-stage ladder is the plan 'matter-six-stage' (doc NULL:
-- its stages are capacity_stage_def and its triggers capacity_trigger);
-- every other plan is imported from a JSON document (45_plans.sql) and its
-- conditions are evaluated by the same capacity_trigger_eval.  Dump
-- registrations are at the end of 80_dump.sql.
CREATE TABLE @extschema@.capacity_plan (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]*$'),
    description text NOT NULL,
    doc         jsonb,                               -- the document imported (NULL: matter-six-stage)
    active      boolean NOT NULL DEFAULT false,      -- evaluated by capacity_stage() without a plan
    shipped     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE @extschema@.capacity_plan IS
    'Installed plans; the active one is what capacity_stage() evaluates when no plan is named.';

CREATE TABLE @extschema@.capacity_plan_step (
    plan        text NOT NULL REFERENCES @extschema@.capacity_plan ON DELETE CASCADE,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('tier', 'gate', 'guardrail', 'alert')),
    ordinal     integer NOT NULL,        -- tiers: rung of the ladder from 1; others: place in the document
    from_tier   text,                    -- tiers: the tier it is entered from (NULL: the first)
    one_way     boolean NOT NULL DEFAULT false,   -- tiers: never suggest moving back down
    runbook     text,
    description text NOT NULL DEFAULT '',
    PRIMARY KEY (plan, name)
);

-- A step's rule (enter, exit, checklist) holds when every condition of one
-- of its groups holds: groups are any-of, conditions in a group all-of.
CREATE TABLE @extschema@.capacity_plan_condition (
    plan              text NOT NULL,
    name              text NOT NULL,
    step              text NOT NULL,
    rule              text NOT NULL CHECK (rule IN ('enter', 'exit', 'checklist')),
    grp               integer NOT NULL,
    indicator         text,
    label_filter      jsonb NOT NULL DEFAULT '{}',
    bind_table        text,
    aggregate         text NOT NULL DEFAULT 'all'
                      CHECK (aggregate IN ('all', 'latest', 'growth', 'ratio', 'days')),
    ratio_filter      jsonb,
    per_period        interval,
    comparator        text NOT NULL DEFAULT '>' CHECK (comparator IN ('>', '>=', '<', '<=')),
    threshold         double precision,
    threshold_setting text,
    sustain           interval NOT NULL DEFAULT '0',
    days              integer CHECK (days BETWEEN 1 AND 366),  -- 'days': N consecutive UTC days
    daily             text CHECK (daily IN ('avg', 'max', 'min', 'p95')),  -- 'days': each day's aggregate
    declared_flag     text,
    description       text NOT NULL,
    PRIMARY KEY (plan, name),
    FOREIGN KEY (plan, step) REFERENCES @extschema@.capacity_plan_step ON DELETE CASCADE,
    CHECK ((declared_flag IS NULL) = (indicator IS NOT NULL)),
    CHECK (indicator IS NULL OR threshold IS NOT NULL),
    CHECK ((aggregate = 'days') = (days IS NOT NULL))
);

CREATE TABLE @extschema@.capacity_plan_tier_history (
    id          bigserial PRIMARY KEY,
    plan        text NOT NULL,
    tier        text NOT NULL,
    note        text,
    set_at      timestamptz NOT NULL,
    set_by      name NOT NULL
);

-- Shipped plan documents, installed by capacity_plan_install(name).
CREATE TABLE @extschema@.capacity_plan_preset (
    name        text PRIMARY KEY,
    doc         jsonb NOT NULL
);

-- One UTC day of one series: its aggregates (conditions over N days).
CREATE TYPE @extschema@.capacity_day_point AS (
    indicator text, labels jsonb, day timestamptz, avg double precision,
    max double precision, min double precision, p95 double precision, n bigint);

-- Each trigger with its effective threshold (times its SLO setting) and
-- the label filter its series must match: a bound hot table adds
-- {"table": name}.  Shared by the evaluation and the forecast.  plan_name
-- NULL: the six-stage ladder's capacity_trigger; a plan's name: that
-- plan's conditions (stage is their step's ordinal; days and daily are
-- set for N-consecutive-UTC-day conditions, whose sustain is N days).
CREATE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb, plan_name text)
RETURNS TABLE(name text, stage integer, indicator text, label_filter jsonb, aggregate text,
              ratio_filter jsonb, per_period interval, comparator text, sustain interval,
              declared_flag text, description text, eff_threshold double precision,
              thr_default boolean, filter jsonb, unbound boolean, days integer, daily text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.name, t.stage, t.indicator, t.label_filter, t.aggregate, t.ratio_filter,
           t.per_period, t.comparator, t.sustain, t.declared_flag, t.description,
           t.threshold * coalesce(s.value, 1),
           (t.threshold_setting IS NOT NULL AND s.value = s.default_value),
           CASE WHEN t.bind_table IS NULL THEN t.label_filter
                ELSE t.label_filter || jsonb_build_object('table',
                       ((bindings ->> t.bind_table)::oid)::regclass::text) END,
           (t.bind_table IS NOT NULL AND bindings ->> t.bind_table IS NULL),
           t.days, t.daily
      FROM (SELECT c.name, c.stage, c.indicator, c.label_filter, c.bind_table, c.aggregate,
                   c.ratio_filter, c.per_period, c.comparator, c.threshold, c.threshold_setting,
                   c.sustain, c.declared_flag, c.description, NULL::integer AS days, NULL::text AS daily
              FROM @extschema@.capacity_trigger c
             WHERE capacity_trigger_resolved.plan_name IS NULL
            UNION ALL
            SELECT c.name, st.ordinal, c.indicator, c.label_filter, c.bind_table, c.aggregate,
                   c.ratio_filter, c.per_period, c.comparator, c.threshold, c.threshold_setting,
                   CASE WHEN c.aggregate = 'days' THEN c.days * interval '1 day' ELSE c.sustain END,
                   c.declared_flag, c.description, c.days, coalesce(c.daily, 'avg')
              FROM @extschema@.capacity_plan_condition c
              JOIN @extschema@.capacity_plan_step st ON st.plan = c.plan AND st.name = c.step
             WHERE c.plan = capacity_trigger_resolved.plan_name) t
      LEFT JOIN @extschema@.capacity_setting s ON s.name = t.threshold_setting
$$;

-- The six-stage ladder's triggers (as in 1.0).
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_resolved(bindings jsonb)
RETURNS TABLE(name text, stage integer, indicator text, label_filter jsonb, aggregate text,
              ratio_filter jsonb, per_period interval, comparator text, sustain interval,
              declared_flag text, description text, eff_threshold double precision,
              thr_default boolean, filter jsonb, unbound boolean)
LANGUAGE sql STABLE
AS $$
    SELECT r.name, r.stage, r.indicator, r.label_filter, r.aggregate, r.ratio_filter, r.per_period,
           r.comparator, r.sustain, r.declared_flag, r.description, r.eff_threshold, r.thr_default,
           r.filter, r.unbound
      FROM @extschema@.capacity_trigger_resolved(bindings, NULL::text) r
$$;

-- One row per trigger and series: its value, threshold and status at as_of.
--
-- Samples are read first, by statements planned with their bound values
-- (EXECUTE ... USING), so capacity_sample is pruned to the one or two day
-- partitions the windows touch: one scan for every window of an hour or
-- so, and two short index probes per growth series (first and last value
-- of the counter).  The set logic then runs over those arrays with a
-- cached plan.  Conditions over N consecutive UTC days read each day's
-- aggregate of the N complete days before as_of's day (the daily rollups,
-- else the raw samples; a day's p95 always from the raw samples):
-- firing when every one of the N days breaches, ok as soon as one day is
-- under, insufficient data when days are missing and none is under.
-- plan_name: as in capacity_trigger_resolved.
CREATE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb, plan_name text)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    maxwin interval;
    inds text[];
    lo timestamptz;
    hi timestamptz;
    w @extschema@.capacity_sample[];
    gr @extschema@.capacity_growth_point[] := '{}';
    gt record;
    gs record;
    fp record;
    lp record;
    day0 timestamptz := date_trunc('day', as_of, 'UTC');
    maxdays integer;
    dinds text[];
    pinds text[];
    ind text;
    missing timestamptz[];
    raw @extschema@.capacity_day_point[];
    dp @extschema@.capacity_day_point[];
BEGIN
    SELECT coalesce(max(greatest(tr.sustain, interval '1 hour')), interval '1 hour'),
           array_agg(DISTINCT tr.indicator)
      INTO maxwin, inds
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
     WHERE tr.indicator IS NOT NULL AND tr.aggregate NOT IN ('growth', 'days');
    lo := as_of - maxwin;
    -- EXECUTE ... USING plans once with the values: the bounds prune
    EXECUTE 'SELECT array_agg(s) FROM @extschema@.capacity_sample s
              WHERE s.indicator = ANY ($1) AND s.sampled_at > $2 AND s.sampled_at <= $3'
       INTO w USING inds, lo, as_of;
    w := coalesce(w, '{}');

    -- each UTC day's aggregates of the series day conditions read: the
    -- daily rollups the sampler keeps, and the raw samples (one pruned
    -- grouped scan per indicator) for the days a series lacks a rollup of
    -- and for every day of an indicator whose days need their p95
    SELECT max(tr.days), array_agg(DISTINCT tr.indicator),
           coalesce(array_agg(DISTINCT tr.indicator) FILTER (WHERE tr.daily = 'p95'), '{}')
      INTO maxdays, dinds, pinds
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
     WHERE tr.aggregate = 'days' AND NOT tr.unbound;
    dp := '{}';
    IF maxdays IS NOT NULL THEN
        lo := day0 - maxdays * interval '1 day';
        EXECUTE 'SELECT array_agg(ROW(d.indicator, d.labels, d.day, d.avg, d.max, d.min, NULL, d.count)::@extschema@.capacity_day_point)
                   FROM @extschema@.capacity_sample_daily d
                  WHERE d.indicator = ANY ($1) AND d.day >= $2 AND d.day < $3'
           INTO dp USING dinds, lo, day0;
        dp := coalesce(dp, '{}');
        FOREACH ind IN ARRAY dinds LOOP
            -- a day is read raw when it has no rollup, or a series alive
            -- since then has none
            missing := ARRAY(SELECT g FROM generate_series(lo, day0 - interval '1 day', interval '1 day') g
                              WHERE ind = ANY (pinds)
                                 OR NOT EXISTS (SELECT 1 FROM unnest(dp) p WHERE p.indicator = ind AND p.day = g)
                                 OR EXISTS (SELECT 1 FROM @extschema@.capacity_latest_sample l
                                             WHERE l.indicator = ind AND l.sampled_at >= g
                                               AND NOT EXISTS (SELECT 1 FROM unnest(dp) p
                                                                WHERE p.indicator = ind AND p.labels = l.labels AND p.day = g)));
            CONTINUE WHEN cardinality(missing) = 0;
            dp := ARRAY(SELECT p FROM unnest(dp) p WHERE NOT (p.indicator = ind AND p.day = ANY (missing)));
            EXECUTE format('SELECT array_agg(ROW(d.indicator, d.labels, d.day, d.avg, d.max, d.min, d.p95, d.n)::@extschema@.capacity_day_point)
                              FROM (SELECT s.indicator, s.labels, date_trunc(''day'', s.sampled_at, ''UTC'') AS day,
                                           avg(s.value) AS avg, max(s.value) AS max, min(s.value) AS min, %s AS p95, count(*) AS n
                                      FROM @extschema@.capacity_sample s
                                     WHERE s.indicator = $1 AND s.sampled_at >= $2 AND s.sampled_at < $3
                                     GROUP BY 1, 2, 3) d
                             WHERE d.day = ANY ($4)',
                           CASE WHEN ind = ANY (pinds) THEN 'percentile_cont(0.95) WITHIN GROUP (ORDER BY s.value)'
                                ELSE 'NULL::double precision' END)
               INTO raw USING ind, missing[1], missing[cardinality(missing)] + interval '1 day', missing;
            dp := dp || coalesce(raw, '{}');
        END LOOP;
    END IF;

    FOR gt IN SELECT tr.name, tr.indicator, tr.sustain,
                    greatest(tr.sustain * 0.1, interval '2 minutes') AS tol, tr.filter
               FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) tr
              WHERE tr.aggregate = 'growth' AND NOT tr.unbound
    LOOP
        FOR gs IN SELECT ls.labels FROM @extschema@.capacity_latest_sample ls
                  WHERE ls.indicator = gt.indicator AND ls.labels @> gt.filter
        LOOP
            lo := as_of - gt.sustain - gt.tol;
            hi := least(as_of - gt.sustain + gt.tol, as_of);
            EXECUTE 'SELECT s.sampled_at, s.value FROM @extschema@.capacity_sample s
                      WHERE s.indicator = $1 AND s.labels = $2 AND s.sampled_at >= $3 AND s.sampled_at <= $4
                      ORDER BY s.sampled_at LIMIT 1'
               INTO fp USING gt.indicator, gs.labels, lo, hi;
            lo := as_of - gt.tol;
            EXECUTE 'SELECT s.sampled_at, s.value FROM @extschema@.capacity_sample s
                      WHERE s.indicator = $1 AND s.labels = $2 AND s.sampled_at >= $3 AND s.sampled_at <= $4
                      ORDER BY s.sampled_at DESC LIMIT 1'
               INTO lp USING gt.indicator, gs.labels, lo, as_of;
            gr := gr || ROW(gt.name, gs.labels, fp.sampled_at, fp.value, lp.sampled_at, lp.value)::@extschema@.capacity_growth_point;
        END LOOP;
    END LOOP;

    RETURN QUERY
WITH ws AS MATERIALIZED (SELECT * FROM unnest(w)),
trig AS (
    SELECT t.*, greatest(t.sustain * 0.1, interval '2 minutes') AS tol
      FROM @extschema@.capacity_trigger_resolved(bindings, plan_name) t
),
series AS (   -- every series a metric trigger looks at
    SELECT t.name, l.labels
      FROM trig t JOIN @extschema@.capacity_latest_sample l
        ON l.indicator = t.indicator AND l.labels @> t.filter
     WHERE t.indicator IS NOT NULL AND NOT t.unbound
),
breach AS (   -- 'all' and 'latest': the samples of the window, per series
    SELECT t.name, x.labels, count(*) AS n, min(s.sampled_at) AS first_at, max(s.sampled_at) AS last_at,
           (array_agg(s.value ORDER BY s.sampled_at DESC))[1] AS last_value,
           CASE WHEN t.comparator IN ('>', '>=') THEN min(s.value) ELSE max(s.value) END AS deciding,
           bool_and(CASE t.comparator WHEN '>' THEN s.value > t.eff_threshold
                                      WHEN '>=' THEN s.value >= t.eff_threshold
                                      WHEN '<' THEN s.value < t.eff_threshold
                                      ELSE s.value <= t.eff_threshold END) AS all_breach,
           (array_agg(CASE t.comparator WHEN '>' THEN s.value > t.eff_threshold
                                        WHEN '>=' THEN s.value >= t.eff_threshold
                                        WHEN '<' THEN s.value < t.eff_threshold
                                        ELSE s.value <= t.eff_threshold END
                      ORDER BY s.sampled_at DESC))[1] AS last_breach
      FROM trig t
      JOIN series x ON x.name = t.name
      JOIN ws s
        ON s.indicator = t.indicator AND s.labels = x.labels AND s.sampled_at <= as_of
       AND s.sampled_at > as_of - CASE WHEN t.aggregate = 'latest' THEN interval '1 hour' ELSE t.sustain END
     WHERE t.aggregate IN ('all', 'latest')
     GROUP BY t.name, t.comparator, x.labels
),
days AS (     -- 'days': each of the N UTC days before as_of's day, per series
    SELECT t.name, x.labels, count(*) AS n, min(d.day) AS first_day,
           (array_agg(d.v ORDER BY d.day DESC))[1] AS last_value,
           CASE WHEN t.comparator IN ('>', '>=') THEN min(d.v) ELSE max(d.v) END AS deciding,
           bool_and(CASE t.comparator WHEN '>' THEN d.v > t.eff_threshold
                                      WHEN '>=' THEN d.v >= t.eff_threshold
                                      WHEN '<' THEN d.v < t.eff_threshold
                                      ELSE d.v <= t.eff_threshold END) AS all_breach
      FROM trig t
      JOIN series x ON x.name = t.name
      JOIN (SELECT p.indicator, p.labels, p.day,
                   CASE tt.daily WHEN 'max' THEN p.max WHEN 'min' THEN p.min
                                 WHEN 'p95' THEN p.p95 ELSE p.avg END AS v, tt.name
              FROM unnest(dp) p JOIN trig tt ON tt.indicator = p.indicator AND tt.aggregate = 'days') d
        ON d.name = t.name AND d.labels = x.labels
       AND d.day >= day0 - t.days * interval '1 day' AND d.day < day0
     WHERE t.aggregate = 'days'
     GROUP BY t.name, t.comparator, x.labels
),
growth AS (   -- 'growth': first and last value of a cumulative counter (read above)
    SELECT g.name, g.labels, g.first_at, g.first_v, g.last_at, g.last_v FROM unnest(gr) g
),
ratio AS (    -- 'ratio': window averages of the series and of the reference series, one pass
    SELECT t.name, t.label_filter AS labels,
           avg(s.value) FILTER (WHERE s.labels @> t.label_filter) AS num,
           avg(s.value) FILTER (WHERE s.labels @> t.ratio_filter) AS den,
           count(*) FILTER (WHERE s.labels @> t.label_filter OR s.labels @> t.ratio_filter) AS n,
           greatest(min(s.sampled_at) FILTER (WHERE s.labels @> t.label_filter),
                    min(s.sampled_at) FILTER (WHERE s.labels @> t.ratio_filter)) AS first_at
      FROM trig t
      LEFT JOIN ws s ON s.indicator = t.indicator
                    AND s.sampled_at > as_of - t.sustain AND s.sampled_at <= as_of
     WHERE t.aggregate = 'ratio'
     GROUP BY t.name, t.label_filter
),
rows AS (
    -- declared triggers
    SELECT t.name, NULL::jsonb AS labels, NULL::float8 AS value, NULL::float8 AS deciding,
           NULL::bigint AS n, NULL::timestamptz AS window_start,
           CASE WHEN coalesce(d.active, false) THEN 'firing' ELSE 'not declared' END AS status
      FROM trig t LEFT JOIN @extschema@.capacity_declaration d ON d.flag = t.declared_flag
     WHERE t.declared_flag IS NOT NULL
    UNION ALL
    SELECT b.name, b.labels, b.last_value, b.deciding, b.n, b.first_at,
           CASE WHEN t.aggregate = 'latest' THEN
                     CASE WHEN b.last_breach THEN 'firing' ELSE 'ok' END
                WHEN b.n < 2 OR b.first_at > as_of - t.sustain + t.tol OR b.last_at < as_of - t.tol
                     THEN 'insufficient data'
                WHEN b.all_breach THEN 'firing' ELSE 'ok' END
      FROM breach b JOIN trig t ON t.name = b.name
    UNION ALL
    SELECT dd.name, dd.labels, dd.last_value, dd.deciding, dd.n, dd.first_day,
           CASE WHEN NOT dd.all_breach THEN 'ok'          -- one day under resets the count
                WHEN dd.n < t.days THEN 'insufficient data'
                ELSE 'firing' END
      FROM days dd JOIN trig t ON t.name = dd.name
    UNION ALL
    SELECT g.name, g.labels,
           (g.last_v - g.first_v) / nullif(extract(epoch FROM g.last_at - g.first_at), 0)
               * extract(epoch FROM t.per_period),
           NULL, 2, g.first_at,
           CASE WHEN g.first_at IS NULL OR g.last_at IS NULL OR g.first_at = g.last_at
                     OR g.first_at > as_of - t.sustain + t.tol OR g.last_at < as_of - t.tol
                     OR g.last_v < g.first_v THEN 'insufficient data'
                WHEN CASE t.comparator WHEN '>' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) > t.eff_threshold
                                       WHEN '>=' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) >= t.eff_threshold
                                       WHEN '<' THEN (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) < t.eff_threshold
                                       ELSE (g.last_v - g.first_v) / extract(epoch FROM g.last_at - g.first_at) * extract(epoch FROM t.per_period) <= t.eff_threshold END
                     THEN 'firing' ELSE 'ok' END
      FROM growth g JOIN trig t ON t.name = g.name
    UNION ALL
    SELECT r.name, r.labels, r.num / nullif(r.den, 0), NULL, r.n, r.first_at,
           CASE WHEN r.num IS NULL OR r.den IS NULL OR r.den = 0 OR r.first_at > as_of - t.sustain + t.tol
                     THEN 'insufficient data'
                WHEN CASE t.comparator WHEN '>' THEN r.num / r.den > t.eff_threshold
                                       WHEN '>=' THEN r.num / r.den >= t.eff_threshold
                                       WHEN '<' THEN r.num / r.den < t.eff_threshold
                                       ELSE r.num / r.den <= t.eff_threshold END
                     THEN 'firing' ELSE 'ok' END
      FROM ratio r JOIN trig t ON t.name = r.name
    UNION ALL
    -- series that exist but have no sample in the window
    SELECT x.name, x.labels, NULL, NULL, 0, NULL, 'insufficient data'
      FROM series x JOIN trig t ON t.name = x.name
     WHERE (t.aggregate IN ('all', 'latest')
            AND NOT EXISTS (SELECT 1 FROM breach b WHERE b.name = x.name AND b.labels = x.labels))
        OR (t.aggregate = 'days'
            AND NOT EXISTS (SELECT 1 FROM days dd WHERE dd.name = x.name AND dd.labels = x.labels))
    UNION ALL
    -- metric triggers with no series at all
    SELECT t.name, t.filter, NULL, NULL, 0, NULL,
           CASE WHEN t.unbound THEN 'insufficient data (table not bound)' ELSE 'insufficient data' END
      FROM trig t
     WHERE t.indicator IS NOT NULL AND t.aggregate <> 'ratio'
       AND NOT EXISTS (SELECT 1 FROM series x WHERE x.name = t.name)
)
SELECT r.name, t.stage, t.indicator, r.labels, r.value, r.deciding, t.eff_threshold,
       t.thr_default, t.comparator, t.sustain, r.n, r.window_start, r.status, t.description
  FROM rows r JOIN trig t ON t.name = r.name;
END
$fn$;

-- The six-stage ladder's triggers (as in 1.0).
CREATE OR REPLACE FUNCTION @extschema@.capacity_trigger_eval(as_of timestamptz, bindings jsonb)
RETURNS SETOF @extschema@.capacity_trigger_row
LANGUAGE sql STABLE
AS $$ SELECT * FROM @extschema@.capacity_trigger_eval(as_of, bindings, NULL::text) $$;

-- Which plan: NULL is the active one; an unknown name is an error.
CREATE FUNCTION @extschema@.capacity_plan_resolve(plan_name text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found text;
    known text;
BEGIN
    IF plan_name IS NULL THEN
        SELECT p.name INTO found FROM @extschema@.capacity_plan p WHERE p.active ORDER BY p.name LIMIT 1;
        RETURN coalesce(found, 'matter-six-stage');
    END IF;
    SELECT p.name INTO found FROM @extschema@.capacity_plan p WHERE p.name = plan_name;
    IF found IS NULL THEN
        SELECT string_agg(p.name, ', ' ORDER BY p.name) INTO known FROM @extschema@.capacity_plan p;
        RAISE EXCEPTION 'matter_capacity: plan "%" is not installed', plan_name
            USING ERRCODE = '42704',
                  HINT = 'Installed plans: ' || coalesce(known, 'none') || '. Install a preset with capacity_plan_install(name) or load a document with capacity_plan_import(doc).';
    END IF;
    RETURN found;
END
$$;

-- capacity_stage() for any plan: the six-stage ladder's evaluation or a
-- plan's (capacity_plan_eval, 45_plans.sql).
CREATE FUNCTION @extschema@.capacity_plan_stage(as_of timestamptz, bindings jsonb, horizon interval, plan_name text)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan_name);
BEGIN
    IF p = 'matter-six-stage' THEN
        RETURN QUERY SELECT * FROM @extschema@.capacity_stage_eval(as_of, bindings, horizon);
    ELSE
        RETURN QUERY SELECT * FROM @extschema@.capacity_plan_eval(as_of, bindings, p);
    END IF;
END
$$;

DROP VIEW @extschema@.capacity_stages;
DROP FUNCTION @extschema@.capacity_stage(timestamptz, interval);
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
    'whether a trigger says to move (promote), move back (rollback, plans with exit rules) or will within the horizon (plan, six-stage ladder only), and the evidence. '
    'Error 42704 for a plan that is not installed.';

CREATE OR REPLACE FUNCTION @extschema@.capacity_declare(flag text, note text, active boolean DEFAULT true)
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

DROP FUNCTION @extschema@.capacity_decide(text, text, timestamptz);
DROP FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb);
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
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'matter_capacity: as_of of the decision must be a finite time'
            USING ERRCODE = '22008', HINT = 'Omit it to use now().';
    END IF;
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

CREATE FUNCTION @extschema@.capacity_decide(decision text, note text, as_of timestamptz DEFAULT now(),
                                            plan text DEFAULT NULL, evidence_refs text[] DEFAULT NULL)
RETURNS void
LANGUAGE sql
AS $$ SELECT @extschema@.capacity_decide_at(decision, note, as_of, @extschema@.capacity_bindings(), plan, evidence_refs) $$;
COMMENT ON FUNCTION @extschema@.capacity_decide IS
    'Record the review''s decision (stay, promote, rollback) with the evaluation and evidence of as_of for a plan '
    '(NULL: the active one) and evidence_refs, the paths or run ids of the artifacts it rests on. '
    'Errors: 22023 unknown decision, 42704 plan not installed, 22004 NULL or empty reference.';

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

CREATE OR REPLACE VIEW @extschema@.capacity_decisions AS
SELECT id, decided_at, decision, note, current_stage, recommended_stage, evaluation,
       firing, breaches, evidence, decided_by, plan, current_tier, evidence_refs
  FROM @extschema@.capacity_decision;

-- Plans (issue 14): install, import, export, choose and evaluate plans
-- other than the six-stage ladder.  Tables are in 40_stages.sql, the
-- public capacity_stage(plan => ...) in 41_stage_functions.sql, the
-- shipped documents in 46_plan_presets.sql, the plan's document format in
-- docs/plans.md.

-- An error about a plan document, naming the path of the bad field.
CREATE FUNCTION @extschema@.capacity_plan_fail(path text, message text, state text, hint text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'matter_capacity: plan document: %: %', path, message
        USING ERRCODE = state, HINT = hint, DETAIL = 'path ' || path;
END
$$;

-- One condition of a plan document, checked and normalised: the columns
-- of capacity_plan_condition as a jsonb object.  known_ind and known_set:
-- the indicators and settings the document may use (installed ones and
-- the document's own).
CREATE FUNCTION @extschema@.capacity_plan_check_condition(c jsonb, path text, known_ind text[], known_set text[])
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    agg text;
    win interval;
    per interval;
    nd integer;
BEGIN
    IF jsonb_typeof(c) IS DISTINCT FROM 'object' THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a condition must be an object', '22023',
            'A condition is {"indicator": ..., "comparator": ">", "threshold": ..., "window" or "days": ...} or {"declared": "flag"}.');
    END IF;
    FOR k IN SELECT jsonb_object_keys(c) LOOP
        IF k NOT IN ('name', 'indicator', 'declared', 'labels', 'table', 'aggregate', 'comparator', 'threshold',
                     'setting', 'window', 'days', 'daily', 'per', 'ratio_labels', 'description') THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('unknown field "%s"', k), '22023',
                'Condition fields: name, indicator, declared, labels, table, aggregate, comparator, threshold, setting, window, days, daily, per, ratio_labels, description.');
        END IF;
        IF k IN ('name', 'indicator', 'declared', 'table', 'aggregate', 'comparator', 'setting', 'window', 'daily', 'per', 'description')
           AND jsonb_typeof(c -> k) <> 'string' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('"%s" must be a string', k), '22023', 'Quote the value.');
        END IF;
    END LOOP;
    IF (c ? 'indicator') = (c ? 'declared') THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a condition has exactly one of "indicator" and "declared"', '22023',
            'A metric condition names an indicator; a declared one names a flag set with capacity_declare().');
    END IF;
    IF c ? 'name' AND c ->> 'name' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$' THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.name', format('"%s" is not a condition name', c ->> 'name'), '22023',
            'Names are 1 to 63 letters, digits and _ . : / -.');
    END IF;
    IF c ? 'declared' THEN
        IF c ->> 'declared' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.declared', format('"%s" is not a flag name', c ->> 'declared'), '22023',
                'Flags are 1 to 63 letters, digits and _ . : / -.');
        END IF;
        FOR k IN SELECT jsonb_object_keys(c) LOOP
            IF k NOT IN ('name', 'declared', 'description') THEN
                PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('a declared condition has no "%s"', k), '22023',
                    'A declared condition holds while its flag is declared: {"declared": "flag", "description": ...}.');
            END IF;
        END LOOP;
        RETURN jsonb_build_object('declared_flag', c ->> 'declared', 'indicator', NULL, 'aggregate', 'latest',
                                  'comparator', '>', 'sustain', '0', 'label_filter', '{}'::jsonb,
                                  'description', coalesce(c ->> 'description', 'declared: ' || (c ->> 'declared')));
    END IF;
    IF NOT (c ->> 'indicator' = ANY (known_ind)) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.indicator', format('unknown indicator "%s"', c ->> 'indicator'), '42704',
            'Use an indicator of capacity_indicator, or declare a pushed one under $.indicators.');
    END IF;
    IF coalesce(c ->> 'comparator', '>') NOT IN ('>', '>=', '<', '<=') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.comparator', format('unknown comparator "%s"', c ->> 'comparator'), '22023',
            'Comparators: >, >=, <, <=.');
    END IF;
    IF (CASE WHEN jsonb_typeof(c -> 'threshold') IS DISTINCT FROM 'number' THEN true
             ELSE abs((c ->> 'threshold')::numeric) > 1e300 END) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.threshold', 'a metric condition needs a numeric "threshold" (at most 1e300)', '22023',
            'The threshold is in the indicator''s unit, or a factor of "setting".');
    END IF;
    IF c ? 'setting' AND NOT (c ->> 'setting' = ANY (known_set)) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.setting', format('unknown setting "%s"', c ->> 'setting'), '42704',
            'Use a setting of capacity_setting, or define it under $.settings.');
    END IF;
    IF c ? 'table' AND NOT EXISTS (SELECT 1 FROM @extschema@.capacity_table_binding b WHERE b.logical_name = c ->> 'table') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.table', format('"%s" is not a logical hot table', c ->> 'table'), '42704',
            'Logical tables are those of capacity_table_binding (Event, AuditEntry).');
    END IF;
    FOR k IN SELECT x FROM unnest(ARRAY['labels', 'ratio_labels']) x LOOP
        IF c ? k AND jsonb_typeof(c -> k) <> 'object' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.' || k, format('"%s" must be an object of labels', k), '22023',
                'For example {"region": "eu"}.');
        END IF;
    END LOOP;
    IF c ? 'window' THEN
        BEGIN
            win := (c ->> 'window')::interval;
        EXCEPTION WHEN OTHERS THEN
            win := NULL;
        END;
        IF win IS NULL OR win <= interval '0' OR win > interval '400 days' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.window', format('window "%s" is not an interval between 0 and 400 days', c ->> 'window'), '22023',
                'For example "1 hour", "30 minutes", "14 days"; use "days" for N consecutive UTC days.');
        END IF;
    END IF;
    IF c ? 'days' THEN
        IF (CASE WHEN jsonb_typeof(c -> 'days') <> 'number' THEN true
                 ELSE (c ->> 'days')::numeric <> trunc((c ->> 'days')::numeric)
                      OR (c ->> 'days')::numeric NOT BETWEEN 1 AND 366 END) THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.days', format('days %s is not a whole number from 1 to 366', c -> 'days'), '22023',
                'N consecutive UTC days: each day''s aggregate breaches.');
        END IF;
        nd := (c ->> 'days')::integer;
        IF c ? 'window' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.window', 'a condition has "days" or "window", not both', '22023',
                '"days": N consecutive UTC days; "window": every sample of a sliding window.');
        END IF;
    END IF;
    agg := coalesce(c ->> 'aggregate', CASE WHEN nd IS NOT NULL THEN 'days' WHEN win IS NOT NULL THEN 'all' ELSE 'latest' END);
    IF agg NOT IN ('all', 'latest', 'growth', 'ratio', 'days') OR (agg = 'days') <> (nd IS NOT NULL) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.aggregate', format('aggregate "%s" does not fit this condition', agg), '22023',
            'Aggregates: all (needs window), latest, growth (needs window and per), ratio (needs window and ratio_labels), days (needs days).');
    END IF;
    IF agg IN ('all', 'growth', 'ratio') AND win IS NULL THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.window', format('aggregate %s needs a "window"', agg), '22023',
            'For example "window": "1 hour".');
    END IF;
    IF c ? 'daily' AND (agg <> 'days' OR c ->> 'daily' NOT IN ('avg', 'max', 'min', 'p95')) THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.daily', format('daily "%s" needs "days" and is one of avg, max, min, p95', c ->> 'daily'), '22023',
            'Each UTC day is summarised by its avg (default), max, min or p95.');
    END IF;
    IF agg = 'growth' THEN
        BEGIN
            per := (c ->> 'per')::interval;
        EXCEPTION WHEN OTHERS THEN
            per := NULL;
        END;
        IF per IS NULL OR per <= interval '0' THEN
            PERFORM @extschema@.capacity_plan_fail(path || '.per', 'a growth condition needs "per", a positive interval', '22023',
                'For example "per": "30 days" for rows per month.');
        END IF;
    ELSIF c ? 'per' THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.per', '"per" belongs to growth conditions', '22023', 'Remove it or set "aggregate": "growth".');
    END IF;
    IF (agg = 'ratio') <> (c ? 'ratio_labels') THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.ratio_labels', 'a ratio condition has "ratio_labels" and only it has', '22023',
            'ratio: the window average of labels over that of ratio_labels.');
    END IF;
    RETURN jsonb_build_object(
        'indicator', c ->> 'indicator', 'declared_flag', NULL,
        'label_filter', coalesce(c -> 'labels', '{}'::jsonb), 'bind_table', c ->> 'table',
        'aggregate', agg, 'ratio_filter', c -> 'ratio_labels', 'per_period', per::text,
        'comparator', coalesce(c ->> 'comparator', '>'), 'threshold', (c ->> 'threshold')::float8,
        'threshold_setting', c ->> 'setting', 'sustain', coalesce(win, interval '0')::text,
        'days', nd, 'daily', CASE WHEN agg = 'days' THEN coalesce(c ->> 'daily', 'avg') END,
        'description', coalesce(c ->> 'description',
            format('%s %s %s%s%s', c ->> 'indicator', coalesce(c ->> 'comparator', '>'), c ->> 'threshold',
                   CASE WHEN c ? 'setting' THEN ' x ' || (c ->> 'setting') ELSE '' END,
                   CASE WHEN nd IS NOT NULL THEN format(' on %s consecutive UTC days', nd)
                        WHEN win IS NOT NULL THEN ' for ' || (c ->> 'window') ELSE '' END)));
END
$$;

-- A rule of a step ({"any": [condition or {"all": [...]}, ...]} or
-- {"all": [condition, ...]}) as rows: (grp, path, condition).
CREATE FUNCTION @extschema@.capacity_plan_rule_groups(r jsonb, path text)
RETURNS TABLE(grp integer, pos integer, cpath text, cond jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    k text;
    i integer;
    j integer;
    item jsonb;
BEGIN
    IF jsonb_typeof(r) IS DISTINCT FROM 'object' OR (SELECT count(*) FROM jsonb_object_keys(r)) <> 1
       OR NOT (r ? 'any' OR r ? 'all') THEN
        PERFORM @extschema@.capacity_plan_fail(path, 'a rule is {"any": [...]} or {"all": [...]}', '22023',
            'any: one of the items holds (an item is a condition or {"all": [conditions]}); all: every condition holds.');
    END IF;
    k := CASE WHEN r ? 'any' THEN 'any' ELSE 'all' END;
    IF jsonb_typeof(r -> k) <> 'array' OR jsonb_array_length(r -> k) = 0 THEN
        PERFORM @extschema@.capacity_plan_fail(path || '.' || k, 'must be a non-empty array of conditions', '22023',
            'List at least one condition.');
    END IF;
    FOR i IN 0 .. jsonb_array_length(r -> k) - 1 LOOP
        item := r -> k -> i;
        IF k = 'all' THEN
            grp := 0; pos := i; cpath := format('%s.all[%s]', path, i); cond := item;
            RETURN NEXT;
        ELSIF jsonb_typeof(item) = 'object' AND item ? 'all' THEN
            IF (SELECT count(*) FROM jsonb_object_keys(item)) <> 1 OR jsonb_typeof(item -> 'all') <> 'array'
               OR jsonb_array_length(item -> 'all') = 0 THEN
                PERFORM @extschema@.capacity_plan_fail(format('%s.any[%s]', path, i), 'an all-of group is {"all": [conditions]}', '22023',
                    'List the conditions that must hold together.');
            END IF;
            FOR j IN 0 .. jsonb_array_length(item -> 'all') - 1 LOOP
                grp := i; pos := j; cpath := format('%s.any[%s].all[%s]', path, i, j); cond := item -> 'all' -> j;
                RETURN NEXT;
            END LOOP;
        ELSE
            grp := i; pos := 0; cpath := format('%s.any[%s]', path, i); cond := item;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;

-- Load a plan document (docs/plans.md): everything is checked first, then
-- the plan replaces any installed plan of that name (staying active if it
-- was).  Settings it defines are created or set to the document's value;
-- indicators it declares are registered as pushed ones if missing.
CREATE FUNCTION @extschema@.capacity_plan_import(doc jsonb)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    pname text;
    k text;
    kind text;
    i integer;
    st jsonb;
    spath text;
    sname text;
    known_ind text[];
    known_set text[];
    steps jsonb := '[]';          -- normalised steps
    conds jsonb := '[]';          -- normalised conditions
    names text[] := '{}';
    cnames text[] := '{}';
    g record;
    nc jsonb;
    cname text;
    roots integer := 0;
    rung integer;
    cur text;
    was_active boolean;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('import a plan');
    IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$', 'a plan document is a JSON object', '22023',
            'Start from SELECT capacity_plan_export(''tiers-abc'').');
    END IF;
    FOR k IN SELECT jsonb_object_keys(doc) LOOP
        IF k NOT IN ('format', 'name', 'description', 'settings', 'indicators', 'tiers', 'gates', 'guardrails', 'alerts', 'grid') THEN
            PERFORM @extschema@.capacity_plan_fail('$.' || k, format('unknown field "%s"', k), '22023',
                'Plan fields: format, name, description, settings, indicators, tiers, gates, guardrails, alerts, grid.');
        END IF;
    END LOOP;
    IF doc ? 'format' AND doc -> 'format' <> '1'::jsonb THEN
        PERFORM @extschema@.capacity_plan_fail('$.format', format('format %s is not known', doc -> 'format'), '22023',
            'This version reads format 1.');
    END IF;
    pname := doc ->> 'name';
    IF jsonb_typeof(doc -> 'name') IS DISTINCT FROM 'string' OR pname !~ '^[a-z][a-z0-9_-]{0,62}$' THEN
        PERFORM @extschema@.capacity_plan_fail('$.name', 'the plan needs a "name" of lower-case letters, digits, _ and -', '22023',
            'For example "name": "acme-tiers".');
    END IF;
    IF pname = 'matter-six-stage' THEN
        PERFORM @extschema@.capacity_plan_fail('$.name', 'matter-six-stage is the shipped ladder and is not replaced by a document', '42710',
            'Import the document under another name; edit the ladder''s triggers in capacity_trigger.');
    END IF;
    IF doc ? 'description' AND jsonb_typeof(doc -> 'description') <> 'string' THEN
        PERFORM @extschema@.capacity_plan_fail('$.description', '"description" must be a string', '22023', 'Quote the value.');
    END IF;

    -- settings: {"name": {"value": n, "unit": ..., "description": ...}}
    IF doc ? 'settings' AND jsonb_typeof(doc -> 'settings') <> 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$.settings', '"settings" must be an object', '22023',
            '{"name": {"value": 1000, "unit": "per second", "description": "..."}}');
    END IF;
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'settings', '{}')) LOOP
        IF k !~ '^[a-z][a-z0-9_]{0,62}$' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s', k), 'not a setting name', '22023', 'Lower-case letters, digits and _.');
        END IF;
        IF (CASE WHEN jsonb_typeof(st) <> 'object' OR jsonb_typeof(st -> 'value') IS DISTINCT FROM 'number' THEN true
                 ELSE (st ->> 'value')::numeric <= 0 OR (st ->> 'value')::numeric > 1e300 END) THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s.value', k), 'a setting needs a positive "value" (at most 1e300)', '22023',
                'The figure in the setting''s unit.');
        END IF;
    END LOOP;
    known_set := ARRAY(SELECT s.name FROM @extschema@.capacity_setting s
                       UNION SELECT jsonb_object_keys(coalesce(doc -> 'settings', '{}')));

    -- indicators: {"name": {"unit": ..., "description": ...}}, pushed
    IF doc ? 'indicators' AND jsonb_typeof(doc -> 'indicators') <> 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$.indicators', '"indicators" must be an object', '22023',
            '{"recall_p95_ms": {"unit": "ms", "description": "..."}}');
    END IF;
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'indicators', '{}')) LOOP
        IF k !~ '^[a-z][a-z0-9_]*$' OR jsonb_typeof(st) <> 'object' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.indicators.%s', k), 'an indicator is a lower-case name with {"unit", "description"}', '22023',
                'For example "recall_p95_ms": {"unit": "ms", "description": "recall p95"}.');
        END IF;
    END LOOP;
    known_ind := ARRAY(SELECT i.name FROM @extschema@.capacity_indicator i
                       UNION SELECT jsonb_object_keys(coalesce(doc -> 'indicators', '{}')));

    -- steps and their rules
    FOREACH kind IN ARRAY ARRAY['tiers', 'gates', 'guardrails', 'alerts'] LOOP
        IF doc ? kind AND jsonb_typeof(doc -> kind) <> 'array' THEN
            PERFORM @extschema@.capacity_plan_fail('$.' || kind, format('"%s" must be an array', kind), '22023', 'List the steps in order.');
        END IF;
        FOR i IN 0 .. coalesce(jsonb_array_length(doc -> kind), 0) - 1 LOOP
            st := doc -> kind -> i;
            spath := format('$.%s[%s]', kind, i);
            IF jsonb_typeof(st) <> 'object' OR jsonb_typeof(st -> 'name') IS DISTINCT FROM 'string'
               OR st ->> 'name' !~ '^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}$' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.name', 'a step needs a "name" (letters, digits, space, _ . -)', '22023',
                    'For example "name": "B".');
            END IF;
            sname := st ->> 'name';
            IF sname = ANY (names) THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.name', format('step "%s" is named twice', sname), '42710',
                    'Tiers, gates, guardrails and alerts of a plan have distinct names.');
            END IF;
            names := names || sname;
            FOR k IN SELECT jsonb_object_keys(st) LOOP
                IF NOT (k IN ('name', 'description', 'runbook')
                        OR (kind = 'tiers' AND k IN ('from', 'enter', 'exit', 'one_way'))
                        OR (kind <> 'tiers' AND k = 'when')
                        OR (kind = 'gates' AND k = 'checklist')) THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.' || k, format('unknown field "%s" of a %s step', k, rtrim(kind, 's')), '22023',
                        'Tiers: name, description, runbook, from, enter, exit, one_way; gates: name, description, runbook, when, checklist; guardrails and alerts: name, description, runbook, when.');
                END IF;
                IF k IN ('description', 'runbook', 'from') AND jsonb_typeof(st -> k) <> 'string' THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.' || k, format('"%s" must be a string', k), '22023', 'Quote the value.');
                END IF;
            END LOOP;
            IF st ? 'one_way' AND jsonb_typeof(st -> 'one_way') <> 'boolean' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.one_way', '"one_way" is true or false', '22023', 'true: never suggest moving back down.');
            END IF;
            IF kind = 'tiers' THEN
                IF st ? 'from' THEN
                    IF NOT st ? 'enter' THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || '.enter', format('tier "%s" has no "enter" rule', sname), '22023',
                            'Every tier above the first says when to move into it.');
                    END IF;
                ELSE
                    roots := roots + 1;
                    IF roots > 1 THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || '.from', format('tier "%s" has no "from": a ladder has one first tier', sname), '22023',
                            'Name the tier each tier is entered from.');
                    END IF;
                    IF st ? 'enter' OR st ? 'exit' THEN
                        PERFORM @extschema@.capacity_plan_fail(spath || CASE WHEN st ? 'enter' THEN '.enter' ELSE '.exit' END,
                            format('the first tier "%s" is not entered or left by a rule', sname), '22023',
                            'Put the conditions of staying in the first tier in the exit rule of the tier above it.');
                    END IF;
                END IF;
                IF coalesce((st ->> 'one_way')::boolean, false) AND st ? 'exit' THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.exit', format('one-way tier "%s" has an exit rule', sname), '22023',
                        'Remove "exit" or "one_way".');
                END IF;
            ELSIF NOT st ? 'when' THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.when', format('step "%s" has no "when" rule', sname), '22023',
                    'A gate, guardrail or alert holds when its rule does.');
            END IF;
            IF st ? 'checklist' AND (jsonb_typeof(st -> 'checklist') <> 'array'
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(st -> 'checklist') x WHERE jsonb_typeof(x) <> 'string'
                                 OR x #>> '{}' !~ '^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$')) THEN
                PERFORM @extschema@.capacity_plan_fail(spath || '.checklist', 'a checklist is an array of flag names', '22023',
                    'Each item is declared with capacity_declare(flag, note) once it is done.');
            END IF;
            steps := steps || jsonb_build_object('name', sname, 'kind', rtrim(kind, 's'), 'ordinal', i + 1,
                                                 'from_tier', st ->> 'from', 'one_way', coalesce((st ->> 'one_way')::boolean, false),
                                                 'runbook', st ->> 'runbook', 'description', coalesce(st ->> 'description', ''));
            FOREACH k IN ARRAY ARRAY['enter', 'exit', 'when'] LOOP
                CONTINUE WHEN NOT st ? k;
                FOR g IN SELECT * FROM @extschema@.capacity_plan_rule_groups(st -> k, spath || '.' || k) LOOP
                    nc := @extschema@.capacity_plan_check_condition(g.cond, g.cpath, known_ind, known_set);
                    cname := coalesce(g.cond ->> 'name', format('%s.%s.%s.%s', sname, k, g.grp, g.pos));
                    IF cname = ANY (cnames) THEN
                        PERFORM @extschema@.capacity_plan_fail(g.cpath || '.name', format('condition "%s" is named twice', cname), '42710',
                            'Conditions of a plan have distinct names.');
                    END IF;
                    cnames := cnames || cname;
                    conds := conds || (nc || jsonb_build_object('name', cname, 'step', sname,
                                         'rule', CASE k WHEN 'when' THEN 'enter' ELSE k END, 'grp', g.grp));
                END LOOP;
            END LOOP;
            FOR k IN SELECT x #>> '{}' FROM jsonb_array_elements(coalesce(st -> 'checklist', '[]')) x LOOP
                cname := sname || '.checklist.' || k;
                IF cname = ANY (cnames) THEN
                    PERFORM @extschema@.capacity_plan_fail(spath || '.checklist', format('checklist item "%s" is listed twice', k), '42710',
                        'List each item once.');
                END IF;
                cnames := cnames || cname;
                conds := conds || jsonb_build_object('name', cname, 'step', sname, 'rule', 'checklist', 'grp', 0,
                                     'declared_flag', k, 'aggregate', 'latest', 'comparator', '>', 'sustain', '0',
                                     'label_filter', '{}'::jsonb, 'description', 'checklist: ' || k);
            END LOOP;
        END LOOP;
    END LOOP;
    -- the grid: archetypes by size band x columns, a requirement per cell
    IF doc ? 'grid' THEN
        st := doc -> 'grid';
        IF jsonb_typeof(st) <> 'object' OR EXISTS (SELECT 1 FROM jsonb_object_keys(st) x WHERE x NOT IN ('measure', 'archetypes', 'columns', 'cells')) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid', 'a grid is {"measure", "archetypes", "columns", "cells"}', '22023',
                'See docs/plans.md, preset tenant-archetypes.');
        END IF;
        IF jsonb_typeof(st -> 'measure') IS DISTINCT FROM 'string' OR NOT (st ->> 'measure' = ANY (known_ind)) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.measure', format('unknown indicator "%s"', st ->> 'measure'), '42704',
                'The indicator whose latest value per {tenant} label places a tenant in a size band.');
        END IF;
        IF jsonb_typeof(st -> 'archetypes') IS DISTINCT FROM 'array' OR jsonb_array_length(st -> 'archetypes') = 0 THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.archetypes', 'a non-empty array of {"name", "up_to"}', '22023',
                '"up_to" names the setting bounding the band; the last archetype has none.');
        END IF;
        IF jsonb_typeof(st -> 'columns') IS DISTINCT FROM 'array' OR jsonb_array_length(st -> 'columns') = 0
           OR EXISTS (SELECT 1 FROM jsonb_array_elements(st -> 'columns') x WHERE jsonb_typeof(x) <> 'string')
           OR (SELECT count(DISTINCT x) <> count(*) FROM jsonb_array_elements_text(st -> 'columns') x) THEN
            PERFORM @extschema@.capacity_plan_fail('$.grid.columns', 'a non-empty array of distinct column names', '22023',
                'For example ["shared pool", "dedicated database"].');
        END IF;
        FOR i IN 0 .. jsonb_array_length(st -> 'archetypes') - 1 LOOP
            sname := st -> 'archetypes' -> i ->> 'name';
            IF jsonb_typeof(st -> 'archetypes' -> i) <> 'object' OR sname IS NULL
               OR EXISTS (SELECT 1 FROM jsonb_object_keys(st -> 'archetypes' -> i) x WHERE x NOT IN ('name', 'up_to'))
               OR (SELECT count(*) FROM jsonb_array_elements(st -> 'archetypes') a WHERE a ->> 'name' = sname) > 1 THEN
                PERFORM @extschema@.capacity_plan_fail(format('$.grid.archetypes[%s]', i), 'an archetype is {"name", "up_to"} with a distinct name', '22023',
                    'For example {"name": "A", "up_to": "archetype_a_max_rows"}.');
            END IF;
            IF (i < jsonb_array_length(st -> 'archetypes') - 1) <> (st -> 'archetypes' -> i ? 'up_to')
               OR (st -> 'archetypes' -> i ? 'up_to' AND NOT (st -> 'archetypes' -> i ->> 'up_to' = ANY (known_set))) THEN
                PERFORM @extschema@.capacity_plan_fail(format('$.grid.archetypes[%s].up_to', i),
                    'every archetype but the last is bounded by a known setting', '42704',
                    'Define the band''s bound under $.settings; the last archetype takes every larger tenant.');
            END IF;
            FOR k IN SELECT jsonb_array_elements_text(st -> 'columns') LOOP
                IF coalesce(st #>> ARRAY['cells', sname, k], '') NOT IN ('required', 'recommended', 'optional', 'n.a.') THEN
                    PERFORM @extschema@.capacity_plan_fail(format('$.grid.cells.%s.%s', sname, k),
                        'each cell is required, recommended, optional or n.a.', '22023',
                        'Fill every archetype x column of the grid.');
                END IF;
            END LOOP;
        END LOOP;
    END IF;

    IF jsonb_array_length(steps) = 0 THEN
        PERFORM @extschema@.capacity_plan_fail('$', 'the plan has no tiers, gates, guardrails or alerts', '22023',
            'A plan needs at least one step.');
    END IF;

    -- the ladder: every "from" names a tier, no two tiers are entered from
    -- the same one, and walking up from the first tier reaches them all
    FOR i IN 0 .. coalesce(jsonb_array_length(doc -> 'tiers'), 0) - 1 LOOP
        st := doc -> 'tiers' -> i;
        CONTINUE WHEN NOT st ? 'from';
        IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'name' = st ->> 'from') THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', i), format('tier "%s" is not in the plan', st ->> 'from'), '42704',
                'Name a tier listed under $.tiers.');
        END IF;
        IF (SELECT count(*) FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'from' = st ->> 'from') > 1 THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', i), format('two tiers are entered from "%s": a ladder does not branch', st ->> 'from'), '42P17',
                'Each tier has at most one tier above it; use gates for independent decisions.');
        END IF;
    END LOOP;
    IF coalesce(jsonb_array_length(doc -> 'tiers'), 0) > 0 THEN
        cur := (SELECT t ->> 'name' FROM jsonb_array_elements(doc -> 'tiers') t WHERE NOT t ? 'from');
        rung := 0;
        WHILE cur IS NOT NULL LOOP
            rung := rung + 1;
            steps := (SELECT jsonb_agg(CASE WHEN s ->> 'name' = cur AND s ->> 'kind' = 'tier'
                                            THEN s || jsonb_build_object('ordinal', rung) ELSE s END)
                        FROM jsonb_array_elements(steps) s);
            cur := (SELECT t ->> 'name' FROM jsonb_array_elements(doc -> 'tiers') t WHERE t ->> 'from' = cur);
            EXIT WHEN rung > jsonb_array_length(doc -> 'tiers');
        END LOOP;
        IF rung <> jsonb_array_length(doc -> 'tiers') THEN
            -- the first tier the walk from the first one never reached
            SELECT t.o - 1 INTO i FROM jsonb_array_elements(doc -> 'tiers') WITH ORDINALITY t(v, o)
             WHERE t.v ? 'from' AND NOT EXISTS (
                   WITH RECURSIVE up(n, d) AS (
                       SELECT x ->> 'name', 1 FROM jsonb_array_elements(doc -> 'tiers') x WHERE NOT x ? 'from'
                       UNION ALL
                       SELECT x ->> 'name', up.d + 1 FROM up JOIN jsonb_array_elements(doc -> 'tiers') x ON x ->> 'from' = up.n
                        WHERE up.d <= jsonb_array_length(doc -> 'tiers'))
                   SELECT 1 FROM up WHERE up.n = t.v ->> 'name')
             ORDER BY t.o LIMIT 1;
            PERFORM @extschema@.capacity_plan_fail(format('$.tiers[%s].from', coalesce(i, 0)),
                format('tier "%s" is on a cycle: the ladder never reaches it from its first tier', doc -> 'tiers' -> coalesce(i, 0) ->> 'name'),
                '42P17', 'A ladder starts at one tier without "from"; each other tier names the one below it.');
        END IF;
    END IF;

    -- all checked: write
    SELECT p.active INTO was_active FROM @extschema@.capacity_plan p WHERE p.name = pname;
    DELETE FROM @extschema@.capacity_plan p WHERE p.name = pname;
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'settings', '{}')) LOOP
        INSERT INTO @extschema@.capacity_setting AS s (name, value, default_value, unit, description)
        VALUES (k, (st ->> 'value')::float8, (st ->> 'value')::float8, st ->> 'unit',
                coalesce(st ->> 'description', format('setting of plan %s', pname)))
        ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value
         WHERE s.value IS DISTINCT FROM EXCLUDED.value;
    END LOOP;
    INSERT INTO @extschema@.capacity_indicator (name, unit, source, description, owner)
    SELECT e.key, e.value ->> 'unit', 'push', coalesce(e.value ->> 'description', format('pushed for plan %s', pname)),
           session_user::text::regrole
      FROM jsonb_each(coalesce(doc -> 'indicators', '{}')) e
     WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capacity_indicator i WHERE i.name = e.key);
    INSERT INTO @extschema@.capacity_plan (name, description, doc, active)
    VALUES (pname, coalesce(doc ->> 'description', ''), doc, coalesce(was_active, false));
    INSERT INTO @extschema@.capacity_plan_step (plan, name, kind, ordinal, from_tier, one_way, runbook, description)
    SELECT pname, s.name, s.kind, s.ordinal, s.from_tier, s.one_way, s.runbook, s.description
      FROM jsonb_to_recordset(steps) AS s(name text, kind text, ordinal integer, from_tier text, one_way boolean,
                                          runbook text, description text);
    INSERT INTO @extschema@.capacity_plan_condition
        (plan, name, step, rule, grp, indicator, label_filter, bind_table, aggregate, ratio_filter, per_period,
         comparator, threshold, threshold_setting, sustain, days, daily, declared_flag, description)
    SELECT pname, c.name, c.step, c.rule, c.grp, c.indicator, coalesce(c.label_filter, '{}'), c.bind_table,
           c.aggregate, c.ratio_filter, c.per_period::interval, c.comparator, c.threshold, c.threshold_setting,
           coalesce(c.sustain, '0')::interval, c.days, c.daily, c.declared_flag, c.description
      FROM jsonb_to_recordset(conds) AS c(name text, step text, rule text, grp integer, indicator text,
                                          label_filter jsonb, bind_table text, aggregate text, ratio_filter jsonb,
                                          per_period text, comparator text, threshold float8, threshold_setting text,
                                          sustain text, days integer, daily text, declared_flag text, description text);
    RETURN pname;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_import(jsonb) IS
    'Load a plan document (docs/plans.md) and return its name. Every field is checked before anything changes; '
    'a bad one is refused naming its path, e.g. $.tiers[2].enter.any[0].comparator: 22023 bad value or shape, '
    '42704 unknown indicator, setting, table or tier, 42710 duplicate name, 42P17 a ladder that branches or cycles. '
    'An installed plan of the same name is replaced (and stays active if it was).';

-- The evaluation behind capacity_stage(plan => name) for a plan other
-- than the six-stage ladder; same columns.  Each condition is evaluated by
-- capacity_trigger_eval (firing when any of its series fires); a group
-- holds when all its conditions fire, a rule when one of its groups does.
--   tiers:      current tier (capacity_plan_set_tier; the first tier until
--               one is set) ; promote to the highest tier above whose
--               enter rule holds; rollback to the tier below when the
--               current tier's exit rule holds (never for one-way tiers);
--   gates:      open when their rule holds and their checklist is all
--               declared (promote); rule holding with the checklist
--               incomplete is review;
--   guardrails: a rule holding is a violation (review);
--   alerts:     reported in the evidence only.
-- Otherwise review when the rule of the next move lacks data, else stay.
-- firing: the conditions of the groups that hold and decide.
-- current_stage and recommended_stage are rungs of the ladder (0 for a
-- plan without tiers).
CREATE FUNCTION @extschema@.capacity_plan_eval(as_of timestamptz, bindings jsonb, plan_name text)
RETURNS TABLE(current_stage integer, current_name text, recommended_stage integer,
              recommended_name text, decision text, firing text[], evidence jsonb,
              runbook text, evaluated_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rows @extschema@.capacity_trigger_row[];
    cs jsonb;               -- per condition: status and series
    rs jsonb;               -- per step and rule: holds | fails | insufficient
    gs jsonb;               -- per step, rule and group: the same
    cur record;
    up record;
    down record;
    gates_open text[];
    gates_pending text[];
    violated text[];
    insufficient text[];
    fired text[];
    ev jsonb;
BEGIN
    rows := ARRAY(SELECT e FROM @extschema@.capacity_trigger_eval(as_of, bindings, plan_name) e);
    SELECT s.* INTO up FROM @extschema@.capacity_plan_step s WHERE false;
    down := up;

    -- conditions, groups, rules
    WITH cond AS (
        SELECT c.name, c.step, c.rule, c.grp, c.description,
               CASE WHEN bool_or(e.status = 'firing') THEN 'firing'
                    WHEN bool_or(e.status IN ('ok', 'not declared')) THEN
                         CASE WHEN c.declared_flag IS NOT NULL THEN 'not declared' ELSE 'ok' END
                    ELSE coalesce(min(e.status), 'insufficient data') END AS status,
               jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                   'labels', e.labels, 'value', e.value, 'deciding_value', e.deciding_value,
                   'threshold', e.threshold, 'comparator', e.comparator, 'window', e.sustain::text,
                   'samples', e.samples, 'since', e.window_start, 'status', e.status))
                   ORDER BY e.labels::text) FILTER (WHERE e.trigger_name IS NOT NULL) AS series
          FROM @extschema@.capacity_plan_condition c
          LEFT JOIN unnest(rows) e ON e.trigger_name = c.name
         WHERE c.plan = plan_name
         GROUP BY c.name, c.step, c.rule, c.grp, c.description, c.declared_flag
    ), grp AS (
        SELECT c.step, c.rule, c.grp,
               CASE WHEN bool_and(c.status = 'firing') THEN 'holds'
                    WHEN bool_or(c.status IN ('ok', 'not declared')) THEN 'fails'
                    ELSE 'insufficient' END AS status
          FROM cond c GROUP BY 1, 2, 3
    ), rule AS (
        SELECT g.step, g.rule,
               CASE WHEN bool_or(g.status = 'holds') THEN 'holds'
                    WHEN bool_and(g.status = 'fails') THEN 'fails'
                    ELSE 'insufficient' END AS status
          FROM grp g GROUP BY 1, 2
    )
    SELECT (SELECT jsonb_object_agg(c.name, jsonb_build_object('step', c.step, 'rule', c.rule, 'group', c.grp,
                                        'status', c.status, 'description', c.description,
                                        'series', coalesce(c.series, '[]'::jsonb))) FROM cond c),
           (SELECT jsonb_object_agg(r.step || '/' || r.rule, r.status) FROM rule r),
           (SELECT jsonb_object_agg(g.step || '/' || g.rule || '/' || g.grp, g.status) FROM grp g)
      INTO cs, rs, gs;
    cs := coalesce(cs, '{}');
    rs := coalesce(rs, '{}');
    gs := coalesce(gs, '{}');

    -- the ladder
    SELECT s.* INTO cur
      FROM @extschema@.capacity_plan_step s
     WHERE s.plan = plan_name AND s.kind = 'tier'
       AND s.name = coalesce((SELECT h.tier FROM @extschema@.capacity_plan_tier_history h
                               WHERE h.plan = plan_name AND h.set_at <= as_of
                               ORDER BY h.set_at DESC, h.id DESC LIMIT 1),
                             (SELECT f.name FROM @extschema@.capacity_plan_step f
                               WHERE f.plan = plan_name AND f.kind = 'tier' AND f.from_tier IS NULL));
    IF cur.name IS NOT NULL THEN
        SELECT s.* INTO up FROM @extschema@.capacity_plan_step s
         WHERE s.plan = plan_name AND s.kind = 'tier' AND s.ordinal > cur.ordinal
           AND rs ->> (s.name || '/enter') = 'holds'
         ORDER BY s.ordinal DESC LIMIT 1;
        IF NOT cur.one_way AND rs ->> (cur.name || '/exit') = 'holds' THEN
            SELECT s.* INTO down FROM @extschema@.capacity_plan_step s
             WHERE s.plan = plan_name AND s.kind = 'tier' AND s.name = cur.from_tier;
        END IF;
    END IF;

    SELECT array_agg(s.name ORDER BY s.ordinal) FILTER (WHERE rs ->> (s.name || '/enter') = 'holds'
                                                          AND coalesce(rs ->> (s.name || '/checklist'), 'holds') = 'holds'),
           array_agg(s.name ORDER BY s.ordinal) FILTER (WHERE rs ->> (s.name || '/enter') = 'holds'
                                                          AND coalesce(rs ->> (s.name || '/checklist'), 'holds') <> 'holds')
      INTO gates_open, gates_pending
      FROM @extschema@.capacity_plan_step s WHERE s.plan = plan_name AND s.kind = 'gate';
    SELECT array_agg(s.name ORDER BY s.ordinal) INTO violated
      FROM @extschema@.capacity_plan_step s
     WHERE s.plan = plan_name AND s.kind = 'guardrail' AND rs ->> (s.name || '/enter') = 'holds';
    -- rules whose next move lacks data: the tier above, the current tier's
    -- exit, every gate and guardrail
    SELECT array_agg(x.k ORDER BY x.k) INTO insufficient
      FROM (SELECT s.name || '/' || r.rule AS k
              FROM @extschema@.capacity_plan_step s
              CROSS JOIN (VALUES ('enter'), ('exit')) r(rule)
             WHERE s.plan = plan_name
               AND rs ->> (s.name || '/' || r.rule) = 'insufficient'
               AND ((s.kind = 'tier' AND r.rule = 'enter' AND s.ordinal = cur.ordinal + 1)
                    OR (s.kind = 'tier' AND r.rule = 'exit' AND s.name = cur.name AND NOT s.one_way)
                    OR (s.kind IN ('gate', 'guardrail') AND r.rule = 'enter'))) x;

    current_stage := coalesce(cur.ordinal, 0);
    current_name := cur.name;
    evaluated_at := as_of;
    IF up.name IS NOT NULL OR gates_open IS NOT NULL THEN
        decision := 'promote';
        recommended_stage := coalesce(up.ordinal, current_stage);
        recommended_name := coalesce(up.name, current_name);
        runbook := coalesce(up.runbook, (SELECT s.runbook FROM @extschema@.capacity_plan_step s
                                          WHERE s.plan = plan_name AND s.name = gates_open[1]));
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'rule' = 'enter'
                          AND gs ->> (c.value ->> 'step' || '/enter/' || (c.value ->> 'group')) = 'holds'
                          AND (c.value ->> 'step' = up.name OR c.value ->> 'step' = ANY (gates_open))
                        ORDER BY c.key);
    ELSIF down.name IS NOT NULL THEN
        decision := 'rollback';
        recommended_stage := down.ordinal;
        recommended_name := down.name;
        runbook := cur.runbook;
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'step' = cur.name AND c.value ->> 'rule' = 'exit'
                        ORDER BY c.key);
    ELSE
        decision := CASE WHEN violated IS NOT NULL OR gates_pending IS NOT NULL OR insufficient IS NOT NULL
                         THEN 'review' ELSE 'stay' END;
        recommended_stage := current_stage;
        recommended_name := current_name;
        runbook := cur.runbook;
        fired := ARRAY(SELECT c.key FROM jsonb_each(cs) c
                        WHERE c.value ->> 'rule' = 'enter'
                          AND gs ->> (c.value ->> 'step' || '/enter/' || (c.value ->> 'group')) = 'holds'
                          AND (c.value ->> 'step' = ANY (violated) OR c.value ->> 'step' = ANY (gates_pending))
                        ORDER BY c.key);
    END IF;
    firing := fired;

    SELECT jsonb_build_object(
             'plan', plan_name,
             'steps', coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                 'name', s.name, 'kind', s.kind, 'ordinal', s.ordinal, 'from', s.from_tier,
                 'one_way', CASE WHEN s.kind = 'tier' THEN s.one_way END,
                 'position', CASE WHEN s.kind <> 'tier' THEN NULL
                                  WHEN s.name = cur.name THEN 'current'
                                  WHEN s.ordinal < cur.ordinal THEN 'passed' ELSE 'ahead' END,
                 'enter', rs ->> (s.name || '/enter'),
                 'exit', rs ->> (s.name || '/exit'),
                 'checklist', CASE WHEN s.kind = 'gate' THEN
                      (SELECT jsonb_object_agg(c.key, c.value ->> 'status' = 'firing') FROM jsonb_each(cs) c
                        WHERE c.value ->> 'step' = s.name AND c.value ->> 'rule' = 'checklist') END,
                 'status', CASE s.kind
                      WHEN 'gate' THEN CASE WHEN s.name = ANY (gates_open) THEN 'open'
                                            WHEN s.name = ANY (gates_pending) THEN 'evidence met, checklist incomplete'
                                            WHEN rs ->> (s.name || '/enter') = 'insufficient' THEN 'insufficient data'
                                            ELSE 'closed' END
                      WHEN 'guardrail' THEN CASE WHEN s.name = ANY (violated) THEN 'violated'
                                                 WHEN rs ->> (s.name || '/enter') = 'insufficient' THEN 'insufficient data'
                                                 ELSE 'kept' END
                      WHEN 'alert' THEN CASE rs ->> (s.name || '/enter') WHEN 'holds' THEN 'firing'
                                                                         WHEN 'fails' THEN 'ok' ELSE 'insufficient data' END
                      END)) ORDER BY s.kind <> 'tier', s.ordinal), '[]'),
             'conditions', cs,
             'insufficient_data', to_jsonb(coalesce(insufficient, '{}'::text[])))
      INTO ev
      FROM @extschema@.capacity_plan_step s WHERE s.plan = plan_name;
    evidence := ev;
    RETURN NEXT;
END
$$;

-- A condition of capacity_trigger or capacity_plan_condition as it is
-- written in a plan document.
CREATE FUNCTION @extschema@.capacity_plan_condition_doc(name text, indicator text, label_filter jsonb, bind_table text,
                                                        aggregate text, ratio_filter jsonb, per_period interval,
                                                        comparator text, threshold double precision, threshold_setting text,
                                                        sustain interval, days integer, daily text, declared_flag text,
                                                        description text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN declared_flag IS NOT NULL THEN
                jsonb_build_object('name', name, 'declared', declared_flag, 'description', description)
           ELSE jsonb_strip_nulls(jsonb_build_object(
                'name', name, 'indicator', indicator,
                'labels', CASE WHEN label_filter <> '{}' THEN label_filter END,
                'table', bind_table,
                'aggregate', CASE WHEN aggregate NOT IN ('days', CASE WHEN sustain > interval '0' THEN 'all' ELSE 'latest' END)
                                  THEN aggregate END,
                'comparator', comparator, 'threshold', threshold, 'setting', threshold_setting,
                'window', CASE WHEN aggregate <> 'days' AND sustain > interval '0' THEN sustain::text END,
                'days', days, 'daily', CASE WHEN daily <> 'avg' THEN daily END,
                'per', per_period::text, 'ratio_labels', ratio_filter,
                'description', description)) END
$$;

-- A plan as a document capacity_plan_import() reads back: a DBA keeps it
-- in version control and loads it into every cluster.  Settings carry
-- their current values.  matter-six-stage is written out as a ladder of
-- six tiers (its leading indicators as alerts); imported under another
-- name it is evaluated like any plan (without the forecasts and the
-- contradiction checks the built-in ladder adds).
CREATE FUNCTION @extschema@.capacity_plan_export(name text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(name);
    d jsonb;
BEGIN
    IF p <> 'matter-six-stage' THEN
        SELECT pl.doc INTO d FROM @extschema@.capacity_plan pl WHERE pl.name = p;
        RETURN jsonb_build_object('format', 1) || d
            || CASE WHEN d ? 'settings' THEN jsonb_build_object('settings', coalesce(
                   (SELECT jsonb_object_agg(e.key, e.value || jsonb_build_object('value', coalesce(s.value, (e.value ->> 'value')::float8)))
                      FROM jsonb_each(d -> 'settings') e
                      LEFT JOIN @extschema@.capacity_setting s ON s.name = e.key), '{}'::jsonb))
               ELSE '{}' END;
    END IF;
    SELECT jsonb_build_object(
        'format', 1, 'name', p,
        'description', (SELECT pl.description FROM @extschema@.capacity_plan pl WHERE pl.name = p),
        'settings', (SELECT coalesce(jsonb_object_agg(s.name, jsonb_strip_nulls(jsonb_build_object(
                                 'value', s.value, 'unit', s.unit, 'description', s.description))), '{}')
                       FROM @extschema@.capacity_setting s
                      WHERE s.name IN (SELECT t.threshold_setting FROM @extschema@.capacity_trigger t)),
        'tiers', (SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                         'name', 'stage ' || sd.stage, 'description', sd.name || ': ' || sd.summary,
                         'runbook', sd.runbook,
                         'from', CASE WHEN sd.stage > 1 THEN 'stage ' || (sd.stage - 1) END,
                         'enter', (SELECT CASE WHEN count(*) > 0 THEN jsonb_build_object('any', jsonb_agg(
                                          @extschema@.capacity_plan_condition_doc(t.name, t.indicator, t.label_filter, t.bind_table,
                                              t.aggregate, t.ratio_filter, t.per_period, t.comparator, t.threshold,
                                              t.threshold_setting, t.sustain, NULL::integer, NULL::text, t.declared_flag, t.description)
                                          ORDER BY t.name)) END
                                     FROM @extschema@.capacity_trigger t WHERE t.stage = sd.stage AND sd.stage > 1)))
                         ORDER BY sd.stage)
                    FROM @extschema@.capacity_stage_def sd),
        'alerts', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', t.name, 'description', t.description,
                          'when', jsonb_build_object('any', jsonb_build_array(
                                  @extschema@.capacity_plan_condition_doc(t.name, t.indicator, t.label_filter, t.bind_table,
                                      t.aggregate, t.ratio_filter, t.per_period, t.comparator, t.threshold,
                                      t.threshold_setting, t.sustain, NULL::integer, NULL::text, t.declared_flag, t.description))))
                          ORDER BY t.name), '[]')
                     FROM @extschema@.capacity_trigger t WHERE t.stage IS NULL))
      INTO d;
    RETURN d;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_export(text) IS
    'The plan (an installed plan''s name) as a JSON document for capacity_plan_import(); settings with their current values. '
    'Error 42704 for a plan that is not installed.';

-- Install a shipped preset (capacity_plan_preset), or put it back as
-- shipped if it is installed.
CREATE FUNCTION @extschema@.capacity_plan_install(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d jsonb;
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('install a plan');
    IF name = 'matter-six-stage' THEN
        INSERT INTO @extschema@.capacity_plan (name, description, doc, active)
        SELECT 'matter-six-stage', 'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.', NULL,
               NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan p WHERE p.active)
         WHERE NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan p WHERE p.name = 'matter-six-stage');
        RETURN;
    END IF;
    SELECT p.doc INTO d FROM @extschema@.capacity_plan_preset p WHERE p.name = capacity_plan_install.name;
    IF d IS NULL THEN
        SELECT string_agg(p.name, ', ' ORDER BY p.name) INTO known FROM @extschema@.capacity_plan_preset p;
        RAISE EXCEPTION 'matter_capacity: "%" is not a shipped plan preset', coalesce(name, 'NULL')
            USING ERRCODE = '42704',
                  HINT = 'Presets: matter-six-stage, ' || known || '. Load your own plan with capacity_plan_import(doc).';
    END IF;
    PERFORM @extschema@.capacity_plan_import(d);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_install(text) IS
    'Install a shipped preset by name (matter-six-stage, tiers-abc, evidence-gates, control-plane, tenant-archetypes); '
    'an installed one is put back as shipped. Error 42704 for an unknown preset.';

CREATE FUNCTION @extschema@.capacity_plan_use(name text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('choose the active plan');
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: the plan to use must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name an installed plan; see SELECT * FROM capacity_plans.';
    END IF;
    p := @extschema@.capacity_plan_resolve(name);
    UPDATE @extschema@.capacity_plan pl SET active = (pl.name = p)
     WHERE pl.active IS DISTINCT FROM (pl.name = p);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_use(text) IS
    'Make an installed plan the active one, the plan capacity_stage() evaluates without a plan argument. Error 42704 for a plan that is not installed.';

-- Where a plan's ladder stands: the six-stage ladder's is capacity_set_stage.
CREATE FUNCTION @extschema@.capacity_plan_set_tier(plan text, tier text, note text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text;
    known text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('set a plan''s tier');
    p := @extschema@.capacity_plan_resolve(plan);
    IF p = 'matter-six-stage' THEN
        RAISE EXCEPTION 'matter_capacity: the six-stage ladder''s stage is set with capacity_set_stage()'
            USING ERRCODE = '22023', HINT = 'SELECT capacity_set_stage(2, ''replicas live'');';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM @extschema@.capacity_plan_step s WHERE s.plan = p AND s.kind = 'tier' AND s.name = tier) THEN
        SELECT string_agg(s.name, ', ' ORDER BY s.ordinal) INTO known
          FROM @extschema@.capacity_plan_step s WHERE s.plan = p AND s.kind = 'tier';
        RAISE EXCEPTION 'matter_capacity: "%" is not a tier of plan %', coalesce(tier, 'NULL'), p
            USING ERRCODE = '42704', HINT = 'Tiers: ' || coalesce(known, 'none (the plan has only gates)') || '.';
    END IF;
    INSERT INTO @extschema@.capacity_plan_tier_history (plan, tier, note, set_at, set_by)
    VALUES (p, tier, note, now(), session_user);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) IS
    'Record that a plan''s ladder now stands at tier (by name); capacity_stage(plan => ...) evaluates from there. Errors: 42704 unknown plan or tier.';

CREATE VIEW @extschema@.capacity_plans AS
SELECT p.name, p.active, p.description,
       CASE WHEN p.name = 'matter-six-stage'
            THEN (SELECT array_agg('stage ' || d.stage ORDER BY d.stage) FROM @extschema@.capacity_stage_def d)
            ELSE (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
                   WHERE s.plan = p.name AND s.kind = 'tier') END AS tiers,
       (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
         WHERE s.plan = p.name AND s.kind = 'gate') AS gates,
       (SELECT array_agg(s.name ORDER BY s.ordinal) FROM @extschema@.capacity_plan_step s
         WHERE s.plan = p.name AND s.kind IN ('guardrail', 'alert')) AS guards,
       CASE WHEN p.name = 'matter-six-stage' THEN (SELECT count(*) FROM @extschema@.capacity_trigger)
            ELSE (SELECT count(*) FROM @extschema@.capacity_plan_condition c WHERE c.plan = p.name) END AS conditions,
       p.doc IS NULL OR EXISTS (SELECT 1 FROM @extschema@.capacity_plan_preset pr
                                 WHERE pr.name = p.name AND pr.doc = p.doc) AS preset
  FROM @extschema@.capacity_plan p
 ORDER BY p.name;
COMMENT ON VIEW @extschema@.capacity_plans IS
    'Installed plans, the active one, their tiers, gates and guards; preset: as shipped.';

-- The grid of a plan (tenant-archetypes), answered per tenant: each
-- tenant's size (the newest value of the grid's measure per {tenant}
-- label in the 7 days to as_of), its archetype (the first band whose
-- bound setting it does not exceed) and what each column requires.
CREATE FUNCTION @extschema@.capacity_plan_grid(plan text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE(tenant text, size double precision, archetype text, grid_column text, requirement text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := @extschema@.capacity_plan_resolve(plan);
    g jsonb;
BEGIN
    SELECT pl.doc -> 'grid' INTO g FROM @extschema@.capacity_plan pl WHERE pl.name = p;
    IF g IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: plan % has no archetype grid', p
            USING ERRCODE = '22023', HINT = 'Install the preset tenant-archetypes, or add "grid" to your plan''s document.';
    END IF;
    RETURN QUERY
    WITH sizes AS (
        SELECT DISTINCT ON (s.labels ->> 'tenant') s.labels ->> 'tenant' AS tenant, s.value
          FROM @extschema@.capacity_sample s
         WHERE s.indicator = g ->> 'measure' AND s.labels ? 'tenant'
           AND s.sampled_at <= as_of AND s.sampled_at > as_of - interval '7 days'
         ORDER BY s.labels ->> 'tenant', s.sampled_at DESC
    ), bands AS (
        SELECT a.v ->> 'name' AS name, a.o, st.value AS up_to
          FROM jsonb_array_elements(g -> 'archetypes') WITH ORDINALITY a(v, o)
          LEFT JOIN @extschema@.capacity_setting st ON st.name = a.v ->> 'up_to'
    ), placed AS (
        SELECT z.tenant, z.value,
               (SELECT b.name FROM bands b WHERE b.up_to IS NULL OR z.value <= b.up_to ORDER BY b.o LIMIT 1) AS archetype
          FROM sizes z
    )
    SELECT pt.tenant, pt.value, pt.archetype, c.col, g #>> ARRAY['cells', pt.archetype, c.col]
      FROM placed pt
     CROSS JOIN jsonb_array_elements_text(g -> 'columns') WITH ORDINALITY c(col, o)
     ORDER BY pt.tenant, c.o;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) IS
    'Per tenant of a plan with an archetype grid (tenant-archetypes): its size (the grid''s measure, labels {tenant}), '
    'its archetype by the size-band settings, and each column''s requirement (required, recommended, optional, n.a.). '
    'Errors: 42704 plan not installed, 22023 plan without a grid.';

-- The connection-pool budget: the pool sizes set with capacity_set_pool_size
-- against max_connections less the reserved connections, in percent (what
-- tenant-archetypes reads as pool_budget_percent; push it with
-- SELECT capacity_record('pool_budget_percent', percent) FROM capacity_pool_budget()).
CREATE FUNCTION @extschema@.capacity_pool_budget()
RETURNS TABLE(pool_sizes bigint, budget integer, percent double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(p.pool_size), 0)::bigint,
           current_setting('max_connections')::integer - current_setting('superuser_reserved_connections')::integer,
           100.0 * coalesce(sum(p.pool_size), 0)
                 / nullif(current_setting('max_connections')::integer - current_setting('superuser_reserved_connections')::integer, 0)
      FROM @extschema@.capacity_pool_size p
$$;
COMMENT ON FUNCTION @extschema@.capacity_pool_budget() IS
    'Sum of the pool sizes set with capacity_set_pool_size, the connection budget (max_connections less superuser_reserved_connections) and their ratio in percent.';

-- Shipped plans.  matter-six-stage is installed and active; the others are
-- documents capacity_plan_install(name) loads (docs/plans.md describes
-- each).  Indicators a preset names that nothing samples yet are declared
-- by its document and registered as pushed ones when it is installed.

INSERT INTO @extschema@.capacity_plan (name, description, doc, active) VALUES
 ('matter-six-stage',
  'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.',
  NULL, true);

-- tiers-abc: three tiers of one cluster's life.  A while every A condition
-- holds; B when any B trigger holds on 3 consecutive UTC days (back to A
-- when every A condition holds on 7); C, one way, when any C trigger holds
-- on 7.  Guardrail: purge by partition only.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tiers-abc', $doc$
{
  "format": 1,
  "name": "tiers-abc",
  "description": "Tier A (one shared cluster), B (scaled: replicas, pool, partitions), C (the top tenant moves out). B after 3 breaching days, back to A after 7 healthy ones, C after 7; C is one-way.",
  "settings": {
    "cluster_write_capacity_qps": {"value": 2000, "unit": "per second",
      "description": "Steady-state write capacity of the cluster (the top tenant's share of it decides tiers A and C)"}
  },
  "indicators": {
    "recall_p95_ms":           {"unit": "ms", "description": "Recall (search/read-back) p95 as the application measures it"},
    "tenant_top_write_qps":    {"unit": "per second", "description": "Write QPS of the tenant that writes most"},
    "tenant_top_growth_share": {"unit": "ratio", "description": "Top tenant's share (0..1) of the month's cluster storage growth"},
    "table_rows_deleted":      {"unit": "rows", "description": "Rows deleted row by row from managed tables, cumulative (the sampler provides it once the delete counter lands; until then push it)"}
  },
  "tiers": [
    {"name": "A", "description": "One shared cluster: write p95 <= 200 ms, recall p95 <= 800 ms, DB CPU p95 <= 65 %, top tenant <= 20 % of write capacity."},
    {"name": "B", "from": "A", "runbook": "docs/runbooks/read-replicas.md",
     "description": "Scaled cluster: read replicas, a larger pool, partitioned hot tables.",
     "enter": {"any": [
       {"name": "B.recall_p95", "indicator": "recall_p95_ms", "comparator": ">", "threshold": 800, "days": 3,
        "description": "recall p95 > 800 ms on 3 consecutive UTC days"},
       {"name": "B.cpu_p95", "indicator": "cpu_utilization", "comparator": ">", "threshold": 65, "days": 3, "daily": "p95",
        "description": "DB CPU p95 > 65 % on 3 consecutive UTC days"},
       {"all": [
         {"name": "B.pool_saturated", "indicator": "pool_utilization", "comparator": ">=", "threshold": 90, "days": 3, "daily": "max",
          "description": "reads saturate the pool: pool utilisation peaks >= 90 % on 3 consecutive UTC days"},
         {"name": "B.writes_stable", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 3,
          "description": "while writes stay stable: write p95 <= 200 ms on the same days"}]}
     ]},
     "exit": {"all": [
       {"name": "A.write_p95", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 7,
        "description": "write p95 <= 200 ms on 7 consecutive UTC days"},
       {"name": "A.recall_p95", "indicator": "recall_p95_ms", "comparator": "<=", "threshold": 800, "days": 7,
        "description": "recall p95 <= 800 ms on 7 consecutive UTC days"},
       {"name": "A.cpu_p95", "indicator": "cpu_utilization", "comparator": "<=", "threshold": 65, "days": 7, "daily": "p95",
        "description": "DB CPU p95 <= 65 % on 7 consecutive UTC days"},
       {"name": "A.top_tenant", "indicator": "tenant_top_write_qps", "comparator": "<=", "threshold": 0.20,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS <= 20 % of the cluster's write capacity on 7 consecutive UTC days"}]}},
    {"name": "C", "from": "B", "one_way": true, "runbook": "docs/runbooks/tenant-tier-migration.md",
     "description": "The top tenant gets its own database; one-way.",
     "enter": {"any": [
       {"name": "C.top_tenant", "indicator": "tenant_top_write_qps", "comparator": ">=", "threshold": 0.35,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS >= 35 % of write capacity on 7 consecutive UTC days"},
       {"name": "C.top_tenant_growth", "indicator": "tenant_top_growth_share", "comparator": ">=", "threshold": 0.30, "days": 7,
        "description": "top tenant >= 30 % of the month's storage growth on 7 consecutive UTC days"},
       {"all": [
         {"name": "C.tier_b_applied", "declared": "tiers-abc:tier_b_applied",
          "description": "declared: Tier B is fully applied"},
         {"name": "C.write_p95", "indicator": "write_latency_p95_ms", "comparator": ">", "threshold": 300, "days": 7,
          "description": "write p95 > 300 ms on 7 consecutive UTC days after Tier B is fully applied"}]}
     ]}}
  ],
  "guardrails": [
    {"name": "purge by partition only", "runbook": "docs/partitioning.md",
     "description": "Old rows of managed tables leave by detaching partitions (retention), never by bulk DELETE.",
     "when": {"any": [
       {"name": "guard.bulk_delete", "indicator": "table_rows_deleted", "aggregate": "growth", "per": "1 day",
        "window": "1 day", "comparator": ">", "threshold": 10000,
        "description": "more than 10,000 rows a day deleted row by row from a managed table"}]}}
  ]
}
$doc$::jsonb);

-- evidence-gates: four independent decisions, each taken only when all of
-- its evidence holds and its checklist is declared; the system thresholds
-- are alerts beside them.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('evidence-gates', $doc$
{
  "format": 1,
  "name": "evidence-gates",
  "description": "Four independent evidence gates (API bottleneck, search, WebSocket limit, pool exhaustion), each with a decision checklist, and the system thresholds as alerts.",
  "settings": {},
  "indicators": {
    "endpoint_p95_ms":            {"unit": "ms", "description": "API endpoint p95, labels {endpoint}"},
    "statement_top_share":        {"unit": "ratio", "description": "Share (0..1) of database execution time taken by the costliest statement"},
    "messages_per_second":        {"unit": "per second", "description": "Messages the API handles per second"},
    "searches_per_day":           {"unit": "per day", "description": "Searches in the last 24 h"},
    "search_p95_ms":              {"unit": "ms", "description": "Search p95"},
    "search_db_time_share":       {"unit": "ratio", "description": "Share (0..1) of database time spent on search"},
    "websocket_peak_concurrent":  {"unit": "count", "description": "Peak concurrent WebSocket connections"},
    "websocket_rejections":       {"unit": "count", "description": "WebSocket connections rejected since the last push"},
    "websocket_delivery_p95_ms":  {"unit": "ms", "description": "WebSocket message delivery latency p95"},
    "connection_timeout_errors":  {"unit": "count", "description": "Connection timeouts at the pool since the last push"},
    "pool_services":              {"unit": "count", "description": "Services sharing the busiest pool"},
    "api_p95_ms":                 {"unit": "ms", "description": "API p95 over all endpoints"},
    "cache_memory_utilization":   {"unit": "percent", "description": "Cache (Redis, memcached) memory in use"},
    "outbox_lag_seconds":         {"unit": "seconds", "description": "Age of the oldest unpublished outbox row"},
    "worker_queue_depth":         {"unit": "count", "description": "Jobs waiting in the worker queue"}
  },
  "gates": [
    {"name": "api-bottleneck", "description": "Split the API service or its hottest statement off.",
     "when": {"all": [
       {"name": "api.endpoint_p95", "indicator": "endpoint_p95_ms", "comparator": ">", "threshold": 200, "days": 14,
        "description": "an endpoint's p95 > 200 ms on 14 consecutive UTC days"},
       {"name": "api.statement_share", "indicator": "statement_top_share", "comparator": ">", "threshold": 0.40, "window": "1 hour",
        "description": "one statement > 40 % of database execution time for an hour"},
       {"name": "api.throughput", "indicator": "messages_per_second", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "throughput > 1,000 msg/s for an hour"}]},
     "checklist": ["api-bottleneck:evidence_met", "api-bottleneck:optimisation_exhausted", "api-bottleneck:clear_boundary",
                   "api-bottleneck:owner", "api-bottleneck:cost_benefit", "api-bottleneck:observability_plan"]},
    {"name": "search", "description": "Move search to a dedicated engine.",
     "when": {"all": [
       {"name": "search.volume", "indicator": "searches_per_day", "comparator": ">", "threshold": 100,
        "description": "more than 100 searches a day"},
       {"name": "search.p95", "indicator": "search_p95_ms", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "search p95 > 1 s for an hour"},
       {"name": "search.db_share", "indicator": "search_db_time_share", "comparator": ">", "threshold": 0.10, "window": "1 hour",
        "description": "search > 10 % of database time for an hour"}]},
     "checklist": ["search:evidence_met", "search:optimisation_exhausted", "search:clear_boundary",
                   "search:owner", "search:cost_benefit", "search:observability_plan"]},
    {"name": "websocket-limit", "description": "Move WebSocket fan-out to its own tier.",
     "when": {"all": [
       {"name": "ws.peak", "indicator": "websocket_peak_concurrent", "comparator": ">", "threshold": 50000,
        "description": "peak concurrent connections > 50,000"},
       {"name": "ws.rejections", "indicator": "websocket_rejections", "comparator": ">", "threshold": 0,
        "description": "connections are being rejected"},
       {"name": "ws.latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "days": 3,
        "description": "delivery latency degrading: p95 > 500 ms on 3 consecutive UTC days"}]},
     "checklist": ["websocket-limit:evidence_met", "websocket-limit:optimisation_exhausted", "websocket-limit:clear_boundary",
                   "websocket-limit:owner", "websocket-limit:cost_benefit", "websocket-limit:observability_plan"]},
    {"name": "pool-exhaustion", "description": "Give services their own pools or a pooler tier.",
     "when": {"all": [
       {"name": "pool.utilisation", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour or more"},
       {"name": "pool.timeouts", "indicator": "connection_timeout_errors", "comparator": ">", "threshold": 0,
        "description": "connection timeout errors"},
       {"name": "pool.shared", "indicator": "pool_services", "comparator": ">", "threshold": 1,
        "description": "several services on one pool"}]},
     "checklist": ["pool-exhaustion:evidence_met", "pool-exhaustion:optimisation_exhausted", "pool-exhaustion:clear_boundary",
                   "pool-exhaustion:owner", "pool-exhaustion:cost_benefit", "pool-exhaustion:observability_plan"]}
  ],
  "alerts": [
    {"name": "api p95", "when": {"any": [{"name": "sys.api_p95", "indicator": "api_p95_ms", "comparator": ">", "threshold": 200, "window": "1 hour",
        "description": "API p95 > 200 ms for an hour"}]}},
    {"name": "db cpu", "when": {"any": [{"name": "sys.db_cpu", "indicator": "cpu_utilization", "comparator": ">", "threshold": 70, "days": 14,
        "description": "DB CPU > 70 % on 14 consecutive UTC days"}]}},
    {"name": "pool", "when": {"any": [{"name": "sys.pool", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour"}]}},
    {"name": "cache memory", "when": {"any": [{"name": "sys.cache_memory", "indicator": "cache_memory_utilization", "comparator": ">", "threshold": 80,
        "description": "cache memory > 80 %"}]}},
    {"name": "websocket latency", "when": {"any": [{"name": "sys.ws_latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "window": "15 minutes",
        "description": "WebSocket delivery latency > 500 ms for 15 minutes"}]}},
    {"name": "outbox lag", "when": {"any": [{"name": "sys.outbox_lag", "indicator": "outbox_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "outbox lag > 5 s for 15 minutes"}]}},
    {"name": "worker queue", "when": {"any": [{"name": "sys.worker_queue", "indicator": "worker_queue_depth", "comparator": ">", "threshold": 10000,
        "description": "worker queue depth > 10,000"}]}}
  ]
}
$doc$::jsonb);

-- control-plane: an event-sourced control plane's stages 0-3.  Each move
-- needs the stage's exit criteria declared (the team's own checklist) and
-- a measured pressure; host-level figures are alerts with the mesh
-- thresholds as settings.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('control-plane', $doc$
{
  "format": 1,
  "name": "control-plane",
  "description": "Control-plane stages 0-3: inline projections, async projections, standby and read offload, sharded mesh. A move needs the current stage's exit criteria declared and a measured pressure; stage 3 is one-way.",
  "settings": {
    "mesh_nodes_warning": {"value": 25, "unit": "nodes", "description": "Node count at which the service mesh needs planning (stage 2)"},
    "mesh_nodes_limit":   {"value": 50, "unit": "nodes", "description": "Node count the mesh is not run beyond without sharding (stage 3)"}
  },
  "indicators": {
    "event_append_per_second":        {"unit": "per second", "description": "Events appended to the event store per second"},
    "projection_lag_seconds":         {"unit": "seconds", "description": "Age of the newest event not yet in the read projections"},
    "cluster_node_count":             {"unit": "nodes", "description": "Nodes in the cluster (host level, pushed by the platform)"},
    "node_allocatable_memory_percent": {"unit": "percent", "description": "Allocatable memory left on the fullest node (host level)"},
    "cpu_overcommit_ratio":           {"unit": "ratio", "description": "CPU requested over allocatable across the cluster (host level)"}
  },
  "tiers": [
    {"name": "stage 0", "description": "One database, projections written inline with the events."},
    {"name": "stage 1", "from": "stage 0", "description": "Projections built asynchronously from the event log.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage0_exit", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.append_rate", "indicator": "event_append_per_second", "comparator": ">", "threshold": 500, "days": 3, "daily": "max",
                 "description": "event append rate peaks above 500/s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage0_exit_lag", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.inline_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 2, "days": 3, "daily": "p95",
                 "description": "inline projections lag: daily p95 above 2 s on 3 consecutive UTC days"}]}]},
     "exit": {"all": [
       {"name": "cp.append_rate_low", "indicator": "event_append_per_second", "comparator": "<=", "threshold": 100, "days": 14, "daily": "max",
        "description": "append rate peaks at most 100/s on 14 consecutive UTC days"}]}},
    {"name": "stage 2", "from": "stage 1", "description": "A hot standby takes projection reads; writes stay on the primary.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage1_exit", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.async_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "days": 3, "daily": "p95",
                 "description": "async projections lag: daily p95 above 5 s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage1_exit_nodes", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
                 "description": "the cluster reaches the mesh warning size (25 nodes)"}]}]},
     "exit": {"all": [
       {"name": "cp.standby_lagging", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "days": 3, "daily": "max",
        "description": "the standby's lag peaks above 30 s on 3 consecutive UTC days: reads go back to the primary"}]}},
    {"name": "stage 3", "from": "stage 2", "one_way": true, "description": "The control plane is sharded; one mesh per shard.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage2_exit", "declared": "control-plane:stage-2-exit-criteria",
                 "description": "declared: stage 2's exit criteria are met"},
                {"name": "cp.nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit", "days": 7, "daily": "min",
                 "description": "the cluster stays at or above the mesh limit (50 nodes) on 7 consecutive UTC days"}]}]}}
  ],
  "alerts": [
    {"name": "mesh warning", "when": {"any": [{"name": "cp.alert_nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
        "description": "node count at or above 25"}]}},
    {"name": "mesh limit", "when": {"any": [{"name": "cp.alert_nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit",
        "description": "node count at or above 50"}]}},
    {"name": "allocatable memory", "when": {"any": [{"name": "cp.alert_memory", "indicator": "node_allocatable_memory_percent", "comparator": "<", "threshold": 20, "window": "1 hour",
        "description": "less than 20 % allocatable memory left on a node for an hour"}]}},
    {"name": "cpu overcommit", "when": {"any": [{"name": "cp.alert_overcommit", "indicator": "cpu_overcommit_ratio", "comparator": ">", "threshold": 1.5, "window": "1 hour",
        "description": "CPU overcommitted more than 1.5x for an hour"}]}},
    {"name": "standby lag", "when": {"any": [{"name": "cp.alert_standby_lag", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "window": "15 minutes",
        "description": "standby lag above 30 s for 15 minutes"}]}},
    {"name": "projection lag", "when": {"any": [{"name": "cp.alert_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "projection lag above 5 s for 15 minutes"}]}}
  ]
}
$doc$::jsonb);

-- tenant-archetypes: tenants placed in size bands A-E (settings), an
-- archetype x tier grid of what each needs (data, answered per tenant by
-- capacity_plan_grid), and the connection-pool budget: the pools' sizes
-- against max_connections less the reserved ones (capacity_pool_budget),
-- a warning at 80 % and a breach at 100 %.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tenant-archetypes', $doc$
{
  "format": 1,
  "name": "tenant-archetypes",
  "description": "Tenant archetypes A-E by size band, the archetype x tier grid answered per tenant (capacity_plan_grid), and the connection-pool budget (warning at 80 %, breach at 100 %).",
  "settings": {
    "archetype_a_max_rows": {"value": 100000,    "unit": "rows", "description": "Largest tenant of archetype A (starter)"},
    "archetype_b_max_rows": {"value": 1000000,   "unit": "rows", "description": "Largest tenant of archetype B (team)"},
    "archetype_c_max_rows": {"value": 10000000,  "unit": "rows", "description": "Largest tenant of archetype C (business)"},
    "archetype_d_max_rows": {"value": 100000000, "unit": "rows", "description": "Largest tenant of archetype D (enterprise); larger is E"}
  },
  "indicators": {
    "tenant_rows":         {"unit": "rows", "description": "Rows a tenant owns across the hot tables, labels {tenant}"},
    "pool_budget_percent": {"unit": "percent", "description": "Sum of pool sizes over max_connections less reserved (push SELECT capacity_record('pool_budget_percent', percent) FROM capacity_pool_budget())"}
  },
  "guardrails": [
    {"name": "pool budget", "description": "The pools together never promise more connections than the server has.",
     "when": {"any": [{"name": "ta.pool_budget_breach", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 100,
                       "description": "pool sizes add up to 100 % or more of max_connections less reserved"}]}}
  ],
  "alerts": [
    {"name": "pool budget warning",
     "when": {"any": [{"name": "ta.pool_budget_warning", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 80,
                       "description": "pool sizes add up to 80 % or more of the connection budget"}]}}
  ],
  "grid": {
    "measure": "tenant_rows",
    "archetypes": [
      {"name": "A", "up_to": "archetype_a_max_rows"},
      {"name": "B", "up_to": "archetype_b_max_rows"},
      {"name": "C", "up_to": "archetype_c_max_rows"},
      {"name": "D", "up_to": "archetype_d_max_rows"},
      {"name": "E"}
    ],
    "columns": ["shared pool", "partitioned tables", "read replica", "dedicated pool", "dedicated database"],
    "cells": {
      "A": {"shared pool": "required",    "partitioned tables": "optional",    "read replica": "n.a.",        "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "B": {"shared pool": "required",    "partitioned tables": "recommended", "read replica": "optional",    "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "C": {"shared pool": "recommended", "partitioned tables": "required",    "read replica": "recommended", "dedicated pool": "optional",    "dedicated database": "n.a."},
      "D": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "recommended"},
      "E": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "required"}
    }
  }
}
$doc$::jsonb);

-- 80_dump.sql: capacity_plan has shipped rows like the other catalog tables
UPDATE @extschema@.capacity_plan SET shipped = true;

CREATE OR REPLACE FUNCTION @extschema@.capacity_removed_default_apply()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keycol text;
BEGIN
    keycol := CASE NEW.table_name
                  WHEN 'capacity_stage_def' THEN 'stage'
                  WHEN 'capacity_setting' THEN 'name'
                  WHEN 'capacity_table_binding' THEN 'logical_name'
                  WHEN 'capacity_indicator' THEN 'name'
                  WHEN 'capacity_trigger' THEN 'name'
                  WHEN 'capacity_plan' THEN 'name'
              END;
    IF keycol IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: "%" is not a catalog table with shipped rows', NEW.table_name
            USING ERRCODE = '22023',
                  HINT = 'capacity_removed_default records rows deleted from capacity_stage_def, capacity_setting, capacity_table_binding, capacity_indicator, capacity_trigger or capacity_plan.';
    END IF;
    EXECUTE format('DELETE FROM %I.%I t WHERE t.%I::text = $1 AND t.shipped', TG_TABLE_SCHEMA, NEW.table_name, keycol)
      USING NEW.key;
    RETURN NULL;
END
$$;

CREATE TRIGGER capacity_shipped_row_edited BEFORE UPDATE ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_edited();
CREATE TRIGGER capacity_shipped_row_replace BEFORE INSERT ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_replace('name');
CREATE TRIGGER capacity_shipped_row_removed AFTER DELETE ON @extschema@.capacity_plan
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_removed('name');

-- Plans (1.1): the shipped matter-six-stage row as above (choosing another
-- plan edits it, so it is dumped); imported plans, their steps and
-- conditions, and the tier history are the user's.  Registered after
-- capacity_latest_sample, in the order the 1.0 -> 1.1 update registers them.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_step', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_condition', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history_id_seq', '');

-- 90_privileges.sql: the new signatures and objects
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide(text, text, timestamptz, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_stages TO pg_monitor;
-- plans (1.1)
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_resolve(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_export(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_import(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_install(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_use(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_check_condition(jsonb, text, text[], text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_rule_groups(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_pool_budget() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text),
                          @extschema@.capacity_trigger_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_resolve(text),
                          @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text),
                          @extschema@.capacity_plan_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_export(text),
                          @extschema@.capacity_plan_grid(text, timestamptz),
                          @extschema@.capacity_pool_budget() TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_plans TO pg_monitor;
