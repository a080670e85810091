// sslc scan: the library (data/scan.h: counts, sizes, classes, reasons
// grouped, duplicates, manifest and JSON) and the command (e2e: runs the
// sslc binary on a generated folder).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/scan.h"
#include "src/core/log.h"
#include "tests/data/helpers.h"
#include "tests/harness.h"

// An ImageFolder of 9 files, 6 usable:
//   cat/g0.png g1.png (10x12 RGB), g2.png (14x40 RGB), trunc.jpg (cut: fails
//   when decoded); dog/d0.png (20x30 gray), d1.jpg (19x23), copy.jpg (d1's
//   bytes), fake.png (text: fails the header scan), cut.png (fails decoded).
static char *scan_folder(const char *tag)
{
    char *root = td_tmpdir(tag);
    char p[4300];
    td_join(p, sizeof p, root, "cat");
    mkdir(p, 0755);
    td_join(p, sizeof p, root, "dog");
    mkdir(p, 0755);
    td_join(p, sizeof p, root, "cat/g0.png");
    td_write_png(p, 10, 12, 3, 0);
    td_join(p, sizeof p, root, "cat/g1.png");
    td_write_png(p, 10, 12, 3, 1);
    td_join(p, sizeof p, root, "cat/g2.png");
    td_write_png(p, 14, 40, 3, 2);
    size_t n;
    uint8_t *jpg = td_read_file(sslc_fixture_path("decode/baseline.jpg"), &n);
    td_join(p, sizeof p, root, "cat/trunc.jpg");
    td_write_bytes(p, jpg, n * 2 / 3);
    td_join(p, sizeof p, root, "dog/d1.jpg");
    td_write_bytes(p, jpg, n);
    td_join(p, sizeof p, root, "dog/copy.jpg");
    td_write_bytes(p, jpg, n);
    free(jpg);
    td_join(p, sizeof p, root, "dog/d0.png");
    td_write_png(p, 20, 30, 1, 3);
    td_join(p, sizeof p, root, "dog/fake.png");
    td_write_bytes(p, "hello, not a PNG\n", 17);
    td_join(p, sizeof p, root, "dog/cut.png");
    td_write_cut_png(p);
    return root;
}

static const sslc_scan_reason *find_reason(const sslc_scan_summary *m, const char *text)
{
    for (int64_t r = 0; r < m->n_reasons; r++)
        if (strstr(m->reasons[r].reason, text))
            return &m->reasons[r];
    fail_msg("no skip reason says '%s'", text);
    return NULL;
}

static void scan_counts_everything_and_groups_reasons(void **state)
{
    (void)state;
    char *root = scan_folder("scanlib");
    sslc_scan_options opt;
    sslc_scan_options_default(&opt);
    opt.duplicates = true;
    sslc_scan *s;
    assert_int_equal(sslc_scan_run(&s, root, &opt), SSLC_OK);
    const sslc_scan_summary *m = sslc_scan_get_summary(s);
    assert_string_equal(m->kind, "imagefolder");
    assert_int_equal(m->files, 9);
    assert_int_equal(m->accepted, 6);
    assert_int_equal(m->skipped, 3);
    assert_int_equal(m->formats[SSLC_SCAN_PNG], 4);
    assert_int_equal(m->formats[SSLC_SCAN_JPEG], 2);
    assert_int_equal(m->formats[SSLC_SCAN_IDX], 0);
    assert_int_equal(m->colour, 5);
    assert_int_equal(m->gray, 1);
    // heights 10 10 14 19 19 20, widths 12 12 23 23 30 40 (median: lower middle)
    assert_int_equal(m->height_min, 10);
    assert_int_equal(m->height_median, 14);
    assert_int_equal(m->height_max, 20);
    assert_int_equal(m->width_min, 12);
    assert_int_equal(m->width_median, 23);
    assert_int_equal(m->width_max, 40);
    assert_int_equal(m->short_side[0], 6);
    assert_int_equal(m->num_classes, 2);
    assert_string_equal(m->class_names[0], "cat");
    assert_int_equal(m->class_counts[0], 3);
    assert_int_equal(m->class_counts[1], 3);
    // Three reasons, one file each, in scan order: the header scan's first.
    assert_int_equal(m->n_reasons, 3);
    assert_string_equal(m->reasons[0].reason, "not a PNG or JPEG file");
    assert_int_equal(m->reasons[0].count, 1);
    assert_int_equal(m->reasons[0].n_examples, 1);
    assert_non_null(strstr(m->reasons[0].examples[0], "/dog/fake.png"));
    assert_non_null(strstr(m->reasons[1].examples[0], "/cat/trunc.jpg"));
    assert_non_null(strstr(m->reasons[1].reason, "JPEG"));
    assert_non_null(strstr(m->reasons[2].examples[0], "/dog/cut.png"));
    const char *why;
    assert_non_null(strstr(sslc_scan_skipped_file(s, 2, &why), "/dog/cut.png"));
    assert_string_equal(why, m->reasons[2].reason);
    assert_null(sslc_scan_skipped_file(s, 3, &why));
    // copy.jpg and d1.jpg have the same bytes.
    assert_true(m->duplicates_checked);
    assert_int_equal(m->n_duplicates, 1);
    assert_int_equal(m->duplicate_files, 1);
    assert_int_equal(m->duplicates[0].count, 2);
    assert_non_null(strstr(m->duplicates[0].paths[0], "/dog/copy.jpg"));
    assert_non_null(strstr(m->duplicates[0].paths[1], "/dog/d1.jpg"));

    // The manifest holds the 6 usable images, labels and classes.
    char manifest[4300], spec[4400], json[4300];
    td_join(manifest, sizeof manifest, root, "usable.manifest");
    assert_int_equal(sslc_scan_save_manifest(s, manifest), SSLC_OK);
    snprintf(spec, sizeof spec, "manifest:%s", manifest);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 6);
    assert_int_equal(sslc_dataset_num_classes(ds), 2);
    assert_string_equal(sslc_dataset_class_name(ds, 1), "dog");
    const char *want[6] = {"/cat/g0.png", "/cat/g1.png", "/cat/g2.png",
                           "/dog/copy.jpg", "/dog/d0.png", "/dog/d1.jpg"};
    for (int i = 0; i < 6; i++) {
        char name[4096];
        assert_non_null(strstr(sslc_dataset_name(ds, i, name, sizeof name), want[i]));
        assert_int_equal(sslc_dataset_label(ds, i), i < 3 ? 0 : 1);
    }
    sslc_dataset_destroy(ds);
    // JSON: the counts and every skipped file.
    td_join(json, sizeof json, root, "summary.json");
    assert_int_equal(sslc_scan_write_json(s, json), SSLC_OK);
    size_t n;
    char *text = (char *)td_read_file(json, &n);
    text = realloc(text, n + 1);
    text[n] = '\0';
    assert_non_null(strstr(text, "\"accepted\": 6,"));
    assert_non_null(strstr(text, "\"skipped\": 3,"));
    assert_non_null(strstr(text, "\"formats\": {\"PNG\": 4, \"JPEG\": 2, \"IDX\": 0}"));
    assert_non_null(strstr(text, "{\"label\": 1, \"name\": \"dog\", \"count\": 3}"));
    assert_non_null(strstr(text, "fake.png\", \"reason\": \"not a PNG or JPEG file\"}"));
    assert_non_null(strstr(text, "trunc.jpg\", \"reason\": "));
    assert_non_null(strstr(text, "cut.png\", \"reason\": "));
    assert_non_null(strstr(text, "copy.jpg\", \""));
    free(text);
    sslc_scan_destroy(s);

    // Reasons that differ only in numbers are one group; without
    // --duplicates none are looked for.
    opt.duplicates = false;
    opt.dataset.max_pixels = 300; // g2 560, d0 600, d1, copy and trunc 437 pixels
    assert_int_equal(sslc_scan_run(&s, root, &opt), SSLC_OK);
    m = sslc_scan_get_summary(s);
    assert_int_equal(m->accepted, 2);
    assert_false(m->duplicates_checked);
    const sslc_scan_reason *r = find_reason(m, "over the limit");
    assert_int_equal(r->count, 5);
    assert_string_equal(r->reason,
                        "NxN = N pixels is over the limit of N (raise it with --max-pixels)");
    assert_int_equal(r->n_examples, 3); // the first three
    sslc_scan_destroy(s);
    free(root);
}

static void scan_of_nothing_usable_and_of_idx(void **state)
{
    (void)state;
    char *root = td_tmpdir("scannone");
    char p[4300];
    td_join(p, sizeof p, root, "a.jpg");
    td_write_bytes(p, "text", 4);
    td_join(p, sizeof p, root, "b.png");
    td_write_cut_png(p);
    sslc_scan *s;
    assert_int_equal(sslc_scan_run(&s, root, NULL), SSLC_OK);
    const sslc_scan_summary *m = sslc_scan_get_summary(s);
    assert_int_equal(m->files, 2);
    assert_int_equal(m->accepted, 0);
    assert_int_equal(m->n_reasons, 2);
    td_join(p, sizeof p, root, "none.manifest");
    assert_int_equal(sslc_scan_save_manifest(s, p), SSLC_ERR_INVALID);
    assert_int_equal(access(p, F_OK), -1);
    sslc_scan_destroy(s);
    // A folder without image files cannot be scanned at all.
    td_join(p, sizeof p, root, "empty");
    mkdir(p, 0755);
    s = (sslc_scan *)1;
    assert_int_equal(sslc_scan_run(&s, p, NULL), SSLC_ERR_INVALID);
    assert_null(s);
    // IDX: four 2x3 images, two of them equal, labels 0 1 0 2.
    uint8_t idx[4 + 12 + 4 * 6] = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 24; i++)
        idx[16 + i] = (uint8_t)(i < 6 || i >= 18 ? i % 6 : i);
    uint8_t lab[4 + 4 + 4] = {0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 2};
    char img[4300], lbl[4300], spec[8700];
    td_join(img, sizeof img, root, "img.gz");
    td_join(lbl, sizeof lbl, root, "lbl");
    gzFile z = gzopen(img, "wb");
    gzwrite(z, idx, sizeof idx);
    gzclose(z);
    td_write_bytes(lbl, lab, sizeof lab);
    snprintf(spec, sizeof spec, "idx:%s,%s", img, lbl);
    sslc_scan_options opt;
    sslc_scan_options_default(&opt);
    opt.duplicates = true;
    assert_int_equal(sslc_scan_run(&s, spec, &opt), SSLC_OK);
    m = sslc_scan_get_summary(s);
    assert_string_equal(m->kind, "idx");
    assert_int_equal(m->accepted, 4);
    assert_int_equal(m->formats[SSLC_SCAN_IDX], 4);
    assert_int_equal(m->gray, 4);
    assert_int_equal(m->num_classes, 3);
    assert_null(m->class_names);
    assert_int_equal(m->class_counts[0], 2);
    assert_int_equal(m->n_duplicates, 1);
    assert_string_equal(m->duplicates[0].paths[0], "img.gz[0]");
    assert_string_equal(m->duplicates[0].paths[1], "img.gz[3]");
    sslc_scan_destroy(s);
    free(root);
}

// ---------------------------------------------------------------- the sslc binary

static int run(const char *cmd, const char *dir, char *out, size_t cap)
{
    char log[4300];
    td_join(log, sizeof log, dir, "out.txt");
    return sslc_test_run_cmd(cmd, log, out, cap);
}

static void expect(const char *out, const char *text)
{
    if (!strstr(out, text))
        fail_msg("the output does not say '%s':\n%s", text, out);
}

static void scan_command(void **state)
{
    (void)state;
    char *root = scan_folder("scancli");
    static char out[1 << 16];
    char cmd[9000], manifest[4300], json[4300];
    td_join(manifest, sizeof manifest, root, "usable.manifest");
    td_join(json, sizeof json, root, "summary.json");
    snprintf(cmd, sizeof cmd, "'%s' scan '%s' --duplicates --manifest '%s' --json '%s' --threads 2",
             SSLC_EXE, root, manifest, json);
    int rc = run(cmd, root, out, sizeof out);
    printf("%s", out);
    if (rc != 0)
        fail_msg("sslc scan failed (%d)", rc);
    expect(out, "(imagefolder)");
    expect(out, "images       6 of 9 image files accepted, 3 skipped");
    expect(out, "formats      PNG 4, JPEG 2");
    expect(out, "channels     colour 5, gray 1");
    expect(out, "height       min 10, median 14, max 20");
    expect(out, "short side   0-31: 6");
    expect(out, "classes      2\n         3  cat\n         3  dog\n");
    // Grouped: the count, the reason, then its files.
    expect(out, "skipped      3 files, by reason:\n         1  not a PNG or JPEG file\n");
    expect(out, "/dog/fake.png\n");
    expect(out, "/cat/trunc.jpg\n");
    expect(out, "/dog/cut.png\n");
    expect(out, "duplicates   1 group with identical bytes (1 file repeating another)");
    expect(out, "/dog/copy.jpg = ");
    expect(out, "decoding"); // progress
    // The manifest reads back without the bad files.
    char spec[4400], name[4096];
    snprintf(spec, sizeof spec, "manifest:%s", manifest);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 6);
    assert_int_equal(sslc_dataset_skipped(ds), 0);
    for (int64_t i = 0; i < 6; i++) {
        sslc_dataset_name(ds, i, name, sizeof name);
        assert_null(strstr(name, "trunc"));
        assert_null(strstr(name, "fake"));
        assert_null(strstr(name, "cut"));
    }
    assert_non_null(strstr(sslc_dataset_name(ds, 5, name, sizeof name), "/dog/d1.jpg"));
    sslc_dataset_destroy(ds);
    assert_int_equal(access(json, R_OK), 0);
    // ... and scanning it again finds nothing bad.
    snprintf(cmd, sizeof cmd, "'%s' scan 'manifest:%s'", SSLC_EXE, manifest);
    assert_int_equal(run(cmd, root, out, sizeof out), 0);
    expect(out, "images       6 of 6 image files accepted, 0 skipped");

    // Nothing usable: exit status 1, and no manifest.
    char *bad = td_tmpdir("scanbad");
    char p[4300];
    td_join(p, sizeof p, bad, "x.jpg");
    td_write_bytes(p, "not a jpeg", 10);
    td_join(p, sizeof p, bad, "y.png");
    td_write_cut_png(p);
    td_join(manifest, sizeof manifest, bad, "none.manifest");
    snprintf(cmd, sizeof cmd, "'%s' scan '%s' --manifest '%s'", SSLC_EXE, bad, manifest);
    assert_int_equal(run(cmd, bad, out, sizeof out), 1);
    expect(out, "0 of 2 image files accepted, 2 skipped");
    expect(out, "sslc scan: nothing usable in");
    assert_int_equal(access(manifest, F_OK), -1);
    // Not a dataset, a bad option, --help with every option.
    snprintf(cmd, sizeof cmd, "'%s' scan '%s/missing'", SSLC_EXE, bad);
    assert_int_equal(run(cmd, bad, out, sizeof out), 1);
    expect(out, "sslc scan: dataset '");
    expect(out, "does not exist");
    snprintf(cmd, sizeof cmd, "'%s' scan '%s' --threads -1", SSLC_EXE, bad);
    assert_int_equal(run(cmd, bad, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "'%s' scan --help", SSLC_EXE);
    assert_int_equal(run(cmd, bad, out, sizeof out), 0);
    const char *options[] = {"--duplicates", "--manifest", "--json", "--examples", "--classes",
                             "--channels", "--max-pixels", "--threads"};
    for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
        expect(out, options[k]);
    free(bad);
    free(root);
}

int main(int argc, char **argv)
{
    sslc_log_set_level(SSLC_LOG_WARN);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(scan_counts_everything_and_groups_reasons),
        cmocka_unit_test(scan_of_nothing_usable_and_of_idx),
    };
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(scan_command),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit), SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 2);
}
