/*-------------------------------------------------------------------------
 * rollup.h
 *		The hourly and daily rollups of samples.
 *-------------------------------------------------------------------------
 */
#ifndef MC_ROLLUP_H
#define MC_ROLLUP_H

#include "postgres.h"

#include "datatype/timestamp.h"

extern int64 roll_up_hour_range(TimestampTz from, TimestampTz to);
extern int64 roll_up_day_range(TimestampTz from, TimestampTz to);
extern TimestampTz roll_up_from(TimestampTz as_of);
extern void roll_up_hours(TimestampTz from, TimestampTz as_of);

#endif							/* MC_ROLLUP_H */
