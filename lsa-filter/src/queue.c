/* The hand-off: LSA's thread copies the change into a heap frame and links it into a bounded
 * FIFO under a critical section held for a few pointer operations; one worker thread delivers
 * frames to the agent or the spool. Every frame buffer is wiped in full before it is freed. */
#include "pwsync.h"
#include "messages.h"

typedef struct pw_item {
    struct pw_item *next;
    DWORD len;
    BYTE frame[PW_MAX_FRAME_BYTES];
} pw_item;

static INIT_ONCE g_once = INIT_ONCE_STATIC_INIT;
static CRITICAL_SECTION g_lock;
static CONDITION_VARIABLE g_wake;
static pw_item *g_head, *g_tail;
static DWORD g_count;
static ULONGLONG g_sequence;
static BOOL g_worker_running;
static BOOL g_overflowing;
static pw_config g_cfg;

static void release_item(pw_item *item)
{
    SecureZeroMemory(item, sizeof(*item));
    HeapFree(GetProcessHeap(), 0, item);
}

static void spool_or_report(const pw_item *item)
{
    const WCHAR *step = L"";
    DWORD err = pw_spool_write(&g_cfg, item->frame, item->len, &step);
    if (err != 0) pw_event_win32(EVENTLOG_ERROR_TYPE, PW_MSG_CHANGE_LOST, step, err);
}

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

/* Worker thread only: agent_down is not shared. */
static void deliver(const pw_item *item)
{
    static BOOL agent_down;
    DWORD err = 0;
    WCHAR text[17];
    enum pw_send_result r = pw_pipe_send(&g_cfg, item->frame, item->len, &err);

    /* A pipe that exists but failed mid-exchange is retried once before spooling; if the
     * agent did queue the first attempt, it drops the repeat by its sequence. */
    if (r == PW_SEND_IO_ERROR) r = pw_pipe_send(&g_cfg, item->frame, item->len, &err);

    if (r == PW_SEND_ACCEPTED || r == PW_SEND_REJECTED) {
        if (agent_down) pw_event(EVENTLOG_INFORMATION_TYPE, PW_MSG_AGENT_REACHABLE, NULL, NULL, NULL, NULL);
        agent_down = FALSE;
        if (r == PW_SEND_REJECTED) {
            pw_u64_hex(text, pw_frame_sequence(item->frame));
            pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_AGENT_REJECTED, text, NULL, NULL, NULL);
        }
        return;
    }
    if (r == PW_SEND_IMPOSTOR) {
        pw_u32_dec(text, err);
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_PIPE_IMPOSTOR, text, NULL, NULL, NULL);
    } else if (!agent_down) {
        pw_event_win32(EVENTLOG_WARNING_TYPE, PW_MSG_AGENT_UNREACHABLE, send_result_text(r), err);
    }
    agent_down = TRUE;
    spool_or_report(item);
}

static DWORD WINAPI worker(LPVOID unused)
{
    (void)unused;
    for (;;) {
        pw_item *item;
        EnterCriticalSection(&g_lock);
        while (g_head == NULL) SleepConditionVariableCS(&g_wake, &g_lock, INFINITE);
        item = g_head;
        g_head = item->next;
        if (g_head == NULL) g_tail = NULL;
        g_count--;
        LeaveCriticalSection(&g_lock);
        deliver(item);
        release_item(item);
    }
    return 0; /* not reached: LSA never unloads a notification package */
}

static BOOL CALLBACK init_once(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    FILETIME now;
    HANDLE thread;
    (void)once; (void)param; (void)ctx;
    pw_event_open();
    pw_config_load(&g_cfg);
    InitializeCriticalSection(&g_lock);
    InitializeConditionVariable(&g_wake);
    /* Seeded from the clock so sequences also increase across reboots (unless the clock is set back). */
    GetSystemTimeAsFileTime(&now);
    g_sequence = ((ULONGLONG)now.dwHighDateTime << 32) | now.dwLowDateTime;
    thread = CreateThread(NULL, 64 * 1024, worker, NULL, STACK_SIZE_PARAM_IS_A_RESERVATION, NULL);
    if (thread == NULL) {
        pw_event_win32(EVENTLOG_ERROR_TYPE, PW_MSG_DEGRADED, L"CreateThread", GetLastError());
    } else {
        g_worker_running = TRUE;
        CloseHandle(thread);
    }
    pw_event(EVENTLOG_INFORMATION_TYPE, PW_MSG_LOADED, PW_VERSION_W, g_cfg.pipe_name, g_cfg.spool_dir, NULL);
    return TRUE;
}

BOOL pw_core_init(void)
{
    return InitOnceExecuteOnce(&g_once, init_once, NULL, NULL);
}

static void reject_input(const WCHAR *which, const UNICODE_STRING *s, enum pw_input_problem p)
{
    WCHAR len[11], max[11];
    pw_u32_dec(len, s ? s->Length : 0);
    pw_u32_dec(max, s ? s->MaximumLength : 0);
    pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_INPUT_REJECTED, which, pw_input_problem_text(p), len, max);
}

void pw_core_notify(const UNICODE_STRING *user, const UNICODE_STRING *password)
{
    enum pw_input_problem p;
    pw_item *item;
    FILETIME now;
    BOOL queued = FALSE, first_overflow = FALSE;
    WCHAR cap[11];

    if (!pw_core_init()) return;
    if ((p = pw_check_input(user, PW_MAX_ACCOUNT_BYTES, FALSE)) != PW_INPUT_OK) {
        reject_input(L"account name", user, p);
        return;
    }
    if ((p = pw_check_input(password, PW_MAX_PASSWORD_BYTES, TRUE)) != PW_INPUT_OK) {
        reject_input(L"password", password, p);
        return;
    }
    item = (pw_item *)HeapAlloc(GetProcessHeap(), 0, sizeof(pw_item));
    if (item == NULL) {
        pw_u32_dec(cap, (DWORD)sizeof(pw_item));
        pw_event(EVENTLOG_ERROR_TYPE, PW_MSG_OUT_OF_MEMORY, cap, NULL, NULL, NULL);
        return;
    }
    item->next = NULL;
    GetSystemTimeAsFileTime(&now);
    item->len = pw_frame_build(item->frame, user, password,
                               ((ULONGLONG)now.dwHighDateTime << 32) | now.dwLowDateTime);

    EnterCriticalSection(&g_lock);
    pw_frame_set_sequence(item->frame, ++g_sequence);
    if (g_worker_running && g_count < g_cfg.queue_capacity) {
        if (g_tail) g_tail->next = item; else g_head = item;
        g_tail = item;
        g_count++;
        queued = TRUE;
        g_overflowing = FALSE;
    } else if (g_worker_running && !g_overflowing) {
        g_overflowing = first_overflow = TRUE;
    }
    LeaveCriticalSection(&g_lock);

    if (queued) {
        WakeConditionVariable(&g_wake);
        return;
    }
    /* Queue full (or no worker): never drop, never wait for the worker; spool right here. */
    if (first_overflow) {
        pw_u32_dec(cap, g_cfg.queue_capacity);
        pw_event(EVENTLOG_WARNING_TYPE, PW_MSG_QUEUE_FULL, cap, NULL, NULL, NULL);
    }
    spool_or_report(item);
    release_item(item);
}
