/*
 * privsep.h - privilege boundaries are process boundaries (DESIGN.md,
 * "Shape" and "Privilege").  Per connection, in the worker that accepted
 * it (the connection's monitor):
 *
 *   pre-auth child   chroot(empty_dir), the unprivileged preauth_user, no
 *                    new privileges, no core dumps.  It alone parses the
 *                    unauthenticated client: greeting, CAPA, USER, PASS,
 *                    QUIT.  At PASS it sends {user, password, the bytes
 *                    the client sent after PASS} to the monitor and waits
 *                    for a verdict; on success it exits without another
 *                    word, and the session child answers the PASS.
 *   password check   a short-lived child of the monitor runs
 *                    getpwnam/getspnam + crypt(3), so no shadow hash ever
 *                    sits in a long-lived process.
 *   session child    setgroups (the account's, never the spool
 *                    directory's group), setgid, setuid to the account;
 *                    TRANSACTION and UPDATE; starts with the pipelined
 *                    bytes; asks the monitor for the dotlock and journal.
 *   monitor          once the session child runs it drops to preauth_user
 *                    and the spool directory's group (mail on Debian): a
 *                    uid that is neither root nor the account, so the
 *                    session cannot ptrace it, and the one group that may
 *                    create spool_dir/USER.lock.  It serves only these
 *                    requests, for that one account's fixed paths: create,
 *                    refresh, remove the dotlock; open, create, remove the
 *                    UPDATE journal (passed back as a file descriptor).
 *                    It removes a dotlock the session dies holding.
 *
 * Started as non-root the same processes run, without the chroot and the
 * identity changes (every account is served as the invoking user).
 */
#ifndef MBOXPOP3D_PRIVSEP_H
#define MBOXPOP3D_PRIVSEP_H

#include <signal.h>
#include <sys/types.h>
#include "auth.h"
#include "config.h"
#include "lock.h"
#include "mailbox.h"
#include "session.h"

/* Identities looked up once by the master (privsep_prepare). */
struct privsep_ids {
    int privileged;             /* started as root */
    uid_t preauth_uid;
    gid_t preauth_gid;
    gid_t spool_gid;            /* group owning spool_dir: may make dotlocks */
};

/* Start-up checks and set-up (as root: preauth_user exists, empty_dir is
 * an empty root-owned directory, created if missing unless check_only,
 * which also makes an unusable spool directory group a failure).  On
 * failure err says what is wrong and how to fix it. */
int privsep_prepare(const struct config *cfg, struct privsep_ids *ids, int check_only, char *err,
                    size_t errlen);

/* What the accepting process knows about the connection. */
struct connection {
    int rfd, wfd;               /* the client (one socket, or stdin/stdout) */
    const char *peer;
    const volatile sig_atomic_t *stop_flag;
    const volatile sig_atomic_t *shed_flag;  /* pre-auth closed for room */
    claim_fn claim;             /* NULL: no table of mailboxes (inetd) */
    void *claim_ctx;
    const char *addr_key;       /* the client's address as limits count it */
    /* Tells the keeper of per-address failure counts (the master) about
     * a failed login; NULL in inetd mode.  ctx is claim_ctx. */
    void (*auth_failed)(void *ctx, const char *addr_key);
    void (*preauth_setup)(void);  /* run first in the pre-auth child, or NULL */
    int64_t start_ms;           /* when the client connected (now_ms()) */
    int master_fd;              /* closed in every child, or -1 */
};

/* Serves one connection through the processes above; returns when it is
 * over (in the monitor; the children exit). */
void privsep_serve(const struct config *cfg, const struct privsep_ids *ids,
                   const struct connection *conn);

/* Drops to the account's uid, gid and groups (less the spool group). */
int privsep_drop(const struct account *acct, gid_t spool_gid);

/* The session side of the monitor channel: a dotlock_fn and a journal_fn
 * (ctx points to the channel's fd). */
int privsep_dotlock(void *ctx, enum dotlock_op op);
int privsep_journal(void *ctx, enum journal_op op);

#endif
