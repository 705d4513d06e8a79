/* log.c - syslog (facility mail) or stderr; see log.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int use_stderr = 1;
static int debug_on;
static int syslog_open;

void log_init(int to_stderr, int debug)
{
    use_stderr = to_stderr;
    debug_on = debug;
    if (!use_stderr && !syslog_open) {
        openlog("mboxpop3d", LOG_PID | LOG_NDELAY, LOG_MAIL);
        syslog_open = 1;
    }
}

int log_debug_enabled(void)
{
    return debug_on;
}

static void log_vmsg(int priority, const char *fmt, va_list ap, const char *suffix)
{
    if (priority == LOG_DEBUG && !debug_on)
        return;
    char text[1024];
    vsnprintf(text, sizeof text, fmt, ap);
    if (!use_stderr) {
        if (suffix)
            syslog(priority, "%s: %s", text, suffix);
        else
            syslog(priority, "%s", text);
        return;
    }
    /* One fprintf per line so lines from several processes don't mix. */
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL || strftime(stamp, sizeof stamp, "%H:%M:%S", &tm) == 0)
        stamp[0] = '\0';
    fprintf(stderr, "%s mboxpop3d[%ld]: %s%s%s\n", stamp, (long)getpid(), text,
            suffix ? ": " : "", suffix ? suffix : "");
}

void log_msg(int priority, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(priority, fmt, ap, NULL);
    va_end(ap);
    errno = saved;
}

int log_errno(const char *fmt, ...)
{
    int saved = errno;
    char err[128];
    const char *text = strerror_r(saved, err, sizeof err);
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_ERR, fmt, ap, text);
    va_end(ap);
    errno = saved;
    return -1;
}
