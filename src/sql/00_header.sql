-- matter_capacity install script, version 1.1 (the current install script).
-- Assembled by the Makefile from src/sql/*.sql in name order: one file per
-- concern.  Objects go into the schema chosen at CREATE EXTENSION.

\echo Use "CREATE EXTENSION matter_capacity" to load this file. \quit
