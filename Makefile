# matter_capacity — PGXS build.
#
#   make && make install      build and install into the pg_config in PATH
#   make installcheck         pg_regress suite (sql/ + expected/) against a
#                             running server (scripts/test.sh starts one)
#
# The install script is assembled from src/sql/*.sql, one file per concern,
# in name order, so each object is defined in one obvious place.
#
# Versions: src/sql/released/ keeps every released install script exactly as
# shipped (1.0 is installed at users' sites); the current version's script is
# built from src/sql/*.sql; each upgrade script is src/sql/upgrade/
# matter_capacity--<from>--<to>.sql.  A change to the install SQL
# goes into both: the suite (test/integration/upgrade.sh) proves that
# updating from 1.0 gives the same extension as a fresh install.

PG_CONFIG ?= pg_config
EXTENSION = matter_capacity
MODULE_big = matter_capacity
OBJS = \
	src/matter_capacity.o \
	src/catalog.o \
	src/periods.o \
	src/partitions.o \
	src/locks.o \
	src/rollover.o \
	src/loopback.o \
	src/manage.o \
	src/sampler.o \
	src/rollup.o \
	src/probes.o \
	src/worker.o \
	src/latency.o \
	src/explain.o \
	src/usercode.o \
	src/convert.o \
	src/forecast.o \
	src/import.o \
	src/measures.o \
	src/shares.o \
	src/remote.o \
	src/fleet.o \
	src/tenant_move.o

EXTVERSION = 1.1
DATA = src/sql/released/matter_capacity--1.0.sql src/sql/upgrade/matter_capacity--1.0--1.1.sql
DATA_built = matter_capacity--$(EXTVERSION).sql
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK = -lm

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))

PG_CPPFLAGS = -Isrc -I$(libpq_srcdir) -Wall -Wmissing-prototypes -Werror=implicit-function-declaration

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuilt every time: a removed piece must leave the script too.
matter_capacity--$(EXTVERSION).sql: $(sort $(wildcard src/sql/*.sql)) FORCE
	cat $(filter-out FORCE,$^) > $@


FORCE:
.PHONY: FORCE
