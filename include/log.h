/*
 * log.h - where the daemon's words go: syslog (facility mail) or stderr.
 *
 * Contract: log_init() once per process role (the ident may change after
 * fork, e.g. to tag a session).  Every function is safe to call before
 * log_init() (it then writes to stderr).  log_errno() appends the text of
 * the current errno and returns -1 so a failing syscall can be reported
 * and propagated in one expression:
 *
 *     if (setgid(gid) != 0) return log_errno("setgid(%u)", gid);
 */
#ifndef MBOXPOP3D_LOG_H
#define MBOXPOP3D_LOG_H

#include <syslog.h>

#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))

/* to_stderr: log to stderr instead of syslog; debug: also LOG_DEBUG lines */
void log_init(int to_stderr, int debug);
int log_debug_enabled(void);

void log_msg(int priority, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Logs at LOG_ERR with ": strerror(errno)" appended; returns -1. */
int log_errno(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
