// CNetlink — the few kernel macros, ioctl numbers and namespace calls Swift cannot import.
// Everything else (struct layouts, attribute numbers) Swift reads straight from the kernel headers
// re-exported here.
#ifndef QUIVER_CNETLINK_H
#define QUIVER_CNETLINK_H

#include <stdint.h>
#include <sys/types.h>
/* glibc first: linux/libc-compat.h then skips its own in6_addr/sockaddr_in6. */
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/if_tun.h>
#include <linux/if_bridge.h>
#include <linux/veth.h>
#include <linux/pkt_sched.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/gen_stats.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>

/* Alignment and sizes (function-like macros do not import into Swift). */
static inline uint32_t quiver_nlmsg_align(uint32_t len) { return NLMSG_ALIGN(len); }
static inline uint32_t quiver_nla_align(uint32_t len) { return NLA_ALIGN(len); }
static inline uint32_t quiver_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }
static inline uint32_t quiver_nla_hdrlen(void) { return NLA_HDRLEN; }
static inline uint32_t quiver_socket_buffer_size(void) { return 8192; /* MNL_SOCKET_BUFFER_SIZE caps at 8 KiB */ }
static inline uint32_t quiver_tc_h_make(uint32_t maj, uint32_t min) { return TC_H_MAKE(maj << 16, min); }
static inline uint32_t quiver_tc_h_root(void) { return TC_H_ROOT; }
static inline uint32_t quiver_tc_h_ingress(void) { return TC_H_INGRESS; }
static inline uint32_t quiver_tc_h_clsact(void) { return TC_H_CLSACT; }

/* Namespace and mount calls (need _GNU_SOURCE, which the Glibc module does not set). */
int quiver_setns(int fd, int nstype);
int quiver_unshare(int flags);
int quiver_clone_newnet(void);
int quiver_clone_newns(void);
pid_t quiver_gettid(void);
int quiver_mount_bind(const char *source, const char *target);
int quiver_mount_make_shared(const char *target);
int quiver_mount_make_rslave_root(void);
int quiver_mount_sysfs(const char *target);
int quiver_umount_detach(const char *target);


/* /dev/net/tun ioctls: request numbers are _IOW() macros. Each returns 0 or -errno. */
int quiver_tun_set_iff(int fd, const char *name, short flags, char actual_name[16]);
int quiver_tun_get_flags(int fd, short *flags);
/* TUNGETIFF: the name of the tap or macvtap behind a queue descriptor. */
int quiver_tun_get_name(int fd, char name[16]);
int quiver_tun_set_persist(int fd, int persist);
int quiver_tun_set_owner(int fd, uid_t uid);
int quiver_tun_set_group(int fd, gid_t gid);
int quiver_tun_set_offload(int fd, unsigned int offloads);
int quiver_tun_set_vnet_hdr_size(int fd, int size);
/* TUNGETVNETHDRSZ: the header size (>= 0) or -errno. */
int quiver_tun_get_vnet_hdr_size(int fd);
int quiver_tun_set_queue(int fd, int attach);

/* Linux ifreq/ioctl helper: interface index by name in the calling thread's namespace. */
int quiver_makedev(unsigned int major, unsigned int minor, dev_t *out);

#endif
