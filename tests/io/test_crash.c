// src/io under a hostile world, end to end with the sslc binary: a
// pretraining run that checkpoints every step is killed (SIGKILL) at random
// moments, and its disk fills during a save. After each, the run folder's
// last.h5 (when there is one) is a whole checkpoint that `sslc info` reads
// and that a resume continues from; a killed save leaves at most a temporary
// file, which the next save removes; a failed save says which file and why.
//
// SSLC_KILL_SEED=N changes the kill moments (printed at the start, so a
// failure reproduces); SSLC_KILL_ROUNDS=N the number of kills.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/image.h"
#include "src/core/log.h"
#include "src/core/rng.h"
#include "src/io/checkpoint.h"
#include "tests/harness.h"

enum { SIDE = 16, IMAGES = 40 };

// Noise images: the run only has to train and save, not to learn.
static void make_images(const char *dir)
{
    uint8_t px[SIDE * SIDE];
    char path[4400];
    for (int i = 0; i < IMAGES; i++) {
        sslc_rng r = sslc_rng_make(7, (uint64_t)i, 0, 0, 0);
        for (int k = 0; k < SIDE * SIDE; k++)
            px[k] = (uint8_t)sslc_rng_below(&r, 256);
        snprintf(path, sizeof path, "%s/%03d.png", dir, i);
        assert_int_equal(sslc_png_write(path, px, SIDE, SIDE, 1), SSLC_OK);
    }
}

// Starts the sslc binary with args (NULL-terminated, after argv[0]), its
// output into log. SIGXFSZ is ignored, as a program should when it can meet
// a file-size limit: write() then fails with EFBIG instead of killing it.
static pid_t spawn(const char *log, const char *const *args)
{
    const char *argv[32] = {SSLC_EXE};
    int n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        signal(SIGXFSZ, SIG_IGN);
        execv(SSLC_EXE, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

// The log's text (a static buffer).
static const char *slurp(const char *log)
{
    static char text[1 << 16];
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[n] = '\0';
    if (f)
        fclose(f);
    return text;
}

// Runs sslc to the end; its exit code.
static int run_sslc(const char *log, const char *const *args)
{
    pid_t pid = spawn(log, args);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status))
        fail_msg("sslc %s ended by signal %d:\n%s", args[0], WTERMSIG(status), slurp(log));
    return WEXITSTATUS(status);
}

static bool exists(const char *dir, const char *name)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

// Temporary files ("*.tmp-<pid>") in dir.
static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

// Checks that every ckpt-<step>.h5 in dir is a whole checkpoint; returns the
// highest step, -1 when there is none.
static int64_t check_numbered(const char *dir)
{
    DIR *d = opendir(dir);
    int64_t newest = -1;
    for (struct dirent *e; d && (e = readdir(d));) {
        long long step;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%lld.%7s", &step, tail) != 2 || strcmp(tail, "h5") != 0)
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        sslc_ckpt_info info;
        if (sslc_ckpt_read_info(path, &info) != SSLC_OK)
            fail_msg("a numbered checkpoint is torn: %s", sslc_error_message());
        assert_int_equal(info.step, step);
        sslc_ckpt_info_free(&info);
        if (step > newest)
            newest = step;
    }
    if (d)
        closedir(d);
    return newest;
}

// dir/last.h5's step, after `sslc info` has read it whole; -1 when absent.
static int64_t check_last(const char *dir, const char *log)
{
    if (!exists(dir, "last.h5"))
        return -1;
    char last[8192];
    snprintf(last, sizeof last, "%s/last.h5", dir);
    if (run_sslc(log, (const char *[]){"info", last, NULL}) != 0)
        fail_msg("sslc info refuses last.h5:\n%s", slurp(log));
    assert_non_null(strstr(slurp(log), "method         simclr"));
    sslc_ckpt_info info;
    if (sslc_ckpt_read_info(last, &info) != SSLC_OK)
        fail_msg("last.h5 is torn: %s", sslc_error_message());
    int64_t step = info.step;
    sslc_ckpt_info_free(&info);
    return step;
}

static void pretrain_args(const char **args, const char *data, const char *out)
{
    const char *a[] = {"pretrain", "--data", data, "--out", out, "--width", "4", "--batch", "16",
                       "--epochs", "1000", "--log-every", "1", "--ckpt-every", "1",
                       "--knn-bank", "none", "--shuffle-groups", "1", NULL};
    memcpy(args, a, sizeof a);
}

// Waits until path exists; false after timeout seconds.
static bool wait_for(const char *dir, const char *name, double timeout)
{
    double t0 = sslc_now();
    while (!exists(dir, name))
        if (sslc_now() - t0 > timeout)
            return false;
        else
            usleep(2000);
    return true;
}

static uint64_t env_or(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : fallback;
}

// Kills at three kinds of moment, in turn: a random time after the start
// (sometimes before the first checkpoint), a random time after the first
// checkpoint, and the moment a temporary file appears (inside a save).
static void kill_during_checkpoints_never_tears_last(void **unused)
{
    (void)unused;
    const char *dir = sslc_test_tmpdir("crash-kill");
    char images[4400], data[4500];
    snprintf(images, sizeof images, "%s/images", dir);
    mkdir(images, 0777);
    make_images(images);
    snprintf(data, sizeof data, "folder:%s", images);
    uint64_t seed = env_or("SSLC_KILL_SEED", 20261201);
    int rounds = (int)env_or("SSLC_KILL_ROUNDS", 12);
    printf("  seed %llu (SSLC_KILL_SEED), %d kills\n", (unsigned long long)seed, rounds);
    int early = 0, mid_save = 0;
    for (int round = 0; round < rounds; round++) {
        sslc_rng r = sslc_rng_make(seed, (uint64_t)round, 0, 0, 0);
        char out[4500], log[4600];
        snprintf(out, sizeof out, "%s/run-%d", dir, round);
        snprintf(log, sizeof log, "%s/log-%d.txt", dir, round);
        const char *args[24];
        pretrain_args(args, data, out);
        pid_t pid = spawn(log, args);
        int kind = round % 3;
        double delay = kind == 0 ? sslc_rng_range(&r, 0.05, 1.5) : sslc_rng_range(&r, 0.0, 0.15);
        const char *when = "after the start";
        if (kind > 0 && !wait_for(out, "last.h5", 60)) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("no last.h5 after 60 s:\n%s", slurp(log));
        }
        usleep((useconds_t)(delay * 1e6));
        if (kind == 2) {
            // Poll for a temporary file, the sign of a save under way.
            when = "waiting for a save";
            for (double t0 = sslc_now(); sslc_now() - t0 < 10;) {
                if (count_tmp(out) > 0) {
                    when = "during a save";
                    break;
                }
                usleep(200);
            }
        } else if (kind == 1) {
            when = "after the first checkpoint";
        }
        kill(pid, SIGKILL);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status))
            fail_msg("round %d: pretrain ended by itself (exit %d) before the kill:\n%s", round,
                     WEXITSTATUS(status), slurp(log));

        int tmp = count_tmp(out);
        int64_t newest = check_numbered(out);
        int64_t last = check_last(out, log);
        printf("  round %2d: killed %-26s at %.3f s: last.h5 step %lld, newest ckpt %lld, "
               "%d temporary file(s)\n",
               round, when, delay, (long long)last, (long long)newest, tmp);
        fflush(stdout);
        early += newest < 0 && last < 0;
        mid_save += tmp > 0;
        // last.h5 follows the newest numbered file, or is one save behind
        // when the kill fell between the save and the link.
        if (last >= 0)
            assert_true(last == newest || last == newest - 1);

        // A resume continues from what is there, and clears the leftovers.
        const char *resume[] = {"pretrain", "--resume", out, "--max-steps", "2", NULL};
        int rc = run_sslc(log, resume);
        if (newest < 0 && last < 0) {
            assert_int_equal(rc, 1);
            assert_non_null(strstr(slurp(log), "has no checkpoint"));
            continue;
        }
        if (rc != 0)
            fail_msg("round %d: the resume failed:\n%s", round, slurp(log));
        int64_t from = last >= 0 ? last : newest;
        assert_int_equal(check_last(out, log), from + 2);
        assert_int_equal(count_tmp(out), 0);
        check_numbered(out);
    }
    printf("  %d kills before any checkpoint, %d left a temporary file (killed mid-save)\n",
           early, mid_save);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

// The file-size limit (RLIMIT_FSIZE) of the running trainer is lowered below
// a checkpoint's size partway through the run: the next save fails as on a
// full disk (EFBIG instead of ENOSPC), the run stops with a message naming
// the file and the reason, and the previous checkpoint is whole.
static void full_disk_keeps_the_previous_checkpoint(void **unused)
{
    (void)unused;
    const char *dir = sslc_test_tmpdir("crash-full");
    char images[4400], data[4500], out[4500], log[4600], log2[4600];
    snprintf(images, sizeof images, "%s/images", dir);
    mkdir(images, 0777);
    make_images(images);
    snprintf(data, sizeof data, "folder:%s", images);
    snprintf(out, sizeof out, "%s/run", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(log2, sizeof log2, "%s/log2.txt", dir);
    const char *args[24];
    pretrain_args(args, data, out);
    pid_t pid = spawn(log, args);
    // A few saves first.
    int64_t before = -1;
    for (double t0 = sslc_now(); before < 3 && sslc_now() - t0 < 60; usleep(5000)) {
        char last[4600];
        snprintf(last, sizeof last, "%s/last.h5", out);
        sslc_ckpt_info info;
        if (exists(out, "last.h5") && sslc_ckpt_read_info(last, &info) == SSLC_OK) {
            before = info.step;
            sslc_ckpt_info_free(&info);
        }
    }
    struct stat sb;
    char last[4600];
    snprintf(last, sizeof last, "%s/last.h5", out);
    assert_int_equal(stat(last, &sb), 0);
    // Everything but the checkpoints (metrics, the log) stays far below this.
    struct rlimit lim = {(rlim_t)sb.st_size / 2, RLIM_INFINITY};
    if (before < 3 || prlimit(pid, RLIMIT_FSIZE, &lim, NULL) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("could not set the limit (step %lld, %s):\n%s", (long long)before,
                 strerror(errno), slurp(log));
    }
    int status = 0;
    pid_t w = 0;
    for (double t0 = sslc_now(); (w = waitpid(pid, &status, WNOHANG)) == 0;) {
        if (sslc_now() - t0 > 60) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("the run went on for 60 s with a %lld-byte file-size limit:\n%s",
                     (long long)lim.rlim_cur, slurp(log));
        }
        usleep(10000);
    }
    assert_int_equal(w, pid);
    // The last "sslc pretrain: " line is the error.
    const char *text = slurp(log), *msg = NULL;
    for (const char *p = text; (p = strstr(p, "sslc pretrain: ")); p++)
        msg = p;
    printf("  limit %lld bytes after step %lld: %s", (long long)lim.rlim_cur, (long long)before,
           msg ? msg : text);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_non_null(msg);
    // Which file, what happened to it, why.
    assert_non_null(strstr(msg, out));
    assert_non_null(strstr(msg, "/ckpt-"));
    assert_non_null(strstr(msg, "not saved (the previous file is untouched)"));
    assert_non_null(strstr(msg, "File too large"));
    assert_int_equal(count_tmp(out), 0);

    // The previous checkpoint: whole, the newest there is, and it resumes.
    int64_t newest = check_numbered(out);
    int64_t step = check_last(out, log2);
    assert_true(step >= before);
    assert_int_equal(step, newest);
    const char *resume[] = {"pretrain", "--resume", out, "--max-steps", "1", NULL};
    if (run_sslc(log2, resume) != 0)
        fail_msg("the resume failed:\n%s", slurp(log2));
    assert_int_equal(check_last(out, log2), step + 1);
    char cmd[4600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest e2e[] = {
        cmocka_unit_test(kill_during_checkpoints_never_tears_last),
        cmocka_unit_test(full_disk_keeps_the_previous_checkpoint),
    };
    const sslc_test_group groups[] = {SSLC_GROUP("e2e", e2e)};
    return sslc_test_main(argc, argv, groups, 1);
}
