-- Privileges: mutating functions are not for PUBLIC; views are readable by
-- pg_monitor.  Catalog tables are written by our C code as the extension
-- owner, so nobody needs rights on them.

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_rollover(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_rollover_proc(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_hash_partitions(regclass, integer, timestamptz) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_policies, @extschema@.capacity_partitions,
                @extschema@.capacity_rollover_log TO pg_monitor;
