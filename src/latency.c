/*-------------------------------------------------------------------------
 * latency.c
 *		Executor hooks: count top-level statements by class and record
 *		their latency into log-scale histograms in shared memory.
 *
 * A statement's latency runs from the start PostgreSQL records for the
 * client's message (simple Query, or extended-protocol Execute) to the end
 * of its executor: what the client waits for on the server, parse and plan
 * included.  One clock read per statement, nothing allocated.
 *
 * Classes: read = SELECT without row locks or data-modifying CTEs;
 * write = INSERT, UPDATE, DELETE, MERGE.  Utility statements and nested
 * statements (inside functions, DO blocks, procedures) are not counted;
 * only client backends count (not parallel or background workers).
 *
 * A histogram has LAT_BUCKETS buckets, each LAT_GROWTH times wider than the
 * previous, from 1 microsecond to about 8 minutes; a percentile is read as
 * its bucket's geometric middle, within 2% of the true value.
 *
 * Every backend has its own histograms (a slot indexed by its backend
 * number) and is their only writer: the hot path is one 64-bit store to
 * memory no other backend writes, so no lock and no cache line bounced
 * between cores.  The sampler sums all slots (64-bit reads are atomic) and,
 * under one LWLock only samplers take, keeps the previous totals to report
 * the difference per interval.  A slot reused by a new backend keeps
 * counting up, so totals never go backwards.
 *
 * Shared memory is sized and initialised in one place: latency_shmem_*.
 * Every hook we replace is saved and chained.  Only installed when the
 * library is preloaded; otherwise the read/write indicators are absent.
 *
 * Must not write samples (sampler.c does).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "executor/executor.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/autovacuum.h"
#include "replication/walsender.h"
#include "storage/backendid.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "latency.h"

#define LAT_BUCKETS 512
#define LAT_MIN_US 1.0
#define LAT_GROWTH 1.04

/* One backend's histograms; written only by that backend. */
typedef struct LatencySlot
{
	pg_atomic_uint64 count[LATENCY_CLASSES][LAT_BUCKETS];
} LatencySlot;

typedef struct LatencyShared
{
	LWLock	   *lock;			/* protects last[] and last_at only */
	uint64		last[LATENCY_CLASSES][LAT_BUCKETS];
	TimestampTz last_at;
	int			nslots;
	LatencySlot slots[FLEXIBLE_ARRAY_MEMBER];
} LatencyShared;

static LatencyShared *latency = NULL;
static int	exec_nested_level = 0;

static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

/* ---- shared memory ---- */

/* Backend slots: MaxBackends once known (PG 15 requests shmem later). */
static int
latency_slot_count(void)
{
#if PG_VERSION_NUM >= 150000
	return MaxBackends;
#else
	return MaxConnections + autovacuum_max_workers + 1 + max_worker_processes + max_wal_senders;
#endif
}

static Size
latency_shmem_size(void)
{
	return MAXALIGN(add_size(offsetof(LatencyShared, slots),
							 mul_size(latency_slot_count(), sizeof(LatencySlot))));
}

static void
latency_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(latency_shmem_size());
	RequestNamedLWLockTranche("matter_capacity", 1);
}

static void
latency_shmem_startup(void)
{
	bool		found;
	int			c,
				b;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	latency = ShmemInitStruct("matter_capacity latency", latency_shmem_size(), &found);
	if (!found)
	{
		int			i;

		latency->lock = &(GetNamedLWLockTranche("matter_capacity"))->lock;
		latency->nslots = latency_slot_count();
		for (c = 0; c < LATENCY_CLASSES; c++)
			for (b = 0; b < LAT_BUCKETS; b++)
			{
				latency->last[c][b] = 0;
				for (i = 0; i < latency->nslots; i++)
					pg_atomic_init_u64(&latency->slots[i].count[c][b], 0);
			}
		latency->last_at = 0;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* ---- classification and recording ---- */

static int
statement_class(QueryDesc *queryDesc)
{
	PlannedStmt *ps = queryDesc->plannedstmt;

	switch (queryDesc->operation)
	{
		case CMD_SELECT:
			return (ps->rowMarks == NIL && !ps->hasModifyingCTE) ? 0 : 1;
		case CMD_INSERT:
		case CMD_UPDATE:
		case CMD_DELETE:
#if PG_VERSION_NUM >= 150000
		case CMD_MERGE:
#endif
			return 1;
		default:
			return -1;
	}
}

static int
bucket_of(double us)
{
	int			b;

	if (us < LAT_MIN_US)
		return 0;
	b = (int) (log(us / LAT_MIN_US) / log(LAT_GROWTH)) + 1;
	return Min(b, LAT_BUCKETS - 1);
}

/* geometric middle of a bucket, in ms */
static double
bucket_middle_ms(int b)
{
	if (b == 0)
		return LAT_MIN_US / 2000.0;
	return LAT_MIN_US * pow(LAT_GROWTH, b - 1) * sqrt(LAT_GROWTH) / 1000.0;
}

static bool
tracking(QueryDesc *queryDesc)
{
	/* client backends only: a background worker's SPI runs at level 0 too */
	return latency != NULL && mc_track_latency && exec_nested_level == 0 &&
		MyBackendType == B_BACKEND && statement_class(queryDesc) >= 0;
}

static void
capacity_ExecutorRun(QueryDesc *queryDesc, ScanDirection direction, uint64 count,
					 bool execute_once)
{
	exec_nested_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(queryDesc, direction, count, execute_once);
		else
			standard_ExecutorRun(queryDesc, direction, count, execute_once);
	}
	PG_FINALLY();
	{
		exec_nested_level--;
	}
	PG_END_TRY();
}

static void
capacity_ExecutorFinish(QueryDesc *queryDesc)
{
	exec_nested_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_FINALLY();
	{
		exec_nested_level--;
	}
	PG_END_TRY();
}

static void
capacity_ExecutorEnd(QueryDesc *queryDesc)
{
	if (tracking(queryDesc))
	{
#if PG_VERSION_NUM >= 170000
		int			slot = MyProcNumber;
#else
		int			slot = MyBackendId - 1;
#endif

		if (slot >= 0 && slot < latency->nslots)
		{
			pg_atomic_uint64 *counter;
			TimestampTz elapsed = GetCurrentTimestamp() - GetCurrentStatementStartTimestamp();

			counter = &latency->slots[slot].count[statement_class(queryDesc)]
				[bucket_of((double) elapsed)];
			/* single writer: a plain store, no read-modify-write on the bus */
			pg_atomic_write_u64(counter, pg_atomic_read_u64(counter) + 1);
		}
	}
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * Utility statements are not counted, but what they run (a DO block, a
 * procedure) is nested: raise the level around them.
 */
static void
capacity_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	exec_nested_level++;
	PG_TRY();
	{
		if (prev_ProcessUtility)
			prev_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		exec_nested_level--;
	}
	PG_END_TRY();
}

void
install_latency_hooks(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = latency_shmem_request;
#else
	latency_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = latency_shmem_startup;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = capacity_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = capacity_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = capacity_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = capacity_ProcessUtility;
}

bool
latency_tracking_available(void)
{
	return latency != NULL;
}

static double
percentile_ms(const uint64 *delta, uint64 total, double p)
{
	uint64		want = (uint64) ceil(p * (double) total);
	uint64		seen = 0;
	int			b;

	for (b = 0; b < LAT_BUCKETS; b++)
	{
		seen += delta[b];
		if (seen >= want && seen > 0)
			return bucket_middle_ms(b);
	}
	return bucket_middle_ms(LAT_BUCKETS - 1);
}

/*
 * The statements since the previous call, per class.  The first call after
 * a start (or a histogram that went backwards) only sets the baseline.
 */
void
take_latency_interval(TimestampTz now, LatencyInterval out[LATENCY_CLASSES])
{
	uint64		current[LAT_BUCKETS];
	uint64		delta[LAT_BUCKETS];
	int			c,
				b;
	bool		have_base;
	double		seconds;

	memset(out, 0, sizeof(LatencyInterval) * LATENCY_CLASSES);
	if (latency == NULL)
		return;
	LWLockAcquire(latency->lock, LW_EXCLUSIVE);
	have_base = latency->last_at != 0 && now > latency->last_at;
	seconds = have_base ? (double) (now - latency->last_at) / USECS_PER_SEC : 0;
	for (c = 0; c < LATENCY_CLASSES; c++)
	{
		bool		sane = have_base;
		uint64		total = 0;

		for (b = 0; b < LAT_BUCKETS; b++)
		{
			int			i;

			current[b] = 0;
			for (i = 0; i < latency->nslots; i++)
				current[b] += pg_atomic_read_u64(&latency->slots[i].count[c][b]);
			if (current[b] < latency->last[c][b])
				sane = false;
			delta[b] = current[b] - latency->last[c][b];
			total += delta[b];
			latency->last[c][b] = current[b];
		}
		if (!sane)
			continue;
		out[c].valid = true;
		out[c].seconds = seconds;
		out[c].count = total;
		if (total > 0)
		{
			out[c].p50_ms = percentile_ms(delta, total, 0.50);
			out[c].p95_ms = percentile_ms(delta, total, 0.95);
			out[c].p99_ms = percentile_ms(delta, total, 0.99);
		}
	}
	latency->last_at = now;
	LWLockRelease(latency->lock);
}
