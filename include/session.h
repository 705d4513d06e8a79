/*
 * session.h - one POP3 connection, from greeting to QUIT: the RFC 1939
 * state machine AUTHORIZATION -> TRANSACTION -> UPDATE, run in two
 * processes (privsep.h): the pre-auth child speaks the AUTHORIZATION
 * state, the session child the TRANSACTION state and UPDATE.
 *
 * The dispatcher alone writes "+OK"/"-ERR" and decides when to flush:
 * handlers return a small closed set of results (session.c).  Every
 * client-visible failure carries an RFC 2449/3206 response code.
 */
#ifndef MBOXPOP3D_SESSION_H
#define MBOXPOP3D_SESSION_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "auth.h"
#include "config.h"

/*
 * One session per mailbox (RFC 2449 [IN-USE]): before a login opens the
 * mailbox, claim() asks the keeper of the table of logged-in mailboxes
 * (the master) for it.  Returns 0 if claimed, 1 if another session has
 * it, 2 if the account logged in less than login_delay ago, -1 if the
 * keeper did not answer.  The claim lasts as long as the
 * process that made it, so it can never outlive a crash.
 */
typedef int (*claim_fn)(void *ctx, const char *user);

/* The worker's answer to a login (privsep.h). */
enum verdict {
    VERDICT_OK = 'K',         /* the session child takes over the client */
    VERDICT_DENIED = 'F',     /* -ERR [AUTH] */
    VERDICT_TEMP = 'T',       /* -ERR [SYS/TEMP]: cannot check now */
    VERDICT_IN_USE = 'I',     /* -ERR [IN-USE], and the session ends */
    VERDICT_DENIED_BYE = 'Q', /* -ERR [AUTH], max_auth_failures reached: end */
    VERDICT_LOGIN_DELAY = 'W',/* -ERR [LOGIN-DELAY], and the session ends */
};

/* How a login proves itself: a password (USER/PASS, AUTH PLAIN) or an
 * APOP digest (RFC 1939 section 7). */
enum login_mech { MECH_PASSWORD = 'P', MECH_APOP = 'A' };

/* Hands a login to the worker: returns an enum verdict, or -1. */
typedef int (*verify_fn)(void *ctx, enum login_mech mech, const char *user, const char *secret,
                         const char *pipelined, size_t npipelined);

struct session_env {
    const char *peer;                        /* client address, for the log */
    const volatile sig_atomic_t *stop_flag;  /* set to end politely (shutdown) */
    const volatile sig_atomic_t *shed_flag;  /* set with stop_flag: closed to
                                                make room (pre-auth only) */
    verify_fn verify;                        /* pre-auth: who checks PASS */
    void *verify_ctx;
    const char *apop_timestamp;              /* "<pid.clock@host>", or NULL */
    int64_t start_ms;                        /* connect time (0: now) for
                                                max_session_time and the log */
    int keeper_fd;                           /* session: its channel to the keeper */
};

/* The pre-auth child: greeting and AUTHORIZATION.  Returns when the
 * client quit or left, or when a login was handed over. */
void session_preauth(const struct config *cfg, int rfd, int wfd, const struct session_env *env);

/* The session child, as the account: opens the mailbox, answers the PASS,
 * then TRANSACTION and UPDATE.  pipelined: bytes the client sent after
 * PASS, read as if they had just arrived. */
void session_transaction(const struct config *cfg, int rfd, int wfd, const struct account *acct,
                         const char *pipelined, size_t npipelined,
                         const struct session_env *env);

#endif
