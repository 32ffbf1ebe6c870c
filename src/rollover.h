/*-------------------------------------------------------------------------
 * rollover.h
 *		The rollover engine.
 *-------------------------------------------------------------------------
 */
#ifndef MC_ROLLOVER_H
#define MC_ROLLOVER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/tuplestore.h"

#include "catalog.h"

/* Where a rollover reports its actions. */
typedef struct ActionSink
{
	Tuplestorestate *store;		/* rows of capacity_rollover(); NULL: NOTICEs */
	TupleDesc	desc;
	bool		dry_run;
	bool		quiet;			/* no NOTICEs (internal tables); still logged */
	int64		as_of;
	double		reported_ms;	/* time already attributed to earlier actions */

	/*
	 * Procedure mode: retention of policies without a default partition is
	 * not done in the transaction but listed here (DeferredDetach, in
	 * defer_cxt) for DETACH ... CONCURRENTLY after the commit.
	 */
	bool		defer_detach;
	List	   *deferred;
	MemoryContext defer_cxt;

	/*
	 * The worker: a time limit (ms) for the table owner's code step 1's
	 * move of rows out of the default partition fires (0: none).
	 */
	int			step1_limit_ms;

	/* Per-step mode (procedure, worker): one unit per transaction. */
	bool		per_step;
	bool		stop_table;		/* a unit got no locks or failed: next table */
	List	   *given_up;		/* GivenUp *, in defer_cxt: not tried again */

	/* Actions of a guarded section are shown once it succeeded. */
	bool		buffering;
	List	   *buffered;
	MemoryContext buffer_cxt;

	/*
	 * Function form: locks the periods built so far take (lock budget), and
	 * what is kept of it for the current and coming periods of the tables
	 * not yet planned (one_round).
	 */
	int64		locks_used;
	int64		locks_reserved;

	/*
	 * Past periods made in this call for rows of the default partition of
	 * table past_relid (matter_capacity.max_past_periods_per_call), across
	 * the steps of the procedure and the worker.
	 */
	Oid			past_relid;
	int			past_made;

	/*
	 * The procedure and the worker: a default partition holding more than
	 * matter_capacity.rescue_backfill_rows rows is emptied by
	 * capacity_empty_default() through the loopback (empty_large_default),
	 * which runs backfill_batches batches of its backfill (-1: all of them
	 * and the switch).
	 */
	bool		empty_large_defaults;
	int			backfill_batches;

	/*
	 * One transaction (rollover_one_transaction): each table's step 2
	 * (retention, attach burst) waits in its round entry (round_table, a
	 * TableRound) until every table's step 1 is done; refused (Refused *,
	 * in defer_cxt) lists the tables whose step 2 failed in an earlier
	 * round, redo says the current round failed so.
	 */
	bool		bursts_last;
	void	   *round_table;
	List	   *refused;
	bool		redo;
} ActionSink;

typedef struct GivenUp
{
	Oid			relid;
	int64		start;
} GivenUp;

typedef struct DeferredDetach
{
	Oid			relid;			/* the managed table */
	Oid			part_relid;
	char	   *parent_q;
	char	   *part_q;
	char	   *part_name;
	char	   *detail;
	bool		drop;
} DeferredDetach;

extern int	rollover_table(Policy *pol, ActionSink *sink, int step_limit);
extern int64 rollover_lock_budget(void);
extern int	rollover_locks_for_period(int hash_leaves, int nindexes);
extern void check_policy_names(Policy *pol, int64 as_of);
typedef void (*CommitStep) (void);
extern void run_deferred_detaches(ActionSink *sink, CommitStep commit);
extern void rollover_per_step(Oid relid, ActionSink *sink, CommitStep commit,
							  MemoryContext mcxt);

#endif							/* MC_ROLLOVER_H */
