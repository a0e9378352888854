#include "harness.h"
#include <wincrypt.h>
#include <stdlib.h>

USHORT h_u16(const BYTE *p) { return (USHORT)(p[0] | (p[1] << 8)); }
DWORD h_u32(const BYTE *p) { return (DWORD)h_u16(p) | ((DWORD)h_u16(p + 2) << 16); }
ULONGLONG h_u64(const BYTE *p) { return (ULONGLONG)h_u32(p) | ((ULONGLONG)h_u32(p + 4) << 32); }

typedef struct { WCHAR name[MAX_PATH]; } h_name;

static int by_name(const void *a, const void *b) { return lstrcmpW(((const h_name *)a)->name, ((const h_name *)b)->name); }

static BOOL ends_with(const WCHAR *s, const WCHAR *suffix)
{
    size_t n = wcslen(s), m = wcslen(suffix);
    return n >= m && lstrcmpiW(s + n - m, suffix) == 0;
}

/* Sorted list of "*.pwsf" names; caller frees. */
static h_name *list(const WCHAR *dir, DWORD *count, DWORD *tmp_files)
{
    WCHAR pattern[MAX_PATH];
    WIN32_FIND_DATAW fd;
    HANDLE f;
    h_name *names = NULL;
    DWORD n = 0, cap = 0, tmp = 0;
    swprintf(pattern, MAX_PATH, L"%ls\\*", dir);
    f = FindFirstFileW(pattern, &fd);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) continue;
            if (ends_with(fd.cFileName, L".tmp")) { tmp++; continue; }
            if (!ends_with(fd.cFileName, L".pwsf")) continue;
            if (n == cap) { cap = cap ? cap * 2 : 256; names = realloc(names, cap * sizeof(h_name)); }
            lstrcpynW(names[n++].name, fd.cFileName, MAX_PATH);
        } while (FindNextFileW(f, &fd));
        FindClose(f);
    }
    if (n) qsort(names, n, sizeof(h_name), by_name);
    *count = n;
    if (tmp_files) *tmp_files = tmp;
    return names;
}

static BYTE *read_file(const WCHAR *path, DWORD *len)
{
    HANDLE h = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    DWORD size, got = 0;
    BYTE *buf;
    if (h == INVALID_HANDLE_VALUE) return NULL;
    size = GetFileSize(h, NULL);
    buf = malloc(size ? size : 1);
    if (!ReadFile(h, buf, size, &got, NULL) || got != size) { free(buf); buf = NULL; }
    CloseHandle(h);
    *len = size;
    return buf;
}

DWORD h_spool_count(const WCHAR *dir, DWORD *tmp_files)
{
    DWORD n;
    free(list(dir, &n, tmp_files));
    return n;
}

DWORD h_spool_wait(const WCHAR *dir, DWORD want, DWORD timeout_ms)
{
    ULONGLONG deadline = GetTickCount64() + timeout_ms;
    DWORD n;
    while ((n = h_spool_count(dir, NULL)) < want && GetTickCount64() < deadline) Sleep(5);
    return n;
}

DWORD h_spool_scan(const WCHAR *dir, const BYTE *needle, DWORD needle_len, DWORD *files_checked)
{
    DWORD n, hits = 0, i, len, j;
    h_name *names = list(dir, &n, NULL);
    WCHAR path[MAX_PATH];
    *files_checked = 0;
    for (i = 0; i < n; i++) {
        BYTE *buf;
        swprintf(path, MAX_PATH, L"%ls\\%ls", dir, names[i].name);
        if (!(buf = read_file(path, &len))) continue;
        (*files_checked)++;
        for (j = 0; j + needle_len <= len; j++)
            if (memcmp(buf + j, needle, needle_len) == 0) { hits++; break; }
        free(buf);
    }
    free(names);
    return hits;
}

DWORD h_spool_drain(const WCHAR *dir, h_frame_cb cb, void *ctx)
{
    static const BYTE entropy_bytes[] = "pwsync-spool-v1";
    DWORD n, i, len, drained = 0;
    h_name *names = list(dir, &n, NULL);
    WCHAR path[MAX_PATH];
    for (i = 0; i < n; i++) {
        DATA_BLOB in, out, entropy;
        BYTE *buf;
        swprintf(path, MAX_PATH, L"%ls\\%ls", dir, names[i].name);
        if (!(buf = read_file(path, &len))) { drained = (DWORD)-1; break; }
        if (len < 12 || memcmp(buf, "PWSS", 4) != 0 || h_u16(buf + 4) != 2 || h_u32(buf + 8) != len - 12) {
            fprintf(stderr, "spool file %ls: bad envelope\n", names[i].name);
            free(buf);
            drained = (DWORD)-1;
            break;
        }
        in.cbData = len - 12;
        in.pbData = buf + 12;
        entropy.cbData = sizeof(entropy_bytes) - 1;
        entropy.pbData = (BYTE *)entropy_bytes;
        if (!CryptUnprotectData(&in, NULL, &entropy, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &out)) {
            fprintf(stderr, "spool file %ls: CryptUnprotectData error %lu\n", names[i].name, GetLastError());
            free(buf);
            drained = (DWORD)-1;
            break;
        }
        cb(out.pbData, out.cbData, ctx);
        SecureZeroMemory(out.pbData, out.cbData);
        LocalFree(out.pbData);
        free(buf);
        DeleteFileW(path);
        drained++;
    }
    free(names);
    return drained;
}

void h_spool_clear(const WCHAR *dir)
{
    WCHAR pattern[MAX_PATH], path[MAX_PATH];
    WIN32_FIND_DATAW fd;
    HANDLE f;
    swprintf(pattern, MAX_PATH, L"%ls\\*", dir);
    f = FindFirstFileW(pattern, &fd);
    if (f == INVALID_HANDLE_VALUE) return;
    do {
        if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) continue;
        swprintf(path, MAX_PATH, L"%ls\\%ls", dir, fd.cFileName);
        DeleteFileW(path);
    } while (FindNextFileW(f, &fd));
    FindClose(f);
}
