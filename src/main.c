/* main.c - command line, configuration, and the choice of standalone,
 * foreground or inetd operation. */
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "mailbox.h"
#include "privsep.h"
#include "proctitle.h"
#include "server.h"
#include "version.h"

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

/* Problems -t and start-up report; returns how many were found. */
/* thorough (-t): also the privilege separation's start-up checks,
 * which server start-up makes itself. */
static int check_environment(const struct config *cfg, FILE *out, int thorough)
{
    int problems = 0;
    struct stat st;
    if (stat(cfg->spool_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(out, "problem: spool_dir %s is not a directory (%s); create it or set spool_dir\n",
                cfg->spool_dir, errno ? strerror(errno) : "not a directory");
        problems++;
    }
    if (cfg->passwd_file && access(cfg->passwd_file, R_OK) != 0) {
        fprintf(out, "problem: passwd_file %s is not readable (%s)\n", cfg->passwd_file,
                strerror(errno));
        problems++;
    }
    struct privsep_ids ids;
    char err[512];
    if (thorough && privsep_prepare(cfg, &ids, 1, err, sizeof err) != 0) {
        fprintf(out, "problem: %s\n", err);
        problems++;
    }
    if (cfg->min_spare > cfg->max_spare) {
        fprintf(out, "problem: min_spare (%u) is larger than max_spare (%u)\n", cfg->min_spare,
                cfg->max_spare);
        problems++;
    }
    return problems;
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

/* -t */
static int check_config(const struct config *cfg)
{
    config_print(cfg, stdout);
    int problems = check_environment(cfg, stdout, 1);
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
    if (check_environment(cfg, stderr, 0) != 0) {
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
    while ((opt = getopt(argc, argv, "fdc:l:itU:Vh")) != -1) {
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
