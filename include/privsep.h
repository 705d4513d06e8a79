/*
 * privsep.h - privilege boundaries are process boundaries (DESIGN.md,
 * "Shape" and "Privilege").  Per connection, in the worker that accepted
 * it (root until it becomes the session):
 *
 *   pre-auth child   chroot(empty_dir), the unprivileged preauth_user, no
 *                    new privileges, no core dumps.  It alone parses the
 *                    unauthenticated client: greeting, CAPA, USER, PASS,
 *                    QUIT.  At PASS it sends {user, password, the bytes
 *                    the client sent after PASS} to the worker and waits
 *                    for a verdict; on success it exits without another
 *                    word, and the session answers the PASS.
 *   password check   a short-lived child of the worker runs
 *                    getpwnam/getspnam + crypt(3), so no shadow hash ever
 *                    sits in a long-lived process.
 *   session          the worker itself, once the login is decided: it
 *                    binds a channel at the keeper for the account's
 *                    spool, claims the mailbox at the master, closes its
 *                    channel to the master and the keeper's bind socket,
 *                    then setgroups (the account's, never the spool
 *                    directory's group), setgid, setuid to the account;
 *                    TRANSACTION and UPDATE; starts with the pipelined
 *                    bytes; asks the keeper for the dotlock and journal.
 *
 * And once per daemon (once per connection in inetd mode):
 *
 *   keeper           preauth_user and the spool directory's group (mail
 *                    on Debian): a uid that is neither root nor any
 *                    account, so no session can ptrace it, and the one
 *                    group that may create spool_dir/USER.lock.  It serves
 *                    only dotlock and journal requests, each channel for
 *                    the one spool it was bound to (keeper.h).
 *
 * Three processes per login, then: the worker, which the master forks
 * ahead of demand, and the two short-lived children.
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
    int master_fd;              /* closed in the children and the session, or -1 */
    int keeper_fd;              /* the keeper's bind socket (privsep_start_keeper) */
};

/* Serves one connection through the processes above.  Returns when the
 * connection ends without a login; after a login the process is the
 * session, and exits when it ends. */
void privsep_serve(const struct config *cfg, const struct privsep_ids *ids,
                   const struct connection *conn);

/* Drops to the account's uid, gid and groups (less the spool group). */
int privsep_drop(const struct account *acct, gid_t spool_gid);

/* Forks the keeper (keeper.h), with close_fds closed in it (listeners,
 * other channels, a client socket).  *bind_fd gets the root side of its
 * bind socket: keep it for the workers, close it to let the keeper end
 * after the last session.  Returns its pid, or -1 (logged). */
pid_t privsep_start_keeper(const struct config *cfg, const struct privsep_ids *ids,
                           const int *close_fds, size_t nclose, int *bind_fd);

#endif
