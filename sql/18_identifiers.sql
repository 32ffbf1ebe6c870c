-- Item 10: hostile and long identifiers work end to end.
SET TimeZone = 'UTC';
CREATE SCHEMA "We""ird; schema";
SET search_path = "We""ird; schema", public;
CREATE TABLE "Ev""ent; DROP TABLE x;--" ("Org Id" int NOT NULL, "created""At" timestamptz NOT NULL)
  PARTITION BY RANGE ("created""At");
SELECT capacity_manage('"Ev""ent; DROP TABLE x;--"', 'created"At', 'day', 'Org Id', 2, premake => 1);
SELECT * FROM capacity_rollover('"Ev""ent; DROP TABLE x;--"', as_of => '2026-11-22 00:00+00');
INSERT INTO "Ev""ent; DROP TABLE x;--" VALUES (1, '2026-11-22 01:00+00'), (2, '2026-11-25 00:00+00');
SELECT * FROM capacity_rollover('"Ev""ent; DROP TABLE x;--"', as_of => '2026-11-24 00:00+00');
SELECT count(*) FROM "Ev""ent; DROP TABLE x;--";
-- a 63-byte name: partition names are shortened deterministically, unique
CREATE TABLE "MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x" (t timestamptz NOT NULL, org int)
  PARTITION BY RANGE (t);
SELECT length('MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x') AS name_bytes;
SELECT capacity_manage('"MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x"', 't', 'week', 'org', 4, premake => 1);
SELECT partition_name, length(partition_name) AS bytes, detail
  FROM capacity_rollover('"MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x"', as_of => '2026-11-22 00:00+00')
 ORDER BY 1;
SELECT count(DISTINCT partition_name) AS distinct_names, count(*) AS partitions
  FROM capacity_partitions
 WHERE table_name = '"MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x"'::regclass;
SELECT partition_name FROM capacity_partitions
 WHERE table_name = '"MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x"'::regclass
   AND level = 2 AND range_from = '2026-11-16 00:00+00' ORDER BY hash_remainder;
-- dropping a managed table removes its policy
SELECT count(*) AS policies_before FROM capacity_policies WHERE table_name::text LIKE '%sixty_three%';
DROP TABLE "MixedCase_table_with_a_name_that_is_exactly_sixty_three_bytes_x";
SELECT count(*) AS policies_after FROM capacity_policy
 WHERE NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = table_name::oid);
