/* libFuzzer target: the pre-auth state machine (greeting, CAPA, USER,
 * PASS, AUTH PLAIN with base64, APOP, QUIT), fed over a socketpair as an
 * unauthenticated client would; logins go to a stub that accepts user
 * "a" and refuses everyone else. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int verify_stub(void *ctx, enum login_mech mech, const char *user, const char *secret,
                       const char *pipelined, size_t npipelined)
{
    (void)ctx;
    (void)mech;
    (void)secret;
    if (npipelined > 4096 || strlen(user) > 64)
        abort();                 /* the limits the worker relies on */
    (void)pipelined;
    return strcmp(user, "a") == 0 ? VERDICT_OK : VERDICT_DENIED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    static int ready;
    if (!ready) {
        config_defaults(&cfg);
        cfg.idle_timeout = 1;
        ready = 1;
    }
    if (size > 4096)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 0;
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (write(sv[0], data, size) == (ssize_t)size) {
        shutdown(sv[0], SHUT_WR);
        struct session_env env = { .peer = "fuzz", .verify = verify_stub, .keeper_fd = -1,
                                   .apop_timestamp = size % 2 ? "<1.2@fuzz>" : NULL };
        session_preauth(&cfg, sv[1], sv[1], &env);
    }
    close(sv[0]);
    close(sv[1]);
    return 0;
}
