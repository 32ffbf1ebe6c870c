/*-------------------------------------------------------------------------
 * matter_capacity.h
 *		Settings and helpers shared by every part of matter_capacity.
 *
 * Each concern has its own header (periods.h, partitions.h, locks.h,
 * catalog.h, rollover.h); this one only carries the GUC variables that
 * _PG_init defines and that several files read.
 *-------------------------------------------------------------------------
 */
#ifndef MATTER_CAPACITY_H
#define MATTER_CAPACITY_H

#include "postgres.h"

/* GUCs, defined in matter_capacity.c */
extern int	mc_lock_timeout_ms;
extern int	mc_lock_retries;
extern char *mc_loopback_conninfo;
extern int	mc_loopback_timeout_ms;
extern int	mc_loopback_statement_timeout_ms;
extern int	mc_probe_timeout_ms;
extern int	mc_probe_max_rows;
extern int	mc_max_leaves_per_policy;
extern int	mc_rescue_rows_per_call;
extern int	mc_rescue_backfill_rows;
extern int	mc_max_past_periods_per_call;
extern int	mc_sample_retention_days;
extern int	mc_rollup_retention_days;
extern char *mc_worker_database;
extern int	mc_sample_interval_s;
extern int	mc_database_size_refresh_s;
extern int	mc_rollover_interval_s;
extern int	mc_explain_interval_s;
extern bool mc_track_latency;
extern int	mc_forecast_lookback_days;
extern int	mc_backfill_batches;
extern int	mc_tenant_sample_rows;
extern int	mc_tenant_sample_seed;
extern int	mc_fleet_timeout_ms;
extern int	mc_tenant_move_timeout_ms;

#endif							/* MATTER_CAPACITY_H */
