/*-------------------------------------------------------------------------
 * periods.h
 *		Period arithmetic and partition names.
 *
 * A period is a half-open interval [from, to) of microseconds since
 * 2000-01-01 00:00 UTC (the int64 behind timestamp and timestamptz).
 * Boundaries are computed in UTC whatever the session TimeZone, so a
 * timestamp column is treated as UTC wall time and a date as its midnight.
 *-------------------------------------------------------------------------
 */
#ifndef MC_PERIODS_H
#define MC_PERIODS_H

#include "postgres.h"

typedef enum Granularity
{
	GRAN_DAY,
	GRAN_WEEK,					/* ISO week, Monday 00:00 UTC */
	GRAN_MONTH
} Granularity;

typedef struct Period
{
	int64		from;
	int64		to;
} Period;

extern bool parse_granularity(const char *text, Granularity *g);
extern const char *granularity_name(Granularity g);
extern void check_time_in_range(int64 t, const char *what);
extern int64 period_floor(int64 t, Granularity g);
extern int64 period_advance(int64 start, Granularity g, int n);
extern Period period_containing(int64 t, Granularity g);
extern int64 granularity_nominal_usecs(Granularity g);
extern char *period_suffix(int64 start, Granularity g);
extern char *period_literal(int64 t, Oid typid);
/* longest name we generate: "_" || name (the array type) must fit too */
#define MC_NAME_MAX_BYTES (NAMEDATALEN - 2)

extern bool period_time_supported(int64 t);
extern char *partition_relname(const char *base, const char *suffix);
extern char *utc_label(int64 t);
extern char *hash_leaf_suffix(int remainder, int modulus);

#endif							/* MC_PERIODS_H */
