/* Windows event log, source "pwsync-filter", messages from messages.mc (compiled into this DLL).
 * Only the pipe worker thread reports events (LSA's thread never does: ReportEventW is an RPC to
 * the EventLog service). The source is registered on first use and again after a failure, at
 * most every 10 s: at boot LSASS can start before the EventLog service, and a source registered
 * once at init would stay NULL for good. */
#include "pwsync.h"

#define PW_EVENT_RETRY_MS 10000

static HANDLE g_source;
static ULONGLONG g_last_try;
static BOOL g_tried;

static HANDLE source(void)
{
    ULONGLONG now = GetTickCount64();
    if (g_source == NULL && (!g_tried || now - g_last_try >= PW_EVENT_RETRY_MS)) {
        g_tried = TRUE;
        g_last_try = now;
        g_source = RegisterEventSourceW(NULL, L"pwsync-filter");
    }
    return g_source;
}

void pw_event(WORD type, DWORD id, const WCHAR *s1, const WCHAR *s2, const WCHAR *s3, const WCHAR *s4)
{
    LPCWSTR strings[4];
    WORD n = 0;
    HANDLE h = source();
    if (h == NULL) return;
    if (s1) strings[n++] = s1;
    if (s2) strings[n++] = s2;
    if (s3) strings[n++] = s3;
    if (s4) strings[n++] = s4;
    ReportEventW(h, type, 0, id, NULL, n, 0, strings, NULL);
}

void pw_event_win32(WORD type, DWORD id, const WCHAR *what, DWORD error)
{
    WCHAR code[11];
    pw_u32_dec(code, error);
    pw_event(type, id, what, code, NULL, NULL);
}
