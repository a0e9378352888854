/* The three exports LSA calls, and nothing else. Logic lives in queue.c and friends.
 *
 * MinGW's C compiler has no __try/__except, so no export is wrapped in SEH. Instead the code
 * path is made fault-free by construction: every UNICODE_STRING is bounds-checked before it is
 * read (Length even, <= MaximumLength, <= 256 characters, non-NULL buffer), LSA's buffers are
 * only read, never written, there is no CRT (no hidden allocations, locale or stdio), and all
 * pipe and disk work happens on our own worker thread. See lsa-filter/README.md "Fault model". */
#include "pwsync.h"

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, LPVOID reserved)
{
    /* The safest DllMain is one that does nothing: no threads, no registry under loader lock. */
    (void)instance; (void)reason; (void)reserved;
    return TRUE;
}

BOOLEAN NTAPI InitializeChangeNotify(void)
{
    pw_core_init();
    /* TRUE even if degraded: FALSE would only make LSA skip us, and the changes would be lost. */
    return TRUE;
}

BOOLEAN NTAPI PasswordFilter(PUNICODE_STRING AccountName, PUNICODE_STRING FullName, PUNICODE_STRING Password,
                             BOOLEAN SetOperation)
{
    /* We sync, we don't police. */
    (void)AccountName; (void)FullName; (void)Password; (void)SetOperation;
    return TRUE;
}

NTSTATUS NTAPI PasswordChangeNotify(PUNICODE_STRING UserName, ULONG RelativeId, PUNICODE_STRING NewPassword)
{
    (void)RelativeId;
    pw_core_notify(UserName, NewPassword);
    return 0; /* STATUS_SUCCESS: the change has already happened; nothing to veto. */
}
