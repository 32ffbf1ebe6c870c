/*-------------------------------------------------------------------------
 * loopback.h
 *		Statements PostgreSQL accepts only at top level, run through a
 *		connection to our own server.
 *-------------------------------------------------------------------------
 */
#ifndef MC_LOOPBACK_H
#define MC_LOOPBACK_H

#include "postgres.h"

/* Why detach_concurrently() did not detach. */
typedef enum LoopbackFailure
{
	LOOPBACK_OK,
	LOOPBACK_OWN_LOCK,			/* not tried: we hold a lock it would wait for */
	LOOPBACK_NO_CONNECTION,		/* could not connect */
	LOOPBACK_STATEMENT_FAILED	/* connected; the statement failed */
} LoopbackFailure;

extern bool detach_concurrently(Oid parent, Oid part_relid, const char *parent_q,
								const char *part_q, char **error, LoopbackFailure *why);
extern bool loopback_run(const char *sql, char **error);
extern bool loopback_run_bounded(const char *sql, int lock_timeout_ms, char **error,
								 LoopbackFailure *why);

#endif							/* MC_LOOPBACK_H */
