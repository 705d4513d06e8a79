/* service.c - systemd socket activation and notification, the pid file. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "service.h"
#include "util.h"

#define SD_LISTEN_FDS_START 3

size_t service_inherited_listeners(int *fds, size_t max)
{
    const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
    uint64_t pid, n;
    if (pid_text == NULL || fds_text == NULL || parse_uint_str(pid_text, INT32_MAX, &pid) != 0 ||
        (pid_t)pid != getpid() || parse_uint_str(fds_text, max, &n) != 0)
        return 0;
    /* Ours alone: children must not think they were passed sockets. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    size_t kept = 0;
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + (int)n; fd++) {
        struct stat st;
        int type;
        socklen_t len = sizeof type;
        if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
            log_err("socket activation: fd %d is not a stream socket: ignored", fd);
            continue;
        }
        int flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            log_errno("socket activation: fd %d", fd);
            continue;
        }
        fds[kept++] = fd;
    }
    if (kept)
        log_info("socket activation: %zu listening socket%s from the service manager", kept,
                 kept == 1 ? "" : "s");
    return kept;
}

void service_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sun.sun_path) {
        log_warn("NOTIFY_SOCKET %.100s: not a socket path", path);
        return;
    }
    memcpy(sun.sun_path, path, n);
    if (sun.sun_path[0] == '@')
        sun.sun_path[0] = '\0';         /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_errno("NOTIFY_SOCKET: socket");
        return;
    }
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, len) < 0)
        log_errno("notifying the service manager (%s)", path);
    close(fd);
}

int service_write_pidfile(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return log_errno("pid_file %s", path);
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    int rc = write_all(fd, text, (size_t)n);
    if (close(fd) != 0 || rc != 0)
        return log_errno("writing pid_file %s", path);
    return 0;
}

void service_remove_pidfile(const char *path)
{
    if (path && path[0] && unlink(path) != 0 && errno != ENOENT)
        log_errno("removing pid_file %s", path);
}
