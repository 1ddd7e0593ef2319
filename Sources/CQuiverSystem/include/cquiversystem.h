// CQuiverSystem — what the pure values target needs from C and Swift's Glibc module lacks.
#ifndef QUIVER_CQUIVERSYSTEM_H
#define QUIVER_CQUIVERSYSTEM_H

/* O_PATH is glibc's only with _GNU_SOURCE, which Swift's Glibc module does not define. */
int quiver_o_path(void);

/* posix_spawn: close every descriptor from `from` up in the child (glibc's _np call needs
   _GNU_SOURCE/__USE_MISC, which the Glibc module does not set). Returns 0 or an errno. */
#include <spawn.h>
int quiver_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/* POSIX_SPAWN_SETSID (also _GNU_SOURCE only). */
int quiver_posix_spawn_setsid(void);

#endif
