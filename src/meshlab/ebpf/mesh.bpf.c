// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * meshlab's eBPF datapath, in the manner of Merbridge: four programs and five maps.
 *
 *   cgroup/connect4    an app's connect() to a mesh address goes to the sidecar's port 15001 on a
 *                      loopback address of its own in 127.128.0.0/12: the CPU (4 bits) and that
 *                      CPU's rolling counter (16 bits, never 0), distinct for up to 16 CPUs
 *                      (no iptables REDIRECT); the original destination is kept by socket cookie
 *   sockops            on ESTABLISHED: moves that original destination to a key the sidecar can name
 *                      (the app socket's address and the loopback address it was given), and puts
 *                      every socket in a sockhash keyed by its 4-tuple
 *   sk_msg             a message sent to a socket whose peer is in the sockhash is handed straight to
 *                      the peer's receive queue (bpf_msg_redirect_hash): no TCP/IP stack, no netfilter
 *   cgroup/getsockopt  answers the sidecar's getsockopt(SOL_IP, SO_ORIGINAL_DST) from the map, so the
 *                      sidecar code is the same on both datapaths
 *
 * Only processes in the lab's cgroup are affected; the proxy's own connections (uid PROXY_UID) and
 * destinations outside the mesh's CIDRs keep the normal path, as do messages to unknown peers.
 *
 * Why not 127.0.0.1:15001: the maps are one per node, not one per pod, and two pods' apps can use the
 * same ephemeral port, so "127.0.0.1:40001 -> 127.0.0.1:15001" could name two connections at once and
 * one pod's bytes could be handed to the other pod's sidecar. A loopback address per connection makes
 * every 4-tuple distinct (Merbridge does the same, bpf/mb_connect.c: "to avoid conflicts between the
 * quaternions of different Pods"). The whole of 127.0.0.0/8 is local on lo, and the sidecar listens on
 * 0.0.0.0, so the connection needs nothing else.
 * The CIDRs and ports are compile-time constants, set by meshlab.ebpf.datapath with -D.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef POD_NET
#define POD_NET 0x0af40000 /* 10.244.0.0/16 */
#endif
#ifndef SERVICE_NET
#define SERVICE_NET 0x0a600000 /* 10.96.0.0/16 */
#endif
#define NET_MASK 0xffff0000
#ifndef PROXY_UID
#define PROXY_UID 1337
#endif
#ifndef OUTBOUND_PORT
#define OUTBOUND_PORT 15001
#endif
#define SO_ORIGINAL_DST 80 /* <linux/netfilter_ipv4.h> */
#define SOL_IP 0
#define AF_INET 2
#define LOOPBACK_BASE 0x7f800000 /* 127.128.0.0/12: 4 bits of CPU, 16 bits of counter */

enum counter { CONNECT_REWRITES, SOCKHASH_INSERTS, REDIRECTED_MESSAGES, PASSED_MESSAGES, ORIGINAL_DST_ANSWERS, COUNTERS };

struct address {
	__u32 ip;   /* network order */
	__u16 port; /* network order */
	__u16 pad;
};

/* What the sidecar can name about its accepted socket: the app's end (its peer) and the loopback
 * address the app was sent to (its own local address). */
struct app_connection {
	__u32 app_ip, loopback_ip; /* network order */
	__u16 app_port, pad;        /* network order */
};

struct socket_pair {
	__u32 local_ip, remote_ip;     /* network order */
	__u16 local_port, remote_port; /* network order */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie of the app's socket */
	__type(value, struct address);
} cookie_original_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct app_connection);
	__type(value, struct address);
} peer_original_dst SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); /* one counter per CPU: no atomics, none shared */
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} loopback_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, struct socket_pair);
	__type(value, __u64);
} sock_pairs SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &which);
	if (value)
		__sync_fetch_and_add(value, 1);
}

/* The next loopback address for an app's connection to its sidecar (host order): this CPU's counter
 * (1 .. 0xffff, then again) in the low 16 bits, the CPU in the 4 bits above, so two CPUs never hand
 * out the same address (on a machine of up to 16 CPUs; above that CPUs share ranges). */
static __always_inline __u32 next_loopback(void)
{
	__u32 zero = 0, n = 0;
	__u32 *counter = bpf_map_lookup_elem(&loopback_counter, &zero);
	if (counter) {
		n = *counter;
		*counter = n + 1;
	}
	return LOOPBACK_BASE | ((bpf_get_smp_processor_id() & 0xf) << 16) | ((n % 0xffff) + 1);
}

static __always_inline int in_mesh(__u32 ip /* host order */)
{
	return (ip & NET_MASK) == POD_NET || (ip & NET_MASK) == SERVICE_NET;
}

SEC("cgroup/connect4")
int mesh_connect4(struct bpf_sock_addr *ctx)
{
	if (ctx->protocol != IPPROTO_TCP || (bpf_get_current_uid_gid() & 0xffffffff) == PROXY_UID)
		return 1;
	if (!in_mesh(bpf_ntohl(ctx->user_ip4)))
		return 1;
	__u64 cookie = bpf_get_socket_cookie(ctx);
	struct address original = {.ip = ctx->user_ip4, .port = (__u16)ctx->user_port};
	bpf_map_update_elem(&cookie_original_dst, &cookie, &original, BPF_ANY);
	ctx->user_ip4 = bpf_htonl(next_loopback());
	ctx->user_port = bpf_htons(OUTBOUND_PORT);
	count(CONNECT_REWRITES);
	return 1;
}

SEC("sockops")
int mesh_sockops(struct bpf_sock_ops *skops)
{
	if (skops->family != AF_INET)
		return 0;
	if (skops->op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB && skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 0;
	/* local_port is in host order; remote_port is in network order, in the upper 16 bits */
	struct socket_pair key = {
		.local_ip = skops->local_ip4,
		.remote_ip = skops->remote_ip4,
		.local_port = bpf_htons((__u16)skops->local_port),
		.remote_port = (__u16)(skops->remote_port >> 16),
	};
	if (skops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB) {
		__u64 cookie = bpf_get_socket_cookie(skops);
		struct address *original = bpf_map_lookup_elem(&cookie_original_dst, &cookie);
		if (original) {
			struct app_connection app = {.app_ip = key.local_ip, .loopback_ip = key.remote_ip, .app_port = key.local_port};
			bpf_map_update_elem(&peer_original_dst, &app, original, BPF_ANY);
			bpf_map_delete_elem(&cookie_original_dst, &cookie);
		}
	}
	if (bpf_sock_hash_update(skops, &sock_pairs, &key, BPF_NOEXIST) == 0)
		count(SOCKHASH_INSERTS);
	return 0;
}

SEC("sk_msg")
int mesh_sk_msg(struct sk_msg_md *msg)
{
	/* the peer socket's key is this socket's key with the ends swapped */
	struct socket_pair peer = {
		.local_ip = msg->remote_ip4,
		.remote_ip = msg->local_ip4,
		.local_port = (__u16)(msg->remote_port >> 16),
		.remote_port = bpf_htons((__u16)msg->local_port),
	};
	/* On a miss the helper returns SK_DROP without setting a target; returning SK_PASS then sends
	 * the message the normal way, so unknown peers fall back to the TCP/IP stack. */
	if (bpf_msg_redirect_hash(msg, &sock_pairs, &peer, BPF_F_INGRESS) == SK_PASS)
		count(REDIRECTED_MESSAGES);
	else
		count(PASSED_MESSAGES);
	return SK_PASS;
}

SEC("cgroup/getsockopt")
int mesh_getsockopt(struct bpf_sockopt *ctx)
{
	if (ctx->level != SOL_IP || ctx->optname != SO_ORIGINAL_DST)
		return 1;
	struct bpf_sock *sk = ctx->sk;
	if (!sk)
		return 1;
	struct app_connection app = {.app_ip = sk->dst_ip4, .loopback_ip = sk->src_ip4, .app_port = (__u16)sk->dst_port};
	struct address *original = bpf_map_lookup_elem(&peer_original_dst, &app);
	if (!original)
		return 1; /* not ours: keep what the kernel answered (e.g. conntrack after a REDIRECT) */
	struct sockaddr_in *answer = ctx->optval;
	if ((void *)(answer + 1) > ctx->optval_end)
		return 1;
	answer->sin_family = AF_INET;
	answer->sin_port = original->port;
	answer->sin_addr.s_addr = original->ip;
	/* two separate 32-bit stores: clang would merge them into one 64-bit store the verifier refuses */
	*(volatile __s32 *)&ctx->optlen = sizeof(*answer);
	*(volatile __s32 *)&ctx->retval = 0;
	count(ORIGINAL_DST_ANSWERS);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
