/*
 * session.h - one POP3 connection, from greeting to QUIT: the RFC 1939
 * state machine AUTHORIZATION -> TRANSACTION -> UPDATE.
 *
 * The dispatcher alone writes "+OK"/"-ERR" and decides when to flush:
 * handlers return a small closed set of results (session.c).  Every
 * client-visible failure carries an RFC 2449/3206 response code.
 */
#ifndef MBOXPOP3D_SESSION_H
#define MBOXPOP3D_SESSION_H

#include <signal.h>
#include "config.h"

/*
 * One session per mailbox (RFC 2449 [IN-USE]): before a login opens the
 * mailbox, claim() asks the keeper of the table of logged-in mailboxes
 * (the master) for it.  Returns 0 if claimed, 1 if another session has
 * it, -1 if the keeper did not answer.  The claim lasts as long as the
 * process that made it, so it can never outlive a crash.
 */
typedef int (*claim_fn)(void *ctx, const char *user);

struct session_env {
    const char *peer;                        /* client address, for the log */
    const volatile sig_atomic_t *stop_flag;  /* set to end politely (shutdown) */
    claim_fn claim;                          /* NULL: no table (inetd mode) */
    void *claim_ctx;
    int private_fd;                          /* closed in the session child, or -1 */
};

/*
 * Serves one client on rfd/wfd (the same socket, or stdin/stdout in inetd
 * mode) and returns when the session is over; the caller closes the fds.
 */
void session_serve(const struct config *cfg, int rfd, int wfd, const struct session_env *env);

#endif
