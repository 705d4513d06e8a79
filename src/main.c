/* main.c - command line, configuration, and the choice of standalone,
 * foreground or inetd operation. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <shadow.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "privsep.h"
#include "proctitle.h"
#include "server.h"
#include "util.h"
#include "version.h"

/* getopt's letters; usage() below, mboxpop3d(8) and README.md document
 * each one (tests/unit/test_docs.c checks). */
static const char option_letters[] = "fdc:l:itU:Vh";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: mboxpop3d [-fdit] [-c FILE] [-l ADDR:PORT]... | -U FILE\n"
            "  -f            stay in the foreground, log to stderr\n"
            "  -d            debug: log to stderr, with debug lines (implies -f)\n"
            "  -c FILE       configuration file (default %s)\n"
            "  -l ADDR:PORT  listen there instead of the configured addresses (repeatable)\n"
            "  -i            inetd mode: serve one session on stdin/stdout\n"
            "  -t            check the configuration, print the effective settings, exit\n"
            "  -U FILE       print the messages, sizes and UIDLs of an mbox file, exit\n"
            "  -V            print the version\n"
            "  -h            this help\n",
            CONFIG_DEFAULT_PATH);
}

/*
 * The checks of -t and of the start.  -t makes every one of them and
 * reports every problem it finds, each with its fix; the start makes the
 * basic ones (spool_dir, passwd_file, the pool sizes) and refuses if one
 * fails (the privilege checks of the start are privsep_prepare's).  Each
 * check only looks: nothing is created or changed.
 */
#define MAX_NOTES 40

struct report {
    int to_log;                 /* the start: logged; -t: printed */
    int to_stderr;              /* the start, detaching: on the terminal too */
    int problems;
    size_t n_notes;
    char notes[MAX_NOTES][400]; /* -t: printed as comments after the problems */
};

PRINTF_LIKE(2, 3) static void problem(struct report *r, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (r->to_stderr)
        fprintf(stderr, "mboxpop3d: problem: %s\n", text);
    if (r->to_log)
        log_err("problem: %s", text);
    else
        printf("problem: %s\n", text);
    r->problems++;
}

PRINTF_LIKE(2, 3) static void note(struct report *r, const char *fmt, ...)
{
    if (r->to_log || r->n_notes == MAX_NOTES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

static const char *group_name(gid_t gid, char *buf, size_t size)
{
    struct group *gr = getgrgid(gid);
    if (gr)
        snprintf(buf, size, "%s", gr->gr_name);
    else
        snprintf(buf, size, "%u", (unsigned)gid);
    return buf;
}

/* A file name from a directory, printable on one line. */
static const char *printable(const char *name, char *buf, size_t size)
{
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++)
        buf[i] = name[i] > ' ' && name[i] < 0x7f ? name[i] : '?';
    buf[i] = '\0';
    return buf;
}

/* It exists (the start refuses otherwise); as root, the keeper can make
 * dotlocks and journals in it (privsep_prepare's rule). */
static void check_spool_dir(const struct config *cfg, struct report *r, int privileged)
{
    const char *d = cfg->spool_dir;
    struct stat st;
    if (stat(d, &st) != 0) {
        problem(r, "spool_dir %s does not exist (%s); fix: create it where the delivery agent "
                   "writes the spools (Debian: install -d -o root -g mail -m 2775 %s), or set "
                   "spool_dir to that directory", d, strerror(errno), d);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        problem(r, "spool_dir %s is not a directory; fix: set spool_dir to the directory of "
                   "the mbox spools", d);
        return;
    }
    if (!privileged)
        return;
    char grp[64];
    unsigned mode = (unsigned)st.st_mode & 07777;
    int group_ok = st.st_gid != 0 && (st.st_mode & S_IWGRP);
    if (!group_ok && !(st.st_mode & S_IWOTH))
        problem(r, "spool_dir %s is not writable by a group other than root (mode %04o, group "
                   "%s), so the keeper cannot make dotlocks and journals there; fix: chown "
                   "root:mail %s && chmod 2775 %s (as Debian's /var/mail)", d, mode,
                group_name(st.st_gid, grp, sizeof grp), d, d);
    else if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
        problem(r, "spool_dir %s is writable by everyone but not sticky (mode %04o), so any "
                   "local user can remove or replace anyone's spool; fix: chmod 1777 %s, or "
                   "chown root:mail %s && chmod 2775 %s", d, mode, d, d, d);
}

/* Where passwords come from: passwd_file, or (as root) the shadow file. */
static void check_passwords(const struct config *cfg, struct report *r, int privileged,
                            int thorough)
{
    const char *pf = cfg->passwd_file;
    struct stat st;
    if (pf && (stat(pf, &st) != 0 || access(pf, R_OK) != 0)) {
        problem(r, "passwd_file %s is not readable (%s), so no one can log in; fix: create it "
                   "(name:hash:uid:gid:gecos:home:shell lines), correct the path, or leave "
                   "passwd_file empty to use the system's accounts", pf, strerror(errno));
        return;
    }
    if (pf && !S_ISREG(st.st_mode)) {
        problem(r, "passwd_file %s is not a regular file; fix: point passwd_file at the file "
                   "of accounts, or leave it empty to use the system's accounts", pf);
        return;
    }
    if (!thorough)
        return;
    if (pf && (st.st_mode & (S_IWGRP | S_IWOTH)))
        problem(r, "passwd_file %s is writable by group or others (mode %04o), who could add "
                   "accounts or change passwords; fix: chmod go-w %s", pf,
                (unsigned)st.st_mode & 07777, pf);
    if (pf || !privileged)
        return;
    FILE *f = fopen("/etc/shadow", "re");
    if (f) {
        fclose(f);
        return;
    }
    int saved = errno;
    /* No file: the shadow database may come from elsewhere (nsswitch.conf). */
    setspent();
    struct spwd *sp = getspent();
    endspent();
    if (sp == NULL)
        problem(r, "passwd_file is empty, so the system's accounts log in, but /etc/shadow "
                   "cannot be read (%s), so every password check would fail; fix: run the "
                   "daemon as root with CAP_DAC_READ_SEARCH (as mboxpop3d.service does), or "
                   "set passwd_file", strerror(saved));
}

/* The pre-auth chroot: missing is fine (the start makes it), otherwise
 * an empty directory of root's that no one else may write. */
static void check_empty_dir(const char *dir, struct report *r)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT)
            problem(r, "empty_dir %s cannot be examined (%s); fix: make its parent "
                       "directories searchable by root, or set empty_dir elsewhere", dir,
                    strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        problem(r, "empty_dir %s is not a directory%s; fix: remove it (the daemon creates the "
                   "directory at start), or set empty_dir to an empty directory", dir,
                S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
        return;
    }
    if (st.st_uid != 0)
        problem(r, "empty_dir %s is owned by uid %u, not root; fix: chown root: %s", dir,
                (unsigned)st.st_uid, dir);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        problem(r, "empty_dir %s is writable by group or others (mode %04o); fix: chmod 755 %s",
                dir, (unsigned)st.st_mode & 07777, dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        problem(r, "empty_dir %s cannot be read (%s); fix: chmod 755 %s", dir, strerror(errno),
                dir);
        return;
    }
    size_t entries = 0;
    char first[64] = "";
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (entries++ == 0)
            printable(e->d_name, first, sizeof first);
    }
    closedir(d);
    if (entries)
        problem(r, "empty_dir %s is not empty (%zu entr%s, such as %s), but it is the pre-auth "
                   "chroot and must hold nothing; fix: empty it, or set empty_dir to a new "
                   "directory", dir, entries, entries == 1 ? "y" : "ies", first);
}

static void check_preauth_user(const struct config *cfg, struct report *r)
{
    struct passwd *pw = getpwnam(cfg->preauth_user);
    if (pw == NULL)
        problem(r, "preauth_user %s does not exist; fix: useradd --system --no-create-home "
                   "--home-dir /nonexistent --shell /usr/sbin/nologin %s", cfg->preauth_user,
                cfg->preauth_user);
    else if (pw->pw_uid == 0)
        problem(r, "preauth_user %s is root, but must be an unprivileged user of its own; "
                   "fix: set preauth_user = mboxpop3d and create that user (useradd --system "
                   "--no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "
                   "mboxpop3d)", cfg->preauth_user);
}

/* The daemon uses the file only if it is root's and private (auth.c). */
static void check_apop_secrets(const struct config *cfg, struct report *r)
{
    const char *p = cfg->apop_secrets;
    struct stat st;
    if (p == NULL)
        return;
    if (stat(p, &st) != 0) {
        problem(r, "apop_secrets %s cannot be read (%s), so every APOP login fails; fix: "
                   "create it (user:secret lines, then chown root: %s && chmod 600 %s), or "
                   "leave apop_secrets empty", p, strerror(errno), p, p);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        problem(r, "apop_secrets %s is not a regular file, so every APOP login fails; fix: "
                   "point apop_secrets at the file of user:secret lines", p);
        return;
    }
    if (st.st_uid != 0)
        problem(r, "apop_secrets %s is owned by uid %u, not root, so the daemon refuses to "
                   "use it and every APOP login fails; fix: chown root: %s", p,
                (unsigned)st.st_uid, p);
    if (st.st_mode & 077)
        problem(r, "apop_secrets %s is %s by group or others (mode %04o), so the daemon "
                   "refuses to use it and every APOP login fails; fix: chmod 600 %s", p,
                st.st_mode & 044 ? "readable" : "writable", (unsigned)st.st_mode & 07777, p);
}

/* ---- listen: is each address free? ---- */

struct listen_addr {
    int family;
    struct sockaddr_storage sa;
    socklen_t len;
    unsigned port;
};

/* "ADDR:PORT" or "[V6]:PORT", read exactly as the server does. */
static int parse_listen(const char *spec, struct listen_addr *la)
{
    struct addrinfo *ai;
    int rc = server_resolve_listen(spec, &ai);
    if (rc != 0)
        return rc;
    la->family = ai->ai_family;
    la->len = ai->ai_addrlen;
    memcpy(&la->sa, ai->ai_addr, ai->ai_addrlen);
    la->port = (unsigned)atoi(strrchr(spec, ':') + 1);
    freeaddrinfo(ai);
    return 0;
}

/* The address part of a /proc/net/tcp[6] entry, as raw 32-bit words. */
static int proc_addr_matches(const char *hex, const struct listen_addr *la)
{
    uint32_t words[4] = { 0 };
    size_t nwords = strlen(hex) / 8, zero = 1;
    if (nwords != 1 && nwords != 4)
        return 0;
    for (size_t i = 0; i < nwords; i++) {
        char part[9];
        memcpy(part, hex + 8 * i, 8);
        part[8] = '\0';
        words[i] = (uint32_t)strtoul(part, NULL, 16);
        zero &= words[i] == 0;
    }
    if (zero)
        return 1;                           /* a wildcard listener */
    const uint32_t *ours;
    size_t nours;
    if (la->family == AF_INET) {
        ours = (const uint32_t *)(const void *)&((const struct sockaddr_in *)(const void *)&la->sa)->sin_addr;
        nours = 1;
    } else {
        ours = (const uint32_t *)(const void *)&((const struct sockaddr_in6 *)(const void *)&la->sa)->sin6_addr;
        nours = 4;
    }
    int ours_zero = 1;
    for (size_t i = 0; i < nours; i++)
        ours_zero &= ours[i] == 0;
    if (ours_zero)
        return 1;                           /* we asked for the wildcard */
    return nours == nwords && memcmp(ours, words, 4 * nours) == 0;
}

/* Inodes of the listening TCP sockets that conflict with la. */
static size_t listening_inodes(const struct listen_addr *la, unsigned long *inodes, size_t max)
{
    static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
    size_t n = 0;
    for (size_t t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "re");
        if (f == NULL)
            continue;
        char line[512], addr[40];
        unsigned port, state;
        unsigned long inode;
        while (n < max && fgets(line, sizeof line, f))
            if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x %*s %*s %*s %*u %*u %lu",
                       addr, &port, &state, &inode) == 4 &&
                state == 0x0A && port == la->port && proc_addr_matches(addr, la))
                inodes[n++] = inode;
        fclose(f);
    }
    return n;
}

struct holder {
    long pid;
    int rank;                   /* 0: none, 1: another program, 2: pid 1, 3: mboxpop3d,
                                 * 4: mboxpop3d's master */
    char name[80];
};

static void read_small(const char *path, char *buf, size_t size)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

static int holds_inode(long pid, const unsigned long *inodes, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;) {
        char link[96], target[64];
        snprintf(link, sizeof link, "%s/%.20s", path, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        unsigned long inode;
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (sscanf(target, "socket:[%lu]", &inode) == 1)
            for (size_t i = 0; i < n && !found; i++)
                found = inodes[i] == inode;
    }
    closedir(d);
    return found;
}

/* Who listens there, as far as /proc lets us see. */
static void find_holder(const unsigned long *inodes, size_t n, struct holder *best)
{
    memset(best, 0, sizeof *best);
    DIR *proc = opendir("/proc");
    for (struct dirent *e; proc && (e = readdir(proc)) != NULL;) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == (long)getpid() || !holds_inode(pid, inodes, n))
            continue;
        char path[64], cmd[256], comm[64];
        snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
        read_small(path, cmd, sizeof cmd);       /* argv[0] up to its NUL */
        snprintf(path, sizeof path, "/proc/%ld/comm", pid);
        read_small(path, comm, sizeof comm);
        comm[strcspn(comm, "\n")] = '\0';
        const char *base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
        int rank = strcmp(cmd, "mboxpop3d: master") == 0        ? 4
                   : strncmp(base, "mboxpop3d", 9) == 0          ? 3
                   : pid == 1                                    ? 2
                                                                 : 1;
        if (rank > best->rank) {
            best->rank = rank;
            best->pid = pid;
            /* A long command line is cut: the name is only for the message. */
            (void)strlcpy_checked(best->name, rank >= 3 ? cmd : comm, sizeof best->name);
        }
    }
    if (proc)
        closedir(proc);
}

static void check_listen_one(const char *spec, struct report *r)
{
    struct listen_addr la;
    int rc = parse_listen(spec, &la);
    if (rc != 0) {
        problem(r, "listen %s: %s; fix: use a numeric address of this host", spec,
                gai_strerror(rc));
        return;
    }
    int fd = socket(la.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        problem(r, "listen %s: %s; fix: remove it from listen%s", spec, strerror(errno),
                la.family == AF_INET6 ? " (IPv6 seems to be off on this host)" : "");
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (la.family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    int err = bind(fd, (struct sockaddr *)&la.sa, la.len) == 0 ? 0 : errno;
    close(fd);
    if (err == 0)
        return;
    if (err == EACCES && geteuid() != 0) {
        note(r, "listen %s not checked: only root may bind port %u", spec, la.port);
        return;
    }
    if (err == EADDRNOTAVAIL) {
        problem(r, "listen %s: no interface of this host has that address; fix: use an "
                   "address of this host (ip -brief address), or 0.0.0.0 / [::]", spec);
        return;
    }
    if (err != EADDRINUSE) {
        problem(r, "listen %s: %s; fix: change listen", spec, strerror(err));
        return;
    }
    unsigned long inodes[64];
    struct holder h;
    find_holder(inodes, listening_inodes(&la, inodes, 64), &h);
    if (h.rank >= 3)
        note(r, "listen %s is in use by a running mboxpop3d (pid %ld, %s): fine for a reload; "
                "a second daemon could not start there", spec, h.pid, h.name);
    else if (h.rank == 2)
        note(r, "listen %s is in use by the service manager (pid 1), as with socket "
                "activation by mboxpop3d.socket: the daemon then gets the socket from it",
             spec);
    else if (h.rank == 1)
        problem(r, "listen %s: address already in use by %s (pid %ld); fix: stop that program "
                   "(ss -ltnp shows the listeners), or change listen", spec, h.name, h.pid);
    else
        problem(r, "listen %s: address already in use by another program; fix: stop it (ss "
                   "-ltnp, as root, shows which), or change listen", spec);
}

static void check_listen(const struct config *cfg, struct report *r)
{
    const char *pid_text = getenv("LISTEN_PID"), *fds_text = getenv("LISTEN_FDS");
    if (pid_text && fds_text && atol(pid_text) == (long)getpid() && atol(fds_text) > 0) {
        note(r, "listen not checked: socket activation passes the sockets (listen is ignored)");
        return;
    }
    /* Started by systemd (ExecStartPre= of mboxpop3d.service), which may
     * hold mboxpop3d.socket's sockets for the daemon: a real conflict is
     * reported by the start itself ("listen ADDR: Address already in use"). */
    if (getenv("INVOCATION_ID") && getppid() == 1) {
        note(r, "listen not checked: run by the service manager, which may hold the sockets "
                "of mboxpop3d.socket");
        return;
    }
    for (size_t i = 0; i < cfg->listen_count; i++)
        check_listen_one(cfg->listen[i], r);
}

/* The start's checks (thorough = 0), or all of -t's (thorough = 1).
 * Returns how many problems were found. */
static int check_environment(const struct config *cfg, struct report *r, int thorough)
{
    int privileged = geteuid() == 0;
    check_spool_dir(cfg, r, privileged && thorough);
    check_passwords(cfg, r, privileged, thorough);
    if (cfg->min_spare > cfg->max_spare)
        problem(r, "min_spare (%u) is larger than max_spare (%u); fix: lower min_spare or "
                   "raise max_spare", cfg->min_spare, cfg->max_spare);
    if (!thorough)
        return r->problems;
    if (privileged) {
        check_preauth_user(cfg, r);
        check_empty_dir(cfg->empty_dir, r);
    } else {
        note(r, "not run as root: preauth_user, empty_dir, the group of spool_dir and "
                "/etc/shadow were not checked; run mboxpop3d -t as root");
    }
    check_apop_secrets(cfg, r);
    check_listen(cfg, r);
    return r->problems;
}

/*
 * -U: what a client would see in LIST and UIDL, offline, for admins
 * planning a migration.  Takes the spool's locks only while reading and
 * writes nothing (an interrupted UPDATE is left for the next login).
 */
static int list_spool(const struct config *cfg, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "mboxpop3d: %s: %s\n", path, strerror(errno));
        return 1;
    }
    struct mailbox_opts o = {
        .lock_kinds = cfg->mbox_locks,
        .lock_timeout = cfg->lock_timeout,
        .dotlock_stale = cfg->dotlock_stale,
        .scan_flags = cfg->uidl_source == UIDL_SOURCE_X_UIDL ? MBOX_SCAN_X_UIDL : 0,
        .no_recovery = 1,
        .read_only = 1,
    };
    struct mailbox mb;
    enum mb_status r = mailbox_open(&mb, path, &o);
    if (r != MB_OK) {
        fprintf(stderr, "mboxpop3d: %s\n", mb.why);
        mailbox_close(&mb);
        return 1;
    }
    uint64_t total = 0;
    for (size_t i = 0; i < mb.idx.count; i++)
        total += mb.idx.msgs[i].size;
    printf("# %s: %zu message%s, %llu octets; columns: number size uidl\n", path, mb.idx.count,
           mb.idx.count == 1 ? "" : "s", (unsigned long long)total);
    for (size_t i = 0; i < mb.idx.count; i++) {
        char uid[UIDL_TEXT_MAX];
        mbox_uidl_text(&mb.idx, i, uid);
        printf("%zu %llu %s\n", i + 1, (unsigned long long)mb.idx.msgs[i].size, uid);
    }
    mailbox_close(&mb);
    return fflush(stdout) == 0 ? 0 : 1;
}

static void announce_identity(void)
{
    if (geteuid() == 0)
        return;
    struct passwd *pw = getpwuid(geteuid());
    log_warn("not running as root: every account is served as uid %u (%s), "
             "with that user's access to the spools",
             (unsigned)geteuid(), pw ? pw->pw_name : "?");
}

/* The config file, then -l on top of it; 0 or 1 (reported). */
static int configure(struct config *cfg, const char *path, int must_exist,
                     const char *const *listen_args, size_t n_listen)
{
    char err[512];
    if (config_load(cfg, path, must_exist, err, sizeof err) != 0) {
        fprintf(stderr, "mboxpop3d: %s\n", err);
        return 1;
    }
    if (n_listen == 0)
        return 0;
    char joined[CONFIG_MAX_LINE];
    size_t used = 0;
    for (size_t i = 0; i < n_listen; i++) {
        int n = snprintf(joined + used, sizeof joined - used, "%s ", listen_args[i]);
        if (n < 0 || (size_t)n >= sizeof joined - used) {
            fprintf(stderr, "mboxpop3d: -l: too many addresses\n");
            return 1;
        }
        used += (size_t)n;
    }
    if (config_set(cfg, "listen", joined, err, sizeof err) != 0) {
        fprintf(stderr, "mboxpop3d: -l: %s\n", err);
        return 1;
    }
    return 0;
}

/* -t: the settings in effect, every problem with its fix, then notes
 * on what was not checked, as comments. */
static int check_config(const struct config *cfg)
{
    config_print(cfg, stdout);
    static struct report r;
    int problems = check_environment(cfg, &r, 1);
    for (size_t i = 0; i < r.n_notes; i++)
        printf("# note: %s\n", r.notes[i]);
    printf("# %d problem%s found\n", problems, problems == 1 ? "" : "s");
    return problems ? 1 : 0;
}

static int serve(struct config *cfg, const char *reload_path, int foreground, int debug,
                 int inetd)
{
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)(time(NULL) ^ getpid()));
    /* inetd mode logs to syslog unless asked otherwise: stderr may be the socket. */
    log_init(inetd ? debug : foreground, debug);
    /* A daemon about to detach logs to syslog: say it on the terminal
     * too (not in inetd mode, where stderr may be the client). */
    struct report r = { .to_log = 1, .to_stderr = !inetd && !foreground };
    if (check_environment(cfg, &r, 0) != 0) {
        if (r.to_stderr)
            fprintf(stderr, "mboxpop3d: refusing to start: fix the problems above\n");
        log_err("refusing to start: fix the problems above");
        return 1;
    }
    announce_identity();
    return inetd ? server_inetd(cfg) : server_run(cfg, reload_path, foreground);
}

int main(int argc, char **argv)
{
    int foreground = 0, debug = 0, inetd = 0, check = 0;
    const char *list_path = NULL;
    const char *config_path = CONFIG_DEFAULT_PATH;
    int config_given = 0;
    const char *listen_args[CONFIG_MAX_LISTEN];
    size_t n_listen = 0;
    int opt;
    /* One malloc arena: the only threads are a big spool's scanners, and
     * an arena each would stay in the idle session's memory. */
    (void)mallopt(M_ARENA_MAX, 1);
    while ((opt = getopt(argc, argv, option_letters)) != -1) {
        switch (opt) {
        case 'f': foreground = 1; break;
        case 'd': debug = foreground = 1; break;
        case 'c': config_path = optarg; config_given = 1; break;
        case 'l':
            if (n_listen == CONFIG_MAX_LISTEN) {
                fprintf(stderr, "mboxpop3d: at most %d -l options\n", CONFIG_MAX_LISTEN);
                return 2;
            }
            listen_args[n_listen++] = optarg;
            break;
        case 'i': inetd = 1; break;
        case 't': check = 1; break;
        case 'U': list_path = optarg; break;
        case 'V': printf("mboxpop3d %s\n", MBOXPOP3D_VERSION); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    /* The process title will write over argv: keep what we still need. */
    const char *keep[CONFIG_MAX_LISTEN + 2];
    size_t nkeep = 0;
    config_path = keep[nkeep++] = strdup(config_path);
    for (size_t i = 0; i < n_listen; i++)
        listen_args[i] = keep[nkeep++] = strdup(listen_args[i]);
    if (list_path)
        list_path = keep[nkeep++] = strdup(list_path);
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] == NULL) {
            perror("mboxpop3d");
            return 1;
        }
    proctitle_init(argc, argv);

    struct config cfg;
    config_defaults(&cfg);
    int rc = configure(&cfg, config_path, config_given, listen_args, n_listen);
    if (rc == 0 && list_path)
        rc = list_spool(&cfg, list_path);
    else if (rc == 0 && check)
        rc = check_config(&cfg);
    else if (rc == 0)
        rc = serve(&cfg, config_given ? config_path
                                      : (access(config_path, R_OK) == 0 ? config_path : NULL),
                   foreground, debug, inetd);
    config_free(&cfg);
    for (size_t i = 0; i < nkeep; i++)
        free((void *)keep[i]);
    return rc;
}
