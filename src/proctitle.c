/* proctitle.c - process titles (see proctitle.h): the classic technique of
 * writing over the argv strings, with the environment moved to the heap
 * to make room, plus prctl(PR_SET_NAME) for the short name top shows. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "proctitle.h"

extern char **environ;

static char *title_start;
static size_t title_size;
/* Our copy of the environment; kept here too so that strings unsetenv()
 * drops from environ are still ours (and not reported as leaks). */
char **proctitle_env_copy;   /* not static: a store never read would be dropped */

void proctitle_init(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL)
        return;
    /* The strings of argv and environ lie end to end; use all of them. */
    char *end = argv[0] + strlen(argv[0]) + 1;
    for (int i = 1; i < argc; i++)
        if (argv[i] == end)
            end = argv[i] + strlen(argv[i]) + 1;
    size_t n = 0;
    while (environ[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    if (copy == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
        copy[i] = strdup(environ[i]);
        if (copy[i] == NULL)
            return;          /* keep the old environment; titles stay short */
    }
    environ = copy;
    proctitle_env_copy = calloc(n + 1, sizeof *proctitle_env_copy);
    if (proctitle_env_copy)
        memcpy(proctitle_env_copy, copy, n * sizeof *copy);
    /* argv[1..] are about to be overwritten: the caller has parsed them. */
    title_start = argv[0];
    title_size = (size_t)(end - argv[0]);
}

void proctitle_set(const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    (void)prctl(PR_SET_NAME, text, 0, 0, 0);   /* 15 bytes shown by top */
    if (title_start == NULL || title_size < 2)
        return;
    memset(title_start, 0, title_size);
    snprintf(title_start, title_size, "mboxpop3d: %s", text);
}
