/* session.c - one POP3 connection: the dispatcher and the command handlers. */
#include <errno.h>
#include <malloc.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "auth.h"
#include "log.h"
#include "mailbox.h"
#include "netio.h"
#include "keeper.h"
#include "protocol.h"
#include "session.h"
#include "util.h"
#include "version.h"

/* What a handler tells the dispatcher; only the dispatcher writes the
 * status line (popa3d's POP_OK/POP_ERROR/... idea). */
enum reply {
    REPLY_OK,       /* "+OK text", then the body if one was set */
    REPLY_ERR,      /* "-ERR text", the session goes on */
    REPLY_FATAL,    /* "-ERR text", then the session ends, no UPDATE */
    REPLY_BYE,      /* "+OK text", then the session ends */
    REPLY_GONE,     /* nothing: this process no longer serves the client */
    REPLY_SENT,     /* already written (QUIT, at UPDATE's commit point); the
                       session ends */
};

struct session;
typedef int (*body_fn)(struct session *s);

struct session {
    const struct config *cfg;
    const struct session_env *env;
    struct netio io;
    enum pop_state state;
    const char *peer;
    char user[AUTH_MAX_USER + 1];
    int have_user;
    struct account acct;
    struct mailbox mb;
    int mailbox_open;
    int keeper_chan;
    char text[256];             /* the status line's text */
    body_fn body;               /* multi-line body after "+OK" */
    uint64_t body_arg;
    int64_t body_lines;
    /* for the session-end log line */
    unsigned retr_count, top_count, dele_count;
    uint64_t retr_bytes, dele_bytes;
    int64_t start_ms;
    const char *end_reason;
    int bye_sent;               /* QUIT's +OK went out at UPDATE's commit point */
};

static enum reply say(struct session *s, enum reply r, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void write_status(struct session *s, int ok);

static enum reply say(struct session *s, enum reply r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->text, sizeof s->text, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- maildrop helpers ---- */

static void maildrop_totals(const struct session *s, uint64_t *count, uint64_t *octets)
{
    *count = 0;
    *octets = 0;
    for (size_t i = 0; i < s->mb.idx.count; i++)
        if (!s->mb.idx.msgs[i].deleted) {
            (*count)++;
            *octets += s->mb.idx.msgs[i].size;
        }
}

/* Finds message n (1-based) that is not deleted; else sets the -ERR text. */
static struct msg *find_message(struct session *s, uint64_t n)
{
    if (n == 0 || n > s->mb.idx.count) {
        say(s, REPLY_ERR, "no such message, only %zu in maildrop", s->mb.idx.count);
        return NULL;
    }
    struct msg *m = &s->mb.idx.msgs[n - 1];
    if (m->deleted) {
        say(s, REPLY_ERR, "message %llu already deleted", (unsigned long long)n);
        return NULL;
    }
    return m;
}

static enum reply mailbox_failure(struct session *s, enum mb_status st)
{
    log_warn("user=%s peer=%s: %s", s->acct.name, s->peer, s->mb.why);
    switch (st) {
    case MB_IN_USE:
        return say(s, REPLY_FATAL, "[IN-USE] mailbox is locked by another program, try again later");
    case MB_PERM:
        return say(s, REPLY_FATAL, "[SYS/PERM] cannot use your mailbox, ask the administrator");
    case MB_CHANGED:
        return say(s, REPLY_FATAL, "[SYS/TEMP] mailbox was changed by another program; "
                                   "nothing deleted, please reconnect");
    case MB_TEMP:
    case MB_DEFERRED:
    case MB_OK:
        break;
    }
    return say(s, REPLY_FATAL, "[SYS/TEMP] mailbox unavailable, try again later");
}

/* ---- bodies of multi-line replies ---- */

static int body_capa(struct session *s)
{
    if (s->cfg->login_delay)
        netio_printf(&s->io, "LOGIN-DELAY %u\r\n", s->cfg->login_delay);
    netio_printf(&s->io, "TOP\r\nUIDL\r\nUSER\r\nSASL PLAIN\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
                         "PIPELINING\r\n"
                         "IMPLEMENTATION mboxpop3d-%s\r\n.\r\n", MBOXPOP3D_VERSION);
    return 0;
}

static int body_list(struct session *s)
{
    for (size_t i = 0; i < s->mb.idx.count; i++)
        if (!s->mb.idx.msgs[i].deleted)
            netio_printf(&s->io, "%zu %llu\r\n", i + 1,
                         (unsigned long long)s->mb.idx.msgs[i].size);
    netio_write(&s->io, ".\r\n", 3);
    return 0;
}

static int body_uidl(struct session *s)
{
    char uid[UIDL_TEXT_MAX];
    for (size_t i = 0; i < s->mb.idx.count; i++) {
        const struct msg *m = &s->mb.idx.msgs[i];
        if (m->deleted)
            continue;
        mbox_uidl_text(&s->mb.idx, i, uid);
        netio_printf(&s->io, "%zu %s\r\n", i + 1, uid);
    }
    netio_write(&s->io, ".\r\n", 3);
    return 0;
}

static int body_message(struct session *s)
{
    enum mb_status st = mailbox_send(&s->mb, (size_t)s->body_arg, s->body_lines, &s->io);
    if (st != MB_OK) {
        /* The reply is half sent: the only honest end is to hang up. */
        log_warn("user=%s peer=%s: %s", s->acct.name, s->peer, s->mb.why);
        return -1;
    }
    return 0;
}

/* ---- AUTHORIZATION state ---- */

static enum reply cmd_user(struct session *s, const struct command_args *a)
{
    /* Any name is answered alike, so USER does not reveal who exists. */
    s->have_user = 1;
    size_t n = a->text_len < AUTH_MAX_USER ? a->text_len : AUTH_MAX_USER;
    if (a->text_len > AUTH_MAX_USER)
        n = 0;       /* too long: remembered as an invalid (empty) name */
    memcpy(s->user, a->text, n);
    s->user[n] = '\0';
    return say(s, REPLY_OK, "send PASS");
}

/* The session child's first act: the mailbox, and the answer to PASS. */
static enum reply open_maildrop(struct session *s)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", s->cfg->spool_dir, s->acct.name);
    if (n < 0 || (size_t)n >= sizeof path)
        return say(s, REPLY_FATAL, "[SYS/PERM] mailbox path too long");
    struct mailbox_opts o = {
        .lock_kinds = s->cfg->mbox_locks,
        .lock_timeout = s->cfg->lock_timeout,
        .dotlock_stale = s->cfg->dotlock_stale,
        .dotlock = keeper_dotlock,
        .journal = keeper_journal,
        .dotlock_ctx = &s->keeper_chan,
        .check_owner = 1,
        .owner = geteuid(),     /* the account (or the invoking user) */
        .scan_flags = s->cfg->uidl_source == UIDL_SOURCE_X_UIDL ? MBOX_SCAN_X_UIDL : 0,
    };
    s->mailbox_open = 1;
    enum mb_status st = mailbox_open(&s->mb, path, &o);
    if (st != MB_OK)
        return mailbox_failure(s, st);
    s->state = STATE_TRANSACTION;
    uint64_t count, octets;
    maildrop_totals(s, &count, &octets);
    log_info("login user=%s peer=%s messages=%llu octets=%llu", s->acct.name, s->peer,
             (unsigned long long)count, (unsigned long long)octets);
    return say(s, REPLY_OK, "%s's maildrop has %llu message%s (%llu octets)", s->acct.name,
               (unsigned long long)count, count == 1 ? "" : "s", (unsigned long long)octets);
}

/* Any login (PASS, AUTH PLAIN, APOP) ends here: the worker decides
 * (privsep.h) and the answer becomes the reply. */
static enum reply hand_over(struct session *s, enum login_mech mech, const char *user,
                            const char *secret)
{
    /* What was answered so far must reach the client before anyone else
     * writes to it; the bytes after the login travel with it. */
    netio_flush(&s->io);
    size_t npending;
    const char *pending = netio_pending(&s->io, &npending);
    int verdict = s->env->verify(s->env->verify_ctx, mech, user, secret, pending, npending);
    switch (verdict) {
    case VERDICT_OK:
        return REPLY_GONE;
    case VERDICT_DENIED:
        return say(s, REPLY_ERR, "[AUTH] invalid user name or password");
    case VERDICT_IN_USE:
        s->end_reason = "in-use";
        return say(s, REPLY_FATAL, "[IN-USE] your mailbox is open in another session");
    case VERDICT_LOGIN_DELAY:
        s->end_reason = "login-delay";
        return say(s, REPLY_FATAL, "[LOGIN-DELAY] wait %u seconds between logins",
                   s->cfg->login_delay);
    case VERDICT_DENIED_BYE:
        s->end_reason = "auth-failures";
        return say(s, REPLY_FATAL, "[AUTH] invalid user name or password; too many failures, "
                                   "closing");
    default:
        return say(s, REPLY_ERR, "[SYS/TEMP] cannot check passwords now, try again later");
    }
}

static enum reply cmd_pass(struct session *s, const struct command_args *a)
{
    if (!s->have_user)
        return say(s, REPLY_ERR, "USER first");
    s->have_user = 0;
    char password[AUTH_MAX_PASS + 1];
    size_t plen = a->text_len <= AUTH_MAX_PASS ? a->text_len : 0;
    memcpy(password, a->text, plen);
    password[plen] = '\0';
    secure_zero((char *)a->text, a->text_len);
    /* An over-long password is still a failed login, with its delay. */
    enum reply r = hand_over(s, MECH_PASSWORD, a->text_len > AUTH_MAX_PASS ? "" : s->user,
                             password);
    secure_zero(password, sizeof password);
    return r;
}

/*
 * AUTH PLAIN (RFC 5034, RFC 4616): the response is base64 of
 * "authzid NUL authcid NUL password"; the authorization identity must be
 * empty or the authentication identity (we do not let one user act as
 * another).  "*" cancels; "=" is an empty initial response.
 */
#define SASL_MAX_DECODED (AUTH_MAX_USER * 2 + AUTH_MAX_PASS + 2)

static enum reply sasl_plain(struct session *s, const char *b64, size_t len)
{
    if (len == 1 && b64[0] == '*')
        return say(s, REPLY_ERR, "authentication cancelled");
    unsigned char raw[SASL_MAX_DECODED + 1];
    size_t n = 0;
    if (!(len == 1 && b64[0] == '=') && base64_decode(b64, len, raw, SASL_MAX_DECODED, &n) != 0)
        return say(s, REPLY_ERR, "[AUTH] invalid base64 or response too long");
    raw[n] = '\0';
    const char *authzid = (const char *)raw;
    const char *nul1 = memchr(raw, '\0', n);
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', n - (size_t)(nul1 + 1 - authzid)) : NULL;
    enum reply r;
    if (nul1 == NULL || nul2 == NULL || memchr(nul2 + 1, '\0', n - (size_t)(nul2 + 1 - authzid)))
        r = say(s, REPLY_ERR, "[AUTH] malformed PLAIN response");
    else if (authzid[0] != '\0' && strcmp(authzid, nul1 + 1) != 0)
        r = say(s, REPLY_ERR, "[AUTH] authorization identity must be empty or your own");
    else if (strlen(nul1 + 1) > AUTH_MAX_USER || strlen(nul2 + 1) > AUTH_MAX_PASS)
        r = hand_over(s, MECH_PASSWORD, "", "");
    else
        r = hand_over(s, MECH_PASSWORD, nul1 + 1, nul2 + 1);
    secure_zero(raw, sizeof raw);
    return r;
}

static enum reply cmd_auth(struct session *s, const struct command_args *a)
{
    s->have_user = 0;
    if (a->text_len != 5 || strncasecmp(a->text, "PLAIN", 5) != 0)
        return say(s, REPLY_ERR, "unsupported authentication mechanism (try PLAIN)");
    if (a->text2 != NULL) {
        enum reply r = sasl_plain(s, a->text2, a->text2_len);
        secure_zero((char *)a->text2, a->text2_len);
        return r;
    }
    /* No initial response: ask for it (RFC 5034 section 4). */
    netio_write(&s->io, "+ \r\n", 4);
    netio_flush(&s->io);
    char line[NETIO_MAX_SASL_LINE + 1];
    size_t len;
    enum netio_status st = netio_read_line_max(&s->io, line, sizeof line, &len,
                                               NETIO_MAX_SASL_LINE);
    if (st == NETIO_TOO_LONG)
        return say(s, REPLY_ERR, "[AUTH] response too long");
    if (st != NETIO_OK) {
        s->end_reason = st == NETIO_TIMEOUT ? "timeout" : "disconnect";
        return say(s, REPLY_FATAL, "authentication aborted");
    }
    enum reply r = sasl_plain(s, line, len);
    secure_zero(line, sizeof line);
    return r;
}

/* APOP name digest: MD5 of the greeting's timestamp and a shared secret. */
static enum reply cmd_apop(struct session *s, const struct command_args *a)
{
    s->have_user = 0;
    if (s->env->apop_timestamp == NULL)
        return say(s, REPLY_ERR, "APOP is not enabled here");
    char user[AUTH_MAX_USER + 1] = "", digest[33];
    if (a->text_len <= AUTH_MAX_USER) {
        memcpy(user, a->text, a->text_len);
        user[a->text_len] = '\0';
    }
    if (a->text2_len != 32)
        return hand_over(s, MECH_APOP, user, "");
    memcpy(digest, a->text2, 32);
    digest[32] = '\0';
    return hand_over(s, MECH_APOP, user, digest);
}

/* ---- both states ---- */

static enum reply say_bye(struct session *s)
{
    return say(s, REPLY_BYE, "mboxpop3d signing off (%u message%s deleted)", s->dele_count,
               s->dele_count == 1 ? "" : "s");
}

/* UPDATE's commit point (update.h): the deletions are certain now, so the
 * client hears +OK and sees the connection close while the spool is
 * truncated, which for a big spool takes the kernel a while. */
static void quit_committed(void *arg)
{
    struct session *s = arg;
    say_bye(s);
    write_status(s, 1);
    if (netio_flush(&s->io) == 0)
        (void)shutdown(s->io.wfd, SHUT_WR);
    s->bye_sent = 1;
}

static enum reply cmd_quit(struct session *s, const struct command_args *a)
{
    (void)a;
    s->end_reason = "quit";
    if (s->state == STATE_AUTHORIZATION)
        return say(s, REPLY_BYE, "mboxpop3d signing off");
    /* RFC 1939 section 6: UPDATE happens only here. */
    s->mb.on_commit = quit_committed;
    s->mb.on_commit_arg = s;
    enum mb_status st = mailbox_update(&s->mb);
    if (s->bye_sent) {
        if (st != MB_OK)
            log_err("user=%s peer=%s: UPDATE committed, finishing it failed; its journal "
                    "completes it at the next login: %s", s->acct.name, s->peer, s->mb.why);
        return REPLY_SENT;
    }
    if (st == MB_DEFERRED) {
        s->end_reason = "update-deferred";
        log_err("user=%s peer=%s: UPDATE interrupted, its journal completes it at the next "
                "login: %s", s->acct.name, s->peer, s->mb.why);
        return say(s, REPLY_FATAL, "[SYS/TEMP] update interrupted by a server error; it will "
                                   "be completed at your next login");
    }
    if (st != MB_OK) {
        s->end_reason = "update-failed";
        log_err("user=%s peer=%s: UPDATE failed, nothing deleted: %s", s->acct.name, s->peer,
                s->mb.why);
        for (size_t i = 0; i < s->mb.idx.count; i++)
            s->mb.idx.msgs[i].deleted = 0;     /* the log's left= tells the truth */
        s->dele_count = 0;
        s->dele_bytes = 0;
        if (st == MB_CHANGED)
            return say(s, REPLY_FATAL, "[SYS/TEMP] mailbox was changed by another program; "
                                       "nothing deleted");
        return say(s, REPLY_FATAL, "[SYS/TEMP] could not update mailbox; nothing deleted");
    }
    return say_bye(s);
}

static enum reply cmd_capa(struct session *s, const struct command_args *a)
{
    (void)a;
    s->body = body_capa;
    return say(s, REPLY_OK, "Capability list follows");
}

/* ---- TRANSACTION state ---- */

static enum reply cmd_stat(struct session *s, const struct command_args *a)
{
    (void)a;
    uint64_t count, octets;
    maildrop_totals(s, &count, &octets);
    return say(s, REPLY_OK, "%llu %llu", (unsigned long long)count, (unsigned long long)octets);
}

static enum reply cmd_list(struct session *s, const struct command_args *a)
{
    if (a->count == 1) {
        const struct msg *m = find_message(s, a->number[0]);
        if (m == NULL)
            return REPLY_ERR;
        return say(s, REPLY_OK, "%llu %llu", (unsigned long long)a->number[0],
                   (unsigned long long)m->size);
    }
    uint64_t count, octets;
    maildrop_totals(s, &count, &octets);
    s->body = body_list;
    return say(s, REPLY_OK, "%llu message%s (%llu octets)", (unsigned long long)count,
               count == 1 ? "" : "s", (unsigned long long)octets);
}

static enum reply cmd_uidl(struct session *s, const struct command_args *a)
{
    if (a->count == 1) {
        const struct msg *m = find_message(s, a->number[0]);
        if (m == NULL)
            return REPLY_ERR;
        char uid[UIDL_TEXT_MAX];
        mbox_uidl_text(&s->mb.idx, (size_t)(a->number[0] - 1), uid);
        return say(s, REPLY_OK, "%llu %s", (unsigned long long)a->number[0], uid);
    }
    s->body = body_uidl;
    return say(s, REPLY_OK, "unique-id listing follows");
}

/* RETR and TOP: the file must still be what we indexed (mailbox.h). */
static enum reply send_message(struct session *s, uint64_t n, int64_t lines)
{
    struct msg *m = find_message(s, n);
    if (m == NULL)
        return REPLY_ERR;
    enum mb_status st = mailbox_verify(&s->mb);
    if (st != MB_OK)
        return mailbox_failure(s, st);
    s->body = body_message;
    s->body_arg = n - 1;
    s->body_lines = lines;
    if (lines < 0) {
        s->retr_count++;
        s->retr_bytes += m->size;
        return say(s, REPLY_OK, "%llu octets", (unsigned long long)m->size);
    }
    s->top_count++;
    return say(s, REPLY_OK, "top of message follows");
}

static enum reply cmd_retr(struct session *s, const struct command_args *a)
{
    return send_message(s, a->number[0], -1);
}

static enum reply cmd_top(struct session *s, const struct command_args *a)
{
    return send_message(s, a->number[0], (int64_t)a->number[1]);
}

static enum reply cmd_dele(struct session *s, const struct command_args *a)
{
    struct msg *m = find_message(s, a->number[0]);
    if (m == NULL)
        return REPLY_ERR;
    m->deleted = 1;
    s->dele_count++;
    s->dele_bytes += m->size;
    return say(s, REPLY_OK, "message %llu deleted", (unsigned long long)a->number[0]);
}

static enum reply cmd_noop(struct session *s, const struct command_args *a)
{
    (void)a;
    return say(s, REPLY_OK, "%s", "");
}

static enum reply cmd_rset(struct session *s, const struct command_args *a)
{
    (void)a;
    for (size_t i = 0; i < s->mb.idx.count; i++)
        s->mb.idx.msgs[i].deleted = 0;
    s->dele_count = 0;
    s->dele_bytes = 0;
    uint64_t count, octets;
    maildrop_totals(s, &count, &octets);
    return say(s, REPLY_OK, "maildrop has %llu message%s (%llu octets)",
               (unsigned long long)count, count == 1 ? "" : "s", (unsigned long long)octets);
}

typedef enum reply (*handler_fn)(struct session *, const struct command_args *);

static const handler_fn handlers[] = {
    [CMD_USER] = cmd_user, [CMD_PASS] = cmd_pass, [CMD_QUIT] = cmd_quit,
    [CMD_CAPA] = cmd_capa, [CMD_STAT] = cmd_stat, [CMD_LIST] = cmd_list,
    [CMD_RETR] = cmd_retr, [CMD_DELE] = cmd_dele, [CMD_NOOP] = cmd_noop,
    [CMD_RSET] = cmd_rset, [CMD_TOP] = cmd_top,   [CMD_UIDL] = cmd_uidl,
    [CMD_AUTH] = cmd_auth, [CMD_APOP] = cmd_apop,
};

/* ---- the dispatcher ---- */

static void write_status(struct session *s, int ok)
{
    netio_printf(&s->io, "%s%s%s\r\n", ok ? "+OK" : "-ERR", s->text[0] ? " " : "", s->text);
}

/* Handles one line; returns 0 to go on, -1 when the session is over. */
static int dispatch(struct session *s, char *line, size_t len)
{
    const struct command *cmd;
    struct command_args args;
    enum parse_result pr = command_parse(line, len, s->state, &cmd, &args);
    /* Never log a secret, however the line is spelled. */
    if (log_debug_enabled()) {
        int secret = len >= 4 && (strncasecmp(line, "PASS", 4) == 0 ||
                                  strncasecmp(line, "AUTH", 4) == 0 ||
                                  strncasecmp(line, "APOP", 4) == 0);
        log_debug("peer=%s C: %.*s", s->peer, secret ? 4 : (int)(len < 80 ? len : 80), line);
    }
    s->text[0] = '\0';
    s->body = NULL;
    if (pr != PARSE_OK) {
        if (cmd && cmd->id == CMD_PASS)
            secure_zero(line, len);
        say(s, REPLY_ERR, "%s", parse_result_text(pr));
        write_status(s, 0);
        return 0;
    }
    enum reply r = handlers[cmd->id](s, &args);
    if (cmd->id == CMD_PASS || cmd->id == CMD_AUTH || cmd->id == CMD_APOP)
        secure_zero(line, len);
    switch (r) {
    case REPLY_OK:
        write_status(s, 1);
        if (s->body && s->body(s) != 0) {
            s->end_reason = "error";
            return -1;
        }
        return 0;
    case REPLY_ERR:
        write_status(s, 0);
        return 0;
    case REPLY_FATAL:
        write_status(s, 0);
        if (s->end_reason == NULL)
            s->end_reason = "error";
        return -1;
    case REPLY_BYE:
        write_status(s, 1);
        return -1;
    case REPLY_GONE:
        s->end_reason = NULL;
        return -1;
    case REPLY_SENT:
        return -1;
    }
    return -1;
}

/* Reads and dispatches lines until the session ends. */
static void command_loop(struct session *s)
{
    char line[NETIO_MAX_LINE + 1];
    for (;;) {
        if (!netio_line_pending(&s->io) && netio_flush(&s->io) != 0) {
            s->end_reason = "disconnect";
            return;
        }
        size_t len;
        enum netio_status st = netio_read_line(&s->io, line, sizeof line, &len);
        switch (st) {
        case NETIO_OK:
            if (dispatch(s, line, len) != 0)
                return;
            continue;
        case NETIO_TOO_LONG:
            netio_printf(&s->io, "-ERR line too long\r\n");
            continue;
        case NETIO_TIMEOUT:
            netio_printf(&s->io, "-ERR autologout: idle for too long\r\n");
            s->end_reason = "timeout";
            return;
        case NETIO_INTERRUPTED:
            if (s->env->shed_flag && *s->env->shed_flag) {
                netio_printf(&s->io, "-ERR [SYS/TEMP] server busy: closing connections "
                                     "that have not logged in\r\n");
                s->end_reason = "shed";
            } else {
                netio_printf(&s->io, "-ERR [SYS/TEMP] server shutting down, nothing "
                                     "deleted\r\n");
                s->end_reason = "shutdown";
            }
            return;
        case NETIO_EXPIRED:
            netio_printf(&s->io, "-ERR [SYS/TEMP] session time limit reached, nothing "
                                 "deleted\r\n");
            s->end_reason = "session-time";
            return;
        case NETIO_EOF:
        case NETIO_ERROR:
            s->end_reason = "disconnect";
            return;
        }
    }
}

static void log_session_end(const struct session *s)
{
    uint64_t count = 0, octets = 0;
    if (s->mailbox_open)
        maildrop_totals(s, &count, &octets);
    int64_t ms = now_ms() - s->start_ms;
    log_info("session end user=%s peer=%s retr=%u retr_bytes=%llu top=%u dele=%u "
             "dele_bytes=%llu left=%llu sent=%llu duration=%lld.%03llds reason=%s",
             s->acct.name[0] ? s->acct.name : "-", s->peer, s->retr_count,
             (unsigned long long)s->retr_bytes, s->top_count, s->dele_count,
             (unsigned long long)s->dele_bytes, (unsigned long long)count,
             (unsigned long long)s->io.bytes_out, (long long)(ms / 1000),
             (long long)(ms % 1000), s->end_reason);
}

static int session_init(struct session *s, const struct config *cfg, int rfd, int wfd,
                        const struct session_env *env)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->env = env;
    s->peer = env->peer;
    s->state = STATE_AUTHORIZATION;
    s->keeper_chan = env->keeper_fd;
    s->start_ms = env->start_ms ? env->start_ms : now_ms();
    if (netio_init(&s->io, rfd, wfd, cfg->idle_timeout) != 0)
        return -1;
    s->io.stop_flag = env->stop_flag;
    if (cfg->max_session_time)
        s->io.expires_ms = s->start_ms + (int64_t)cfg->max_session_time * 1000;
    return 0;
}

static void session_end(struct session *s)
{
    if (s->end_reason != NULL) {     /* NULL: handed over to the session child */
        netio_flush(&s->io);
        log_session_end(s);
    }
    if (s->mailbox_open)
        mailbox_close(&s->mb);
    netio_free(&s->io);
}

void session_preauth(const struct config *cfg, int rfd, int wfd, const struct session_env *env)
{
    struct session s;
    if (session_init(&s, cfg, rfd, wfd, env) != 0)
        return;
    if (env->apop_timestamp)
        netio_printf(&s.io, "+OK mboxpop3d ready %s\r\n", env->apop_timestamp);
    else
        netio_printf(&s.io, "+OK mboxpop3d ready\r\n");
    command_loop(&s);
    session_end(&s);
}

void session_transaction(const struct config *cfg, int rfd, int wfd, const struct account *acct,
                         const char *pipelined, size_t npipelined,
                         const struct session_env *env)
{
    struct session s;
    if (session_init(&s, cfg, rfd, wfd, env) != 0)
        return;
    s.acct = *acct;
    if (netio_preload(&s.io, pipelined, npipelined) != 0) {
        log_err("user=%s peer=%s: pipelined input too long", acct->name, s.peer);
        s.end_reason = "error";
    } else {
        s.text[0] = '\0';
        enum reply r = open_maildrop(&s);
        (void)malloc_trim(0);       /* the scan's scratch: idle sessions stay small */
        write_status(&s, r == REPLY_OK);
        if (r == REPLY_OK)
            command_loop(&s);
        else if (s.end_reason == NULL)
            s.end_reason = "error";
    }
    session_end(&s);
}
