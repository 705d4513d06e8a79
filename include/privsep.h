/*
 * privsep.h - privilege boundaries are process boundaries.
 *
 * When the daemon runs as root, a successful login forks the session
 * child, which drops to the account (setgroups, setgid, setuid, each
 * checked, then verified) before it opens the spool.  The parent stays
 * behind as the session's monitor: the one thing the session cannot do
 * for itself is create spool_dir/USER.lock in a root:mail 2775 spool
 * directory (giving the session group mail would let it read every 660
 * user:mail spool), and the same goes for UPDATE's journal
 * (.USER.mboxpop3d-journal, mailbox.h).  So the monitor serves exactly
 * these requests over a socketpair, for that one account's fixed paths:
 * create, refresh, remove the dotlock; open, create (owned by the
 * account, passed back as a file descriptor), remove the journal.  It
 * removes a dotlock left behind if the session dies holding it.
 * (The process-model issue moves the monitor into its own unprivileged
 * uid with group mail; this interface stays.)
 */
#ifndef MBOXPOP3D_PRIVSEP_H
#define MBOXPOP3D_PRIVSEP_H

#include <sys/types.h>
#include "auth.h"
#include "lock.h"
#include "mailbox.h"

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
struct monitor_spec {
    const struct account *acct;
    const char *lock_path;      /* spool + ".lock" */
    const char *journal_path;   /* journal_path_for(spool) */
    unsigned stale_secs;
};

int privsep_run_session(const struct monitor_spec *spec, int *chan, const int *client_fds,
                        int n_client_fds);

/* The session side of the channel: a dotlock_fn and a journal_fn. */
int privsep_dotlock(void *ctx, enum dotlock_op op);
int privsep_journal(void *ctx, enum journal_op op);

#endif
