/*
 * quorumdb-walrecv: the storage node's WAL receiver (one per node, supervised by quorumdb-storage-node).
 *
 * Why it exists: a storage node's acknowledgement is what PostgreSQL's `ANY 4` quorum counts, so the
 * receive -> write -> flush -> acknowledge loop is the product's commit path. pg_receivewal
 * --synchronous does it correctly but spends more than it needs: it fsyncs (flushing the inode's mtime
 * through the journal on every commit), writes each message separately and selects before every read.
 * This loop drains everything the socket holds, writes it with one pwrite per segment, makes it durable
 * with one fdatasync (segments are zero-filled and synced when created, so data writes never change
 * metadata) and sends one feedback message; `make bench` measures the difference against pg_receivewal.
 *
 * It keeps pg_receivewal's on-disk contract, which the node, repair and the read-quorum client rely on:
 * files named like PostgreSQL's WAL, `<segment>.partial` while incomplete (zero-padded to 16 MiB, WAL
 * written in order from the segment start), renamed when complete; `<tli>.history` files; streaming
 * restarts at the start of the newest held segment, or inside it when that is safe (`resume_point`). In
 * addition it
 *   - continues a new timeline at its fork point, not its segment start: the new .partial starts as a copy
 *     of the ended timeline's bytes before the fork (`seed_next_timeline`);
 *   - prints `completed <file>` on stdout for every completed segment or history file, so the node seals
 *     and archives without polling the directory;
 *   - cleans up after a timeline fork: at the end of a timeline the superseded tail of the current
 *     `.partial` (WAL the old writer sent that never reached a quorum) is zeroed, and at start-up files of
 *     an old timeline lying wholly after its fork point are moved to --superseded-dir.
 * It must never report a flush position beyond what fdatasync made durable.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <libpq-fe.h>

#ifndef SYNC_FN
#define SYNC_FN fdatasync
#endif
#define SEG_SIZE (16u * 1024u * 1024u)
#define STAGE_SIZE (1024u * 1024u)
#ifndef ZERO_CHUNK
#define ZERO_CHUNK 8192u /* page-sized fill writes, as PostgreSQL's own (see the docs on folio sizes) */
#endif
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000) /* 1970-01-01 -> 2000-01-01 */
#define MAX_TLIS 256

typedef uint64_t lsn_t;

static const char *progname = "quorumdb-walrecv";
static const char *opt_dir;
static const char *opt_slot;
static const char *opt_dbname;
static const char *opt_superseded;
static int opt_status_interval = 10;
static int opt_linger_us = 0;
static pid_t opt_parent;
static bool opt_verbose;

static PGconn *conn;
static int dirfd_wal = -1;

/* The open segment. */
static int seg_fd = -1;
static uint64_t seg_no;
static uint32_t seg_tli;
static char seg_name[64];

/* Bytes received but not yet written, all contiguous and inside the open segment. */
static char *stage;
static size_t stage_len;
static lsn_t stage_start;

static lsn_t received;   /* end of the WAL received and written (or staged) */
static lsn_t flushed;    /* end of the WAL made durable: the only position ever reported as flushed */
static lsn_t reported;    /* flush position in the last feedback sent */
static int64_t last_status_us;
static int64_t last_flush_us;  /* when the last acknowledgement of new WAL went out */
static bool busy;              /* new WAL arrived within the linger window after the last acknowledgement */
static bool reply_requested;

/* ---- messages --------------------------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void info(const char *fmt, ...)
{
    va_list ap;
    if (!opt_verbose)
        return;
    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void die_pq(const char *what) __attribute__((noreturn));
static void die_pq(const char *what)
{
    /* libpq's message carries the server's text, which the node matches (e.g. a lost slot). */
    const char *msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    fprintf(stderr, "%s: error: %s: ", progname, what);
    for (size_t i = 0; i < n; i++)
        fputc(msg[i] == '\n' ? ' ' : msg[i], stderr);
    fputc('\n', stderr);
    exit(1);
}

static void die_result(PGresult *res, const char *what) __attribute__((noreturn));
static void die_result(PGresult *res, const char *what)
{
    /* The result's own message: the connection's may be empty when a command failed inside a result. */
    const char *msg = PQresultErrorMessage(res);
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(conn);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    fprintf(stderr, "%s: error: %s (%s): ", progname, what, PQresStatus(PQresultStatus(res)));
    /* One line per message so that the node's log keeps the server's DETAIL next to the ERROR. */
    for (size_t i = 0; i < n; i++)
        fputc(msg[i] == '\n' ? ' ' : msg[i], stderr);
    fputc('\n', stderr);
    exit(1);
}

/* ---- LSNs, names, clocks ---------------------------------------------------------------------------- */

#define LSN_FMT "%X/%X"
#define LSN_ARGS(l) (unsigned) ((l) >> 32), (unsigned) (l)

static bool parse_lsn(const char *s, lsn_t *out)
{
    unsigned hi, lo;
    if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
        return false;
    *out = ((lsn_t) hi << 32) | lo;
    return true;
}

static lsn_t seg_start(lsn_t lsn) { return lsn - lsn % SEG_SIZE; }

static void wal_name(char *buf, size_t len, uint32_t tli, uint64_t segno)
{
    const uint64_t per_id = UINT64_C(0x100000000) / SEG_SIZE;
    snprintf(buf, len, "%08X%08X%08X", tli, (unsigned) (segno / per_id), (unsigned) (segno % per_id));
}

/* Parses `TTTTTTTTXXXXXXXXYYYYYYYY[.partial]`; returns 1 segment, 2 partial, 0 anything else. */
static int parse_wal_name(const char *name, uint32_t *tli, uint64_t *segno)
{
    const uint64_t per_id = UINT64_C(0x100000000) / SEG_SIZE;
    for (int i = 0; i < 24; i++)
        if (!isxdigit((unsigned char) name[i]) || islower((unsigned char) name[i]))
            return 0;
    int kind;
    if (name[24] == '\0')
        kind = 1;
    else if (strcmp(name + 24, ".partial") == 0)
        kind = 2;
    else
        return 0;
    char part[9] = {0};
    memcpy(part, name, 8);
    *tli = (uint32_t) strtoul(part, NULL, 16);
    memcpy(part, name + 8, 8);
    uint64_t log = strtoull(part, NULL, 16);
    memcpy(part, name + 16, 8);
    uint64_t seg = strtoull(part, NULL, 16);
    *segno = log * per_id + seg;
    return kind;
}

static int64_t now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (unsigned char) p[i];
    return v;
}

static void put_be64(char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (char) (v & 0xff);
}

/* ---- files ------------------------------------------------------------------------------------------ */

static void fsync_dir(void)
{
    if (fsync(dirfd_wal) != 0)
        die("could not fsync directory \"%s\": %s", opt_dir, strerror(errno));
}

static void write_all(int fd, const char *buf, size_t len, off_t off, const char *name)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("could not write \"%s\": %s", name, strerror(errno));
        }
        buf += n;
        len -= (size_t) n;
        off += n;
    }
}

static void trust_this_boot(void);

static void completed(const char *name)
{
    /* One line per file; the node reads it to seal and archive at once. */
    printf("completed %s\n", name);
    fflush(stdout);
    trust_this_boot();
}

/* ---- the spare segment -------------------------------------------------------------------------------
 * Zero-filling and syncing 16 MiB took 20-200 ms here, on the commit path at every segment switch and at
 * every timeline switch (failover). A background thread keeps one zero-filled, synced segment ready as
 * `.spare-segment` (not a WAL name: the node ignores it); a new segment is a rename of it. The spare
 * survives restarts, so a receiver restarted at a failover finds one. */

static char spare_path[1024], spare_tmp[1100];
static pthread_mutex_t spare_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t spare_wanted = PTHREAD_COND_INITIALIZER;
static bool spare_needed = true;

/* Writes a segment of real zeros and syncs it. Real zeros, not fallocate: later data writes then never
 * convert extents (metadata), so fdatasync stays a pure data flush. */
static void zero_fill(int fd, const char *path)
{
    static const char zeros[ZERO_CHUNK];
    for (off_t off = 0; off < (off_t) SEG_SIZE; off += ZERO_CHUNK)
        write_all(fd, zeros, ZERO_CHUNK, off, path);
    if (fsync(fd) != 0)
        die("could not fsync \"%s\": %s", path, strerror(errno));
}

static void *spare_maker(void *arg)
{
    (void) arg;
    for (;;) {
        pthread_mutex_lock(&spare_lock);
        while (!spare_needed)
            pthread_cond_wait(&spare_wanted, &spare_lock);
        spare_needed = false;
        pthread_mutex_unlock(&spare_lock);
        struct stat st;
        if (stat(spare_path, &st) == 0 && st.st_size == (off_t) SEG_SIZE)
            continue;
        int fd = open(spare_tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            die("could not create \"%s\": %s", spare_tmp, strerror(errno));
        zero_fill(fd, spare_tmp);
        close(fd);
        if (rename(spare_tmp, spare_path) != 0)
            die("could not rename \"%s\": %s", spare_tmp, strerror(errno));
        fsync_dir();
    }
    return NULL;
}

static void want_spare(void)
{
    pthread_mutex_lock(&spare_lock);
    spare_needed = true;
    pthread_cond_signal(&spare_wanted);
    pthread_mutex_unlock(&spare_lock);
}

/* Opens the .partial of the segment holding `lsn`, creating it from the spare (or zero-filling). */
static void open_segment(uint32_t tli, lsn_t lsn)
{
    char path[1024];
    seg_no = lsn / SEG_SIZE;
    seg_tli = tli;
    wal_name(seg_name, sizeof seg_name, tli, seg_no);
    snprintf(path, sizeof path, "%s/%s.partial", opt_dir, seg_name);
    int fd = open(path, O_RDWR);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size != (off_t) SEG_SIZE) {
        /* Only a zero-fill cut short leaves a short file (data is written after the fill is synced). */
        fprintf(stderr, "%s: removing incompletely preallocated %s (%lld bytes)\n", progname, path,
                (long long) st.st_size);
        close(fd);
        if (unlink(path) != 0)
            die("could not remove \"%s\": %s", path, strerror(errno));
        fd = -1;
        errno = ENOENT;
    }
    if (fd < 0 && errno == ENOENT) {
        /* A new segment: take the spare (RENAME_NOREPLACE: never clobber a file that appeared). */
        if (renameat2(AT_FDCWD, spare_path, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
            fsync_dir();
            want_spare();
            fd = open(path, O_RDWR);
        } else {
            want_spare();
            fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
            if (fd >= 0) {
                info("no spare segment ready: zero-filling %s.partial", seg_name);
                zero_fill(fd, path);
                fsync_dir();
            }
        }
    }
    if (fd < 0)
        die("could not open \"%s\": %s", path, strerror(errno));
    if (fstat(fd, &st) != 0)
        die("could not stat \"%s\": %s", path, strerror(errno));
    if (st.st_size != (off_t) SEG_SIZE)
        die("\"%s\" has %lld bytes, should be %u", path, (long long) st.st_size, SEG_SIZE);
    seg_fd = fd;
    info("writing %s.partial", seg_name);
}

static void write_stage(void)
{
    if (stage_len == 0)
        return;
    write_all(seg_fd, stage, stage_len, (off_t) (stage_start % SEG_SIZE), seg_name);
    stage_len = 0;
}

/* Writes what is staged and makes everything received durable. */
static void flush_received(void)
{
    write_stage();
    if (seg_fd >= 0 && flushed < received) {
        if (SYNC_FN(seg_fd) != 0)
            die("could not fdatasync \"%s\": %s", seg_name, strerror(errno));
    }
    flushed = received;
}

/* Closes the open segment; renames it when `received` reached its end. */
static void close_segment(void)
{
    if (seg_fd < 0)
        return;
    flush_received();
    bool full = received == (seg_no + 1) * (lsn_t) SEG_SIZE;
    if (close(seg_fd) != 0)
        die("could not close \"%s\": %s", seg_name, strerror(errno));
    seg_fd = -1;
    if (full) {
        char from[1024], to[1024];
        snprintf(from, sizeof from, "%s/%s.partial", opt_dir, seg_name);
        snprintf(to, sizeof to, "%s/%s", opt_dir, seg_name);
        if (rename(from, to) != 0)
            die("could not rename \"%s\": %s", from, strerror(errno));
        fsync_dir();
        info("finished segment %s", seg_name);
        completed(seg_name);
    }
}

/* After a timeline ended at `end`, zero what the current .partial holds beyond it (a superseded tail). */
static void zero_tail(lsn_t end)
{
    if (seg_fd < 0 || end % SEG_SIZE == 0)
        return;
    static char buf[STAGE_SIZE];
    static const char zeros[STAGE_SIZE];
    bool dirty = false;
    for (off_t off = (off_t) (end % SEG_SIZE); off < (off_t) SEG_SIZE;) {
        size_t want = STAGE_SIZE - (size_t) (off % STAGE_SIZE);
        ssize_t n = pread(seg_fd, buf, want, off);
        if (n <= 0)
            die("could not read \"%s\": %s", seg_name, n < 0 ? strerror(errno) : "short file");
        if (memcmp(buf, zeros, (size_t) n) != 0) {
            write_all(seg_fd, zeros, (size_t) n, off, seg_name);
            dirty = true;
        }
        off += n;
    }
    if (dirty) {
        if (SYNC_FN(seg_fd) != 0)
            die("could not fdatasync \"%s\": %s", seg_name, strerror(errno));
        info("zeroed the superseded tail of %s.partial after " LSN_FMT, seg_name, LSN_ARGS(end));
    }
}

/* The next timeline's segment holding `fork` begins with the ended timeline's bytes up to the fork point,
 * which this node just received and flushed: copy them into the new timeline's .partial (and make them
 * durable) instead of streaming them again from the segment start. After a failover that re-stream was up
 * to 16 MiB per node before the new writer's first commit could be acknowledged. Returns where streaming
 * continues: `fork`, or the segment start when the ended timeline's file is not there to copy from. */
static lsn_t seed_next_timeline(uint32_t old_tli, uint32_t new_tli, lsn_t fork)
{
    size_t len = (size_t) (fork % SEG_SIZE);
    if (len == 0)
        return fork;
    if (received != fork) /* the ended timeline was not received through the fork point: stream it all */
        return seg_start(fork);
    char old_name[32], old_path[1024];
    wal_name(old_name, sizeof old_name, old_tli, fork / SEG_SIZE);
    snprintf(old_path, sizeof old_path, "%s/%s.partial", opt_dir, old_name);
    int in = open(old_path, O_RDONLY);
    if (in < 0)
        return seg_start(fork);
    open_segment(new_tli, fork);
    for (size_t off = 0; off < len;) {
        size_t want = len - off < STAGE_SIZE ? len - off : STAGE_SIZE;
        ssize_t n = pread(in, stage, want, (off_t) off);
        if (n <= 0)
            die("could not read \"%s\": %s", old_path, n < 0 ? strerror(errno) : "short file");
        write_all(seg_fd, stage, (size_t) n, (off_t) off, seg_name);
        off += (size_t) n;
    }
    close(in);
    if (SYNC_FN(seg_fd) != 0)
        die("could not fdatasync \"%s\": %s", seg_name, strerror(errno));
    info("copied %zu bytes of %s.partial up to the fork point " LSN_FMT " into %s.partial", len, old_name,
         LSN_ARGS(fork), seg_name);
    return fork;
}

/* ---- resuming inside a segment ----------------------------------------------------------------------
 * A receiver restarted at a failover or switchover used to stream its newest .partial again from the
 * segment start: up to 16 MiB per node, read from the new writer by all six nodes at the moment its first
 * commit waits for four of them (0.2-0.4 s per node measured on the test bed). It can resume at the last
 * page it wrote instead, when the bytes it holds are exactly those the writer sent: within one boot of the
 * kernel they are (written bytes sit in the page cache even when the process was killed before its
 * fdatasync; one fdatasync here makes them durable). After an OS crash they may not be: unsynced pages can
 * be lost or torn in any order, and a page header found on disk proves nothing about the page before it.
 * So `.receiver-boot` holds the boot in which a receiver completed a segment, and a restart resumes inside
 * a .partial only in that same boot; the newest .partial was then written entirely in this boot (it began
 * after that completed segment). Otherwise, or when anything looks unexpected, it starts at the segment
 * start as before. */

static char boot_path[1024];
static char boot_now[64];
static bool boot_trusted; /* `.receiver-boot` holds this boot */

static void read_boot_ids(void)
{
    snprintf(boot_path, sizeof boot_path, "%s/.receiver-boot", opt_dir);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f == NULL || fgets(boot_now, sizeof boot_now, f) == NULL || strlen(boot_now) < 32) {
        boot_now[0] = '\0'; /* unknown: never trust a .partial's bytes past its fdatasync */
        if (f != NULL)
            fclose(f);
        return;
    }
    fclose(f);
    char held[64] = "";
    FILE *b = fopen(boot_path, "r");
    if (b != NULL) {
        if (fgets(held, sizeof held, b) == NULL)
            held[0] = '\0';
        fclose(b);
    }
    boot_trusted = strcmp(held, boot_now) == 0;
}

/* After a completed segment: record this boot (once), so that later restarts in it may resume mid-file. */
static void trust_this_boot(void)
{
    if (boot_trusted || boot_now[0] == '\0')
        return;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", boot_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("could not create \"%s\": %s", tmp, strerror(errno));
    write_all(fd, boot_now, strlen(boot_now), 0, ".receiver-boot");
    if (SYNC_FN(fd) != 0 || close(fd) != 0)
        die("could not write \"%s\": %s", tmp, strerror(errno));
    if (rename(tmp, boot_path) != 0)
        die("could not rename \"%s\": %s", tmp, strerror(errno));
    fsync_dir();
    boot_trusted = true;
}

/* Where streaming into the .partial of segment `seg` on `tli` may resume: the start of the last page it
 * holds, found by walking page headers from the segment start while each names its own address (the
 * first page's magic is the WAL version's), after making the file durable. `seg` when not trusted. */
static lsn_t resume_point(uint32_t tli, lsn_t seg)
{
    if (!boot_trusted)
        return seg;
    char name[32], path[1024];
    wal_name(name, sizeof name, tli, seg / SEG_SIZE);
    snprintf(path, sizeof path, "%s/%s.partial", opt_dir, name);
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return seg;
    unsigned char first[40];
    lsn_t last = seg;
    if (pread(fd, first, sizeof first, 0) == (ssize_t) sizeof first) {
        /* Long page header: xlp_magic at 0, xlp_pageaddr at 8, xlp_seg_size at 32, xlp_xlog_blcksz at 36. */
        uint16_t magic;
        uint64_t addr;
        uint32_t seg_size, blcksz;
        memcpy(&magic, first, 2);
        memcpy(&addr, first + 8, 8);
        memcpy(&seg_size, first + 32, 4);
        memcpy(&blcksz, first + 36, 4);
        if (addr == seg && seg_size == SEG_SIZE && blcksz >= 1024 && blcksz <= 65536 &&
            (blcksz & (blcksz - 1)) == 0) {
            for (lsn_t off = blcksz; off < SEG_SIZE; off += blcksz) {
                unsigned char h[16];
                uint16_t m;
                uint64_t a;
                if (pread(fd, h, sizeof h, (off_t) off) != (ssize_t) sizeof h)
                    break;
                memcpy(&m, h, 2);
                memcpy(&a, h + 8, 8);
                if (m != magic || a != seg + off)
                    break;
                last = seg + off;
            }
        }
    }
    if (SYNC_FN(fd) != 0)
        die("could not fdatasync \"%s\": %s", path, strerror(errno));
    close(fd);
    return last;
}

/* ---- timelines -------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t tli;
    lsn_t end; /* where this timeline was left for the next one */
} fork_t;

static int history_len;
static fork_t history[MAX_TLIS];

static PGresult *run(const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != want)
        die_result(res, sql);
    return res;
}

/* Writes <tli>.history (fetched from the server) unless held; parses it into `history`. */
static void fetch_history(uint32_t tli, bool parse)
{
    if (tli <= 1)
        return;
    char sql[64], path[1024], tmp[1100];
    snprintf(sql, sizeof sql, "TIMELINE_HISTORY %u", tli);
    PGresult *res = run(sql, PGRES_TUPLES_OK);
    if (PQntuples(res) != 1 || PQnfields(res) != 2)
        die("unexpected TIMELINE_HISTORY result");
    const char *fname = PQgetvalue(res, 0, 0);
    const char *content = PQgetvalue(res, 0, 1);
    char want[64];
    snprintf(want, sizeof want, "%08X.history", tli);
    if (strcmp(fname, want) != 0)
        die("server sent history file %s for timeline %u", fname, tli);
    snprintf(path, sizeof path, "%s/%s", opt_dir, fname);
    if (access(path, F_OK) != 0) {
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            die("could not create \"%s\": %s", tmp, strerror(errno));
        write_all(fd, content, strlen(content), 0, tmp);
        if (fsync(fd) != 0 || close(fd) != 0)
            die("could not fsync \"%s\": %s", tmp, strerror(errno));
        if (rename(tmp, path) != 0)
            die("could not rename \"%s\": %s", tmp, strerror(errno));
        fsync_dir();
        info("wrote %s", fname);
        completed(fname);
    }
    if (parse) {
        history_len = 0;
        const char *p = content;
        while (*p && history_len < MAX_TLIS) {
            unsigned t;
            char lsn[32];
            if (sscanf(p, "%u %31s", &t, lsn) == 2 && parse_lsn(lsn, &history[history_len].end)) {
                history[history_len].tli = t;
                history_len++;
            }
            p = strchr(p, '\n');
            if (p == NULL)
                break;
            p++;
        }
    }
    PQclear(res);
}

/* The fork point where `tli` ended per the server's history, or 0 when it is still current. */
static lsn_t timeline_end(uint32_t tli, uint32_t *next)
{
    for (int i = 0; i < history_len; i++)
        if (history[i].tli == tli) {
            *next = i + 1 < history_len ? history[i + 1].tli : 0;
            return history[i].end;
        }
    return 0;
}

/* ---- where to start --------------------------------------------------------------------------------- */

/* The newest held file decides: a .partial is re-streamed from its start, a full segment is followed by
 * the next one (pg_receivewal's rule). Returns false when the directory holds no WAL. */
static bool local_start(uint32_t *tli, lsn_t *start)
{
    DIR *d = opendir(opt_dir);
    if (d == NULL)
        die("could not open directory \"%s\": %s", opt_dir, strerror(errno));
    bool found = false;
    uint64_t best_seg = 0;
    uint32_t best_tli = 0;
    int best_kind = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint32_t t;
        uint64_t s;
        int kind = parse_wal_name(e->d_name, &t, &s);
        if (kind == 0)
            continue;
        if (!found || s > best_seg || (s == best_seg && (t > best_tli || (t == best_tli && kind == 1)))) {
            best_seg = s, best_tli = t, best_kind = kind;
            found = true;
        }
    }
    closedir(d);
    if (!found)
        return false;
    *tli = best_tli;
    *start = (best_seg + (best_kind == 1 ? 1 : 0)) * (lsn_t) SEG_SIZE;
    return true;
}

/* Moves files of timelines that forked away, lying wholly after their fork point, out of the way. */
static void move_superseded(void)
{
    if (opt_superseded == NULL || history_len == 0)
        return;
    DIR *d = opendir(opt_dir);
    if (d == NULL)
        die("could not open directory \"%s\": %s", opt_dir, strerror(errno));
    struct dirent *e;
    bool moved = false;
    while ((e = readdir(d)) != NULL) {
        uint32_t t, next;
        uint64_t s;
        if (parse_wal_name(e->d_name, &t, &s) == 0)
            continue;
        lsn_t end = timeline_end(t, &next);
        if (end == 0 || (lsn_t) s * SEG_SIZE < end)
            continue;
        char from[1024], to[1200];
        snprintf(from, sizeof from, "%s/%s", opt_dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s.superseded", opt_superseded, e->d_name);
        if (rename(from, to) != 0)
            die("could not move \"%s\" aside: %s", from, strerror(errno));
        fprintf(stderr, "%s: moved %s aside: timeline %u forked at " LSN_FMT " before it\n", progname,
                e->d_name, t, LSN_ARGS(end));
        moved = true;
    }
    closedir(d);
    if (moved)
        fsync_dir();
}

/* ---- streaming -------------------------------------------------------------------------------------- */

static void send_feedback(void)
{
    char msg[1 + 8 + 8 + 8 + 8 + 1];
    int64_t now = now_us();
    msg[0] = 'r';
    put_be64(msg + 1, received);  /* written */
    put_be64(msg + 9, flushed);   /* flushed: what ANY 4 counts */
    put_be64(msg + 17, 0);        /* applied: never (a storage node does not replay) */
    put_be64(msg + 25, (uint64_t) (now - PG_EPOCH_OFFSET_US));
    msg[33] = 0;
    if (PQputCopyData(conn, msg, sizeof msg) <= 0 || PQflush(conn) != 0)
        die_pq("could not send feedback");
    last_status_us = now;
    reported = flushed;
    reply_requested = false;
}

static void on_xlogdata(const char *buf, int len, uint32_t tli)
{
    if (len < 25)
        die("streaming header too small: %d", len);
    lsn_t start = get_be64(buf + 1);
    const char *data = buf + 25;
    size_t n = (size_t) len - 25;
    if (start != received)
        die("got WAL data at " LSN_FMT ", expected " LSN_FMT, LSN_ARGS(start), LSN_ARGS(received));
    while (n > 0) {
        if (seg_fd < 0)
            open_segment(tli, received);
        size_t room = SEG_SIZE - (size_t) (received % SEG_SIZE);
        size_t take = n < room ? n : room;
        if (stage_len > 0 && stage_len + take > STAGE_SIZE)
            write_stage();
        if (take > STAGE_SIZE) {
            write_all(seg_fd, data, take, (off_t) (received % SEG_SIZE), seg_name);
        } else {
            if (stage_len == 0)
                stage_start = received;
            memcpy(stage + stage_len, data, take);
            stage_len += take;
        }
        received += take;
        data += take;
        n -= take;
        if (received % SEG_SIZE == 0)
            close_segment(); /* complete: write, flush, rename, announce */
    }
}

/* Reads the end-of-streaming results: true with the next timeline when the server ended this one. */
static bool end_of_timeline(PGresult *res, uint32_t tli, uint32_t *next_tli, lsn_t *next_start)
{
    bool switched = false;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        if (PQntuples(res) != 1 || PQnfields(res) < 2 || !parse_lsn(PQgetvalue(res, 0, 1), next_start))
            die("unexpected end-of-timeline result");
        *next_tli = (uint32_t) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
        if (*next_tli <= tli || *next_start < received)
            die("server's next timeline %u at " LSN_FMT " does not follow timeline %u at " LSN_FMT,
                *next_tli, LSN_ARGS(*next_start), tli, LSN_ARGS(received));
        switched = true;
        PQclear(res);
        res = PQgetResult(conn);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        die_result(res, "streaming ended");
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    if (switched) {
        fprintf(stderr, "%s: timeline %u ended at " LSN_FMT "; following timeline %u\n", progname, tli,
                LSN_ARGS(received), *next_tli);
        zero_tail(received);
    }
    if (seg_fd >= 0) {
        if (close(seg_fd) != 0)
            die("could not close \"%s\": %s", seg_name, strerror(errno));
        seg_fd = -1;
    }
    return switched;
}

/* Streams one timeline from `start`; returns true with the next timeline when the server ended it. */
static bool stream_timeline(uint32_t tli, lsn_t start, uint32_t *next_tli, lsn_t *next_start)
{
    char sql[256];
    snprintf(sql, sizeof sql, "START_REPLICATION SLOT \"%s\" PHYSICAL " LSN_FMT " TIMELINE %u", opt_slot,
             LSN_ARGS(start), tli);
    /* Not PQexec: it would keep only the last of the results an immediate end of timeline sends. */
    if (!PQsendQuery(conn, sql))
        die_pq("could not send START_REPLICATION");
    PGresult *res = PQgetResult(conn);
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        /* Starting exactly at the timeline's end: the server answers with the next timeline at once. */
        received = flushed = start;
        return end_of_timeline(res, tli, next_tli, next_start);
    }
    if (PQresultStatus(res) != PGRES_COPY_BOTH)
        die_result(res, "could not start replication");
    PQclear(res);
    fprintf(stderr, "%s: streaming from " LSN_FMT " on timeline %u (slot %s)\n", progname, LSN_ARGS(start),
            tli, opt_slot);
    received = flushed = start;
    send_feedback();
    const int64_t interval_us = (int64_t) opt_status_interval * 1000000;
    for (;;) {
        char *buf;
        int r;
        while ((r = PQgetCopyData(conn, &buf, 1)) > 0) {
            if (buf[0] == 'w')
                on_xlogdata(buf, r, tli);
            else if (buf[0] == 'k') {
                if (r < 18)
                    die("keepalive message too small: %d", r);
                if (buf[17])
                    reply_requested = true;
            } else
                die("unexpected streaming message type '%c'", buf[0]);
            PQfreemem(buf);
        }
        if (r == -2)
            die_pq("could not read from the stream");
        if (r == 0 && busy && opt_linger_us > 0 && (flushed < received || stage_len > 0)) {
            /* Group flush: the stream is busy (concurrent commits), so wait once, briefly, for the next
             * send and make both durable with one flush. An idle stream (one committer) never waits. */
            struct pollfd lp = {.fd = PQsocket(conn), .events = POLLIN};
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long) opt_linger_us * 1000};
            busy = false;
            if (ppoll(&lp, 1, &ts, NULL) > 0) {
                if (PQconsumeInput(conn) == 0)
                    die_pq("could not receive data");
                continue;
            }
        }
        /* One write and one fdatasync for everything drained, then one acknowledgement. A segment
         * completed inside the batch was flushed when it was closed, hence `reported`, not `received`. */
        bool had_new = flushed < received || stage_len > 0 || flushed != reported;
        flush_received();
        if (flushed != reported || reply_requested || now_us() - last_status_us >= interval_us)
            send_feedback();
        if (had_new)
            last_flush_us = last_status_us;
        if (r == -1)
            break; /* the server ended the copy: end of this timeline, or shutdown */
        int64_t wait_ms = (interval_us - (now_us() - last_status_us)) / 1000;
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        int pr = poll(&pfd, 1, wait_ms < 1 ? 1 : (int) wait_ms);
        if (pr < 0 && errno != EINTR)
            die("poll failed: %s", strerror(errno));
        if (pr > 0) {
            if (PQconsumeInput(conn) == 0)
                die_pq("could not receive data");
            busy = now_us() - last_flush_us < opt_linger_us;
        }
    }
    /* The server ended the copy: with CopyDone (end of timeline, shutdown), answered with ours, or with
     * an error (e.g. its WAL for this slot was removed), whose text end_of_timeline() prints. */
    flush_received();
    res = PQgetResult(conn);
    if (PQresultStatus(res) == PGRES_COPY_IN) {
        PQclear(res);
        if (PQputCopyEnd(conn, NULL) <= 0 || PQflush(conn) != 0)
            die_pq("could not end the copy");
        res = PQgetResult(conn);
    }
    return end_of_timeline(res, tli, next_tli, next_start);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s --directory DIR --slot SLOT --dbname CONNINFO [--status-interval SECS]\n"
            "          [--superseded-dir DIR] [--linger-us USECS] [--parent-pid PID] [--verbose]\n",
            progname);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"directory", required_argument, NULL, 'D'},
        {"slot", required_argument, NULL, 'S'},
        {"dbname", required_argument, NULL, 'd'},
        {"status-interval", required_argument, NULL, 's'},
        {"superseded-dir", required_argument, NULL, 'x'},
        {"linger-us", required_argument, NULL, 'l'},
        {"parent-pid", required_argument, NULL, 'p'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "D:S:d:s:x:l:p:v", opts, NULL)) != -1) {
        switch (c) {
        case 'D': opt_dir = optarg; break;
        case 'S': opt_slot = optarg; break;
        case 'd': opt_dbname = optarg; break;
        case 's': opt_status_interval = atoi(optarg); break;
        case 'x': opt_superseded = optarg; break;
        case 'l': opt_linger_us = atoi(optarg); break;
        case 'p': opt_parent = (pid_t) atoi(optarg); break;
        case 'v': opt_verbose = true; break;
        default: usage();
        }
    }
    if (opt_dir == NULL || opt_slot == NULL || opt_dbname == NULL || opt_status_interval < 1 ||
        opt_linger_us < 0 || opt_linger_us > 100000)
        usage();
    /* Die with the node: a receiver must never keep acknowledging for a node that is gone. */
    if (opt_parent > 0 && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != opt_parent))
        die("parent process %d is gone", (int) opt_parent);
    dirfd_wal = open(opt_dir, O_RDONLY | O_DIRECTORY);
    if (dirfd_wal < 0)
        die("could not open directory \"%s\": %s", opt_dir, strerror(errno));
    read_boot_ids();
    stage = malloc(STAGE_SIZE);
    if (stage == NULL)
        die("out of memory");
    snprintf(spare_path, sizeof spare_path, "%s/.spare-segment", opt_dir);
    snprintf(spare_tmp, sizeof spare_tmp, "%s.tmp", spare_path);
    pthread_t maker;
    if (pthread_create(&maker, NULL, spare_maker, NULL) != 0)
        die("could not start the spare-segment thread");

    const char *keys[] = {"dbname", "replication", "fallback_application_name", NULL};
    const char *vals[] = {opt_dbname, "true", progname, NULL};
    conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK)
        die_pq("could not connect");

    PGresult *res = run("IDENTIFY_SYSTEM", PGRES_TUPLES_OK);
    if (PQntuples(res) != 1 || PQnfields(res) < 3)
        die("unexpected IDENTIFY_SYSTEM result");
    uint32_t server_tli = (uint32_t) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    lsn_t server_pos;
    if (!parse_lsn(PQgetvalue(res, 0, 2), &server_pos))
        die("unexpected IDENTIFY_SYSTEM position");
    PQclear(res);

    uint32_t tli;
    lsn_t start;
    if (server_tli > 1)
        fetch_history(server_tli, true);
    move_superseded();
    if (!local_start(&tli, &start)) {
        char sql[128];
        snprintf(sql, sizeof sql, "READ_REPLICATION_SLOT \"%s\"", opt_slot);
        res = run(sql, PGRES_TUPLES_OK);
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 1) && parse_lsn(PQgetvalue(res, 0, 1), &start)) {
            tli = PQgetisnull(res, 0, 2) ? server_tli : (uint32_t) strtoul(PQgetvalue(res, 0, 2), NULL, 10);
        } else {
            tli = server_tli;
            start = server_pos;
        }
        PQclear(res);
    }
    start = seg_start(start);
    /* A start past the fork point of its timeline continues on the next one, from the fork's segment. */
    for (;;) {
        uint32_t next;
        lsn_t end = timeline_end(tli, &next);
        if (end == 0 || start <= end)
            break;
        tli = next ? next : server_tli;
        start = seg_start(end);
    }
    lsn_t resume = resume_point(tli, start);
    if (resume != start) {
        uint32_t next;
        lsn_t end = timeline_end(tli, &next);
        if (end != 0 && resume > end)
            resume = end; /* the server then names the next timeline at once; the tail past it is zeroed */
        if (tli == server_tli && resume > server_pos)
            resume = start; /* more than the writer has: never expected, so trust none of it */
    }
    if (resume != start) {
        open_segment(tli, resume);
        fprintf(stderr, "%s: resuming %s.partial at " LSN_FMT " (its last written page), not at its start\n",
                progname, seg_name, LSN_ARGS(resume));
        start = resume;
    }
    fetch_history(tli, false);
    for (;;) {
        uint32_t next_tli;
        lsn_t next_start;
        if (!stream_timeline(tli, start, &next_tli, &next_start))
            break;
        fetch_history(next_tli, false); /* before any file of the new timeline, as pg_receivewal does */
        start = seed_next_timeline(tli, next_tli, next_start);
        tli = next_tli;
    }
    fprintf(stderr, "%s: the server ended streaming at " LSN_FMT "\n", progname, LSN_ARGS(received));
    PQfinish(conn);
    return 0;
}
