/* Building v1 frames from LSA's UNICODE_STRINGs. Reads LSA's buffers, never writes them. */
#include "pwsync.h"

void pw_put_u16(BYTE *p, USHORT v) { p[0] = (BYTE)v; p[1] = (BYTE)(v >> 8); }
void pw_put_u32(BYTE *p, DWORD v) { pw_put_u16(p, (USHORT)v); pw_put_u16(p + 2, (USHORT)(v >> 16)); }
void pw_put_u64(BYTE *p, ULONGLONG v) { pw_put_u32(p, (DWORD)v); pw_put_u32(p + 4, (DWORD)(v >> 32)); }
USHORT pw_get_u16(const BYTE *p) { return (USHORT)(p[0] | (p[1] << 8)); }
DWORD pw_get_u32(const BYTE *p) { return (DWORD)pw_get_u16(p) | ((DWORD)pw_get_u16(p + 2) << 16); }
ULONGLONG pw_get_u64(const BYTE *p) { return (ULONGLONG)pw_get_u32(p) | ((ULONGLONG)pw_get_u32(p + 4) << 32); }

/* UNICODE_STRING.Length is in bytes and the buffer is not NUL-terminated; nothing about it is
 * trusted until these checks pass. */
enum pw_input_problem pw_check_input(const UNICODE_STRING *s, USHORT limit_bytes, BOOL allow_empty)
{
    if (s == NULL) return PW_INPUT_NULL_STRUCT;
    if (s->Length == 0) return allow_empty ? PW_INPUT_OK : PW_INPUT_EMPTY;
    if (s->Buffer == NULL) return PW_INPUT_NULL_BUFFER;
    if (s->Length & 1) return PW_INPUT_ODD_LENGTH;
    if (s->Length > s->MaximumLength) return PW_INPUT_LENGTH_OVER_MAXIMUM;
    if (s->Length > limit_bytes) return PW_INPUT_TOO_LONG;
    return PW_INPUT_OK;
}

const WCHAR *pw_input_problem_text(enum pw_input_problem p)
{
    switch (p) {
    case PW_INPUT_OK: return L"ok";
    case PW_INPUT_NULL_STRUCT: return L"null UNICODE_STRING";
    case PW_INPUT_NULL_BUFFER: return L"null buffer with non-zero Length";
    case PW_INPUT_ODD_LENGTH: return L"odd byte Length";
    case PW_INPUT_LENGTH_OVER_MAXIMUM: return L"Length greater than MaximumLength";
    case PW_INPUT_TOO_LONG: return L"longer than 256 characters";
    case PW_INPUT_EMPTY: return L"empty";
    }
    return L"unknown";
}

static void copy_bytes(BYTE *dst, const BYTE *src, DWORD n)
{
    DWORD i;
    for (i = 0; i < n; i++) dst[i] = src[i];
}

DWORD pw_frame_build(BYTE *out, const UNICODE_STRING *account, const UNICODE_STRING *password,
                     ULONGLONG captured_at)
{
    DWORD a = account->Length, p = password->Length;
    DWORD total = PW_HEADER_BYTES + a + p;
    pw_put_u32(out + 0, PW_FRAME_MAGIC);
    pw_put_u16(out + 4, PW_FRAME_VERSION);
    pw_put_u16(out + 6, PW_HEADER_BYTES);
    pw_put_u32(out + 8, total);
    pw_put_u32(out + 12, 0);
    pw_put_u64(out + PW_OFFSET_SEQUENCE, 0);
    pw_put_u64(out + 24, captured_at);
    pw_put_u16(out + 32, (USHORT)a);
    pw_put_u16(out + 34, (USHORT)p);
    pw_put_u32(out + 36, 0);
    if (a) copy_bytes(out + PW_HEADER_BYTES, (const BYTE *)account->Buffer, a);
    if (p) copy_bytes(out + PW_HEADER_BYTES + a, (const BYTE *)password->Buffer, p);
    return total;
}

void pw_frame_set_sequence(BYTE *frame, ULONGLONG sequence) { pw_put_u64(frame + PW_OFFSET_SEQUENCE, sequence); }
void pw_frame_set_captured_at(BYTE *frame, ULONGLONG captured_at) { pw_put_u64(frame + 24, captured_at); }
ULONGLONG pw_frame_sequence(const BYTE *frame) { return pw_get_u64(frame + PW_OFFSET_SEQUENCE); }
ULONGLONG pw_frame_captured_at(const BYTE *frame) { return pw_get_u64(frame + 24); }
