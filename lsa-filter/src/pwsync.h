/* Shared declarations of the pwsync LSA notification package. Wire format: docs/frame-format.md. */
#ifndef PWSYNC_H
#define PWSYNC_H

#include <windows.h>
#include <ntsecapi.h>

#define PW_VERSION_W L"0.1.0"

/* ---- frame.c: the v1 frame (numbers mirrored in dc-agent/src/frame/format.ts) ---- */
#define PW_FRAME_MAGIC 0x46535750u /* "PWSF" */
#define PW_ACK_MAGIC 0x41535750u   /* "PWSA" */
#define PW_SPOOL_MAGIC 0x53535750u /* "PWSS" */
#define PW_FRAME_VERSION 1
/* Spool envelope v2: DPAPI in the filter's own (SYSTEM) user scope. v1 was machine scope. */
#define PW_SPOOL_VERSION 2
#define PW_HEADER_BYTES 40
#define PW_ACK_BYTES 16
#define PW_SPOOL_HEADER_BYTES 12
#define PW_MAX_ACCOUNT_BYTES 512  /* 256 UTF-16 units: sAMAccountName rangeUpper */
#define PW_MAX_PASSWORD_BYTES 512 /* 256 UTF-16 units: SAM maximum password length */
#define PW_MAX_FRAME_BYTES (PW_HEADER_BYTES + PW_MAX_ACCOUNT_BYTES + PW_MAX_PASSWORD_BYTES)
#define PW_OFFSET_SEQUENCE 16

enum pw_input_problem {
    PW_INPUT_OK = 0,
    PW_INPUT_NULL_STRUCT,
    PW_INPUT_NULL_BUFFER,
    PW_INPUT_ODD_LENGTH,
    PW_INPUT_LENGTH_OVER_MAXIMUM,
    PW_INPUT_TOO_LONG,
    PW_INPUT_EMPTY
};

enum pw_input_problem pw_check_input(const UNICODE_STRING *s, USHORT limit_bytes, BOOL allow_empty);
const WCHAR *pw_input_problem_text(enum pw_input_problem p);
/* Writes the frame into out (PW_MAX_FRAME_BYTES), sequence 0; returns its length. Inputs pre-checked. */
DWORD pw_frame_build(BYTE *out, const UNICODE_STRING *account, const UNICODE_STRING *password,
                     ULONGLONG captured_at);
void pw_frame_set_sequence(BYTE *frame, ULONGLONG sequence);
void pw_frame_set_captured_at(BYTE *frame, ULONGLONG captured_at);
ULONGLONG pw_frame_sequence(const BYTE *frame);
ULONGLONG pw_frame_captured_at(const BYTE *frame);
void pw_put_u16(BYTE *p, USHORT v);
void pw_put_u32(BYTE *p, DWORD v);
void pw_put_u64(BYTE *p, ULONGLONG v);
DWORD pw_get_u32(const BYTE *p);
USHORT pw_get_u16(const BYTE *p);
ULONGLONG pw_get_u64(const BYTE *p);

/* ---- config.c ---- */
typedef struct pw_config {
    WCHAR pipe_name[256];
    WCHAR spool_dir[MAX_PATH];
    DWORD pipe_timeout_ms;
    DWORD queue_capacity;
} pw_config;
void pw_config_load(pw_config *cfg);

/* ---- text.c: tiny formatting, no CRT ---- */
void pw_u64_hex(WCHAR out[17], ULONGLONG v);
void pw_u32_dec(WCHAR out[11], DWORD v);
BOOL pw_join(WCHAR *out, DWORD cap, const WCHAR *a, const WCHAR *b, const WCHAR *c);

/* ---- eventlog.c: messages.mc ids; insertion strings never carry a password.
 * Called from the pipe worker only (never LSA's thread); the source is registered lazily. ---- */
void pw_event(WORD type, DWORD id, const WCHAR *s1, const WCHAR *s2, const WCHAR *s3, const WCHAR *s4);
void pw_event_win32(WORD type, DWORD id, const WCHAR *what, DWORD error);

/* ---- pipe.c ---- */
enum pw_send_result {
    PW_SEND_ACCEPTED = 0,
    PW_SEND_REJECTED,     /* agent says the frame is malformed: re-sending cannot help */
    PW_SEND_RETRY_LATER,  /* agent up but cannot queue now */
    PW_SEND_ABSENT,       /* no pipe: agent not running */
    PW_SEND_TIMEOUT,
    PW_SEND_IMPOSTOR,     /* pipe server is not running as our own account (SYSTEM in LSASS) */
    PW_SEND_IO_ERROR
};
enum pw_send_result pw_pipe_send(const pw_config *cfg, const BYTE *frame, DWORD len, DWORD *win32_error);

/* ---- spool.c (spool thread only) ---- */
/* Returned by pw_spool_write when the folder failed verification (owner, DACL, reparse point);
 * *failed_step then names the check that failed. */
#define PW_SPOOL_UNTRUSTED 0x20000001u
/* Verifies the folder (creating it SYSTEM-only if absent), encrypts the frame with DPAPI in the
 * filter's own user scope and writes it atomically; returns 0, a Win32 error or PW_SPOOL_UNTRUSTED. */
DWORD pw_spool_write(const pw_config *cfg, const BYTE *frame, DWORD len, const WCHAR **failed_step);
/* This process's user SID (SYSTEM inside LSASS) in a caller buffer; FALSE if unavailable. */
BOOL pw_self_sid(BYTE *buf, DWORD cap, PSID *sid);

/* ---- queue.c ---- */
BOOL pw_core_init(void);
void pw_core_notify(const UNICODE_STRING *user, const UNICODE_STRING *password);

#endif
