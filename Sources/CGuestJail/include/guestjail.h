#ifndef QUIVER_GUESTJAIL_H
#define QUIVER_GUESTJAIL_H

#include <sys/types.h>

/// One guest's jail: what the child does between fork and exec, all of it in C (nothing but
/// system calls runs in a child of a multi-threaded process).
struct quiver_jail {
    /// An empty directory (host path) the jail's root tmpfs is mounted on, in the jail's own
    /// mount namespace.
    const char *root;
    /// Host directories bind-mounted read-only at the same path inside the jail (e.g. /usr).
    const char *const *readonly;
    int readonly_count;
    /// Device nodes bound into the jail's /dev (e.g. "null", "zero", "urandom", "kvm").
    const char *const *devices;
    int device_count;
    /// Symbolic links made in the jail's root: name → target (e.g. "lib" → "usr/lib").
    const char *const *link_names;
    const char *const *link_targets;
    int link_count;
    const char *hostname;
    uid_t uid;
    gid_t gid;
    /// Become 3, 4, 5, … in the child; `stderr_fd` becomes 2; 0 and 1 are /dev/null.
    const int *fds;
    int fd_count;
    int stderr_fd;
    const char *binary;
    char *const *argv;
    char *const *envp;
};

/// Starts `jail->binary` confined: new mount, PID, IPC, UTS and network namespaces, root pivoted to
/// the tmpfs, every capability dropped (bounding set too), `no_new_privs`, under uid:gid. The
/// process is a grandchild (re-parented to init), PID 1 of its namespace. It waits before
/// anything else until `quiver_jail_release` is called, so the caller can put it into cgroups.
/// Returns its pid (in the caller's namespace) and a descriptor to release it with, or -1 with
/// errno set.
pid_t quiver_jail_start(const struct quiver_jail *jail, int *release_fd, int *error_fd);

/// Lets the jailed process go on; then reads what it reports. Returns 0 when it reached exec;
/// otherwise -1 with `step` (a short static string naming what failed) and errno set.
int quiver_jail_release(int release_fd, int error_fd, const char **step);

/// A memfd that can be sealed (close-on-exec), for the sealed copies of a jailed guest's boot files.
int quiver_memfd(const char *name);

/// Seals it for good: no write, no growing or shrinking, no more seals.
int quiver_seal(int fd);

#endif
