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
 * Serves one client on rfd/wfd (the same socket, or stdin/stdout in inetd
 * mode) and returns when the session is over; the caller closes the fds.
 * peer is the client's address for the log.  stop_flag, if not NULL, is
 * set by a signal handler to end the session politely (shutdown).
 */
void session_serve(const struct config *cfg, int rfd, int wfd, const char *peer,
                   const volatile sig_atomic_t *stop_flag);

#endif
