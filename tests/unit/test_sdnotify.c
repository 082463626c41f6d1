/* Unit tests for src/common/sdnotify.c: the datagram reaches a socket named by
 * $NOTIFY_SOCKET (a path, or an abstract name with '@'), nothing is sent without
 * the variable, and a malformed name is refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "src/common/sdnotify.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A datagram socket bound to name (a leading '@': abstract); its fd. */
static int listen_at(const char *name)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    if (name[0] == '@') sa.sun_path[0] = '\0';
    if (bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0)
        fail_msg("bind %s", name);
    return fd;
}

static void expect(int fd, const char *want)
{
    char buf[64] = {0};
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
    if (n < 0 || strcmp(buf, want) != 0) fail_msg("received %zd '%s', want '%s'", n, n > 0 ? buf : "", want);
}

static void path_socket(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof(path), "/tmp/stt-notify-%d", (int)getpid());
    unlink(path);
    int fd = listen_at(path);
    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(stt_sd_notify("READY=1"), 0);
    expect(fd, "READY=1");
    assert_int_equal(stt_sd_notify("STOPPING=1"), 0);
    expect(fd, "STOPPING=1");
    close(fd);
    unlink(path);
}

static void abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof(name), "@stt-notify-%d", (int)getpid());
    int fd = listen_at(name);
    setenv("NOTIFY_SOCKET", name, 1);
    assert_int_equal(stt_sd_notify("READY=1"), 0);
    expect(fd, "READY=1");
    close(fd);
}

static void without_socket(void **state)
{
    (void)state;
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(stt_sd_notify("READY=1"), 0);
    setenv("NOTIFY_SOCKET", "relative/path", 1);
    assert_true(stt_sd_notify("READY=1") < 0);
    setenv("NOTIFY_SOCKET", "/nonexistent/settee-notify", 1);
    assert_true(stt_sd_notify("READY=1") < 0);
    unsetenv("NOTIFY_SOCKET");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_socket),
        cmocka_unit_test(abstract_socket),
        cmocka_unit_test(without_socket),
    };
    if (argc > 1) cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests_name("sdnotify", tests, NULL, NULL);
}
