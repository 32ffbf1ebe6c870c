/*-------------------------------------------------------------------------
 * locks.h
 *		Run a step that needs locks on a hot table without stalling it.
 *-------------------------------------------------------------------------
 */
#ifndef MC_LOCKS_H
#define MC_LOCKS_H

#include "postgres.h"

#include "storage/lockdefs.h"

typedef void (*BoundedStep) (void *arg);

/* work run by run_guarded: true keeps it, false undoes it */
typedef bool (*GuardedStep) (void *arg);
extern ErrorData *run_guarded(GuardedStep fn, void *arg, bool *kept);

/* after a lock timeout: true when the holder was made to give way */
typedef bool (*BoundedYield) (void *arg);

extern bool run_bounded(BoundedStep step, void *arg, int *attempts);
extern void run_bounded_single(bool on);
extern bool run_bounded_deadlocked(void);

/* Argument of autovacuum_yield, the BoundedYield for autovacuum workers. */
typedef struct AutovacuumYield
{
	Datum		rels;			/* regclass[] */
	Datum		what;			/* text */
} AutovacuumYield;

extern bool autovacuum_yield(void *arg);
extern bool run_bounded_yielding(BoundedStep step, void *arg, BoundedYield yield,
								 void *yield_arg, int *attempts);
extern void lock_relation_step(void *arg);
extern void exec_sql_step(void *arg);

/* Argument of lock_relation_step: lock these relations in this order. */
typedef struct LockRequest
{
	int			n;
	Oid			relids[4];
	LOCKMODE	modes[4];
} LockRequest;

extern void exec_sql(const char *sql, int expected);

#endif							/* MC_LOCKS_H */
