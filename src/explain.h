/*-------------------------------------------------------------------------
 * explain.h
 *		Counting the partitions a query would scan, without running it.
 *-------------------------------------------------------------------------
 */
#ifndef MC_EXPLAIN_H
#define MC_EXPLAIN_H

#include "postgres.h"

typedef struct PruneResult
{
	int			partitions;		/* the larger of custom and generic */
	int			custom_partitions;
	int			generic_partitions; /* -1 without parameters */
	char	   *signature;
} PruneResult;

extern PruneResult check_query_pruning(const char *query, ArrayType *params);

#endif							/* MC_EXPLAIN_H */
