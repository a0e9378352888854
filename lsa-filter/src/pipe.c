/* Hands one frame to the agent over its named pipe and waits for the agent's ack, all within
 * pipe_timeout_ms. Runs on the worker thread only, never on LSA's thread. */
#include "pwsync.h"

static DWORD remaining(ULONGLONG deadline)
{
    ULONGLONG now = GetTickCount64();
    return now >= deadline ? 0 : (DWORD)(deadline - now);
}

static BOOL token_user_of(HANDLE process, BYTE *buf, DWORD cap)
{
    HANDLE token;
    DWORD got = 0;
    BOOL ok;
    if (!OpenProcessToken(process, TOKEN_QUERY, &token)) return FALSE;
    ok = GetTokenInformation(token, TokenUser, buf, cap, &got);
    CloseHandle(token);
    return ok;
}

/* Pipe squatting guard: anyone may create a pipe with our name before the agent does. Only a
 * server running as our own account (LocalSystem inside LSASS) may receive a password. */
static BOOL server_is_trusted(HANDLE pipe, DWORD *server_pid)
{
    BYTE mine[256], theirs[256];
    ULONG pid = 0;
    HANDLE proc;
    BOOL same;
    if (!GetNamedPipeServerProcessId(pipe, &pid)) return FALSE;
    *server_pid = pid;
    if (!token_user_of(GetCurrentProcess(), mine, sizeof(mine))) return FALSE;
    proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (proc == NULL) return FALSE;
    same = token_user_of(proc, theirs, sizeof(theirs)) &&
           EqualSid(((TOKEN_USER *)mine)->User.Sid, ((TOKEN_USER *)theirs)->User.Sid);
    CloseHandle(proc);
    return same;
}

/* One overlapped read or write bounded by the deadline; FALSE on timeout or error. */
static BOOL io_bounded(HANDLE h, BOOL write, BYTE *buf, DWORD len, DWORD *done, ULONGLONG deadline, DWORD *err)
{
    OVERLAPPED ov;
    BOOL ok;
    ZeroMemory(&ov, sizeof(ov));
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (ov.hEvent == NULL) { *err = GetLastError(); return FALSE; }
    *done = 0;
    ok = write ? WriteFile(h, buf, len, NULL, &ov) : ReadFile(h, buf, len, NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING) {
        *err = GetLastError();
        CloseHandle(ov.hEvent);
        return FALSE;
    }
    if (WaitForSingleObject(ov.hEvent, remaining(deadline)) != WAIT_OBJECT_0) {
        CancelIo(h);
        GetOverlappedResult(h, &ov, done, TRUE);
        *err = WAIT_TIMEOUT;
        CloseHandle(ov.hEvent);
        return FALSE;
    }
    ok = GetOverlappedResult(h, &ov, done, FALSE);
    if (!ok) *err = GetLastError();
    CloseHandle(ov.hEvent);
    return ok;
}

static HANDLE open_pipe(const pw_config *cfg, ULONGLONG deadline, DWORD *err)
{
    for (;;) {
        /* SECURITY_IDENTIFICATION: the server may learn who we are but cannot act as SYSTEM. */
        HANDLE h = CreateFileW(cfg->pipe_name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        DWORD left;
        if (h != INVALID_HANDLE_VALUE) return h;
        *err = GetLastError();
        if (*err != ERROR_PIPE_BUSY) return INVALID_HANDLE_VALUE;
        left = remaining(deadline);
        if (left == 0) { *err = WAIT_TIMEOUT; return INVALID_HANDLE_VALUE; }
        if (!WaitNamedPipeW(cfg->pipe_name, left) && GetLastError() != ERROR_PIPE_BUSY) {
            *err = GetLastError();
            if (*err == ERROR_SEM_TIMEOUT) *err = WAIT_TIMEOUT;
            if (*err != ERROR_FILE_NOT_FOUND) return INVALID_HANDLE_VALUE;
        }
    }
}

enum pw_send_result pw_pipe_send(const pw_config *cfg, const BYTE *frame, DWORD len, DWORD *win32_error)
{
    ULONGLONG deadline = GetTickCount64() + cfg->pipe_timeout_ms;
    enum pw_send_result result = PW_SEND_IO_ERROR;
    BYTE ack[PW_ACK_BYTES];
    DWORD got = 0, n = 0, pid = 0, err = 0;
    HANDLE h = open_pipe(cfg, deadline, &err);

    *win32_error = 0;
    if (h == INVALID_HANDLE_VALUE) {
        *win32_error = err;
        if (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND) return PW_SEND_ABSENT;
        return err == WAIT_TIMEOUT ? PW_SEND_TIMEOUT : PW_SEND_IO_ERROR;
    }
    if (!server_is_trusted(h, &pid)) {
        *win32_error = pid;
        CloseHandle(h);
        return PW_SEND_IMPOSTOR;
    }
    if (!io_bounded(h, TRUE, (BYTE *)frame, len, &n, deadline, &err) || n != len) goto done;
    while (got < PW_ACK_BYTES) {
        if (!io_bounded(h, FALSE, ack + got, PW_ACK_BYTES - got, &n, deadline, &err) || n == 0) goto done;
        got += n;
    }
    if (pw_get_u32(ack) != PW_ACK_MAGIC || pw_get_u16(ack + 4) != PW_FRAME_VERSION ||
        pw_get_u64(ack + 8) != pw_frame_sequence(frame)) {
        err = ERROR_INVALID_DATA;
        goto done;
    }
    switch (pw_get_u16(ack + 6)) {
    case 0: result = PW_SEND_ACCEPTED; break;
    case 1: result = PW_SEND_REJECTED; break;
    case 2: result = PW_SEND_RETRY_LATER; break;
    default: err = ERROR_INVALID_DATA; break;
    }
done:
    if (result == PW_SEND_IO_ERROR && err == WAIT_TIMEOUT) result = PW_SEND_TIMEOUT;
    *win32_error = err;
    CloseHandle(h);
    return result;
}
