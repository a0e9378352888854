/* Settings from HKLM\SOFTWARE\pwsync\Filter, read once at InitializeChangeNotify.
 * Missing or invalid values fall back to defaults: a bad setting must not stop capture. */
#include "pwsync.h"

#define PW_REG_KEY L"SOFTWARE\\pwsync\\Filter"
#define PW_DEFAULT_PIPE L"\\\\.\\pipe\\pwsync-agent"
#define PW_DEFAULT_SPOOL L"%ProgramData%\\pwsync\\spool"
#define PW_FALLBACK_SPOOL L"C:\\ProgramData\\pwsync\\spool"

static BOOL read_string(const WCHAR *name, WCHAR *out, DWORD cap_chars)
{
    DWORD bytes = cap_chars * sizeof(WCHAR);
    /* REG_EXPAND_SZ values are expanded by RegGetValueW and then match RRF_RT_REG_SZ. */
    LSTATUS rc = RegGetValueW(HKEY_LOCAL_MACHINE, PW_REG_KEY, name, RRF_RT_REG_SZ,
                              NULL, out, &bytes);
    return rc == ERROR_SUCCESS && out[0] != 0;
}

static DWORD read_dword(const WCHAR *name, DWORD fallback, DWORD lo, DWORD hi)
{
    DWORD v = 0, bytes = sizeof(v);
    if (RegGetValueW(HKEY_LOCAL_MACHINE, PW_REG_KEY, name, RRF_RT_REG_DWORD, NULL, &v, &bytes) != ERROR_SUCCESS)
        return fallback;
    return (v < lo || v > hi) ? fallback : v;
}

static BOOL has_percent(const WCHAR *s)
{
    for (; *s; s++) if (*s == L'%') return TRUE;
    return FALSE;
}

void pw_config_load(pw_config *cfg)
{
    DWORD n;
    if (!read_string(L"PipeName", cfg->pipe_name, ARRAYSIZE(cfg->pipe_name)))
        pw_join(cfg->pipe_name, ARRAYSIZE(cfg->pipe_name), PW_DEFAULT_PIPE, NULL, NULL);
    if (!read_string(L"SpoolDirectory", cfg->spool_dir, ARRAYSIZE(cfg->spool_dir))) {
        n = ExpandEnvironmentStringsW(PW_DEFAULT_SPOOL, cfg->spool_dir, ARRAYSIZE(cfg->spool_dir));
        if (n == 0 || n > ARRAYSIZE(cfg->spool_dir) || has_percent(cfg->spool_dir))
            pw_join(cfg->spool_dir, ARRAYSIZE(cfg->spool_dir), PW_FALLBACK_SPOOL, NULL, NULL);
    }
    cfg->pipe_timeout_ms = read_dword(L"PipeTimeoutMs", 2000, 50, 60000);
    cfg->queue_capacity = read_dword(L"QueueCapacity", 8192, 16, 65536);
}
