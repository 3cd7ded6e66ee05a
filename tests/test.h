/*
 * A minimal unit-test harness: each test is a function returning void that
 * uses CHECK macros; main() runs the cases named in a table. A failed check
 * prints file, line and the expression, marks the case failed and goes on,
 * so one run shows every broken condition.
 */
#ifndef SN_TEST_H
#define SN_TEST_H

#include <stdio.h>
#include <string.h>

extern int sn_test_failures;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                       \
            sn_test_failures++;                                             \
        }                                                                   \
    } while (0)

#define CHECK_INT(actual, expected)                                         \
    do {                                                                    \
        long long a_ = (long long)(actual), e_ = (long long)(expected);     \
        if (a_ != e_) {                                                     \
            fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, \
                    __LINE__, #actual, a_, e_);                             \
            sn_test_failures++;                                             \
        }                                                                   \
    } while (0)

#define CHECK_STR(actual, expected)                                         \
    do {                                                                    \
        const char *a_ = (actual), *e_ = (expected);                        \
        if (a_ == NULL || strcmp(a_, e_) != 0) {                            \
            fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n",       \
                    __FILE__, __LINE__, #actual, a_ ? a_ : "(null)", e_);   \
            sn_test_failures++;                                             \
        }                                                                   \
    } while (0)

struct sn_test_case {
    const char *name;
    void (*run)(void);
};

/* Runs every case, or only the one named in argv[1]; returns the exit code. */
int sn_test_main(int argc, char **argv, const struct sn_test_case *cases,
                 size_t n_cases);

#define SN_TEST_MAIN(...)                                                   \
    int sn_test_failures;                                                   \
    int main(int argc, char **argv)                                         \
    {                                                                       \
        static const struct sn_test_case cases_[] = {__VA_ARGS__};         \
        return sn_test_main(argc, argv, cases_,                             \
                            sizeof(cases_) / sizeof(cases_[0]));            \
    }                                                                       \
    int sn_test_main(int argc, char **argv,                                 \
                     const struct sn_test_case *cases, size_t n_cases)      \
    {                                                                       \
        int failed = 0;                                                     \
        for (size_t i = 0; i < n_cases; i++) {                              \
            if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)            \
                continue;                                                   \
            int before = sn_test_failures;                                  \
            cases[i].run();                                                 \
            int ok = sn_test_failures == before;                            \
            printf("%s %s\n", ok ? "ok  " : "FAIL", cases[i].name);         \
            failed += !ok;                                                  \
        }                                                                   \
        return failed ? 1 : 0;                                              \
    }

#define TEST_CASE(fn) {#fn, fn}

#endif
