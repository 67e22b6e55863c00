/*
 * Checkpoint internals: the container (lib/io/checkpoint.c) and the registry
 * of section codecs (lib/io/ckpt_sections.c). Internal.
 *
 * The container knows nothing of the pruner: it writes a header, a table of
 * tagged sections and their payloads with CRCs, and on load checks all of
 * that before handing each payload to the codec registered for its tag. The
 * codecs know only the pruner's serialisable state
 * (lib/prune/pruner_internal.h). docs/formats.md has the byte layout.
 *
 * ADDING A SECTION is a local change (the CSP state's sections of
 * lib/io/ckpt_cs.c were added this way):
 *   1. pick a new tag (four ASCII bytes, e.g. CSP__TAG('X','Y','Z','W')) and
 *      write its codec in a file of its own, lib/io/ckpt_<name>.c, with the
 *      functions of csp__ckpt_codec below (present/size/write,
 *      check/commit/release, and absent_check/absent_commit for files
 *      that lack it);
 *   2. declare the codec object in this header and add one line,
 *      `&csp__ckpt_codec_<name>,`, to csp__ckpt_codecs[] in
 *      lib/io/ckpt_sections.c (codecs are written and checked in table
 *      order, so put it after the sections it depends on);
 *   3. add the file to lib/meson.build and the layout to docs/formats.md;
 *   4. test: round trip, every bit flip / truncation (the existing loops
 *      cover a new section automatically), a mismatch of its own.
 * Neither the format version nor the other codecs change. Mark the section
 * CSP__SECTION_REQUIRED when a reader that ignored it would resume
 * differently (then older libraries refuse the file with CSP_E_VERSION
 * instead of resuming wrongly); leave it optional when ignoring it is
 * harmless (diagnostics, statistics). When a section's own layout changes,
 * bump its `version` and keep reading the older ones.
 */
#ifndef CSP_IO_CKPT_INTERNAL_H
#define CSP_IO_CKPT_INTERNAL_H

#include "io/bytes.h"
#include "prune/pruner_internal.h"

/* ---- container constants (docs/formats.md) -------------------------------- */

#define CSP__CKPT_MAGIC "\x89" "CSPCKPT"     /* 8 bytes */
#define CSP__CKPT_MAJOR 1                    /* incompatible layout changes */
#define CSP__CKPT_MINOR 0                    /* compatible additions */
#define CSP__CKPT_HEADER_SIZE 48u            /* header of major 1, minor 0 */
#define CSP__CKPT_ENTRY_SIZE 40u             /* one section-table entry */
#define CSP__CKPT_TRAILER_SIZE 8u            /* file CRC + end magic */
#define CSP__CKPT_END_MAGIC CSP__TAG('C', 'S', 'P', 'E')
#define CSP__CKPT_MAX_SECTIONS 256u          /* sanity bound on the table */
/* csp_pruner_save_file(): the temporary file is the target's name with this
 * suffix, in the target's directory (docs/formats.md, "Saving to a file"). */
#define CSP__CKPT_TEMP_SUFFIX ".csp-tmp"
/* csp_pruner_load_file() reads at most twice the pruner's own checkpoint
 * size plus this many bytes (docs/formats.md, "Loading a file"). */
#define CSP__CKPT_FILE_SLACK ((uint64_t)16 << 20)

/* Section flags (entry field `flags`). */
#define CSP__SECTION_REQUIRED 1u /* readers that do not know the tag must refuse */
#define CSP__SECTION_KNOWN_FLAGS CSP__SECTION_REQUIRED

/* ---- section codecs ------------------------------------------------------------ */

/* What a codec sees of a load: the pruner (not yet changed), the payload of
 * its section (NULL/0 when absent), its version, and `stage`, a slot where
 * check() may keep memory (from the context's allocator) for commit(); the
 * container frees it with release() whatever happens. */
typedef struct csp__ckpt_load {
    csp_pruner *pruner;
    const uint8_t *payload;
    uint64_t len;
    uint32_t version;
    void *stage;
    /* The loads of every codec of this load, in registry order: see
     * csp__ckpt_peer(). */
    const struct csp__ckpt_load *peers;
} csp__ckpt_load;

typedef struct csp__ckpt_codec {
    uint32_t tag;     /* CSP__TAG(...) */
    uint32_t version; /* layout version written, and the newest one read */
    uint32_t flags;   /* CSP__SECTION_* written into the entry */
    /* Is there a section to write? NULL: always. An optional section with
     * nothing to say (no activation sensing, say) answers false. */
    bool (*present)(const csp_pruner *p);
    /* Payload size in bytes (0 is a valid, empty payload). Cannot fail:
     * sizes that overflow were refused when the state was created. */
    uint64_t (*size)(const csp_pruner *p);
    /* Write exactly size(p) bytes. */
    void (*write)(const csp_pruner *p, csp__wbuf *w);
    /* Validate the payload against the pruner: every field, cross-checks
     * with the pruner's configuration; may stage data in l->stage. Changes
     * nothing in the pruner. Errors go through csp__error() with a message
     * naming what differs: CSP_E_CORRUPT (inconsistent payload), CSP_E_SHAPE,
     * CSP_E_DTYPE, CSP_E_STATE (configuration differs), CSP_E_NOMEM. */
    csp_status (*check)(csp__ckpt_load *l);
    /* Apply a checked payload. Must not fail. */
    void (*commit)(csp__ckpt_load *l);
    /* The file has no such section (an older writer, or present() was false):
     * absent_check may refuse (NULL: a required codec refuses with
     * CSP_E_CORRUPT, an optional one accepts); absent_commit resets the
     * state the section would have set (NULL: nothing). */
    csp_status (*absent_check)(csp__ckpt_load *l);
    void (*absent_commit)(csp__ckpt_load *l);
    /* Free l->stage (NULL: nothing was staged). */
    void (*release)(csp__ckpt_load *l);
    const char *name; /* for messages, e.g. "masks" */
} csp__ckpt_codec;

/* The registry, in write and check order. */
extern const csp__ckpt_codec *const csp__ckpt_codecs[];
extern const size_t csp__ckpt_num_codecs;

/* The codecs: the pruner's (lib/io/ckpt_sections.c), the CSP state's
 * (lib/io/ckpt_cs.c). */
extern const csp__ckpt_codec csp__ckpt_codec_prun, csp__ckpt_codec_tnsr, csp__ckpt_codec_mask;
extern const csp__ckpt_codec csp__ckpt_codec_cspc, csp__ckpt_codec_sens, csp__ckpt_codec_warm,
    csp__ckpt_codec_stat;
/* The adaptive schedule's (lib/io/ckpt_adapt.c). */
extern const csp__ckpt_codec csp__ckpt_codec_adpt;

/* The codec of @p tag, or NULL. */
const csp__ckpt_codec *csp__ckpt_codec_of(uint32_t tag);

/* What codec @p c sees of the load @p l belongs to (payload NULL when the
 * file lacks its section). Sections are checked in registry order, so a
 * codec may cross-check the payload of one registered before it, which
 * has then passed its own check(). */
const csp__ckpt_load *csp__ckpt_peer(const csp__ckpt_load *l, const csp__ckpt_codec *c);

#endif
