# matter_capacity — PGXS build.
#
#   make && make install      build and install into the pg_config in PATH
#   make installcheck         pg_regress suite (sql/ + expected/) against a
#                             running server (scripts/test.sh starts one)
#
# The install script is assembled from src/sql/*.sql, one file per concern,
# in name order, so each object is defined in one obvious place.

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
	src/probes.o \
	src/worker.o \
	src/latency.o \
	src/explain.o \
	src/forecast.o

DATA_built = matter_capacity--1.0.sql
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK = -lm

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))

PG_CPPFLAGS = -Isrc -I$(libpq_srcdir) -Wall -Wmissing-prototypes -Werror=implicit-function-declaration

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

matter_capacity--1.0.sql: $(sort $(wildcard src/sql/*.sql))
	cat $^ > $@
