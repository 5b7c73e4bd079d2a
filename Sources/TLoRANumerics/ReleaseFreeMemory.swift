import CTLoRASystem

/// The allocator's free memory back to the system, after a phase whose large temporaries are gone
/// (glibc otherwise keeps freed blocks of up to 32 MiB resident in its per-thread arenas).
package func releaseFreeMemory() { tlora_release_free_memory() }
