// sslc scan: know a dataset before a long run. Decodes every image (in
// parallel, with progress), prints what training would meet, and can save
// the usable images as a manifest (data/scan.h does the work).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/scan.h"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/fs.h"
#include "src/core/log.h"
#include "src/core/progress.h"
#include "src/core/threads.h"

typedef struct scan_progress {
    sslc_progress bar;
    const char *phase;
    double last;
    int64_t printed; // plain mode: the last multiple of bar.every shown
} scan_progress;

// Called from one worker thread: a bar redrawn at most ten times a second
// on a terminal, a line every tenth of the work otherwise.
static void on_progress(void *ctx, const char *phase, int64_t done, int64_t total)
{
    scan_progress *p = ctx;
    if (!p->phase || strcmp(p->phase, phase)) {
        sslc_progress_break(&p->bar);
        sslc_progress_init(&p->bar, stderr, total >= 10 ? total / 10 : 1, total, 0);
        p->phase = phase;
        p->last = 0;
        p->printed = 0;
    }
    if (p->bar.tty) {
        double now = sslc_now();
        if (done < total && now - p->last < 0.1)
            return;
        p->last = now;
        sslc_progress_update(&p->bar, done, phase);
    } else {
        // Workers report irregular counts; show each multiple of every once.
        int64_t at = done == total ? total : done - done % p->bar.every;
        if (at > p->printed) {
            p->printed = at;
            sslc_progress_update(&p->bar, at, phase);
        }
    }
}

static void print_summary(const sslc_scan_summary *m, int64_t classes_shown)
{
    printf("dataset      %s (%s)\n", m->spec, m->kind);
    printf("images       %lld of %lld %s accepted, %lld skipped (%.1f s)\n",
           (long long)m->accepted, (long long)m->files,
           strcmp(m->kind, "idx") ? "image files" : "images", (long long)m->skipped, m->seconds);
    if (m->accepted) {
        printf("formats     ");
        const char *sep = " ";
        for (int f = 0; f < SSLC_SCAN_FORMATS; f++)
            if (m->formats[f]) {
                printf("%s%s %lld", sep, sslc_scan_format_name(f), (long long)m->formats[f]);
                sep = ", ";
            }
        printf("\nchannels     colour %lld, gray %lld\n", (long long)m->colour,
               (long long)m->gray);
        printf("height       min %lld, median %lld, max %lld\n", (long long)m->height_min,
               (long long)m->height_median, (long long)m->height_max);
        printf("width        min %lld, median %lld, max %lld\n", (long long)m->width_min,
               (long long)m->width_median, (long long)m->width_max);
        printf("short side  ");
        sep = " ";
        for (int b = 0; b < SSLC_SCAN_SIZE_BUCKETS; b++) {
            if (!m->short_side[b])
                continue;
            int64_t lo = b ? sslc_scan_bucket_limit(b - 1) : 0, hi = sslc_scan_bucket_limit(b);
            if (hi)
                printf("%s%lld-%lld: %lld", sep, (long long)lo, (long long)hi - 1,
                       (long long)m->short_side[b]);
            else
                printf("%s>=%lld: %lld", sep, (long long)lo, (long long)m->short_side[b]);
            sep = ", ";
        }
        printf("\n");
    }
    if (m->num_classes) {
        printf("classes      %lld\n", (long long)m->num_classes);
        for (int64_t c = 0; c < m->num_classes && c < classes_shown; c++)
            if (m->class_names)
                printf("  %8lld  %s\n", (long long)m->class_counts[c], m->class_names[c]);
            else
                printf("  %8lld  label %lld\n", (long long)m->class_counts[c], (long long)c);
        if (m->num_classes > classes_shown)
            printf("  ... and %lld more (--classes shows more)\n",
                   (long long)(m->num_classes - classes_shown));
    }
    if (m->skipped) {
        printf("skipped      %lld %s, by reason:\n", (long long)m->skipped,
               m->skipped == 1 ? "file" : "files");
        for (int64_t r = 0; r < m->n_reasons; r++) {
            const sslc_scan_reason *g = &m->reasons[r];
            printf("  %8lld  %s\n", (long long)g->count, g->reason);
            for (int64_t e = 0; e < g->n_examples; e++)
                printf("            %s\n", g->examples[e]);
            if (g->count > g->n_examples)
                printf("            ... and %lld more\n", (long long)(g->count - g->n_examples));
        }
    }
    if (m->skipped_links)
        printf("links        %lld folder %s not followed (the folder was already listed)\n",
               (long long)m->skipped_links, m->skipped_links == 1 ? "link" : "links");
    if (m->duplicates_checked) {
        printf("duplicates   %lld %s with identical bytes (%lld %s repeating another)\n",
               (long long)m->n_duplicates, m->n_duplicates == 1 ? "group" : "groups",
               (long long)m->duplicate_files, m->duplicate_files == 1 ? "file" : "files");
        for (int64_t g = 0; g < m->n_duplicates; g++) {
            printf("  %8lld ", (long long)m->duplicates[g].count);
            for (int64_t k = 0; k < m->duplicates[g].count; k++)
                printf(" %s%s", k ? "= " : "", m->duplicates[g].paths[k]);
            printf("\n");
        }
    }
}

int sslc_cmd_scan(int argc, char **argv)
{
    static const sslc_command_help help = {
        "scan", "sslc scan [options] DATASET",
        "What a long run would meet, found before it starts: decodes every image fully (in\n"
        "parallel) and prints the images accepted, formats, channels, sizes, classes and\n"
        "their counts, and every file that would be skipped, grouped by reason. DATASET is\n"
        "a spec (folder:, imagefolder:, idx:, manifest:, fashion-mnist:train) or a path (a\n"
        "folder, an image, an IDX file, a manifest). --manifest saves the usable images so\n"
        "that later runs (manifest:FILE) neither rescan nor meet the bad files.\n"
        "Exit status 0 when at least one image is usable, 1 when none is."};
    const char *manifest = "", *json = "";
    int64_t threads = 0, channels = 0, max_pixels = 89478485, examples = 3, classes = 50;
    bool duplicates = false;
    const sslc_arg args[] = {
        {"duplicates", SSLC_ARG_FLAG, &duplicates, "find files with identical bytes (a content hash)", NULL, 0, 0},
        {"manifest", SSLC_ARG_STRING, &manifest, "write the accepted images (labels, classes) as a manifest", NULL, 0, 0},
        {"json", SSLC_ARG_STRING, &json, "write the summary, with every skipped file, as JSON", NULL, 0, 0},
        {"examples", SSLC_ARG_INT, &examples, "example files shown per skip reason", NULL, 1, 1 << 20},
        {"classes", SSLC_ARG_INT, &classes, "classes listed with their counts", NULL, 0, 1LL << 40},
        {"channels", SSLC_ARG_INT, &channels, "channels the manifest records: 1 or 3 (0: the dataset's)", NULL, 0, 3},
        {"max-pixels", SSLC_ARG_INT, &max_pixels, "images with more pixels are skipped (0: no limit)", NULL, 0, 1LL << 40},
        {"threads", SSLC_ARG_INT, &threads, "threads (0: all cores)", NULL, 0, 1024},
    };
    const char *positional[1];
    int n_pos = 0;
    int st = sslc_args_parse(&help, args, sizeof args / sizeof args[0], argc, argv, positional, 1,
                             &n_pos);
    if (st == SSLC_ARGS_HELP)
        return 0;
    if (st)
        return sslc_cli_fail("scan", st);
    if (n_pos != 1)
        return sslc_cli_fail("scan", sslc_error(SSLC_ERR_INVALID, "give one DATASET (see --help)"));
    if (channels == 2)
        return sslc_cli_fail("scan", sslc_error(SSLC_ERR_INVALID, "--channels must be 0, 1 or 3"));
    sslc_set_threads((int)threads);
    scan_progress progress = {0};
    sslc_scan_options opt;
    sslc_scan_options_default(&opt);
    opt.dataset.channels = (int)channels;
    opt.dataset.max_pixels = max_pixels;
    opt.duplicates = duplicates;
    opt.examples = (int)examples;
    opt.progress = on_progress;
    opt.progress_ctx = &progress;
    sslc_scan *scan = NULL;
    st = sslc_scan_run(&scan, positional[0], &opt);
    sslc_progress_break(&progress.bar);
    if (st)
        return sslc_cli_fail("scan", st);
    const sslc_scan_summary *m = sslc_scan_get_summary(scan);
    print_summary(m, classes);
    if (json[0] && !(st = sslc_make_parent_dir(json, "--json")) &&
        !(st = sslc_scan_write_json(scan, json)))
        printf("wrote        %s\n", json);
    if (!st && manifest[0] && m->accepted) {
        if (!(st = sslc_make_parent_dir(manifest, "--manifest")) &&
            !(st = sslc_scan_save_manifest(scan, manifest)))
            printf("wrote        %s (%lld images; open it with manifest:%s)\n", manifest,
                   (long long)m->accepted, manifest);
    }
    fflush(stdout);
    int code = st ? sslc_cli_fail("scan", st) : 0;
    if (!code && m->accepted == 0) {
        fprintf(stderr, "sslc scan: nothing usable in '%s': none of its %lld %s decodes%s\n",
                positional[0], (long long)m->files,
                strcmp(m->kind, "idx") ? "image files" : "images",
                manifest[0] ? " (no manifest written)" : "");
        code = 1;
    }
    sslc_scan_destroy(scan);
    return code;
}
