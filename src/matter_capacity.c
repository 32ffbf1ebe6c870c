/*-------------------------------------------------------------------------
 * matter_capacity.c
 *		Module entry point: the design in one page, and the GUCs.
 *
 * matter_capacity carries a staged capacity plan inside the database it
 * protects.  This file owns nothing but _PG_init and the settings; the work
 * lives in one file per concern:
 *
 *	periods.c		period arithmetic in UTC (day, ISO week, month) and
 *					partition names; pure functions, no catalog access.
 *	partitions.c	reads a partitioned table's layout from the catalog
 *					(bounds, hash leaves, default partition) and builds the
 *					DDL text for new partitions.  Never executes anything.
 *	locks.c			runs one DDL step under matter_capacity.lock_timeout,
 *					retrying with pauses so that application statements
 *					queued behind us drain; gives up instead of stalling.
 *	catalog.c		the extension's schema and its catalog tables (policies,
 *					rollover log), accessed as the extension owner.
 *	rollover.c		the rollover engine: plan, build standalone periods,
 *					rescue rows from the default partition, attach in one
 *					short burst (in one transaction: every table's build
 *					first, then the bursts), apply retention.  SQL entry points for
 *					capacity_rollover(), the procedure form and the split
 *					runbook.
 *	manage.c		capacity_manage(): validates a policy and stores it.
 *	sampler.c		capacity_sample_now(): built-in indicators, probes run
 *					as their owner under a timeout, bounded history; the one
 *					write path of samples.
 *	rollup.c		the one rollup path: hourly rollups of the raw samples,
 *					daily ones of the hourly (with the p95 conditions read),
 *					for the sampler, late pushes and the import.
 *	probes.c		registering probes and push indicators.
 *	worker.c		the background worker: sampling and rollover on a
 *					schedule, one transaction per task.
 *	latency.c		executor hooks: statement counts and latency histograms
 *					in shared memory (only when preloaded).
 *	loopback.c		DETACH ... CONCURRENTLY through a connection to this
 *					server (PostgreSQL refuses it inside functions).
 *	explain.c		EXPLAIN-stability: partitions a query would scan after
 *					pruning, and the registered checks.
 *	forecast.c		robust trend fits (Theil-Sen) and threshold crossing
 *					dates for capacity_forecast().
 *	import.c		capacity_import_samples() from a table or view, read
 *					with the caller's rights.
 *	measures.c		table_rows_deleted, statement_top_share, and the
 *					dispatch of issue 14's indicators from the sampler.
 *	shares.c		tenant shares of managed tables, from a bounded sample
 *					read as the table's owner.
 *	usercode.c		running code a user registered (probes, EXPLAIN
 *					checks) as that user, restricted, under a timeout; the
 *					time limit alone for the owner's triggers the rescue
 *					fires while the application waits.
 *	convert.c		the parts of the online conversion that write a user's
 *					rows: run as the table's owner, and the write replay.
 *	remote.c		libpq from a backend or the worker: connect and run
 *					statements on the latch, bounded by timeouts,
 *					cancelled when late; errors scrubbed of passwords.
 *	fleet.c			the fleet seen from the hub: member checks at
 *					registration, polling members concurrently for
 *					capacity_fleet, their figures for the sampler.
 *	tenant_move.c	stage 4 carried out: a tenant moved to a tier member
 *					with logical replication (publication row filter,
 *					subscription on the member), verified at one
 *					consistent point, frozen, cut over, cleaned up.
 *
 * The SQL half (src/sql/, assembled in name order into the install script;
 * the 1.0 -> 1.1 upgrade is src/sql/upgrade/).  Each piece carries the
 * GRANT/REVOKE of what it defines, right after the definition, and refers
 * to nothing a later piece defines:
 *
 *	10_partitions	policies, the rollover log, their SQL entry points.
 *	30_indicators	indicators, raw samples, hourly and daily rollups, the
 *					indicators whose days keep a p95.
 *	31_indicator_functions	sampling, pushing, registering probes.
 *	33_measures		imported history, deleted rows, tenant shares.
 *	40_stages		the stage ladder, triggers, SLOs, decisions (tables);
 *					plan conditions, which keep capacity_daily_p95 in step.
 *	41_stage_functions	trigger evaluation (which triggers hold).
 *	42_explain		EXPLAIN-stability checks (explain.c does the planning).
 *	44_forecast		which points the trend fit (forecast.c) is given;
 *					trigger and runway forecasts.
 *	45_plans		plans other than the ladder.
 *	45_stage		the stage: capacity_stage() on any plan.
 *	46_plan_preset_*	the shipped plans, one piece each.
 *	46_report		capacity_report(): the weekly review as text.
 *	46_stage_actions	declaring the stage, flags, thresholds, bindings.
 *	47_report_html	capacity_report_html(): the review as one HTML page.
 *	48_fleet		the fleet registry and the capacity_fleet view.
 *	60_convert		online conversion of an ordinary table (the stage 3
 *					migration) and its backfill, as procedures.
 *	70_drop_cleanup	a dropped managed table takes its policy, conversion
 *					record and default checks with it (event trigger).
 *	80_dump			what pg_dump keeps of tables that ship rows.
 *
 * docs/ has one page per capability; docs/where-things-live.md maps each
 * capability to its C, SQL, tests and page.
 *
 * Design rules that every file follows:
 *	- Nothing the extension does may stall the application.  DDL on a hot
 *	  table is prepared on standalone tables (no contention) and attached
 *	  with SHARE UPDATE EXCLUSIVE on the parent; the few strong locks
 *	  (the default partition during ATTACH, the parent during DETACH) are
 *	  taken under a lock timeout and retried or skipped.
 *	- Never lose a row: rows outside every partition live in the default
 *	  partition until a partition for them exists, then are moved out.
 *	- Identifiers in generated SQL are always quoted; names are never
 *	  parsed back from strings: partitions are recognised by their bounds.
 *	- Generated SQL is run with search_path = pg_catalog, pg_temp and
 *	  schema-qualified names, so objects on the caller's search path are
 *	  never called.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "matter_capacity.h"
#include "latency.h"
#include "worker.h"

PG_MODULE_MAGIC;

int			mc_lock_timeout_ms = 100;
int			mc_lock_retries = 3;
char	   *mc_loopback_conninfo = NULL;
int			mc_loopback_timeout_ms = 10000;
int			mc_loopback_statement_timeout_ms = 600000;
int			mc_probe_timeout_ms = 5000;
int			mc_probe_max_rows = 1000;
int			mc_max_leaves_per_policy = 10000;
int			mc_rescue_rows_per_call = 1000000;
int			mc_rescue_backfill_rows = 100000;
int			mc_max_past_periods_per_call = 100;
int			mc_max_label_bytes = 1024;
int			mc_sample_retention_days = 35;
int			mc_rollup_retention_days = 730;
char	   *mc_worker_database = NULL;
int			mc_sample_interval_s = 60;
int			mc_database_size_refresh_s = 300;
int			mc_rollover_interval_s = 3600;
int			mc_explain_interval_s = 3600;
bool		mc_track_latency = true;
int			mc_forecast_lookback_days = 30;
int			mc_backfill_batches = 100;
int			mc_tenant_sample_rows = 30000;
int			mc_tenant_sample_seed = -1;
int			mc_fleet_timeout_ms = 2000;
int			mc_tenant_move_timeout_ms = 30000;

void		_PG_init(void);

/*
 * All settings are defined here, in one place.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("matter_capacity.lock_timeout",
							"Lock timeout for every DDL statement matter_capacity runs on a managed table.",
							"An application statement queued behind the extension waits at most this long.",
							&mc_lock_timeout_ms,
							100, 1, 60000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.lock_retries",
							"How many more times a DDL step that hit the lock timeout is tried before it is skipped.",
							NULL,
							&mc_lock_retries,
							3, 0, 100,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.probe_timeout",
							"Time a registered probe or EXPLAIN check may run before it is cancelled and reported.",
							NULL,
							&mc_probe_timeout_ms,
							5000, 10, 600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.probe_max_rows",
							"Rows (series) a registered probe may return; a probe returning more is recorded as failed.",
							NULL,
							&mc_probe_max_rows,
							1000, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.max_leaves_per_policy",
							"Leaf tables a policy may make at once: (premake + 1) periods times hash_partitions.",
							NULL,
							&mc_max_leaves_per_policy,
							10000, 1, 1000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.rescue_rows_per_call",
							"Rows one capacity_rollover() call moves out of a default partition at most (whole periods, at least one).",
							"The rest is left for the next call and reported as deferred; the procedure and the worker commit each period anyway.",
							&mc_rescue_rows_per_call,
							1000000, 1, INT_MAX,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.rescue_backfill_rows",
							"Rows in a default partition above which the procedure and the worker empty it by the conversion's backfill (0: never).",
							"Each period the rescue attaches makes PostgreSQL scan the whole default partition while writers wait; capacity_empty_default makes it a historical partition instead and moves its rows in committed batches.",
							&mc_rescue_backfill_rows,
							100000, 0, INT_MAX - 1,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.max_past_periods_per_call",
							"Past periods one rollover call makes for rows waiting in a default partition, nearest to as_of first.",
							"Rows of older periods stay in the default partition and are reported as deferred, so stray old rows cannot fill the catalog with periods.",
							&mc_max_past_periods_per_call,
							100, 0, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.max_label_bytes",
							"Size of a pushed value's labels (as JSON text); larger labels are refused.",
							NULL,
							&mc_max_label_bytes,
							1024, 2, 2048,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.sample_retention_days",
							"Days of raw samples kept; older day partitions of capacity_sample are dropped.",
							NULL,
							&mc_sample_retention_days,
							35, 2, 3650,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.rollup_retention_days",
							"Days of hourly rollups (and rollover log) kept.",
							NULL,
							&mc_rollup_retention_days,
							730, 2, 36500,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("matter_capacity.loopback_conninfo",
							   "Connection options for the loopback connection that runs DETACH ... CONCURRENTLY.",
							   "Empty: this server's first Unix socket and port.  The loopback always connects to the current database as the current role; user and dbname given here are overridden.  Readable by superusers only.",
							   &mc_loopback_conninfo,
							   "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.loopback_timeout",
							"Time the loopback connection may take to connect (and to answer a short query) before the caller gives up.",
							"The DETACH ... CONCURRENTLY and backfill statements sent through it have matter_capacity.loopback_statement_timeout; a failed loopback falls back to a bounded plain DETACH.",
							&mc_loopback_timeout_ms,
							10000, 10, 600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.loopback_statement_timeout",
							"Time a statement sent through the loopback connection (DETACH ... CONCURRENTLY, a backfill CALL) may run before it is cancelled.",
							"A cancelled DETACH ... CONCURRENTLY stays pending and the next rollover finishes it with FINALIZE; a cancelled backfill goes on from its last committed batch at the next call.",
							&mc_loopback_statement_timeout_ms,
							600000, 100, 86400000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.sample_interval",
							"Seconds between two samplings by the background worker.",
							NULL,
							&mc_sample_interval_s,
							60, 1, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.database_size_refresh",
							"Seconds a session reuses its last pg_database_size() for database_bytes (0: measure at every sampling).",
							"pg_database_size stat()s every file of the database: some 80 ms at 50,000 partitions.",
							&mc_database_size_refresh_s,
							300, 0, 86400,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.rollover_interval",
							"Seconds between two rollovers by the background worker (0 disables).",
							NULL,
							&mc_rollover_interval_s,
							3600, 0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.explain_interval",
							"Seconds between two runs of the EXPLAIN-stability checks by the background worker (0 disables).",
							NULL,
							&mc_explain_interval_s,
							3600, 0, 86400,
							PGC_SIGHUP,
							GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.backfill_batches",
							"Batches of a conversion backfill the background worker runs per sampling round (0 disables).",
							NULL,
							&mc_backfill_batches,
							100, 0, 100000,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.forecast_lookback_days",
							"Days of daily aggregates a forecast's trend is fitted on.",
							"capacity_forecast() needs at least 7 days of data whatever this says.",
							&mc_forecast_lookback_days,
							30, 7, 730,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.tenant_sample_rows",
							"Rows the tenant shares of one table are estimated from (a TABLESAMPLE SYSTEM sample of its recent partitions).",
							"A window with fewer rows is read whole and its shares are exact.",
							&mc_tenant_sample_rows,
							30000, 100, 10000000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.tenant_sample_seed",
							"Seed of the tenant-share sample (TABLESAMPLE ... REPEATABLE); -1 draws a new sample each time.",
							NULL,
							&mc_tenant_sample_seed,
							-1, -1, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.fleet_timeout",
							"Time a fleet member (server or pooler) may take to connect and answer before it is reported unreachable.",
							"Members are polled concurrently, so capacity_fleet and a fleet sampling take at most about this long.",
							&mc_fleet_timeout_ms,
							2000, 10, 600000,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("matter_capacity.tenant_move_timeout",
							"Time each step of a tenant move may take on the member, and the longest wait for its lag to reach a point.",
							"Bounds CREATE SUBSCRIPTION, counts and checksums on the member, and the catch-up during verification "
							"and cutover (while the tenant's writes pause).",
							&mc_tenant_move_timeout_ms,
							30000, 10, 3600000,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	/*
	 * Settings the postmaster owns, and the worker, exist only when the
	 * library is preloaded; without preload every function still works.
	 */
	if (process_shared_preload_libraries_in_progress)
	{
		DefineCustomStringVariable("matter_capacity.database",
								   "Database the background worker connects to.",
								   NULL,
								   &mc_worker_database,
								   "postgres",
								   PGC_POSTMASTER,
								   0,
								   NULL, NULL, NULL);
		DefineCustomBoolVariable("matter_capacity.track_latency",
								 "Count top-level statements and record their latency for read_qps, write_qps and the latency percentiles.",
								 NULL,
								 &mc_track_latency,
								 true,
								 PGC_SUSET,
								 0,
								 NULL, NULL, NULL);
		register_capacity_worker();
		install_latency_hooks();
	}

#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("matter_capacity");
#else
	EmitWarningsOnPlaceholders("matter_capacity");
#endif
}
