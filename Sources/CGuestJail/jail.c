#define _GNU_SOURCE
#include "guestjail.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const steps[] = {
    "make the mounts private", "mount the jail's root", "make a directory in the jail",
    "bind a directory into the jail", "make a bound directory read-only", "bind a device into the jail",
    "make a link in the jail", "mount /proc", "make the jail's root read-only", "pivot_root into the jail",
    "detach the host's root", "set the host name", "place the descriptors", "drop the bounding set",
    "set the groups", "set the gid", "set the uid", "clear the capabilities", "set no_new_privs", "exec",
};
enum { S_PRIVATE, S_ROOT, S_MKDIR, S_BIND, S_RDONLY, S_DEVICE, S_LINK, S_PROC, S_ROOT_RDONLY, S_PIVOT,
       S_DETACH, S_HOSTNAME, S_FDS, S_BOUNDING, S_GROUPS, S_GID, S_UID, S_CAPS, S_NNP, S_EXEC };

struct report { int step; int err; };

static int report_fd = -1;

static void fail(int step) {
    struct report r = { step, errno };
    if (report_fd >= 0) { ssize_t n = write(report_fd, &r, sizeof r); (void)n; }
    _exit(127);
}

/// `root/rel` into `buf`; fails the step when it does not fit.
static void join(char *buf, size_t size, const char *root, const char *rel, int step) {
    while (*rel == '/') rel++;
    if ((size_t)snprintf(buf, size, "%s/%s", root, rel) >= size) { errno = ENAMETOOLONG; fail(step); }
}

/// mkdir -p of `rel` under `root` (every component made 0755, root-owned, inside the tmpfs).
static void make_dirs(const char *root, const char *rel) {
    char path[4096];
    join(path, sizeof path, root, rel, S_MKDIR);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(S_MKDIR);
        *p = '/';
    }
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(S_MKDIR);
}

static void bind_dir(const char *root, const char *dir, unsigned long flags) {
    char path[4096];
    make_dirs(root, dir);
    join(path, sizeof path, root, dir, S_BIND);
    if (mount(dir, path, NULL, MS_BIND, NULL) != 0) fail(S_BIND);
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | flags, NULL) != 0) fail(S_RDONLY);
}

static void jailed(const struct quiver_jail *j, int release, int errw) {
    report_fd = errw;
    char c;
    ssize_t n;
    do { n = read(release, &c, 1); } while (n < 0 && errno == EINTR);
    if (n != 1) _exit(126);   // the caller went away or refused: nothing was started
    close(release);
    const char *root = j->root;
    char path[4096];
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) fail(S_PRIVATE);
    if (mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0) fail(S_ROOT);
    for (int i = 0; i < j->readonly_count; i++) bind_dir(root, j->readonly[i], MS_RDONLY | MS_NOSUID | MS_NODEV);
    make_dirs(root, "dev");
    for (int i = 0; i < j->device_count; i++) {
        char host[256];
        if ((size_t)snprintf(host, sizeof host, "/dev/%s", j->devices[i]) >= sizeof host) { errno = ENAMETOOLONG; fail(S_DEVICE); }
        join(path, sizeof path, root, host, S_DEVICE);
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) fail(S_DEVICE);
        close(fd);
        if (mount(host, path, NULL, MS_BIND, NULL) != 0) fail(S_DEVICE);
        if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NOEXEC, NULL) != 0) fail(S_DEVICE);
    }
    for (int i = 0; i < j->link_count; i++) {
        join(path, sizeof path, root, j->link_names[i], S_LINK);
        if (symlink(j->link_targets[i], path) != 0) fail(S_LINK);
    }
    make_dirs(root, "proc");
    join(path, sizeof path, root, "proc", S_PROC);
    if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) fail(S_PROC);
    if (mount(NULL, root, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k") != 0) fail(S_ROOT_RDONLY);
    // pivot_root(".", "."): the old root is stacked under the new one and detached at once.
    if (chdir(root) != 0 || syscall(SYS_pivot_root, ".", ".") != 0) fail(S_PIVOT);
    if (umount2(".", MNT_DETACH) != 0 || chdir("/") != 0) fail(S_DETACH);
    if (j->hostname && sethostname(j->hostname, strlen(j->hostname)) != 0) fail(S_HOSTNAME);

    // Descriptors: every source above all of them first, then down to 2 and 3, 4, …; the report
    // pipe last (close-on-exec); everything else closed.
    int top = errw;
    if (j->stderr_fd > top) top = j->stderr_fd;
    for (int i = 0; i < j->fd_count; i++) if (j->fds[i] > top) top = j->fds[i];
    int base = top + 1;
    for (int i = 0; i < j->fd_count; i++) if (dup2(j->fds[i], base + i) < 0) fail(S_FDS);
    if (dup2(j->stderr_fd, base + j->fd_count) < 0 || dup2(errw, base + j->fd_count + 1) < 0) fail(S_FDS);
    report_fd = base + j->fd_count + 1;
    for (int i = 0; i < j->fd_count; i++) if (dup2(base + i, 3 + i) < 0) fail(S_FDS);
    if (dup2(base + j->fd_count, 2) < 0) fail(S_FDS);
    int last = 3 + j->fd_count;
    if (dup2(report_fd, last) < 0 || fcntl(last, F_SETFD, FD_CLOEXEC) != 0) fail(S_FDS);
    report_fd = last;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) fail(S_FDS);
    if (syscall(SYS_close_range, last + 1, ~0U, 0) != 0) fail(S_FDS);

    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) fail(S_BOUNDING);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) fail(S_BOUNDING);
    if (syscall(SYS_setgroups, 0, NULL) != 0) fail(S_GROUPS);
    if (syscall(SYS_setresgid, j->gid, j->gid, j->gid) != 0) fail(S_GID);
    if (syscall(SYS_setresuid, j->uid, j->uid, j->uid) != 0) fail(S_UID);
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &header, data) != 0) fail(S_CAPS);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(S_NNP);
    execve(j->binary, j->argv, j->envp);
    fail(S_EXEC);
}

pid_t quiver_jail_start(const struct quiver_jail *j, int *release_fd, int *error_fd) {
    int release[2], report[2], pid_pipe[2];
    if (pipe2(release, O_CLOEXEC) != 0) return -1;
    if (pipe2(report, O_CLOEXEC) != 0) { close(release[0]); close(release[1]); return -1; }
    if (pipe2(pid_pipe, O_CLOEXEC) != 0) {
        close(release[0]); close(release[1]); close(report[0]); close(report[1]);
        return -1;
    }
    pid_t middle = fork();
    if (middle == 0) {
        close(release[1]); close(report[0]); close(pid_pipe[0]);
        long pid = syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD,
                           NULL, NULL, NULL, NULL);
        if (pid == 0) { close(pid_pipe[1]); jailed(j, release[0], report[1]); }
        int answer[2] = { (int)pid, pid < 0 ? errno : 0 };
        ssize_t n = write(pid_pipe[1], answer, sizeof answer);
        _exit(n == sizeof answer ? 0 : 1);
    }
    int saved = errno;
    close(release[0]); close(report[1]); close(pid_pipe[1]);
    int answer[2] = { -1, middle < 0 ? saved : EIO };
    if (middle > 0) {
        ssize_t n;
        do { n = read(pid_pipe[0], answer, sizeof answer); } while (n < 0 && errno == EINTR);
        if (n != sizeof answer) { answer[0] = -1; answer[1] = EIO; }
        int status;
        while (waitpid(middle, &status, 0) < 0 && errno == EINTR) {}
    }
    close(pid_pipe[0]);
    if (answer[0] <= 0) {
        close(release[1]); close(report[0]);
        errno = answer[1];
        return -1;
    }
    *release_fd = release[1];
    *error_fd = report[0];
    return answer[0];
}

int quiver_jail_release(int release_fd, int error_fd, const char **step) {
    ssize_t n = write(release_fd, "g", 1);
    int werr = errno;
    close(release_fd);
    struct report r = { -1, 0 };
    ssize_t got;
    do { got = read(error_fd, &r, sizeof r); } while (got < 0 && errno == EINTR);
    close(error_fd);
    if (n != 1) { *step = "release the jailed process"; errno = werr; return -1; }
    if (got == 0) return 0;
    if (got != sizeof r || r.step < 0 || r.step > S_EXEC) { *step = "read the jail's report"; errno = EIO; return -1; }
    *step = steps[r.step];
    errno = r.err;
    return -1;
}

int quiver_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING); }

int quiver_seal(int fd) { return fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE); }
