"""eBPF instead of iptables, in the manner of Merbridge: connect4, sockops, sk_msg and getsockopt.

    mesh.bpf.c  the four programs and their maps (C, compiled on first use)
    datapath    compile, load, attach, read counters and remove, for one lab
"""
