/*
 * privsep.h - privilege boundaries are process boundaries.
 *
 * When the daemon runs as root, a successful login forks the session
 * child, which drops to the account (setgroups, setgid, setuid, each
 * checked, then verified) before it opens the spool.  The parent stays
 * behind as the session's monitor: the one thing the session cannot do
 * for itself is create spool_dir/USER.lock in a root:mail 2775 spool
 * directory (giving the session group mail would let it read every 660
 * user:mail spool).  So the monitor serves exactly three requests over a
 * socketpair - create, refresh, remove the dotlock of that one account -
 * and removes a dotlock left behind if the session dies holding it.
 * (The process-model issue moves the monitor into its own unprivileged
 * uid with group mail; this interface stays.)
 */
#ifndef MBOXPOP3D_PRIVSEP_H
#define MBOXPOP3D_PRIVSEP_H

#include <sys/types.h>
#include "auth.h"
#include "lock.h"

/* The session child's pid while a monitor serves it (for signals). */
extern volatile pid_t privsep_child_pid;

/* Drops to the account's uid, gid and groups; verifies the result. */
int privsep_drop(const struct account *acct);

/*
 * Forks the session child.  In the child: privileges dropped, returns 0
 * and *chan is its end of the monitor channel (use privsep_dotlock as
 * the locker's dotlock callback with ctx = chan).  In the parent: serves
 * dotlock requests for lock_path until the child exits, then returns 1;
 * it closes client_fds first, so only the child talks to the client.
 * Returns -1 if the fork or the drop fails (in the child, it exits).
 */
int privsep_run_session(const struct account *acct, const char *lock_path,
                        unsigned stale_secs, int *chan, const int *client_fds,
                        int n_client_fds);

/* The session side of the dotlock channel (a dotlock_fn). */
int privsep_dotlock(void *ctx, enum dotlock_op op);

#endif
