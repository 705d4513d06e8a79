/* Unit tests: the keeper (keeper.h) in a forked child, as the daemon runs
 * it but without the privilege drop: binds, dotlock and journal requests,
 * the dotlock of a channel that dies, refused requests, and its end.
 * Every wait is bounded (an alarm ends a stuck test run). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "keeper.h"
#include "mailbox.h"

static char tmpdir[64];
static char spool[128], lockpath[160], journal[192];
static int case_no;

static void new_paths(void)
{
    case_no++;
    snprintf(spool, sizeof spool, "%s/user%d", tmpdir, case_no);
    snprintf(lockpath, sizeof lockpath, "%s.lock", spool);
    snprintf(journal, sizeof journal, "%s/.user%d.mboxpop3d-journal", tmpdir, case_no);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
    nanosleep(&ts, NULL);
}

/* A test case's start: fresh paths, and a keeper in a child; *bind_fd
 * gets the binders' end. */
static pid_t start_keeper(int *bind_fd)
{
    new_paths();
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[1]);
        keeper_serve(sv[0]);
        _exit(0);
    }
    close(sv[0]);
    *bind_fd = sv[1];
    return pid;
}

/* The keeper's exit status, waiting up to ms; -1 if it is still running. */
static int wait_keeper(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        sleep_ms(10);
    }
    return -1;
}

static void stop_keeper(pid_t pid, int bind_fd)
{
    close(bind_fd);
    if (wait_keeper(pid, 3000) < 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* A channel for this case's spool (dotlocks stale after 600 s). */
static int bind_spool(int bind_fd)
{
    return keeper_bind(bind_fd, spool, 600);
}

/* Waits until path exists or not (the keeper removes a dead channel's
 * dotlock on its own time). */
static int becomes(const char *path, int present)
{
    for (int i = 0; i < 300; i++) {
        if (exists(path) == present)
            return 1;
        sleep_ms(10);
    }
    return 0;
}

TEST(dotlock_made_and_removed_through_a_channel)
{
    int bind_fd, chan;
    pid_t pid = start_keeper(&bind_fd);
    CHECK(pid > 0);
    chan = bind_spool(bind_fd);
    CHECK(chan >= 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    CHECK(exists(lockpath));
    /* held: a second create for the same spool is refused */
    int other = bind_spool(bind_fd);
    CHECK(other >= 0);
    errno = 0;
    CHECK_EQ(keeper_dotlock(&other, DOTLOCK_CREATE), -1);
    CHECK_EQ(errno, EEXIST);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REFRESH), 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REMOVE), 0);
    CHECK(!exists(lockpath));
    close(other);
    close(chan);
    stop_keeper(pid, bind_fd);
}

TEST(journal_created_opened_and_removed)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    int chan = bind_spool(bind_fd);
    CHECK(chan >= 0);
    errno = 0;
    CHECK_EQ(keeper_journal(&chan, JOURNAL_OPEN), -1);     /* none yet */
    CHECK_EQ(errno, ENOENT);
    int fd = keeper_journal(&chan, JOURNAL_CREATE);
    CHECK(fd >= 0);
    CHECK(exists(journal));
    if (fd >= 0) {
        CHECK_EQ(write(fd, "journal", 7), 7);     /* writable by us */
        close(fd);
    }
    fd = keeper_journal(&chan, JOURNAL_OPEN);
    CHECK(fd >= 0);
    if (fd >= 0) {
        char buf[8] = "";
        CHECK_EQ(pread(fd, buf, 7, 0), 7);
        CHECK_MEM(buf, 7, "journal", 7);
        close(fd);
    }
    CHECK_EQ(keeper_journal(&chan, JOURNAL_REMOVE), 0);
    CHECK(!exists(journal));
    close(chan);
    stop_keeper(pid, bind_fd);
}

TEST(dotlock_of_a_dead_channel_is_removed)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    int chan = bind_spool(bind_fd);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    CHECK(exists(lockpath));
    close(chan);                    /* the session died holding it */
    CHECK(becomes(lockpath, 0));
    /* a dotlock removed by its session is not the keeper's to touch: a
     * lock another program made after it stays */
    chan = bind_spool(bind_fd);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REMOVE), 0);
    int fd = open(lockpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    close(chan);
    sleep_ms(100);
    CHECK(exists(lockpath));
    unlink(lockpath);
    stop_keeper(pid, bind_fd);
}

TEST(unknown_request_refused_channel_still_served)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    int chan = bind_spool(bind_fd);
    errno = 0;
    CHECK_EQ(keeper_dotlock(&chan, (enum dotlock_op)'Z'), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REMOVE), 0);
    close(chan);
    stop_keeper(pid, bind_fd);
}

TEST(malformed_binds_ignored)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    /* no descriptor attached, then a path with a NUL in it */
    char msg[64] = { 60, 0, 0, 0 };
    memcpy(msg + 4, spool, strlen(spool) < 50 ? strlen(spool) : 50);
    CHECK(send(bind_fd, msg, 4 + strlen(msg + 4), 0) > 0);
    CHECK(send(bind_fd, "\0\0\0\0a\0b", 7, 0) == 7);
    CHECK(send(bind_fd, "xy", 2, 0) == 2);
    /* the keeper is still there and serves a proper bind */
    int chan = bind_spool(bind_fd);
    CHECK(chan >= 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    CHECK(exists(lockpath));
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REMOVE), 0);
    close(chan);
    CHECK(keeper_bind(bind_fd, "", 600) == -1);
    stop_keeper(pid, bind_fd);
}

TEST(keeper_ends_after_its_last_channel)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    int chan = bind_spool(bind_fd);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), 0);
    close(bind_fd);                 /* no more binders */
    CHECK_EQ(wait_keeper(pid, 200), -1);          /* a channel is left */
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REFRESH), 0);
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_REMOVE), 0);
    close(chan);
    CHECK_EQ(wait_keeper(pid, 3000), 0);
    CHECK(!exists(lockpath));
}

TEST(requests_after_the_keeper_died_fail)
{
    int bind_fd;
    pid_t pid = start_keeper(&bind_fd);
    int chan = bind_spool(bind_fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    errno = 0;
    CHECK_EQ(keeper_dotlock(&chan, DOTLOCK_CREATE), -1);
    CHECK(errno == EPIPE || errno == ECONNRESET);
    CHECK(!exists(lockpath));
    errno = 0;
    CHECK_EQ(bind_spool(bind_fd), -1);
    CHECK(errno == EPIPE || errno == ECONNREFUSED || errno == ECONNRESET);
    close(chan);
    close(bind_fd);
}

int main(void)
{
    if (tl_make_tmpdir(tmpdir, "keeper") != 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    alarm(120);
    RUN(dotlock_made_and_removed_through_a_channel);
    RUN(journal_created_opened_and_removed);
    RUN(dotlock_of_a_dead_channel_is_removed);
    RUN(unknown_request_refused_channel_still_served);
    RUN(malformed_binds_ignored);
    RUN(keeper_ends_after_its_last_channel);
    RUN(requests_after_the_keeper_died_fail);
    tl_remove_tmpdir(tmpdir);
    return test_report();
}
