"""Which IP addresses are on the public internet: the one rule for every URL NanoGen lets out or fetches.

Python's ``ipaddress`` flags (``is_global``, ``is_private``) follow IANA's
special-purpose registries as of each Python release, and releases disagree:
3.11 calls 6to4 (``2002::/16``) global and ``2001:1::/32`` private, 3.13 the
reverse. The Lambda runtime (3.13) and the tests must not accept different
URLs, so the ranges are written here, from the registries (RFC 6890 and its
updates), and only ``ipaddress``'s parsing is used.

A public address is, for IPv4, one outside every block below; for IPv6, a
global unicast address (``2000::/3``) outside the special blocks below, or
one that embeds an IPv4 address (6to4, NAT64's well-known prefix) whose
IPv4 address is public. Everything else (loopback, private, link-local,
unique-local, multicast, documentation, IPv4-mapped, ...) is not.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

LOOPBACK_IPV4 = IPv4Network("127.0.0.0/8")

NOT_PUBLIC_IPV4 = tuple(
    IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        str(LOOPBACK_IPV4),
        "169.254.0.0/16",  # link-local (cloud metadata endpoints)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)

GLOBAL_UNICAST_IPV6 = IPv6Network("2000::/3")
NOT_PUBLIC_IPV6 = tuple(
    IPv6Network(block)
    for block in (
        # IETF protocol assignments: Teredo (2001::/32), PCP and TURN anycast
        # (2001:1::/32), benchmarking, AMT, AS112, ORCHID and ORCHIDv2
        # (2001:20::/28), drone identifiers. None of them is a web server.
        "2001::/23",
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
    )
)
SIX_TO_FOUR = IPv6Network("2002::/16")  # 2002:AABB:CCDD::/48 is IPv4 AA.BB.CC.DD
NAT64_WELL_KNOWN = IPv6Network("64:ff9b::/96")  # the last 32 bits are the IPv4 address
# Outside 2000::/3, so refused like every other non-global block; named for the reader.
NAT64_LOCAL_USE = IPv6Network("64:ff9b:1::/48")


def is_public_ip(ip: IPAddress) -> bool:
    """True when ``ip`` is an address on the public internet (see the module docstring)."""
    if isinstance(ip, IPv4Address):
        return not any(ip in block for block in NOT_PUBLIC_IPV4)
    if ip.scope_id:  # fe80::1%eth0 names an interface of this machine
        return False
    if ip in SIX_TO_FOUR:
        return is_public_ip(IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
    if ip in NAT64_WELL_KNOWN:
        return is_public_ip(IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip not in GLOBAL_UNICAST_IPV6:
        return False
    return not any(ip in block for block in NOT_PUBLIC_IPV6)


def is_loopback_ip(ip: IPAddress) -> bool:
    """127.0.0.0/8 and ::1: this machine (the local emulator and test servers)."""
    if isinstance(ip, IPv4Address):
        return ip in LOOPBACK_IPV4
    return int(ip) == 1 and not ip.scope_id
