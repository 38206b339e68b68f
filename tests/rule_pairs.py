"""One rule written two ways, and whether iptables holds the two as the same rule (the kernel confirms
each verdict in tests/live/test_compare_kernel.py)."""

#: (why, rule as given, rule written another way, same rule for iptables?, table)
PAIRS = [
    ("header order is iptables-save's", "-o lo -s 127.0.0.6/32 -j RETURN", "-s 127.0.0.6/32 -o lo -j RETURN", True, "nat"),
    ("a negation belongs to its option", "-o lo ! -d 127.0.0.1/32 -j RETURN", "! -o lo -d 127.0.0.1/32 -j RETURN", False, "nat"),
    ("a bare address is a /32", "-d 127.0.0.1 -j RETURN", "-d 127.0.0.1/32 -j RETURN", True, "nat"),
    ("host bits under the prefix are cleared", "-d 10.1.2.3/8 -j RETURN", "-d 10.0.0.0/8 -j RETURN", True, "nat"),
    ("another prefix length is another network", "-d 10.0.0.0/8 -j RETURN", "-d 10.0.0.0/16 -j RETURN", False, "nat"),
    ("-p tcp --dport loads the tcp match", "-p tcp --dport 53 -j RETURN", "-p tcp -m tcp --dport 53 -j RETURN", True, "nat"),
    ("tcp is not udp", "-p tcp --dport 53 -j RETURN", "-p udp --dport 53 -j RETURN", False, "nat"),
    ("a port match is not nothing", "-p tcp --dport 53 -j RETURN", "-p tcp -j RETURN", False, "nat"),
    ("the two ports of a rule are not interchangeable", "-p tcp --dport 15008 -j REDIRECT --to-ports 15006",
     "-p tcp --dport 15006 -j REDIRECT --to-ports 15008", False, "nat"),
    ("--to-port is --to-ports", "-p tcp -j REDIRECT --to-port 15001", "-p tcp -j REDIRECT --to-ports 15001", True, "nat"),
    ("--destination is -d", "--destination 127.0.0.1/32 -j RETURN", "-d 127.0.0.1/32 -j RETURN", True, "nat"),
    ("a mark is a number, decimal or hex", "-m mark --mark 1337 -j RETURN", "-m mark --mark 0x539 -j RETURN", True, "mangle"),
    ("another mark is another rule", "-m mark --mark 1337 -j RETURN", "-m mark --mark 1338 -j RETURN", False, "mangle"),
    ("a mark's full mask is not printed", "-m mark --mark 0x1/0xffffffff -j RETURN", "-m mark --mark 0x1 -j RETURN", True, "mangle"),
    ("a narrower mark mask is printed", "-m mark --mark 0x1/0xff -j RETURN", "-m mark --mark 0x1 -j RETURN", False, "mangle"),
    ("a negated mark is not the mark", "-m mark ! --mark 1337 -j RETURN", "-m mark --mark 1337 -j RETURN", False, "mangle"),
    ("the connection's mark is not the packet's", "-m connmark --mark 1337 -j RETURN", "-m mark --mark 1337 -j RETURN", False, "mangle"),
    ("--set-mark v is --set-xmark v/0xffffffff", "-j MARK --set-mark 1337", "-j MARK --set-xmark 0x539/0xffffffff", True, "mangle"),
    ("--set-mark v/m is --set-xmark v/(m|v)", "-j MARK --set-mark 0x1/0x2", "-j MARK --set-xmark 0x1/0x3", True, "mangle"),
    ("a narrower mask is another rule", "-j MARK --set-xmark 0x539/0xfff", "-j MARK --set-xmark 0x539/0xffffffff", False, "mangle"),
    ("TPROXY's defaults are printed", "-p tcp -j TPROXY --tproxy-mark 1337/0xffffffff --on-port 15006",
     "-p tcp -j TPROXY --on-port 15006 --on-ip 0.0.0.0 --tproxy-mark 0x539/0xffffffff", True, "mangle"),
    ("TPROXY to another address is another rule", "-p tcp -j TPROXY --on-port 15006 --on-ip 127.0.0.1 --tproxy-mark 0x1/0x1",
     "-p tcp -j TPROXY --on-port 15006 --tproxy-mark 0x1/0x1", False, "mangle"),
    ("CONNMARK's default masks are printed", "-j CONNMARK --save-mark", "-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff", True, "mangle"),
    ("saving a mark is not restoring it", "-j CONNMARK --save-mark", "-j CONNMARK --restore-mark", False, "mangle"),
    ("conntrack states are a set", "-m conntrack --ctstate ESTABLISHED,RELATED -j RETURN", "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", True, "nat"),
    ("fewer states are another rule", "-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", "-m conntrack --ctstate ESTABLISHED -j RETURN", False, "nat"),
    ("matches are kept in order", "-m mark --mark 0x1 -m owner --uid-owner 1337 -j RETURN",
     "-m owner --uid-owner 1337 -m mark --mark 0x1 -j RETURN", False, "mangle"),
    ("a negated owner is not the owner", "-m owner ! --uid-owner 1337 -j RETURN", "-m owner --uid-owner 1337 -j RETURN", False, "nat"),
    ("a group is stored as its number", "-m owner --gid-owner daemon -j RETURN", "-m owner --gid-owner 1 -j RETURN", True, "nat"),
    ("another group is another rule", "-m owner --gid-owner daemon -j RETURN", "-m owner --gid-owner bin -j RETURN", False, "nat"),
    ("uid is not gid", "-m owner --uid-owner 1337 -j RETURN", "-m owner --gid-owner 1337 -j RETURN", False, "nat"),
    ("multiport's negation stays with it", "-p tcp -m multiport ! --dports 53,15008 -j RETURN", "-p tcp -m multiport --dports 53,15008 -j RETURN", False, "nat"),
    ("another target is another rule", "-p tcp -j RETURN", "-p tcp -j ACCEPT", False, "nat"),
    ("a CT zone is a number", "-p udp --dport 53 -j CT --zone 1", "-p udp --dport 53 -j CT --zone 2", False, "raw"),
]


def one_rule(table: str, rule: str, chain: str = "ISTIO_TEST") -> str:
    return f"*{table}\n-N {chain}\n-A {chain} {rule}\nCOMMIT\n"
