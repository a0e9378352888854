/* Wine test harness for pwsync-filter.dll: plays LSA (calls the exports) and the agent (pipe
 * server, spool drainer). Normal CRT here; only the DLL is CRT-free. */
#ifndef PWSYNC_HARNESS_H
#define PWSYNC_HARNESS_H
#include <windows.h>
#include <ntsecapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_HEADER 40
#define H_MAX_FRAME 1064

typedef struct h_frame {
    DWORD len;
    BYTE bytes[H_MAX_FRAME];
} h_frame;

/* Pipe server playing the agent: stores every frame it receives and acks it. */
typedef struct h_server h_server;
h_server *h_server_start(const WCHAR *pipe_name, int threads);
void h_server_stop(h_server *s);
DWORD h_server_count(h_server *s);
/* Copies frame i (0-based, arrival order) into out; FALSE if not there yet. */
BOOL h_server_get(h_server *s, DWORD i, h_frame *out);
DWORD h_server_wait(h_server *s, DWORD want, DWORD timeout_ms);
/* Counts frames received while no server runs are kept across restarts. */
h_server *h_server_restart(h_server *old, const WCHAR *pipe_name, int threads);
/* A hung agent: accepts every connection and then never reads, never acks, never closes. */
h_server *h_server_start_hung(const WCHAR *pipe_name, int threads);
DWORD h_server_accepted(h_server *s);

/* Replaces the DLL's import of dll!function with replacement; returns the original (harness_iat.c). */
void *h_iat_patch(HMODULE module, const char *dll, const char *function, void *replacement);

/* Spool folder helpers (harness_spool.c). */
DWORD h_spool_count(const WCHAR *dir, DWORD *tmp_files);
DWORD h_spool_wait(const WCHAR *dir, DWORD want, DWORD timeout_ms);
/* Bytes of every spool file concatenated check: returns number of files containing needle. */
DWORD h_spool_scan(const WCHAR *dir, const BYTE *needle, DWORD needle_len, DWORD *files_checked);
/* Drains like the agent: oldest name first, decrypts, validates the envelope, hands each frame
 * to cb, deletes the file. Returns frames drained or (DWORD)-1 on a broken file. */
typedef void (*h_frame_cb)(const BYTE *frame, DWORD len, void *ctx);
DWORD h_spool_drain(const WCHAR *dir, h_frame_cb cb, void *ctx);
void h_spool_clear(const WCHAR *dir);

USHORT h_u16(const BYTE *p);
DWORD h_u32(const BYTE *p);
ULONGLONG h_u64(const BYTE *p);
#endif
