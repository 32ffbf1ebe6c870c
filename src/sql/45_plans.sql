-- Plans (issue 14): install, import, export, choose and evaluate plans
-- other than the six-stage ladder.  Tables are in 40_stages.sql, the
-- public capacity_stage(plan => ...) in 45_stage.sql, the
-- shipped documents in 46_plan_preset_*.sql (one piece per preset), the
-- plan's document format in docs/plans.md.

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_check_condition(jsonb, text, text[], text[]) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_rule_groups(jsonb, text) FROM PUBLIC;

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
    old_value double precision;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('import a plan');
    IF doc IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_import: the plan document must not be NULL'
            USING ERRCODE = '22004', HINT = 'Start from SELECT capacity_plan_export(''tiers-abc'').';
    END IF;
    IF jsonb_typeof(doc) IS DISTINCT FROM 'object' THEN
        PERFORM @extschema@.capacity_plan_fail('$', 'a plan document is a JSON object', '22023',
            'Start from SELECT capacity_plan_export(''tiers-abc'').');
    END IF;
    -- bounded like labels (max_label_bytes) and notes: a plan is a page of
    -- text, not a store; every string (names, descriptions, runbooks) at
    -- most 4 kB, the document at most 1 MB
    IF octet_length(doc::text) > 1048576 THEN
        PERFORM @extschema@.capacity_plan_fail('$', format('the document is %s bytes, more than 1 MB', octet_length(doc::text)), '54000',
            'A plan names its tiers, gates and conditions; keep long prose in the runbooks it points to.');
    END IF;
    WITH RECURSIVE walk(path, v) AS (
        SELECT '$'::text, doc
        UNION ALL
        SELECT w.path || c.step, c.child
          FROM walk w
          CROSS JOIN LATERAL (SELECT '.' || e.key AS step, e.value AS child
                                FROM jsonb_each(CASE WHEN jsonb_typeof(w.v) = 'object' THEN w.v END) e
                              UNION ALL
                              SELECT '[' || (a.n - 1) || ']', a.child
                                FROM jsonb_array_elements(CASE WHEN jsonb_typeof(w.v) = 'array' THEN w.v END)
                                     WITH ORDINALITY AS a(child, n)) c
    )
    SELECT w.path INTO spath FROM walk w
     WHERE (jsonb_typeof(w.v) = 'string' AND octet_length(w.v #>> '{}') > 4096)
        OR octet_length(w.path) > 4096
     LIMIT 1;
    IF spath IS NOT NULL THEN
        PERFORM @extschema@.capacity_plan_fail(left(spath, 200), 'a string (or key) of more than 4096 bytes', '54000',
            'Names and descriptions are short; put long prose in the runbook the step points to.');
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
        IF st ? 'replace' AND jsonb_typeof(st -> 'replace') <> 'boolean' THEN
            PERFORM @extschema@.capacity_plan_fail(format('$.settings.%s.replace', k), '"replace" is true or false', '22023',
                'true: set the shared setting to this value even if it has another one (needs capacity_set_threshold).');
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
        IF NOT @extschema@.capacity_indicator_name_valid(k) OR jsonb_typeof(st) <> 'object' THEN
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
    -- settings are shared (the ladder's triggers and every plan read them):
    -- a document creates the missing ones; one that exists with another
    -- value keeps it unless the document says "replace": true and the
    -- caller may change thresholds (review F5: importing an inactive plan
    -- muted the active ladder).
    FOR k, st IN SELECT * FROM jsonb_each(coalesce(doc -> 'settings', '{}')) LOOP
        SELECT s.value INTO old_value FROM @extschema@.capacity_setting s WHERE s.name = k;
        IF NOT FOUND THEN
            INSERT INTO @extschema@.capacity_setting (name, value, default_value, unit, description)
            VALUES (k, (st ->> 'value')::float8, (st ->> 'value')::float8, st ->> 'unit',
                    coalesce(st ->> 'description', format('setting of plan %s', pname)));
        ELSIF old_value IS DISTINCT FROM (st ->> 'value')::float8 THEN
            IF coalesce((st ->> 'replace')::boolean, false) THEN
                IF NOT has_function_privilege(session_user,
                        '@extschema@.capacity_set_threshold(pg_catalog.text, double precision)'::regprocedure, 'EXECUTE') THEN
                    RAISE EXCEPTION 'matter_capacity: plan % may not replace shared setting % (% -> %)', pname, k, old_value, st ->> 'value'
                        USING ERRCODE = '42501', DETAIL = 'Nothing was imported.',
                              HINT = 'Replacing a setting every plan reads needs EXECUTE on capacity_set_threshold; drop "replace" to keep the current value.';
                END IF;
                UPDATE @extschema@.capacity_setting s SET value = (st ->> 'value')::float8 WHERE s.name = k;
            ELSE
                RAISE NOTICE 'matter_capacity: shared setting % keeps its value % (plan % says %)', k, old_value, pname, st ->> 'value'
                    USING HINT = 'Other plans and the ladder read it: change it with capacity_set_threshold(), or add "replace": true to it in the document.';
            END IF;
        END IF;
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
    '42704 unknown indicator, setting, table or tier, 42710 duplicate name, 42P17 a ladder that branches or cycles, 22004 a NULL document. '
    'An installed plan of the same name is replaced (and stays active if it was). Settings: missing ones are created; '
    'one with another value keeps it (NOTICE) unless the document says "replace": true and the caller may call '
    'capacity_set_threshold (else 42501).';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_import(jsonb) FROM PUBLIC;

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
SET plan_cache_mode = force_generic_plan   -- one plan per session: see capacity_trigger_eval
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
    unchecked text[];
    fired text[];
    ev jsonb;
BEGIN
    PERFORM @extschema@.capacity_check_time('capacity_stage'::text, as_of);
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
    -- exit, every gate (review); guardrails that lack data are listed with
    -- them but do not hold the decision (a guardrail reports a breach, it is
    -- not a move: an indicator nobody records yet must not block the verdict)
    SELECT array_agg(x.k ORDER BY x.k) FILTER (WHERE x.kind <> 'guardrail'),
           array_agg(x.k ORDER BY x.k)
      INTO insufficient, unchecked
      FROM (SELECT s.name || '/' || r.rule AS k, s.kind
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
             'insufficient_data', to_jsonb(coalesce(unchecked, '{}'::text[])))
      INTO ev
      FROM @extschema@.capacity_plan_step s WHERE s.plan = plan_name;
    evidence := ev;
    RETURN NEXT;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_eval(timestamptz, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_eval(timestamptz, jsonb, text) TO pg_monitor;

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
    p text;
    d jsonb;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_export: the plan to export must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name an installed plan; see SELECT * FROM capacity_plans.';
    END IF;
    p := @extschema@.capacity_plan_resolve(name);
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
    'Errors: 22004 NULL, 42704 a plan that is not installed.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_export(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_export(text) TO pg_monitor;

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
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_plan_install: the preset to install must not be NULL'
            USING ERRCODE = '22004', HINT = 'Name a shipped preset, e.g. capacity_plan_install(''tiers-abc'').';
    END IF;
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
    'an installed one is put back as shipped (its document; a shared setting it defines that has another value keeps it, with a NOTICE). '
    'Errors: 42704 an unknown preset, 22004 NULL.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_install(text) FROM PUBLIC;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_use(text) FROM PUBLIC;

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
    IF plan IS NULL OR tier IS NULL THEN   -- a NULL plan is not "the active one" here
        RAISE EXCEPTION 'matter_capacity: capacity_plan_set_tier: % must not be NULL', CASE WHEN plan IS NULL THEN 'plan' ELSE 'tier' END
            USING ERRCODE = '22004', HINT = 'Name an installed plan and one of its tiers; see SELECT * FROM capacity_plans.';
    END IF;
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
    'Record that a plan''s ladder now stands at tier (by name); capacity_stage(plan => ...) evaluates from there. Errors: 22004 NULL plan or tier, 42704 unknown plan or tier.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) FROM PUBLIC;

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
       -- as shipped: the ladder's stages, triggers and the settings they
       -- read unedited (shipped; a deleted shipped row is listed in
       -- capacity_removed_default, not here); a preset's document as
       -- shipped and the settings it defines at its values
       CASE WHEN p.doc IS NULL
            THEN NOT EXISTS (SELECT 1 FROM @extschema@.capacity_trigger t
                               LEFT JOIN @extschema@.capacity_setting st ON st.name = t.threshold_setting
                              WHERE NOT t.shipped OR NOT coalesce(st.shipped, true))
                 AND NOT EXISTS (SELECT 1 FROM @extschema@.capacity_stage_def d WHERE NOT d.shipped)
            ELSE EXISTS (SELECT 1 FROM @extschema@.capacity_plan_preset pr WHERE pr.name = p.name AND pr.doc = p.doc)
                 AND NOT EXISTS (SELECT 1 FROM jsonb_each(coalesce(p.doc -> 'settings', '{}')) e
                                   JOIN @extschema@.capacity_setting st ON st.name = e.key
                                  WHERE st.value IS DISTINCT FROM (e.value ->> 'value')::float8) END AS preset
  FROM @extschema@.capacity_plan p
 ORDER BY p.name;
COMMENT ON VIEW @extschema@.capacity_plans IS
    'Installed plans, the active one, their tiers, gates and guards; preset: as shipped (the ladder: its stages, triggers '
    'and their settings unedited; a preset: its document and the values of the settings it defines).';
GRANT SELECT ON @extschema@.capacity_plans TO pg_monitor;

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
    PERFORM @extschema@.capacity_check_time('capacity_plan_grid'::text, as_of);
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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) TO pg_monitor;

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
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_pool_budget() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_pool_budget() TO pg_monitor;
