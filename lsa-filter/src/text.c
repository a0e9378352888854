/* Number and path formatting without the C runtime (the DLL links no CRT at all). */
#include "pwsync.h"

void pw_u64_hex(WCHAR out[17], ULONGLONG v)
{
    static const WCHAR digits[] = L"0123456789abcdef";
    int i;
    for (i = 15; i >= 0; i--) { out[i] = digits[v & 0xF]; v >>= 4; }
    out[16] = 0;
}

void pw_u32_dec(WCHAR out[11], DWORD v)
{
    WCHAR tmp[11];
    int n = 0, i;
    do { tmp[n++] = (WCHAR)(L'0' + v % 10); v /= 10; } while (v && n < 10);
    for (i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

/* out = a + b + c, refusing (FALSE) rather than truncating a path. */
BOOL pw_join(WCHAR *out, DWORD cap, const WCHAR *a, const WCHAR *b, const WCHAR *c)
{
    const WCHAR *parts[3];
    DWORD n = 0;
    int i;
    parts[0] = a; parts[1] = b; parts[2] = c;
    for (i = 0; i < 3; i++) {
        const WCHAR *s = parts[i];
        if (!s) continue;
        while (*s) {
            if (n + 1 >= cap) { out[0] = 0; return FALSE; }
            out[n++] = *s++;
        }
    }
    out[n] = 0;
    return TRUE;
}
