/*
 * proctitle.h - process titles, so that ps explains the design:
 * "mboxpop3d: master", "mboxpop3d: pre-auth 192.0.2.7",
 * "mboxpop3d: session alice", "mboxpop3d: keeper".
 *
 * proctitle_init() must run first in main(): it moves the environment out
 * of the way so the title can use the space argv and environ occupied.
 */
#ifndef MBOXPOP3D_PROCTITLE_H
#define MBOXPOP3D_PROCTITLE_H

#include "log.h"

void proctitle_init(int argc, char **argv);
void proctitle_set(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* The environment copy proctitle_init() made (see proctitle.c). */
extern char **proctitle_env_copy;

#endif
