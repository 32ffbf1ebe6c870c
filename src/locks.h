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

extern bool run_bounded(BoundedStep step, void *arg, int *attempts);
extern void lock_relation_step(void *arg);

/* Argument of lock_relation_step: lock these relations in this order. */
typedef struct LockRequest
{
	int			n;
	Oid			relids[4];
	LOCKMODE	modes[4];
} LockRequest;

extern void exec_sql(const char *sql, int expected);

#endif							/* MC_LOCKS_H */
