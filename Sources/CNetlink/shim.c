#define _GNU_SOURCE
#include "cnetlink.h"
#include <errno.h>
#include <string.h>
#include <sched.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <linux/if.h>

_Static_assert(sizeof(struct nlmsghdr) == 16, "nlmsghdr");
_Static_assert(sizeof(struct nlmsgerr) == 20, "nlmsgerr");
_Static_assert(sizeof(struct ifinfomsg) == 16, "ifinfomsg");
_Static_assert(sizeof(struct ifaddrmsg) == 8, "ifaddrmsg");
_Static_assert(sizeof(struct rtmsg) == 12, "rtmsg");
_Static_assert(sizeof(struct tcmsg) == 20, "tcmsg");
_Static_assert(sizeof(struct rtnl_link_stats64) >= 192, "rtnl_link_stats64");

int quiver_setns(int fd, int nstype) { return setns(fd, nstype) == 0 ? 0 : -errno; }
int quiver_unshare(int flags) { return unshare(flags) == 0 ? 0 : -errno; }
int quiver_clone_newnet(void) { return CLONE_NEWNET; }
int quiver_clone_newns(void) { return CLONE_NEWNS; }
pid_t quiver_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int quiver_mount_bind(const char *source, const char *target) {
    return mount(source, target, "none", MS_BIND, NULL) == 0 ? 0 : -errno;
}
int quiver_mount_make_shared(const char *target) {
    return mount("", target, "none", MS_SHARED | MS_REC, NULL) == 0 ? 0 : -errno;
}
int quiver_mount_make_rslave_root(void) {
    return mount("", "/", "none", MS_SLAVE | MS_REC, NULL) == 0 ? 0 : -errno;
}
int quiver_mount_sysfs(const char *target) {
    return mount("sysfs", target, "sysfs", 0, NULL) == 0 ? 0 : -errno;
}
int quiver_umount_detach(const char *target) {
    return umount2(target, MNT_DETACH) == 0 ? 0 : -errno;
}

static int tun_ioctl_int(int fd, unsigned long req, unsigned long value) {
    return ioctl(fd, req, value) == 0 ? 0 : -errno;
}

int quiver_tun_set_iff(int fd, const char *name, short flags, char actual_name[16]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (name) strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = flags;
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) return -errno;
    if (actual_name) memcpy(actual_name, ifr.ifr_name, IFNAMSIZ);
    return 0;
}
int quiver_tun_get_flags(int fd, short *flags) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) != 0) return -errno;
    *flags = ifr.ifr_flags;
    return 0;
}
int quiver_tun_get_name(int fd, char name[16]) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ioctl(fd, TUNGETIFF, &ifr) != 0) return -errno;
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = 0;
    return 0;
}
int quiver_tun_set_persist(int fd, int persist) { return tun_ioctl_int(fd, TUNSETPERSIST, (unsigned long)persist); }
int quiver_tun_set_owner(int fd, uid_t uid) { return tun_ioctl_int(fd, TUNSETOWNER, (unsigned long)uid); }
int quiver_tun_set_group(int fd, gid_t gid) { return tun_ioctl_int(fd, TUNSETGROUP, (unsigned long)gid); }
int quiver_tun_set_offload(int fd, unsigned int offloads) { return tun_ioctl_int(fd, TUNSETOFFLOAD, offloads); }
int quiver_tun_set_vnet_hdr_size(int fd, int size) {
    return ioctl(fd, TUNSETVNETHDRSZ, &size) == 0 ? 0 : -errno;
}
int quiver_tun_get_vnet_hdr_size(int fd) {
    int size = 0;
    return ioctl(fd, TUNGETVNETHDRSZ, &size) == 0 ? size : -errno;
}
int quiver_tun_set_queue(int fd, int attach) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
    return ioctl(fd, TUNSETQUEUE, &ifr) == 0 ? 0 : -errno;
}
int quiver_makedev(unsigned int major, unsigned int minor, dev_t *out) {
    *out = makedev(major, minor);
    return 0;
}

