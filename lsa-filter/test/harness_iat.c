/* Fault injection and observation without a single test hook in the DLL: the harness rewrites
 * entries of the loaded DLL's import address table (the same table the Windows loader filled),
 * so the DLL's own calls to, say, FlushFileBuffers go through a wrapper of ours first. */
#include "harness.h"

void *h_iat_patch(HMODULE module, const char *dll, const char *function, void *replacement)
{
    BYTE *base = (BYTE *)module;
    IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    IMAGE_DATA_DIRECTORY dirent = nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    IMAGE_IMPORT_DESCRIPTOR *imp = (IMAGE_IMPORT_DESCRIPTOR *)(base + dirent.VirtualAddress);
    if (dirent.VirtualAddress == 0) return NULL;
    for (; imp->Name; imp++) {
        IMAGE_THUNK_DATA *names, *slots;
        if (lstrcmpiA((const char *)(base + imp->Name), dll) != 0) continue;
        names = (IMAGE_THUNK_DATA *)(base + (imp->OriginalFirstThunk ? imp->OriginalFirstThunk : imp->FirstThunk));
        slots = (IMAGE_THUNK_DATA *)(base + imp->FirstThunk);
        for (; names->u1.AddressOfData; names++, slots++) {
            IMAGE_IMPORT_BY_NAME *byname;
            DWORD old;
            void *previous;
            if (IMAGE_SNAP_BY_ORDINAL(names->u1.Ordinal)) continue;
            byname = (IMAGE_IMPORT_BY_NAME *)(base + names->u1.AddressOfData);
            if (strcmp((const char *)byname->Name, function) != 0) continue;
            previous = (void *)slots->u1.Function;
            VirtualProtect(&slots->u1.Function, sizeof(slots->u1.Function), PAGE_READWRITE, &old);
            slots->u1.Function = (ULONG_PTR)replacement;
            VirtualProtect(&slots->u1.Function, sizeof(slots->u1.Function), old, &old);
            return previous;
        }
    }
    return NULL;
}
