-- matter_capacity upgrade script, 1.0 -> 1.1.
-- Assembled by the Makefile from src/sql/upgrade/1.0--1.1/*.sql in name
-- order, one file per concern, each mirroring a change made to the install
-- pieces in src/sql/.  test/integration/upgrade.sh compares the result with
-- a fresh 1.1 install: objects, grants, shipped rows, config-dump tables.

\echo Use "ALTER EXTENSION matter_capacity UPDATE" to load this file. \quit
