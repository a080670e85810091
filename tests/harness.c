#include "tests/harness.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/core/rng.h"

int sslc_test_main(int argc, char **argv, const sslc_test_group *groups, size_t count)
{
    int failed = 0, ran = 0;
    for (size_t i = 0; i < count; i++) {
        if (argc > 1 && strcmp(argv[1], groups[i].name) != 0)
            continue;
        ran++;
        failed += _cmocka_run_group_tests(groups[i].name, groups[i].tests, groups[i].count, NULL,
                                          NULL);
    }
    if (!ran) {
        fprintf(stderr, "no test group named '%s'\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    return failed ? 1 : 0;
}

const char *sslc_fixture_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/%s", SSLC_SOURCE_DIR, name);
    return path;
}

const char *sslc_test_tmpdir(const char *tag)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/tmp-%s-%ld", SSLC_BUILD_DIR, tag, (long)getpid());
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0)
        fail_msg("cannot create %s", path);
    return path;
}

double sslc_assert_close(const char *what, const float *a, const float *b, size_t n, double atol,
                         double rtol)
{
    double worst = 0.0, worst_excess = -1.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double excess = d - (atol + rtol * fabs((double)b[i]));
        if (isnan(d))
            excess = INFINITY;
        if (d > worst || isnan(d))
            worst = d;
        if (excess > worst_excess) {
            worst_excess = excess;
            at = i;
        }
    }
    printf("  %-40s n=%zu max|diff|=%.3g (worst at [%zu]: %.7g vs %.7g)\n", what, n, worst, at,
           n ? a[at] : 0.0, n ? b[at] : 0.0);
    if (worst_excess > 0.0)
        fail_msg("%s: [%zu] = %.7g, expected %.7g (atol %.1g, rtol %.1g)", what, at, a[at], b[at],
                 atol, rtol);
    return worst;
}

float *sslc_fixture_floats(const char *file, const char *dataset, size_t *count)
{
    const char *path = sslc_fixture_path(file);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fail_msg("cannot open fixture %s", path);
    hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
    if (d < 0) {
        H5Fclose(f);
        fail_msg("fixture %s has no dataset '%s'", path, dataset);
    }
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    float *buf = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    assert_non_null(buf);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        fail_msg("cannot read '%s' from %s", dataset, path);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    if (count)
        *count = (size_t)n;
    return buf;
}

double sslc_fixture_scalar(const char *file, const char *dataset)
{
    size_t n = 0;
    float *v = sslc_fixture_floats(file, dataset, &n);
    assert_true(n >= 1);
    double x = v[0];
    free(v);
    return x;
}

void sslc_fixture_attr_ints(const char *file, const char *object, const char *attr, int64_t *out,
                            size_t n)
{
    const char *path = sslc_fixture_path(file);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        fail_msg("cannot open fixture %s", path);
    hid_t a = H5Aopen_by_name(f, object, attr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        fail_msg("fixture %s: no attribute %s on %s", path, attr, object);
    hid_t s = H5Aget_space(a);
    hssize_t count = H5Sget_simple_extent_npoints(s);
    if (count != (hssize_t)n)
        fail_msg("fixture %s: %s/%s has %lld values, expected %zu", path, object, attr,
                 (long long)count, n);
    if (H5Aread(a, H5T_NATIVE_INT64, out) < 0)
        fail_msg("fixture %s: cannot read %s/%s", path, object, attr);
    H5Sclose(s);
    H5Aclose(a);
    H5Fclose(f);
}

// Opens attribute attr of object in a fixture file (fails the test when absent).
static hid_t open_attr(const char *file, const char *object, const char *attr, hid_t *f)
{
    const char *path = sslc_fixture_path(file);
    *f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (*f < 0)
        fail_msg("cannot open fixture %s", path);
    hid_t a = H5Aopen_by_name(*f, object, attr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) {
        H5Fclose(*f);
        fail_msg("fixture %s: no attribute %s on %s", path, attr, object);
    }
    return a;
}

double sslc_fixture_attr_double(const char *file, const char *object, const char *attr)
{
    hid_t f, a = open_attr(file, object, attr, &f);
    double v = NAN;
    herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    H5Aclose(a);
    H5Fclose(f);
    if (rc < 0)
        fail_msg("fixture %s: cannot read %s/%s as a number", file, object, attr);
    return v;
}

char *sslc_fixture_attr_string(const char *file, const char *object, const char *attr)
{
    hid_t f, a = open_attr(file, object, attr, &f);
    hid_t type = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type)) {
        size_t n = H5Tget_size(type);
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, n + 1); // room for the terminator
        out = calloc(n + 1, 1);
        if (out && H5Aread(a, mem, out) < 0) {
            free(out);
            out = NULL;
        }
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(a);
    H5Fclose(f);
    if (!out)
        fail_msg("fixture %s: %s/%s is not a fixed-length string", file, object, attr);
    return out;
}

void sslc_test_fill_randn(float *x, size_t n, uint64_t seed, double scale)
{
    sslc_rng r = sslc_rng_make(seed, 0, 0, 0, 0);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(scale * sslc_rng_normal(&r));
}

float *sslc_test_randn(size_t n, uint64_t seed, double scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    sslc_test_fill_randn(x, n, seed, scale);
    return x;
}

int sslc_test_run_cmd(const char *cmd, const char *log, char *out, size_t cap)
{
    size_t need = strlen(cmd) + strlen(log) + 16;
    char *full = malloc(need);
    assert_non_null(full);
    snprintf(full, need, "%s > '%s' 2>&1", cmd, log);
    int rc = system(full);
    free(full);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void sslc_test_skip_reason(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP-REASON: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout); // before cmocka's own "[  SKIPPED ]" line
}

const char *sslc_test_torch_python(char *why, size_t cap)
{
    const char *py = getenv("SSLC_PYTHON") ? getenv("SSLC_PYTHON") : "/usr/bin/python3";
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "%s -c 'import torch, torchvision, h5py' > /dev/null 2>&1", py);
    if (access(py, X_OK) == 0 && system(cmd) == 0)
        return py;
    snprintf(why, cap, "torch, torchvision or h5py is not importable by %s (scripts/test.sh "
                       "installs python3-torch python3-torchvision python3-h5py)", py);
    return NULL;
}

void sslc_test_write_floats(hid_t file, const char *name, int ndim, const hsize_t *dims,
                            const float *x)
{
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    H5Sclose(space);
}
