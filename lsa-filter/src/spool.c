/* Agent unreachable: the frame goes to disk, DPAPI-encrypted (machine scope), in a folder whose
 * DACL admits SYSTEM only, written to a temp name and renamed so the agent never sees half a file.
 * Machine-scope DPAPI can be opened by any process on this machine; the folder ACL is what keeps
 * other accounts out, the encryption is what keeps the bytes useless off this machine (backups,
 * disk images). */
#include "pwsync.h"
#include <sddl.h>
#include <wincrypt.h>

/* Protected DACL, SYSTEM full control, inherited by the files created inside. */
#define PW_SPOOL_SDDL L"D:P(A;OICI;FA;;;SY)"

static const BYTE g_entropy[] = "pwsync-spool-v1";

static DWORD ensure_dir(const WCHAR *dir)
{
    WCHAR parent[MAX_PATH];
    SECURITY_ATTRIBUTES sa;
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD err = 0, i, cut = 0;

    if (GetFileAttributesW(dir) != INVALID_FILE_ATTRIBUTES) return 0;
    pw_join(parent, MAX_PATH, dir, NULL, NULL);
    for (i = 0; parent[i]; i++) if (parent[i] == L'\\') cut = i;
    if (cut > 2) { parent[cut] = 0; CreateDirectoryW(parent, NULL); } /* e.g. %ProgramData%\pwsync */

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(PW_SPOOL_SDDL, SDDL_REVISION_1, &sd, NULL))
        return GetLastError();
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = sd;
    sa.bInheritHandle = FALSE;
    if (!CreateDirectoryW(dir, &sa)) {
        err = GetLastError();
        if (err == ERROR_ALREADY_EXISTS) err = 0;
    }
    LocalFree(sd);
    return err;
}

static BOOL write_all(HANDLE h, const BYTE *p, DWORD n)
{
    DWORD w = 0;
    return WriteFile(h, p, n, &w, NULL) && w == n;
}

DWORD pw_spool_write(const pw_config *cfg, const BYTE *frame, DWORD len, const WCHAR **failed_step)
{
    DATA_BLOB in, out, entropy;
    BYTE header[PW_SPOOL_HEADER_BYTES];
    WCHAR seq[17], cap[17], stem[40], tmp[MAX_PATH], final_name[MAX_PATH];
    HANDLE h;
    DWORD err;

    *failed_step = L"create spool folder";
    if ((err = ensure_dir(cfg->spool_dir)) != 0) return err;

    in.cbData = len;
    in.pbData = (BYTE *)frame;
    entropy.cbData = sizeof(g_entropy) - 1;
    entropy.pbData = (BYTE *)g_entropy;
    out.cbData = 0;
    out.pbData = NULL;
    *failed_step = L"CryptProtectData";
    if (!CryptProtectData(&in, L"pwsync", &entropy, NULL, NULL,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &out))
        return GetLastError();

    pw_put_u32(header, PW_SPOOL_MAGIC);
    pw_put_u16(header + 4, PW_FRAME_VERSION);
    pw_put_u16(header + 6, 0);
    pw_put_u32(header + 8, out.cbData);

    /* <sequence>-<capturedAt>: fixed-width hex, so name order is capture order for the drainer. */
    pw_u64_hex(seq, pw_frame_sequence(frame));
    pw_u64_hex(cap, pw_frame_captured_at(frame));
    pw_join(stem, ARRAYSIZE(stem), seq, L"-", cap);
    *failed_step = L"spool path";
    if (!pw_join(tmp, MAX_PATH, cfg->spool_dir, L"\\", stem) || !pw_join(final_name, MAX_PATH, tmp, L".pwsf", NULL) ||
        !pw_join(tmp, MAX_PATH, final_name, L".tmp", NULL)) {
        LocalFree(out.pbData);
        return ERROR_FILENAME_EXCED_RANGE;
    }

    *failed_step = L"write spool file";
    h = CreateFileW(tmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) { err = GetLastError(); LocalFree(out.pbData); return err; }
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
    return err;
}
