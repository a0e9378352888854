/*
 * A small stand-in for LSASS, for the MSI test under wine: loads the INSTALLED filter
 * (%SystemRoot%\System32\pwsync-filter.dll, where the MSI put it), calls
 * InitializeChangeNotify once as LSA does at boot, then PasswordFilter + PasswordChangeNotify
 * for each change read from stdin, one "account<TAB>password" line each (UTF-8; stdin, so the
 * test's passwords never touch the disk), with UNICODE_STRINGs that LSA would own. It then
 * waits WAIT_MS for the filter's worker thread to deliver or spool, since LSASS never
 * unloads a package and this process is about to exit.
 * Prints one line per change: "notified <n>" (never the password).
 * "lsa-standin.exe hold" only sleeps: wine stops a prefix's services when its last ordinary
 * process exits, so the test keeps one running, as a booted Windows would be.
 */
#include <windows.h>
#include <ntsecapi.h>
#include <stdio.h>

typedef BOOLEAN(NTAPI *init_fn)(void);
typedef BOOLEAN(NTAPI *filter_fn)(PUNICODE_STRING, PUNICODE_STRING, PUNICODE_STRING, BOOLEAN);
typedef NTSTATUS(NTAPI *notify_fn)(PUNICODE_STRING, ULONG, PUNICODE_STRING);

static void set_string(UNICODE_STRING *s, WCHAR *buf, const char *utf8, int bytes)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, utf8, bytes, buf, 256);
    s->Buffer = buf;
    s->Length = (USHORT)(n * sizeof(WCHAR));
    s->MaximumLength = (USHORT)(256 * sizeof(WCHAR));
}

int main(int argc, char **argv)
{
    WCHAR dll[MAX_PATH];
    static char input[65536];
    DWORD len = 0, got = 0, wait_ms = argc > 1 ? (DWORD)atoi(argv[1]) : 5000;
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    HMODULE m;
    init_fn init;
    filter_fn filter;
    notify_fn notify;
    int count = 0;
    char *line;

    if (argc > 1 && strcmp(argv[1], "hold") == 0) {
        Sleep(INFINITE);
        return 0;
    }
    GetSystemDirectoryW(dll, MAX_PATH);
    lstrcatW(dll, L"\\pwsync-filter.dll");
    if (!(m = LoadLibraryW(dll))) {
        printf("cannot load the installed filter (error %lu)\n", GetLastError());
        return 1;
    }
    init = (init_fn)(void (*)(void))GetProcAddress(m, "InitializeChangeNotify");
    filter = (filter_fn)(void (*)(void))GetProcAddress(m, "PasswordFilter");
    notify = (notify_fn)(void (*)(void))GetProcAddress(m, "PasswordChangeNotify");
    if (!init || !filter || !notify || !init()) {
        printf("filter exports missing or InitializeChangeNotify failed\n");
        return 1;
    }
    while (len < sizeof input - 1 && ReadFile(in, input + len, (DWORD)(sizeof input - 1 - len), &got, NULL) && got > 0) len += got;
    input[len] = 0;
    for (line = input; line && *line;) {
        char *end = strchr(line, '\n'), *tab = strchr(line, '\t');
        WCHAR account[256], password[256];
        UNICODE_STRING a, p, full = {0, 0, NULL};
        if (end) *end = 0;
        if (tab) {
            set_string(&a, account, line, (int)(tab - line));
            set_string(&p, password, tab + 1, (int)strlen(tab + 1));
            filter(&a, &full, &p, FALSE);
            notify(&a, 1000 + (ULONG)count, &p);
            SecureZeroMemory(password, sizeof password);
            printf("notified %d\n", ++count);
            fflush(stdout);
        }
        line = end ? end + 1 : NULL;
    }
    SecureZeroMemory(input, sizeof input);
    Sleep(wait_ms);
    return 0;
}
