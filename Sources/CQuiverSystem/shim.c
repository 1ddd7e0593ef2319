#define _GNU_SOURCE
#include <fcntl.h>
#include "cquiversystem.h"

int quiver_o_path(void) { return O_PATH; }
