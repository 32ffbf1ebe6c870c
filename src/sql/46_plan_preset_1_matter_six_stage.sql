-- Shipped plans.  matter-six-stage is installed and active; the others are
-- documents capacity_plan_install(name) loads (docs/plans.md describes
-- each).  Indicators a preset names that nothing samples yet are declared
-- by its document and registered as pushed ones when it is installed.

INSERT INTO @extschema@.capacity_plan (name, description, doc, active) VALUES
 ('matter-six-stage',
  'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.',
  NULL, true);

