/*
 * service.h - what the service manager sees: systemd socket activation
 * (LISTEN_FDS/LISTEN_PID, sd_listen_fds(3)), readiness and state
 * notifications (NOTIFY_SOCKET, sd_notify(3)), and the pid file written
 * when the daemon detaches.  The protocols are implemented directly: the
 * daemon links libc and libcrypt only.
 */
#ifndef MBOXPOP3D_SERVICE_H
#define MBOXPOP3D_SERVICE_H

#include <stddef.h>

/* Sockets passed by systemd (fd 3 onwards), made non-blocking and
 * close-on-exec, and the variables removed; 0 if none were passed. */
size_t service_inherited_listeners(int *fds, size_t max);

/* Sends a state ("READY=1", "RELOADING=1", "STOPPING=1", ...) to
 * NOTIFY_SOCKET if set; silently nothing otherwise. */
void service_notify(const char *state);

/* Writes our pid to path (if not empty); removed by the second call. */
int service_write_pidfile(const char *path);
void service_remove_pidfile(const char *path);

#endif
