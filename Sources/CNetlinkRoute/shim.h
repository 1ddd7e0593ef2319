#include <netlink/netlink.h>
#include <netlink/route/tc.h>
