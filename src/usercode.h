/*-------------------------------------------------------------------------
 * usercode.h
 *		Running code a user controls (a probe, an EXPLAIN check) from a
 *		session that has more rights than that user: as the user, bounded
 *		in time, read-only, and leaving nothing behind.
 *-------------------------------------------------------------------------
 */
#ifndef MC_USERCODE_H
#define MC_USERCODE_H

#include "postgres.h"

#include "access/xact.h"
#include "nodes/pg_list.h"
#include "utils/elog.h"
#include "utils/palloc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

typedef struct UserCode
{
	const char *what;			/* "probe x", "EXPLAIN check y": for messages */
	Oid			role;			/* runs as this role */
	int			timeout_ms;
	/* saved state, restored by usercode_finish / usercode_fail */
	MemoryContext oldcxt;
	ResourceOwner oldowner;
	Oid			save_userid;
	int			save_sec;
	int			run_sec;
	int			nest;
	char	   *search_path_before;
	List	   *advisory_before;
	TimestampTz started;
	SubTransactionId subid;
	bool		active;
} UserCode;

extern void usercode_begin(UserCode *uc, const char *what, Oid role,
						   const char *search_path, int timeout_ms);
extern void usercode_finish(UserCode *uc);
extern ErrorData *usercode_fail(UserCode *uc);
extern bool usercode_timed_out(void);
extern void usercode_limit_begin(int timeout_ms);
extern bool usercode_limit_end(void);
extern int	usercode_elapsed_ms(UserCode *uc);
extern bool role_exists(Oid roleid);

/* What a user's query is, as far as "one SELECT that only reads" goes. */
typedef enum SelectShape
{
	SELECT_ONE,					/* one SELECT: the only acceptable answer */
	SELECT_EMPTY,				/* no statement at all */
	SELECT_SEVERAL,				/* several statements */
	SELECT_NOT_SELECT,			/* another kind of statement */
	SELECT_INTO,				/* SELECT ... INTO creates a table */
	SELECT_LOCKING,				/* FOR UPDATE / SHARE ... takes row locks */
	SELECT_MODIFYING_WITH		/* WITH x AS (INSERT/UPDATE/DELETE ...) */
} SelectShape;

extern SelectShape single_select_shape(const char *query, struct RawStmt **stmt,
									   const char **cte_name);

#endif							/* MC_USERCODE_H */
