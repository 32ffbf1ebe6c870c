/*-------------------------------------------------------------------------
 * latency.h
 *		Statement counts and latency histograms in shared memory.
 *-------------------------------------------------------------------------
 */
#ifndef MC_LATENCY_H
#define MC_LATENCY_H

#include "postgres.h"

#include "datatype/timestamp.h"

#define LATENCY_CLASSES 2		/* 0 = read, 1 = write */

/* One interval's figures for one class, taken by the sampler. */
typedef struct LatencyInterval
{
	bool		valid;			/* false: first interval, or counters reset */
	double		seconds;
	uint64		count;
	double		p50_ms;
	double		p95_ms;
	double		p99_ms;
} LatencyInterval;

extern void install_latency_hooks(void);
extern bool latency_tracking_available(void);
extern void take_latency_interval(TimestampTz now, LatencyInterval out[LATENCY_CLASSES]);

#endif							/* MC_LATENCY_H */
