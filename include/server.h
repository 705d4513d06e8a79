/*
 * server.h - the standalone server: listeners (IPv4 and IPv6) and the
 * master that keeps a pool of pre-forked workers.
 *
 * Shape (the project's design notes, DESIGN.md): the master binds the
 * listeners and talks to a client only to refuse it when max_children is
 * reached.  Workers are forked ahead of demand and wait in accept(); a
 * worker that accepts a connection reports itself busy on its channel to
 * the master, serves that one session and exits, and the master forks
 * replacements so that min_spare idle workers are ready, never more than
 * max_children in all.  SIGTERM/SIGINT: stop accepting, let sessions end
 * politely (an UPDATE in progress always completes), exit.  SIGHUP:
 * re-read the config; idle workers are replaced so new connections get
 * the new settings.
 */
#ifndef MBOXPOP3D_SERVER_H
#define MBOXPOP3D_SERVER_H

#include "config.h"

/* Runs the master until SIGTERM/SIGINT; returns the exit status.
 * config_path (may be NULL) is re-read on SIGHUP. */
int server_run(struct config *cfg, const char *config_path, int foreground);

/* inetd mode: one session on stdin/stdout. */
int server_inetd(const struct config *cfg);

struct addrinfo;

/* "ADDR:PORT" or "[V6ADDR]:PORT" (numeric) as getaddrinfo(3) gives it;
 * returns getaddrinfo's code (0, or EAI_* for gai_strerror). */
int server_resolve_listen(const char *spec, struct addrinfo **ai);

/* Binds every configured listen address; exits-worthy errors are logged.
 * Returns the number of sockets put in fds (0 on failure). */
size_t server_listen(const struct config *cfg, int *fds, size_t max);

#endif
