-- Leftovers of issue 19 (kind 3), after the rewritten procedures:
--   60_convert.sql: capacity_owner_value (the backfill's first read of the
--   historical partition, as the table's owner)
CREATE FUNCTION @extschema@.capacity_owner_value(tbl regclass, query text)
RETURNS text
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_owner_value';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_owner_value(regclass, text) FROM PUBLIC;
