// data/: input as users have it. Folders with symlinks that loop, bare
// paths told by content (a single PNG or JPEG is a dataset), and the
// bad-input rule (strict, the decode-time wording, sslc_dataset_report_bad).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/image.h"
#include "src/core/log.h"
#include "tests/data/helpers.h"
#include "tests/harness.h"

// ---------------------------------------------------------------- folders with links

static void folder_links_are_followed_once(void **state)
{
    (void)state;
    char *tmp = td_tmpdir("links");
    char root[4200], p[4300], outside[4200];
    td_join(root, sizeof root, tmp, "root");
    td_join(outside, sizeof outside, tmp, "outside");
    mkdir(root, 0755);
    mkdir(outside, 0755);
    const char *dirs[] = {"sub", "a", "b"};
    for (int k = 0; k < 3; k++) {
        td_join(p, sizeof p, root, dirs[k]);
        mkdir(p, 0755);
    }
    td_join(p, sizeof p, root, "x.png");
    td_write_png(p, 5, 6, 3, 1);
    td_join(p, sizeof p, root, "sub/y.png");
    td_write_png(p, 5, 6, 3, 2);
    td_join(p, sizeof p, root, "a/a.png");
    td_write_png(p, 5, 6, 3, 3);
    td_join(p, sizeof p, root, "b/b.png");
    td_write_png(p, 5, 6, 3, 4);
    td_join(p, sizeof p, outside, "o.png");
    td_write_png(p, 5, 6, 3, 5);
    // sub/up -> .. (the root); a/to_b and b/to_a: a cycle of two links;
    // ext1 and ext2: two links to one folder outside the root.
    td_join(p, sizeof p, root, "sub");
    td_make_link(p, "up", "..");
    td_join(p, sizeof p, root, "a");
    td_make_link(p, "to_b", "../b");
    td_join(p, sizeof p, root, "b");
    td_make_link(p, "to_a", "../a");
    td_make_link(root, "ext1", "../outside");
    td_make_link(root, "ext2", "../outside");
    char spec[4300];
    snprintf(spec, sizeof spec, "folder:%s", root);
    for (int bare = 0; bare < 2; bare++) {
        sslc_dataset *ds;
        td_capture c;
        td_capture_begin(&c, tmp);
        sslc_status st = sslc_dataset_open(&ds, bare ? root : spec, NULL);
        char *err = td_capture_end(&c);
        printf("%s", err);
        assert_int_equal(st, SSLC_OK);
        // The five real files, each once; the one outside under ext1 (the
        // first link in sorted order), never under ext2.
        assert_int_equal(sslc_dataset_count(ds), 5);
        assert_int_equal(sslc_dataset_skipped_links(ds), 4);
        assert_true(td_dataset_has_name(ds, "/root/x.png"));
        assert_true(td_dataset_has_name(ds, "/root/sub/y.png"));
        assert_true(td_dataset_has_name(ds, "/root/a/a.png"));
        assert_true(td_dataset_has_name(ds, "/root/b/b.png"));
        assert_true(td_dataset_has_name(ds, "/root/ext1/o.png"));
        // One warning line per link skipped, naming it.
        assert_int_equal(td_count_lines_with(err, "skipping folder link"), 4);
        assert_non_null(strstr(err, "/root/sub/up'"));
        assert_non_null(strstr(err, "/root/a/to_b'"));
        assert_non_null(strstr(err, "/root/b/to_a'"));
        assert_non_null(strstr(err, "/root/ext2'"));
        sslc_dataset_destroy(ds);
    }
    free(tmp);
}

static void imagefolder_links_between_classes_are_skipped(void **state)
{
    (void)state;
    char *tmp = td_tmpdir("linkcls");
    char p[4300];
    td_join(p, sizeof p, tmp, "cat");
    mkdir(p, 0755);
    td_make_link(p, "dogs", "../dog");
    td_make_link(p, "up", "..");
    td_join(p, sizeof p, tmp, "cat/c.png");
    td_write_png(p, 4, 4, 3, 1);
    td_join(p, sizeof p, tmp, "dog");
    mkdir(p, 0755);
    td_join(p, sizeof p, tmp, "dog/d.png");
    td_write_png(p, 4, 4, 3, 2);
    char spec[4300];
    snprintf(spec, sizeof spec, "imagefolder:%s", tmp);
    sslc_dataset *ds;
    td_capture c;
    td_capture_begin(&c, tmp);
    sslc_status st = sslc_dataset_open(&ds, spec, NULL);
    char *err = td_capture_end(&c);
    assert_int_equal(st, SSLC_OK);
    // dog's image keeps its own label only; nothing is listed twice.
    assert_int_equal(sslc_dataset_count(ds), 2);
    assert_int_equal(sslc_dataset_num_classes(ds), 2);
    assert_int_equal(sslc_dataset_label(ds, 0), 0);
    assert_int_equal(sslc_dataset_label(ds, 1), 1);
    assert_int_equal(sslc_dataset_skipped_links(ds), 2);
    assert_int_equal(td_count_lines_with(err, "skipping folder link"), 2);
    sslc_dataset_destroy(ds);
    free(tmp);
}

static void imagefolder_orders_by_class_first(void **state)
{
    (void)state;
    // torchvision: classes ['ant', 'ant-b'], samples ant/x.png,
    // ant/sub/w.png (0), then ant-b/y.png (1), although the folder
    // "ant-b" sorts before "ant/sub" as a string ('-' < '/').
    char *tmp = td_tmpdir("clsorder");
    char p[4300];
    const char *files[] = {"ant", "ant/x.png", "ant/sub", "ant/sub/w.png", "ant-b",
                           "ant-b/y.png"};
    for (int k = 0; k < 6; k++) {
        td_join(p, sizeof p, tmp, files[k]);
        if (!strstr(files[k], ".png"))
            mkdir(p, 0755);
        else
            td_write_png(p, 4, 4, 3, k);
    }
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, tmp, NULL), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 3);
    char name[4096];
    assert_non_null(strstr(sslc_dataset_name(ds, 0, name, sizeof name), "/ant/x.png"));
    assert_non_null(strstr(sslc_dataset_name(ds, 1, name, sizeof name), "/ant/sub/w.png"));
    assert_non_null(strstr(sslc_dataset_name(ds, 2, name, sizeof name), "/ant-b/y.png"));
    assert_int_equal(sslc_dataset_label(ds, 0), 0);
    assert_int_equal(sslc_dataset_label(ds, 1), 0);
    assert_int_equal(sslc_dataset_label(ds, 2), 1);
    sslc_dataset_destroy(ds);
    free(tmp);
}

// ---------------------------------------------------------------- bare paths

static void open_one(const char *path, int64_t h, int64_t w)
{
    sslc_dataset *ds;
    sslc_status st = sslc_dataset_open(&ds, path, NULL);
    if (st)
        fail_msg("'%s': %s", path, sslc_error_message());
    assert_int_equal(sslc_dataset_count(ds), 1);
    assert_int_equal(sslc_dataset_skipped(ds), 0);
    assert_int_equal(sslc_dataset_channels(ds), 3);
    assert_int_equal(sslc_dataset_label(ds, 0), -1);
    assert_int_equal(sslc_dataset_num_classes(ds), 0);
    char name[4096];
    assert_string_equal(sslc_dataset_name(ds, 0, name, sizeof name), path);
    int64_t hh, ww;
    sslc_dataset_dims(ds, 0, &hh, &ww);
    assert_int_equal(hh, h);
    assert_int_equal(ww, w);
    sslc_image img;
    assert_int_equal(sslc_dataset_decode(ds, 0, &img, NULL, NULL, NULL), SSLC_OK);
    assert_int_equal(img.height, h);
    assert_int_equal(img.channels, 3);
    sslc_image_free(&img);
    sslc_dataset_destroy(ds);
}

static void refused(const char *spec, sslc_status want, const char *const *words)
{
    sslc_dataset *ds = (sslc_dataset *)1;
    sslc_status st = sslc_dataset_open(&ds, spec, NULL);
    printf("  %s: %s\n", spec, sslc_error_message());
    assert_int_equal(st, want);
    assert_null(ds);
    for (; *words; words++)
        if (!strstr(sslc_error_message(), *words))
            fail_msg("'%s' does not say '%s'", sslc_error_message(), *words);
}

static void bare_paths_are_told_by_content(void **state)
{
    (void)state;
    char *tmp = td_tmpdir("bare");
    char p[4300];
    // A single PNG or JPEG is a dataset of one image, whatever its name.
    td_join(p, sizeof p, tmp, "photo.png");
    td_write_png(p, 9, 13, 3, 1);
    open_one(p, 9, 13);
    td_join(p, sizeof p, tmp, "photo.jpg");
    td_copy_fixture("decode/baseline.jpg", p, 0);
    open_one(p, 19, 23);
    td_join(p, sizeof p, tmp, "camera-export.data");
    td_copy_fixture("decode/gray.jpg", p, 0);
    open_one(p, 19, 23);
    // A relative path keeps its own name.
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp), 0);
    open_one("photo.png", 9, 13);
    assert_int_equal(chdir(cwd), 0);
    // IDX, gzip-compressed, under a name that says nothing.
    uint8_t idx[4 + 12 + 2 * 3 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    td_join(p, sizeof p, tmp, "images.bin");
    gzFile z = gzopen(p, "wb");
    gzwrite(z, idx, sizeof idx);
    gzclose(z);
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, p, NULL), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 2);
    assert_int_equal(sslc_dataset_channels(ds), 1);
    sslc_dataset_destroy(ds);
    // A single image that does not decode: the error names it and why.
    td_join(p, sizeof p, tmp, "cut.jpg");
    td_copy_fixture("decode/baseline.jpg", p, 100);
    refused(p, SSLC_ERR_FORMAT, (const char *const[]){"data: cannot decode '", "cut.jpg'", NULL});
    // What it is not: each refusal names the file and what sslc reads.
    const char *const understood[] = {"PNG or JPEG image", "IDX file (plain or gzip)",
                                      "sslc manifest", "folder of images", NULL};
    td_join(p, sizeof p, tmp, "notes.txt");
    td_write_bytes(p, "hello, I am text\n", 17);
    refused(p, SSLC_ERR_FORMAT, understood);
    assert_non_null(strstr(sslc_error_message(), "notes.txt"));
    assert_non_null(strstr(sslc_error_message(), "68 65 6c 6c")); // "hell"
    td_join(p, sizeof p, tmp, "text.gz");
    z = gzopen(p, "wb");
    gzwrite(z, "hello", 5);
    gzclose(z);
    refused(p, SSLC_ERR_FORMAT, understood);
    assert_non_null(strstr(sslc_error_message(), "gzip-compressed but holds no IDX"));
    td_join(p, sizeof p, tmp, "empty");
    td_write_bytes(p, "", 0);
    refused(p, SSLC_ERR_FORMAT, understood);
    assert_non_null(strstr(sslc_error_message(), "empty file"));
    td_join(p, sizeof p, tmp, "missing.jpg");
    refused(p, SSLC_ERR_IO, (const char *const[]){"missing.jpg", "does not exist", NULL});
    free(tmp);
}

// ---------------------------------------------------------------- the bad-input rule

// good0.png good1.png good2.png, cut.png (pixel data cut), text.jpg (not an image)
static char *bad_folder(const char *tag)
{
    char *tmp = td_tmpdir(tag);
    char p[4300];
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/good%d.png", tmp, k);
        td_write_png(p, 10, 12, 3, k);
    }
    td_join(p, sizeof p, tmp, "cut.png");
    td_write_cut_png(p);
    td_join(p, sizeof p, tmp, "text.jpg");
    td_write_bytes(p, "not a jpeg", 10);
    return tmp;
}

static void strict_refuses_any_bad_file(void **state)
{
    (void)state;
    char *tmp = bad_folder("strict");
    char spec[4300];
    snprintf(spec, sizeof spec, "folder:%s", tmp);
    sslc_dataset_options opt;
    sslc_dataset_options_default(&opt);
    opt.quiet = true;
    sslc_dataset *ds;
    // The header scan keeps cut.png (its header is fine) and names text.jpg.
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 4);
    assert_int_equal(sslc_dataset_skipped(ds), 1);
    const char *why;
    const char *file = sslc_dataset_skipped_file(ds, 0, &why);
    assert_non_null(strstr(file, "/text.jpg"));
    assert_string_equal(why, "not a PNG or JPEG file");
    assert_null(sslc_dataset_skipped_file(ds, 1, &why));
    char manifest[4300];
    td_join(manifest, sizeof manifest, tmp, "all.manifest");
    assert_int_equal(sslc_dataset_save_manifest(ds, manifest), SSLC_OK);
    sslc_dataset_destroy(ds);
    // verify decodes everything and skips both.
    opt.verify = true;
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 3);
    assert_int_equal(sslc_dataset_skipped(ds), 2);
    sslc_dataset_destroy(ds);
    // strict: either is an error before any work, naming both with why.
    opt.verify = false;
    opt.strict = true;
    ds = (sslc_dataset *)1;
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_ERR_FORMAT);
    assert_null(ds);
    const char *msg = sslc_error_message();
    printf("  %s\n", msg);
    assert_non_null(strstr(msg, "2 of 5 image files"));
    assert_non_null(strstr(msg, "strict"));
    assert_non_null(strstr(msg, "cut.png': "));
    assert_non_null(strstr(msg, "text.jpg': not a PNG or JPEG file"));
    // A manifest's items were never scanned: strict decodes them.
    char mspec[4400];
    snprintf(mspec, sizeof mspec, "manifest:%s", manifest);
    assert_int_equal(sslc_dataset_open(&ds, mspec, &opt), SSLC_ERR_FORMAT);
    printf("  %s\n", sslc_error_message());
    assert_non_null(strstr(sslc_error_message(), "1 of 4 image files"));
    assert_non_null(strstr(sslc_error_message(), "cut.png': "));
    opt.strict = false;
    assert_int_equal(sslc_dataset_open(&ds, mspec, &opt), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 4);
    sslc_dataset_destroy(ds);
    // Over the pixel limit counts as bad too; a clean folder passes.
    char *clean = td_tmpdir("strictok");
    char p[4300];
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/ok%d.png", clean, k);
        td_write_png(p, 10, 12, 1, k);
    }
    snprintf(spec, sizeof spec, "folder:%s", clean);
    opt.strict = true;
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_OK);
    assert_int_equal(sslc_dataset_count(ds), 2);
    sslc_dataset_destroy(ds);
    opt.max_pixels = 100;
    assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_ERR_FORMAT);
    assert_non_null(strstr(sslc_error_message(), "over the limit"));
    free(clean);
    free(tmp);
}

static void decode_failures_name_the_file_and_reason(void **state)
{
    (void)state;
    char *tmp = bad_folder("wording");
    char spec[4300], cache[4300];
    snprintf(spec, sizeof spec, "folder:%s", tmp);
    td_join(cache, sizeof cache, tmp, "cache.bin");
    for (int cached = 0; cached < 2; cached++) {
        sslc_dataset_options opt;
        sslc_dataset_options_default(&opt);
        opt.quiet = true;
        opt.cache_path = cached ? cache : NULL;
        sslc_dataset *ds;
        assert_int_equal(sslc_dataset_open(&ds, spec, &opt), SSLC_OK);
        assert_int_equal(sslc_dataset_count(ds), 4);
        char name[4096], want[4200];
        int64_t cut = 0; // sorted: cut.png good0 good1 good2
        sslc_dataset_name(ds, cut, name, sizeof name);
        assert_non_null(strstr(name, "/cut.png"));
        snprintf(want, sizeof want, "data: cannot decode '%s': ", name);
        sslc_image img;
        // Twice: from the file, then (cached) from the cache's bad mark.
        for (int again = 0; again < 2; again++) {
            assert_int_equal(sslc_dataset_decode(ds, cut, &img, NULL, NULL, NULL),
                             SSLC_ERR_FORMAT);
            const char *msg = sslc_error_message();
            printf("  %s\n", msg);
            assert_memory_equal(msg, want, strlen(want));
            assert_true(strlen(msg) > strlen(want) + 3); // a reason follows
            assert_null(strstr(msg + strlen(want), name)); // named once
            int64_t window[4] = {0, 0, 4, 4};
            assert_int_equal(sslc_dataset_decode_window(ds, cut, window, &img), SSLC_ERR_FORMAT);
            assert_memory_equal(sslc_error_message(), want, strlen(want));
        }
        assert_int_equal(sslc_dataset_decode(ds, 1, &img, NULL, NULL, NULL), SSLC_OK);
        sslc_image_free(&img);
        sslc_dataset_destroy(ds);
    }
    // report_bad: one warning in the scan's wording the first time, counted once.
    sslc_dataset *ds;
    assert_int_equal(sslc_dataset_open(&ds, spec, NULL), SSLC_OK);
    sslc_image img;
    assert_int_equal(sslc_dataset_decode(ds, 0, &img, NULL, NULL, NULL), SSLC_ERR_FORMAT);
    char msg[1024], name[4096], want[4200];
    snprintf(msg, sizeof msg, "%s", sslc_error_message());
    assert_int_equal(sslc_dataset_bad_count(ds), 0);
    assert_false(sslc_dataset_is_bad(ds, 0));
    td_capture c;
    td_capture_begin(&c, tmp);
    assert_true(sslc_dataset_report_bad(ds, 0, msg));
    assert_false(sslc_dataset_report_bad(ds, 0, msg));
    char *err = td_capture_end(&c);
    sslc_dataset_name(ds, 0, name, sizeof name);
    snprintf(want, sizeof want, "sslc: warning: skipping '%s': %s\n", name,
             msg + strlen("data: cannot decode '") + strlen(name) + strlen("': "));
    assert_string_equal(err, want);
    assert_int_equal(sslc_dataset_bad_count(ds), 1);
    assert_true(sslc_dataset_is_bad(ds, 0));
    assert_false(sslc_dataset_is_bad(ds, 1));
    assert_false(sslc_dataset_is_bad(ds, 99));
    sslc_dataset_destroy(ds);
    free(tmp);
}

int main(int argc, char **argv)
{
    sslc_log_set_level(SSLC_LOG_WARN);
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(folder_links_are_followed_once),
        cmocka_unit_test(imagefolder_links_between_classes_are_skipped),
        cmocka_unit_test(imagefolder_orders_by_class_first),
        cmocka_unit_test(bare_paths_are_told_by_content),
        cmocka_unit_test(strict_refuses_any_bad_file),
        cmocka_unit_test(decode_failures_name_the_file_and_reason),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("unit", unit)};
    return sslc_test_main(argc, argv, groups, 1);
}
