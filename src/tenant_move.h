/*-------------------------------------------------------------------------
 * tenant_move.h
 *		What other files ask of tenant moves (src/tenant_move.c).
 *-------------------------------------------------------------------------
 */
#ifndef MC_TENANT_MOVE_H
#define MC_TENANT_MOVE_H

/* the tenant of a move of relid not yet cut over (SPI connected), or NULL */
extern char *tenant_move_in_progress(Oid relid);

/* the rollover's rescue moves rows of tenants already cut over (see the guard) */
extern void tenant_move_allow_rescue(bool on);

#endif
