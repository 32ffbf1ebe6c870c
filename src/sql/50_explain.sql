-- EXPLAIN-stability: how many partitions a query would scan.

CREATE FUNCTION @extschema@.capacity_explain_partitions(query text, params text[] DEFAULT NULL)
RETURNS integer
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_partitions';
COMMENT ON FUNCTION @extschema@.capacity_explain_partitions IS
    'Leaf partitions a single SELECT would scan after plan-time and start-up pruning (the worse of custom and generic plan when params are given); never executes it.';

CREATE FUNCTION @extschema@.capacity_explain_detail(query text, params text[] DEFAULT NULL)
RETURNS TABLE(partitions integer, custom_partitions integer, generic_partitions integer, signature text)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_explain_detail';
