"""The public-address rule, identical on every Python (3.11 and 3.13's ``ipaddress`` tables disagree)."""

from __future__ import annotations

import sys
from ipaddress import ip_address

import pytest

from chalicelib.addresses import is_loopback_ip, is_public_ip

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below carrier-grade NAT
    "100.128.0.0",  # just above it
    "172.15.255.255",
    "172.32.0.0",
    "192.0.3.1",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "2001:200::1",  # the first address after the IETF block 2001::/23
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
]

NOT_PUBLIC = [
    "0.0.0.0",  # noqa: S104 - an address to refuse, not to bind
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.9",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:8.8.8.8",  # IPv4-mapped: an IPv4 socket in disguise
    "::ffff:127.0.0.1",
    "::127.0.0.1",
    "100::1",
    "fc00::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%eth0",
    "2606:4700:4700::1111%eth0",
    "fec0::1",
    "ff02::1",
    # Where Python 3.11 and 3.13 disagree:
    "2001:1::1",  # PCP anycast
    "2001:1::2",
    "2001:20::1",  # ORCHIDv2
    "2001:2f:ffff::1",
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112
    "2001::1",  # Teredo
    "2001:db8::1",
    "3fff::1",
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002::",  # 6to4 of 0.0.0.0
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::808:808",  # local-use NAT64
    "5f00::1",  # SRv6 SIDs
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_ip(ip_address(address)), sys.version


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_ip(ip_address(address)), sys.version


@pytest.mark.parametrize("address", ["2002:808:808::1", "2002:7f00:1::", "2002:a9fe:a9fe:1234::5"])
def test_6to4_is_judged_by_the_ipv4_address_ipaddress_finds_inside(address: str) -> None:
    ip = ip_address(address)
    embedded = ip.sixtofour  # type: ignore[union-attr]
    assert embedded is not None
    assert is_public_ip(ip) == is_public_ip(embedded)


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("10.0.0.1", False), ("::2", False)],
)
def test_loopback(address: str, loopback: bool) -> None:
    assert is_loopback_ip(ip_address(address)) is loopback
