/*-------------------------------------------------------------------------
 * fleet.h
 *		The fleet: members polled from the hub.
 *-------------------------------------------------------------------------
 */
#ifndef MC_FLEET_H
#define MC_FLEET_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Poll every member once and record their figures at as_of; returns rows written. */
extern int	fleet_sample(TimestampTz as_of);

#endif							/* MC_FLEET_H */
