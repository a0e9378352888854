/* pwsync-filter.dll under wine. Modes (one process each, because the filter reads its
 * registry settings once, as it would in LSASS):
 *   harness <dll> <vectors-dir> <work-dir> <capture-dir> <arch> main
 *   harness ... stress   (QueueCapacity 16: queue overflow path, many threads, exactly-once)
 *   harness ... bench    (hand-off latency per call, agent up and down; printed, not asserted)
 * Prints TAP-ish "ok"/"not ok" lines and a final "N passed, N failed" line; exit 1 on failure. */
#include "harness.h"
#include <stdlib.h>

typedef BOOLEAN(NTAPI *init_fn)(void);
typedef BOOLEAN(NTAPI *filter_fn)(PUNICODE_STRING, PUNICODE_STRING, PUNICODE_STRING, BOOLEAN);
typedef NTSTATUS(NTAPI *notify_fn)(PUNICODE_STRING, ULONG, PUNICODE_STRING);

static init_fn p_init;
static filter_fn p_filter;
static notify_fn p_notify;
static int g_pass, g_fail;
static WCHAR g_pipe[128], g_spool[MAX_PATH], g_capture[MAX_PATH];
static const char *g_arch;
static double g_qpc_us;

static void check(int ok, const char *what)
{
    if (ok) g_pass++; else g_fail++;
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    fflush(stdout);
}

static BYTE *read_all(const WCHAR *path, DWORD *len)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    BYTE *buf;
    DWORD got = 0;
    if (h == INVALID_HANDLE_VALUE) return NULL;
    *len = GetFileSize(h, NULL);
    buf = malloc(*len + 1);
    if (!ReadFile(h, buf, *len, &got, NULL) || got != *len) { free(buf); buf = NULL; }
    CloseHandle(h);
    return buf;
}

static void write_all(const WCHAR *path, const BYTE *p, DWORD n)
{
    HANDLE h = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD w;
    if (h == INVALID_HANDLE_VALUE) return;
    WriteFile(h, p, n, &w, NULL);
    CloseHandle(h);
}

static void set_config(DWORD queue_capacity)
{
    HKEY k;
    DWORD timeout = 2000;
    RegCreateKeyExW(HKEY_LOCAL_MACHINE, L"SOFTWARE\\pwsync\\Filter", 0, NULL, 0, KEY_ALL_ACCESS, NULL, &k, NULL);
    RegSetValueExW(k, L"PipeName", 0, REG_SZ, (const BYTE *)g_pipe, (DWORD)(wcslen(g_pipe) + 1) * 2);
    RegSetValueExW(k, L"SpoolDirectory", 0, REG_SZ, (const BYTE *)g_spool, (DWORD)(wcslen(g_spool) + 1) * 2);
    RegSetValueExW(k, L"PipeTimeoutMs", 0, REG_DWORD, (const BYTE *)&timeout, 4);
    if (queue_capacity) RegSetValueExW(k, L"QueueCapacity", 0, REG_DWORD, (const BYTE *)&queue_capacity, 4);
    else RegDeleteValueW(k, L"QueueCapacity");
    RegCloseKey(k);
}

static BOOL load(const WCHAR *dll)
{
    HMODULE m = LoadLibraryW(dll);
    check(m != NULL, "LoadLibraryW loads the DLL");
    if (!m) return FALSE;
    p_init = (init_fn)(void (*)(void))GetProcAddress(m, "InitializeChangeNotify");
    p_filter = (filter_fn)(void (*)(void))GetProcAddress(m, "PasswordFilter");
    p_notify = (notify_fn)(void (*)(void))GetProcAddress(m, "PasswordChangeNotify");
    check(p_init && p_filter && p_notify, "exports InitializeChangeNotify, PasswordFilter, PasswordChangeNotify");
    if (!(p_init && p_filter && p_notify)) return FALSE;
    check(p_init() == TRUE, "InitializeChangeNotify returns TRUE");
    return TRUE;
    /* never FreeLibrary: like LSA, which never unloads a notification package */
}

/* LSA's view of a string: a buffer we own, MaximumLength a little larger, no NUL. */
typedef struct { UNICODE_STRING us; BYTE *copy; BYTE *mem; } lsa_str;

static lsa_str lsa_string(const BYTE *bytes, USHORT len, USHORT slack)
{
    lsa_str s;
    s.mem = calloc(1, (size_t)len + slack + 2);
    memcpy(s.mem, bytes, len);
    s.copy = malloc((size_t)len + slack + 2);
    memcpy(s.copy, s.mem, (size_t)len + slack + 2);
    s.us.Buffer = (PWSTR)s.mem;
    s.us.Length = len;
    s.us.MaximumLength = (USHORT)(len + slack);
    return s;
}

static BOOL lsa_untouched(lsa_str *s)
{
    BOOL same = memcmp(s->copy, s->mem, (size_t)s->us.MaximumLength + 2) == 0;
    free(s->copy);
    free(s->mem);
    return same;
}

static ULONGLONG now_filetime(void)
{
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    return ((ULONGLONG)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
}

static double call_notify(UNICODE_STRING *user, UNICODE_STRING *pw)
{
    LARGE_INTEGER a, b;
    QueryPerformanceCounter(&a);
    p_notify(user, 1105, pw);
    QueryPerformanceCounter(&b);
    return (double)(b.QuadPart - a.QuadPart) * g_qpc_us;
}

/* Same bytes as the vector except sequence and capturedAt (bytes 16..31), which are runtime
 * values and are checked on their own. */
static BOOL same_frame_modulo_runtime(const BYTE *got, DWORD got_len, const BYTE *want, DWORD want_len)
{
    return got_len == want_len && memcmp(got, want, 16) == 0 && memcmp(got + 32, want + 32, want_len - 32) == 0;
}

typedef struct { const char *name; BYTE *bytes; DWORD len; } vector;
static const char *VALID[] = {"valid-ascii", "valid-nonbmp", "valid-max-account", "valid-max-password",
                              "valid-empty-password"};
#define NVALID (sizeof(VALID) / sizeof(VALID[0]))
static vector g_vec[NVALID];

static BOOL load_vectors(const WCHAR *dir)
{
    WCHAR path[MAX_PATH];
    for (size_t i = 0; i < NVALID; i++) {
        swprintf(path, MAX_PATH, L"%ls\\%hs.bin", dir, VALID[i]);
        g_vec[i].name = VALID[i];
        g_vec[i].bytes = read_all(path, &g_vec[i].len);
        if (!g_vec[i].bytes) { printf("not ok - cannot read vector %s\n", VALID[i]); return FALSE; }
    }
    return TRUE;
}

/* Feeds vector v's account and password to the filter, as LSA would. */
static double notify_vector(const vector *v, BOOL *untouched)
{
    USHORT a = h_u16(v->bytes + 32), p = h_u16(v->bytes + 34);
    lsa_str user = lsa_string(v->bytes + H_HEADER, a, 8);
    lsa_str pw = lsa_string(v->bytes + H_HEADER + a, p, 8);
    double us = call_notify(&user.us, &pw.us);
    BOOL u1 = lsa_untouched(&user), u2 = lsa_untouched(&pw);
    if (untouched) *untouched = u1 && u2;
    return us;
}

static void save_capture(const char *name, int n, const h_frame *f)
{
    WCHAR path[MAX_PATH];
    swprintf(path, MAX_PATH, L"%ls\\%hs.%hs-%d.bin", g_capture, name, g_arch, n);
    write_all(path, f->bytes, f->len);
}

/* ---------------------------------------------------------------- main mode */

typedef struct { int n; int bad; ULONGLONG last_seq; const vector *expect; } drain_ctx;

static void drained_frame(const BYTE *frame, DWORD len, void *ctx)
{
    drain_ctx *c = ctx;
    const vector *v = &c->expect[c->n % NVALID];
    if (!same_frame_modulo_runtime(frame, len, v->bytes, v->len)) c->bad++;
    if (h_u64(frame + 16) <= c->last_seq) c->bad++;
    c->last_seq = h_u64(frame + 16);
    c->n++;
}

static void run_main(void)
{
    char what[256];
    h_server *srv;
    h_frame f;
    ULONGLONG last_seq = 0;
    DWORD base, n, tmp = 0, checked = 0;
    BOOL untouched;
    UNICODE_STRING empty = {0, 0, NULL};

    check(p_filter(NULL, NULL, NULL, FALSE) == TRUE, "PasswordFilter returns TRUE without touching NULL arguments");
    {
        lsa_str u = lsa_string(g_vec[0].bytes + H_HEADER, h_u16(g_vec[0].bytes + 32), 0);
        check(p_filter(&u.us, &u.us, &u.us, TRUE) == TRUE && lsa_untouched(&u), "PasswordFilter returns TRUE for a set");
    }

    srv = h_server_start(g_pipe, 2);
    /* 1. every valid vector, byte for byte through the pipe */
    for (size_t i = 0; i < NVALID; i++) {
        ULONGLONG before = now_filetime(), after;
        base = h_server_count(srv);
        notify_vector(&g_vec[i], &untouched);
        after = now_filetime();
        n = h_server_wait(srv, base + 1, 15000);
        snprintf(what, sizeof(what), "%s: one frame reaches the agent pipe", g_vec[i].name);
        check(n == base + 1 && h_server_get(srv, base, &f), what);
        if (n != base + 1) continue;
        snprintf(what, sizeof(what), "%s: frame equals the vector byte for byte (bar sequence/time)", g_vec[i].name);
        check(same_frame_modulo_runtime(f.bytes, f.len, g_vec[i].bytes, g_vec[i].len), what);
        snprintf(what, sizeof(what), "%s: sequence increases, capturedAt within the call", g_vec[i].name);
        check(h_u64(f.bytes + 16) > last_seq && h_u64(f.bytes + 24) >= before && h_u64(f.bytes + 24) <= after, what);
        snprintf(what, sizeof(what), "%s: LSA's buffers are not written", g_vec[i].name);
        check(untouched, what);
        last_seq = h_u64(f.bytes + 16);
        save_capture(g_vec[i].name, 0, &f);
    }

    /* 2. malformed input: no frame, no spool, no crash */
    {
        BYTE name[600], pwd[600];
        for (int i = 0; i < 600; i++) { name[i] = (i & 1) ? 0 : (BYTE)('a' + i % 26); pwd[i] = (i & 1) ? 0 : 'C'; }
        struct { const char *label; USHORT al, amax; USHORT pl, pmax; int null_user, null_pw, null_buf; } cases[] = {
            {"odd account Length", 11, 20, 10, 20, 0, 0, 0},
            {"odd password Length", 10, 20, 9, 20, 0, 0, 0},
            {"account Length > MaximumLength", 20, 10, 10, 20, 0, 0, 0},
            {"password Length > MaximumLength", 10, 20, 20, 18, 0, 0, 0},
            {"account of 257 characters", 514, 600, 10, 20, 0, 0, 0},
            {"password of 257 characters", 10, 20, 514, 600, 0, 0, 0},
            {"empty account", 0, 0, 10, 20, 0, 0, 0},
            {"NULL account UNICODE_STRING", 10, 20, 10, 20, 1, 0, 0},
            {"NULL password UNICODE_STRING", 10, 20, 10, 20, 0, 1, 0},
            {"NULL buffer with Length 10", 10, 20, 10, 20, 0, 0, 1},
        };
        base = h_server_count(srv);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            UNICODE_STRING u = {cases[i].al, cases[i].amax, (PWSTR)name};
            UNICODE_STRING p = {cases[i].pl, cases[i].pmax, (PWSTR)pwd};
            if (cases[i].null_buf) u.Buffer = NULL;
            p_notify(cases[i].null_user ? NULL : &u, 1, cases[i].null_pw ? NULL : &p);
            snprintf(what, sizeof(what), "malformed (%s): call returns, nothing is sent", cases[i].label);
            check(1, what);
        }
        notify_vector(&g_vec[0], NULL); /* sentinel: the only frame that may arrive */
        n = h_server_wait(srv, base + 1, 15000);
        Sleep(100);
        n = h_server_count(srv);
        check(n == base + 1 && h_server_get(srv, base, &f) && same_frame_modulo_runtime(f.bytes, f.len, g_vec[0].bytes, g_vec[0].len),
              "malformed input produced no frame (only the sentinel after them arrived)");
        check(h_spool_count(g_spool, NULL) == 0, "malformed input produced no spool file");
        check(p_notify(&empty, 1, &empty) == 0, "empty account and password: STATUS_SUCCESS, no frame");
    }

    /* 3. agent absent: spool written, encrypted, atomically */
    h_server_stop(srv);
    base = h_server_count(srv);
    for (int r = 0; r < 4; r++)
        for (size_t i = 0; i < NVALID; i++) notify_vector(&g_vec[i], NULL);
    n = h_spool_wait(g_spool, 4 * NVALID, 30000);
    snprintf(what, sizeof(what), "agent down: %u calls leave %lu spool files", (unsigned)(4 * NVALID), (unsigned long)n);
    check(n == 4 * NVALID, what);
    h_spool_count(g_spool, &tmp);
    check(tmp == 0, "no .tmp file is left behind (temp + rename)");
    {
        static const char *needles[] = {"CANARY", "canary"};
        for (int k = 0; k < 2; k++) {
            BYTE u16[32];
            size_t L = strlen(needles[k]);
            for (size_t j = 0; j < L; j++) { u16[2 * j] = (BYTE)needles[k][j]; u16[2 * j + 1] = 0; }
            snprintf(what, sizeof(what), "spool files contain no UTF-8 \"%s\"", needles[k]);
            check(h_spool_scan(g_spool, (const BYTE *)needles[k], (DWORD)L, &checked) == 0 && checked == n, what);
            snprintf(what, sizeof(what), "spool files contain no UTF-16LE \"%s\"", needles[k]);
            check(h_spool_scan(g_spool, u16, (DWORD)(2 * L), &checked) == 0 && checked == n, what);
        }
    }
    check(h_server_count(srv) == base, "nothing reached the pipe while the agent was down");

    /* 4. agent back: it drains the spool (the harness plays the agent), new changes use the pipe */
    srv = h_server_restart(srv, g_pipe, 2);
    {
        drain_ctx c = {0, 0, 0, g_vec};
        DWORD d = h_spool_drain(g_spool, drained_frame, &c);
        check(d == 4 * NVALID && c.n == (int)(4 * NVALID), "agent back: every spool file decrypts (DPAPI) to a frame");
        check(c.bad == 0, "drained frames equal the vectors, in capture order");
        check(h_spool_count(g_spool, NULL) == 0, "spool is empty after draining");
    }
    base = h_server_count(srv);
    notify_vector(&g_vec[1], NULL);
    check(h_server_wait(srv, base + 1, 15000) == base + 1, "after the agent returns, the next change goes to the pipe");
    h_server_stop(srv);
}

/* ---------------------------------------------------------------- stress mode */

#define STRESS_THREADS 16
#define STRESS_CALLS 250

static DWORD WINAPI stress_thread(LPVOID arg)
{
    int t = (int)(INT_PTR)arg;
    WCHAR acct[32], pw[48];
    for (int i = 0; i < STRESS_CALLS; i++) {
        int al = swprintf(acct, 32, L"stress-%02d-%04d", t, i);
        int pl = swprintf(pw, 48, L"CANARY-stress-%02d-%04d", t, i);
        UNICODE_STRING u = {(USHORT)(al * 2), (USHORT)(al * 2 + 2), acct};
        UNICODE_STRING p = {(USHORT)(pl * 2), (USHORT)(pl * 2 + 2), pw};
        p_notify(&u, 1000 + i, &p);
    }
    return 0;
}

static unsigned char g_seen[STRESS_THREADS][STRESS_CALLS];
static int g_stress_bad;

static void count_frame(const BYTE *frame, DWORD len, void *ctx)
{
    WCHAR acct[64] = {0};
    int t, i;
    USHORT a = h_u16(frame + 32);
    (void)ctx;
    if (len < H_HEADER || a >= sizeof(acct)) { g_stress_bad++; return; }
    memcpy(acct, frame + H_HEADER, a);
    if (swscanf(acct, L"stress-%d-%d", &t, &i) != 2 || t < 0 || t >= STRESS_THREADS || i < 0 || i >= STRESS_CALLS) {
        g_stress_bad++;
        return;
    }
    g_seen[t][i]++;
}

static void run_stress(void)
{
    HANDLE th[STRESS_THREADS];
    h_server *srv = h_server_start(g_pipe, 2);
    DWORD total = STRESS_THREADS * STRESS_CALLS, piped, spooled, drained;
    char what[160];
    h_frame f;
    int dup = 0, lost = 0;
    ULONGLONG deadline;

    for (int t = 0; t < STRESS_THREADS; t++) th[t] = CreateThread(NULL, 0, stress_thread, (LPVOID)(INT_PTR)t, 0, NULL);
    WaitForMultipleObjects(STRESS_THREADS, th, TRUE, INFINITE);
    check(1, "16 threads x 250 PasswordChangeNotify calls return (queue capacity 16)");
    deadline = GetTickCount64() + 120000;
    do {
        piped = h_server_count(srv);
        spooled = h_spool_count(g_spool, NULL);
        if (piped + spooled >= total) break;
        Sleep(20);
    } while (GetTickCount64() < deadline);
    Sleep(200);
    piped = h_server_count(srv);
    h_server_stop(srv);
    for (DWORD k = 0; k < piped; k++) if (h_server_get(srv, k, &f)) count_frame(f.bytes, f.len, NULL);
    drained = h_spool_drain(g_spool, count_frame, NULL);
    spooled = drained == (DWORD)-1 ? 0 : drained;
    for (int t = 0; t < STRESS_THREADS; t++)
        for (int i = 0; i < STRESS_CALLS; i++) { if (g_seen[t][i] == 0) lost++; if (g_seen[t][i] > 1) dup++; }
    snprintf(what, sizeof(what), "stress: %lu via pipe + %lu via overflow spool = %lu frames, 0 lost (%d), 0 duplicated (%d)",
             (unsigned long)piped, (unsigned long)spooled, (unsigned long)(piped + spooled), lost, dup);
    check(lost == 0 && dup == 0 && g_stress_bad == 0 && drained != (DWORD)-1, what);
    check(spooled > 0, "stress: the queue overflowed and the overflow was spooled, not dropped");
}

/* ---------------------------------------------------------------- bench mode */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *label, double *us, int n)
{
    qsort(us, n, sizeof(double), cmp_double);
    printf("bench %s %s: n=%d p50=%.1fus p99=%.1fus max=%.1fus\n", g_arch, label, n, us[n / 2], us[(n * 99) / 100],
           us[n - 1]);
}

static void run_bench(void)
{
    enum { N = 2000 };
    static double us[N];
    h_server *srv = h_server_start(g_pipe, 2);
    DWORD base = h_server_count(srv), got;
    ULONGLONG t0;
    for (int i = 0; i < N; i++) us[i] = notify_vector(&g_vec[i % NVALID], NULL);
    t0 = GetTickCount64();
    /* Pipe or (after a transient pipe error) spool: either is a delivery. */
    while ((got = h_server_count(srv) - base) + h_spool_count(g_spool, NULL) < N && GetTickCount64() < t0 + 120000) Sleep(5);
    report("agent-up", us, N);
    printf("bench %s agent-up: worker delivered %lu frames through the pipe (%lu spooled) in %llu ms after the last call\n",
           g_arch, (unsigned long)got, (unsigned long)h_spool_count(g_spool, NULL), GetTickCount64() - t0);
    h_spool_clear(g_spool);
    h_server_stop(srv);
    for (int i = 0; i < N; i++) us[i] = notify_vector(&g_vec[i % NVALID], NULL);
    report("agent-down", us, N);
    /* Not waiting for the worker to finish spooling: that is disk speed under wine, not LSA's
     * wait. The spool folder is cleared at the next start. */
    printf("bench %s agent-down: %lu of %d already spooled when the last call returned\n", g_arch,
           (unsigned long)h_spool_count(g_spool, NULL), N);
    check(1, "bench completed");
}

int wmain(int argc, WCHAR **argv)
{
    LARGE_INTEGER freq;
    static char arch[16];
    if (argc < 7) {
        fprintf(stderr, "usage: harness <dll> <vectors-dir> <work-dir> <capture-dir> <arch> main|stress|bench\n");
        return 2;
    }
    QueryPerformanceFrequency(&freq);
    g_qpc_us = 1e6 / (double)freq.QuadPart;
    WideCharToMultiByte(CP_UTF8, 0, argv[5], -1, arch, sizeof(arch), NULL, NULL);
    g_arch = arch;
    swprintf(g_pipe, 128, L"\\\\.\\pipe\\pwsync-test-%lu", GetCurrentProcessId());
    swprintf(g_spool, MAX_PATH, L"%ls\\spool-%ls", argv[3], argv[6]);
    lstrcpynW(g_capture, argv[4], MAX_PATH);
    CreateDirectoryW(argv[3], NULL);
    CreateDirectoryW(g_capture, NULL);
    h_spool_clear(g_spool);
    set_config(lstrcmpW(argv[6], L"stress") == 0 ? 16 : 0);
    if (!load_vectors(argv[2]) || !load(argv[1])) return 1;
    if (lstrcmpW(argv[6], L"main") == 0) run_main();
    else if (lstrcmpW(argv[6], L"stress") == 0) run_stress();
    else if (lstrcmpW(argv[6], L"bench") == 0) run_bench();
    printf("harness %s %ls: %d passed, %d failed\n", g_arch, argv[6], g_pass, g_fail);
    fflush(stdout);
    /* skip DLL detach entirely, as lsass never gets there while running */
    TerminateProcess(GetCurrentProcess(), g_fail ? 1 : 0);
    return g_fail ? 1 : 0;
}
