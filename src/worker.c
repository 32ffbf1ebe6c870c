/*-------------------------------------------------------------------------
 * worker.c
 *		One background worker that runs sampling and rollover on a schedule.
 *
 * Tasks: sampling, rollover and the EXPLAIN-stability checks, each at its
 * own interval, and a slice of any unfinished conversion backfill per
 * sampling round (through the loopback connection).
 *
 * Started by the postmaster when matter_capacity is in
 * shared_preload_libraries, once recovery has finished (so it never runs on
 * a hot standby, and starts after promotion); connected to
 * matter_capacity.database as the bootstrap superuser; shown as
 * "matter_capacity" in pg_stat_activity.backend_type.
 *
 * Each task runs in its own transaction; an error is logged and the loop
 * goes on, so one bad task never stops the others.  No task waits without
 * bound for what another session or a table owner's code does: the
 * rollover's step 1 runs under a time limit of one sample interval
 * (ActionSink.step1_limit_ms), the backfill's CALL under the lock timeout.  While the extension is
 * not installed in the database the worker only waits.  SIGHUP reloads the
 * intervals; SIGTERM ends it at the next wait (every wait is on the latch);
 * after a crash the postmaster restarts it.
 *
 * Owns: the schedule, transaction handling, and how each task is started:
 * sample_all() and rollover_per_step() called as the SQL functions call
 * them, capacity_explain_run() through SPI, and one CALL of
 * capacity_convert_backfill() per unfinished conversion, sent through the
 * loopback connection because the procedure commits per batch.  (A default
 * partition too big for the rescue is handed to capacity_empty_default()
 * by the rollover itself, rollover.c empty_large_default; the worker only
 * says how many backfill batches that call may run.)  Must not
 * contain what the tasks do: that lives in sampler.c, rollover.c,
 * explain.c and 60_convert.sql.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "loopback.h"
#include "rollover.h"
#include "sampler.h"
#include "worker.h"

typedef void (*WorkerTask) (void);

void
register_capacity_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "matter_capacity");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "capacity_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "matter_capacity worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "matter_capacity");
	RegisterBackgroundWorker(&worker);
}

static void
task_sample(void)
{
	int			nest = pin_search_path();

	(void) sample_all(GetCurrentTimestamp());
	AtEOXact_GUC(false, nest);
}

static void run_task(const char *name, WorkerTask task);

/* When the next sampling is due; a long rollover samples between its steps. */
static TimestampTz next_sample = 0;

static void
sample_if_due(void)
{
	if (GetCurrentTimestamp() < next_sample)
		return;
	run_task("matter_capacity: sampling", task_sample);
	next_sample = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											  (int64) mc_sample_interval_s * 1000);
}

/*
 * Between two rollover steps: commit, sample if that is due (so tables
 * skipped behind long readers never delay sampling by more than a step),
 * and start afresh with a snapshot.
 */
static void
worker_commit_step(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	sample_if_due();
	pgstat_report_activity(STATE_RUNNING, "matter_capacity: rollover");
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
}

static void
task_rollover(void)
{
	ActionSink	sink = {0};
	/* survives the commits between steps */
	MemoryContext mcxt = AllocSetContextCreate(TopMemoryContext, "matter_capacity worker rollover",
											   ALLOCSET_DEFAULT_SIZES);

	sink.as_of = GetCurrentTimestamp();
	sink.quiet = true;
	/* the owner's code a rescue fires must not keep sampling waiting (review 4 F10) */
	sink.step1_limit_ms = mc_sample_interval_s * 1000;
	/* a big default partition: the swap, then slices like any backfill */
	sink.empty_large_defaults = mc_backfill_batches > 0;
	sink.backfill_batches = mc_backfill_batches;
	PG_TRY();
	{
		rollover_per_step(InvalidOid, &sink, worker_commit_step, mcxt);
	}
	PG_FINALLY();
	{
		MemoryContextDelete(mcxt);
	}
	PG_END_TRY();
}

static void
task_explain(void)
{
	int			nest = pin_search_path();

	/*
	 * Every argument given, typed: a look-alike planted in the extension's
	 * schema can neither match better nor make the call ambiguous (a
	 * zero-argument one did, review 4 F3).
	 */
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s(pg_catalog.now())",
							 capacity_object("capacity_explain_run")), false, 0) < 0)
		elog(ERROR, "matter_capacity: capacity_explain_run() failed");
	AtEOXact_GUC(false, nest);
}

/*
 * A slice of every unfinished conversion backfill, through a loopback
 * connection: the procedure commits per batch, so it must be called at top
 * level, and this transaction holds no lock it would wait for.
 */
static void
task_backfill(void)
{
	List	   *calls = NIL;
	ListCell   *lc;
	uint64		i;

	/*
	 * The table as a typed literal, every argument given: with an untyped
	 * one, a look-alike taking text planted in the extension's schema was
	 * the better match and ran as this worker's role (review 4, F2).
	 */
	if (SPI_execute(psprintf("SELECT pg_catalog.format('CALL %%s(%%L::pg_catalog.regclass, 10000::pg_catalog.int4, "
							 "max_batches => %d::pg_catalog.int4)', "
							 "%s, c.table_name::pg_catalog.text) FROM %s c "
							 "WHERE c.state OPERATOR(pg_catalog.<>) 'done' ORDER BY 1",
							 mc_backfill_batches,
							 quote_literal_cstr(capacity_object("capacity_convert_backfill")),
							 capacity_object("capacity_conversion")),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "matter_capacity: reading capacity_conversion failed");
	for (i = 0; i < SPI_processed; i++)
		calls = lappend(calls, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	foreach(lc, calls)
	{
		char	   *error;
		LoopbackFailure why;

		/*
		 * Under the lock timeout: a batch waiting for a row an application
		 * holds (one left idle in transaction) kept the worker, and with it
		 * sampling, waiting for as long (review 4 F14).  The batch is undone
		 * and the next round goes on from the committed watermark.
		 */
		if (!loopback_run_bounded(lfirst(lc), mc_lock_timeout_ms, &error, &why))
			ereport(WARNING,
					(errmsg("matter_capacity: conversion backfill failed: %s", error),
					 why == LOOPBACK_NO_CONNECTION ?
					 errhint("Set matter_capacity.loopback_conninfo if the worker cannot connect to this server.") :
					 errhint("The batch waits at most matter_capacity.lock_timeout for what an application holds; it was undone and the next round goes on from the last committed batch.")));
	}
}

/*
 * Run one task in its own transaction.  Quietly does nothing while the
 * extension is missing or the server is (again) in recovery.  Errors are
 * logged and swallowed: the worker survives them.
 */
static void
run_task(const char *name, WorkerTask task)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	if (RecoveryInProgress())
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, name);
	PG_TRY();
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		if (OidIsValid(get_extension_oid("matter_capacity", true)))
		{
			SPI_connect();
			task();
			SPI_finish();
		}
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();

		/*
		 * Out of every (sub)transaction a task may have left open: the
		 * abort restores the user id, security context, GUCs and SPI stack
		 * as they were before the task, so the next task starts clean.
		 */
		AbortOutOfAnyTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	pgstat_report_stat(true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

void
capacity_worker_main(Datum arg)
{
	TimestampTz next_rollover = 0;
	TimestampTz next_explain = 0;
	TimestampTz next_backfill = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(mc_worker_database, NULL, 0);
	ereport(LOG,
			(errmsg("matter_capacity worker started in database \"%s\"", mc_worker_database)));

	for (;;)
	{
		TimestampTz now;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			/* new intervals take effect now */
			next_sample = next_rollover = next_explain = next_backfill = 0;
		}

		now = GetCurrentTimestamp();
		sample_if_due();
		/* backfills progress a slice per sampling round */
		if (mc_backfill_batches > 0 && now >= next_backfill)
		{
			run_task("matter_capacity: conversion backfill", task_backfill);
			next_backfill = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														(int64) mc_sample_interval_s * 1000);
		}
		now = GetCurrentTimestamp();
		if (mc_rollover_interval_s > 0 && now >= next_rollover)
		{
			run_task("matter_capacity: rollover", task_rollover);
			next_rollover = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
														(int64) mc_rollover_interval_s * 1000);
		}

		now = GetCurrentTimestamp();
		if (mc_explain_interval_s > 0 && now >= next_explain)
		{
			run_task("matter_capacity: EXPLAIN checks", task_explain);
			next_explain = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   (int64) mc_explain_interval_s * 1000);
		}

		now = GetCurrentTimestamp();
		wait_ms = 60 * 1000;
		wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(now, next_sample), 1));
		if (mc_rollover_interval_s > 0)
			wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(now, next_rollover), 1));
		if (mc_explain_interval_s > 0)
			wait_ms = Min(wait_ms, Max(TimestampDifferenceMilliseconds(now, next_explain), 1));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
