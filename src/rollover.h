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
	int64		as_of;
	double		reported_ms;	/* time already attributed to earlier actions */
} ActionSink;

extern int	rollover_table(Policy *pol, ActionSink *sink, int step_limit);

#endif							/* MC_ROLLOVER_H */
