/* The HTTP/2 per-connection request-rate guard (src/http/h2guard.c): a token
 * bucket per connection id, bursts of twice the rate, refusal once and then
 * "again", independent connections, quiet entries reused, and 0 = no limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <cmocka.h>
#include "src/http/http.h"

static void burst_then_rate(void **state)
{
    stt_h2guard_t *g = stt_h2guard_new(100);
    uint64_t t = 1000000;
    for (int i = 0; i < 200; i++)
        assert_int_equal(stt_h2guard_admit(g, 7, t, NULL), 1);
    assert_int_equal(stt_h2guard_admit(g, 7, t, NULL), 0);
    assert_int_equal(stt_h2guard_admit(g, 7, t + 1000, NULL), -1); /* shut stays shut */
    /* another connection has its own bucket */
    assert_int_equal(stt_h2guard_admit(g, 8, t, NULL), 1);
    /* a connection's first request is told apart; shut makes its next ones "again" */
    bool first;
    assert_int_equal(stt_h2guard_admit(g, 9, t, &first), 1);
    assert_true(first);
    assert_int_equal(stt_h2guard_admit(g, 9, t, &first), 1);
    assert_false(first);
    stt_h2guard_shut(g, 9);
    assert_int_equal(stt_h2guard_admit(g, 9, t, NULL), -1);
    stt_h2guard_free(g);
}

static void refill(void **state)
{
    stt_h2guard_t *g = stt_h2guard_new(100);
    uint64_t t = 5000;
    for (int i = 0; i < 150; i++)
        assert_int_equal(stt_h2guard_admit(g, 1, t, NULL), 1);
    /* 100 per second: 1 s later the 50 left plus 100 new, capped at 200 */
    t += 1000;
    for (int i = 0; i < 150; i++)
        assert_int_equal(stt_h2guard_admit(g, 1, t, NULL), 1);
    assert_int_equal(stt_h2guard_admit(g, 1, t, NULL), 0);
    /* a steady 90 per second never runs out */
    stt_h2guard_t *s = stt_h2guard_new(100);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(stt_h2guard_admit(s, 2, 10000 + (uint64_t)i * 1000 / 90, NULL), 1);
    stt_h2guard_free(s);
    stt_h2guard_free(g);
}

static void unlimited_and_reuse(void **state)
{
    stt_h2guard_t *g = stt_h2guard_new(0);
    for (int i = 0; i < 100000; i++)
        assert_int_equal(stt_h2guard_admit(g, 3, 1, NULL), 1);
    stt_h2guard_free(g);
    /* many connections: the fixed table reuses quiet entries and fails open when full */
    stt_h2guard_t *h = stt_h2guard_new(10);
    for (uint64_t c = 1; c <= 100000; c++)
        assert_int_equal(stt_h2guard_admit(h, c, 1000, NULL), 1);
    for (uint64_t c = 100001; c <= 110000; c++)
        assert_int_equal(stt_h2guard_admit(h, c, 20000, NULL), 1);
    stt_h2guard_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_then_rate),
        cmocka_unit_test(refill),
        cmocka_unit_test(unlimited_and_reuse),
    };
    return cmocka_run_group_tests_name("h2guard", tests, NULL, NULL);
}
