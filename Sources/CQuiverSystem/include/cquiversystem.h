// CQuiverSystem — what the pure values target needs from C and Swift's Glibc module lacks.
#ifndef QUIVER_CQUIVERSYSTEM_H
#define QUIVER_CQUIVERSYSTEM_H

/* O_PATH is glibc's only with _GNU_SOURCE, which Swift's Glibc module does not define. */
int quiver_o_path(void);

#endif
