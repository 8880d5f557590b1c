"""A tiny pcap reader for tests: UDP datagrams out of Ethernet/IPv4 (or Linux cooked) captures."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_RAW = 101


@dataclass(frozen=True)
class UdpDatagram:
    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def read_udp(path: str | Path) -> list[UdpDatagram]:
    data = Path(path).read_bytes()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise ValueError(f"{path}: not a pcap file")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    out: list[UdpDatagram] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack_from(endian + "IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        if linktype == LINKTYPE_ETHERNET:
            ethertype = struct.unpack_from("!H", frame, 12)[0]
            offset = 14
            while ethertype == 0x8100:  # VLAN tag
                ethertype = struct.unpack_from("!H", frame, offset + 2)[0]
                offset += 4
        elif linktype == LINKTYPE_LINUX_SLL:
            ethertype = struct.unpack_from("!H", frame, 14)[0]
            offset = 16
        elif linktype == LINKTYPE_RAW:
            ethertype, offset = 0x0800, 0
        else:
            raise ValueError(f"{path}: unsupported link type {linktype}")
        if ethertype != 0x0800:
            continue
        ip = frame[offset:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] != 17:  # UDP only
            continue
        udp = ip[ihl:total]
        sport, dport, length = struct.unpack_from("!HHH", udp)
        out.append(
            UdpDatagram(
                time=sec + frac / (1e9 if nano else 1e6),
                src=(_ip(ip[12:16]), sport),
                dst=(_ip(ip[16:20]), dport),
                payload=bytes(udp[8:length]),
            )
        )
    return out
