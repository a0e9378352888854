/* Agent unreachable: the frame goes to disk (spool thread only, never LSA's thread).
 *
 * Who can read it: the folder is verified before every file — owned by this process's account
 * (SYSTEM inside LSASS), a DACL whose every entry is an explicit allow for SYSTEM (none inherited
 * from the parent, none for anyone else; the folder we create has exactly one, protected), and
 * not a reparse point — or nothing is written (event 2009). A folder someone else pre-created (ProgramData lets Users create folders) therefore
 * never receives a frame. Each file is also created with its own explicit protected DACL, so
 * even a folder swapped after the check cannot pass a readable ACL on to it, and the folder is
 * held open without FILE_SHARE_DELETE while the file is written, so it cannot be renamed away.
 *
 * What the bytes are worth: DPAPI in the filter's own user scope (SYSTEM's keys), not machine
 * scope, which any local account can decrypt (Microsoft's CryptProtectData documentation:
 * CRYPTPROTECT_LOCAL_MACHINE = "all users on the computer"). Written to a temp name, flushed,
 * renamed, so the agent never sees half a file. */
#include "pwsync.h"
#include <aclapi.h>
#include <sddl.h>
#include <wincrypt.h>

static const BYTE g_entropy[] = "pwsync-spool-v1";

BOOL pw_self_sid(BYTE *buf, DWORD cap, PSID *sid)
{
    HANDLE token;
    DWORD got = 0;
    BOOL ok;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) return FALSE;
    ok = GetTokenInformation(token, TokenUser, buf, cap, &got);
    CloseHandle(token);
    if (ok) *sid = ((TOKEN_USER *)buf)->User.Sid;
    return ok;
}

/* "O:<sid>D:P(A;<inherit>;FA;;;<sid>)": owner and only ACE are this process's account. */
static PSECURITY_DESCRIPTOR own_sd(PSID sid, BOOL inherit)
{
    WCHAR sddl[256];
    WCHAR *text = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    if (!ConvertSidToStringSidW(sid, &text)) return NULL;
    if (pw_join(sddl, ARRAYSIZE(sddl), L"O:", text, inherit ? L"D:P(A;OICI;FA;;;" : L"D:P(A;;FA;;;") &&
        pw_join(sddl, ARRAYSIZE(sddl), sddl, text, L")"))
        ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL);
    LocalFree(text);
    return sd;
}

static DWORD ensure_dir(const WCHAR *dir, PSID sid)
{
    WCHAR parent[MAX_PATH];
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd;
    DWORD err = 0, i, cut = 0;

    if (GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES) return 0;
    pw_join(parent, MAX_PATH, dir, NULL, NULL);
    for (i = 0; parent[i]; i++) if (parent[i] == L'\\') cut = i;
    if (cut > 2) { parent[cut] = 0; CreateDirectoryW(parent, NULL); } /* e.g. %ProgramData%\pwsync */

    if ((sd = own_sd(sid, TRUE)) == NULL) return GetLastError();
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    if (!CreateDirectoryW(dir, &sa)) {
        err = GetLastError();
        if (err == ERROR_ALREADY_EXISTS) err = 0; /* someone else's: verification decides */
    }
    LocalFree(sd);
    return err;
}

/* SYSTEM is always acceptable; inside LSASS it is also `sid`. */
static BOOL trusted_sid(PSID candidate, PSID self)
{
    BYTE buf[SECURITY_MAX_SID_SIZE];
    DWORD n = sizeof(buf);
    if (EqualSid(candidate, self)) return TRUE;
    return CreateWellKnownSid(WinLocalSystemSid, NULL, buf, &n) && EqualSid(candidate, (PSID)buf);
}

/* Owner is `sid`; the DACL exists and every ACE is an explicit (not inherited) allow for SYSTEM.
 * "Protected" is implied rather than required: a DACL that inherits shows inherited ACEs, and
 * the check runs before every file. Returns NULL when it holds, else the reason. */
static const WCHAR *check_sd(HANDLE h, PSID sid)
{
    PSID owner = NULL;
    PACL dacl = NULL;
    PSECURITY_DESCRIPTOR sd = NULL;
    SECURITY_DESCRIPTOR_CONTROL control = 0;
    DWORD revision = 0, i;
    const WCHAR *why = NULL;

    if (GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner, NULL, &dacl,
                        NULL, &sd) != ERROR_SUCCESS)
        return L"security descriptor unreadable";
    if (owner == NULL || !EqualSid(owner, sid)) why = L"owner is not SYSTEM";
    else if (!GetSecurityDescriptorControl(sd, &control, &revision) || !(control & SE_DACL_PRESENT) || dacl == NULL)
        why = L"no DACL (everyone has access)";
    else {
        for (i = 0; i < dacl->AceCount && why == NULL; i++) {
            ACCESS_ALLOWED_ACE *ace = NULL;
            if (!GetAce(dacl, i, (LPVOID *)&ace)) why = L"DACL unreadable";
            else if (ace->Header.AceFlags & INHERITED_ACE) why = L"DACL inherits entries from the parent folder";
            else if (ace->Header.AceType != ACCESS_ALLOWED_ACE_TYPE || !trusted_sid((PSID)&ace->SidStart, sid))
                why = L"DACL grants access to another account than SYSTEM";
        }
    }
    LocalFree(sd);
    return why;
}

/* Opens the folder itself (a reparse point is opened, not followed) without FILE_SHARE_DELETE,
 * and verifies it. On success the handle pins the folder until the caller closes it. */
static HANDLE open_verified_dir(const WCHAR *dir, PSID sid, const WCHAR **why)
{
    BY_HANDLE_FILE_INFORMATION info;
    HANDLE h = CreateFileW(dir, READ_CONTROL | FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    DWORD by_path;
    if (h == INVALID_HANDLE_VALUE) { *why = L"cannot be opened"; return h; }
    /* Both the path's and the handle's attributes: either may be the one that shows the link. */
    by_path = GetFileAttributesW(dir);
    if (!GetFileInformationByHandle(h, &info) || by_path == INVALID_FILE_ATTRIBUTES) *why = L"attributes unreadable";
    else if ((info.dwFileAttributes | by_path) & FILE_ATTRIBUTE_REPARSE_POINT) *why = L"is a reparse point (junction or link)";
    else if (!(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) *why = L"is not a folder";
    else *why = check_sd(h, sid);
    if (*why != NULL) { CloseHandle(h); return INVALID_HANDLE_VALUE; }
    return h;
}

static BOOL write_all(HANDLE h, const BYTE *p, DWORD n)
{
    DWORD w = 0;
    return WriteFile(h, p, n, &w, NULL) && w == n;
}

DWORD pw_spool_write(const pw_config *cfg, const BYTE *frame, DWORD len, const WCHAR **failed_step)
{
    DATA_BLOB in, out, entropy;
    BYTE header[PW_SPOOL_HEADER_BYTES], self[256];
    WCHAR seq[17], cap[17], stem[40], tmp[MAX_PATH], final_name[MAX_PATH];
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR file_sd;
    PSID sid = NULL;
    HANDLE dir, h;
    DWORD err;

    *failed_step = L"own account SID";
    if (!pw_self_sid(self, sizeof(self), &sid)) return GetLastError();
    *failed_step = L"create spool folder";
    if ((err = ensure_dir(cfg->spool_dir, sid)) != 0) return err;
    dir = open_verified_dir(cfg->spool_dir, sid, failed_step);
    if (dir == INVALID_HANDLE_VALUE) return PW_SPOOL_UNTRUSTED;

    in.cbData = len;
    in.pbData = (BYTE *)frame;
    entropy.cbData = sizeof(g_entropy) - 1;
    entropy.pbData = (BYTE *)g_entropy;
    out.cbData = 0;
    out.pbData = NULL;
    *failed_step = L"CryptProtectData";
    /* No CRYPTPROTECT_LOCAL_MACHINE: user scope, i.e. SYSTEM's keys inside LSASS. */
    if (!CryptProtectData(&in, L"pwsync", &entropy, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
        err = GetLastError();
        CloseHandle(dir);
        return err;
    }

    pw_put_u32(header, PW_SPOOL_MAGIC);
    pw_put_u16(header + 4, PW_SPOOL_VERSION);
    pw_put_u16(header + 6, 0);
    pw_put_u32(header + 8, out.cbData);

    /* <sequence>-<capturedAt>: fixed-width hex, unique per change. */
    pw_u64_hex(seq, pw_frame_sequence(frame));
    pw_u64_hex(cap, pw_frame_captured_at(frame));
    pw_join(stem, ARRAYSIZE(stem), seq, L"-", cap);
    *failed_step = L"spool path";
    if (!pw_join(tmp, MAX_PATH, cfg->spool_dir, L"\\", stem) || !pw_join(final_name, MAX_PATH, tmp, L".pwsf", NULL) ||
        !pw_join(tmp, MAX_PATH, final_name, L".tmp", NULL)) {
        LocalFree(out.pbData);
        CloseHandle(dir);
        return ERROR_FILENAME_EXCED_RANGE;
    }

    *failed_step = L"write spool file";
    if ((file_sd = own_sd(sid, FALSE)) == NULL) {
        err = GetLastError();
        LocalFree(out.pbData);
        CloseHandle(dir);
        return err;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = file_sd;
    sa.bInheritHandle = FALSE;
    h = CreateFileW(tmp, GENERIC_WRITE, 0, &sa, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    LocalFree(file_sd);
    if (h == INVALID_HANDLE_VALUE) {
        err = GetLastError();
        LocalFree(out.pbData);
        CloseHandle(dir);
        return err;
    }
    err = 0;
    if (!write_all(h, header, sizeof(header)) || !write_all(h, out.pbData, out.cbData) || !FlushFileBuffers(h))
        err = GetLastError();
    CloseHandle(h);
    LocalFree(out.pbData);
    if (err == 0) {
        *failed_step = L"rename spool file";
        /* No REPLACE_EXISTING: an existing name is never overwritten (that would lose a change). */
        if (!MoveFileExW(tmp, final_name, MOVEFILE_WRITE_THROUGH)) err = GetLastError();
    }
    if (err != 0) DeleteFileW(tmp);
    CloseHandle(dir);
    return err;
}
