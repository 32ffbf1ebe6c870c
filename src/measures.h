/*-------------------------------------------------------------------------
 * measures.h
 *		Indicators added by issue 14 (measures.c, shares.c), sampled
 *		through the sampler's own path (sampler.c calls sample_measure).
 *-------------------------------------------------------------------------
 */
#ifndef MC_MEASURES_H
#define MC_MEASURES_H

#include "postgres.h"

#include "datatype/timestamp.h"

extern bool measure_known(const char *indicator);
extern int	sample_measure(const char *indicator, TimestampTz as_of);
extern void indicator_ran(const char *indicator, TimestampTz as_of, int samples, const char *note);
extern void note_indicator(const char *indicator, TimestampTz as_of, const char *note);

/* shares.c */
extern int	sample_tenant_shares(TimestampTz as_of);

#endif							/* MC_MEASURES_H */
