/*-------------------------------------------------------------------------
 * worker.h
 *		The matter_capacity background worker.
 *-------------------------------------------------------------------------
 */
#ifndef MC_WORKER_H
#define MC_WORKER_H

#include "postgres.h"

extern void register_capacity_worker(void);
extern PGDLLEXPORT void capacity_worker_main(Datum arg);

#endif							/* MC_WORKER_H */
