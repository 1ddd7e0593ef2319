#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include "cquiversystem.h"

int quiver_o_path(void) { return O_PATH; }

int quiver_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int quiver_posix_spawn_setsid(void) { return POSIX_SPAWN_SETSID; }
