/*
 * mailbox.h - an mbox spool as the session sees it: an index built by one
 * scan, message access for RETR/TOP, and UPDATE.
 *
 * Scan, don't load: the index holds per message its offsets, its size as
 * sent and its UIDL digest; memory grows with the number of messages,
 * never with their bytes.  Message bodies are read with pread() when sent,
 * so a spool truncated by someone else can never fault us.
 *
 * Locks are held only while scanning and while updating, so delivery is
 * never blocked by an idle session.  Before each RETR/TOP the caller runs
 * mailbox_verify(): if the file changed, the indexed part must be
 * unchanged (mail appended after it is fine); otherwise the session must
 * end without deleting anything.
 *
 * mbox format (RFC 4155 and DESIGN.md): a message starts with a "From "
 * line at offset 0 or after a blank line; the "From " line is not part
 * of the message and the blank line before the next one is a separator,
 * not message content.  ">From " lines pass through as stored.  CRLF
 * spools, 8-bit and NUL bytes, and an unterminated last line are served
 * as they are.  Content-Length: is trusted only when it lands exactly on
 * the next "From " line or on the end of the file.  UW-IMAP's "FOLDER
 * INTERNAL DATA" pseudo-message is hidden from clients and kept on rewrite.
 */
#ifndef MBOXPOP3D_MAILBOX_H
#define MBOXPOP3D_MAILBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "lock.h"
#include "netio.h"
#include "uidl.h"
#include "update.h"

/* 32 bytes a message: the index of a 100,000-message spool is 3.2 MB.
 * Where a message's content ends is not stored: it is where the next
 * message's From line starts (or the end of what was scanned), less the
 * separator, the blank line that precedes a From line (msg_content_len). */
struct msg {
    uint64_t content_off;   /* first byte after the "From " line */
    uint64_t size : 60;     /* octets as sent (see wire_size()) */
    uint64_t deleted : 1;
    uint64_t has_blank : 1; /* header block ends in a blank line */
    uint64_t sep_len : 2;   /* separator after the content: 0, 1 (LF), 2 (CRLF) */
    uint32_t from_len;      /* the "From " line, with its line end */
    uint32_t header_len;    /* header block incl. the blank line, if any */
    unsigned char uid[UIDL_DIGEST_LEN];
};

_Static_assert(sizeof(struct msg) <= 32, "the index grows by 32 bytes a message at most");

/* Where message m's raw span (its "From " line) starts. */
static inline uint64_t msg_from_off(const struct msg *m)
{
    return m->content_off - m->from_len;
}

/* mbox_scan_opts() flags */
#define MBOX_SCAN_X_UIDL 1  /* take X-UIDL: headers as unique-ids (uidl.h) */

struct mbox_index {
    struct msg *msgs;
    size_t count, alloc;
    /* X-UIDL values, only with MBOX_SCAN_X_UIDL: xuidl[i] is 0 (none) or
     * 1 + the offset of message i's NUL-terminated value in xuidl_text. */
    uint32_t *xuidl;
    char *xuidl_text;
    size_t xuidl_len, xuidl_cap;
    /* Duplicate numbers (uidl.h): NULL when every digest is unique, else
     * dup[i] is 1 for the first message with its digest, 2 for the next. */
    uint32_t *dup;
    uint64_t pseudo_len;    /* bytes of a leading UW-IMAP pseudo-message */
    uint64_t scanned_size;  /* bytes of the file the index describes */
    uint64_t prefix_hash;   /* hash of those bytes, to detect rewrites */
};

enum mb_status {
    MB_OK = 0,
    MB_IN_USE,      /* locks not obtained within lock_timeout */
    MB_TEMP,        /* I/O error, out of memory, ...: try again later */
    MB_PERM,        /* not a regular file, wrong owner, not mbox format */
    MB_CHANGED,     /* someone else rewrote the indexed part */
    MB_DEFERRED     /* UPDATE failed half-way; its journal finishes it at
                       the next open (nothing is lost either way) */
};

/*
 * The UPDATE journal (update.h) lives beside the spool, as
 * spool_dir/.USER.mboxpop3d-journal, mode 0600, owned by whoever creates
 * it (a privileged daemon's keeper, keeper.h).  It
 * exists only while an UPDATE runs, or after one was interrupted: the
 * next open of the mailbox finishes that UPDATE under the write locks.
 * Like the dotlock, creating it needs write access to the spool
 * directory, so a privileged daemon's keeper does it (keeper.h).
 */
enum journal_op {
    JOURNAL_OPEN = 'J',     /* open an existing journal: fd, or -1/ENOENT */
    JOURNAL_CREATE = 'N',   /* open or create, fsync the directory: fd */
    JOURNAL_REMOVE = 'K',   /* unlink it: 0 */
};
typedef int (*journal_fn)(void *ctx, enum journal_op op);

/* The journal path for a spool (malloc'd), and the primitive itself:
 * regular file, not a symlink, owned by owner (whoever creates it: the
 * keeper, or the process itself), or refused. */
char *journal_path_for(const char *spool_path);
int journal_direct(const char *journal_path, enum journal_op op, uid_t owner);

struct mailbox_opts {
    unsigned lock_kinds, lock_timeout, dotlock_stale;
    dotlock_fn dotlock;     /* NULL: create dotlocks ourselves */
    journal_fn journal;     /* NULL: handle the journal ourselves */
    void *dotlock_ctx;      /* for both callbacks */
    int check_owner;        /* refuse a spool not owned by owner */
    uid_t owner;
    unsigned scan_flags;    /* MBOX_SCAN_* */
    int no_recovery;        /* read-only use (-U): refuse if a journal waits */
    int read_only;          /* open O_RDONLY (no UPDATE possible) */
};

struct mailbox {
    char *path;
    char *journal_path;
    journal_fn journal;
    void *journal_ctx;
    int fd;                 /* -1: no spool file yet (empty mailbox) */
    struct locker lock;
    struct mbox_index idx;
    int check_owner;
    uid_t owner;
    unsigned scan_flags;
    dev_t dev;              /* identity of the scanned file */
    ino_t ino;
    struct timespec mtime, ctime;
    off_t size;
    int identity_exact;     /* an unchanged identity proves an unchanged
                               file (mailbox.c, unchanged_since_scan) */
    char why[160];          /* reason of the last failure, for the log */
    char *send_buf;         /* RETR/TOP read buffer, made at the first send */
    /* Set by the caller of mailbox_update(): called at UPDATE's commit
     * point (update.h), before the spool is truncated, when that cuts
     * 16 MiB or more (a big truncation is slow); not called otherwise. */
    void (*on_commit)(void *arg);
    void *on_commit_arg;
};

/*
 * The UPDATE plan for an index with deletions and a file now file_size
 * bytes long: the kept spans after the first deleted message, adjacent
 * ones merged, then the mail appended since the scan (an empty run at
 * file_size when nothing is kept).  plan->runs is malloc'd.
 */
int mbox_update_plan(const struct mbox_index *idx, uint64_t file_size, struct upd_plan *plan);

/* Builds an index of data[0..len).  Pure: no I/O.  Returns 0, or -1 if
 * the data is not in mbox format (err says why) or memory runs out.  A
 * big spool is indexed by up to four threads at once (one per CPU), each
 * over a part cut at a message end; they are joined before it returns. */
int mbox_scan(const char *data, size_t len, struct mbox_index *idx,
              char *err, size_t errlen);
int mbox_scan_opts(const char *data, size_t len, unsigned flags, struct mbox_index *idx,
                   char *err, size_t errlen);

/* For tests and fuzzing: split scans of min_bytes or more into exactly
 * parts parts (at most 4); mbox_scan_tune(0, 32 MiB) is the default. */
void mbox_scan_tune(unsigned parts, size_t min_bytes);

/* Message i's bytes as stored, without the separator after them. */
static inline uint64_t msg_content_len(const struct mbox_index *idx, size_t i)
{
    const struct msg *m = &idx->msgs[i];
    uint64_t next = i + 1 < idx->count ? msg_from_off(&idx->msgs[i + 1]) : idx->scanned_size;
    return next - m->sep_len - m->content_off;
}

/* Message i's duplicate number: 1, or n for the n-th with its digest. */
static inline uint32_t mbox_dup(const struct mbox_index *idx, size_t i)
{
    return idx->dup ? idx->dup[i] : 1;
}

/* Message i's unique-id as sent by UIDL. */
void mbox_uidl_text(const struct mbox_index *idx, size_t i, char out[UIDL_TEXT_MAX]);
void mbox_index_free(struct mbox_index *idx);

/* A fast 64-bit checksum of a byte string (the UPDATE journal's record
 * checksums; its values are part of the journal format). */
uint64_t mbox_hash(const char *data, size_t len);

/* The hash of data[0..len) that mbox_scan() leaves in prefix_hash, to
 * tell whether another program rewrote the indexed part of a spool. */
uint64_t mbox_prefix_hash(const char *data, size_t len);

/* Reading a mapping of a file that another program truncates raises
 * SIGBUS.  mbox_guard_call() runs fn(arg), in the calling thread, and
 * returns -1 if a SIGBUS cut it short (0 otherwise), provided that
 * mbox_guard_sigbus is the process's SIGBUS handler.  mbox_scan() guards
 * the threads it starts the same way. */
int mbox_guard_call(void (*fn)(void *), void *arg);
void mbox_guard_sigbus(int sig);

/* Opens, locks (shared), scans and unlocks the spool.  A missing spool is
 * an empty mailbox.  The spool must be a regular file, not a symlink. */
enum mb_status mailbox_open(struct mailbox *mb, const char *path,
                            const struct mailbox_opts *opts);

/* Before RETR/TOP: checks the file is still what we indexed. */
enum mb_status mailbox_verify(struct mailbox *mb);

/* Sends message i (0-based) through the multi-line writer: all of it, or
 * with body_lines >= 0 the header block and that many body lines (TOP).
 * Ends with the ".\r\n" terminator. */
enum mb_status mailbox_send(struct mailbox *mb, size_t i, int64_t body_lines,
                            struct netio *io);

/* UPDATE: removes the messages marked deleted, keeping everything else
 * and all mail appended since the scan.  Nothing deleted: no-op. */
enum mb_status mailbox_update(struct mailbox *mb);

void mailbox_close(struct mailbox *mb);

#endif
