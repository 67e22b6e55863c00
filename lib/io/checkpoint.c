/* The checkpoint container: header, section table, payloads, CRCs; save and
 * load to memory and to files. The sections themselves are written and
 * read by the codecs of lib/io/ckpt_sections.c. Layout: docs/formats.md. */
/* flock(): BSD, not POSIX; glibc shows it with _DEFAULT_SOURCE. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include <csp/io.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/ckpt_internal.h"

/* ---- save ------------------------------------------------------------------- */

/* The sections this pruner writes, in registry order. */
typedef struct {
    const csp__ckpt_codec *codec;
    uint64_t offset, len;
} planned;

static size_t plan(const csp_pruner *p, planned *out, uint64_t *total) {
    size_t n = 0;
    for (size_t i = 0; i < csp__ckpt_num_codecs; i++) {
        const csp__ckpt_codec *c = csp__ckpt_codecs[i];
        if (c->present != NULL && !c->present(p))
            continue;
        out[n].codec = c;
        out[n].len = c->size(p);
        n++;
    }
    uint64_t pos = csp__pad8(CSP__CKPT_HEADER_SIZE + (uint64_t)n * CSP__CKPT_ENTRY_SIZE);
    for (size_t i = 0; i < n; i++) {
        out[i].offset = pos;
        pos = csp__pad8(pos + out[i].len);
    }
    *total = pos + CSP__CKPT_TRAILER_SIZE;
    return n;
}

/* Write the whole checkpoint into @p buf (exactly @p total bytes). */
static bool write_all(const csp_pruner *p, const planned *sec, size_t n, uint8_t *buf,
                      uint64_t total) {
    memset(buf, 0, (size_t)total);
    /* Payloads first: the table carries their CRCs. */
    for (size_t i = 0; i < n; i++) {
        csp__wbuf w = {buf + sec[i].offset, sec[i].len, 0, true};
        sec[i].codec->write(p, &w);
        if (!w.ok || w.pos != sec[i].len)
            return false;
    }
    uint8_t *h = buf;
    memcpy(h, CSP__CKPT_MAGIC, 8);
    csp__st_u16(h + 8, CSP__CKPT_MAJOR);
    csp__st_u16(h + 10, CSP__CKPT_MINOR);
    csp__st_u32(h + 12, CSP__CKPT_HEADER_SIZE);
    csp__st_u64(h + 16, total);
    csp__st_u32(h + 24, (uint32_t)n);
    csp__st_u32(h + 28, 0); /* flags */
    csp__st_u32(h + 32, csp_version_number());
    csp__st_u32(h + 44, csp__crc32(0, h, CSP__CKPT_HEADER_SIZE - 4));
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = buf + CSP__CKPT_HEADER_SIZE + i * CSP__CKPT_ENTRY_SIZE;
        csp__st_u32(e, sec[i].codec->tag);
        csp__st_u32(e + 4, sec[i].codec->flags);
        csp__st_u32(e + 8, sec[i].codec->version);
        csp__st_u32(e + 12, csp__crc32(0, buf + sec[i].offset, (size_t)sec[i].len));
        csp__st_u64(e + 16, sec[i].offset);
        csp__st_u64(e + 24, sec[i].len);
    }
    uint8_t *t = buf + total - CSP__CKPT_TRAILER_SIZE;
    csp__st_u32(t, csp__crc32(0, buf, (size_t)(total - CSP__CKPT_TRAILER_SIZE)));
    csp__st_u32(t + 4, CSP__CKPT_END_MAGIC);
    return true;
}

/* Room for the table of one save: the registry is small and fixed. */
#define MAX_PLANNED 64

static csp_status save_size(const csp_pruner *p, planned *sec, size_t *n, uint64_t *total,
                            const char *fn) {
    if (csp__ckpt_num_codecs > MAX_PLANNED)
        return csp__error(p->ctx, CSP_E_INVALID, "%s: too many section codecs", fn);
    *n = plan(p, sec, total);
    if (*total > (uint64_t)INT64_MAX || *total > (uint64_t)SIZE_MAX)
        return csp__error(p->ctx, CSP_E_OVERFLOW, "%s: the checkpoint would not fit in memory", fn);
    return CSP_OK;
}

CSP_API csp_status csp_pruner_save(const csp_pruner *pruner, void *buf, int64_t capacity,
                                   int64_t *size) {
    const char *fn = "csp_pruner_save";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, size, "size");
    planned sec[MAX_PLANNED];
    size_t n;
    uint64_t total;
    csp_status st = save_size(pruner, sec, &n, &total, fn);
    if (st != CSP_OK)
        return st;
    *size = (int64_t)total;
    if (buf == NULL)
        return CSP_OK;
    if (capacity < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: capacity %lld is negative", fn,
                          (long long)capacity);
    if ((uint64_t)capacity < total)
        return csp__error(ctx, CSP_E_BUFFER, "%s: %llu bytes needed, %lld given", fn,
                          (unsigned long long)total, (long long)capacity);
    if (!write_all(pruner, sec, n, buf, total))
        return csp__error(ctx, CSP_E_INVALID, "%s: a section wrote another size than it announced",
                          fn);
    return CSP_OK;
}

/* ---- load: the container ---------------------------------------------------------- */

typedef struct {
    uint32_t header_size;
    uint16_t major, minor;
    uint64_t file_size;
    uint32_t count;
} header_info;

/* Check the header from the first @p avail bytes of a checkpoint whose full
 * size is @p size (avail <= size; avail >= min(size, 4096) so a header of
 * any plausible size is there). Order matters: magic, then the header CRC,
 * then the version, so a flipped bit in the version field reads as
 * corruption and a genuinely newer file as a version mismatch. */
static csp_status check_header(csp_context *ctx, const uint8_t *b, uint64_t avail, uint64_t size,
                               header_info *h, const char *fn) {
    if (size >= 8 && memcmp(b, CSP__CKPT_MAGIC, 8) != 0)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: not a libcsp checkpoint (bad magic)", fn);
    if (size < CSP__CKPT_HEADER_SIZE + CSP__CKPT_TRAILER_SIZE)
        return csp__error(ctx, CSP_E_CORRUPT,
                          "%s: truncated: %llu bytes, a checkpoint has at least %u", fn,
                          (unsigned long long)size,
                          CSP__CKPT_HEADER_SIZE + CSP__CKPT_TRAILER_SIZE);
    h->major = csp__ld_u16(b + 8);
    h->minor = csp__ld_u16(b + 10);
    h->header_size = csp__ld_u32(b + 12);
    if (h->header_size < CSP__CKPT_HEADER_SIZE || h->header_size > 4096 ||
        h->header_size % 8 != 0)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: header size %lu is not valid", fn,
                          (unsigned long)h->header_size);
    if (h->header_size > avail)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: truncated inside the header", fn);
    uint32_t crc = csp__ld_u32(b + h->header_size - 4);
    if (crc != csp__crc32(0, b, h->header_size - 4))
        return csp__error(ctx, CSP_E_CORRUPT, "%s: header CRC mismatch", fn);
    if (h->major != CSP__CKPT_MAJOR)
        return csp__error(ctx, CSP_E_VERSION,
                          "%s: checkpoint format %u.%u; this library (%s) reads format %d.x", fn,
                          (unsigned)h->major, (unsigned)h->minor, csp_version_string(),
                          CSP__CKPT_MAJOR);
    uint32_t flags = csp__ld_u32(b + 28);
    if (flags != 0)
        return csp__error(ctx, CSP_E_VERSION,
                          "%s: header flags 0x%lx are unknown to this library (%s)", fn,
                          (unsigned long)flags, csp_version_string());
    /* Reserved in every minor: new header fields go in a longer header. */
    for (int k = 36; k < 44; k++)
        if (b[k] != 0)
            return csp__error(ctx, CSP_E_CORRUPT, "%s: reserved header byte %d is not zero", fn,
                              k);
    h->file_size = csp__ld_u64(b + 16);
    h->count = csp__ld_u32(b + 24);
    if (h->file_size > size)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: truncated: %llu bytes of %llu", fn,
                          (unsigned long long)size, (unsigned long long)h->file_size);
    if (h->file_size < size)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: %llu bytes after the end of the checkpoint", fn,
                          (unsigned long long)(size - h->file_size));
    if (h->count > CSP__CKPT_MAX_SECTIONS ||
        h->header_size + (uint64_t)h->count * CSP__CKPT_ENTRY_SIZE + CSP__CKPT_TRAILER_SIZE >
            size)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: section count %lu does not fit", fn,
                          (unsigned long)h->count);
    return CSP_OK;
}

/* One entry of the file's section table, checked. */
typedef struct {
    uint32_t tag, flags, version, crc;
    uint64_t offset, len;
} entry;

/* The section table's layout, from the header and the table alone (@p b
 * holds at least header_size + 40 * count bytes): sections follow the
 * table, each at the next multiple of 8, in table order, and the last one
 * ends (padded) where the trailer starts, so the layout is canonical and
 * every byte is covered. Fills @p table. */
static csp_status check_layout(csp_context *ctx, const uint8_t *b, uint64_t size,
                               const header_info *h, entry *table, const char *fn) {
    uint64_t pos = csp__pad8(h->header_size + (uint64_t)h->count * CSP__CKPT_ENTRY_SIZE);
    uint64_t end = size - CSP__CKPT_TRAILER_SIZE;
    for (uint32_t i = 0; i < h->count; i++) {
        const uint8_t *e = b + h->header_size + (uint64_t)i * CSP__CKPT_ENTRY_SIZE;
        entry *x = &table[i];
        char tag[5];
        x->tag = csp__ld_u32(e);
        x->flags = csp__ld_u32(e + 4);
        x->version = csp__ld_u32(e + 8);
        x->crc = csp__ld_u32(e + 12);
        x->offset = csp__ld_u64(e + 16);
        x->len = csp__ld_u64(e + 24);
        csp__tag_text(x->tag, tag);
        if (pos > end || x->offset != pos || x->len > end - pos ||
            csp__pad8(x->offset + x->len) > end)
            return csp__error(ctx, CSP_E_CORRUPT, "%s: section %s: bad offset or length", fn, tag);
        for (int k = 32; k < 40; k++)
            if (e[k] != 0)
                return csp__error(ctx, CSP_E_CORRUPT,
                                  "%s: section %s: reserved table byte %d is not zero", fn, tag,
                                  k);
        pos = csp__pad8(x->offset + x->len);
    }
    if (pos != end)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: %llu stray bytes after the last section", fn,
                          (unsigned long long)(end - pos));
    return CSP_OK;
}

static csp_status check_container(csp_context *ctx, const uint8_t *b, uint64_t size,
                                  header_info *h, entry *table, const char *fn) {
    csp_status st = check_header(ctx, b, size, size, h, fn);
    if (st != CSP_OK)
        return st;
    const uint8_t *t = b + size - CSP__CKPT_TRAILER_SIZE;
    if (csp__ld_u32(t + 4) != CSP__CKPT_END_MAGIC)
        return csp__error(ctx, CSP_E_CORRUPT, "%s: bad end marker", fn);
    if (csp__ld_u32(t) != csp__crc32(0, b, (size_t)(size - CSP__CKPT_TRAILER_SIZE)))
        return csp__error(ctx, CSP_E_CORRUPT, "%s: file CRC mismatch", fn);
    st = check_layout(ctx, b, size, h, table, fn);
    if (st != CSP_OK)
        return st;
    for (uint32_t i = 0; i < h->count; i++) {
        const entry *x = &table[i];
        char tag[5];
        csp__tag_text(x->tag, tag);
        if (x->crc != csp__crc32(0, b + x->offset, (size_t)x->len))
            return csp__error(ctx, CSP_E_CORRUPT, "%s: section %s: CRC mismatch", fn, tag);
        for (uint32_t j = 0; j < i; j++)
            if (table[j].tag == x->tag)
                return csp__error(ctx, CSP_E_CORRUPT, "%s: section %s appears twice", fn, tag);
        if (x->version == 0)
            return csp__error(ctx, CSP_E_CORRUPT, "%s: section %s: version 0", fn, tag);
        if ((x->flags & ~CSP__SECTION_KNOWN_FLAGS) != 0)
            return csp__error(ctx, CSP_E_VERSION,
                              "%s: section %s has flags 0x%lx unknown to this library (%s)", fn,
                              tag, (unsigned long)x->flags, csp_version_string());
        for (uint64_t k = x->offset + x->len; k < csp__pad8(x->offset + x->len); k++)
            if (b[k] != 0)
                return csp__error(ctx, CSP_E_CORRUPT, "%s: section %s: non-zero padding", fn, tag);
    }
    for (uint32_t i = 0; i < h->count; i++) {
        const csp__ckpt_codec *c = csp__ckpt_codec_of(table[i].tag);
        bool required = (table[i].flags & CSP__SECTION_REQUIRED) != 0;
        char tag[5];
        csp__tag_text(table[i].tag, tag);
        if (c == NULL && required)
            return csp__error(ctx, CSP_E_VERSION,
                              "%s: required section %s is unknown to this library (%s): the "
                              "checkpoint comes from a newer libcsp",
                              fn, tag, csp_version_string());
        if (c != NULL && table[i].version > c->version && required)
            return csp__error(ctx, CSP_E_VERSION,
                              "%s: section %s version %lu is newer than this library (%s) reads "
                              "(%lu)",
                              fn, tag, (unsigned long)table[i].version, csp_version_string(),
                              (unsigned long)c->version);
        /* A section this library reads carries the flags it writes for it
         * (so a file saves back to its own bytes). */
        if (c != NULL && table[i].version <= c->version && table[i].flags != c->flags)
            return csp__error(ctx, CSP_E_CORRUPT,
                              "%s: section %s is marked %s; libcsp marks it %s", fn, tag,
                              required ? "required" : "optional",
                              required ? "optional" : "required");
    }
    return CSP_OK;
}

static csp_status pruner_load_unguarded(csp_pruner *pruner, const void *buf, int64_t size) {
    const char *fn = "csp_pruner_load";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, buf, "buf");
    if (size < 0)
        return csp__error(ctx, CSP_E_RANGE, "%s: size %lld is negative", fn, (long long)size);
    const uint8_t *b = buf;
    header_info h;
    entry table[CSP__CKPT_MAX_SECTIONS];
    csp_status st = check_container(ctx, b, (uint64_t)size, &h, table, fn);
    if (st != CSP_OK)
        return st;

    /* Check every section the library knows, in registry order; then, only
     * if all passed, commit them all. */
    csp__ckpt_load loads[MAX_PLANNED];
    bool found[MAX_PLANNED] = {false};
    size_t nc = csp__ckpt_num_codecs < MAX_PLANNED ? csp__ckpt_num_codecs : MAX_PLANNED;
    memset(loads, 0, sizeof loads);
    for (size_t i = 0; i < nc && st == CSP_OK; i++) {
        const csp__ckpt_codec *c = csp__ckpt_codecs[i];
        csp__ckpt_load *l = &loads[i];
        l->pruner = pruner;
        l->peers = loads;
        const entry *x = NULL;
        for (uint32_t k = 0; k < h.count && x == NULL; k++)
            if (table[k].tag == c->tag && table[k].version <= c->version)
                x = &table[k];
        if (x != NULL) {
            l->payload = b + x->offset;
            l->len = x->len;
            l->version = x->version;
            found[i] = true;
            st = c->check(l);
        } else if (c->absent_check != NULL) {
            st = c->absent_check(l);
        } else if (c->flags & CSP__SECTION_REQUIRED) {
            char tag[5];
            csp__tag_text(c->tag, tag);
            st = csp__error(ctx, CSP_E_CORRUPT, "%s: section %s (%s) is missing", fn, tag,
                            c->name);
        }
    }
    if (st == CSP_OK) {
        for (size_t i = 0; i < nc; i++) {
            const csp__ckpt_codec *c = csp__ckpt_codecs[i];
            if (found[i])
                c->commit(&loads[i]);
            else if (c->absent_commit != NULL)
                c->absent_commit(&loads[i]);
        }
    }
    for (size_t i = 0; i < nc; i++)
        if (csp__ckpt_codecs[i]->release != NULL && loads[i].pruner != NULL)
            csp__ckpt_codecs[i]->release(&loads[i]);
    return st;
}

CSP_API csp_status csp_pruner_load(csp_pruner *pruner, const void *buf, int64_t size) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_load", pruner_load_unguarded(pruner, buf, size));
}

/* ---- files ------------------------------------------------------------------------ */

static csp_status io_error(csp_context *ctx, const char *fn, const char *what, const char *path,
                           int err) {
    char text[256];
    if (strerror_r(err, text, sizeof text) != 0)
        snprintf(text, sizeof text, "error %d", err);
    return csp__error(ctx, CSP_E_IO, "%s: %s '%s': %s", fn, what, path, text);
}

/* Write all @p n bytes, retrying short writes and EINTR. */
static int write_fully(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read up to @p n bytes at offset @p off; *got < n when the file ended. */
static int read_at(int fd, uint8_t *p, size_t n, uint64_t off, size_t *got) {
    *got = 0;
    while (n > 0) {
        ssize_t k = pread(fd, p, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (k == 0)
            return 0;
        p += k;
        n -= (size_t)k;
        off += (uint64_t)k;
        *got += (size_t)k;
    }
    return 0;
}

/* fsync the directory holding @p path, so the rename itself is durable.
 * Best effort: some file systems refuse fsync on directories. */
static void sync_dir(char *path) {
    char *slash = strrchr(path, '/');
    const char *dir = ".";
    if (slash == path)
        dir = "/";
    else if (slash != NULL) {
        *slash = '\0';
        dir = path;
    }
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    if (slash != NULL && slash != path)
        *slash = '/';
}

static int lock_fd(int fd) {
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR)
            return errno;
    }
    return 0;
}

/* Does @p path (not followed) still name the file open at @p fd? */
static bool names_fd(const char *path, int fd) {
    struct stat a, b;
    return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

/* Is the file at @p fd what an interrupted save leaves: a regular file of
 * ours holding a prefix of a checkpoint (possibly empty)? */
static bool is_our_temp(int fd) {
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid())
        return false;
    uint8_t head[8];
    size_t want = sb.st_size < 8 ? (size_t)sb.st_size : 8, got = 0;
    if (read_at(fd, head, want, 0, &got) != 0 || got != want)
        return false;
    return memcmp(head, CSP__CKPT_MAGIC, want) == 0;
}

/* Create and lock the temporary file @p tmp (docs/formats.md, "Saving to
 * a file"). It has one fixed name per target, and a save holds an
 * exclusive flock() on it from its creation until it is renamed over the
 * target. An existing one is either a save in progress (we wait for its
 * lock, after which it is gone) or what a killed save left (its lock is
 * free): that one is removed, while we hold its lock and the name still
 * names it, and only when it looks like an interrupted save. Returns the
 * descriptor, or -1 with the error set in *st. */
static int create_temp(csp_context *ctx, const char *fn, const char *tmp, mode_t mode,
                       csp_status *st) {
    for (int attempt = 0; attempt < 64; attempt++) {
        int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd >= 0) {
            int err = lock_fd(fd);
            if (err != 0) {
                *st = io_error(ctx, fn, "cannot lock the temporary file", tmp, err);
                if (names_fd(tmp, fd))
                    (void)unlink(tmp);
                close(fd);
                return -1;
            }
            if (names_fd(tmp, fd))
                return fd;
            close(fd); /* another save removed it before we locked it: again */
            continue;
        }
        if (errno != EEXIST) {
            *st = io_error(ctx, fn, "cannot create the temporary file", tmp, errno);
            return -1;
        }
        fd = open(tmp, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT)
                continue; /* renamed or removed meanwhile */
            if (errno == ELOOP) {
                *st = csp__error(ctx, CSP_E_IO,
                                 "%s: '%s' exists and is not a libcsp temporary file (a symbolic "
                                 "link); remove it",
                                 fn, tmp);
                return -1;
            }
            *st = io_error(ctx, fn, "cannot open the existing temporary file", tmp, errno);
            return -1;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            *st = csp__error(ctx, CSP_E_IO,
                             "%s: '%s' exists and is not a libcsp temporary file (not a regular "
                             "file); remove it",
                             fn, tmp);
            return -1;
        }
        int err = lock_fd(fd); /* waits for a save in progress */
        if (err != 0) {
            close(fd);
            *st = io_error(ctx, fn, "cannot lock the existing temporary file", tmp, err);
            return -1;
        }
        if (!names_fd(tmp, fd)) {
            close(fd); /* that save finished (or gave up): the name is free or new */
            continue;
        }
        if (!is_our_temp(fd)) {
            close(fd);
            *st = csp__error(ctx, CSP_E_IO,
                             "%s: '%s' exists and is not a libcsp temporary file; remove it", fn,
                             tmp);
            return -1;
        }
        (void)unlink(tmp); /* left by a save that died: its lock was free */
        close(fd);
    }
    *st = csp__error(ctx, CSP_E_IO, "%s: could not take the temporary file '%s' (64 attempts)",
                     fn, tmp);
    return -1;
}

/* The file a save to @p path writes: @p path with its symbolic links
 * followed (at most 40), which need not exist yet. Returns a block of the
 * context's allocator holding that path, then its temporary name
 * ("<target>" CSP__CKPT_TEMP_SUFFIX) at *tmp; NULL with *st set on error. */
static char *save_target(csp_context *ctx, const char *fn, const char *path, char **tmp,
                         csp_status *st) {
    size_t suffix = sizeof CSP__CKPT_TEMP_SUFFIX; /* with its NUL */
    char *cur = NULL;
    const char *at = path;
    for (int hops = 0;; hops++) {
        struct stat sb;
        if (lstat(at, &sb) != 0 || !S_ISLNK(sb.st_mode))
            break; /* a file, something else, or nothing yet: the target */
        if (hops == 40) {
            *st = io_error(ctx, fn, "cannot follow the symbolic links of", path, ELOOP);
            csp__free(ctx, cur);
            return NULL;
        }
        size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 256;
        char *link = NULL;
        ssize_t n;
        for (;;) {
            link = csp__malloc(ctx, cap);
            if (link == NULL)
                break;
            n = readlink(at, link, cap);
            if (n < 0 || (size_t)n < cap)
                break;
            csp__free(ctx, link);
            link = NULL;
            if (cap > ((size_t)1 << 20))
                break;
            cap *= 2;
        }
        if (link == NULL) {
            csp__free(ctx, cur);
            *st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
            return NULL;
        }
        if (n < 0) {
            *st = io_error(ctx, fn, "cannot read the symbolic link", at, errno);
            csp__free(ctx, link);
            csp__free(ctx, cur);
            return NULL;
        }
        link[n] = '\0';
        /* A relative link is relative to the directory holding it. */
        const char *slash = link[0] == '/' ? NULL : strrchr(at, '/');
        size_t dir = slash == NULL ? 0 : (size_t)(slash - at) + 1;
        char *next = csp__malloc(ctx, dir + (size_t)n + 1);
        if (next == NULL) {
            csp__free(ctx, link);
            csp__free(ctx, cur);
            *st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
            return NULL;
        }
        memcpy(next, at, dir);
        memcpy(next + dir, link, (size_t)n + 1);
        csp__free(ctx, link);
        csp__free(ctx, cur);
        cur = next;
        at = cur;
    }
    size_t len = strlen(at);
    char *out = len > SIZE_MAX / 2 - suffix ? NULL : csp__malloc(ctx, 2 * len + 1 + suffix);
    if (out == NULL) {
        csp__free(ctx, cur);
        *st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory", fn);
        return NULL;
    }
    memcpy(out, at, len + 1);
    *tmp = out + len + 1;
    memcpy(*tmp, at, len);
    memcpy(*tmp + len, CSP__CKPT_TEMP_SUFFIX, suffix);
    csp__free(ctx, cur);
    return out;
}

CSP_API csp_status csp_pruner_save_file(const csp_pruner *pruner, const char *path) {
    const char *fn = "csp_pruner_save_file";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, path, "path");
    if (path[0] == '\0')
        return csp__error(ctx, CSP_E_INVALID, "%s: the path is empty", fn);
    planned sec[MAX_PLANNED];
    size_t n;
    uint64_t total;
    csp_status st = save_size(pruner, sec, &n, &total, fn);
    if (st != CSP_OK)
        return st;
    uint8_t *buf = csp__malloc(ctx, (size_t)total);
    if (buf == NULL)
        return csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for %llu bytes", fn,
                          (unsigned long long)total);
    if (!write_all(pruner, sec, n, buf, total)) {
        csp__free(ctx, buf);
        return csp__error(ctx, CSP_E_INVALID, "%s: a section wrote another size than it announced",
                          fn);
    }
    char *tmp = NULL;
    char *target = save_target(ctx, fn, path, &tmp, &st);
    if (target == NULL) {
        csp__free(ctx, buf);
        return st;
    }
    /* An existing target keeps its mode (and owner, where the system lets
     * us): the temporary starts private and gets them before any byte is
     * written. A new one gets 0666 less the umask. */
    struct stat tsb;
    bool exists = lstat(target, &tsb) == 0;
    if (exists && !S_ISREG(tsb.st_mode)) {
        st = csp__error(ctx, CSP_E_IO, "%s: '%s' exists and is not a regular file", fn, target);
    } else {
        int fd = create_temp(ctx, fn, tmp, exists ? 0600 : 0666, &st);
        if (fd >= 0) {
            if (exists) {
                if ((tsb.st_uid != geteuid() || tsb.st_gid != getegid()) &&
                    fchown(fd, tsb.st_uid, tsb.st_gid) != 0)
                    (void)!fchown(fd, (uid_t)-1, tsb.st_gid); /* the group alone, if allowed */
                if (fchmod(fd, tsb.st_mode & 07777) != 0)
                    st = io_error(ctx, fn, "cannot give the temporary file the mode of", target,
                                  errno);
            }
            int err = st == CSP_OK ? write_fully(fd, buf, (size_t)total) : 0;
            if (err != 0)
                st = io_error(ctx, fn, "cannot write", tmp, err);
            else if (st == CSP_OK && fsync(fd) != 0)
                st = io_error(ctx, fn, "cannot flush", tmp, errno);
            /* Renamed while still locked, so no other save takes it for a
             * stale one. */
            if (st == CSP_OK && rename(tmp, target) != 0)
                st = io_error(ctx, fn, "cannot rename the temporary file onto", target, errno);
            if (st != CSP_OK && names_fd(tmp, fd))
                (void)unlink(tmp);
            close(fd);
            if (st == CSP_OK)
                sync_dir(target);
        }
    }
    csp__free(ctx, buf);
    csp__free(ctx, target);
    return st;
}

/* The largest checkpoint file csp_pruner_load_file() reads into memory for
 * @p p: twice the size of @p p's own checkpoint (room for sections of newer
 * libraries) plus 16 MiB (docs/formats.md). */
static uint64_t load_limit(const csp_pruner *p) {
    planned sec[MAX_PLANNED];
    uint64_t own = 0;
    if (csp__ckpt_num_codecs <= MAX_PLANNED)
        (void)plan(p, sec, &own);
    uint64_t slack = (uint64_t)CSP__CKPT_FILE_SLACK;
    return own > (UINT64_MAX - slack) / 2 ? UINT64_MAX : 2 * own + slack;
}

static csp_status pruner_load_file_unguarded(csp_pruner *pruner, const char *path) {
    const char *fn = "csp_pruner_load_file";
    if (pruner == NULL)
        return CSP_E_NULL;
    csp_context *ctx = pruner->ctx;
    CSP_CHECK_NULL(ctx, path, "path");
    /* O_NONBLOCK: opening a FIFO (or a device) must not wait; only a
     * regular file is read, and for those the flag changes nothing. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return io_error(ctx, fn, "cannot open", path, errno);
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        csp_status st = io_error(ctx, fn, "cannot stat", path, errno);
        close(fd);
        return st;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return csp__error(ctx, CSP_E_IO, "%s: '%s' is not a regular file", fn, path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl == -1 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == -1) {
        csp_status st = io_error(ctx, fn, "cannot read", path, errno);
        close(fd);
        return st;
    }
    uint64_t size = (uint64_t)sb.st_size;
    /* The header, the table, the trailer and the size first: a wrong or
     * huge file is refused before its body is read into memory. */
    uint8_t head[4096 + CSP__CKPT_MAX_SECTIONS * CSP__CKPT_ENTRY_SIZE];
    entry table[CSP__CKPT_MAX_SECTIONS];
    size_t want = size < sizeof head ? (size_t)size : sizeof head, got = 0;
    int err = read_at(fd, head, want, 0, &got);
    csp_status st = CSP_OK;
    header_info h;
    if (err != 0)
        st = io_error(ctx, fn, "cannot read", path, err);
    else if (got != want)
        st = csp__error(ctx, CSP_E_IO, "%s: '%s' shrank while being read", fn, path);
    else
        st = check_header(ctx, head, got, size, &h, fn);
    if (st == CSP_OK) {
        uint8_t trailer[CSP__CKPT_TRAILER_SIZE];
        size_t tg = 0;
        err = read_at(fd, trailer, sizeof trailer, size - sizeof trailer, &tg);
        if (err != 0)
            st = io_error(ctx, fn, "cannot read", path, err);
        else if (tg != sizeof trailer)
            st = csp__error(ctx, CSP_E_IO, "%s: '%s' shrank while being read", fn, path);
        else if (csp__ld_u32(trailer + 4) != CSP__CKPT_END_MAGIC)
            st = csp__error(ctx, CSP_E_CORRUPT, "%s: bad end marker", fn);
    }
    if (st == CSP_OK)
        st = check_layout(ctx, head, size, &h, table, fn);
    uint64_t limit = load_limit(pruner);
    if (st == CSP_OK && size > limit)
        st = csp__error(ctx, CSP_E_CORRUPT,
                        "%s: '%s' declares %llu bytes, more than a checkpoint of this pruner can "
                        "be (limit %llu: twice its own %llu-byte checkpoint plus 16 MiB); not "
                        "read",
                        fn, path, (unsigned long long)size, (unsigned long long)limit,
                        (unsigned long long)((limit - CSP__CKPT_FILE_SLACK) / 2));
    if (st == CSP_OK && (size > (uint64_t)INT64_MAX || size > (uint64_t)SIZE_MAX))
        st = csp__error(ctx, CSP_E_OVERFLOW, "%s: '%s' is too large", fn, path);
    uint8_t *buf = NULL;
    if (st == CSP_OK) {
        buf = csp__malloc(ctx, (size_t)size);
        if (buf == NULL)
            st = csp__error(ctx, CSP_E_NOMEM, "%s: out of memory for %llu bytes", fn,
                            (unsigned long long)size);
    }
    if (st == CSP_OK) {
        memcpy(buf, head, got);
        err = read_at(fd, buf + got, (size_t)(size - got), got, &want);
        if (err != 0)
            st = io_error(ctx, fn, "cannot read", path, err);
        else if (want != (size_t)(size - got))
            st = csp__error(ctx, CSP_E_IO, "%s: '%s' shrank while being read", fn, path);
    }
    close(fd);
    if (st == CSP_OK)
        st = pruner_load_unguarded(pruner, buf, (int64_t)size);
    csp__free(ctx, buf);
    return st;
}

CSP_API csp_status csp_pruner_load_file(csp_pruner *pruner, const char *path) {
    if (pruner == NULL)
        return CSP_E_NULL;
    CSP__GUARDED(pruner, "csp_pruner_load_file", pruner_load_file_unguarded(pruner, path));
}
