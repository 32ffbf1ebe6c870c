-- matter_capacity install script, version 1.1 (the current install script).
-- Assembled by the Makefile from src/sql/*.sql in name order: one file per
-- concern.  Objects go into the schema chosen at CREATE EXTENSION.

\echo Use "CREATE EXTENSION matter_capacity" to load this file. \quit

-- The rest of this script runs with search_path pinned to pg_catalog (the
-- extension's own objects are named with @extschema@). PostgreSQL runs it
-- as a superuser with the extension's schema on the path, where a role
-- with CREATE there could plant an operator or function whose argument
-- types match a statement, a view or a default of this script more
-- exactly than pg_catalog's, and have it bound or run as that superuser
-- (review 4, F7 and F8). SET LOCAL: PostgreSQL restores the path when the
-- script ends (a plain SET would outlive it in the caller's session).
SET LOCAL search_path = pg_catalog, pg_temp;
