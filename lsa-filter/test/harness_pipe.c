#include "harness.h"

struct h_server {
    WCHAR name[256];
    HANDLE threads[8];
    int nthreads;
    volatile LONG stop;
    CRITICAL_SECTION lock;
    h_frame *frames;
    DWORD count, cap;
    BOOL hung;
    volatile LONG accepted;
};

static BOOL read_exact(HANDLE h, BYTE *p, DWORD n)
{
    DWORD got = 0, r;
    while (got < n) {
        if (!ReadFile(h, p + got, n - got, &r, NULL) || r == 0) return FALSE;
        got += r;
    }
    return TRUE;
}

static void store(h_server *s, const BYTE *bytes, DWORD len)
{
    EnterCriticalSection(&s->lock);
    if (s->count == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->frames = realloc(s->frames, s->cap * sizeof(h_frame));
    }
    s->frames[s->count].len = len;
    memcpy(s->frames[s->count].bytes, bytes, len);
    s->count++;
    LeaveCriticalSection(&s->lock);
}

static DWORD WINAPI serve(LPVOID arg)
{
    h_server *s = arg;
    BYTE buf[H_MAX_FRAME], ack[16], drain[16];
    DWORD w, r;
    while (!s->stop) {
        HANDLE h = CreateNamedPipeW(s->name, PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                    PIPE_UNLIMITED_INSTANCES, 4096, 4096, 0, NULL);
        if (h == INVALID_HANDLE_VALUE) { Sleep(1); continue; }
        if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) { CloseHandle(h); continue; }
        InterlockedIncrement(&s->accepted);
        if (s->hung) {
            /* Never read, never answer, never close: the instance stays connected until the end
             * of the process; a new instance is created for the next client. */
            continue;
        }
        if (!s->stop && read_exact(h, buf, H_HEADER)) {
            DWORD len = h_u32(buf + 8);
            if (len >= H_HEADER && len <= H_MAX_FRAME && read_exact(h, buf + H_HEADER, len - H_HEADER)) {
                store(s, buf, len);
                memcpy(ack, "PWSA", 4);
                ack[4] = 1; ack[5] = 0; ack[6] = 0; ack[7] = 0; /* version 1, status accepted */
                memcpy(ack + 8, buf + 16, 8);                  /* echo the sequence */
                WriteFile(h, ack, sizeof(ack), &w, NULL);
                /* wait for the filter to close its end so the ack is not cut off */
                while (ReadFile(h, drain, sizeof(drain), &r, NULL) && r > 0) {}
            }
        }
        SecureZeroMemory(buf, sizeof(buf));
        DisconnectNamedPipe(h);
        CloseHandle(h);
    }
    return 0;
}

h_server *h_server_restart(h_server *old, const WCHAR *pipe_name, int threads)
{
    h_server *s = old ? old : calloc(1, sizeof(*s));
    int i;
    if (!old) InitializeCriticalSection(&s->lock);
    lstrcpynW(s->name, pipe_name, 256);
    s->stop = 0;
    s->nthreads = threads;
    for (i = 0; i < threads; i++) s->threads[i] = CreateThread(NULL, 0, serve, s, 0, NULL);
    /* ready when a client can see the pipe */
    for (i = 0; i < 2000; i++) {
        if (WaitNamedPipeW(pipe_name, 0) || GetLastError() == ERROR_SEM_TIMEOUT || GetLastError() == ERROR_PIPE_BUSY) break;
        Sleep(1);
    }
    return s;
}

h_server *h_server_start(const WCHAR *pipe_name, int threads) { return h_server_restart(NULL, pipe_name, threads); }

h_server *h_server_start_hung(const WCHAR *pipe_name, int threads)
{
    h_server *s = calloc(1, sizeof(*s));
    InitializeCriticalSection(&s->lock);
    s->hung = TRUE;
    return h_server_restart(s, pipe_name, threads);
}

DWORD h_server_accepted(h_server *s) { return (DWORD)s->accepted; }

void h_server_stop(h_server *s)
{
    int alive = s->nthreads;
    s->stop = 1;
    while (alive > 0) {
        HANDLE c = CreateFileW(s->name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
        if (c != INVALID_HANDLE_VALUE) CloseHandle(c);
        WaitForMultipleObjects(s->nthreads, s->threads, TRUE, 50);
        alive = 0;
        for (int i = 0; i < s->nthreads; i++)
            if (WaitForSingleObject(s->threads[i], 0) != WAIT_OBJECT_0) alive++;
    }
    for (int i = 0; i < s->nthreads; i++) CloseHandle(s->threads[i]);
    s->nthreads = 0;
}

DWORD h_server_count(h_server *s)
{
    DWORD n;
    EnterCriticalSection(&s->lock);
    n = s->count;
    LeaveCriticalSection(&s->lock);
    return n;
}

BOOL h_server_get(h_server *s, DWORD i, h_frame *out)
{
    BOOL ok = FALSE;
    EnterCriticalSection(&s->lock);
    if (i < s->count) { *out = s->frames[i]; ok = TRUE; }
    LeaveCriticalSection(&s->lock);
    return ok;
}

DWORD h_server_wait(h_server *s, DWORD want, DWORD timeout_ms)
{
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    DWORD n;
    while ((n = h_server_count(s)) < want && GetTickCount64() < deadline) Sleep(2);
    return n;
}
