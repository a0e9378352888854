/* pwsync-pipe.exe: the dc-agent's named pipe, created the way Node cannot create it.
 *
 *   pwsync-pipe.exe <pipe name>      e.g. \\.\pipe\pwsync-agent
 *   pwsync-pipe.exe owner <file>...  "self <SID>" (this process's account), then one line per
 *                                    file: its owner SID, or "error <Win32 code>"
 *
 * Node's net.Server gives a pipe the default DACL (Everyone may open it for reading, so any
 * account can hold instances and push the filter to the spool) and no PIPE_REJECT_REMOTE_CLIENTS
 * (any domain user could connect over SMB). This program owns the pipe instead:
 *   - security descriptor O:<self>D:P(A;;GA;;;SY)(A;;GA;;;<self>): SYSTEM only (the agent runs as
 *     LocalSystem, so <self> is SYSTEM; the second ACE only matters for a test run as a user);
 *   - PIPE_REJECT_REMOTE_CLIENTS on every instance; FILE_FLAG_FIRST_PIPE_INSTANCE on the first,
 *     so a squatter that created the name first makes us exit rather than share it;
 *   - it reads one frame per connection (header checked before the body is read, at most 1064
 *     bytes), hands it to the agent on stdout and writes back the agent's 16-byte ack from stdin.
 * stdout, to the agent:  u32 connection id, u32 length, frame bytes   (little-endian)
 * stdin, from the agent: u32 connection id, 16-byte ack
 * Frame buffers are wiped after use. Exit codes: 2 usage, 3 pipe could not be created. */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>

#define HEADER_BYTES 40
#define MAX_FRAME 1064
#define ACK_BYTES 16
#define INSTANCES 8

typedef struct slot {
    HANDLE ready; /* set when ack holds this connection's answer */
    BYTE ack[ACK_BYTES];
    volatile LONG waiting;
} slot;

static WCHAR g_name[256];
static SECURITY_ATTRIBUTES g_sa;
static CRITICAL_SECTION g_out;
static HANDLE g_stdout, g_stdin;
static slot g_slots[INSTANCES];

static void say(const char *text)
{
    DWORD w;
    WriteFile(GetStdHandle(STD_ERROR_HANDLE), text, lstrlenA(text), &w, NULL);
}

static BOOL read_exact(HANDLE h, BYTE *p, DWORD n)
{
    DWORD got = 0, r;
    while (got < n) {
        if (!ReadFile(h, p + got, n - got, &r, NULL) || r == 0) return FALSE;
        got += r;
    }
    return TRUE;
}

static BOOL write_all(HANDLE h, const BYTE *p, DWORD n)
{
    DWORD done = 0, w;
    while (done < n) {
        if (!WriteFile(h, p + done, n - done, &w, NULL) || w == 0) return FALSE;
        done += w;
    }
    return TRUE;
}

static DWORD u32(const BYTE *p) { return (DWORD)p[0] | ((DWORD)p[1] << 8) | ((DWORD)p[2] << 16) | ((DWORD)p[3] << 24); }
static void put_u32(BYTE *p, DWORD v) { p[0] = (BYTE)v; p[1] = (BYTE)(v >> 8); p[2] = (BYTE)(v >> 16); p[3] = (BYTE)(v >> 24); }

static BOOL build_sd(void)
{
    HANDLE token;
    BYTE buf[256];
    DWORD got = 0;
    WCHAR *self = NULL, sddl[256];
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return FALSE;
    if (!GetTokenInformation(token, TokenUser, buf, sizeof(buf), &got)) { CloseHandle(token); return FALSE; }
    CloseHandle(token);
    if (!ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &self)) return FALSE;
    wsprintfW(sddl, L"O:%sD:P(A;;GA;;;SY)(A;;GA;;;%s)", self, self);
    LocalFree(self);
    g_sa.nLength = sizeof(g_sa);
    g_sa.bInheritHandle = FALSE;
    return ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &g_sa.lpSecurityDescriptor, NULL);
}

static HANDLE create_instance(BOOL first)
{
    return CreateNamedPipeW(g_name, PIPE_ACCESS_DUPLEX | (first ? FILE_FLAG_FIRST_PIPE_INSTANCE : 0),
                            PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, PIPE_UNLIMITED_INSTANCES,
                            4096, 4096, 0, &g_sa);
}

/* One connection: a frame in, the agent's ack out. */
static void serve(HANDLE pipe, DWORD id)
{
    BYTE buf[8 + MAX_FRAME], drain[16];
    DWORD len, r;
    slot *s = &g_slots[id];
    if (!read_exact(pipe, buf + 8, HEADER_BYTES)) goto done;
    len = u32(buf + 8 + 8);
    /* The agent validates the whole frame; here only what keeps us from reading unbounded. */
    if (len < HEADER_BYTES || len > MAX_FRAME || !read_exact(pipe, buf + 8 + HEADER_BYTES, len - HEADER_BYTES)) goto done;
    put_u32(buf, id);
    put_u32(buf + 4, len);
    ResetEvent(s->ready);
    InterlockedExchange(&s->waiting, 1);
    EnterCriticalSection(&g_out);
    r = write_all(g_stdout, buf, 8 + len);
    LeaveCriticalSection(&g_out);
    if (!r) ExitProcess(0); /* the agent is gone: so are we */
    WaitForSingleObject(s->ready, INFINITE);
    write_all(pipe, s->ack, ACK_BYTES);
    /* Windows pipes cannot half-close: wait for the filter to close after reading the ack. */
    while (ReadFile(pipe, drain, sizeof(drain), &r, NULL) && r > 0) {}
done:
    SecureZeroMemory(buf, sizeof(buf));
}

static HANDLE g_first;

static DWORD WINAPI instance_thread(LPVOID arg)
{
    DWORD id = (DWORD)(INT_PTR)arg;
    for (;;) {
        /* Thread 0 serves the first instance (created with FILE_FLAG_FIRST_PIPE_INSTANCE) first:
         * an instance nobody serves would leave a client connected to silence. */
        HANDLE pipe = id == 0 && g_first ? g_first : create_instance(FALSE);
        if (pipe == g_first) g_first = NULL;
        if (pipe == INVALID_HANDLE_VALUE) { Sleep(100); continue; }
        if (ConnectNamedPipe(pipe, NULL) || GetLastError() == ERROR_PIPE_CONNECTED) serve(pipe, id);
        DisconnectNamedPipe(pipe);
        CloseHandle(pipe);
    }
    return 0;
}

static void print_line(const WCHAR *a, const WCHAR *b)
{
    char line[512];
    DWORD w;
    int n = wsprintfA(line, "%ls %ls\n", a, b);
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), line, (DWORD)n, &w, NULL);
}

/* Who created each spool file: the agent drains only files whose owner is its own account
 * (SYSTEM, like the filter in LSASS); Node's stat has no owner SID on Windows. */
static int owners(int argc, WCHAR **argv)
{
    HANDLE token;
    BYTE buf[256];
    DWORD got = 0;
    WCHAR *text = NULL, code[16];
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) || !GetTokenInformation(token, TokenUser, buf, sizeof(buf), &got) ||
        !ConvertSidToStringSidW(((TOKEN_USER *)buf)->User.Sid, &text))
        return 3;
    print_line(L"self", text);
    LocalFree(text);
    for (int i = 2; i < argc; i++) {
        PSID owner = NULL;
        PSECURITY_DESCRIPTOR sd = NULL;
        DWORD rc = GetNamedSecurityInfoW(argv[i], SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL, &sd);
        if (rc == ERROR_SUCCESS && owner && ConvertSidToStringSidW(owner, &text)) {
            print_line(L"owner", text);
            LocalFree(text);
        } else {
            wsprintfW(code, L"%lu", rc ? rc : GetLastError());
            print_line(L"error", code);
        }
        if (sd) LocalFree(sd);
    }
    return 0;
}

int wmain(int argc, WCHAR **argv)
{
    BYTE msg[4 + ACK_BYTES];
    if (argc >= 2 && lstrcmpiW(argv[1], L"owner") == 0) return owners(argc, argv);
    if (argc != 2 || lstrlenW(argv[1]) >= 256) { say("usage: pwsync-pipe.exe \\\\.\\pipe\\<name>\r\n"); return 2; }
    lstrcpyW(g_name, argv[1]);
    g_stdout = GetStdHandle(STD_OUTPUT_HANDLE);
    g_stdin = GetStdHandle(STD_INPUT_HANDLE);
    InitializeCriticalSection(&g_out);
    if (!build_sd()) { say("pwsync-pipe: cannot build the pipe's security descriptor\r\n"); return 3; }
    /* The name is ours before any other instance exists. */
    g_first = create_instance(TRUE);
    if (g_first == INVALID_HANDLE_VALUE) { say("pwsync-pipe: cannot create the pipe (another process holds the name?)\r\n"); return 3; }
    for (DWORD i = 0; i < INSTANCES; i++) {
        g_slots[i].ready = CreateEventW(NULL, TRUE, FALSE, NULL);
        CloseHandle(CreateThread(NULL, 0, instance_thread, (LPVOID)(INT_PTR)i, 0, NULL));
    }
    say("pwsync-pipe: listening\r\n");
    /* Acks from the agent; stdin closed = the agent stopped. */
    while (read_exact(g_stdin, msg, sizeof(msg))) {
        DWORD id = u32(msg);
        if (id >= INSTANCES || !InterlockedExchange(&g_slots[id].waiting, 0)) continue;
        CopyMemory(g_slots[id].ack, msg + 4, ACK_BYTES);
        SetEvent(g_slots[id].ready);
    }
    return 0;
}
