/* Windows event log, source "pwsync-filter", messages from messages.mc (compiled into this DLL). */
#include "pwsync.h"

static HANDLE g_source;

void pw_event_open(void)
{
    g_source = RegisterEventSourceW(NULL, L"pwsync-filter");
}

void pw_event(WORD type, DWORD id, const WCHAR *s1, const WCHAR *s2, const WCHAR *s3, const WCHAR *s4)
{
    LPCWSTR strings[4];
    WORD n = 0;
    if (g_source == NULL) return;
    if (s1) strings[n++] = s1;
    if (s2) strings[n++] = s2;
    if (s3) strings[n++] = s3;
    if (s4) strings[n++] = s4;
    ReportEventW(g_source, type, 0, id, NULL, n, 0, strings, NULL);
}

void pw_event_win32(WORD type, DWORD id, const WCHAR *what, DWORD error)
{
    WCHAR code[11];
    pw_u32_dec(code, error);
    pw_event(type, id, what, code, NULL, NULL);
}
