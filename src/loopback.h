/*-------------------------------------------------------------------------
 * loopback.h
 *		Statements PostgreSQL accepts only at top level, run through a
 *		connection to our own server.
 *-------------------------------------------------------------------------
 */
#ifndef MC_LOOPBACK_H
#define MC_LOOPBACK_H

#include "postgres.h"

extern bool detach_concurrently(const char *parent_q, const char *part_q,
								char **error);
extern bool loopback_run(const char *sql, char **error);

#endif							/* MC_LOOPBACK_H */
