-- A managed table that is dropped takes its policy (and its conversion
-- record and default EXPLAIN checks) with it, so no rollover ever looks
-- for it again.  After 10, 50 and 60, whose tables it cleans: no piece
-- refers to an object defined after it.  SECURITY DEFINER because the dropping
-- role has no rights on our catalog; the search_path is pinned so nothing
-- on the caller's path is ever resolved here.

CREATE FUNCTION @extschema@.capacity_forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.capacity_policy p
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND p.table_name::pg_catalog.oid = d.objid;
    -- conversions (60_convert.sql) of dropped tables, and dropped old tables
    DELETE FROM @extschema@.capacity_conversion c
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.table_name::pg_catalog.oid = d.objid;
    -- the default EXPLAIN checks (42_explain.sql) of dropped tables
    DELETE FROM @extschema@.capacity_explain_check k
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND k.table_name::pg_catalog.oid = d.objid;
    UPDATE @extschema@.capacity_conversion c SET historical = NULL
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0
       AND c.historical::pg_catalog.oid = d.objid;
END
$$;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forget_dropped_tables() FROM PUBLIC;

CREATE EVENT TRIGGER capacity_forget_dropped_tables ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.capacity_forget_dropped_tables();
