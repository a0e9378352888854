/* The hand-off. LSA's thread only copies the change into a heap frame and links it into a
 * bounded FIFO under a critical section held for a few pointer operations: no pipe, no disk, no
 * DPAPI, no event log, never a wait. Two threads of ours do the rest:
 *   - the pipe worker hands frames to the agent, routes what the agent cannot take to the spool
 *     thread, and is the only thread that writes to the event log (counted reports);
 *   - the spool thread verifies the spool folder and writes DPAPI-encrypted files.
 * When both queues are full the change is dropped and counted (event 2008): LSA never waits.
 * Every frame buffer is wiped in full before it is freed. */
#include "pwsync.h"
#include "messages.h"

typedef struct pw_item {
    struct pw_item *next;
    DWORD len;
    BYTE frame[PW_MAX_FRAME_BYTES];
} pw_item;

typedef struct pw_fifo {
    pw_item *head, *tail;
    DWORD count;
} pw_fifo;

/* What LSA's thread saw but must not report itself: kept here for the pipe worker. */
#define PW_INPUT_REPORTS 16
typedef struct pw_input_report {
    const WCHAR *which;
    enum pw_input_problem problem;
    USHORT length, maximum;
} pw_input_report;

typedef struct pw_reports {
    pw_input_report input[PW_INPUT_REPORTS];
    DWORD input_count;
    DWORD input_overflow; /* malformed inputs beyond the ring: counted only */
    DWORD dropped_full;
    DWORD dropped_no_memory;
    DWORD lost;               /* spool write failed */
    const WCHAR *lost_step;
    DWORD lost_error;
    BOOL untrusted_now;       /* spool folder failed verification (episode state) */
    const WCHAR *untrusted_why;
    BOOL trusted_again;
    BOOL backlog_started;
} pw_reports;

/* Thread stacks: reserved (committed on demand), as large as the process default, because the
 * spool thread calls DPAPI (an RPC into LSASS's own key service), the security APIs and file I/O,
 * whose stack needs are Windows' and not ours to bound; 64 KiB was a guess too tight for them. */
#define PW_THREAD_STACK (1024 * 1024)
/* After a failed hand-off the pipe is tried again after this long; meanwhile frames go to the
 * spool, so a hung agent costs one pipe timeout per probe instead of one per frame. */
#define PW_PROBE_INTERVAL_MS 1000

static INIT_ONCE g_once = INIT_ONCE_STATIC_INIT;
static CRITICAL_SECTION g_lock;
static CONDITION_VARIABLE g_wake_pipe, g_wake_spool, g_spool_space;
static pw_fifo g_pipe_q, g_spool_q;
static pw_reports g_rep;
static ULONGLONG g_sequence;
static BOOL g_running;
static pw_config g_cfg;

static void release_item(pw_item *item)
{
    SecureZeroMemory(item, sizeof(*item));
    HeapFree(GetProcessHeap(), 0, item);
}

static void push(pw_fifo *q, pw_item *item)
{
    item->next = NULL;
    if (q->tail) q->tail->next = item; else q->head = item;
    q->tail = item;
    q->count++;
}

static pw_item *pop(pw_fifo *q)
{
    pw_item *item = q->head;
    if (item == NULL) return NULL;
    q->head = item->next;
    if (q->head == NULL) q->tail = NULL;
    q->count--;
    return item;
}

static BOOL reports_pending(const pw_reports *r)
{
    return r->input_count || r->input_overflow || r->dropped_full || r->dropped_no_memory || r->lost ||
           r->untrusted_why || r->trusted_again || r->backlog_started;
}

/* ------------------------------------------------------------------ spool thread */

static DWORD WINAPI spool_thread(LPVOID unused)
{
    static BOOL untrusted;
    (void)unused;
    for (;;) {
        pw_item *item;
        const WCHAR *step = L"";
        DWORD err;
        BOOL wake;
        EnterCriticalSection(&g_lock);
        while (g_spool_q.head == NULL) SleepConditionVariableCS(&g_wake_spool, &g_lock, INFINITE);
        item = pop(&g_spool_q);
        LeaveCriticalSection(&g_lock);
        WakeConditionVariable(&g_spool_space);

        err = pw_spool_write(&g_cfg, item->frame, item->len, &step);
        release_item(item);

        EnterCriticalSection(&g_lock);
        wake = err != 0 || untrusted;
        if (err == PW_SPOOL_UNTRUSTED) {
            if (!untrusted) g_rep.untrusted_why = step; /* once per episode */
            untrusted = TRUE;
            g_rep.lost++;
            g_rep.lost_step = L"spool folder verification";
            g_rep.lost_error = ERROR_ACCESS_DENIED;
        } else if (err != 0) {
            g_rep.lost++;
            g_rep.lost_step = step;
            g_rep.lost_error = err;
        } else if (untrusted) {
            untrusted = FALSE;
            g_rep.trusted_again = TRUE;
        }
        LeaveCriticalSection(&g_lock);
        if (wake) WakeConditionVariable(&g_wake_pipe);
    }
    return 0; /* not reached: LSA never unloads a notification package */
}

/* Pipe worker: waits for room rather than dropping; LSA's thread is the one that drops. */
static void to_spool(pw_item *item)
{
    EnterCriticalSection(&g_lock);
    while (g_spool_q.count >= g_cfg.queue_capacity) SleepConditionVariableCS(&g_spool_space, &g_lock, INFINITE);
    push(&g_spool_q, item);
    LeaveCriticalSection(&g_lock);
    WakeConditionVariable(&g_wake_spool);
}

/* ------------------------------------------------------------------ pipe worker */

static const WCHAR *send_result_text(enum pw_send_result r)
{
    switch (r) {
    case PW_SEND_ABSENT: return L"pipe not found";
    case PW_SEND_TIMEOUT: return L"timed out";
    case PW_SEND_RETRY_LATER: return L"agent asked to retry later";
    case PW_SEND_IMPOSTOR: return L"untrusted pipe server";
    default: return L"pipe I/O failed";
    }
}

static void report(const pw_reports *r)
{
    WCHAR a[11], b[11], c[11];
    DWORD i;
    for (i = 0; i < r->input_count; i++) {
        pw_u32_dec(a, r->input[i].length);
        pw_u32_dec(b, r->input[i].maximum);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_INPUT_REJECTED, r->input[i].which, pw_input_problem_text(r->input[i].problem), a, b);
    }
    if (r->input_overflow) {
        pw_u32_dec(a, r->input_overflow);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_DROPPED, L"malformed input from LSA (more than the event log was told about)", a, NULL, NULL);
    }
    if (r->dropped_full) {
        pw_u32_dec(a, r->dropped_full);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_DROPPED, L"queues full", a, NULL, NULL);
    }
    if (r->dropped_no_memory) {
        pw_u32_dec(a, r->dropped_no_memory);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_DROPPED, L"out of memory", a, NULL, NULL);
    }
    if (r->untrusted_why) pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_SPOOL_UNTRUSTED, g_cfg.spool_dir, r->untrusted_why, NULL, NULL);
    if (r->trusted_again) pw_event(EVENTLOG_INFORMATION_TYPE, PW_MSG_SPOOL_TRUSTED, g_cfg.spool_dir, NULL, NULL, NULL);
    if (r->lost) {
        pw_u32_dec(b, r->lost_error);
        pw_u32_dec(c, r->lost);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_CHANGE_LOST, r->lost_step, b, c, NULL);
    }
    if (r->backlog_started) {
        pw_u32_dec(a, g_cfg.queue_capacity);
        pw_event(EVENTLOG_WARNING_TYPE, PW_MSG_QUEUE_FULL, a, NULL, NULL, NULL);
    }
}

/* Worker thread only: this state is not shared. */
static BOOL g_agent_down;
static ULONGLONG g_next_probe;

static void deliver(pw_item *item, DWORD backlog)
{
    DWORD err = 0;
    WCHAR text[17];
    enum pw_send_result r;

    /* The agent is known down (or the pipe cannot keep up with LSA): spool without trying. */
    if ((g_agent_down && GetTickCount64() < g_next_probe) || backlog >= g_cfg.queue_capacity / 2) {
        to_spool(item);
        return;
    }
    r = pw_pipe_send(&g_cfg, item->frame, item->len, &err);
    /* A pipe that exists but failed mid-exchange is retried once before spooling; if the
     * agent did queue the first attempt, it drops the repeat by its change id. */
    if (r == PW_SEND_IO_ERROR) r = pw_pipe_send(&g_cfg, item->frame, item->len, &err);

    if (r == PW_SEND_ACCEPTED || r == PW_SEND_REJECTED) {
        if (g_agent_down) pw_event(EVENTLOG_INFORMATION_TYPE, PW_MSG_AGENT_REACHABLE, NULL, NULL, NULL, NULL);
        g_agent_down = FALSE;
        if (r == PW_SEND_REJECTED) {
            pw_u64_hex(text, pw_frame_sequence(item->frame));
            pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_AGENT_REJECTED, text, NULL, NULL, NULL);
        }
        release_item(item);
        return;
    }
    if (r == PW_SEND_IMPOSTOR) {
        pw_u32_dec(text, err);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_PIPE_IMPOSTOR, text, NULL, NULL, NULL);
    } else if (!g_agent_down) {
        pw_event_win32(EVENTLOG_WARNING_TYPE, PW_MSG_AGENT_UNREACHABLE, send_result_text(r), err);
    }
    g_agent_down = TRUE;
    g_next_probe = GetTickCount64() + PW_PROBE_INTERVAL_MS;
    to_spool(item);
}

static DWORD WINAPI pipe_worker(LPVOID unused)
{
    (void)unused;
    pw_event(EVENTLOG_INFORMATION_TYPE, PW_MSG_LOADED, PW_VERSION_W, g_cfg.pipe_name, g_cfg.spool_dir, NULL);
    for (;;) {
        pw_item *item;
        pw_reports rep;
        DWORD backlog;
        BOOL have_reports;
        EnterCriticalSection(&g_lock);
        while (g_pipe_q.head == NULL && !reports_pending(&g_rep)) SleepConditionVariableCS(&g_wake_pipe, &g_lock, INFINITE);
        have_reports = reports_pending(&g_rep);
        if (have_reports) {
            rep = g_rep;
            ZeroMemory(&g_rep, sizeof(g_rep));
        }
        backlog = g_pipe_q.count;
        item = pop(&g_pipe_q);
        LeaveCriticalSection(&g_lock);
        if (have_reports) report(&rep);
        if (item) deliver(item, backlog);
    }
    return 0; /* not reached */
}

/* ------------------------------------------------------------------ init */

static BOOL start_thread(LPTHREAD_START_ROUTINE fn)
{
    HANDLE thread = CreateThread(NULL, PW_THREAD_STACK, fn, NULL, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (thread == NULL) return FALSE;
    CloseHandle(thread);
    return TRUE;
}

static BOOL CALLBACK init_once(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    FILETIME now;
    (void)once; (void)param; (void)ctx;
    pw_config_load(&g_cfg);
    InitializeCriticalSection(&g_lock);
    InitializeConditionVariable(&g_wake_pipe);
    InitializeConditionVariable(&g_wake_spool);
    InitializeConditionVariable(&g_spool_space);
    /* Seeded from the clock so sequences also increase across reboots (unless the clock is set back). */
    GetSystemTimeAsFileTime(&now);
    g_sequence = ((ULONGLONG)now.dwHighDateTime << 32) | now.dwLowDateTime;
    if (start_thread(spool_thread) && start_thread(pipe_worker)) {
        g_running = TRUE;
    } else {
        /* The one event not reported by the worker, since there is none; once, at boot, from
         * InitializeChangeNotify (not from a password change). */
        pw_event_win32(EVENTLOG_ERROR_TYPE, PW_MSG_DEGRADED, L"CreateThread", GetLastError());
    }
    return TRUE;
}

BOOL pw_core_init(void)
{
    return InitOnceExecuteOnce(&g_once, init_once, NULL, NULL);
}

/* ------------------------------------------------------------------ LSA's thread */

static void note_input_problem(const WCHAR *which, const UNICODE_STRING *s, enum pw_input_problem p)
{
    EnterCriticalSection(&g_lock);
    if (g_rep.input_count < PW_INPUT_REPORTS) {
        pw_input_report *r = &g_rep.input[g_rep.input_count++];
        r->which = which;
        r->problem = p;
        r->length = s ? s->Length : 0;
        r->maximum = s ? s->MaximumLength : 0;
    } else {
        g_rep.input_overflow++;
    }
    LeaveCriticalSection(&g_lock);
    WakeConditionVariable(&g_wake_pipe);
}

void pw_core_notify(const UNICODE_STRING *user, const UNICODE_STRING *password)
{
    enum pw_input_problem p;
    pw_item *item;
    FILETIME now;
    BOOL queued = FALSE;

    /* Documented: both NULL is a legitimate call that only wants STATUS_SUCCESS. Not an error. */
    if (user == NULL && password == NULL) return;
    if (!pw_core_init() || !g_running) return; /* no worker: event 2006 said so at boot */
    if ((p = pw_check_input(user, PW_MAX_ACCOUNT_BYTES, FALSE)) != PW_INPUT_OK) {
        note_input_problem(L"account name", user, p);
        return;
    }
    if ((p = pw_check_input(password, PW_MAX_PASSWORD_BYTES, TRUE)) != PW_INPUT_OK) {
        note_input_problem(L"password", password, p);
        return;
    }
    item = (pw_item *)HeapAlloc(GetProcessHeap(), 0, sizeof(pw_item));
    if (item == NULL) {
        EnterCriticalSection(&g_lock);
        g_rep.dropped_no_memory++;
        LeaveCriticalSection(&g_lock);
        WakeConditionVariable(&g_wake_pipe);
        return;
    }
    item->len = pw_frame_build(item->frame, user, password, 0);

    EnterCriticalSection(&g_lock);
    /* Time and sequence under one lock: on one DC, capture time never decreases as the
     * sequence increases (the reset-executor orders by time, then DC, then sequence).
     * GetSystemTimeAsFileTime reads shared memory: no system call, no wait. */
    GetSystemTimeAsFileTime(&now);
    pw_frame_set_captured_at(item->frame, ((ULONGLONG)now.dwHighDateTime << 32) | now.dwLowDateTime);
    pw_frame_set_sequence(item->frame, ++g_sequence);
    if (g_pipe_q.count < g_cfg.queue_capacity) {
        push(&g_pipe_q, item);
        queued = TRUE;
        if (g_pipe_q.count == g_cfg.queue_capacity / 2) g_rep.backlog_started = TRUE;
    } else {
        g_rep.dropped_full++;
    }
    LeaveCriticalSection(&g_lock);
    WakeConditionVariable(&g_wake_pipe);
    if (!queued) release_item(item);
}
