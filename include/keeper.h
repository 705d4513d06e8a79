/*
 * keeper.h - the keeper: the one process that makes dotlocks and UPDATE
 * journals in the spool directory for every session (DESIGN.md,
 * "Privilege": the session never holds the spool directory's group).
 *
 * The keeper runs as preauth_user and the spool directory's group, no
 * root, not dumpable (privsep.c starts it), so no session can ptrace it.
 * Each session talks to it over a channel of its own that is bound to
 * one spool path before the session drops to the account:
 *
 *   bind      The keeper reads bind requests from one SOCK_SEQPACKET
 *             socket whose other end only root processes hold (the
 *             master and the workers, until a worker becomes a session).
 *             A request is {dotlock_stale, the spool's path} with the
 *             keeper's end of a fresh socket pair attached (SCM_RIGHTS);
 *             the worker keeps the other end.  A channel is bound once
 *             and for good: what a session sends can name no other path.
 *   requests  On a channel: one byte, a dotlock_op or journal_op, for
 *             that spool's USER.lock or journal only.  Answer: an int, 0
 *             or an errno, and for a journal open or create the
 *             journal's descriptor (SCM_RIGHTS).
 *   the end   A channel that closes while its dotlock is held (the
 *             session died) has the dotlock removed.  The keeper ignores
 *             the stop signals: it exits once the bind socket's other
 *             end is closed everywhere and no channel is left, so it
 *             outlives every UPDATE that needs it.
 *
 * One process serves all: its requests take microseconds each on a local
 * file system.  A spool directory on a stalled NFS server stalls the
 * dotlocks of every session, as it would stall the sessions themselves.
 */
#ifndef MBOXPOP3D_KEEPER_H
#define MBOXPOP3D_KEEPER_H

#include "lock.h"
#include "mailbox.h"

/* The longest spool path a bind request carries. */
#define KEEPER_PATH_MAX 4096

/* The keeper's loop over bind_fd and the channels bound through it;
 * returns when there is nothing left to serve. */
void keeper_serve(int bind_fd);

/* A root process's side of a bind: returns the new channel for the
 * spool at spool_path, or -1 (errno set; EPIPE or ECONNREFUSED: no
 * keeper). */
int keeper_bind(int bind_fd, const char *spool_path, unsigned dotlock_stale);

/* The session's side of its channel: a dotlock_fn and a journal_fn (ctx
 * points to the channel's fd). */
int keeper_dotlock(void *ctx, enum dotlock_op op);
int keeper_journal(void *ctx, enum journal_op op);

#endif
