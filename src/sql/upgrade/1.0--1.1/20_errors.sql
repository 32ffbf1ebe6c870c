-- Issue 13 (errors and names), 1.0 -> 1.1.  Mirrors src/sql/10_partitions.sql
-- (capacity_derived_name) and src/sql/60_convert.sql (the conversion derives
-- its names with it: at most 62 bytes, whole characters, never colliding).

CREATE FUNCTION @extschema@.capacity_derived_name(base text, suffix text)
RETURNS text
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_derived_name';
COMMENT ON FUNCTION @extschema@.capacity_derived_name IS
    'base_suffix, shortened as partition names are (at most 62 bytes, whole characters, a hash of base): names the conversion derives.';

