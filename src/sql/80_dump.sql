-- What pg_dump keeps.  Configuration and history tables are registered
-- with pg_extension_config_dump next to their definitions.  The tables
-- below also hold rows this script ships (stages, triggers, settings,
-- bindings, indicators); CREATE EXTENSION makes those again on restore, so
-- only the user's rows are dumped, and three row triggers keep the two in
-- step:
--   * an edited shipped row becomes the user's (shipped = false), so it is
--     dumped;
--   * a row inserted with the key of a shipped, unedited row replaces it;
--     that is how pg_restore puts an edited default back over the fresh one;
--   * deleting a shipped row is remembered in capacity_removed_default,
--     itself dumped, and restoring that record deletes the fresh copy.

CREATE TABLE @extschema@.capacity_removed_default (
    table_name  text NOT NULL,
    key         text NOT NULL,
    removed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, key)
);
COMMENT ON TABLE @extschema@.capacity_removed_default IS
    'Shipped catalog rows the user deleted; kept by pg_dump so a restore deletes them again.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_removed_default', '');

-- Every catalog row present at this point was installed by this script.
UPDATE @extschema@.capacity_stage_def SET shipped = true;
UPDATE @extschema@.capacity_setting SET shipped = true;
UPDATE @extschema@.capacity_table_binding SET shipped = true;
UPDATE @extschema@.capacity_indicator SET shipped = true;
UPDATE @extschema@.capacity_trigger SET shipped = true;
UPDATE @extschema@.capacity_plan SET shipped = true;

CREATE FUNCTION @extschema@.capacity_shipped_row_edited()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.shipped AND NEW.shipped
       AND (pg_catalog.to_jsonb(NEW) - 'shipped') IS DISTINCT FROM (pg_catalog.to_jsonb(OLD) - 'shipped') THEN
        NEW.shipped := false;
    END IF;
    RETURN NEW;
END
$$;

-- TG_ARGV[0]: the key column.
CREATE FUNCTION @extschema@.capacity_shipped_row_replace()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keycol  text := TG_ARGV[0];
    sets    text;
    n       bigint;
BEGIN
    SELECT string_agg(format('%I = ($1).%I', a.attname, a.attname), ', ' ORDER BY a.attnum) INTO sets
      FROM pg_attribute a WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('UPDATE %I.%I t SET %s WHERE t.%I = ($1).%I AND t.shipped',
                   TG_TABLE_SCHEMA, TG_TABLE_NAME, sets, keycol, keycol) USING NEW;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        RETURN NULL;            -- replaced in place
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION @extschema@.capacity_shipped_row_removed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF OLD.shipped THEN
        INSERT INTO @extschema@.capacity_removed_default (table_name, key)
        VALUES (TG_TABLE_NAME, pg_catalog.to_jsonb(OLD) ->> TG_ARGV[0])
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN OLD;
END
$$;

-- Restoring a removal record deletes the shipped copy CREATE EXTENSION made.
CREATE FUNCTION @extschema@.capacity_removed_default_apply()
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
CREATE TRIGGER capacity_removed_default_apply AFTER INSERT ON @extschema@.capacity_removed_default
    FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_removed_default_apply();

-- The three row triggers on each table with shipped rows, by its key column.
DO $$
DECLARE
    t text;
    k text;
BEGIN
    FOR t, k IN VALUES ('capacity_stage_def', 'stage'), ('capacity_setting', 'name'),
                       ('capacity_table_binding', 'logical_name'), ('capacity_indicator', 'name'),
                       ('capacity_trigger', 'name'), ('capacity_plan', 'name')
    LOOP
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_edited BEFORE UPDATE ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_edited()', t);
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_replace BEFORE INSERT ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_replace(%L)', t, k);
        EXECUTE format('CREATE TRIGGER capacity_shipped_row_removed AFTER DELETE ON @extschema@.%I '
                       'FOR EACH ROW EXECUTE FUNCTION @extschema@.capacity_shipped_row_removed(%L)', t, k);
    END LOOP;
END
$$;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_stage_def', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_setting', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_table_binding', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_indicator', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_trigger', 'WHERE NOT shipped');

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_shipped_row_edited(), @extschema@.capacity_shipped_row_replace(),
                           @extschema@.capacity_shipped_row_removed(), @extschema@.capacity_removed_default_apply() FROM PUBLIC;

-- The newest value of each series (capacity_latest) is dumped too: a
-- pushed value may be older than the raw samples kept, and nothing would
-- make it again.  Registered last, after what 1.0 registered, so that an
-- updated 1.0 lists its config tables in the same order as a fresh install.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_latest_sample', '');

-- Plans (1.1): the shipped matter-six-stage row as above (choosing another
-- plan edits it, so it is dumped); imported plans, their steps and
-- conditions, and the tier history are the user's.  Registered after
-- capacity_latest_sample, in the order the 1.0 -> 1.1 update registers them.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan', 'WHERE NOT shipped');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_step', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_condition', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_plan_tier_history_id_seq', '');

-- The fleet registry (1.1, 48_fleet.sql) is the user's; registered here,
-- after the plans, in the order the 1.0 -> 1.1 update registers it.
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_fleet_member', '');
