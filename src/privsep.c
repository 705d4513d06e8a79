/* privsep.c - the worker and its children, one set per connection, and the
 * start of the keeper; see privsep.h for who does what and why. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <shadow.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keeper.h"
#include "log.h"
#include "netio.h"
#include "privsep.h"
#include "proctitle.h"
#include "util.h"


/* ---- start-up ---- */

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[4096];
    if (strlcpy_checked(buf, path, sizeof buf) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    return mkdir(buf, mode) != 0 && errno != EEXIST ? -1 : 0;
}

/*
 * Loads every NSS module the per-login children will use, once, in the
 * master: a module that glibc dlopen()s in each forked child (Debian's
 * "group: files systemd" loads libnss_systemd, libcap and libm for every
 * getgrouplist) costs milliseconds per login.  Lookups of a name that
 * cannot exist walk every source of the passwd and shadow maps.
 */
static void warm_nss(const struct passwd *preauth)
{
    gid_t groups[64];
    int n = (int)(sizeof groups / sizeof groups[0]);
    char name[64];
    snprintf(name, sizeof name, "%s", preauth->pw_name);
    (void)getgrouplist(name, preauth->pw_gid, groups, &n);
    (void)getpwnam("mboxpop3d nss warm-up");
    (void)getspnam("mboxpop3d nss warm-up");
    endpwent();
    endspent();
    endgrent();
}

/* The pre-auth chroot: a root-owned directory nobody else can write,
 * with nothing in it. */
static int check_empty_dir(const char *dir, int check_only, char *err, size_t errlen)
{
    struct stat st;
    if (check_only && lstat(dir, &st) != 0 && errno == ENOENT)
        return 0;                       /* made at start-up */
    if (!check_only && mkdir_p(dir, 0755) != 0) {
        snprintf(err, errlen, "cannot create empty_dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(err, errlen, "empty_dir %s must be a directory owned by root and writable by "
                              "no one else (chown root: %s; chmod 755 %s)", dir, dir, dir);
        return -1;
    }
    DIR *d = opendir(dir);
    int entries = 0;
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    if (d == NULL || entries > 0) {
        snprintf(err, errlen, "empty_dir %s must be empty: it is the pre-auth chroot", dir);
        return -1;
    }
    return 0;
}

int privsep_prepare(const struct config *cfg, struct privsep_ids *ids, int check_only, char *err,
                    size_t errlen)
{
    memset(ids, 0, sizeof *ids);
    ids->privileged = geteuid() == 0;
    struct stat st = { 0 };
    if (stat(cfg->spool_dir, &st) == 0)
        ids->spool_gid = st.st_gid;
    if (!ids->privileged)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(cfg->preauth_user);
    if (pw == NULL) {
        snprintf(err, errlen, "preauth_user %s does not exist; create it with: useradd --system "
                              "--no-create-home --home-dir /nonexistent --shell "
                              "/usr/sbin/nologin %s", cfg->preauth_user, cfg->preauth_user);
        return -1;
    }
    if (pw->pw_uid == 0) {
        snprintf(err, errlen, "preauth_user %s must not be root", cfg->preauth_user);
        return -1;
    }
    ids->preauth_uid = pw->pw_uid;
    ids->preauth_gid = pw->pw_gid;
    warm_nss(pw);
    if (check_empty_dir(cfg->empty_dir, check_only, err, errlen) != 0)
        return -1;
    /* The keeper makes dotlocks with the spool directory's group when
     * that group (not root's) may write it; in a world-writable (sticky)
     * directory it needs no group of its own. */
    int group_ok = ids->spool_gid != 0 && (st.st_mode & S_IWGRP);
    if (!group_ok)
        ids->spool_gid = ids->preauth_gid;
    /* Without it every dotlock and UPDATE journal would fail: say so now,
     * at start-up and for -t alike. */
    if (!group_ok && !(st.st_mode & S_IWOTH)) {
        snprintf(err, errlen, "spool_dir %s is not writable by a group other than root, so the "
                              "keeper cannot make dotlocks and journals there (Debian: chown "
                              "root:mail %s; chmod 2775 %s)", cfg->spool_dir, cfg->spool_dir,
                 cfg->spool_dir);
        return -1;
    }
    return 0;
}

/* ---- becoming someone else ---- */

/* No new privileges, no core dumps: these processes held a password or
 * talk to a stranger. */
static void harden(void)
{
    struct rlimit none = { 0, 0 };
    (void)setrlimit(RLIMIT_CORE, &none);
    (void)prctl(PR_SET_DUMPABLE, 0);
    (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static int become(uid_t uid, gid_t gid, const gid_t *groups, size_t ngroups, const char *who)
{
    if (setgroups(ngroups, groups) != 0)
        return log_errno("setgroups for %s", who);
    if (setgid(gid) != 0)
        return log_errno("setgid(%u) for %s", (unsigned)gid, who);
    if (setuid(uid) != 0)
        return log_errno("setuid(%u) for %s", (unsigned)uid, who);
    /* Root must be gone for good. */
    if (uid != 0 && (setuid(0) == 0 || geteuid() != uid || getegid() != gid)) {
        log_err("privilege drop to %s did not stick", who);
        return -1;
    }
    return 0;
}

int privsep_drop(const struct account *acct, gid_t spool_gid)
{
    gid_t groups[256];
    int n = 1;
    groups[0] = acct->gid;
    if (acct->system) {
        n = (int)(sizeof groups / sizeof groups[0]);
        if (getgrouplist(acct->name, acct->gid, groups, &n) < 0)
            return log_errno("getgrouplist(%s): more than %zu groups", acct->name,
                             sizeof groups / sizeof groups[0]);
    }
    /* Never the spool directory's group: with it a session could read
     * every 660 user:mail spool.  Its dotlocks come from the keeper. */
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (groups[i] != spool_gid || spool_gid == acct->gid)
            groups[kept++] = groups[i];
    return become(acct->uid, acct->gid, groups, (size_t)kept, acct->name);
}

static void enter_preauth_sandbox(const struct config *cfg, const struct privsep_ids *ids)
{
    if (ids->privileged) {
        if (chroot(cfg->empty_dir) != 0 || chdir("/") != 0) {
            log_errno("pre-auth: chroot %s", cfg->empty_dir);
            _exit(1);
        }
        if (become(ids->preauth_uid, ids->preauth_gid, &ids->preauth_gid, 1, cfg->preauth_user) != 0)
            _exit(1);
    }
    harden();
}

/* The keeper keeps only what dotlocks need: preauth_user's uid and the
 * spool directory's group. */
static int drop_keeper(const struct config *cfg, const struct privsep_ids *ids)
{
    if (!ids->privileged)
        return 0;
    return become(ids->preauth_uid, ids->spool_gid, &ids->spool_gid, 1, cfg->preauth_user);
}

pid_t privsep_start_keeper(const struct config *cfg, const struct privsep_ids *ids,
                           const int *close_fds, size_t nclose, int *bind_fd)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        log_errno("socketpair (keeper)");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("fork (keeper)");
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[1]);
        for (size_t i = 0; i < nclose; i++) {
            int fd = close_fds[i];
            if (fd > 2) {
                close(fd);
            } else if (fd >= 0) {       /* inetd's client socket: keep 0-2 taken */
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null < 0 || dup2(null, fd) < 0)
                    _exit(log_errno("keeper: /dev/null") ? 1 : 1);
                close(null);
            }
        }
        /* It stops when its work is done (keeper.h), never halfway
         * through a session's UPDATE. */
        static const int ignored[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE };
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
            signal(ignored[i], SIG_IGN);
        signal(SIGCHLD, SIG_DFL);
        if (setpgid(0, 0) != 0)
            log_errno("keeper: setpgid");
        /* It holds a descriptor per session: as many as the hard limit
         * allows, not the soft one (1024 under systemd). */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
            nofile.rlim_cur = nofile.rlim_max;
            (void)setrlimit(RLIMIT_NOFILE, &nofile);
        }
        proctitle_set("keeper");
        if (drop_keeper(cfg, ids) != 0)
            _exit(1);
        harden();
        (void)malloc_trim(0);
        keeper_serve(sv[0]);
        _exit(0);
    }
    close(sv[0]);
    *bind_fd = sv[1];
    return pid;
}

/* ---- the login, between pre-auth child and worker ---- */

/*
 * One SOCK_SEQPACKET message: user length (1 byte), password length and
 * pipelined length (2 bytes each), the mechanism (1 byte, enum
 * login_mech: the "password" is an APOP digest for MECH_APOP), then the
 * three strings.  Answer: one
 * byte, an enum verdict.
 */
#define CRED_MAX (6 + AUTH_MAX_USER + AUTH_MAX_PASS + NETIO_IN_BUF)

static int preauth_verify(void *ctx, enum login_mech mech, const char *user,
                          const char *password, const char *pipelined, size_t npipelined)
{
    int chan = *(int *)ctx;
    size_t ulen = strlen(user), plen = strlen(password);
    if (ulen > AUTH_MAX_USER || plen > AUTH_MAX_PASS || npipelined > NETIO_IN_BUF)
        return VERDICT_DENIED;
    char msg[CRED_MAX];
    msg[0] = (char)ulen;
    msg[1] = (char)(plen >> 8);
    msg[2] = (char)plen;
    msg[3] = (char)(npipelined >> 8);
    msg[4] = (char)npipelined;
    msg[5] = (char)mech;
    memcpy(msg + 6, user, ulen);
    memcpy(msg + 6 + ulen, password, plen);
    memcpy(msg + 6 + ulen + plen, pipelined, npipelined);
    size_t len = 6 + ulen + plen + npipelined;
    ssize_t sent = send(chan, msg, len, MSG_NOSIGNAL);
    secure_zero(msg, sizeof msg);
    if (sent != (ssize_t)len)
        return -1;
    char verdict;
    ssize_t n;
    while ((n = recv(chan, &verdict, 1, 0)) < 0 && errno == EINTR)
        ;
    return n == 1 ? (unsigned char)verdict : -1;
}

struct login {
    enum login_mech mech;
    char user[AUTH_MAX_USER + 1];
    char password[AUTH_MAX_PASS + 1];
    char pipelined[NETIO_IN_BUF];
    size_t npipelined;
};

/* Waits for the pre-auth child's next login; 0, or -1 when it is gone. */
static int receive_login(int chan, struct login *l)
{
    char msg[CRED_MAX];
    ssize_t n;
    while ((n = recv(chan, msg, sizeof msg, 0)) < 0 && errno == EINTR)
        ;
    int rc = -1;
    if (n >= 6) {
        size_t ulen = (unsigned char)msg[0];
        size_t plen = (size_t)(unsigned char)msg[1] << 8 | (unsigned char)msg[2];
        size_t qlen = (size_t)(unsigned char)msg[3] << 8 | (unsigned char)msg[4];
        l->mech = msg[5] == MECH_APOP ? MECH_APOP : MECH_PASSWORD;
        if (ulen <= AUTH_MAX_USER && plen <= AUTH_MAX_PASS && qlen <= NETIO_IN_BUF &&
            (size_t)n == 6 + ulen + plen + qlen) {
            memcpy(l->user, msg + 6, ulen);
            l->user[ulen] = '\0';
            memcpy(l->password, msg + 6 + ulen, plen);
            l->password[plen] = '\0';
            memcpy(l->pipelined, msg + 6 + ulen + plen, qlen);
            l->npipelined = qlen;
            rc = 0;
        }
    }
    secure_zero(msg, sizeof msg);
    return rc;
}

/* The password check, in a child of its own: the shadow hash it reads
 * dies with it.  Returns an auth_result; why says what to log. */
struct auth_answer {
    int result;
    struct account acct;
    char why[160];
};

static int check_password(const struct config *cfg, const struct login *l,
                          const char *apop_timestamp, struct account *acct, char *why,
                          size_t whylen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return AUTH_ERROR;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, whylen, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return AUTH_ERROR;
    }
    if (pid == 0) {
        close(p[0]);
        harden();
        proctitle_set("password check");
        struct auth_answer a;
        memset(&a, 0, sizeof a);
        if (l->mech == MECH_APOP)
            a.result = apop_timestamp ? auth_apop(cfg, l->user, l->password, apop_timestamp,
                                                  &a.acct, a.why, sizeof a.why)
                                      : AUTH_DENIED;
        else
            a.result = auth_login(cfg, l->user, l->password, &a.acct, a.why, sizeof a.why);
        _exit(write_all(p[1], &a, sizeof a) == 0 ? 0 : 1);
    }
    close(p[1]);
    struct auth_answer a;
    size_t got = 0;
    while (got < sizeof a) {
        ssize_t n = read(p[0], (char *)&a + got, sizeof a - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof a) {
        snprintf(why, whylen, "the password check died");
        return AUTH_ERROR;
    }
    a.why[sizeof a.why - 1] = '\0';
    strlcpy_checked(why, a.why, whylen);
    if (a.result == AUTH_OK)
        *acct = a.acct;
    return a.result;
}

/* A client-supplied name as the log may show it: anything but the
 * characters of a valid user name becomes '?', so a name cannot forge a
 * log line (AUTH PLAIN lets a client send spaces and line ends). */
static const char *loggable(const char *name, char *out, size_t size)
{
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
        out[i] = ok ? c : '?';
    }
    out[i] = '\0';
    return i ? out : "-";
}

/* The claim on the mailbox (the master's [IN-USE] table): an enum verdict. */
static int claim(const struct config *cfg, const struct connection *conn,
                 const struct account *acct)
{
    if (conn->claim == NULL)
        return VERDICT_OK;
    int claimed = conn->claim(conn->claim_ctx, acct->name);
    if (claimed == 1) {
        log_warn("user=%s peer=%s: refused, another session has the mailbox", acct->name,
                 conn->peer);
        return VERDICT_IN_USE;
    }
    if (claimed == 2) {
        log_info("user=%s peer=%s: refused, login_delay (%u s) not over", acct->name,
                 conn->peer, cfg->login_delay);
        return VERDICT_LOGIN_DELAY;
    }
    return claimed == 0 ? VERDICT_OK : VERDICT_TEMP;
}

/* Decides a login: password, the session's channel to the keeper, then
 * the claim on the mailbox.  On VERDICT_OK *chan is that channel. */
static int decide(const struct config *cfg, const struct connection *conn, struct login *l,
                  const char *apop_timestamp, struct account *acct, int *chan)
{
    char why[160] = "";
    int r = check_password(cfg, l, apop_timestamp, acct, why, sizeof why);
    secure_zero(l->password, sizeof l->password);
    if (r == AUTH_ERROR) {
        char shown[AUTH_MAX_USER + 1];
        log_err("login error user=%s peer=%s: %s", loggable(l->user, shown, sizeof shown),
                conn->peer, why);
        return VERDICT_TEMP;
    }
    if (r != AUTH_OK) {
        char shown[AUTH_MAX_USER + 1];
        log_warn("login failed user=%s peer=%s reason=\"%s\"",
                 loggable(l->user, shown, sizeof shown), conn->peer, why);
        return VERDICT_DENIED;
    }
    char spool[KEEPER_PATH_MAX + 1];
    if (snprintf(spool, sizeof spool, "%s/%s", cfg->spool_dir, acct->name) >= (int)sizeof spool) {
        log_err("user=%s: spool path too long", acct->name);
        return VERDICT_TEMP;
    }
    *chan = keeper_bind(conn->keeper_fd, spool, cfg->dotlock_stale);
    if (*chan < 0) {
        log_errno("user=%s peer=%s: no channel to the keeper", acct->name, conn->peer);
        return VERDICT_TEMP;
    }
    int verdict = claim(cfg, conn, acct);
    if (verdict != VERDICT_OK) {
        close(*chan);
        *chan = -1;
    }
    return verdict;
}

/* ---- the session ---- */

/* The worker becomes the session: it lets go of what a session must not
 * have, drops to the account, serves TRANSACTION and UPDATE, and exits.
 * Its claim on the mailbox ends with the process (the master reaps it). */
static void run_session(const struct config *cfg, const struct privsep_ids *ids,
                        const struct connection *conn, const struct account *acct,
                        const struct login *l, int chan)
{
    if (conn->master_fd >= 0)
        close(conn->master_fd);     /* claims and failure reports are for root */
    if (conn->keeper_fd >= 0)
        close(conn->keeper_fd);     /* so are binds */
    if (ids->privileged && privsep_drop(acct, ids->spool_gid) != 0)
        _exit(1);
    harden();
    signal(SIGUSR2, SIG_IGN);        /* shedding is for pre-auth connections */
    proctitle_set("session %s", acct->name);
    struct session_env env = { .peer = conn->peer, .stop_flag = conn->stop_flag,
                               .keeper_fd = chan, .start_ms = conn->start_ms };
    session_transaction(cfg, conn->rfd, conn->wfd, acct, l->pipelined, l->npipelined, &env);
    _exit(0);
}

/* A failed login costs the client time (auth_fail_delay, the pre-auth
 * child waits for the verdict), is counted for its address by the
 * master, and ends the connection at max_auth_failures. */
static int after_failure(const struct config *cfg, const struct connection *conn,
                         unsigned failures)
{
    if (conn->auth_failed)
        conn->auth_failed(conn->claim_ctx, conn->addr_key ? conn->addr_key : conn->peer);
    struct timespec ts = { .tv_sec = cfg->auth_fail_delay };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !(conn->stop_flag && *conn->stop_flag))
        ;
    return failures >= cfg->max_auth_failures ? VERDICT_DENIED_BYE : VERDICT_DENIED;
}

/* RFC 1939 section 7: the greeting's "<process-ID.clock@hostname>",
 * made here so the worker verifies against its own copy. */
static const char *make_apop_timestamp(const struct config *cfg, char *buf, size_t size)
{
    if (cfg->apop_secrets == NULL)
        return NULL;
    char host[128];
    if (gethostname(host, sizeof host) != 0)
        strlcpy_checked(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, size, "<%ld.%lld.%ld@%s>", (long)getpid(), (long long)ts.tv_sec,
             ts.tv_nsec / 1000, host);
    return buf;
}

void privsep_serve(const struct config *cfg, const struct privsep_ids *ids,
                   const struct connection *conn)
{
    char stamp[200];
    const char *apop_timestamp = make_apop_timestamp(cfg, stamp, sizeof stamp);
    int cred[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cred) != 0) {
        log_errno("socketpair (pre-auth)");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_errno("fork (pre-auth)");
        close(cred[0]);
        close(cred[1]);
        return;
    }
    if (pid == 0) {
        close(cred[0]);
        if (conn->master_fd >= 0)
            close(conn->master_fd);
        if (conn->keeper_fd >= 0)
            close(conn->keeper_fd);
        if (conn->preauth_setup)
            conn->preauth_setup();
        proctitle_set("pre-auth %s", conn->peer);
        enter_preauth_sandbox(cfg, ids);
        struct session_env env = { .peer = conn->peer, .stop_flag = conn->stop_flag,
                                   .shed_flag = conn->shed_flag, .verify = preauth_verify,
                                   .verify_ctx = &cred[1], .keeper_fd = -1,
                                   .apop_timestamp = apop_timestamp,
                                   .start_ms = conn->start_ms };
        session_preauth(cfg, conn->rfd, conn->wfd, &env);
        _exit(0);
    }
    close(cred[1]);
    struct login l;
    struct account acct;
    int verdict = -1, chan = -1;
    unsigned failures = 0;
    while (receive_login(cred[0], &l) == 0) {
        verdict = decide(cfg, conn, &l, apop_timestamp, &acct, &chan);
        if (verdict == VERDICT_DENIED)
            verdict = after_failure(cfg, conn, ++failures);
        char v = (char)verdict;
        if (send(cred[0], &v, 1, MSG_NOSIGNAL) != 1 || verdict == VERDICT_OK ||
            verdict == VERDICT_IN_USE || verdict == VERDICT_DENIED_BYE ||
            verdict == VERDICT_LOGIN_DELAY)
            break;
    }
    close(cred[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    if (verdict == VERDICT_OK)
        run_session(cfg, ids, conn, &acct, &l, chan);
    secure_zero(&l, sizeof l);
}
