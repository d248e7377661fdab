// Embeds a file built at build time (a kernel image) into a plugin's read-only data with .incbin, so
// that no generated source file holds its bytes: GREY_EMBED_FILE(symbol, "path", "alignment") defines
// the hidden symbols symbol_begin and symbol_end around the file's bytes, aligned as the loader of the
// image requires (a string literal: "4" for SPIR-V's words, "64" for CUDA fatbins).
#pragma once

#define GREY_EMBED_FILE(symbol, path, alignment)          \
    __asm__(".pushsection .rodata." #symbol ", \"a\"\n"  \
            ".balign " alignment "\n"                     \
            ".globl " #symbol "_begin\n"                  \
            ".hidden " #symbol "_begin\n" #symbol         \
            "_begin:\n"                                   \
            ".incbin \"" path "\"\n"                      \
            ".globl " #symbol "_end\n"                    \
            ".hidden " #symbol "_end\n" #symbol           \
            "_end:\n"                                     \
            ".popsection\n");                             \
    extern "C" const unsigned char symbol##_begin[];      \
    extern "C" const unsigned char symbol##_end[];
