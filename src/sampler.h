/*-------------------------------------------------------------------------
 * sampler.h
 *		Writing indicator samples.
 *-------------------------------------------------------------------------
 */
#ifndef MC_SAMPLER_H
#define MC_SAMPLER_H

#include "postgres.h"

#include "datatype/timestamp.h"

extern int	sample_all(TimestampTz as_of);
extern bool is_numeric_type(Oid typid);
extern void record_engine_inserts(Oid relid, int64 rows);
extern void probe_check_select(const char *name, const char *query);
extern char *spi_values_source(int lcol, int vcol);
extern char *table_deletes_source(TimestampTz as_of);
extern int	write_samples(const char *indicator, const char *source, TimestampTz as_of);

#endif							/* MC_SAMPLER_H */
