/*
 * pwsync-service.exe: the Windows service "pwsync-dc-agent", and the installer's helper.
 *
 * Why it exists: node.exe (and so dc-agent.exe, a Node single executable) does not speak the
 * service control protocol; the SCM would kill it after 30 s (error 1053). This wrapper does,
 * and runs dc-agent.exe as its child:
 *   - stop = the agent's stdin is closed. The agent (PWSYNC_STOP_ON_STDIN_EOF=1) then stops
 *     the way it does on SIGTERM elsewhere: it stops taking frames, finishes the one in flight,
 *     flushes its queue and exits. Windows has no SIGTERM for a service's child, and a console
 *     control event would need a console the service does not have. Only an agent that has
 *     not exited after STOP_GRACE_MS is terminated, and that is logged as an error.
 *   - the agent exiting on its own (bad configuration, a crash) is logged and it is started
 *     again after a growing pause, so an install done before the configuration is in place
 *     starts working as soon as the file is there ("dc-agent.exe verify" says what is missing).
 *   - its stdout/stderr go to %ProgramData%\pwsync\logs\dc-agent-console.log (appended);
 *     the agent's own JSON log is configured in its YAML (log.file).
 *
 * Subcommands, for the MSI's custom actions and for the agent (no PowerShell anywhere):
 *   register-filter     append "pwsync-filter" to LSA's Notification Packages (others kept)
 *   unregister-filter   remove only "pwsync-filter" from it
 *   configure-service   quote the service's image path; restart the wrapper if it dies
 *   prepare-folders     %ProgramData%\pwsync (SYSTEM + Administrators), dc-agent\ and logs\;
 *                       an existing spool\ must be SYSTEM's alone (the filter makes it)
 *   unprotect           DPAPI-decrypt one spooled frame: blob on stdin, frame on stdout
 *                       (CryptUnprotectData with the filter's entropy); exit 3 on failure,
 *                       4 when the result is empty, so the agent can never mistake a failed
 *                       decryption for a corrupt frame
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <shlobj.h>
#include <shlwapi.h>
#include <wincrypt.h>

#define SERVICE_NAME L"pwsync-dc-agent"
#define PACKAGE_NAME L"pwsync-filter"
#define LSA_KEY L"SYSTEM\\CurrentControlSet\\Control\\Lsa"
#define PACKAGES_VALUE L"Notification Packages"
#define STOP_GRACE_MS 30000
#define MAX_BLOB (1u << 20)

/* Must match lsa-filter/src/spool.c. */
static const BYTE g_entropy[] = "pwsync-spool-v1";
#define BASE_SDDL L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

static SERVICE_STATUS_HANDLE g_status_handle;
static SERVICE_STATUS g_status;
static HANDLE g_stop_event;
static HANDLE g_log = INVALID_HANDLE_VALUE;

/* ---- small helpers ------------------------------------------------------------------- */

static void write_utf8(HANDLE h, const WCHAR *text)
{
    char buf[2048];
    DWORD written;
    int n = WideCharToMultiByte(CP_UTF8, 0, text, -1, buf, sizeof buf, NULL, NULL);
    if (n > 1) WriteFile(h, buf, (DWORD)(n - 1), &written, NULL);
}

/* One line to the console log (service) or stderr (subcommands), with a UTC timestamp. */
static void say(const WCHAR *fmt, ...)
{
    WCHAR line[1024], msg[900];
    SYSTEMTIME t;
    va_list ap;
    va_start(ap, fmt);
    wvnsprintfW(msg, 900, fmt, ap);
    va_end(ap);
    GetSystemTime(&t);
    wnsprintfW(line, 1024, L"%04u-%02u-%02uT%02u:%02u:%02u.%03uZ pwsync-service: %s\r\n", t.wYear, t.wMonth, t.wDay, t.wHour, t.wMinute,
               t.wSecond, t.wMilliseconds, msg);
    write_utf8(g_log != INVALID_HANDLE_VALUE ? g_log : GetStdHandle(STD_ERROR_HANDLE), line);
}

/* %ProgramData%\pwsync[\tail], from the known-folder registry rather than the environment:
   a service's environment need not carry ProgramData (under wine's services.exe it pointed
   at C:\users\Public). */
static BOOL program_data_path(WCHAR *out, DWORD cap, const WCHAR *tail)
{
    WCHAR base[MAX_PATH];
    if (SHGetFolderPathW(NULL, CSIDL_COMMON_APPDATA, NULL, SHGFP_TYPE_CURRENT, base) != S_OK) return FALSE;
    return wnsprintfW(out, (int)cap, tail ? L"%s\\pwsync\\%s" : L"%s\\pwsync", base, tail) > 0;
}

/* ---- Notification Packages (REG_MULTI_SZ) ------------------------------------------- */

/* Reads the list; a missing value is an empty list. Caller frees *list with HeapFree. */
static LONG read_packages(HKEY key, WCHAR **list, DWORD *chars)
{
    DWORD type = 0, bytes = 0;
    LONG rc = RegQueryValueExW(key, PACKAGES_VALUE, NULL, &type, NULL, &bytes);
    if (rc == ERROR_FILE_NOT_FOUND) bytes = 0;
    else if (rc != ERROR_SUCCESS) return rc;
    else if (type != REG_MULTI_SZ) return ERROR_INVALID_DATA;
    /* room for our name and two terminators whatever the stored value looks like */
    *list = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, bytes + (lstrlenW(PACKAGE_NAME) + 4) * sizeof(WCHAR));
    if (!*list) return ERROR_OUTOFMEMORY;
    if (bytes && (rc = RegQueryValueExW(key, PACKAGES_VALUE, NULL, &type, (BYTE *)*list, &bytes)) != ERROR_SUCCESS) return rc;
    *chars = bytes / sizeof(WCHAR);
    return ERROR_SUCCESS;
}

/*
 * Rewrites the list keeping every other entry in its order; with add, ours goes last unless
 * it is already there. Done here rather than with MSI's "[~]" append syntax: Microsoft's
 * Registry table documentation defines [~] for install only, and wine's msiexec deleted the
 * whole value on uninstall, taking scecli and any other vendor's filter with it.
 */
static int edit_packages(BOOL add)
{
    HKEY key;
    WCHAR *list = NULL, *out = NULL;
    DWORD chars = 0, o = 0, i = 0;
    BOOL present = FALSE;
    LONG rc = RegOpenKeyExW(HKEY_LOCAL_MACHINE, LSA_KEY, 0, KEY_QUERY_VALUE | KEY_SET_VALUE, &key);
    if (rc != ERROR_SUCCESS) {
        say(L"cannot open HKLM\\%s (error %lu)", LSA_KEY, (unsigned long)rc);
        return 1;
    }
    if ((rc = read_packages(key, &list, &chars)) != ERROR_SUCCESS) {
        say(L"cannot read %s (error %lu)", PACKAGES_VALUE, (unsigned long)rc);
        RegCloseKey(key);
        return 1;
    }
    out = HeapAlloc(GetProcessHeap(), HEAP_ZERO_MEMORY, (chars + lstrlenW(PACKAGE_NAME) + 4) * sizeof(WCHAR));
    if (!out) {
        RegCloseKey(key);
        return 1;
    }
    while (i < chars && list[i]) {
        const WCHAR *entry = list + i;
        DWORD len = (DWORD)lstrlenW(entry);
        if (lstrcmpiW(entry, PACKAGE_NAME) == 0) {
            present = TRUE;
            if (!add) {
                i += len + 1;
                continue;
            }
        }
        lstrcpyW(out + o, entry);
        o += len + 1;
        i += len + 1;
    }
    if (add && present) {
        say(L"%s already lists %s", PACKAGES_VALUE, PACKAGE_NAME);
        rc = ERROR_SUCCESS;
    } else if (!add && !present) {
        say(L"%s does not list %s; nothing to remove", PACKAGES_VALUE, PACKAGE_NAME);
        rc = ERROR_SUCCESS;
    } else {
        if (add) {
            lstrcpyW(out + o, PACKAGE_NAME);
            o += (DWORD)lstrlenW(PACKAGE_NAME) + 1;
        }
        out[o++] = L'\0'; /* list terminator */
        /* Ours was the only entry (the value did not exist before us): leave no empty value. */
        rc = o == 1 ? RegDeleteValueW(key, PACKAGES_VALUE) : RegSetValueExW(key, PACKAGES_VALUE, 0, REG_MULTI_SZ, (const BYTE *)out, o * sizeof(WCHAR));
        if (rc == ERROR_SUCCESS) say(L"%s %s %s", add ? L"appended" : L"removed", PACKAGE_NAME, add ? L"to Notification Packages (takes effect at the next boot)" : L"from Notification Packages (others kept)");
        else say(L"cannot write %s (error %lu)", PACKAGES_VALUE, (unsigned long)rc);
    }
    HeapFree(GetProcessHeap(), 0, list);
    HeapFree(GetProcessHeap(), 0, out);
    RegCloseKey(key);
    return rc == ERROR_SUCCESS ? 0 : 1;
}

/* ---- folders ------------------------------------------------------------------------- */

static BOOL secure_folder(const WCHAR *path, const WCHAR *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    DWORD rc;
    if (!CreateDirectoryW(path, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) {
        say(L"cannot create %s (error %lu)", path, (unsigned long)GetLastError());
        return FALSE;
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL) ||
        !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        say(L"bad security descriptor %s (error %lu)", sddl, (unsigned long)GetLastError());
        if (sd) LocalFree(sd);
        return FALSE;
    }
    /* Protected DACL: nothing inherited from ProgramData (where Users may read); applied to a
       folder that already exists too (an admin may have created it to drop the config in). */
    rc = SetNamedSecurityInfoW((LPWSTR)path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION, NULL, NULL, dacl, NULL);
    LocalFree(sd);
    if (rc != ERROR_SUCCESS) {
        say(L"cannot set the ACL of %s (error %lu)", path, (unsigned long)rc);
        return FALSE;
    }
    say(L"%s ready (%s)", path, sddl);
    return TRUE;
}

/*
 * The spool folder belongs to the filter: it creates it itself, owned by SYSTEM with one
 * protected SYSTEM-only entry, and refuses to write into any folder that is not exactly that
 * (event 2009; lsa-filter/src/spool.c). So it is not created here; a folder that already exists
 * must pass the same test, or the install stops: someone else made it.
 */
static BOOL spool_is_system_only(const WCHAR *path)
{
    BYTE system_buf[SECURITY_MAX_SID_SIZE];
    DWORD system_len = sizeof system_buf, rev = 0, i, rc;
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    ACL_SIZE_INFORMATION info;
    const WCHAR *why = NULL;
    DWORD attrs = GetFileAttributesW(path);
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) why = L"it is a reparse point";
    else if (!CreateWellKnownSid(WinLocalSystemSid, NULL, system_buf, &system_len)) why = L"no SYSTEM SID";
    else if ((rc = GetNamedSecurityInfoW(path, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, NULL, &dacl, NULL, &sd)) != ERROR_SUCCESS)
        why = L"its security descriptor cannot be read";
    else if (!owner || !EqualSid(owner, (PSID)system_buf)) why = L"its owner is not SYSTEM";
    else if (!GetSecurityDescriptorControl(sd, &control, &rev) || !(control & SE_DACL_PROTECTED) || !dacl) why = L"its DACL is inherited or missing";
    else if (!GetAclInformation(dacl, &info, sizeof info, AclSizeInformation)) why = L"its DACL cannot be read";
    else
        for (i = 0; i < info.AceCount && !why; i++) {
            ACCESS_ALLOWED_ACE *ace = NULL;
            if (!GetAce(dacl, i, (void **)&ace) || ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE || (ace->Header.AceFlags & INHERITED_ACE) ||
                !EqualSid((PSID)&ace->SidStart, (PSID)system_buf))
                why = L"its DACL grants someone other than SYSTEM";
        }
    if (sd) LocalFree(sd);
    if (why) say(L"%s exists and %s: the filter would refuse it (event 2009). Check who made it, remove it, and install again.", path, why);
    return why == NULL;
}

static int prepare_folders(BOOL check_spool)
{
    WCHAR base[MAX_PATH], spool[MAX_PATH], data[MAX_PATH], logs[MAX_PATH];
    if (!program_data_path(base, MAX_PATH, NULL) || !program_data_path(spool, MAX_PATH, L"spool") ||
        !program_data_path(data, MAX_PATH, L"dc-agent") || !program_data_path(logs, MAX_PATH, L"logs"))
        return 1;
    /* The base folder first: once it is SYSTEM + Administrators only, nobody else can
       pre-create the spool folder inside it. */
    if (!secure_folder(base, BASE_SDDL) || !secure_folder(data, BASE_SDDL) || !secure_folder(logs, BASE_SDDL)) return 1;
    if (!check_spool) return 0;
    if (GetFileAttributesW(spool) == INVALID_FILE_ATTRIBUTES) {
        say(L"%s will be created by the filter itself (owner SYSTEM, SYSTEM-only)", spool);
        return 0;
    }
    return spool_is_system_only(spool) ? 0 : 1;
}

/* ---- service configuration ---------------------------------------------------------- */

/*
 * Quotes the service's image path (wine's msiexec wrote "C:\Program Files\pwsync\pwsync-service.exe"
 * unquoted; an unquoted path with a space lets C:\Program.exe run as SYSTEM) and asks the SCM
 * to restart the wrapper if it ever dies.
 */
static int configure_service(void)
{
    WCHAR self[MAX_PATH], quoted[MAX_PATH + 2];
    SC_ACTION actions[3] = {{SC_ACTION_RESTART, 5000}, {SC_ACTION_RESTART, 30000}, {SC_ACTION_RESTART, 60000}};
    SERVICE_FAILURE_ACTIONSW failure = {86400, NULL, NULL, 3, actions};
    SC_HANDLE scm, svc;
    BOOL ok;
    DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH);
    if (n == 0 || n >= MAX_PATH) return 1;
    wnsprintfW(quoted, MAX_PATH + 2, L"\"%s\"", self);
    if (!(scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT))) {
        say(L"cannot open the service control manager (error %lu)", (unsigned long)GetLastError());
        return 1;
    }
    if (!(svc = OpenServiceW(scm, SERVICE_NAME, SERVICE_CHANGE_CONFIG | SERVICE_START))) {
        say(L"cannot open service %s (error %lu)", SERVICE_NAME, (unsigned long)GetLastError());
        CloseServiceHandle(scm);
        return 1;
    }
    ok = ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, quoted, NULL, NULL, NULL, NULL, NULL, NULL);
    if (ok) say(L"service %s runs %s", SERVICE_NAME, quoted);
    else say(L"cannot set the image path of %s (error %lu)", SERVICE_NAME, (unsigned long)GetLastError());
    /* Best effort: recovery is a safety net for a crash of this wrapper, not a requirement. */
    if (!ChangeServiceConfig2W(svc, SERVICE_CONFIG_FAILURE_ACTIONS, &failure))
        say(L"note: recovery actions not set (error %lu)", (unsigned long)GetLastError());
    CloseServiceHandle(svc);
    CloseServiceHandle(scm);
    return ok ? 0 : 1;
}

/* ---- DPAPI ---------------------------------------------------------------------------- */

static int unprotect(void)
{
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE), out = GetStdHandle(STD_OUTPUT_HANDLE);
    BYTE *buf = HeapAlloc(GetProcessHeap(), 0, MAX_BLOB);
    DWORD len = 0, got = 0, written = 0;
    DATA_BLOB blob, entropy, frame = {0, NULL};
    int rc = 0;
    if (!buf) return 3;
    while (len < MAX_BLOB && ReadFile(in, buf + len, MAX_BLOB - len, &got, NULL) && got > 0) len += got;
    blob.cbData = len;
    blob.pbData = buf;
    entropy.cbData = sizeof(g_entropy) - 1;
    entropy.pbData = (BYTE *)g_entropy;
    if (len == 0 || len >= MAX_BLOB) {
        say(L"unprotect: %lu bytes on stdin; expected one DPAPI blob", (unsigned long)len);
        rc = 3;
    } else if (!CryptUnprotectData(&blob, NULL, &entropy, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &frame)) {
        say(L"unprotect: CryptUnprotectData failed (error %lu)", (unsigned long)GetLastError());
        rc = 3;
    } else if (frame.cbData == 0) {
        say(L"unprotect: CryptUnprotectData returned no data");
        rc = 4;
    } else {
        DWORD off = 0;
        while (off < frame.cbData && WriteFile(out, frame.pbData + off, frame.cbData - off, &written, NULL) && written > 0) off += written;
        if (off != frame.cbData) {
            say(L"unprotect: could not write the frame to stdout (error %lu)", (unsigned long)GetLastError());
            rc = 3;
        }
    }
    if (frame.pbData) {
        SecureZeroMemory(frame.pbData, frame.cbData);
        LocalFree(frame.pbData);
    }
    SecureZeroMemory(buf, len);
    HeapFree(GetProcessHeap(), 0, buf);
    return rc;
}

/* ---- the service ------------------------------------------------------------------------ */

static void report(DWORD state, DWORD wait_hint)
{
    g_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    g_status.dwCurrentState = state;
    g_status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    g_status.dwWaitHint = wait_hint;
    g_status.dwCheckPoint = (state == SERVICE_RUNNING || state == SERVICE_STOPPED) ? 0 : g_status.dwCheckPoint + 1;
    SetServiceStatus(g_status_handle, &g_status);
}

static DWORD WINAPI control_handler(DWORD control, DWORD type, LPVOID data, LPVOID ctx)
{
    (void)type;
    (void)data;
    (void)ctx;
    if (control == SERVICE_CONTROL_STOP || control == SERVICE_CONTROL_SHUTDOWN) {
        report(SERVICE_STOP_PENDING, STOP_GRACE_MS + 5000);
        SetEvent(g_stop_event);
        return NO_ERROR;
    }
    return control == SERVICE_CONTROL_INTERROGATE ? NO_ERROR : ERROR_CALL_NOT_IMPLEMENTED;
}

static BOOL start_agent(PROCESS_INFORMATION *pi, HANDLE *stdin_write)
{
    WCHAR self[MAX_PATH], cmd[MAX_PATH + 32], *slash;
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    STARTUPINFOW si;
    HANDLE stdin_read = NULL;
    BOOL ok;
    DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH);
    if (n == 0 || n >= MAX_PATH || !(slash = wcsrchr(self, L'\\'))) return FALSE;
    *slash = L'\0';
    wnsprintfW(cmd, MAX_PATH + 32, L"\"%s\\dc-agent.exe\" run", self);
    if (!CreatePipe(&stdin_read, stdin_write, &inherit, 0)) return FALSE;
    SetHandleInformation(*stdin_write, HANDLE_FLAG_INHERIT, 0); /* only the read end goes to the child */
    ZeroMemory(&si, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = stdin_read;
    si.hStdOutput = g_log;
    si.hStdError = g_log;
    ok = CreateProcessW(NULL, cmd, NULL, NULL, TRUE, CREATE_NO_WINDOW, NULL, self, &si, pi);
    if (!ok) say(L"cannot start %s (error %lu)", cmd, (unsigned long)GetLastError());
    CloseHandle(stdin_read);
    if (!ok) CloseHandle(*stdin_write);
    return ok;
}

static void open_log(void)
{
    WCHAR path[MAX_PATH];
    SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
    if (!program_data_path(path, MAX_PATH, L"logs\\dc-agent-console.log")) return;
    /* FILE_APPEND_DATA only: both processes append whole lines, never overwrite. */
    g_log = CreateFileW(path, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, &inherit, OPEN_ALWAYS,
                        FILE_ATTRIBUTE_NORMAL, NULL);
}

static void WINAPI service_main(DWORD argc, LPWSTR *argv)
{
    DWORD backoff = 2000;
    WCHAR config[MAX_PATH], self[MAX_PATH];
    (void)argc;
    (void)argv;
    g_status_handle = RegisterServiceCtrlHandlerExW(SERVICE_NAME, control_handler, NULL);
    if (!g_status_handle) return;
    g_stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    report(SERVICE_START_PENDING, 10000);
    prepare_folders(FALSE); /* the logs folder must exist before the log file; idempotent */
    open_log();

    /* The child inherits this environment: the config path unless the service's own
       environment names one, the stop protocol, and where the native helpers are. */
    if (GetEnvironmentVariableW(L"PWSYNC_CONFIG", config, MAX_PATH) == 0 && program_data_path(config, MAX_PATH, L"dc-agent.yaml"))
        SetEnvironmentVariableW(L"PWSYNC_CONFIG", config);
    SetEnvironmentVariableW(L"PWSYNC_STOP_ON_STDIN_EOF", L"1");
    if (GetModuleFileNameW(NULL, self, MAX_PATH) > 0) {
        WCHAR pipe_helper[MAX_PATH], *slash;
        SetEnvironmentVariableW(L"PWSYNC_DPAPI_HELPER", self);
        /* pwsync-pipe.exe, installed beside us, owns the filter's pipe (SYSTEM-only DACL, no
           remote clients) and reads spooled files' owners: dc-agent/native/. */
        lstrcpyW(pipe_helper, self);
        if ((slash = wcsrchr(pipe_helper, L'\\')) != NULL && (size_t)(slash - pipe_helper) + 16 < MAX_PATH) {
            lstrcpyW(slash + 1, L"pwsync-pipe.exe");
            if (GetEnvironmentVariableW(L"PWSYNC_PIPE_HELPER", NULL, 0) == 0) SetEnvironmentVariableW(L"PWSYNC_PIPE_HELPER", pipe_helper);
        }
    }

    report(SERVICE_RUNNING, 0);
    say(L"service running; agent configuration %s", config);
    for (;;) {
        PROCESS_INFORMATION pi;
        HANDLE stdin_write = NULL, waits[2];
        ULONGLONG started;
        DWORD which, code = 0;
        if (!start_agent(&pi, &stdin_write)) {
            if (WaitForSingleObject(g_stop_event, backoff) == WAIT_OBJECT_0) break;
            backoff = backoff >= 30000 ? 60000 : backoff * 2;
            continue;
        }
        started = GetTickCount64();
        say(L"agent started (pid %lu)", (unsigned long)pi.dwProcessId);
        waits[0] = pi.hProcess;
        waits[1] = g_stop_event;
        which = WaitForMultipleObjects(2, waits, FALSE, INFINITE);
        if (which == WAIT_OBJECT_0 + 1) {
            ULONGLONG deadline = GetTickCount64() + STOP_GRACE_MS;
            say(L"stop requested: closing the agent's stdin and waiting up to %lu ms for it to finish", (unsigned long)STOP_GRACE_MS);
            CloseHandle(stdin_write);
            while (WaitForSingleObject(pi.hProcess, 1000) == WAIT_TIMEOUT) {
                if (GetTickCount64() >= deadline) {
                    say(L"ERROR: the agent did not stop within %lu ms; terminating it", (unsigned long)STOP_GRACE_MS);
                    TerminateProcess(pi.hProcess, 1);
                    WaitForSingleObject(pi.hProcess, 5000);
                    break;
                }
                report(SERVICE_STOP_PENDING, STOP_GRACE_MS + 5000);
            }
            GetExitCodeProcess(pi.hProcess, &code);
            say(L"agent exited with code %lu; service stopped", (unsigned long)code);
            CloseHandle(pi.hProcess);
            CloseHandle(pi.hThread);
            break;
        }
        GetExitCodeProcess(pi.hProcess, &code);
        CloseHandle(stdin_write);
        CloseHandle(pi.hProcess);
        CloseHandle(pi.hThread);
        if (GetTickCount64() - started > 300000) backoff = 2000; /* it ran fine for a while */
        say(L"agent exited with code %lu%s; starting it again in %lu ms", (unsigned long)code,
             code == 2 ? L" (configuration problem: run dc-agent.exe verify)" : L"", (unsigned long)backoff);
        if (WaitForSingleObject(g_stop_event, backoff) == WAIT_OBJECT_0) break;
        backoff = backoff >= 30000 ? 60000 : backoff * 2;
    }
    if (g_log != INVALID_HANDLE_VALUE) CloseHandle(g_log);
    report(SERVICE_STOPPED, 0);
}

int wmain(int argc, WCHAR **argv)
{
    if (argc >= 2) {
        if (lstrcmpiW(argv[1], L"register-filter") == 0) return edit_packages(TRUE);
        if (lstrcmpiW(argv[1], L"unregister-filter") == 0) return edit_packages(FALSE);
        if (lstrcmpiW(argv[1], L"prepare-folders") == 0) return prepare_folders(TRUE);
        if (lstrcmpiW(argv[1], L"configure-service") == 0) return configure_service();
        if (lstrcmpiW(argv[1], L"unprotect") == 0) return unprotect();
    } else {
        SERVICE_TABLE_ENTRYW table[] = {{(LPWSTR)SERVICE_NAME, service_main}, {NULL, NULL}};
        if (StartServiceCtrlDispatcherW(table)) return 0;
        if (GetLastError() != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) return 1;
    }
    write_utf8(GetStdHandle(STD_ERROR_HANDLE),
               L"usage: pwsync-service.exe [register-filter | unregister-filter | prepare-folders | configure-service | unprotect]\r\n"
               L"(without arguments it runs as the Windows service " SERVICE_NAME L", started by the service control manager)\r\n");
    return 2;
}
