/* settee-qs: settee's JavaScript query server, SpiderMonkey 102 behind CouchDB's
 * query-server line protocol on stdin/stdout.
 *
 * This file is the host only: it owns the engine, bounds its memory, reads lines
 * and writes replies. The protocol itself (commands, sandbox helpers, error
 * replies) is protocol.js, compiled into the binary and evaluated once at start.
 *
 * Memory: the engine's GC heap is capped (JSGC_MAX_BYTES) and the process's data
 * segment too (RLIMIT_DATA, which on Linux counts private writable mappings, so
 * malloc'd string and array storage as well as GC chunks). A function that
 * allocates without bound makes the engine report out-of-memory, which no JS
 * catch can swallow; the host then answers that command with
 * ["fatal","os_process_error",...] and exits, and the pool starts a clean
 * process. Where SpiderMonkey cannot report (an infallible allocation), it
 * aborts: the pool sees the process die, which costs the same one request.
 *
 * Time: not bounded here. The client owns the timeout (CouchDB's
 * os_process_timeout) and kills a process that does not answer in time. */
#include <atomic>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jsapi.h>
#include <js/CompilationAndEvaluation.h>
#include <js/Conversions.h>
#include <js/Initialization.h>
#include <js/SourceText.h>
#include <js/StableStringChars.h>

#define SETTEE_QS_VERSION "1"

static const char protocol_js[] =
#include "protocol.inc"
    ;

static size_t memory_limit_mb = 256;    /* RLIMIT_DATA and the GC heap's maximum */
static size_t soft_limit;               /* bytes of data segment that count as exhausted */
static std::atomic<bool> out_of_memory; /* set once this process ran out: it exits after the reply */

static JSClass global_class = {"global", JSCLASS_GLOBAL_FLAGS, &JS::DefaultGlobalClassOps};

/* ---------------------------------------------------------------- output */

/* Replies go through stdio's buffer and are flushed once per command, so a
 * command that logs and answers costs one write. */
static void write_line(const char *s, size_t len)
{
    fwrite(s, 1, len, stdout);
    fputc('\n', stdout);
}

static void fatal_reply(const char *id, const char *reason)
{
    fprintf(stdout, "[\"fatal\",\"%s\",\"%s\"]\n", id, reason);
    fflush(stdout);
}

/* ---------------------------------------------------------------- host functions */

static bool host_print(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    JS::RootedString str(cx, JS::ToString(cx, args.get(0)));
    if (!str) return false;
    JS::UniqueChars utf8 = JS_EncodeStringToUTF8(cx, str);
    if (!utf8) return false;
    write_line(utf8.get(), strlen(utf8.get()));
    args.rval().setUndefined();
    return true;
}

/* evaluate(source, name): runs source as a script in the global and returns its
 * completion value. Errors (SyntaxError...) are ordinary exceptions. */
static bool host_evaluate(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    JS::RootedString src(cx, JS::ToString(cx, args.get(0)));
    if (!src) return false;
    JS::UniqueChars name;
    if (args.get(1).isString()) {
        JS::RootedString n(cx, args[1].toString());
        name = JS_EncodeStringToUTF8(cx, n);
        if (!name) return false;
    }
    JS::AutoStableStringChars chars(cx);
    if (!chars.initTwoByte(cx, src)) return false;
    mozilla::Range<const char16_t> range = chars.twoByteRange();
    JS::SourceText<char16_t> text;
    if (!text.init(cx, range.begin().get(), range.length(), JS::SourceOwnership::Borrowed)) return false;
    JS::CompileOptions opts(cx);
    opts.setFileAndLine(name ? name.get() : "design function", 1);
    return JS::Evaluate(cx, opts, text, args.rval());
}

static bool host_deep_freeze(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    args.rval().setUndefined();
    if (!args.get(0).isObject()) return true;
    JS::RootedObject obj(cx, &args[0].toObject());
    return JS_DeepFreezeObject(cx, obj);
}

static bool host_gc(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    JS_GC(cx);
    args.rval().setUndefined();
    return true;
}

static bool host_exit(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    int code = args.get(0).isInt32() ? args[0].toInt32() : 1;
    fflush(stdout);
    /* No engine teardown: the state may be what made us quit. */
    _exit(code);
}

/* outOfMemory(): whether the engine ran out during this process's life. The
 * engine's out-of-memory exception is a plain catchable value in JS, so the
 * protocol asks here before it reports an error as the function's own. */
static bool host_out_of_memory(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    args.rval().setBoolean(out_of_memory);
    return true;
}

static const JSFunctionSpec host_functions[] = {JS_FN("print", host_print, 1, 0),
                                                JS_FN("evaluate", host_evaluate, 2, 0),
                                                JS_FN("deepFreeze", host_deep_freeze, 1, 0),
                                                JS_FN("gc", host_gc, 0, 0),
                                                JS_FN("exit", host_exit, 1, 0),
                                                JS_FN("outOfMemory", host_out_of_memory, 0, 0),
                                                JS_FS_END};

/* ---------------------------------------------------------------- memory bound */

/* Near its limits SpiderMonkey collects and retries before each failing
 * allocation, so a runaway function would spin for many seconds before the engine
 * reports out of memory. A watchdog thread samples the data segment (what
 * RLIMIT_DATA bounds: GC chunks, malloc'd strings and elements) every few
 * milliseconds; past soft_limit it ends the running script at its next interrupt
 * check, which no catch in JS can stop. */
static void *watchdog(void *arg)
{
    JSContext *cx = (JSContext *)arg;
    long page = sysconf(_SC_PAGESIZE);
    for (;;) {
        usleep(10000);
        FILE *f = fopen("/proc/self/statm", "r");
        unsigned long size, rss, shared, text, lib, data;
        int n = f ? fscanf(f, "%lu %lu %lu %lu %lu %lu", &size, &rss, &shared, &text, &lib, &data) : 0;
        if (f) fclose(f);
        if (n == 6 && data * (unsigned long)page > soft_limit && !out_of_memory.exchange(true))
            JS_RequestInterruptCallback(cx);
    }
    return nullptr;
}

static bool on_interrupt(JSContext *cx)
{
    return !out_of_memory;
}

static void on_out_of_memory(JSContext *cx, void *data)
{
    out_of_memory = true;
}

/* ---------------------------------------------------------------- start-up */

/* Evaluates protocol.js, which yields the per-line dispatch function. */
static JSFunction *load_protocol(JSContext *cx, JS::HandleObject global)
{
    JS::RootedObject host(cx, JS_NewPlainObject(cx));
    if (!host || !JS_DefineFunctions(cx, host, host_functions)) return nullptr;
    JS::CompileOptions opts(cx);
    opts.setFileAndLine("protocol.js", 1);
    JS::SourceText<mozilla::Utf8Unit> text;
    if (!text.init(cx, protocol_js, sizeof protocol_js - 1, JS::SourceOwnership::Borrowed)) return nullptr;
    JS::RootedValue factory(cx);
    if (!JS::Evaluate(cx, opts, text, &factory) || !factory.isObject()) return nullptr;
    JS::RootedValueArray<2> argv(cx);
    argv[0].setObject(*global);
    argv[1].setObject(*host);
    JS::RootedValue dispatch(cx);
    if (!JS_CallFunctionValue(cx, nullptr, factory, argv, &dispatch) || !dispatch.isObject()) return nullptr;
    return JS_ValueToFunction(cx, dispatch);
}

static void report_startup_failure(JSContext *cx, const char *what)
{
    JS::RootedValue exc(cx);
    if (JS_GetPendingException(cx, &exc)) {
        JS_ClearPendingException(cx);
        JS::RootedString s(cx, JS::ToString(cx, exc));
        JS::UniqueChars msg = s ? JS_EncodeStringToUTF8(cx, s) : nullptr;
        fprintf(stderr, "settee-qs: %s: %s\n", what, msg ? msg.get() : "(unprintable exception)");
    } else {
        fprintf(stderr, "settee-qs: %s\n", what);
    }
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: settee-qs [--memory-limit MB]\n"
            "CouchDB query-server protocol on stdin/stdout (SpiderMonkey %d).\n"
            "  --memory-limit MB  data segment bound of this process, 0 = none (default 256)\n",
            MOZJS_MAJOR_VERSION);
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--memory-limit") && i + 1 < argc) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(argv[++i], &end, 10);
            if (errno || *end || v > (1ul << 20)) {
                fprintf(stderr, "settee-qs: bad --memory-limit %s\n", argv[i]);
                return 2;
            }
            memory_limit_mb = v;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(argv[i], "--version")) {
            printf("settee-qs %s (SpiderMonkey %d.%d)\n", SETTEE_QS_VERSION, MOZJS_MAJOR_VERSION, MOZJS_MINOR_VERSION);
            return 1;
        } else {
            usage(stderr);
            return 2;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the loop */

static int serve(JSContext *cx)
{
    JS::RealmOptions options;
    /* CouchDB's query server describes thrown values with toSource(). */
    options.creationOptions().setToSourceEnabled(true);
    JS::RootedObject global(cx, JS_NewGlobalObject(cx, &global_class, nullptr, JS::FireOnNewGlobalHook, options));
    if (!global) return 1;
    JSAutoRealm ar(cx, global);
    if (!JS::InitRealmStandardClasses(cx)) return 1;
    JS::RootedFunction dispatch(cx, load_protocol(cx, global));
    if (!dispatch) {
        report_startup_failure(cx, "protocol.js failed to load");
        return 1;
    }

    char *line = nullptr;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n') n--;
        if (n == 0) continue;
        JS::RootedString str(cx, JS_NewStringCopyUTF8N(cx, JS::UTF8Chars(line, (size_t)n)));
        JS::RootedValueArray<1> argv(cx);
        JS::RootedValue rval(cx);
        bool ok = str != nullptr;
        if (ok) {
            argv[0].setString(str);
            ok = JS_CallFunction(cx, nullptr, dispatch, argv, &rval);
        }
        if (!ok) {
            JS::RootedValue exc(cx);
            if (!out_of_memory && JS_GetPendingException(cx, &exc) && !JS_IsThrowingOutOfMemory(cx)) {
                /* protocol.js catches what design functions throw; what reaches here
                 * is a line that is not UTF-8, or a reply that could not be written. */
                JS_ClearPendingException(cx);
                fatal_reply("query_protocol_error", "the command could not be run");
            } else {
                /* Out of memory (uncatchable in JS): this process's state is suspect. */
                char reason[128];
                snprintf(reason, sizeof reason, "JavaScript ran out of memory (limit %zu MB)", memory_limit_mb);
                fatal_reply("os_process_error", reason);
            }
            free(line);
            return 1;
        }
        fflush(stdout);
        if (out_of_memory) break; /* the function caught it and answered; start clean */
        JS_MaybeGC(cx);
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    int rc = parse_args(argc, argv);
    if (rc) return rc == 1 ? 0 : rc;
    if (memory_limit_mb) {
        struct rlimit rl;
        rl.rlim_cur = rl.rlim_max = (rlim_t)memory_limit_mb << 20;
        if (setrlimit(RLIMIT_DATA, &rl) != 0) perror("settee-qs: setrlimit(RLIMIT_DATA)");
    }
    /* Full buffering: replies are flushed by the loop, once per command. */
    setvbuf(stdout, nullptr, _IOFBF, 1 << 16);

    if (!JS_Init()) {
        fprintf(stderr, "settee-qs: JS_Init failed\n");
        return 1;
    }
    uint32_t heap =
        memory_limit_mb && memory_limit_mb < 4096 ? (uint32_t)(memory_limit_mb << 20) : JS::DefaultHeapMaxBytes;
    JSContext *cx = JS_NewContext(heap);
    if (!cx) {
        fprintf(stderr, "settee-qs: cannot create a JavaScript context\n");
        return 1;
    }
    if (!JS::InitSelfHostedCode(cx)) {
        fprintf(stderr, "settee-qs: cannot initialise SpiderMonkey\n");
        return 1;
    }
    soft_limit = (memory_limit_mb << 20) / 4 * 3;
    JS_AddInterruptCallback(cx, on_interrupt);
    JS::SetOutOfMemoryCallback(cx, on_out_of_memory, nullptr);
    pthread_t tid;
    if (soft_limit && pthread_create(&tid, nullptr, watchdog, cx) != 0) {
        fprintf(stderr, "settee-qs: cannot start the memory watchdog\n");
        return 1;
    }
    rc = serve(cx);
    fflush(stdout);
    /* No teardown: the watchdog still holds cx, and the OS frees it all at once. */
    _exit(rc);
}
